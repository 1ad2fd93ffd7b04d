/**
 * The shapes of the protocol messages this runtime reads and writes, as
 * protobufjs represents them (camel-case field names; absent message fields
 * are null or undefined; 64-bit integers are Long objects once decoded;
 * google.protobuf.Any keeps its field name `type_url`).
 * Only the fields the runtime touches are listed.
 */
import type { WireAny } from "./any.js";
import type { Int64 } from "./proto.js";

/** spawn.actors.ActorId */
export interface ActorId {
  name: string;
  system: string;
  /** The template's name, for instances of UNNAMED actors. */
  parent: string;
}

/** spawn.Context */
export interface ContextMsg {
  state?: WireAny | null;
  metadata?: { [k: string]: string };
  tags?: { [k: string]: string };
  caller?: ActorId | null;
  self?: ActorId | null;
}

/** spawn.ActorInvocation */
export interface ActorInvocationMsg {
  actor?: ActorId | null;
  actionName: string;
  currentContext?: ContextMsg | null;
  value?: WireAny | null;
  noop?: object | null;
  caller?: ActorId | null;
}

/** spawn.gateway.v1.InvocationTask */
export interface InvocationTaskMsg {
  requestId: Int64;
  invocation?: ActorInvocationMsg | null;
  deadlineUnixMs: Int64;
}

/** spawn.RequestStatus */
export interface RequestStatusMsg {
  status: number;
  message: string;
}

/** spawn.ProxyInfo */
export interface ProxyInfo {
  protocolMajorVersion: number;
  protocolMinorVersion: number;
  proxyName: string;
  proxyVersion: string;
}

/** spawn.RegistrationResponse */
export interface RegistrationResponseMsg {
  status?: RequestStatusMsg | null;
  proxyInfo?: ProxyInfo | null;
}

/** spawn.gateway.v1.GatewayMessage */
export interface GatewayMessageMsg {
  registration?: RegistrationResponseMsg | null;
  invocation?: InvocationTaskMsg | null;
  tasks?: { tasks?: InvocationTaskMsg[] | null } | null;
}

/** spawn.InvocationResponse */
export interface InvocationResponseMsg {
  status?: RequestStatusMsg | null;
  value?: WireAny | null;
  noop?: object | null;
}

/** spawn.SpawnResponse */
export interface SpawnResponseMsg {
  status?: RequestStatusMsg | null;
}
