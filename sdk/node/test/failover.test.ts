/**
 * SpawnClient and ActorHost given several gateways (issue 11, section 3;
 * docs/sdk/typescript.md "Several gateways"), against three real gateways
 * ($SPAWN_GATEWAY_BIN; skipped when unset, as the other end-to-end tests).
 *
 * Each gateway has its own SQLite store and its own Node host serving a
 * stateless "echo" that counts its calls, so the answer does not depend on
 * the member that served it (no cluster routing needed here).
 * - A client given the three addresses spreads calls over all three; one
 *   gateway is killed (SIGKILL) under load: only calls around the moment the
 *   client sees its connection close fail (the ones in flight, at times one
 *   made just before it dropped the member), each UNAVAILABLE; every call
 *   after that succeeds; the gateway is started again on its port and gets
 *   calls again.
 * - A dns:/// target works (a name with several addresses: dns-name.test.ts).
 * - A host given the three addresses registers with one; killed, it
 *   registers with a survivor within its backoff.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";

import { ActorHost, SpawnClient, SpawnError, StatusCode, gatewayTarget } from "../src/index.js";
import { T } from "./helpers.js";
import { BIN, type Gateway, echoHost, kill, registered, startGateway } from "./gateways.js";

describe("several gateways", { skip: !BIN && "SPAWN_GATEWAY_BIN is not set" }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spawn-node-failover-"));
  const gws: Gateway[] = [];
  const hosts: ActorHost[] = [];
  const clients: SpawnClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hosts) await h.stop(1000);
    for (const g of gws) await kill(g);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("turns a list into one round-robin target", () => {
    assert.equal(gatewayTarget("127.0.0.1:1, 127.0.0.1:2").target, "ipv4:127.0.0.1:1,127.0.0.1:2");
    assert.equal(gatewayTarget("[::1]:1,[::1]:2").target, "ipv6:[::1]:1,[::1]:2");
    assert.equal(gatewayTarget("dns:///gw:1").target, "dns:///gw:1");
    for (const bad of ["gw1:1,gw2:1", "127.0.0.1:1,[::1]:2", "127.0.0.1:0,127.0.0.1:1", "127.0.0.1:1,"]) {
      assert.throws(() => gatewayTarget(bad), TypeError, bad);
    }
    assert.throws(() => gatewayTarget("127.0.0.1:1,127.0.0.2:1", true), /tlsServerName/);
    gatewayTarget("127.0.0.1:1,127.0.0.2:1", true, true);
  });

  it("spreads calls over three gateways and survives a kill", async () => {
    const counts = [[0], [0], [0]];
    const mine: Gateway[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await startGateway(path.join(dir, `s${i}.db`));
      gws.push(g);
      mine.push(g);
      const h = echoHost(g.target, "it", counts[i]!);
      hosts.push(h);
      h.start();
      await registered(h, 1);
    }
    const c = new SpawnClient(mine.map((g) => g.target).join(","), { deadlineMs: 3 * T });
    clients.push(c);
    for (let i = 0; i < 90; i++) await c.invoke({ system: "it", actor: "echo", action: "Echo" });
    for (let i = 0; i < 3; i++) {
      process.stderr.write(`spread node: gateway ${i} served ${counts[i]![0]} of 90 calls\n`);
      assert.ok(counts[i]![0]! >= 10, `gateway ${i} served ${counts[i]![0]} of 90 calls`);
    }

    // Four concurrent loops; gateway 1 killed while they run.
    const records: Array<{ start: number; end: number; err?: unknown }> = [];
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const start = performance.now();
        try {
          await c.invoke({ system: "it", actor: "echo", action: "Echo" });
          records.push({ start, end: performance.now() });
        } catch (err) {
          records.push({ start, end: performance.now(), err });
        }
      }
    };
    const until = async (n: number): Promise<void> => {
      const goal = records.length + n;
      const end = Date.now() + 3 * T;
      while (records.length < goal) {
        assert.ok(Date.now() < end, "the load made no progress");
        await new Promise((r) => setImmediate(r));
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await until(100);
    await kill(mine[1]!);
    const killed = performance.now();
    await until(200);
    stop = true;
    await Promise.all(loops);
    // The client sees the member's connection close a little after the
    // kill (Node delivers the child's exit and the socket's close in no fixed
    // order) and drops the member from its round robin just after that: the
    // calls in flight on it fail then, and so may one started in that short
    // window. Every failure is UNAVAILABLE, the close is seen promptly, all
    // failures happen around that moment (the first + 250 ms), and every
    // call after it succeeds.
    const failed = records.filter((r) => r.err !== undefined);
    const seen = failed.length ? Math.min(...failed.map((r) => r.end)) : killed;
    for (const r of failed) {
      process.stderr.write(`spread node: call started ${(r.start - killed).toFixed(1)} ms from the kill, failed ${(r.end - killed).toFixed(1)}: ${String(r.err)}\n`);
      assert.ok(r.err instanceof SpawnError && r.err.code === StatusCode.UNAVAILABLE, String(r.err));
      assert.ok(r.end - seen <= 250, `a call failed ${(r.end - seen).toFixed(1)} ms after the dead connection was seen: ${String(r.err)}`);
    }
    assert.ok(seen - killed < 2000, `the dead connection was seen ${(seen - killed).toFixed(1)} ms after the kill`);
    process.stderr.write(`spread node: ${records.length} calls under load, ${failed.length} failed\n`);

    // Restarted on its port: its host registers again, the client uses it.
    const h1 = hosts[hosts.length - 2]!;
    const n = h1.registrations;
    const again = await startGateway(path.join(dir, "s1.db"), mine[1]!.target);
    gws.push(again);
    await registered(h1, n + 1);
    const before = counts[1]![0]!;
    for (let i = 0; i < 30; i++) await c.invoke({ system: "it", actor: "echo", action: "Echo" });
    assert.ok(counts[1]![0]! > before, "the restarted gateway got no call");
  });

  it("reaches a gateway through a dns:/// target", async () => {
    const g = await startGateway(path.join(dir, "dns.db"));
    gws.push(g);
    const h = echoHost(g.target, "it", [0]);
    hosts.push(h);
    h.start();
    await registered(h, 1);
    const c = new SpawnClient(`dns:///localhost:${g.target.split(":")[1]}`, { deadlineMs: 3 * T });
    clients.push(c);
    for (let i = 0; i < 5; i++) await c.invoke({ system: "it", actor: "echo", action: "Echo" });
  });

  it("moves a host of three gateways to a survivor", async () => {
    const mine: Gateway[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await startGateway(path.join(dir, `r${i}.db`));
      gws.push(g);
      mine.push(g);
    }
    const h = echoHost(mine.map((g) => g.target).join(","), "roam", [0]);
    hosts.push(h);
    h.start();
    await registered(h, 1);
    const alive = [true, true, true];
    const serving = async (): Promise<number> => {
      const found: number[] = [];
      for (let i = 0; i < 3; i++) {
        if (!alive[i]) continue;
        const f = new SpawnClient(mine[i]!.target, { failFast: true, deadlineMs: T });
        try {
          await f.invoke({ system: "roam", actor: "echo", action: "Echo" });
          found.push(i);
        } catch {
          // not this one
        } finally {
          f.close();
        }
      }
      assert.equal(found.length, 1, `gateways answering for the host: ${found.join(",")}`);
      return found[0]!;
    };
    let on = await serving();
    for (let round = 1; round <= 2; round++) {
      const n = h.registrations;
      const t0 = performance.now();
      await kill(mine[on]!);
      alive[on] = false;
      await registered(h, n + 1);
      const t1 = performance.now();
      const next = await serving();
      process.stderr.write(`roam node: round ${round}: killed gateway ${on}, registered with ${next} after ${(t1 - t0).toFixed(1)} ms\n`);
      assert.notEqual(next, on);
      on = next;
    }
  });
});
