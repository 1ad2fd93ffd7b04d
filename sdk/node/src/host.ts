/**
 * ActorHost: an actor host for the spawn gateway.
 *
 * The host dials the gateway on the bidi stream
 * `/spawn.gateway.v1.HostGateway/Connect`, registers its actor system, then
 * runs the InvocationTasks the gateway sends and answers each with an
 * InvocationResult carrying the same request id - in any order, many in
 * flight. Whenever the stream ends it reconnects with exponential backoff
 * and jitter and registers again.
 */
import { EventEmitter, setMaxListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";

import { AnyLike, AnyMsg, MessageType, TypedMessageType, fromWireAny, toAny, toWireAny, typeNameOf, unpack } from "./any.js";
import { ActorError, StatusCode, statusName } from "./errors.js";
import { encode, protocol, toDecimal, toNumber } from "./proto.js";
import type { ActorId, ActorInvocationMsg, GatewayMessageMsg, InvocationTaskMsg, ProxyInfo } from "./types.js";
import { dialTarget, makeSecurity, type Security, type SecurityOptions } from "./security.js";

/** The host stream's full method name. */
export const CONNECT_METHOD = "/spawn.gateway.v1.HostGateway/Connect";
/** This runtime's version, sent in the registration's ServiceInfo. */
export const VERSION = "0.1.0";
/** The support library name sent in the registration's ServiceInfo. */
export const LIBRARY_NAME = "spawn-gateway-node-sdk";

/** spawn.actors.Kind names. */
export type KindName = "UNKNOW_KIND" | "NAMED" | "UNNAMED" | "POOLED" | "PROXY" | "TASK" | "PROJECTION";

/** What a handler returns; every field is optional. */
export interface HandlerResult {
  /** The new state (an Any, or a protobufjs message); absent keeps the state. */
  state?: AnyLike | null;
  /** The reply (an Any, or a protobufjs message); absent answers Noop. */
  reply?: AnyLike | null;
  /** Save the state durably before the caller is answered. */
  checkpoint?: boolean;
}

/** The action a channel subscription delivers to when it names none (Spawn's default). */
export const DEFAULT_CHANNEL_ACTION = "receive";

/** A broadcast subscription: a topic, or a topic with the action it delivers to. */
export type ChannelSpec = string | { topic: string; action?: string };

/** Where a side effect goes besides actor and action (see InvocationContext.sideEffect). */
export interface SideEffectOptions {
  /** The target's actor system; default: this actor's. Any system of the gateway may be named. */
  system?: string;
  /** The UNNAMED template to instantiate `actor` from on first use. */
  registerRef?: string;
  /** Metadata (headers) handed to the target. */
  metadata?: { [k: string]: string };
  /** The target is POOLED. */
  pooled?: boolean;
  /**
   * Fire at this Unix time in ms (still ahead): the gateway stores the effect
   * durably and fires it then, even across a restart of the gateway. 0: now.
   */
  scheduledToMs?: number;
}

/** An action handler. May be async. Throw ActorError to fail with a code. */
export type Handler = (ctx: InvocationContext) => HandlerResult | void | Promise<HandlerResult | void>;

/** An actor this host serves. */
export interface ActorDefinition {
  /** The actor's name (for UNNAMED actors: the template's name). */
  name: string;
  /** Action name -> handler. */
  actions: { [action: string]: Handler };
  /** spawn.actors.Kind name or number; default NAMED. */
  kind?: KindName | number;
  /** Whether the gateway keeps and persists a state; default true. */
  stateful?: boolean;
  /** The state's message type, or its full name ("pkg.State"). */
  stateType?: string | MessageType;
  /** Snapshot interval in ms (absent: the gateway's default). */
  snapshotMs?: number;
  /** Idle time before deactivation in ms (absent: the gateway's default). */
  deactivateMs?: number;
  /**
   * Action name -> period in ms (FixedTimerAction): while the actor is
   * active the gateway runs that action every period with its state. The
   * wire field is named `seconds` but holds milliseconds, as in Spawn.
   */
  timers?: { [action: string]: number };
  minPoolSize?: number;
  maxPoolSize?: number;
  /**
   * Broadcast subscriptions (Metadata.channel_group): each a topic
   * (delivered to the action "receive") or {topic, action}. The action must
   * be one of `actions`. Inactive subscribers are activated by a broadcast.
   */
  channels?: ChannelSpec[];
}

/** Where the host logs. Every method is optional. */
export interface Logger {
  debug?(msg: string): void;
  info?(msg: string): void;
  warn?(msg: string): void;
  error?(msg: string): void;
}

/**
 * TLS and token: tlsCa, tlsCert, tlsKey, tlsServerName and token (see
 * SecurityOptions; each falls back to SPAWN_TLS_CA, SPAWN_TLS_CERT,
 * SPAWN_TLS_KEY, SPAWN_TLS_SERVER_NAME, SPAWN_TOKEN; a CA given = TLS).
 */
export interface ActorHostOptions extends SecurityOptions {
  /** ServiceInfo.service_name; default: the system's name. */
  serviceName?: string;
  /** First reconnect delay (ms), also used after a registered session; default 15. */
  minBackoffMs?: number;
  /** Longest reconnect delay (ms); default 2000. */
  maxBackoffMs?: number;
  /** How long to wait for the gateway's registration answer (ms); default 10000. */
  registrationTimeoutMs?: number;
  /** Extra @grpc/grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * The gateway's message size limit (its --max-message-bytes; default 4 MiB). A result over it
   * fails that one call with RESOURCE_EXHAUSTED instead of costing the whole stream. When set, also
   * the channel's send and receive limits.
   */
  maxMessageBytes?: number;
  /** Where to log; null for silence. Default: warnings and errors on stderr
   * (level from $SPAWN_NODE_LOG: debug, info, warn, error, silent). */
  logger?: Logger | null;
  /** Called after each successful registration. */
  onRegistered?: (host: ActorHost) => void;
}

/** The gateway's default --max-message-bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 << 20;

const LEVELS = ["debug", "info", "warn", "error"] as const;

function defaultLogger(): Logger {
  const want = (process.env["SPAWN_NODE_LOG"] || "warn").toLowerCase();
  const min = want === "silent" ? LEVELS.length : Math.max(0, LEVELS.indexOf(want as (typeof LEVELS)[number]));
  const out: Logger = {};
  LEVELS.forEach((lvl, i) => {
    if (i >= min) out[lvl] = (m: string) => console.error(`spawn-host ${lvl}: ${m}`);
  });
  return out;
}

interface ActorEntry {
  name: string;
  actions: Map<string, Handler>;
  kind: number;
  stateful: boolean;
  stateType: string;
  snapshotMs: number | undefined;
  deactivateMs: number | undefined;
  timers: Array<[string, number]>;
  minPoolSize: number;
  maxPoolSize: number;
  channels: Array<{ topic: string; action: string }>;
}

function nonEmpty(x: unknown, what: string): string {
  if (typeof x !== "string" || x === "") throw new TypeError(`${what} must be a non-empty string`);
  return x;
}

/**
 * What a handler knows about the invocation it runs.
 *
 * The workflow methods (pipe, forward, sideEffect, broadcast) tell the
 * gateway what to do after this turn; all of it is dropped when the handler
 * fails. Every invocation a workflow makes has this actor as its caller and
 * one hop more than this invocation; the gateway cuts chains past its hop
 * limit (16) with INVALID_ARGUMENT, so a pipe cycle ends with an error for
 * the original caller.
 */
export class InvocationContext {
  /** The task's request id (a uint64, as a decimal string). */
  readonly requestId: string;
  /** When the caller stops waiting, in Unix epoch ms; 0 = no deadline. */
  readonly deadlineUnixMs: number;
  /** The actor instance invoked (name, system, parent for instances). */
  readonly actorId: ActorId;
  readonly actorName: string;
  readonly system: string;
  readonly action: string;
  /** The actor's current state; undefined when it has none (or is stateless). */
  readonly state: AnyMsg | undefined;
  /** The invocation's payload; undefined for a Noop payload. */
  readonly payload: AnyMsg | undefined;
  readonly caller: ActorId | undefined;
  /** The invocation's metadata (headers). */
  readonly metadata: { [k: string]: string };
  /**
   * The actor's tags; edit them and they go back with the state and are
   * stored with it. (The gateway keeps the stored tags when a turn hands
   * back none, so emptying them does not reach the store.)
   */
  tags: { [k: string]: string };
  /** The raw spawn.ActorInvocation. */
  readonly invocation: ActorInvocationMsg;
  readonly host: ActorHost;

  private readonly streamSignal: AbortSignal;
  private ac: AbortController | undefined;
  private cleanups: Array<() => void> = [];
  private route: { how: "pipe" | "forward"; actor: string; action: string } | undefined;
  private readonly effects: object[] = [];
  private bcast: { channel: string; value: AnyMsg | undefined } | undefined;

  constructor(task: InvocationTaskMsg, host: ActorHost, streamSignal: AbortSignal) {
    const inv = task.invocation as ActorInvocationMsg;
    const id = inv.actor ?? { name: "", system: "", parent: "" };
    const cur = inv.currentContext;
    this.requestId = toDecimal(task.requestId);
    this.deadlineUnixMs = toNumber(task.deadlineUnixMs);
    this.actorId = id;
    this.actorName = id.name;
    this.system = id.system || host.system;
    this.action = inv.actionName;
    this.state = fromWireAny(cur?.state);
    this.payload = fromWireAny(inv.value);
    this.caller = inv.caller ?? undefined;
    this.metadata = { ...(cur?.metadata ?? {}) };
    this.tags = { ...(cur?.tags ?? {}) };
    this.streamSignal = streamSignal;
    this.invocation = inv;
    this.host = host;
  }

  /**
   * Aborted when the deadline passes, the stream to the gateway ends or the
   * host stops (the result can no longer be delivered). Made on first use.
   */
  get signal(): AbortSignal {
    if (!this.ac) {
      const ac = new AbortController();
      this.ac = ac;
      const stream = this.streamSignal;
      if (stream.aborted) {
        ac.abort(stream.reason);
      } else {
        const onAbort = (): void => ac.abort(stream.reason);
        stream.addEventListener("abort", onAbort, { once: true });
        this.cleanups.push(() => stream.removeEventListener("abort", onAbort));
        if (this.deadlineUnixMs > 0) {
          const t = setTimeout(
            () => ac.abort(new ActorError(StatusCode.DEADLINE_EXCEEDED, "the invocation's deadline passed")),
            Math.max(0, this.deadlineUnixMs - Date.now()),
          );
          t.unref();
          this.cleanups.push(() => clearTimeout(t));
        }
      }
    }
    return this.ac.signal;
  }

  /** @internal Called by the host once the handler has settled. */
  _dispose(): void {
    for (const f of this.cleanups) f();
    this.cleanups = [];
  }

  // ---- trace context (W3C, docs/observability.md) --------------------------

  /**
   * This turn's W3C `traceparent` (the gateway hands every turn one, naming
   * its host-turn span as the parent), or undefined from a gateway that
   * does not trace.
   */
  get traceparent(): string | undefined {
    return this.metadata["traceparent"];
  }

  /** The 32 hex digits of this turn's trace id, or undefined. */
  get traceId(): string | undefined {
    const p = this.traceparent?.split("-");
    return p && p.length >= 4 ? p[1] : undefined;
  }

  /**
   * `{traceparent, tracestate}` (those present), to pass the trace on in a
   * client call made from the handler: `client.invoke({..., trace: ctx})`
   * does it. Side effects carry it on their own.
   */
  traceContext(): { [k: string]: string } {
    const out: { [k: string]: string } = {};
    for (const k of ["traceparent", "tracestate"]) {
      const v = this.metadata[k];
      if (v !== undefined) out[k] = v;
    }
    return out;
  }

  // ---- workflow ----------------------------------------------------------

  /**
   * After this turn, send the handler's reply as input to `actor`'s
   * `action` in this system; the caller receives that action's reply
   * instead. Replaces an earlier pipe or forward of this turn.
   */
  pipe(actor: string, action: string): void {
    this.route = { how: "pipe", actor: nonEmpty(actor, "actor"), action: nonEmpty(action, "action") };
  }

  /**
   * After this turn, send this invocation's own input to `actor`'s
   * `action` in this system; the caller receives that action's reply.
   * Replaces an earlier pipe or forward of this turn.
   */
  forward(actor: string, action: string): void {
    this.route = { how: "forward", actor: nonEmpty(actor, "actor"), action: nonEmpty(action, "action") };
  }

  /**
   * Fire `actor`.`action` with `payload` (an Any, a protobufjs message, or
   * nothing) after this turn, after its state is saved for a checkpointed
   * turn. Fire and forget: it never delays the reply; the gateway retries
   * failures with backoff and logs them. Several calls fire several
   * effects, in order. Throws TypeError on a missing actor or action or a
   * payload that is not a message.
   */
  sideEffect(actor: string, action: string, payload?: AnyLike | null, options: SideEffectOptions = {}): void {
    const system = nonEmpty(options.system || this.system, "system");
    const id: { [k: string]: unknown } = { name: nonEmpty(actor, "actor"), system };
    const req: { [k: string]: unknown } = {
      system: { name: system },
      actor: { id },
      actionName: nonEmpty(action, "action"),
      async: true,
      pooled: !!options.pooled,
    };
    if (options.registerRef) {
      req["registerRef"] = options.registerRef;
      id["parent"] = options.registerRef;
    }
    if (payload !== undefined && payload !== null) req["value"] = toWireAny(toAny(payload, "side effect payload"));
    else req["noop"] = {};
    // The effect continues this turn's trace unless its own metadata
    // names another.
    const md: { [k: string]: string } = this.traceContext();
    for (const [k, v] of Object.entries(options.metadata ?? {})) md[k] = String(v);
    if (Object.keys(md).length) req["metadata"] = md;
    if (options.scheduledToMs !== undefined) {
      const at = Math.trunc(options.scheduledToMs);
      if (!(at >= 0)) throw new TypeError("scheduledToMs must be a Unix time in ms (or 0)");
      req["scheduledTo"] = at;
    }
    this.effects.push({ request: req });
  }

  /**
   * After this turn, send `payload` (an Any, a protobufjs message, or
   * nothing) to every actor of this system subscribed to `channel`; each
   * gets one fire-and-forget invocation of its channel's action, inactive
   * ones are activated. No subscribers: nothing happens. One broadcast per
   * turn: a later call replaces an earlier one.
   */
  broadcast(channel: string, payload?: AnyLike | null): void {
    const ch = nonEmpty(channel, "channel");
    this.bcast = { channel: ch, value: payload === undefined || payload === null ? undefined : toAny(payload, "broadcast payload") };
  }

  /** @internal The spawn.Workflow asked for (a plain object), if any. */
  _workflow(): object | undefined {
    if (!this.route && this.effects.length === 0 && !this.bcast) return undefined;
    const wf: { [k: string]: unknown } = { effects: this.effects };
    if (this.route) wf[this.route.how] = { actor: this.route.actor, actionName: this.route.action };
    if (this.bcast) {
      const b: { [k: string]: unknown } = { channelGroup: this.bcast.channel };
      if (this.bcast.value) b["value"] = toWireAny(this.bcast.value);
      else b["noop"] = {};
      wf["broadcast"] = b;
    }
    return wf;
  }

  /** The state decoded as `type` (its defaults when there is none). */
  unpackState<T>(type: TypedMessageType<T>): T;
  unpackState<T = any>(type: MessageType): T;
  unpackState(type: MessageType): unknown {
    return unpack(this.state, type);
  }

  /** The payload decoded as `type` (its defaults for a Noop payload). */
  unpackPayload<T>(type: TypedMessageType<T>): T;
  unpackPayload<T = any>(type: MessageType): T;
  unpackPayload(type: MessageType): unknown {
    return unpack(this.payload, type);
  }
}

type HostCall = grpc.ClientDuplexStream<object, GatewayMessageMsg>;

/**
 * The batched host link (docs/protocol.md "Batched host link"): every stream
 * asks for batches with this request metadata entry; a gateway that grants
 * them answers with the same entry in its initial metadata.
 */
export const LINK_MD_KEY = "spawn-link";
export const LINK_MD_BATCH = "batch";
/** Bounds of one ResultBatch. */
export const BATCH_MAX = 128;
export const BATCH_BYTES = 256 << 10;

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * joinResults joins serialized HostMessages that each hold one result into
 * one HostMessage carrying a ResultBatch, without re-encoding the results
 * (gateway.proto: `result` is field 2, `results` field 3, ResultBatch.results
 * field 1, all length-delimited: each `0x12 len bytes` becomes the item
 * `0x0a len bytes`).
 */
export function joinResults(msgs: Buffer[]): Buffer {
  let total = 0;
  for (const m of msgs) total += m.length;
  const hdr = Buffer.concat([Buffer.from([0x1a]), varint(total)]);
  const out = Buffer.allocUnsafe(hdr.length + total);
  hdr.copy(out, 0);
  let off = hdr.length;
  for (const m of msgs) {
    m.copy(out, off);
    out[off] = 0x0a;
    off += m.length;
  }
  return out;
}

/**
 * One Connect stream. Results wait in `queue` while a write is in flight
 * (one at a time); when it completes, what queued meanwhile leaves as one
 * ResultBatch if the gateway granted batches (`batch`), up to BATCH_MAX
 * results or BATCH_BYTES bytes, else one by one. A result alone leaves as
 * itself: nothing waits for a batch to fill.
 */
class Session {
  closed = false;
  batch = false;
  private writing = false;
  private queue: Buffer[] = [];
  readonly abort = new AbortController();

  constructor(
    readonly client: grpc.Client,
    readonly call: HostCall,
    /** A batch's byte bound: BATCH_BYTES within the message limit. */
    private readonly maxBytes = BATCH_BYTES,
  ) {
    setMaxListeners(0, this.abort.signal); // one listener per handler using ctx.signal
  }

  send(msg: object): boolean {
    if (this.closed) return false;
    if (!Buffer.isBuffer(msg)) {
      this.call.write(msg);
      return true;
    }
    this.queue.push(msg);
    if (!this.writing) this.flush();
    return true;
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0) {
      this.writing = false;
      return;
    }
    let k = 1;
    if (this.batch) {
      let bytes = this.queue[0]!.length;
      while (k < this.queue.length && k < BATCH_MAX && bytes + this.queue[k]!.length <= this.maxBytes) {
        bytes += this.queue[k]!.length;
        k++;
      }
    }
    const out = k === 1 ? this.queue.shift()! : joinResults(this.queue.splice(0, k));
    this.writing = true;
    this.call.write(out, () => this.flush());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort(new Error("the stream to the gateway ended"));
    try {
      this.call.end();
    } catch {
      /* already ended */
    }
    this.call.cancel();
    this.client.close();
  }
}

