# frozen_string_literal: true

# The Ruby runtime end to end against a real gateway ($SPAWN_GATEWAY):
# actions, state, tags, metadata, errors, pipe, forward, side effects,
# broadcasts, timers, UNNAMED and POOLED actors, many calls at once over the
# batched link, reconnection after a gateway restart.
#   ruby -I GEN -I sdk/ruby/lib sdk/ruby/test_runtime.rb
require "minitest/autorun"
require "tmpdir"
require "open3"
require "io/wait"
require "fileutils"
require "google/protobuf/wrappers_pb"
require "spawn_gateway"

SYS = "ruby-sdk-test"
I64 = Google::Protobuf::Int64Value
STR = Google::Protobuf::StringValue

# A gateway the test started, on 127.0.0.1:0 (read from its "listening" line).
class Gateway
  attr_reader :addr

  def initialize(dir, listen = "127.0.0.1:0")
    bin = ENV.fetch("SPAWN_GATEWAY") { raise "SPAWN_GATEWAY names no spawn-gateway binary" }
    @log = File.open(File.join(dir, "gateway.log"), "a")
    @out, @pid = nil
    r, w = IO.pipe
    @pid = Process.spawn(bin, "--listen", listen, "--statestore", "sqlite://#{dir}/state.db", out: w, err: @log)
    w.close
    @out = r
    raise "no 'listening' line within 30 s" unless r.wait_readable(30)

    words = r.gets.to_s.split
    raise "the gateway said #{words.inspect}" unless words[0] == "listening"

    @addr = "127.0.0.1:#{words[2]}"
  end

  def stop(sig = "TERM")
    return unless @pid

    Process.kill(sig, @pid)
    _, st = Process.wait2(@pid)
    @pid = nil
    st
  end
end

