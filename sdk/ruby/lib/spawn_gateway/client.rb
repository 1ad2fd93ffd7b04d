# frozen_string_literal: true

module SpawnGateway
  # Client of the gateway's ActorGateway service (Invoke, Spawn). Failed
  # calls raise Error with the gateway's code and message. Safe to share
  # between threads.
  class Client
    INVOKE = "/spawn.gateway.v1.ActorGateway/Invoke"
    SPAWN = "/spawn.gateway.v1.ActorGateway/Spawn"
    RETRY_MIN = 0.010
    RETRY_MAX = 0.100
    RETRY_NO_DEADLINE = 5.0

    # target: "HOST:PORT", "unix:/path", "dns:///NAME:PORT", or a list
    # "ipv4:10.0.0.1:8090,10.0.0.2:8090". deadline: seconds of a call (nil:
    # none). fail_fast: no retry of answers marked not-dispatched.
    def initialize(target, deadline: 30, fail_fast: false, **security)
      raise ArgumentError, "the gateway target is empty" if target.to_s.empty?

      @sec = Security.new(**security)
      @deadline = deadline
      @fail_fast = fail_fast
      @target = target
      @stub = GRPC::ClientStub.new(target, @sec.credentials, channel_args: @sec.channel_args)
    end

    def close
      @stub.instance_variable_get(:@ch)&.close
    end

    # Invokes system/actor/action; returns the reply (a Google::Protobuf::Any)
    # or nil (Noop, async).
    def invoke(system:, actor:, action:, payload: nil, metadata: nil, async: false,
               register_ref: nil, pooled: false, scheduled_to_ms: 0, deadline: :default)
      if [system, actor, action].any? { |s| s.to_s.empty? }
        raise Error.new(GRPC::Core::StatusCodes::INVALID_ARGUMENT, "system, actor and action are required")
      end

      req = Spawn::InvocationRequest.new(
        system: Spawn::Actors::ActorSystem.new(name: system),
        actor: Spawn::Actors::Actor.new(id: Spawn::Actors::ActorId.new(name: actor, system: system,
                                                                       parent: register_ref.to_s)),
        action_name: action, async: async, pooled: pooled, register_ref: register_ref.to_s,
        scheduled_to: scheduled_to_ms.to_i, metadata: (metadata || {}).transform_values(&:to_s)
      )
      if payload
        req.value = SpawnGateway.pack(payload)
      else
        req.noop = Spawn::Noop.new
      end
      resp = unary(INVOKE, req, Spawn::InvocationResponse, deadline)
      check_status(resp.status)
      resp.payload == :value ? resp.value : nil
    end

    # Creates instances `names` of the UNNAMED template parent.
    def spawn(system:, parent:, names:, deadline: :default)
      req = Spawn::SpawnRequest.new(actors: names.map { |n| Spawn::Actors::ActorId.new(name: n, system: system, parent: parent) })
      check_status(unary(SPAWN, req, Spawn::SpawnResponse, deadline).status)
      nil
    end

    private

    def unary(method, req, klass, deadline)
      secs = deadline == :default ? @deadline : deadline
      stop = Time.now + (secs || RETRY_NO_DEADLINE)
      body = req.class.encode(req)
      attempt = 0
      begin
        @stub.request_response(method, body, ->(b) { b }, ->(b) { klass.decode(b) },
                               deadline: secs ? stop : nil, metadata: @sec.metadata)
      rescue GRPC::BadStatus => e
        err = Error.new(e.code, e.details)
        retryable = e.code == GRPC::Core::StatusCodes::UNAVAILABLE && !@fail_fast &&
                    Array(e.metadata && e.metadata["spawn-retry"]).include?("not-dispatched")
        raise err unless retryable

        delay = [RETRY_MIN * (2**[attempt, 16].min), RETRY_MAX].min * (0.8 + 0.4 * rand)
        raise err if Time.now + delay >= stop

        sleep(delay) # the retry backoff of docs/protocol.md, "Retryable answers"
        attempt += 1
        retry
      end
    end

    def check_status(st)
      return if st.nil?

      case st.status
      when :ACTOR_NOT_FOUND
        raise Error.new(GRPC::Core::StatusCodes::NOT_FOUND, st.message.empty? ? "actor not found" : st.message)
      when :ERROR
        raise Error.new(GRPC::Core::StatusCodes::UNKNOWN, st.message.empty? ? "the gateway reported an error" : st.message)
      end
    end
  end
end
