/**
 * Real gateways for failover.test.ts and dns-name.test.ts: each on its own
 * SQLite store, hosts serving a stateless "echo" that counts its calls, and
 * a DNS server of the test's own (dnsmasq).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as dgram from "node:dgram";
import * as fs from "node:fs";

import { ActorHost } from "../src/index.js";
import { T, testLogger } from "./helpers.js";

export const BIN = process.env["SPAWN_GATEWAY_BIN"];
const KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

export interface Gateway {
  proc: ChildProcess;
  target: string;
}

/** dnsmasq answering only from hostsFile on a free port of 127.0.0.1; resolves with the port once it serves. */
export async function startDns(hostsFile: string, procs: ChildProcess[]): Promise<number> {
  const dnsmasq = "/usr/sbin/dnsmasq";
  fs.accessSync(dnsmasq, fs.constants.X_OK); // Debian dnsmasq-base (scripts/install-deps.sh)
  for (let attempt = 0; attempt < 3; attempt++) {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", () => resolve()));
    const port = sock.address().port;
    await new Promise<void>((resolve) => sock.close(() => resolve()));
    const args = ["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", `--addn-hosts=${hostsFile}`];
    args.push("--listen-address=127.0.0.1", "--bind-interfaces", `--port=${port}`, "--pid-file=", "--log-facility=-");
    if (process.geteuid?.() === 0) args.push("--user=root");
    // Its log on stderr (Node's stdio are sockets, which /dev/stdout cannot open).
    const proc = spawn(dnsmasq, args, { stdio: ["ignore", "ignore", "pipe"] });
    procs.push(proc);
    // Its log says "read FILE - N names" once it serves; it exits at once when the port was taken meanwhile.
    const ok = await new Promise<boolean>((resolve) => {
      let out = "";
      const timer = setTimeout(() => resolve(false), T);
      proc.stderr?.setEncoding("utf8");
      proc.stderr?.on("data", (d: string) => {
        out += d;
        if (/ names$/m.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      proc.on("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ok) return port;
    proc.kill("SIGKILL");
  }
  throw new Error("dnsmasq did not start");
}

export function startGateway(db: string, listen = "127.0.0.1:0"): Promise<Gateway> {
  if (!BIN) throw new Error("SPAWN_GATEWAY_BIN is not set");
  const env: { [k: string]: string } = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SPAWN_") && v !== undefined) env[k] = v;
  env["SPAWN_STATESTORE_KEY"] = KEY;
  const proc = spawn(BIN, ["--listen", listen, "--statestore", `sqlite://${db}`, "--log-level", "warn"], {
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
      const m = /^listening (\S+):\d+ (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, target: `${m[1]}:${m[2]}` });
      }
    });
    proc.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${code ?? sig}) before listening`));
    });
  });
}

export function kill(g: Gateway): Promise<void> {
  if (g.proc.exitCode !== null || g.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    g.proc.once("exit", () => resolve());
    g.proc.kill("SIGKILL");
  });
}

/** A host of `system` on target whose "echo" counts its calls in count[0]. */
export function echoHost(target: string, system: string, count: number[]): ActorHost {
  const h = new ActorHost(target, system, { logger: testLogger, minBackoffMs: 15, maxBackoffMs: 200 });
  h.addActor({
    name: "echo",
    stateful: false,
    actions: {
      Echo: (ctx) => {
        count[0]!++;
        return { reply: ctx.payload };
      },
    },
  });
  return h;
}

export function registered(h: ActorHost, n: number): Promise<void> {
  if (h.registrations >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not registered ${n} times within ${T} ms`)), T);
    const on = (): void => {
      if (h.registrations < n) return;
      clearTimeout(t);
      h.off("registered", on);
      resolve();
    };
    h.on("registered", on);
  });
}