/**
 * An actor host: connects to the gateway, registers actors, runs them.
 *
 * Events: "registered" (proxyInfo) after each registration, "disconnected"
 * when a registered stream ends.
 */
export class ActorHost extends EventEmitter {
  readonly target: string;
  readonly system: string;
  readonly serviceName: string;
  /** Successful registrations so far. */
  registrations = 0;
  /** The gateway's ProxyInfo from the last registration. */
  proxyInfo: ProxyInfo | undefined;

  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly registrationTimeoutMs: number;
  private readonly channelOptions: grpc.ChannelOptions;
  /** What each session dials (gatewayTarget of target). */
  private readonly dialTarget: string;
  private readonly security: Security;
  private readonly maxMessageBytes: number;
  private readonly log: Logger;
  private readonly onRegistered: ((host: ActorHost) => void) | undefined;
  private readonly actors = new Map<string, ActorEntry>();
  private readonly contracts: Buffer[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private session: Session | undefined;
  private runPromise: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private isReg = false;
  private regPromise!: Promise<ProxyInfo>;
  private regResolve!: (p: ProxyInfo) => void;

  /**
   * @param target "HOST:PORT" or "unix:/path" of the gateway, a list of
   * gateways "10.0.0.1:8090,10.0.0.2:8090" or "dns:///NAME:PORT" (see
   * gatewayTarget): the host registers with one member and, when it goes
   * away, with another
   * @param system the actor system's name
   */
  constructor(target: string, system: string, options: ActorHostOptions = {}) {
    super();
    if (!target) throw new TypeError("target is empty");
    if (!system) throw new TypeError("system is empty");
    protocol(); // fail early when the .proto files cannot be found
    this.target = target;
    this.system = system;
    this.serviceName = options.serviceName || system;
    this.minBackoffMs = options.minBackoffMs ?? 15;
    this.maxBackoffMs = Math.max(options.maxBackoffMs ?? 2000, this.minBackoffMs);
    this.registrationTimeoutMs = options.registrationTimeoutMs ?? 10000;
    this.security = makeSecurity(options);
    // A list of gateways: each session dials one member (round robin), the
    // next one after a loss.
    const dial = dialTarget(target, this.security);
    new grpc.Client(dial.target, grpc.credentials.createInsecure()).close(); // throws on a malformed target
    this.dialTarget = dial.target;
    this.channelOptions = { ...dial.channelOptions, ...(options.channelOptions ?? {}), ...this.security.channelOptions };
    if (options.maxMessageBytes !== undefined) {
      if (!(Number.isInteger(options.maxMessageBytes) && options.maxMessageBytes > 0)) {
        throw new TypeError("maxMessageBytes must be a positive integer");
      }
      this.channelOptions["grpc.max_send_message_length"] = options.maxMessageBytes;
      this.channelOptions["grpc.max_receive_message_length"] = options.maxMessageBytes;
    }
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.log = options.logger === null ? {} : (options.logger ?? defaultLogger());
    this.onRegistered = options.onRegistered;
    this.resetRegistered();
  }

  // ---- configuration ---------------------------------------------------

  /**
   * Send the descriptors of a contract this host serves: `set` is a
   * serialized google.protobuf.FileDescriptorSet (the .proto file and every
   * file it imports). The gateway then serves each service with the
   * spawn.actors.actor option as a plain gRPC service and describes it by
   * server reflection (docs/protocol.md, "Contracts"). The generated
   * registerX functions call it. Every set added goes, as one, right after
   * the registration on each stream; a set added twice is sent once.
   */
  addContract(set: Uint8Array): this {
    const b = Buffer.from(set);
    if (b.length > 0 && !this.contracts.some((c) => c.equals(b))) this.contracts.push(b);
    return this;
  }

  /**
   * Serve actor `def.name` with `def.actions`. Takes effect at the next
   * registration (call before start()). Returns the host.
   */
  addActor(def: ActorDefinition): this {
    if (!def || !def.name) throw new TypeError("actor name is empty");
    const actions = new Map<string, Handler>();
    for (const [a, h] of Object.entries(def.actions ?? {})) {
      if (typeof h !== "function") throw new TypeError(`handler of ${def.name}.${a} is not a function`);
      actions.set(a, h);
    }
    let kind: number;
    if (def.kind === undefined) kind = protocol().Kind.values["NAMED"] as number;
    else if (typeof def.kind === "number") kind = def.kind;
    else {
      const v = protocol().Kind.values[String(def.kind).toUpperCase()];
      if (v === undefined) throw new TypeError(`unknown actor kind ${def.kind}`);
      kind = v;
    }
    let stateType = "";
    if (typeof def.stateType === "string") stateType = def.stateType.replace(/^\./, "");
    else if (def.stateType) stateType = typeNameOf(def.stateType);
    const ms = (x: number | undefined, what: string): number | undefined => {
      if (x === undefined || x === null) return undefined;
      if (!Number.isFinite(x) || x < 0) throw new TypeError(`${def.name}: ${what} must be a non-negative number`);
      return Math.trunc(x);
    };
    const channels: ActorEntry["channels"] = [];
    for (const c of def.channels ?? []) {
      const topic = typeof c === "string" ? c : c?.topic;
      const action = (typeof c === "string" ? undefined : c?.action) || DEFAULT_CHANNEL_ACTION;
      if (typeof topic !== "string" || !topic) throw new TypeError(`${def.name}: a channel has no topic`);
      if (!actions.has(action)) {
        throw new TypeError(`${def.name}: channel '${topic}' delivers to '${action}', which is not one of its actions`);
      }
      channels.push({ topic, action });
    }
    for (const [a, p] of Object.entries(def.timers ?? {})) {
      if (!actions.has(a)) throw new TypeError(`${def.name}: timer '${a}' has no handler`);
      if (!(ms(p, `timer ${a}`)! > 0)) throw new TypeError(`${def.name}: timer ${a} must be a positive period in ms`);
    }
    this.actors.set(def.name, {
      name: def.name,
      actions,
      kind,
      stateful: def.stateful ?? true,
      stateType,
      snapshotMs: ms(def.snapshotMs, "snapshotMs"),
      deactivateMs: ms(def.deactivateMs, "deactivateMs"),
      timers: Object.entries(def.timers ?? {}).map(([a, p]) => [a, ms(p, `timer ${a}`) ?? 0]),
      minPoolSize: def.minPoolSize ?? 0,
      maxPoolSize: def.maxPoolSize ?? 0,
      channels,
    });
    return this;
  }

  /** The spawn.RegistrationRequest this host sends (a plain object). */
  registrationRequest(): object {
    const actors: { [name: string]: object } = {};
    for (const a of this.actors.values()) {
      const settings: { [k: string]: unknown } = {
        kind: a.kind,
        stateful: a.stateful,
        stateType: a.stateType,
        minPoolSize: a.minPoolSize,
        maxPoolSize: a.maxPoolSize,
      };
      if (a.snapshotMs !== undefined) settings["snapshotStrategy"] = { timeout: { timeout: a.snapshotMs } };
      if (a.deactivateMs !== undefined) settings["deactivationStrategy"] = { timeout: { timeout: a.deactivateMs } };
      const actor: { [k: string]: unknown } = {
        id: { name: a.name, system: this.system },
        settings,
        actions: [...a.actions.keys()].map((name) => ({ name })),
        timerActions: a.timers.map(([name, period]) => ({ seconds: period, action: { name } })),
      };
      if (a.channels.length) actor["metadata"] = { channelGroup: a.channels.map((c) => ({ ...c })) };
      actors[a.name] = actor;
    }
    return {
      serviceInfo: {
        serviceName: this.serviceName,
        serviceVersion: VERSION,
        serviceRuntime: `node ${process.version}`,
        supportLibraryName: LIBRARY_NAME,
        supportLibraryVersion: VERSION,
        protocolMajorVersion: 1,
        protocolMinorVersion: 0,
      },
      actorSystem: { name: this.system, registry: { actors } },
    };
  }

  // ---- readiness -------------------------------------------------------

  /** True while registered with the gateway. */
  get isRegistered(): boolean {
    return this.isReg;
  }

  /**
   * Resolves (with the gateway's ProxyInfo) while the host is registered;
   * after a disconnect, a new promise that resolves at the next
   * registration. Never rejects: see waitRegistered() for a timeout.
   */
  get registered(): Promise<ProxyInfo> {
    return this.regPromise;
  }

  /** Wait for registration; rejects after `timeoutMs`. */
  waitRegistered(timeoutMs: number): Promise<ProxyInfo> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`not registered with ${this.target} within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([this.regPromise, timeout]).finally(() => clearTimeout(t));
  }

  private resetRegistered(): void {
    this.regPromise = new Promise<ProxyInfo>((resolve) => {
      this.regResolve = resolve;
    });
  }

  private setRegistered(on: boolean, info?: ProxyInfo): void {
    if (on) {
      this.isReg = true;
      this.regResolve(info as ProxyInfo);
      try {
        this.emit("registered", info);
        this.onRegistered?.(this);
      } catch (e) {
        this.log.error?.(`a "registered" listener failed: ${errText(e)}`);
      }
    } else if (this.isReg) {
      this.isReg = false;
      this.resetRegistered();
      try {
        this.emit("disconnected");
      } catch (e) {
        this.log.error?.(`a "disconnected" listener failed: ${errText(e)}`);
      }
    }
  }

  // ---- running ---------------------------------------------------------

  /** Run the host in the background (see run()); returns the host. */
  start(): this {
    this.run().catch((e: unknown) => this.log.error?.(`host stopped: ${errText(e)}`));
    return this;
  }

  /**
   * Connect, register and serve until stop(); reconnect with exponential
   * backoff (with jitter, minBackoffMs .. maxBackoffMs) whenever the stream
   * ends. Resolves once stopped. Calling it while running returns the
   * running loop's promise.
   */
  run(): Promise<void> {
    if (!this.runPromise) {
      this.runPromise = this.loop().finally(() => {
        this.runPromise = undefined;
      });
    }
    return this.runPromise;
  }

  private async loop(): Promise<void> {
    this.stopping = false;
    let delay = this.minBackoffMs;
    try {
      while (!this.stopping) {
        const ok = await this.sessionOnce();
        if (this.stopping) break;
        if (ok) delay = this.minBackoffMs;
        const wait = Math.round(delay * (0.8 + 0.4 * Math.random())); // +-20%
        this.log.info?.(`disconnected from ${this.target}; retrying in ${wait} ms`);
        await this.sleep(wait);
        delay = Math.min(delay * 2, this.maxBackoffMs);
      }
    } finally {
      this.setRegistered(false);
    }
  }

  /**
   * Stop serving: close the stream, end run(), and wait (at most
   * `timeoutMs`, default: as long as it takes) for handlers still running;
   * their results are dropped.
   */
  async stop(timeoutMs?: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.session?.close();
    const done = Promise.all([this.runPromise ?? Promise.resolve(), Promise.allSettled([...this.inflight])]).then(
      () => undefined,
    );
    if (timeoutMs === undefined) return done;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
    clearTimeout(t);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /** Connect's request metadata: the token (if any) and the batch request. */
  private linkMetadata(): grpc.Metadata {
    const md = this.security.withToken(new grpc.Metadata());
    md.set(LINK_MD_KEY, LINK_MD_BATCH);
    return md;
  }

  /** One connection; resolves true when it got registered. */
  private sessionOnce(): Promise<boolean> {
    const p = protocol();
    return new Promise<boolean>((resolve) => {
      const client = new grpc.Client(this.dialTarget, this.security.credentials, this.channelOptions);
      const call = client.makeBidiStreamRequest(
        CONNECT_METHOD,
        // Results arrive here already encoded (see runTask).
        (m: object) => (Buffer.isBuffer(m) ? m : encode(p.HostMessage, m)),
        (b: Buffer) => p.GatewayMessage.decode(b) as unknown as GatewayMessageMsg,
        this.linkMetadata(),
      ) as HostCall;
      const session = new Session(client, call, Math.min(BATCH_BYTES, this.maxMessageBytes - 16));
      this.session = session;
      let gotRegistered = false;
      let finished = false;
      const timer = setTimeout(() => {
        this.log.warn?.(`no registration answer from ${this.target} within ${this.registrationTimeoutMs} ms`);
        finish();
      }, this.registrationTimeoutMs);

      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.setRegistered(false);
        session.close();
        if (this.session === session) this.session = undefined;
        resolve(gotRegistered);
      };

      call.on("metadata", (md: grpc.Metadata) => {
        session.batch = md.get(LINK_MD_KEY).some((v) => String(v) === LINK_MD_BATCH);
      });
      call.on("data", (msg: GatewayMessageMsg) => {
        if (finished) return;
        if (!gotRegistered) {
          const reg = msg.registration;
          if (!reg) {
            this.log.error?.(`gateway sent ${msg.invocation ? "an invocation" : "a message"} before registration`);
            finish();
            return;
          }
          clearTimeout(timer);
          const st = reg.status;
          if (!st || st.status !== (p.Status.values["OK"] as number)) {
            this.log.error?.(
              `registration refused: ${p.Status.valuesById[st?.status ?? 0] ?? st?.status} ${st?.message ?? ""}`,
            );
            finish();
            return;
          }
          gotRegistered = true;
          this.proxyInfo = reg.proxyInfo ?? undefined;
          this.registrations++;
          this.log.info?.(`registered with ${this.target}`);
          this.setRegistered(true, this.proxyInfo);
        } else if (msg.invocation) {
          this.runTask(session, msg.invocation);
        } else if (msg.tasks) {
          for (const task of msg.tasks.tasks ?? []) this.runTask(session, task);
        } else {
          this.log.warn?.("ignoring an unexpected gateway message");
        }
      });
      call.on("error", (e: grpc.ServiceError) => {
        if (!this.stopping && !session.closed) {
          this.log.warn?.(`stream to ${this.target} failed: ${statusName(e.code)} ${e.details ?? e.message}`);
        }
        finish();
      });
      call.on("status", () => finish());
      call.on("end", () => finish());

      session.send({ registration: this.registrationRequest() });
      if (this.contracts.length > 0) {
        session.send({ contracts: { files: Buffer.concat(this.contracts) } });
      }
      if (this.stopping) finish();
    });
  }

  // ---- invocations -----------------------------------------------------

  private runTask(session: Session, task: InvocationTaskMsg): void {
    const p = protocol();
    const result: { [k: string]: unknown } = { requestId: task.requestId };
    const work = this.invoke(task, session.abort.signal)
      .then(
        (response) => {
          result["response"] = response;
        },
        (e: unknown) => {
          result["error"] = this.hostError(task, e);
        },
      )
      .then(() => {
        let bytes: Buffer;
        try {
          bytes = encode(p.HostMessage, { result });
        } catch (e) {
          // The handler's values do not encode (e.g. a non-bytes Any value).
          this.log.error?.(`cannot encode the result of request ${toDecimal(task.requestId)}: ${errText(e)}`);
          delete result["response"];
          result["error"] = { code: StatusCode.INTERNAL, message: `cannot encode the result: ${errText(e)}` };
          bytes = encode(p.HostMessage, { result });
        }
        if (bytes.length > this.maxMessageBytes) {
          // Sent, it would fail the whole stream and every call on it: this one call fails instead.
          this.log.warn?.(
            `result of request ${toDecimal(task.requestId)} is ${bytes.length} bytes, over the limit of ${this.maxMessageBytes}`,
          );
          delete result["response"];
          result["error"] = { code: StatusCode.RESOURCE_EXHAUSTED, message: "the action's result exceeds the message size limit" };
          bytes = encode(p.HostMessage, { result });
        }
        if (!session.send(bytes)) {
          this.log.debug?.(`stream gone; result of request ${toDecimal(task.requestId)} dropped`);
        }
      })
      .catch((e: unknown) => this.log.error?.(`sending a result failed: ${errText(e)}`))
      .finally(() => {
        this.inflight.delete(work);
      });
    this.inflight.add(work);
  }

  private hostError(task: InvocationTaskMsg, e: unknown): { code: number; message: string } {
    if (e instanceof ActorError) {
      const code = Number.isInteger(e.code) && e.code > 0 && e.code <= 16 ? e.code : StatusCode.UNKNOWN;
      return { code, message: e.message };
    }
    const inv = task.invocation;
    this.log.error?.(`handler ${inv?.actor?.name}.${inv?.actionName} failed: ${errText(e, true)}`);
    return { code: StatusCode.UNKNOWN, message: errText(e) };
  }

  private async invoke(task: InvocationTaskMsg, streamSignal: AbortSignal): Promise<object> {
    const inv = task.invocation;
    if (!inv) throw new ActorError(StatusCode.INVALID_ARGUMENT, "the task carries no invocation");
    const name = inv.actor?.name ?? "";
    let actor = this.actors.get(name);
    if (!actor && inv.actor?.parent) actor = this.actors.get(inv.actor.parent);
    if (!actor) throw new ActorError(StatusCode.NOT_FOUND, `no actor '${name}' in this host`);
    const handler = actor.actions.get(inv.actionName);
    if (!handler) {
      throw new ActorError(StatusCode.NOT_FOUND, `actor '${actor.name}' has no action '${inv.actionName}'`);
    }
    // The gateway always sends the effective deadline: past it the caller is
    // gone, and running the action would change state nobody asked for.
    const deadline = toNumber(task.deadlineUnixMs);
    if (deadline > 0 && Date.now() >= deadline) {
      throw new ActorError(StatusCode.DEADLINE_EXCEEDED, "deadline passed before the action ran");
    }
    const ctx = new InvocationContext(task, this, streamSignal);
    let out: HandlerResult | void;
    try {
      out = await handler(ctx);
    } finally {
      ctx._dispose();
    }
    if (out !== undefined && out !== null && typeof out !== "object") {
      throw new ActorError(StatusCode.INTERNAL, "a handler must return {state?, reply?, checkpoint?} or nothing");
    }
    const res: HandlerResult = out ?? {};
    const any = (x: AnyLike, what: string): AnyMsg => {
      try {
        return toAny(x, what);
      } catch (e) {
        throw new ActorError(StatusCode.INTERNAL, `${actor.name}.${inv.actionName}: ${errText(e)}`);
      }
    };
    const updated: { [k: string]: unknown } = { tags: ctx.tags };
    if (inv.actor) updated["self"] = inv.actor;
    // No state: unchanged (the gateway keeps the one it has; resending it would only cost bytes).
    if (actor.stateful && res.state !== undefined && res.state !== null) {
      updated["state"] = toWireAny(any(res.state, "state"));
    }
    const resp: { [k: string]: unknown } = {
      actorName: name,
      actorSystem: inv.actor?.system || this.system,
      updatedContext: updated,
      checkpoint: !!res.checkpoint,
    };
    if (res.reply !== undefined && res.reply !== null) resp["value"] = toWireAny(any(res.reply, "reply"));
    else resp["noop"] = {};
    const wf = ctx._workflow();
    if (wf) resp["workflow"] = wf;
    return resp;
  }
}

function errText(e: unknown, stack = false): string {
  if (e instanceof Error) return stack && e.stack ? e.stack : `${e.name}: ${e.message}`;
  return String(e);
}
