# frozen_string_literal: true

module SpawnGateway
  # What a handler knows about its invocation, and what it hands back
  # besides its reply: the new state (state=), a checkpoint, tags and the
  # workflow (pipe, forward, side_effect, broadcast), all dropped when the
  # handler raises.
  class Context
    attr_reader :request_id, :deadline, :actor_id, :actor, :system, :action, :state, :payload,
                :caller, :metadata, :invocation, :host
    attr_accessor :tags

    def initialize(task, host, system)
      inv = task.invocation
      @request_id = task.request_id
      @deadline = task.deadline_unix_ms.positive? ? Time.at(task.deadline_unix_ms / 1000.0) : nil
      @invocation = inv
      @actor_id = inv.actor
      @actor = inv.actor&.name.to_s
      @system = inv.actor&.system.to_s.empty? ? system : inv.actor.system
      @action = inv.action_name
      cur = inv.current_context
      @state = cur&.state
      @payload = inv.payload == :value ? inv.value : nil
      @caller = inv.caller
      @metadata = cur ? cur.metadata.to_h : {}
      @tags = cur ? cur.tags.to_h : {}
      @host = host
      @effects = []
    end

    # The new state (a message or an Any); without a call the state stays.
    def state=(msg)
      @new_state = SpawnGateway.pack(msg)
    end

    def new_state = @new_state
    def checkpoint! = (@checkpoint = true)
    def checkpoint? = !!@checkpoint

    def unpack_state(klass) = SpawnGateway.unpack(@state, klass, GRPC::Core::StatusCodes::INVALID_ARGUMENT, "state")
    def unpack_payload(klass) = SpawnGateway.unpack(@payload, klass)

    # After this turn, the reply goes to actor.action; the caller gets its reply.
    def pipe(actor, action) = (@route = [:pipe, actor, action])

    # After this turn, this call's input goes to actor.action.
    def forward(actor, action) = (@route = [:forward, actor, action])

    # Fires actor.action with payload after this turn (fire and forget).
    def side_effect(actor, action, payload = nil, system: nil, register_ref: nil, metadata: nil,
                    pooled: false, scheduled_to_ms: 0)
      raise ArgumentError, "a side effect needs an actor and an action" if actor.to_s.empty? || action.to_s.empty?

      sys = system || @system
      req = Spawn::InvocationRequest.new(
        system: Spawn::Actors::ActorSystem.new(name: sys),
        actor: Spawn::Actors::Actor.new(id: Spawn::Actors::ActorId.new(name: actor, system: sys, parent: register_ref.to_s)),
        action_name: action, async: true, pooled: pooled, register_ref: register_ref.to_s,
        metadata: (metadata || {}).transform_values(&:to_s), scheduled_to: scheduled_to_ms.to_i
      )
      payload ? req.value = SpawnGateway.pack(payload) : req.noop = Spawn::Noop.new
      @effects << Spawn::SideEffect.new(request: req)
    end

    # After this turn, payload goes to every subscriber of channel.
    def broadcast(channel, payload = nil)
      b = Spawn::Broadcast.new(channel_group: channel)
      payload ? b.value = SpawnGateway.pack(payload) : b.noop = Spawn::Noop.new
      @bcast = b
    end

    def workflow
      return nil if @route.nil? && @effects.empty? && @bcast.nil?

      wf = Spawn::Workflow.new(effects: @effects, broadcast: @bcast)
      if @route
        how, a, act = @route
        if how == :pipe
          wf.pipe = Spawn::Pipe.new(actor: a, action_name: act)
        else
          wf.forward = Spawn::Forward.new(actor: a, action_name: act)
        end
      end
      wf
    end
  end

  # An actor host: connects to the gateway, registers its actors and runs
  # their actions (each in a thread, at most max_inflight at once),
  # reconnecting with backoff whenever the stream ends. One stream's states
  # (session): DIALING -> REGISTERING (registration and contracts queued)
  # -> SERVING on an OK answer (batched link if granted), else CLOSED;
  # SERVING -> CLOSED when the stream ends or on stop (the outbox closes,
  # running handlers finish, their results are dropped); CLOSED -> DIALING
  # after the backoff. One message is written at a time (grpc's writer
  # drains the Outbox); the Outbox holds at most max_inflight results.
  class Host
    CONNECT = "/spawn.gateway.v1.HostGateway/Connect"
    BATCH_MAX = 128
    BATCH_BYTES = 256 << 10
    NAMED = :NAMED
    UNNAMED = :UNNAMED
    POOLED = :POOLED

    attr_reader :system, :registrations

    # Whether the gateway granted the batched link on the current (last) stream.
    def batched? = !!@batched

    def initialize(target, system, service_name: nil, min_backoff: 0.015, max_backoff: 2.0,
                   max_message_bytes: 4 << 20, max_inflight: 256, on_registered: nil, logger: nil,
                   **security)
      raise ArgumentError, "the actor system's name is empty" if system.to_s.empty?

      @target = target
      @system = system
      @service_name = service_name || system
      @sec = Security.new(**security)
      @min_backoff = min_backoff
      @max_backoff = max_backoff
      @max_message_bytes = max_message_bytes
      @max_inflight = max_inflight
      @on_registered = on_registered
      @log = logger || ->(level, msg) { warn("spawn-host #{level}: #{msg}") if %i[warn error].include?(level) }
      @actors = {}
      @contracts = []
      @registrations = 0
      @mu = Mutex.new
      @registered = ConditionVariable.new
      @is_registered = false
    end

    # Declares an actor: name, actions (name => callable taking a Context,
    # returning the reply message or nil), kind (:NAMED, :UNNAMED, :POOLED),
    # stateful (default true), state_type ("pkg.Msg"), snapshot_ms,
    # deactivate_ms, timers (action => period ms), channels ([topic] or
    # [[topic, action]]).
    def add_actor(name:, actions:, kind: :NAMED, stateful: true, state_type: "", snapshot_ms: nil,
                  deactivate_ms: nil, timers: {}, channels: [], min_pool: 0, max_pool: 0)
      raise ArgumentError, "the actor's name is empty" if name.to_s.empty?
      raise ArgumentError, "actor #{name} has no actions" if actions.empty?

      timers.each_key { |a| raise ArgumentError, "#{name}: timer #{a} has no handler" unless actions.key?(a) }
      chans = channels.map { |c| c.is_a?(Array) ? c : [c, "receive"] }
      chans.each { |_, a| raise ArgumentError, "#{name}: channel action #{a} is not an action" unless actions.key?(a) }
      @actors[name] = { name: name, actions: actions, kind: kind, stateful: stateful && kind != :POOLED,
                        state_type: state_type.to_s.delete_prefix("."), snapshot_ms: snapshot_ms,
                        deactivate_ms: deactivate_ms, timers: timers, channels: chans,
                        min_pool: min_pool, max_pool: max_pool }
      self
    end

    # Sends a serialized FileDescriptorSet after each registration.
    def add_contract(set)
      @contracts << set.b unless set.empty? || @contracts.include?(set.b)
      self
    end

    def registration_request
      reg = Spawn::Actors::Registry.new
      @actors.each_value do |a|
        s = Spawn::Actors::ActorSettings.new(kind: a[:kind], stateful: a[:stateful], state_type: a[:state_type],
                                             min_pool_size: a[:min_pool], max_pool_size: a[:max_pool])
        if a[:snapshot_ms]&.positive?
          s.snapshot_strategy = Spawn::Actors::ActorSnapshotStrategy.new(
            timeout: Spawn::Actors::TimeoutStrategy.new(timeout: a[:snapshot_ms]))
        end
        if a[:deactivate_ms]&.positive?
          s.deactivation_strategy = Spawn::Actors::ActorDeactivationStrategy.new(
            timeout: Spawn::Actors::TimeoutStrategy.new(timeout: a[:deactivate_ms]))
        end
        actor = Spawn::Actors::Actor.new(
          id: Spawn::Actors::ActorId.new(name: a[:name], system: @system), settings: s,
          actions: a[:actions].keys.sort.map { |n| Spawn::Actors::Action.new(name: n) },
          timer_actions: a[:timers].map { |n, ms| Spawn::Actors::FixedTimerAction.new(seconds: ms, action: Spawn::Actors::Action.new(name: n)) }
        )
        unless a[:channels].empty?
          actor.metadata = Spawn::Actors::Metadata.new(
            channel_group: a[:channels].map { |t, act| Spawn::Actors::Channel.new(topic: t, action: act) })
        end
        reg.actors[a[:name]] = actor
      end
      Spawn::RegistrationRequest.new(
        service_info: Spawn::ServiceInfo.new(service_name: @service_name, service_version: VERSION,
                                             service_runtime: "ruby #{RUBY_VERSION}",
                                             support_library_name: LIBRARY_NAME,
                                             support_library_version: VERSION, protocol_major_version: 1),
        actor_system: Spawn::Actors::ActorSystem.new(name: @system, registry: reg)
      )
    end

    def registered? = @mu.synchronize { @is_registered }

    # Waits until registered; false after timeout seconds.
    def wait_registered(timeout)
      stop = Time.now + timeout
      @mu.synchronize do
        until @is_registered
          left = stop - Time.now
          return false if left <= 0

          @registered.wait(@mu, left)
        end
        true
      end
    end

    # Serves in a background thread until stop.
    def start
      @stopping = false
      @thread = Thread.new { run }
      self
    end

    def stop
      @stopping = true
      @mu.synchronize { @op }&.cancel
      @thread&.join
    end

    # Connect, register, serve; reconnect with exponential backoff (+-20%).
    def run
      delay = @min_backoff
      until @stopping
        delay = @min_backoff if session
        break if @stopping

        pause = delay * (0.8 + 0.4 * rand)
        @log.call(:info, "disconnected from #{@target}; retrying in #{(pause * 1000).round} ms")
        sleep(pause) # reconnect backoff
        delay = [delay * 2, @max_backoff].min
      end
    end

    private

    def set_registered(on)
      @mu.synchronize do
        @is_registered = on
        if on
          @registrations += 1
          @registered.broadcast
        end
      end
      @on_registered&.call(self) if on
    end

    # The outgoing messages: encoded HostMessages; results joined into a
    # ResultBatch when the gateway granted batches. Bounded by max_inflight
    # (one result per running handler) plus the registration and contracts.
    class Outbox
      include Enumerable

      def initialize(max_bytes)
        @q = Queue.new
        @batch = false
        @max_bytes = max_bytes
      end

      attr_writer :batch

      def push(bytes, batchable) = @q.push([bytes, batchable])
      def close = @q.close

      def each
        while (item = @q.pop)
          unless @batch && item[1]
            yield item[0]
            next
          end
          # What queued while the previous write was in flight goes as one batch.
          items = [item]
          bytes = item[0].bytesize
          pending = nil
          while items.size < BATCH_MAX
            nxt = begin
              @q.pop(true)
            rescue ThreadError
              nil
            end
            break unless nxt

            if !nxt[1] || bytes + nxt[0].bytesize > @max_bytes
              pending = nxt
              break
            end
            items << nxt
            bytes += nxt[0].bytesize
          end
          yield join(items)
          yield pending[0] if pending
        end
      end

      # gateway.proto: each `0x12 len result` becomes `0x0a len result`
      # inside `0x1a len ResultBatch`.
      def join(items)
        return items[0][0] if items.size == 1

        body = items.map { |b, _| b.dup.tap { |x| x.setbyte(0, 0x0a) } }.join
        [0x1a].pack("C") + varint(body.bytesize) + body
      end

      def varint(n)
        out = +""
        while n >= 0x80
          out << ((n & 0x7f) | 0x80).chr
          n >>= 7
        end
        (out << n.chr).b
      end
    end

    # One stream; true when it got registered.
    def session
      out = Outbox.new([BATCH_BYTES, @max_message_bytes - 16].min)
      stub = GRPC::ClientStub.new(@target, @sec.credentials, channel_args: @sec.channel_args)
      md = @sec.metadata.merge("spawn-link" => "batch")
      op = stub.bidi_streamer(CONNECT, out, ->(b) { b },
                              ->(b) { Spawn::Gateway::V1::GatewayMessage.decode(b) },
                              return_op: true, metadata: md)
      @mu.synchronize { @op = op }
      out.push(Spawn::Gateway::V1::HostMessage.encode(
                 Spawn::Gateway::V1::HostMessage.new(registration: registration_request)), false)
      unless @contracts.empty?
        out.push(Spawn::Gateway::V1::HostMessage.encode(
                   Spawn::Gateway::V1::HostMessage.new(contracts: Spawn::Gateway::V1::Contracts.new(files: @contracts.join))), false)
      end
      got = false
      slots = SizedQueue.new(@max_inflight)
      threads = []
      op.execute.each do |msg|
        unless got
          st = msg.registration&.status
          if st.nil? || st.status != :OK
            @log.call(:error, "registration refused: #{st&.status} #{st&.message}")
            break
          end
          got = true
          @batched = Array(op.metadata["spawn-link"]).include?("batch")
          out.batch = @batched
          set_registered(true)
          next
        end
        tasks = msg.msg == :invocation ? [msg.invocation] : msg.tasks&.tasks.to_a
        tasks.each do |t|
          slots.push(true)
          threads << Thread.new do
            out.push(run_task(t), true)
          ensure
            slots.pop
          end
          threads.reject!(&:stop?) if threads.size > @max_inflight
        end
      end
      got
    rescue GRPC::BadStatus, GRPC::Core::CallError => e
      @log.call(:warn, "stream to #{@target} ended: #{e.message}") unless @stopping
      got
    ensure
      out&.close
      threads&.each(&:join)
      set_registered(false) if got
      stub&.instance_variable_get(:@ch)&.close
    end

    def run_task(task)
      res = Spawn::Gateway::V1::InvocationResult.new(request_id: task.request_id)
      begin
        res.response = invoke(task)
      rescue Error => e
        code = e.code.between?(1, 16) ? e.code : GRPC::Core::StatusCodes::UNKNOWN
        res.error = Spawn::Gateway::V1::HostError.new(code: code, message: e.details)
      rescue StandardError => e
        @log.call(:error, "handler failed: #{e.class}: #{e.message}")
        res.error = Spawn::Gateway::V1::HostError.new(code: GRPC::Core::StatusCodes::UNKNOWN, message: "#{e.class}: #{e.message}")
      end
      b = Spawn::Gateway::V1::HostMessage.encode(Spawn::Gateway::V1::HostMessage.new(result: res))
      if b.bytesize > @max_message_bytes
        res.error = Spawn::Gateway::V1::HostError.new(code: GRPC::Core::StatusCodes::RESOURCE_EXHAUSTED,
                                                      message: "the action's result exceeds the message size limit")
        b = Spawn::Gateway::V1::HostMessage.encode(Spawn::Gateway::V1::HostMessage.new(result: res))
      end
      b
    end

    def invoke(task)
      inv = task.invocation
      raise Error.new(GRPC::Core::StatusCodes::INVALID_ARGUMENT, "the task carries no invocation") unless inv

      name = inv.actor&.name.to_s
      a = @actors[name] || @actors[inv.actor&.parent.to_s]
      raise Error.new(GRPC::Core::StatusCodes::NOT_FOUND, "no actor '#{name}' in this host") unless a

      h = a[:actions][inv.action_name]
      raise Error.new(GRPC::Core::StatusCodes::NOT_FOUND, "actor '#{a[:name]}' has no action '#{inv.action_name}'") unless h
      if task.deadline_unix_ms.positive? && (Time.now.to_f * 1000) >= task.deadline_unix_ms
        raise Error.new(GRPC::Core::StatusCodes::DEADLINE_EXCEEDED, "deadline passed before the action ran")
      end

      ctx = Context.new(task, self, @system)
      reply = h.call(ctx)
      upd = Spawn::Context.new(tags: ctx.tags, self: inv.actor)
      upd.state = ctx.new_state if a[:stateful] && ctx.new_state
      resp = Spawn::ActorInvocationResponse.new(actor_name: name, actor_system: ctx.system, updated_context: upd,
                                                checkpoint: ctx.checkpoint?, workflow: ctx.workflow)
      reply ? resp.value = SpawnGateway.pack(reply) : resp.noop = Spawn::Noop.new
      resp
    end
  end
end
