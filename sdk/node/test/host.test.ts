/**
 * ActorHost against a fake gateway run in-process.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";

import { ActorError, ActorHost, StatusCode, pack, unpackObject, type Handler, type InvocationContext } from "../src/index.js";
import { FakeGateway, FakeStream, T, add, inc, state, stateTotal, testLogger, total } from "./helpers.js";

interface StateObj {
  total: number;
}

/** The Incrementor's Add: state.total += payload.value; reply Total. */
function addHandler(checkpoint = false): Handler {
  return (ctx) => {
    const s = unpackObject<StateObj>(ctx.state, inc.State);
    s.total += unpackObject<{ value: number }>(ctx.payload, inc.Add).value;
    return { state: pack(inc.State, s), reply: pack(inc.Total, { total: s.total }), checkpoint };
  };
}

function newHost(target: string): ActorHost {
  const h = new ActorHost(target, "spawn-system", { minBackoffMs: 20, maxBackoffMs: 200, logger: testLogger });
  h.addActor({
    name: "incrementor",
    actions: { Add: addHandler() },
    stateType: inc.State,
    stateful: true,
    snapshotMs: 2000,
    deactivateMs: 60000,
  });
  return h;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("ActorHost", () => {
  let gw: FakeGateway | undefined;
  let host: ActorHost | undefined;

  afterEach(async () => {
    await host?.stop(T);
    await gw?.stop();
    host = undefined;
    gw = undefined;
  });

  async function start(h: ActorHost, g: FakeGateway) {
    host = h;
    h.start();
    const s = await g.nextStream("the registration");
    await h.waitRegistered(T);
    return s;
  }

  it("registers, threads state, answers NOT_FOUND, reconnects", async () => {
    gw = await FakeGateway.start();
    const events: string[] = [];
    const h = newHost(gw.target);
    h.on("registered", () => events.push("registered"));
    h.on("disconnected", () => events.push("disconnected"));
    const s = await start(h, gw);

    // Registration content.
    const reg = s.registration.registration;
    assert.ok(reg, "the first message is a registration");
    assert.equal(reg.actorSystem.name, "spawn-system");
    assert.deepEqual(Object.keys(reg.actorSystem.registry.actors), ["incrementor"]);
    const a = reg.actorSystem.registry.actors["incrementor"];
    assert.equal(a.id.name, "incrementor");
    assert.equal(a.id.system, "spawn-system");
    assert.deepEqual(
      a.actions.map((x: { name: string }) => x.name),
      ["Add"],
    );
    assert.equal(a.settings.stateful, true);
    assert.equal(a.settings.kind, 1); // NAMED
    assert.equal(a.settings.stateType, "examples.incrementor.State");
    assert.equal(Number(a.settings.snapshotStrategy.timeout.timeout), 2000);
    assert.equal(Number(a.settings.deactivationStrategy.timeout.timeout), 60000);
    assert.equal(reg.serviceInfo.supportLibraryName, "spawn-gateway-node-sdk");
    assert.equal(reg.serviceInfo.serviceName, "spawn-system");
    assert.equal(reg.serviceInfo.protocolMajorVersion, 1);
    assert.equal(h.proxyInfo?.proxyName, "fake-gateway");
    assert.equal((await h.registered).proxyName, "fake-gateway");
    assert.equal(h.isRegistered, true);
    assert.equal(h.registrations, 1);

    // Two invocations, the state threaded through by the "gateway".
    let st = null;
    for (const [rid, want] of [
      [1, 1],
      [2, 2],
    ] as const) {
      s.sendTask(rid, "Add", { state: st, payload: add(1) });
      const r = await s.result();
      assert.equal(r.requestId, String(rid));
      assert.ok(r.response, `a response, not ${JSON.stringify(r.error)}`);
      assert.equal(r.response.actorName, "incrementor");
      assert.equal(r.response.actorSystem, "spawn-system");
      assert.equal(r.response.checkpoint, false);
      assert.equal(r.response.updatedContext?.self?.name, "incrementor");
      assert.equal(r.response.updatedContext?.state?.typeUrl, "type.googleapis.com/examples.incrementor.State");
      assert.equal(r.response.value?.typeUrl, "type.googleapis.com/examples.incrementor.Total");
      assert.equal(total(r.response.value), want);
      st = r.response.updatedContext?.state ?? null;
      assert.equal(stateTotal(st), want);
    }

    // Unknown action and unknown actor: HostError NOT_FOUND.
    s.sendTask(3, "Nope", { state: st, payload: add(1) });
    let r = await s.result();
    assert.equal(r.requestId, "3");
    assert.ok(r.error);
    assert.equal(r.error.code, StatusCode.NOT_FOUND);
    assert.match(r.error.message, /Nope/);
    s.sendTask(4, "Add", { actor: "ghost", payload: add(1) });
    r = await s.result();
    assert.equal(r.requestId, "4");
    assert.equal(r.error?.code, StatusCode.NOT_FOUND);
    assert.match(r.error?.message ?? "", /ghost/);

    // The gateway closes the stream: the host reconnects and re-registers.
    s.close();
    const s2 = await gw.nextStream("the re-registration");
    assert.equal(s2.registration.registration.actorSystem.name, "spawn-system");
    await s.ended;
    await h.waitRegistered(T);
    s2.sendTask(1, "Add", { state: st, payload: add(5) });
    r = await s2.result();
    assert.equal(total(r.response?.value), 7);
    assert.ok(h.registrations >= 2);
    assert.deepEqual(events.slice(0, 3), ["registered", "disconnected", "registered"]);
  });

  it("maps ActorError, other throws, checkpoint, noop, tags, async handlers", async () => {
    gw = await FakeGateway.start();
    const h = newHost(gw.target);
    let seen: InvocationContext | undefined;
    h.addActor({
      name: "other",
      stateType: "examples.incrementor.State",
      actions: {
        Boom: () => {
          throw new ActorError(StatusCode.FAILED_PRECONDITION, "not now");
        },
        AsyncBoom: async () => {
          await new Promise((r) => setTimeout(r, 5));
          throw new ActorError(StatusCode.PERMISSION_DENIED, "later, no");
        },
        Bad: () => {
          throw new ActorError(99, "odd code");
        },
        Bug: () => {
          throw new TypeError("oops");
        },
        Keep: async (ctx) => {
          seen = ctx;
          ctx.tags["t2"] = "w";
          await Promise.resolve();
          return { checkpoint: true };
        },
        Nothing: () => undefined,
        Wrong: () => ({ reply: { not: "an any" } as never }),
      },
    });
    const s = await start(h, gw);

    s.sendTask(1, "Boom", { actor: "other" });
    let r = await s.result();
    assert.deepEqual([r.error?.code, r.error?.message], [9, "not now"]);
    s.sendTask(2, "AsyncBoom", { actor: "other" });
    r = await s.result();
    assert.deepEqual([r.error?.code, r.error?.message], [StatusCode.PERMISSION_DENIED, "later, no"]);
    s.sendTask(3, "Bad", { actor: "other" });
    r = await s.result();
    assert.deepEqual([r.error?.code, r.error?.message], [StatusCode.UNKNOWN, "odd code"]);
    s.sendTask(4, "Bug", { actor: "other" });
    r = await s.result();
    assert.equal(r.error?.code, StatusCode.UNKNOWN);
    assert.match(r.error?.message ?? "", /TypeError: oops/);

    s.sendTask(5, "Keep", {
      actor: "other",
      state: state(41),
      tags: { t: "v" },
      metadata: { h: "1" },
      deadlineUnixMs: Date.now() + 60000,
    });
    r = await s.result();
    assert.ok(r.response, JSON.stringify(r.error));
    assert.equal(r.response.checkpoint, true);
    assert.ok(r.response.noop, "a Noop reply");
    assert.ok(!r.response.value);
    assert.ok(!r.response.updatedContext?.state, "an unchanged state is not resent");
    assert.deepEqual({ ...r.response.updatedContext?.tags }, { t: "v", t2: "w" });
    assert.ok(seen);
    assert.equal(seen.payload, undefined);
    assert.equal(seen.requestId, "5");
    assert.ok(seen.deadlineUnixMs > Date.now());
    assert.deepEqual(seen.metadata, { h: "1" });
    assert.equal(seen.actorName, "other");
    assert.equal(seen.system, "spawn-system");
    assert.equal(seen.action, "Keep");
    assert.equal(seen.signal.aborted, false);

    // Returning nothing: state kept (not sent back: the gateway keeps its own), Noop reply.
    s.sendTask(6, "Nothing", { actor: "other", state: state(3) });
    r = await s.result();
    assert.ok(!r.response?.updatedContext?.state, "an unchanged state is not resent");
    assert.ok(r.response?.noop);

    // A reply that is not an Any: INTERNAL.
    s.sendTask(7, "Wrong", { actor: "other" });
    r = await s.result();
    assert.equal(r.error?.code, StatusCode.INTERNAL);

    // A payload of the wrong type: INVALID_ARGUMENT (from unpack).
    s.sendTask(8, "Add", { payload: pack(inc.Total, { total: 1 }) });
    r = await s.result();
    assert.equal(r.error?.code, StatusCode.INVALID_ARGUMENT);
    assert.match(r.error?.message ?? "", /expected examples\.incrementor\.Add/);
  });

  it("runs invocations concurrently and answers them in any order", async () => {
    gw = await FakeGateway.start();
    const h = newHost(gw.target);
    const gate = deferred();
    const entered = deferred();
    h.addActor({
      name: "pool",
      kind: "POOLED",
      stateful: false,
      actions: {
        Slow: async () => {
          entered.resolve();
          await gate.promise;
          return { reply: pack(inc.Total, { total: -1 }), state: state(9) };
        },
        Fast: async (ctx) => {
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          return { reply: pack(inc.Total, { total: Number(ctx.requestId) }) };
        },
      },
    });
    const s = await start(h, gw);
    assert.equal(s.registration.registration.actorSystem.registry.actors["pool"].settings.kind, 3);
    s.sendTask(100, "Slow", { actor: "pool", state: state(1) });
    await entered.promise;
    for (let rid = 101; rid <= 110; rid++) s.sendTask(rid, "Fast", { actor: "pool" });
    const got = [];
    for (let i = 0; i < 10; i++) got.push(await s.result());
    assert.deepEqual(
      got.map((r) => Number(r.requestId)).sort((a, b) => a - b),
      [101, 102, 103, 104, 105, 106, 107, 108, 109, 110],
    );
    for (const r of got) {
      assert.equal(total(r.response?.value), Number(r.requestId));
      assert.ok(!r.response?.updatedContext?.state, "a stateless actor returns no state");
    }
    gate.resolve();
    const r = await s.result();
    assert.equal(r.requestId, "100");
    assert.equal(total(r.response?.value), -1);
    assert.ok(!r.response?.updatedContext?.state);
  });

  it("retries after a refused registration and after an error status", async () => {
    gw = await FakeGateway.start();
    gw.refuse = true;
    host = newHost(gw.target);
    host.start();
    await gw.nextStream();
    await gw.nextStream(); // it tried again
    assert.equal(host.isRegistered, false);
    gw.refuse = false;
    gw.failWith = grpc.status.INVALID_ARGUMENT;
    await gw.nextStream();
    assert.equal(host.isRegistered, false);
    gw.failWith = undefined;
    // A later attempt succeeds.
    let s;
    for (;;) {
      s = await gw.nextStream();
      if (s.registration && !gw.refuse) {
        try {
          await host.waitRegistered(T);
          break;
        } catch {
          /* that attempt was still refused */
        }
      }
    }
    s.sendTask(1, "Add", { payload: add(3) });
    assert.equal(total((await s.result()).response?.value), 3);
  });

  it("waits with backoff for a gateway that is not there yet (unix socket)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spawn-node-sock-"));
    try {
      const target = `unix:${path.join(dir, "gw.sock")}`;
      host = newHost(target);
      host.start();
      await new Promise((r) => setTimeout(r, 300)); // a few failed attempts
      assert.equal(host.isRegistered, false);
      gw = await FakeGateway.start(target);
      const s = await gw.nextStream();
      await host.waitRegistered(T);
      s.sendTask(9, "Add", { payload: add(2) });
      const r = await s.result();
      assert.deepEqual([r.requestId, total(r.response?.value)], ["9", 2]);
    } finally {
      await host?.stop(T);
      host = undefined;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves instances of UNNAMED actors through their parent", async () => {
    gw = await FakeGateway.start();
    const h = newHost(gw.target);
    h.addActor({ name: "counter", kind: "UNNAMED", stateType: inc.State, actions: { Add: addHandler(true) } });
    const s = await start(h, gw);
    assert.equal(s.registration.registration.actorSystem.registry.actors["counter"].settings.kind, 2);
    s.sendTask(1, "Add", { actor: "c-42", parent: "counter", payload: add(4) });
    const r = await s.result();
    assert.equal(r.response?.actorName, "c-42");
    assert.equal(r.response?.checkpoint, true);
    assert.equal(total(r.response?.value), 4);
  });

  it("stop() ends the stream and run()", async () => {
    gw = await FakeGateway.start();
    const h = newHost(gw.target);
    const s = await start(h, gw);
    let aborted = false;
    const started = deferred();
    h.addActor({
      name: "hang",
      actions: {
        Wait: (ctx) =>
          new Promise((resolve) => {
            started.resolve();
            ctx.signal.addEventListener("abort", () => {
              aborted = true;
              resolve(undefined);
            });
          }),
      },
    });
    // Not registered with the new actor yet, but the host runs what it knows.
    s.sendTask(1, "Wait", { actor: "hang" });
    await started.promise;
    await h.stop(T);
    await s.ended;
    assert.equal(aborted, true, "handlers see the abort signal");
    assert.equal(h.isRegistered, false);
    host = undefined;
  });

  it("aborts ctx.signal at the invocation's deadline", async () => {
    gw = await FakeGateway.start();
    const h = newHost(gw.target);
    h.addActor({
      name: "slow",
      actions: {
        Wait: (ctx) =>
          new Promise((_, reject) => {
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
          }),
      },
    });
    const s = await start(h, gw);
    const t0 = Date.now();
    s.sendTask(1, "Wait", { actor: "slow", deadlineUnixMs: Date.now() + 100 });
    const r = await s.result();
    assert.equal(r.error?.code, StatusCode.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 >= 90);
  });

  it("refuses a task whose deadline passed before its handler ran", async () => {
    gw = await FakeGateway.start();
    const h = newHost(gw.target);
    let ran = false;
    h.addActor({
      name: "late",
      actions: {
        Run: () => {
          ran = true;
        },
      },
    });
    const s = await start(h, gw);
    s.sendTask(1, "Run", { actor: "late", deadlineUnixMs: Date.now() - 1 });
    const r = await s.result();
    assert.equal(r.error?.code, StatusCode.DEADLINE_EXCEEDED);
    assert.equal(ran, false, "the handler did not run");
  });

  async function runBatch(s: FakeStream, n: number): Promise<void> {
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    s.sendAddBatch(ids);
    const seen = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const r = await s.result();
      const id = Number(r.requestId);
      assert.ok(!seen.has(id), `request ${id} answered twice`);
      assert.ok(r.response, `request ${id}: ${JSON.stringify(r.error)}`);
      seen.set(id, total(r.response?.value));
    }
    for (const id of ids) assert.equal(seen.get(id), id);
  }

  it("runs a TaskBatch and batches its results when the gateway grants it", async () => {
    gw = await FakeGateway.start();
    gw.grant = true;
    const s = await start(newHost(gw.target), gw);
    assert.ok(s.asked, "the host asks for batches");
    await runBatch(s, 300);
    assert.ok(s.resultBatches > 0, "no ResultBatch");
    assert.ok(s.resultMsgs < 300, `${s.resultMsgs} messages for 300 results`);
  });

  it("sends one result per message when the gateway does not grant batches", async () => {
    gw = await FakeGateway.start();
    const s = await start(newHost(gw.target), gw);
    assert.ok(s.asked);
    await runBatch(s, 300);
    assert.equal(s.resultBatches, 0);
    assert.equal(s.resultMsgs, 300);
  });

  it("rejects bad actor definitions", () => {
    const h = new ActorHost("127.0.0.1:1", "sys", { logger: null });
    assert.throws(() => h.addActor({ name: "", actions: {} }), /name/);
    assert.throws(() => h.addActor({ name: "a", actions: { X: 1 as never } }), /not a function/);
    assert.throws(() => h.addActor({ name: "a", kind: "WEIRD" as never, actions: {} }), /kind/);
    assert.throws(() => h.addActor({ name: "a", snapshotMs: -1, actions: {} }), /snapshotMs/);
    assert.throws(() => new ActorHost("", "sys"), /target/);
  });
});
