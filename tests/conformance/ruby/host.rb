# frozen_string_literal: true

# conformance host in Ruby: the actors of conformance.proto (Keeper, Echoer,
# Tally) on the code protoc-gen-spawn generated from it (lang=ruby), with the
# semantics the contract's comments define.
#
#   ruby host.rb --gateway TARGET [--system NAME]
#
# Prints "registered" each time the gateway accepts the registration;
# exits 0 on SIGTERM or SIGINT.
require "optparse"
require "conformance_spawn"

C = Conformance::V1
opts = { system: "conformance" }
OptionParser.new do |o|
  o.on("--gateway TARGET") { |v| opts[:gateway] = v }
  o.on("--system NAME") { |v| opts[:system] = v }
end.parse!
abort("usage: host.rb --gateway TARGET [--system NAME]") unless opts[:gateway]
$stdout.sync = true

def echo_of(m) = C::Blob.new(data: m.data, text: m.text, size: m.data.bytesize)

def fail_with(f)
  raise SpawnGateway::Error.new(f.code, f.message)
end

# Keeper.Merge's rules (conformance.proto).
def merge_profile(state, m)
  nxt = C::Profile.decode(C::Profile.encode(state))
  nxt.name = m.name unless m.name.empty?
  nxt.counter = m.counter unless m.counter.zero?
  nxt.level = m.level unless [0, :LEVEL_UNSPECIFIED].include?(m.level)
  nxt.active = true if m.active
  nxt.blob = m.blob unless m.blob.empty?
  nxt.ratio = m.ratio unless m.ratio.zero?
  nxt.big = m.big unless m.big.zero?
  nxt.shape = m.shape if m.shape
  m.labels.each { |v| nxt.labels << v }
  m.numbers.each { |v| nxt.numbers << v }
  m.levels.each { |v| nxt.levels << v }
  m.history.each { |v| nxt.history << v }
  m.scores.each { |k, v| v.zero? ? nxt.scores.delete(k) : nxt.scores[k] = v }
  m.shapes.each { |k, v| nxt.shapes[k] = v }
  m.names.each { |k, v| nxt.names[k] = v }
  m.ranks.each { |k, v| nxt.ranks[k] = v }
  case m.contact
  when :email then nxt.email = m.email
  when :phone then nxt.phone = m.phone
  when :location then nxt.location = m.location
  end
  nxt
end

class Keeper < C::KeeperActor
  def set(_state, msg, ctx)
    ctx.state = msg
    msg
  end

  def merge(state, msg, ctx)
    nxt = merge_profile(state, msg)
    ctx.state = nxt
    nxt
  end

  def get(state, _msg, _ctx) = state
  def fail(_state, msg, _ctx) = fail_with(msg)
  def echo(_state, msg, _ctx) = echo_of(msg)

  def increment(state, msg, ctx)
    state.counter += msg.by
    ctx.state = state
    ctx.checkpoint! if msg.checkpoint
    state
  end
end

class Echoer < C::EchoerActor
  def echo(msg, _ctx) = echo_of(msg)
  def fail(msg, _ctx) = fail_with(msg)
end

class Tally < C::TallyActor
  def add(state, msg, ctx)
    nxt = C::Count.new(value: state.value + msg.by)
    ctx.state = nxt
    ctx.checkpoint! if msg.checkpoint
    nxt
  end

  def get(state, _msg, _ctx) = state
end

host = SpawnGateway::Host.new(opts[:gateway], opts[:system], service_name: "conformance-host-ruby",
                                                             on_registered: ->(_h) { puts "registered" })
C.register_keeper(host, Keeper.new)
C.register_echoer(host, Echoer.new)
C.register_tally(host, Tally.new)
stop = Queue.new
%w[TERM INT].each { |s| Signal.trap(s) { stop.push(s) } }
host.start
stop.pop
host.stop
exit 0
