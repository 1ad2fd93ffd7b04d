# frozen_string_literal: true

# incrementor-gen Ruby client: invokes the Incrementor through the typed
# client protoc-gen-spawn generated from incrementor.proto (lang=ruby).
#
#   ruby client.rb [--gateway TARGET] [--system NAME] [--actor NAME] add N
#
# Prints the total the actor replies. On failure prints
# "client.rb: STATUS: message" on stderr and exits 1.
require "optparse"
require "incrementor_spawn"

opts = { gateway: ENV["SPAWN_GATEWAY"] || "127.0.0.1:8090", system: "spawn-system" }
OptionParser.new do |o|
  o.on("--gateway TARGET") { |v| opts[:gateway] = v }
  o.on("--system NAME") { |v| opts[:system] = v }
  o.on("--actor NAME") { |v| opts[:actor] = v }
end.parse!
abort("usage: client.rb [--gateway TARGET] [--system NAME] [--actor NAME] add N") unless ARGV.size == 2 && ARGV[0] == "add"

client = SpawnGateway::Client.new(opts[:gateway], deadline: 10)
incrementor = Examples::Incrementor::IncrementorClient.new(client, opts[:system])
begin
  total = incrementor.add(Examples::Incrementor::Add.new(value: Integer(ARGV[1])), actor: opts[:actor])
  puts total.total
rescue SpawnGateway::Error => e
  warn "client.rb: #{e.message}" # "NOT_FOUND: ..."
  exit 1
ensure
  client.close
end
