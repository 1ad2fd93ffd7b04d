/**
 * SpawnClient: calls spawn.gateway.v1.ActorGateway (Invoke, Spawn).
 */
import * as grpc from "@grpc/grpc-js";

import { AnyLike, AnyMsg, fromWireAny, toAny, toWireAny } from "./any.js";
import { SpawnError, StatusCode } from "./errors.js";
import { encode, protocol } from "./proto.js";
import type { InvocationResponseMsg, RequestStatusMsg, SpawnResponseMsg } from "./types.js";

export const INVOKE_METHOD = "/spawn.gateway.v1.ActorGateway/Invoke";
export const SPAWN_METHOD = "/spawn.gateway.v1.ActorGateway/Spawn";

export interface InvokeRequest {
  system: string;
  /** The actor's name (for an UNNAMED actor: the instance's name). */
  actor: string;
  action: string;
  /** The payload (an Any or a protobufjs message); absent sends Noop. */
  payload?: AnyLike | null;
  /** Accepted and answered at once; the reply is undefined. */
  async?: boolean;
  /** Metadata (headers) handed to the action. */
  metadata?: { [k: string]: string };
  /** The UNNAMED template to instantiate `actor` from on first use. */
  registerRef?: string;
  pooled?: boolean;
  /** Run at this Unix epoch time in ms (0 = now). */
  scheduledToMs?: number;
  /** How long to wait, in ms; default: the client's (30000); 0 = forever. */
  deadlineMs?: number;
}

export interface SpawnActorsRequest {
  system: string;
  /** Instances to create: `name` from the UNNAMED template `parent`. */
  actors: Array<{ name: string; parent: string }>;
  deadlineMs?: number;
}

export interface SpawnClientOptions {
  /** Default deadline of a call in ms (0 = none); default 30000. */
  deadlineMs?: number;
  /** Extra @grpc/grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * A client of the gateway's ActorGateway service. Failed calls reject with
 * SpawnError: the gRPC status code and the gateway's message (NOT_FOUND,
 * UNAVAILABLE, DEADLINE_EXCEEDED, a host's own code, ...).
 */
export class SpawnClient {
  readonly target: string;
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;

  /** @param target "HOST:PORT" or "unix:/path" of the gateway */
  constructor(target: string, options: SpawnClientOptions = {}) {
    if (!target) throw new TypeError("target is empty");
    protocol();
    this.target = target;
    this.deadlineMs = options.deadlineMs ?? 30000;
    this.client = new grpc.Client(target, grpc.credentials.createInsecure(), { ...(options.channelOptions ?? {}) });
  }

  /**
   * Invoke `system / actor / action`. Resolves with the reply (an Any), or
   * undefined when the action answered Noop (and for async calls).
   */
  async invoke(req: InvokeRequest): Promise<AnyMsg | undefined> {
    const p = protocol();
    if (!req || !req.system || !req.actor || !req.action) {
      throw new SpawnError(StatusCode.INVALID_ARGUMENT, "system, actor and action are required");
    }
    let payload: AnyMsg | undefined;
    if (req.payload !== undefined && req.payload !== null) {
      try {
        payload = toAny(req.payload, "payload");
      } catch (e) {
        throw new SpawnError(StatusCode.INVALID_ARGUMENT, e instanceof Error ? e.message : String(e));
      }
    }
    const id: { [k: string]: string } = { name: req.actor, system: req.system };
    const msg: { [k: string]: unknown } = {
      system: { name: req.system },
      actor: { id },
      actionName: req.action,
      async: !!req.async,
      pooled: !!req.pooled,
      scheduledTo: Math.trunc(req.scheduledToMs ?? 0),
      metadata: { ...(req.metadata ?? {}) },
    };
    if (req.registerRef) {
      id["parent"] = req.registerRef;
      msg["registerRef"] = req.registerRef;
    }
    if (payload) msg["value"] = toWireAny(payload);
    else msg["noop"] = {};
    const resp = (await this.unary(INVOKE_METHOD, encode(p.InvocationRequest, msg), p.InvocationResponse, req.deadlineMs)) as InvocationResponseMsg;
    checkStatus(resp.status);
    return fromWireAny(resp.value);
  }

  /** Create instances of UNNAMED actors (ActorGateway.Spawn). */
  async spawn(req: SpawnActorsRequest): Promise<void> {
    const p = protocol();
    if (!req || !req.system || !Array.isArray(req.actors) || req.actors.length === 0) {
      throw new SpawnError(StatusCode.INVALID_ARGUMENT, "system and at least one actor are required");
    }
    for (const a of req.actors) {
      if (!a || !a.name || !a.parent) {
        throw new SpawnError(StatusCode.INVALID_ARGUMENT, "every actor needs a name and a parent");
      }
    }
    const msg = { actors: req.actors.map((a) => ({ name: a.name, system: req.system, parent: a.parent })) };
    const resp = (await this.unary(SPAWN_METHOD, encode(p.SpawnRequest, msg), p.SpawnResponse, req.deadlineMs)) as SpawnResponseMsg;
    checkStatus(resp.status);
  }

  /** Close the channel; calls in flight fail with CANCELLED. */
  close(): void {
    this.client.close();
  }

  private unary(method: string, body: Buffer, respType: { decode(b: Uint8Array): unknown }, deadlineMs?: number): Promise<unknown> {
    const ms = deadlineMs ?? this.deadlineMs;
    const options: grpc.CallOptions = {};
    if (ms > 0 && Number.isFinite(ms)) options.deadline = new Date(Date.now() + ms);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method,
        (b: Buffer) => b,
        (b: Buffer) => respType.decode(b),
        body,
        new grpc.Metadata(),
        options,
        (err: grpc.ServiceError | null, value?: unknown) => {
          if (err) reject(new SpawnError(err.code, err.details ?? err.message));
          else resolve(value);
        },
      );
    });
  }
}

/** Spawn's RequestStatus inside an OK response can still report a failure. */
function checkStatus(st: RequestStatusMsg | null | undefined): void {
  if (!st) return;
  const S = protocol().Status.values;
  if (st.status === S["ACTOR_NOT_FOUND"]) throw new SpawnError(StatusCode.NOT_FOUND, st.message || "actor not found");
  if (st.status === S["ERROR"]) throw new SpawnError(StatusCode.UNKNOWN, st.message || "the gateway reported an error");
}
