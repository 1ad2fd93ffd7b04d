/**
 * Test helpers: a fake gateway (HostGateway.Connect on @grpc/grpc-js, as a
 * generic service definition) and the Incrementor's message types.
 */
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import type * as protobuf from "protobufjs";

import { CONNECT_METHOD, findProtoDir, fromWireAny, loadProtos, pack, protocol, toDecimal, toWireAny, type AnyMsg, type Logger } from "../src/index.js";

/** The longest any single step may take (ms). */
export const T = 5000;

/** The repository's root (the parent of proto/). */
export const ROOT = path.dirname(findProtoDir());

const incRoot = loadProtos(["incrementor.proto"], [path.join(ROOT, "examples", "incrementor")]);
export const inc = {
  State: incRoot.lookupType("examples.incrementor.State"),
  Add: incRoot.lookupType("examples.incrementor.Add"),
  Total: incRoot.lookupType("examples.incrementor.Total"),
};

/** The host's log: silent unless SPAWN_NODE_TEST_LOG is set. */
export const testLogger: Logger | null = process.env["SPAWN_NODE_TEST_LOG"]
  ? { debug: console.error, info: console.error, warn: console.error, error: console.error }
  : null;

/** A FIFO whose get() waits (at most `timeoutMs`). */
export class AsyncQueue<V> {
  private items: V[] = [];
  private waiters: Array<(v: V) => void> = [];

