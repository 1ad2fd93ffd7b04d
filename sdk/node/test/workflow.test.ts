/**
 * Workflows returned by handlers (pipe, forward, side effects, broadcast),
 * channel subscriptions and timers in the registration - against the fake
 * gateway.
 */
import * as assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { ActorError, ActorHost, DEFAULT_CHANNEL_ACTION, StatusCode, fromWireAny, type Handler } from "../src/index.js";
import { FakeGateway, T, add, inc, testLogger, total } from "./helpers.js";

const noop: Handler = () => undefined;

/** The add payload's value of a wire Any. */
function addValue(a: unknown): number {
  const any = fromWireAny(a as never);
  return Number((inc.Add.toObject(inc.Add.decode(any!.value), { longs: Number }) as { value?: number }).value ?? 0);
}

describe("workflows", () => {
  let gw: FakeGateway | undefined;
  let host: ActorHost | undefined;

  afterEach(async () => {
    await host?.stop(T);
    await gw?.stop();
    host = undefined;
    gw = undefined;
  });

  it("declares channels and timers in the registration, and refuses mistakes", () => {
    const h = new ActorHost("127.0.0.1:1", "sys", { logger: testLogger });
    h.addActor({
      name: "sub",
      actions: { receive: noop, OnAlert: noop, Tick: noop },
      channels: ["news", { topic: "alerts", action: "OnAlert" }, { topic: "misc" }],
      timers: { Tick: 250 },
    });
    h.addActor({ name: "plain", actions: { receive: noop } });
    const reg = h.registrationRequest() as any;
    const sub = reg.actorSystem.registry.actors["sub"];
    assert.deepEqual(sub.metadata.channelGroup, [
      { topic: "news", action: "receive" },
      { topic: "alerts", action: "OnAlert" },
      { topic: "misc", action: "receive" },
    ]);
    // Milliseconds, in the field named "seconds" (as Spawn does).
    assert.deepEqual(sub.timerActions, [{ seconds: 250, action: { name: "Tick" } }]);
    assert.equal(reg.actorSystem.registry.actors["plain"].metadata, undefined);
    assert.equal(DEFAULT_CHANNEL_ACTION, "receive");

    assert.throws(() => h.addActor({ name: "x", actions: { A: noop }, channels: ["news"] }), TypeError);
    assert.throws(() => h.addActor({ name: "x", actions: { A: noop }, channels: [{ topic: "news", action: "B" }] }), TypeError);
    assert.throws(() => h.addActor({ name: "x", actions: { receive: noop }, channels: [""] }), TypeError);
    assert.throws(() => h.addActor({ name: "x", actions: { A: noop }, timers: { B: 100 } }), TypeError);
    assert.throws(() => h.addActor({ name: "x", actions: { A: noop }, timers: { A: 0 } }), TypeError);
    assert.equal((h.registrationRequest() as any).actorSystem.registry.actors["x"], undefined);
  });

  it("sends pipe, forward, side effects and broadcast with the response", async () => {
    gw = await FakeGateway.start();
    const h = new ActorHost(gw.target, "spawn-system", { minBackoffMs: 20, maxBackoffMs: 200, logger: testLogger });
    const bad: string[] = [];
    const expectThrow = (what: string, f: () => void): void => {
      try {
        f();
        bad.push(what);
      } catch (e) {
        if (!(e instanceof TypeError)) bad.push(`${what}: ${String(e)}`);
      }
    };
    h.addActor({
      name: "a",
      stateType: inc.State,
      actions: {
        Pipe: (ctx) => {
          ctx.pipe("b", "Next");
          return { reply: { typeUrl: "type.googleapis.com/examples.incrementor.Total", value: new Uint8Array([8, 7]) } };
        },
        Fwd: async (ctx) => {
          ctx.pipe("b", "Next");
          await Promise.resolve();
          ctx.forward("c", "Other"); // the last routing wins
        },
        Effects: (ctx) => {
          ctx.sideEffect("b", "Note", add(3), { metadata: { k: "v" } });
          ctx.sideEffect("inst-1", "Hello", null, { system: "other-sys", registerRef: "tmpl", pooled: true, scheduledToMs: 1893456000123 });
          expectThrow("empty actor", () => ctx.sideEffect("", "x"));
          expectThrow("negative time", () => ctx.sideEffect("b", "x", null, { scheduledToMs: -1 }));
          expectThrow("empty action", () => ctx.sideEffect("b", ""));
          expectThrow("bad payload", () => ctx.sideEffect("b", "x", { not: "a message" } as never));
        },
        Pub: (ctx) => {
          ctx.broadcast("first", add(1));
          ctx.broadcast("news", add(99)); // the last one wins
          expectThrow("empty channel", () => ctx.broadcast(""));
        },
        Ping: (ctx) => ctx.broadcast("ping"),
        Fail: (ctx) => {
          ctx.pipe("b", "Next");
          ctx.sideEffect("b", "Note");
          ctx.broadcast("news");
          throw new ActorError(StatusCode.ABORTED, "changed my mind");
        },
        Nothing: (ctx) => {
          expectThrow("empty pipe", () => ctx.pipe("", "Next"));
          expectThrow("empty forward", () => ctx.forward("b", ""));
        },
      },
    });
    host = h;
    h.start();
    const s = await gw.nextStream("the registration");
    await h.waitRegistered(T);

    let rid = 0;
    const call = async (action: string): Promise<any> => {
      s.sendTask(++rid, action, { actor: "a", payload: add(5) });
      const r = await s.result(action);
      assert.equal(r.requestId, String(rid));
      return r;
    };

    let r = await call("Pipe");
    let wf = r.response.workflow;
    assert.deepEqual([wf.pipe.actor, wf.pipe.actionName], ["b", "Next"]);
    assert.equal(wf.forward ?? null, null);
    assert.deepEqual(wf.effects ?? [], []);
    assert.equal(wf.broadcast ?? null, null);
    assert.equal(total(r.response.value), 7); // the reply still goes back: the gateway pipes it

    wf = (await call("Fwd")).response.workflow;
    assert.equal(wf.pipe ?? null, null);
    assert.deepEqual([wf.forward.actor, wf.forward.actionName], ["c", "Other"]);

    wf = (await call("Effects")).response.workflow;
    assert.equal(wf.effects.length, 2);
    let e = wf.effects[0].request;
    assert.deepEqual([e.system.name, e.actor.id.system, e.actor.id.name, e.actionName], ["spawn-system", "spawn-system", "b", "Note"]);
    assert.equal(e.async, true);
    assert.equal(e.caller ?? null, null); // the gateway names the emitter
    assert.equal(addValue(e.value), 3);
    assert.deepEqual({ ...e.metadata }, { k: "v" });
    e = wf.effects[1].request;
    assert.deepEqual([e.system.name, e.actor.id.name, e.actor.id.parent, e.registerRef], ["other-sys", "inst-1", "tmpl", "tmpl"]);
    assert.equal(e.pooled, true);
    assert.equal(Number(e.scheduledTo), 1893456000123);
    assert.ok(e.noop);

    wf = (await call("Pub")).response.workflow;
    assert.equal(wf.broadcast.channelGroup, "news");
    assert.equal(addValue(wf.broadcast.value), 99);
    wf = (await call("Ping")).response.workflow;
    assert.equal(wf.broadcast.channelGroup, "ping");
    assert.ok(wf.broadcast.noop);

    r = await call("Fail");
    assert.deepEqual([r.error?.code, r.error?.message], [StatusCode.ABORTED, "changed my mind"]);

    r = await call("Nothing");
    assert.ok(r.response);
    assert.equal(r.response.workflow ?? null, null);
    assert.deepEqual(bad, [], "every bad argument throws a TypeError");
  });

  it("exposes the W3C trace context and side effects carry it on", async () => {
    gw = await FakeGateway.start();
    const h = new ActorHost(gw.target, "spawn-system", { minBackoffMs: 20, maxBackoffMs: 200, logger: testLogger });
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const own = "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-00f067aa0ba902b7-01";
    const seen: Array<[string | undefined, string | undefined, object]> = [];
    h.addActor({
      name: "a",
      actions: {
        Traced: (ctx) => {
          seen.push([ctx.traceparent, ctx.traceId, ctx.traceContext()]);
          ctx.sideEffect("b", "Note");
          ctx.sideEffect("c", "Note", null, { metadata: { traceparent: own } });
        },
      },
    });
    host = h;
    h.start();
    const s = await gw.nextStream("the registration");
    await h.waitRegistered(T);
    s.sendTask(1, "Traced", { actor: "a", metadata: { traceparent: tp, tracestate: "k=v", other: "x" } });
    let wf = ((await s.result("Traced")) as any).response.workflow;
    assert.deepEqual(seen[0], [tp, "4bf92f3577b34da6a3ce929d0e0e4736", { traceparent: tp, tracestate: "k=v" }]);
    assert.deepEqual({ ...wf.effects[0].request.metadata }, { traceparent: tp, tracestate: "k=v" });
    assert.equal(wf.effects[1].request.metadata.traceparent, own);
    s.sendTask(2, "Traced", { actor: "a" });
    wf = ((await s.result("Traced")) as any).response.workflow;
    assert.deepEqual(seen[1], [undefined, undefined, {}]);
    assert.deepEqual({ ...(wf.effects[0].request.metadata ?? {}) }, {});
  });
});
