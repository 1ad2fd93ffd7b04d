/**
 * @spawn-gateway/sdk - the TypeScript runtime for spawn-gateway actor hosts
 * and clients.
 */
export { StatusCode, ActorError, SpawnError, statusName } from "./errors.js";
export type { StatusCodeName } from "./errors.js";
export {
  TYPE_URL_PREFIX,
  pack,
  unpack,
  unpackObject,
  anyIs,
  isAny,
  toAny,
  typeNameOf,
  typeUrlOf,
  typeNameOfUrl,
  fromWireAny,
  toWireAny,
} from "./any.js";
export type { WireAny, AnyMsg, AnyLike, MessageType, TypedMessageType } from "./any.js";
export { findProtoDir, loadProtos, protocol, toNumber, toDecimal } from "./proto.js";
export type { Protocol, Int64 } from "./proto.js";
export { ActorHost, InvocationContext, CONNECT_METHOD, VERSION, LIBRARY_NAME, DEFAULT_CHANNEL_ACTION } from "./host.js";
export type {
  ActorDefinition,
  ActorHostOptions,
  ChannelSpec,
  Handler,
  HandlerResult,
  KindName,
  Logger,
  SideEffectOptions,
} from "./host.js";
export { SpawnClient, INVOKE_METHOD, SPAWN_METHOD } from "./client.js";
export { TLSConfigError, makeSecurity, gatewayTarget } from "./security.js";
export type { Security, SecurityOptions, GatewayTarget } from "./security.js";
export type { InvokeRequest, SpawnActorsRequest, SpawnClientOptions } from "./client.js";
export type { ActorId, ProxyInfo, ActorInvocationMsg, InvocationTaskMsg } from "./types.js";
export {
  MessageCodec,
  TypeSet,
  typedCall,
  stateAction,
  statelessAction,
  typedActor,
  ActorClient,
  contractActor,
  registerActor,
} from "./typed.js";
export type {
  DeepPartial,
  TypeEntry,
  CallOptions,
  CallTarget,
  StateResult,
  ActionResult,
  ReplyResult,
  TypedAction,
  TypedActorDefinition,
  ActorContract,
  ContractAction,
  ClientContract,
  ContractExtras,
} from "./typed.js";