  push(v: V): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }

  get size(): number {
    return this.items.length;
  }

  get(timeoutMs = T, what = "an item"): Promise<V> {
    if (this.items.length) return Promise.resolve(this.items.shift() as V);
    return new Promise<V>((resolve, reject) => {
      const w = (v: V): void => {
        clearTimeout(t);
        resolve(v);
      };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

/** A decoded spawn.gateway.v1.InvocationResult (as the fake sees it). */
export interface Result {
  requestId: string;
  response?: {
    actorName: string;
    actorSystem: string;
    checkpoint: boolean;
    updatedContext?: { state?: AnyMsg | null; tags?: { [k: string]: string }; self?: { name: string } | null } | null;
    value?: AnyMsg | null;
    noop?: object | null;
  } | null;
  error?: { code: number; message: string } | null;
}

export interface TaskOptions {
  state?: AnyMsg | null;
  payload?: AnyMsg | null;
  actor?: string;
  parent?: string;
  system?: string;
  tags?: { [k: string]: string };
  metadata?: { [k: string]: string };
  deadlineUnixMs?: number;
}

/** One Connect stream, seen from the gateway. */
export class FakeStream {
  /** The first HostMessage (decoded). */
  readonly registration: any;
  readonly results = new AsyncQueue<Result>();
  /** The host asked for batches (request metadata spawn-link: batch). */
  asked = false;
  /** HostMessages that carried results, and of those the ResultBatches. */
  resultMsgs = 0;
  resultBatches = 0;
  /** Resolves when the host closed its side (or the call ended). */
  readonly ended: Promise<void>;
  private endedResolve!: () => void;

  constructor(
    readonly call: grpc.ServerDuplexStream<any, object>,
    first: any,
  ) {
    this.registration = first;
    this.ended = new Promise((r) => (this.endedResolve = r));
  }

  onMessage(m: any): void {
    if (m.results) {
      this.resultMsgs++;
      this.resultBatches++;
      for (const r of m.results.results ?? []) this.addResult(r);
      return;
    }
    if (m.result) {
      this.resultMsgs++;
      this.addResult(m.result);
    }
  }

  private addResult(r: any): void {
    const out: Result = { requestId: toDecimal(r.requestId), error: r.error ?? null, response: null };
    if (r.response) {
      const uc = r.response.updatedContext;
      out.response = {
        ...r.response,
        actorName: r.response.actorName,
        actorSystem: r.response.actorSystem,
        checkpoint: r.response.checkpoint,
        value: fromWireAny(r.response.value) ?? null,
        noop: r.response.noop ?? null,
        updatedContext: uc ? { tags: uc.tags, self: uc.self, state: fromWireAny(uc.state) ?? null } : null,
      };
    }
    this.results.push(out);
  }

  onEnd(): void {
    this.endedResolve();
  }

  send(msg: object): void {
    this.call.write(msg);
  }

  /** Sends Add(value = id) tasks for these ids as one TaskBatch. */
  sendAddBatch(ids: number[]): void {
    const tasks = ids.map((requestId) => ({
      requestId,
      invocation: {
        actor: { name: "incrementor", system: "spawn-system", parent: "" },
        actionName: "Add",
        currentContext: { state: null, tags: {}, metadata: {} },
        value: toWireAny(pack(inc.Add, { value: requestId })),
      },
    }));
    this.send({ tasks: { tasks } });
  }

  sendTask(requestId: number, action: string, o: TaskOptions = {}): void {
    const invocation: { [k: string]: unknown } = {
      actor: { name: o.actor ?? "incrementor", system: o.system ?? "spawn-system", parent: o.parent ?? "" },
      actionName: action,
      currentContext: { state: o.state ? toWireAny(o.state) : null, tags: o.tags ?? {}, metadata: o.metadata ?? {} },
    };
    if (o.payload) invocation["value"] = toWireAny(o.payload);
    else invocation["noop"] = {};
    this.send({ invocation: { requestId, invocation, deadlineUnixMs: o.deadlineUnixMs ?? 0 } });
  }

  result(what = "a result"): Promise<Result> {
    return this.results.get(T, what);
  }

  /** End the stream from the gateway's side (status OK). */
  close(): void {
    this.call.end();
  }
}

/** A fake gateway serving HostGateway.Connect. */
export class FakeGateway {
  readonly streams = new AsyncQueue<FakeStream>();
  /** Answer registrations with status ERROR (and end the stream). */
  refuse = false;
  /** End the stream with this gRPC status instead of answering. */
  failWith: grpc.status | undefined;
  /** Grant batches to a host that asks (initial metadata spawn-link: batch). */
  grant = false;
  target = "";

  private constructor(private readonly server: grpc.Server) {}

  static async start(address = "127.0.0.1:0"): Promise<FakeGateway> {
    const p = protocol();
    const server = new grpc.Server();
    const gw = new FakeGateway(server);
    const def: grpc.ServiceDefinition = {
      Connect: {
        path: CONNECT_METHOD,
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => p.HostMessage.decode(b),
        responseSerialize: (m: object) => Buffer.from(p.GatewayMessage.encode(m).finish()),
        responseDeserialize: (b: Buffer) => b,
        originalName: "connect",
      },
    };
    server.addService(def, { Connect: (call: grpc.ServerDuplexStream<any, object>) => gw.connect(call) });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    gw.target = address.endsWith(":0") ? `127.0.0.1:${port}` : address;
    return gw;
  }

  private connect(call: grpc.ServerDuplexStream<any, object>): void {
    let s: FakeStream | undefined;
    call.on("data", (m: any) => {
      if (!s) {
        s = new FakeStream(call, m);
        s.asked = call.metadata.get("spawn-link").some((v) => String(v) === "batch");
        if (this.grant && s.asked) {
          const md = new grpc.Metadata();
          md.set("spawn-link", "batch");
          call.sendMetadata(md);
        }
        if (this.failWith !== undefined) {
          call.emit("error", { code: this.failWith, details: "refused by the fake" });
          this.streams.push(s);
          return;
        }
        const st = protocol().Status.values[this.refuse ? "ERROR" : "OK"];
        call.write({ registration: { status: { status: st, message: this.refuse ? "go away" : "" }, proxyInfo: { proxyName: "fake-gateway" } } });
        this.streams.push(s);
        if (this.refuse) call.end();
        return;
      }
      s.onMessage(m);
    });
    const end = (): void => s?.onEnd();
    call.on("end", end);
    call.on("cancelled", end);
    call.on("error", end);
    call.on("close", end);
  }

  nextStream(what = "a stream"): Promise<FakeStream> {
    return this.streams.get(T, what);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.forceShutdown();
      resolve();
    });
  }
}

/** Pack an Incrementor Add / State. */
export const add = (value: number): AnyMsg => pack(inc.Add, { value });
export const state = (total: number): AnyMsg => pack(inc.State, { total });

/** Decode a Total / State Any to its number. */
export function total(a: AnyMsg | null | undefined): number {
  return Number((inc.Total.toObject(inc.Total.decode((a as AnyMsg).value), { longs: Number }) as { total?: number }).total ?? 0);
}
export function stateTotal(a: AnyMsg | null | undefined): number {
  return Number((inc.State.toObject(inc.State.decode((a as AnyMsg).value), { longs: Number }) as { total?: number }).total ?? 0);
}

export type { protobuf };
