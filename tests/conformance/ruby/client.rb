# frozen_string_literal: true

# conformance client driver in Ruby: runs the calls run.py sends on stdin
# through the typed clients protoc-gen-spawn generated from
# conformance.proto (lang=ruby) and writes their outcomes on stdout (the
# line protocol of README.md, "Client drivers"). N calls of one CALL
# command run at once, each in a thread.
#
#   ruby client.rb --gateway TARGET [--system NAME]
require "optparse"
require "conformance_spawn"

C = Conformance::V1
opts = { system: "conformance" }
OptionParser.new do |o|
  o.on("--gateway TARGET") { |v| opts[:gateway] = v }
  o.on("--system NAME") { |v| opts[:system] = v }
end.parse!
abort("usage: client.rb --gateway TARGET [--system NAME]") unless opts[:gateway]

# "Actor.Action" -> [input class, typed client, method]
def table(client, system)
  k = C::KeeperClient.new(client, system)
  e = C::EchoerClient.new(client, system)
  t = C::TallyClient.new(client, system)
  {
    "Keeper.Set" => [C::Profile, k, :set], "Keeper.Merge" => [C::Profile, k, :merge],
    "Keeper.Get" => [C::GetRequest, k, :get], "Keeper.Fail" => [C::FailRequest, k, :fail],
    "Keeper.Echo" => [C::Blob, k, :echo], "Keeper.Increment" => [C::IncrementRequest, k, :increment],
    "Echoer.Echo" => [C::Blob, e, :echo], "Echoer.Fail" => [C::FailRequest, e, :fail],
    "Tally.Add" => [C::IncrementRequest, t, :add], "Tally.Get" => [C::GetRequest, t, :get]
  }
end

def b64(bytes) = bytes.empty? ? "-" : [bytes].pack("m0")
def unb64(text) = text == "-" ? "" : text.unpack1("m0")

def call(actions, line, timeout_ms)
  actor, instance, name, data = line.split(" ")
  input, client, meth = actions["#{actor}.#{name}"]
  return "ERR -1 #{b64("no action #{actor}.#{name}")}" unless input

  msg = input.decode(unb64(data))
  reply = client.public_send(meth, msg, actor: instance == "-" ? nil : instance, deadline: timeout_ms / 1000.0)
  "OK #{b64(reply.class.encode(reply))}"
rescue SpawnGateway::Error => e
  "ERR #{e.code} #{b64(e.details.b)}"
rescue StandardError => e
  "ERR -1 #{b64("#{e.class}: #{e.message}".b)}"
end

connect = -> { SpawnGateway::Client.new(opts[:gateway], deadline: 30) }
client = connect.call
actions = table(client, opts[:system])
$stdout.sync = true
puts "ready"
while (line = $stdin.gets&.chomp)
  break if line == "QUIT"

  if line == "RECONNECT"
    client.close
    client = connect.call
    actions = table(client, opts[:system])
    puts "OK"
    next
  end
  word, n, ms = line.split(" ")
  abort("bad command #{line[0, 80]}") unless word == "CALL"
  calls = Array.new(n.to_i) { $stdin.gets.chomp }
  results = calls.map { |c| Thread.new { call(actions, c, ms.to_i) } }.map(&:value)
  puts results.join("\n")
end
client.close