class RuntimeTest < Minitest::Test
  def setup
    @dir = Dir.mktmpdir
    @gw = Gateway.new(@dir)
    @host = make_host(@gw.addr)
    @client = SpawnGateway::Client.new(@gw.addr, deadline: 10)
  end

  def teardown
    @client&.close
    @host&.stop
    st = @gw&.stop
    assert st.nil? || st.success?, "the gateway exited with #{st.inspect} on SIGTERM"
    FileUtils.rm_rf(@dir)
  end

  def make_host(addr)
    h = SpawnGateway::Host.new(addr, SYS, logger: ->(_l, _m) {})
    add = lambda do |c|
      st = c.unpack_state(I64)
      inp = c.unpack_payload(I64)
      nxt = I64.new(value: st.value + inp.value)
      c.state = nxt
      c.tags["last"] = inp.value.to_s
      nxt
    end
    h.add_actor(name: "counter", state_type: "google.protobuf.Int64Value", actions: {
                  "add" => add, "get" => ->(c) { c.state },
                  "tags" => ->(c) { STR.new(value: c.tags["last"].to_s) },
                  "meta" => ->(c) { STR.new(value: c.metadata["k"].to_s) },
                  "fail" => ->(_c) { raise SpawnGateway::Error.new(9, "no") }
                })
    h.add_actor(name: "relay", actions: {
                  "pipe" => lambda { |c|
                    c.pipe("counter", "add")
                    I64.new(value: 10)
                  },
                  "fwd" => lambda { |c|
                    c.forward("counter", "add")
                    nil
                  },
                  "effect" => lambda { |c|
                    c.side_effect("sink", "record", STR.new(value: "effect"))
                    nil
                  },
                  "shout" => lambda { |c|
                    c.broadcast("news", STR.new(value: "news"))
                    nil
                  }
                })
    h.add_actor(name: "sink", state_type: "google.protobuf.StringValue", channels: [%w[news record]], actions: {
                  "record" => lambda { |c|
                    c.state = STR.new(value: "#{c.unpack_state(STR).value}[#{c.unpack_payload(STR).value}]")
                    nil
                  },
                  "get" => ->(c) { c.state }
                })
    h.add_actor(name: "ticker", state_type: "google.protobuf.Int64Value", timers: { "tick" => 20 }, actions: {
                  "tick" => lambda { |c|
                    c.state = I64.new(value: c.unpack_state(I64).value + 1)
                    nil
                  },
                  "get" => ->(c) { c.state }
                })
    h.add_actor(name: "worker", kind: :UNNAMED, actions: {
                  "whoami" => ->(c) { STR.new(value: "#{c.actor}/#{c.actor_id.parent}") }
                })
    h.add_actor(name: "pool", kind: :POOLED, actions: { "echo" => ->(c) { c.payload } })
    h.start
    assert h.wait_registered(20), "not registered within 20 s"
    h
  end

  def call(actor, action, payload = nil, klass = I64, **kw)
    SpawnGateway.unpack(@client.invoke(system: SYS, actor: actor, action: action, payload: payload, **kw), klass)
  end

  # Polls a condition with a deadline (a readiness wait).
  def eventually(what)
    stop = Time.now + 15
    until yield
      flunk("#{what}: not within 15 s") if Time.now > stop
      sleep 0.01
    end
  end

  def test_actions_state_errors_and_workflows
    assert_equal 2, call("counter", "add", I64.new(value: 2)).value
    assert_equal 5, call("counter", "add", I64.new(value: 3)).value
    assert_equal "3", call("counter", "tags", nil, STR).value
    assert_equal "hi", call("counter", "meta", nil, STR, metadata: { "k" => "hi" }).value
    e = assert_raises(SpawnGateway::Error) { call("counter", "fail") }
    assert_equal [9, "no"], [e.code, e.details]
    e = assert_raises(SpawnGateway::Error) { call("counter", "nosuch") }
    assert_equal GRPC::Core::StatusCodes::NOT_FOUND, e.code
    e = assert_raises(SpawnGateway::Error) { call("counter", "add", STR.new(value: "x")) }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, e.code
    assert_equal 15, call("relay", "pipe").value
    assert_equal 19, call("relay", "fwd", I64.new(value: 4)).value
    call("relay", "effect")
    call("relay", "shout")
    eventually("effect and broadcast recorded") do
      v = call("sink", "get", nil, STR).value
      v.include?("[effect]") && v.include?("[news]")
    end
    call("ticker", "get")
    eventually("timer ticks") { call("ticker", "get").value >= 3 }
    @client.spawn(system: SYS, parent: "worker", names: ["w-1"])
    assert_equal "w-1/worker", call("w-1", "whoami", nil, STR).value
    assert_equal "w-2/worker", call("w-2", "whoami", nil, STR, register_ref: "worker").value
  end

  def test_many_calls_at_once_and_restart
    threads = (0...128).map do |i|
      Thread.new { call("pool", "echo", I64.new(value: i), pooled: true).value }
    end
    assert_equal (0...128).to_a, threads.map(&:value)
    assert @host.batched?, "the gateway did not grant the batched link"
    call("counter", "add", I64.new(value: 7))
    @gw.stop
    port = @gw.addr.split(":").last
    @gw = Gateway.new(@dir, "127.0.0.1:#{port}")
    eventually("registered again") { @host.registrations >= 2 && @host.registered? }
    # The gateway's final save on SIGTERM kept the total.
    assert_equal 8, call("counter", "add", I64.new(value: 1)).value
  end

  def test_bad_options
    assert_raises(SpawnGateway::ConfigError) { SpawnGateway::Client.new("127.0.0.1:1", tls_cert: "x.pem", tls_ca: "", tls_key: "", token: "") }
    assert_raises(SpawnGateway::ConfigError) { SpawnGateway::Client.new("127.0.0.1:1", tls_ca: "/nonexistent.pem") }
    assert_raises(SpawnGateway::ConfigError) { SpawnGateway::Client.new("127.0.0.1:1", token: "a\nb") }
  end
end
