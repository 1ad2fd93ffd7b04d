# frozen_string_literal: true

# spawn_gateway: the Ruby runtime of the spawn gateway, on Debian's
# ruby-grpc and ruby-google-protobuf. An actor host (SpawnGateway::Host:
# connect, register, run actions, reconnect; the batched host link) and a
# client (SpawnGateway::Client: invoke, spawn, with the gateway's
# not-dispatched retries), with TLS, mutual TLS and bearer tokens.
# docs/sdk/ruby.md is the guide, docs/protocol.md ("Writing a host") the
# wire protocol. The protocol's modules come from sdk/ruby/gen.sh: put its
# output folder and this one on the load path.
require "grpc"
require "google/protobuf/any_pb"
require "spawn/actors/actor_pb"
require "spawn/actors/protocol_pb"
require "spawn/gateway/v1/gateway_pb"

module SpawnGateway
  VERSION = "0.1.0"
  LIBRARY_NAME = "spawn-gateway-ruby-sdk"

  CODE_NAMES = %w[OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND
                  ALREADY_EXISTS PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION
                  ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS
                  UNAUTHENTICATED].freeze

  # A failed call or action: a gRPC status code and a message. Raise it in a
  # handler to fail the invocation with that code; a client's calls raise it.
  class Error < StandardError
    attr_reader :code, :details

    def initialize(code, details)
      @code = code
      @details = details.to_s
      super("#{SpawnGateway.code_name(code)}: #{@details}")
    end
  end

  # A TLS setting that cannot be used.
  class ConfigError < StandardError; end

  def self.code_name(code)
    CODE_NAMES[code] || "CODE(#{code})"
  end

  # The message name of a type URL (after the last '/').
  def self.type_name(url)
    url.to_s.split("/").last.to_s
  end

  # Packs msg into a Google::Protobuf::Any (an Any is taken as it is).
  def self.pack(msg)
    return msg if msg.is_a?(Google::Protobuf::Any)

    Google::Protobuf::Any.new(type_url: "type.googleapis.com/#{msg.class.descriptor.name}",
                              value: msg.class.encode(msg))
  end

  # Decodes any (nil or empty: klass's defaults) as klass; another type
  # raises Error(code).
  def self.unpack(any, klass, code = GRPC::Core::StatusCodes::INVALID_ARGUMENT, what = "payload")
    return klass.new if any.nil? || (any.type_url.empty? && any.value.empty?)

    want = klass.descriptor.name
    raise Error.new(code, "#{what}: expected #{want}, got #{any.type_url}") if type_name(any.type_url) != want

    klass.decode(any.value)
  rescue Google::Protobuf::ParseError => e
    raise Error.new(code, "#{what}: cannot decode #{want}: #{e.message}")
  end

  # Security: what a host or client dials with. Each option left nil falls
  # back to SPAWN_TLS_CA, SPAWN_TLS_CERT, SPAWN_TLS_KEY,
  # SPAWN_TLS_SERVER_NAME, SPAWN_TOKEN. A CA makes the channel TLS, a
  # certificate and key mutual TLS; the token goes as `authorization: Bearer`.
  class Security
    attr_reader :credentials, :channel_args, :metadata

    def initialize(tls_ca: nil, tls_cert: nil, tls_key: nil, tls_server_name: nil, token: nil)
      ca = pick(tls_ca, "SPAWN_TLS_CA")
      cert = pick(tls_cert, "SPAWN_TLS_CERT")
      key = pick(tls_key, "SPAWN_TLS_KEY")
      name = pick(tls_server_name, "SPAWN_TLS_SERVER_NAME")
      token = pick(token, "SPAWN_TOKEN")
      raise ConfigError, "the bearer token holds characters outside printable ASCII" if token && token !~ /\A[\x20-\x7e]+\z/
      raise ConfigError, "a TLS client certificate needs its key and a key its certificate" if cert.nil? != key.nil?
      raise ConfigError, "a TLS client certificate or server name needs the gateway's CA" if (cert || name) && ca.nil?

      @channel_args = { "grpc.service_config" => '{"loadBalancingConfig":[{"round_robin":{}}]}' }
      @channel_args[GRPC::Core::Channel::SSL_TARGET] = name if name
      @credentials = if ca
                       GRPC::Core::ChannelCredentials.new(read_pem("CA", ca), key && read_pem("key", key),
                                                          cert && read_pem("certificate", cert))
                     else
                       :this_channel_is_insecure
                     end
      @metadata = token ? { "authorization" => "Bearer #{token}" } : {}
    end

    private

    def pick(v, env)
      v = ENV[env] if v.nil?
      v.nil? || v.empty? ? nil : v
    end

    def read_pem(what, path)
      data = File.binread(path)
      raise ConfigError, "cannot read the TLS #{what} file #{path}: no PEM block in it" unless data.include?("-----BEGIN ")

      data
    rescue SystemCallError => e
      raise ConfigError, "cannot read the TLS #{what} file #{path}: #{e.message}"
    end
  end
end

require "spawn_gateway/client"
require "spawn_gateway/host"
require "spawn_gateway/typed"
