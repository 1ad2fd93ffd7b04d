/**
 * SpawnClient over gateway restarts, against the real gateway
 * ($SPAWN_GATEWAY_BIN; skipped when unset): the gateway is SIGKILLed and
 * started again on the same address (a TCP port, a unix socket), and the
 * first call of a client that was idle across the restart must not fail
 * because of its dead connection (issue 9, item 7).
 *
 * Two long-lived clients: A calls an actor nobody registered right after
 * the new gateway prints `listening` (the answer must be the new gateway's
 * NOT_FOUND); B calls Add once the Node host has registered again. A third
 * client, made while the gateway is down, calls while it is down and must
 * get the new gateway's answer. The times are printed, not asserted.
 */
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";

import { ActorHost, SpawnClient, SpawnError, StatusCode, pack, unpackObject } from "../src/index.js";
import { T, inc, testLogger } from "./helpers.js";

const BIN = process.env["SPAWN_GATEWAY_BIN"];
const SYSTEM = "spawn-system";
const KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

interface Gateway {
  proc: ChildProcess;
  port: number;
}

/** Start the gateway on `listen`; resolves with its port once it printed `listening`. */
function startGateway(dir: string, listen: string): Promise<Gateway> {
  if (!BIN) throw new Error("SPAWN_GATEWAY_BIN is not set");
  const env: { [k: string]: string } = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SPAWN_") && v !== undefined) env[k] = v;
  env["SPAWN_STATESTORE_KEY"] = KEY;
  const proc = spawn(BIN, ["--listen", listen, "--statestore", `sqlite://${path.join(dir, "s.db")}`, "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "ignore"],
    env,
  });
  return new Promise<Gateway>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the gateway did not print 'listening' within ${T} ms`));
    }, T);
    proc.stdout?.setEncoding("utf8");
    proc.stdout?.on("data", (d: string) => {
      out += d;
      const m = /^listening \S+ (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${code ?? sig}) before listening`));
    });
  });
}

function kill(g: Gateway): Promise<void> {
  if (g.proc.exitCode !== null || g.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    g.proc.once("exit", () => resolve());
    g.proc.kill("SIGKILL");
  });
}

async function callNobody(c: SpawnClient): Promise<unknown> {
  try {
    await c.invoke({ system: SYSTEM, actor: "nobody-registered-this", action: "Get", deadlineMs: 3 * T });
    return null;
  } catch (e) {
    return e;
  }
}

function assertNotFound(e: unknown, what: string): void {
  assert.ok(e instanceof SpawnError, `${what}: ${String(e)}`);
  assert.equal(e.code, StatusCode.NOT_FOUND, `${what}: ${e.code} ${e.message}`);
}

describe("SpawnClient over gateway restarts", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spawn-node-resume-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const transport of ["tcp", "unix"]) {
    it(`a long-lived client resumes after a restart on the same ${transport} address`, { skip: BIN ? false : "SPAWN_GATEWAY_BIN is not set", timeout: 60000 }, async () => {
      const tdir = fs.mkdtempSync(path.join(dir, `${transport}-`));
      const sock = `unix:${path.join(tdir, "gw.sock")}`;
      let gw = await startGateway(tdir, transport === "tcp" ? "127.0.0.1:0" : sock);
      const listen = transport === "tcp" ? `127.0.0.1:${gw.port}` : sock;
      const clients: SpawnClient[] = [];
      const host = new ActorHost(listen, SYSTEM, { minBackoffMs: 20, maxBackoffMs: 50, logger: testLogger });
      try {
        host.addActor({
          name: "incrementor",
          stateType: inc.State,
          actions: {
            Add: async (ctx) => {
              const s = unpackObject<{ total: number }>(ctx.state, inc.State);
              s.total += unpackObject<{ value: number }>(ctx.payload, inc.Add).value;
              return { state: pack(inc.State, s), reply: pack(inc.Total, { total: s.total }), checkpoint: true };
            },
          },
        });
        host.start();
        await host.waitRegistered(T);
        const a = new SpawnClient(listen);
        const b = new SpawnClient(listen);
        clients.push(a, b);
        const add = async (): Promise<number> =>
          unpackObject<{ total: number }>(await b.invoke({ system: SYSTEM, actor: "incrementor", action: "Add", payload: pack(inc.Add, { value: 1 }), deadlineMs: T }), inc.Total).total;
        assertNotFound(await callNobody(a), "before the restart");
        assert.ok((await add()) > 0);

        for (let round = 1; round <= 3; round++) {
          // The next registration, whenever it comes (before or after the
          // new gateway prints `listening`).
          const registered = new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error("the host did not register again")), 3 * T);
            host.once("registered", () => {
              clearTimeout(t);
              resolve();
            });
          });
          registered.catch(() => undefined); // awaited below; no unhandled rejection if a step fails first
          await kill(gw);
          const early = new SpawnClient(listen);
          clients.push(early);
          const earlyCall = callNobody(early);
          gw = await startGateway(tdir, listen);
          const t0 = performance.now();
          assertNotFound(await callNobody(a), `round ${round}: the first call after the restart`);
          const t1 = performance.now();
          assertNotFound(await earlyCall, `round ${round}: a call made while the gateway was down`);
          await registered;
          const t2 = performance.now();
          let total: number;
          try {
            total = await add();
          } catch (e) {
            assert.fail(`round ${round}: Add after the restart: ${String(e)}`);
          }
          const t3 = performance.now();
          assert.ok(total > 0);
          process.stderr.write(
            `resume typescript ${transport} round ${round}: listening -> first answer ${(t1 - t0).toFixed(1)} ms; ` +
              `host registered -> first Add OK ${(t3 - t2).toFixed(1)} ms; listening -> first Add OK ${(t3 - t0).toFixed(1)} ms\n`,
          );
        }
      } finally {
        for (const c of clients) c.close();
        await host.stop(T);
        await kill(gw);
      }
    });
  }
});
