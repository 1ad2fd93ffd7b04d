/**
 * A SpawnClient given one DNS name with three addresses (issue 11, section
 * 3; docs/sdk/typescript.md "Several gateways"), against three real gateways
 * ($SPAWN_GATEWAY_BIN; skipped when unset). The name comes from a DNS server
 * of the test's own (dnsmasq on a free loopback port answering gw.spawn.test
 * with 127.0.0.1, .2 and .3 from a file; never /etc/hosts); the gateways
 * listen on one port of those addresses, each with its own Node host. The
 * client's target "dns://127.0.0.1:DNSPORT/gw.spawn.test:PORT" names that
 * server: grpc-js asks it only with GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true
 * (else it resolves with the system's getaddrinfo and ignores the server),
 * set before grpc-js loads, in this file's own process.
 */
import "./alt-resolver.js";

import * as assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";

import { type ActorHost, SpawnClient } from "../src/index.js";
import { T } from "./helpers.js";
import { BIN, type Gateway, echoHost, kill, registered, startDns, startGateway } from "./gateways.js";

describe("one DNS name with several gateways", { skip: !BIN && "SPAWN_GATEWAY_BIN is not set" }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spawn-node-dns-"));
  const gws: Gateway[] = [];
  const hosts: ActorHost[] = [];
  const clients: SpawnClient[] = [];
  const dnsProcs: ChildProcess[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hosts) await h.stop(1000);
    for (const g of gws) await kill(g);
    for (const p of dnsProcs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reaches three gateways through one DNS name with three addresses", async () => {
    const hostsFile = path.join(dir, "hosts");
    fs.writeFileSync(hostsFile, [1, 2, 3].map((i) => `127.0.0.${i} gw.spawn.test\n`).join(""));
    const dnsPort = await startDns(hostsFile, dnsProcs);
    const counts = [[0], [0], [0]];
    const mine: Gateway[] = [];
    let port = 0;
    for (let i = 0; i < 3; i++) {
      const g = await startGateway(path.join(dir, `d${i}.db`), `127.0.0.${i + 1}:${port}`);
      port = Number(g.target.split(":")[1]);
      gws.push(g);
      mine.push(g);
      const h = echoHost(g.target, "it", counts[i]!);
      hosts.push(h);
      h.start();
      await registered(h, 1);
    }
    const target = `dns://127.0.0.1:${dnsPort}/gw.spawn.test:${port}`;
    const c = new SpawnClient(target, { deadlineMs: 3 * T });
    clients.push(c);
    for (let i = 0; i < 90; i++) await c.invoke({ system: "it", actor: "echo", action: "Echo" });
    for (let i = 0; i < 3; i++) {
      process.stderr.write(`dns node: ${mine[i]!.target} served ${counts[i]![0]} of 90 calls\n`);
      assert.ok(counts[i]![0]! >= 10, `${mine[i]!.target} served ${counts[i]![0]} of 90 calls`);
    }
    // The client learns of the death when its connection to .2 breaks: a
    // call round robin put on that connection just before fails
    // UNAVAILABLE (ambiguous, so not retried). That is the first pick of
    // .2, one of the first three calls; every later call must succeed.
    await kill(mine[1]!);
    let lost = -1;
    for (let i = 0; i < 30; i++) {
      try {
        await c.invoke({ system: "it", actor: "echo", action: "Echo" });
      } catch (e) {
        const code = (e as { code?: number }).code;
        if (lost >= 0 || i >= 3 || code !== 14) throw e;
        process.stderr.write(`dns node: call ${i}, put on the dying connection: ${String(e)}\n`);
        lost = i;
      }
    }
  });

});
