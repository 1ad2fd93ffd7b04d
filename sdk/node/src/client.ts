/**
 * SpawnClient: calls spawn.gateway.v1.ActorGateway (Invoke, Spawn).
 */
import * as grpc from "@grpc/grpc-js";

import { AnyLike, AnyMsg, fromWireAny, toAny, toWireAny } from "./any.js";
import { SpawnError, StatusCode } from "./errors.js";
import { encode, protocol } from "./proto.js";
import { dialTarget, makeSecurity, type Security, type SecurityOptions } from "./security.js";
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
  /**
   * A W3C trace context to continue: a handler's Context (its
   * `traceContext()`) or `{traceparent, tracestate}`. Without it the
   * gateway starts a trace.
   */
  trace?: { traceContext(): { [k: string]: string } } | { traceparent?: string; tracestate?: string };
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

/**
 * TLS and token: tlsCa, tlsCert, tlsKey, tlsServerName and token (see
 * SecurityOptions; each falls back to SPAWN_TLS_CA, SPAWN_TLS_CERT,
 * SPAWN_TLS_KEY, SPAWN_TLS_SERVER_NAME, SPAWN_TOKEN; a CA given = TLS). A
 * failed handshake (a CA that did not sign the gateway, no client
 * certificate for an mTLS gateway) fails calls with UNAVAILABLE, or
 * DEADLINE_EXCEEDED while they wait.
 */
export interface SpawnClientOptions extends SecurityOptions {
  /** Default deadline of a call in ms (0 = none); default 30000. */
  deadlineMs?: number;
  /**
   * Fail a call at once with UNAVAILABLE while no connection to the gateway
   * can be made. Default false: a call with a deadline waits for the
   * gateway (wait-for-ready) up to its deadline, e.g. across a restart.
   * Only calls that were never sent wait, so no call the gateway may have
   * seen is sent twice. Calls without a deadline never wait.
   * Also: an UNAVAILABLE answer the gateway marks never dispatched (trailer
   * `spawn-retry: not-dispatched`: after a gateway restart no host has
   * registered the actor yet, or none of its hosts is connected) is retried
   * after 10 ms doubling to 100 ms (+-20%) until the deadline (5 s without
   * one) unless failFast is set.
   */
  failFast?: boolean;
  /** Delay before dialing again after a failed attempt (ms); default 20. */
  reconnectMinMs?: number;
  /**
   * Largest delay between attempts while the gateway stays down (ms);
   * default 50: a waiting call goes out at most about this long after the
   * gateway is back.
   */
  reconnectMaxMs?: number;
  /** Extra @grpc/grpc-js channel options (they override the above). */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * A client of the gateway's ActorGateway service. Failed calls reject with
 * SpawnError: the gRPC status code and the gateway's message (NOT_FOUND,
 * UNAVAILABLE, DEADLINE_EXCEEDED, a host's own code, ...).
 *
 * Gateway restarts: Node reads every socket, so a connection the gateway
 * closed is seen at once and the next call dials the new gateway; a call
 * made while the gateway is down waits for it (see `failFast`). A call in
 * flight when the gateway dies still fails UNAVAILABLE: whether it ran is
 * unknown, and only the caller can tell whether to repeat it.
 */
export class SpawnClient {
  readonly target: string;
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;
  private readonly failFast: boolean;
  private readonly security: Security;

