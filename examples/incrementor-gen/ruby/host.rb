# frozen_string_literal: true

# incrementor-gen Ruby host: serves the Incrementor actor with the code
# protoc-gen-spawn generated from incrementor.proto (lang=ruby), beside the
# messages protoc --ruby_out generated.
#
#   ruby host.rb [--gateway TARGET] [--system NAME] [--checkpoint]
#
# Prints "registered" each time the gateway accepts the registration;
# exits 0 on SIGTERM or SIGINT.
require "optparse"
require "incrementor_spawn"

opts = { gateway: ENV["SPAWN_GATEWAY"] || "127.0.0.1:8090", system: "spawn-system", checkpoint: false }
OptionParser.new do |o|
  o.on("--gateway TARGET") { |v| opts[:gateway] = v }
  o.on("--system NAME") { |v| opts[:system] = v }
  o.on("--checkpoint") { opts[:checkpoint] = true }
end.parse!
$stdout.sync = true

# Add: the state and the input arrive typed; the reply goes back typed.
class Incrementor < Examples::Incrementor::IncrementorActor
  def initialize(checkpoint)
    super()
    @checkpoint = checkpoint
  end

  def add(state, msg, ctx)
    total = state.total + msg.value
    unless total.between?(-2**63, 2**63 - 1)
      raise SpawnGateway::Error.new(GRPC::Core::StatusCodes::OUT_OF_RANGE, "total would overflow")
    end

    ctx.state = Examples::Incrementor::State.new(total: total)
    ctx.checkpoint! if @checkpoint
    Examples::Incrementor::Total.new(total: total)
  end
end

host = SpawnGateway::Host.new(opts[:gateway], opts[:system], on_registered: ->(_h) { puts "registered" })
Examples::Incrementor.register_incrementor(host, Incrementor.new(opts[:checkpoint]))
stop = Queue.new
%w[TERM INT].each { |s| Signal.trap(s) { stop.push(s) } }
host.start
stop.pop
host.stop
