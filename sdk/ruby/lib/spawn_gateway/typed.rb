# frozen_string_literal: true

module SpawnGateway
  # The typed layer the generated code (protoc-gen-spawn lang=ruby) stands on.
  module Typed
    # A handler of a stateful actor: impl.method(state, input, ctx) -> reply.
    def self.stateful(impl, method, state_class, input_class)
      lambda do |ctx|
        impl.public_send(method, ctx.unpack_state(state_class), ctx.unpack_payload(input_class), ctx)
      end
    end

    # A handler of a stateless actor: impl.method(input, ctx) -> reply.
    def self.stateless(impl, method, input_class)
      ->(ctx) { impl.public_send(method, ctx.unpack_payload(input_class), ctx) }
    end

    # The message class of a full name, from the generated descriptor pool
    # (the x_pb.rb files protoc --ruby_out writes register them).
    def self.msgclass(full_name)
      d = Google::Protobuf::DescriptorPool.generated_pool.lookup(full_name)
      raise ArgumentError, "message #{full_name} is not loaded (require its _pb file)" unless d

      d.msgclass
    end

    def self.unimplemented(actor, action)
      Error.new(GRPC::Core::StatusCodes::UNIMPLEMENTED, "#{actor}.#{action} is not implemented")
    end

    # Calls one actor type's actions and decodes the replies.
    class ActorClient
      def initialize(client, system, actor, unnamed: false, pooled: false)
        @client = client
        @system = system
        @actor = actor
        @unnamed = unnamed
        @pooled = pooled
      end

      def call(action, msg, output_class, actor: nil, metadata: nil, deadline: :default)
        reply = @client.invoke(system: @system, actor: actor || @actor, action: action, payload: msg,
                               metadata: metadata, register_ref: @unnamed ? @actor : nil,
                               pooled: @pooled, deadline: deadline)
        SpawnGateway.unpack(reply, output_class, GRPC::Core::StatusCodes::INTERNAL, "reply")
      end
    end
  end
end