  /**
   * @param target "HOST:PORT" or "unix:/path" of the gateway, a list of
   * gateways "10.0.0.1:8090,10.0.0.2:8090" or "dns:///NAME:PORT" (see
   * gatewayTarget; calls go round robin over every member reached)
   */
  constructor(target: string, options: SpawnClientOptions = {}) {
    if (!target) throw new TypeError("target is empty");
    const rmin = options.reconnectMinMs ?? 20;
    const rmax = options.reconnectMaxMs ?? Math.max(50, rmin);
    if (!(rmin > 0 && rmax >= rmin)) throw new RangeError("need 0 < reconnectMinMs <= reconnectMaxMs");
    protocol();
    this.target = target;
    this.deadlineMs = options.deadlineMs ?? 30000;
    this.failFast = !!options.failFast;
    this.security = makeSecurity(options);
    const dial = dialTarget(target, this.security);
    this.client = new grpc.Client(dial.target, this.security.credentials, {
      ...dial.channelOptions,
      "grpc.initial_reconnect_backoff_ms": Math.trunc(rmin),
      "grpc.max_reconnect_backoff_ms": Math.trunc(rmax),
      // Connections of its own: a client made just after the gateway died
      // never inherits another client's dead connection.
      "grpc.use_local_subchannel_pool": 1,
      ...(options.channelOptions ?? {}),
      ...this.security.channelOptions,
    });
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
      metadata: { ...traceOf(req.trace), ...(req.metadata ?? {}) },
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

  private async unary(method: string, body: Buffer, respType: { decode(b: Uint8Array): unknown }, deadlineMs?: number): Promise<unknown> {
    const ms = deadlineMs ?? this.deadlineMs;
    const bounded = ms > 0 && Number.isFinite(ms);
    const end = Date.now() + (bounded ? ms : RETRY_NO_DEADLINE_MS);
    // Only a call with a deadline waits: one without would wait for ever
    // for a gateway that is gone.
    const wait = bounded && !this.failFast;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.unaryOnce(method, body, respType, bounded ? new Date(end) : undefined, wait);
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        if (this.failFast) throw e.error;
        const delay = Math.min(RETRY_MIN_MS * 2 ** Math.min(attempt, 16), RETRY_MAX_MS) * (0.8 + 0.4 * Math.random());
        if (Date.now() + delay >= end) throw e.error;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** One attempt; rejects with RetryableError for an answer marked never dispatched. */
  private unaryOnce(method: string, body: Buffer, respType: { decode(b: Uint8Array): unknown }, deadline: Date | undefined, wait: boolean): Promise<unknown> {
    const options: grpc.CallOptions = {};
    if (deadline) options.deadline = deadline;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method,
        (b: Buffer) => b,
        (b: Buffer) => respType.decode(b),
        body,
        this.security.withToken(new grpc.Metadata({ waitForReady: wait })),
        options,
        (err: grpc.ServiceError | null, value?: unknown) => {
          if (!err) return resolve(value);
          let details = err.details ?? err.message;
          if (wait && err.code === grpc.status.DEADLINE_EXCEEDED && this.client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
            details = `${details || "deadline exceeded"} (no connection to the gateway at ${this.target})`;
          }
          const error = new SpawnError(err.code, details);
          reject(notDispatched(err) ? new RetryableError(error) : error);
        },
      );
    });
  }
}

/**
 * Retries of answers the gateway marks never dispatched (docs/protocol.md,
 * "Retryable answers"): 10 ms doubling to 100 ms, +-20%, until the call's
 * deadline; a call without a deadline retries this long.
 */
const RETRY_MIN_MS = 10;
const RETRY_MAX_MS = 100;
const RETRY_NO_DEADLINE_MS = 5000;

/** A failed attempt that may be sent again; `error` is what the caller gets otherwise. */
class RetryableError extends Error {
  constructor(readonly error: SpawnError) {
    super(error.message);
  }
}

/**
 * Whether err is UNAVAILABLE with the gateway's trailer
 * `spawn-retry: not-dispatched`: no host ever saw the call, so sending it
 * again cannot run it twice.
 */
function notDispatched(err: grpc.ServiceError): boolean {
  if (err.code !== grpc.status.UNAVAILABLE || !err.metadata) return false;
  return err.metadata.get("spawn-retry").some((v) => String(v) === "not-dispatched");
}

/** Spawn's RequestStatus inside an OK response can still report a failure. */
function checkStatus(st: RequestStatusMsg | null | undefined): void {
  if (!st) return;
  const S = protocol().Status.values;
  if (st.status === S["ACTOR_NOT_FOUND"]) throw new SpawnError(StatusCode.NOT_FOUND, st.message || "actor not found");
  if (st.status === S["ERROR"]) throw new SpawnError(StatusCode.UNKNOWN, st.message || "the gateway reported an error");
}

/** traceOf: the traceparent and tracestate of an InvokeRequest's `trace`. */
function traceOf(t: InvokeRequest["trace"]): { [k: string]: string } {
  if (!t) return {};
  const src: { traceparent?: string; tracestate?: string } =
    "traceContext" in t && typeof t.traceContext === "function" ? t.traceContext() : (t as object);
  const out: { [k: string]: string } = {};
  if (typeof src.traceparent === "string" && src.traceparent) out["traceparent"] = src.traceparent;
  if (typeof src.tracestate === "string" && src.tracestate) out["tracestate"] = src.tracestate;
  return out;
}
