# frozen_string_literal: true

# echo_host.rb - bench-echo-host on the Ruby runtime (sdk/ruby): the same
# actor as bench/echo_host.c. Registers system S with one UNNAMED actor
# template "echo-actor" (stateful) whose action A answers with the request's
# payload and counts the calls in its state (an 8-byte counter). Prints
# "ready" once registered.
#   ruby -I BUILD/ruby-gen -I sdk/ruby/lib bench/echo_host.rb --gateway HOST:PORT --system S --action A
require "optparse"
require "spawn_gateway"

opts = { gateway: "127.0.0.1:8090", system: "bench", action: "echo" }
OptionParser.new do |o|
  o.on("--gateway G") { |v| opts[:gateway] = v }
  o.on("--system S") { |v| opts[:system] = v }
  o.on("--action A") { |v| opts[:action] = v }
end.parse!
$stdout.sync = true
STATE_URL = "type.googleapis.com/bench.Counter"
ready = Queue.new
host = SpawnGateway::Host.new(opts[:gateway], opts[:system], logger: ->(_l, _m) {},
                                                             on_registered: ->(_h) { ready.push(true) })
host.add_actor(name: "echo-actor", kind: :UNNAMED, actions: {
                 opts[:action] => lambda do |c|
                   n = c.state && c.state.value.bytesize == 8 ? c.state.value.unpack1("Q<") : 0
                   c.state = Google::Protobuf::Any.new(type_url: STATE_URL, value: [n + 1].pack("Q<"))
                   c.payload
                 end
               })
stop = Queue.new
%w[TERM INT].each { |s| Signal.trap(s) { stop.push(s) } }
host.start
ready.pop
puts "ready"
stop.pop
host.stop
