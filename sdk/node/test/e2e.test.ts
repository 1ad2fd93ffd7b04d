/**
 * End to end against the real gateway: $SPAWN_GATEWAY_BIN (skipped when
 * unset; when set, a gateway that fails to start fails the test).
 *
 * A Node host serves an Incrementor (state total, action Add), the Node
 * client adds 1 twice and gets 2; errors come back through the gateway; the
 * gateway restarts on the same statestore, the host reconnects by itself
 * and the total goes on.
 */
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";

import { ActorError, ActorHost, SpawnClient, StatusCode, pack, unpackObject } from "../src/index.js";
import { T, inc, testLogger } from "./helpers.js";

const BIN = process.env["SPAWN_GATEWAY_BIN"];
const SYSTEM = "spawn-system";

interface Gateway {
  proc: ChildProcess;
  /** 127.0.0.1:PORT of the first --listen. */
  target: string;
  stderr: () => string;
}

/** Start the gateway; resolves once it printed `listening ADDR PORT`. */
function startGateway(dir: string, sock: string, extra: string[] = []): Promise<Gateway> {
  if (!BIN) throw new Error("SPAWN_GATEWAY_BIN is not set");
  if (!fs.existsSync(BIN)) throw new Error(`SPAWN_GATEWAY_BIN=${BIN} does not exist`);
  const proc = spawn(
    BIN,
    [
      "--listen",
      "127.0.0.1:0",
      "--listen",
      `unix:${sock}`,
      "--statestore",
      `sqlite://${path.join(dir, "s.db")}`,
      "--log-level",
      process.env["SPAWN_NODE_TEST_LOG"] ? "debug" : "warn",
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SPAWN_THREADS: "2" } },
  );
  let err = "";
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (d: string) => {
    err += d;
    if (process.env["SPAWN_NODE_TEST_LOG"]) process.stderr.write(d);
  });
  return new Promise<Gateway>((resolve, reject) => {
    let out = "";
    const ports: string[] = [];
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the gateway did not print 'listening' within 10 s; stdout: ${out} stderr: ${err}`));
    }, 10000);
    proc.stdout?.setEncoding("utf8");
    proc.stdout?.on("data", (d: string) => {
      out += d;
      for (const line of out.split("\n")) {
        const m = /^listening (\S+) (\d+)$/.exec(line.trim());
        if (m && !ports.includes(m[1] as string)) ports.push(m[1] as string);
        if (m && m[1] === "127.0.0.1:0") {
          clearTimeout(timer);
          resolve({ proc, target: `127.0.0.1:${m[2]}`, stderr: () => err });
        }
      }
    });
    proc.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${e.message}`));
    });
    proc.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${code ?? sig}) before listening: ${err}`));
    });
  });
}

/** SIGTERM the gateway; resolves with its exit code. */
function stopGateway(g: Gateway): Promise<number | null> {
  if (g.proc.exitCode !== null) return Promise.resolve(g.proc.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => g.proc.kill("SIGKILL"), 10000);
    g.proc.once("exit", (code) => {
      clearTimeout(t);
      resolve(code);
    });
    g.proc.kill("SIGTERM");
  });
}

async function addOne(client: SpawnClient, n = 1): Promise<number> {
  const reply = await client.invoke({
    system: SYSTEM,
    actor: "incrementor",
    action: "Add",
    payload: pack(inc.Add, { value: n }),
    deadlineMs: T,
  });
  return unpackObject<{ total: number }>(reply, inc.Total).total;
}

/** A promise with its resolve function. */
function deferred<V>(): { promise: Promise<V>; resolve: (v: V) => void } {
  let resolve!: (v: V) => void;
  const promise = new Promise<V>((r) => (resolve = r));
  return { promise, resolve };
}

/** `p`, or a rejection naming `what` after `ms`. */
function within<V>(p: Promise<V>, ms: number, what: string): Promise<V> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

describe("end to end with spawn-gateway", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spawn-node-e2e-"));
  const sock = path.join(dir, "gw.sock");
  const cleanup: Array<() => unknown> = [];

  after(async () => {
    for (const f of cleanup.reverse()) await f();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("adds 1, adds 1 -> 2; errors; survives a gateway restart", { skip: BIN ? false : "SPAWN_GATEWAY_BIN is not set" }, async () => {
    let gw = await startGateway(dir, sock);
    cleanup.push(() => stopGateway(gw));

    // The host dials the unix socket, which stays the same across restarts.
    const host = new ActorHost(`unix:${sock}`, SYSTEM, { minBackoffMs: 50, maxBackoffMs: 500, logger: testLogger });
    host.addActor({
      name: "incrementor",
      stateType: inc.State,
      snapshotMs: 100,
      deactivateMs: 60000,
      actions: {
        Add: async (ctx) => {
          const s = unpackObject<{ total: number }>(ctx.state, inc.State);
          s.total += unpackObject<{ value: number }>(ctx.payload, inc.Add).value;
          return { state: pack(inc.State, s), reply: pack(inc.Total, { total: s.total }), checkpoint: true };
        },
        Fail: () => {
          throw new ActorError(StatusCode.FAILED_PRECONDITION, "not now");
        },
      },
    });
    host.start();
    cleanup.push(() => host.stop(T));
    await host.waitRegistered(T);
    assert.equal(host.proxyInfo?.proxyName, "spawn-gateway-c");

    let client = new SpawnClient(gw.target);
    cleanup.push(() => client.close());
    assert.equal(await addOne(client), 1);
    assert.equal(await addOne(client), 2);

    // A host's error, and the gateway's NOT_FOUND, reach the client.
    await assert.rejects(client.invoke({ system: SYSTEM, actor: "incrementor", action: "Fail", deadlineMs: T }), {
      code: StatusCode.FAILED_PRECONDITION,
      message: "not now",
    });
    await assert.rejects(client.invoke({ system: SYSTEM, actor: "incrementor", action: "Nope", deadlineMs: T }), {
      code: StatusCode.NOT_FOUND,
    });
    await assert.rejects(client.invoke({ system: SYSTEM, actor: "ghost", action: "Add", deadlineMs: T }), {
      code: StatusCode.NOT_FOUND,
    });
    assert.equal(await addOne(client), 3, "the failed call left the state alone");

    // Restart the gateway on the same statestore: the host comes back by
    // itself and the state survives (every Add was checkpointed).
    const disconnected = new Promise<void>((r) => host.once("disconnected", () => r()));
    assert.equal(await stopGateway(gw), 0, `the gateway exits 0 on SIGTERM; stderr: ${gw.stderr()}`);
    await disconnected;
    client.close();
    gw = await startGateway(dir, sock);
    await host.waitRegistered(T);
    assert.ok(host.registrations >= 2);
    client = new SpawnClient(gw.target);
    assert.equal(await addOne(client), 4);
  });

  // The batched host link (docs/protocol.md): two rounds of 128 concurrent Adds on 128
  // instances, each answered with its own total, with batches and with
  // --host-batch 1 (one message per task and per result).
  for (const [label, flags] of [
    ["with batches", []],
    ["without batches (--host-batch 1)", ["--host-batch", "1"]],
  ] as Array<[string, string[]]>) {
    it(`many concurrent calls ${label}`, { skip: BIN ? false : "SPAWN_GATEWAY_BIN is not set" }, async () => {
      const bdir = fs.mkdtempSync(path.join(dir, "batch-"));
      const gw = await startGateway(bdir, path.join(bdir, "gw.sock"), flags);
      cleanup.push(() => stopGateway(gw));
      const host = new ActorHost(gw.target, SYSTEM, { logger: testLogger });
      host.addActor({
        name: "counter",
        kind: "UNNAMED",
        stateType: inc.State,
        actions: {
          Add: async (ctx) => {
            const s = unpackObject<{ total: number }>(ctx.state, inc.State);
            s.total += unpackObject<{ value: number }>(ctx.payload, inc.Add).value;
            return { state: pack(inc.State, s), reply: pack(inc.Total, { total: s.total }) };
          },
        },
      });
      host.start();
      cleanup.push(() => host.stop(T));
      await host.waitRegistered(T);
      const client = new SpawnClient(gw.target);
      cleanup.push(() => client.close());
      const add = async (i: number, value: number): Promise<number> => {
        const reply = await client.invoke({
          system: SYSTEM,
          actor: `c-${i}`,
          registerRef: "counter",
          action: "Add",
          payload: pack(inc.Add, { value }),
          deadlineMs: T,
        });
        return unpackObject<{ total: number }>(reply, inc.Total).total;
      };
      // Two rounds of 128 concurrent calls: the second sees the first's state.
      const first = await Promise.all(Array.from({ length: 128 }, (_, i) => add(i, i + 1)));
      assert.deepEqual(first, Array.from({ length: 128 }, (_, i) => i + 1));
      const second = await Promise.all(Array.from({ length: 128 }, (_, i) => add(i, 1000)));
      assert.deepEqual(second, Array.from({ length: 128 }, (_, i) => i + 1001));
    });
  }

  it("workflows: pipe, forward, side effects, broadcast, timers", { skip: BIN ? false : "SPAWN_GATEWAY_BIN is not set" }, async () => {
    const wdir = fs.mkdtempSync(path.join(dir, "wf-"));
    const wsock = path.join(wdir, "gw.sock");
    const gw = await startGateway(wdir, wsock);
    cleanup.push(() => stopGateway(gw));
    const value = (a: unknown, t = inc.Add): number => unpackObject<{ value?: number; total?: number }>(a as never, t).value ?? 0;
    const totalOf = (a: unknown, t = inc.Total): number => unpackObject<{ total: number }>(a as never, t).total;

    const logged = deferred<{ value: number; caller: string }>();
    const subA = deferred<{ value: number; caller: string }>();
    const subB = deferred<{ value: number; caller: string }>();
    const ticked = deferred<number>();
    const host = new ActorHost(`unix:${wsock}`, SYSTEM, { minBackoffMs: 50, maxBackoffMs: 500, logger: testLogger });
    host.addActor({
      name: "front",
      stateful: false,
      actions: {
        // Reply Total{v * 10}, piped to back.FromTotal.
        Pipe: (ctx) => {
          ctx.pipe("back", "FromTotal");
          return { reply: pack(inc.Total, { total: value(ctx.payload) * 10 }) };
        },
        Fwd: (ctx) => ctx.forward("back", "Add"),
        Notify: (ctx) => {
          ctx.sideEffect("audit", "Log", ctx.payload);
          return { reply: pack(inc.Total, { total: -1 }) };
        },
        Publish: (ctx) => ctx.broadcast("news", ctx.payload),
      },
    });
    host.addActor({
      name: "back",
      stateType: inc.State,
      actions: {
        FromTotal: (ctx) => ({ reply: pack(inc.Total, { total: totalOf(ctx.payload) + 1 + (ctx.caller?.name === "front" ? 1000 : 0) }) }),
        Add: (ctx) => {
          const s = unpackObject<{ total: number }>(ctx.state, inc.State);
          s.total += value(ctx.payload);
          return { state: pack(inc.State, s), reply: pack(inc.Total, { total: s.total }) };
        },
      },
    });
    host.addActor({
      name: "audit",
      stateType: inc.State,
      actions: { Log: (ctx) => logged.resolve({ value: value(ctx.payload), caller: `${ctx.caller?.system}/${ctx.caller?.name}` }) },
    });
    host.addActor({
      name: "subA",
      channels: ["news"],
      stateType: inc.State,
      actions: { receive: (ctx) => subA.resolve({ value: value(ctx.payload), caller: ctx.caller?.name ?? "" }) },
    });
    host.addActor({
      name: "subB",
      channels: [{ topic: "news", action: "OnNews" }],
      stateType: inc.State,
      actions: { OnNews: (ctx) => subB.resolve({ value: value(ctx.payload), caller: ctx.caller?.name ?? "" }) },
    });
    host.addActor({
      name: "ticker",
      stateType: inc.State,
      timers: { Tick: 50 }, // milliseconds
      actions: {
        Get: (ctx) => ({ reply: pack(inc.Total, { total: unpackObject<{ total: number }>(ctx.state, inc.State).total }) }),
        Tick: (ctx) => {
          const s = unpackObject<{ total: number }>(ctx.state, inc.State);
          s.total += 1;
          if (s.total === 3) ticked.resolve(s.total);
          return { state: pack(inc.State, s) };
        },
      },
    });
    host.start();
    cleanup.push(() => host.stop(T));
    await host.waitRegistered(T);
    const client = new SpawnClient(gw.target);
    cleanup.push(() => client.close());
    const call = (actor: string, action: string, v?: number): Promise<unknown> =>
      client.invoke({ system: SYSTEM, actor, action, payload: v === undefined ? null : pack(inc.Add, { value: v }), deadlineMs: T });

    // Pipe: front's reply (40) feeds back.FromTotal, which sees front as its caller.
    assert.equal(totalOf(await call("front", "Pipe", 4)), 1041);
    // Forward: front's input (Add 5) goes to back.Add.
    assert.equal(totalOf(await call("front", "Fwd", 5)), 5);
    assert.equal(totalOf(await call("front", "Fwd", 2)), 7);
    // Side effect: fired after front's reply, with front as the caller.
    assert.equal(totalOf(await call("front", "Notify", 9)), -1);
    assert.deepEqual(await within(logged.promise, T, "the side effect"), { value: 9, caller: `${SYSTEM}/front` });
    // Broadcast: both subscribers (never invoked before) get it.
    await call("front", "Publish", 6);
    assert.deepEqual(await within(subA.promise, T, "subA"), { value: 6, caller: "front" });
    assert.deepEqual(await within(subB.promise, T, "subB"), { value: 6, caller: "front" });
    // Timer: runs while active, with the state.
    assert.equal(totalOf(await call("ticker", "Get")), 0);
    assert.equal(await within(ticked.promise, T, "three ticks"), 3);
    assert.ok(totalOf(await call("ticker", "Get")) >= 3);
  });
});
