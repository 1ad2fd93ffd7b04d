/**
 * TLS, mTLS and bearer tokens in SpawnClient and ActorHost, against an
 * in-process fake gateway serving mTLS (client certificates required and
 * verified), with certificates made by tests/tls/mkcerts.sh in a temporary
 * directory: CA + certificate + key reach it; no client certificate, a
 * certificate of another CA, or a CA that did not sign the gateway fail the
 * handshake with UNAVAILABLE; the token travels as
 * `authorization: Bearer <token>` exactly once per call and on the host's
 * stream; SPAWN_TLS_* / SPAWN_TOKEN fallbacks; unusable files throw
 * TLSConfigError at create.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";

import { ActorHost, CONNECT_METHOD, INVOKE_METHOD, SpawnClient, SpawnError, StatusCode, TLSConfigError, protocol } from "../src/index.js";
import { AsyncQueue, ROOT, T } from "./helpers.js";

const ENV = ["SPAWN_TLS_CA", "SPAWN_TLS_CERT", "SPAWN_TLS_KEY", "SPAWN_TLS_SERVER_NAME", "SPAWN_TOKEN"];
for (const v of ENV) delete process.env[v]; // tests must not inherit a developer's settings

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "spawn-node-tls-"));
const P = (name: string): string => path.join(tmp, name);
execFileSync("bash", [path.join(ROOT, "tests", "tls", "mkcerts.sh"), tmp], { stdio: "inherit" });

/** With the environment set to env for the duration of fn (restored after). */
function withEnv<R>(env: { [k: string]: string }, fn: () => R): R {
  const saved = ENV.map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The fake: Invoke and Connect; records each call's authorization entries. */
class FakeGateway {
  readonly auth = new AsyncQueue<[string, string[]]>();
  target = "";
  private constructor(private readonly server: grpc.Server) {}

  static async start(tls: boolean): Promise<FakeGateway> {
    const p = protocol();
    const server = new grpc.Server();
    const gw = new FakeGateway(server);
    const record = (method: string, md: grpc.Metadata): void =>
      gw.auth.push([method, md.get("authorization").map(String)]);
    server.addService(
      {
        Invoke: {
          path: INVOKE_METHOD,
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => p.InvocationRequest.decode(b),
          responseSerialize: (m: object) => Buffer.from(p.InvocationResponse.encode(m).finish()),
          responseDeserialize: (b: Buffer) => b,
        },
        Connect: {
          path: CONNECT_METHOD,
          requestStream: true,
          responseStream: true,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => p.HostMessage.decode(b),
          responseSerialize: (m: object) => Buffer.from(p.GatewayMessage.encode(m).finish()),
          responseDeserialize: (b: Buffer) => b,
        },
      },
      {
        Invoke: (call: grpc.ServerUnaryCall<any, object>, cb: grpc.sendUnaryData<object>) => {
          record("Invoke", call.metadata);
          cb(null, {});
        },
        Connect: (call: grpc.ServerDuplexStream<any, object>) => {
          record("Connect", call.metadata);
          let first = true;
          call.on("data", () => {
            if (!first) return;
            first = false;
            call.write({ registration: { status: { status: p.Status.values["OK"] } } });
          });
          call.on("end", () => call.end());
          call.on("error", () => undefined);
        },
      },
    );
    const creds = tls
      ? grpc.ServerCredentials.createSsl(fs.readFileSync(P("ca.pem")), [{ private_key: fs.readFileSync(P("server.key")), cert_chain: fs.readFileSync(P("server-chain.pem")) }], true)
      : grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", creds, (e, port) => (e ? rej(e) : res(port))));
    gw.target = `127.0.0.1:${port}`;
    return gw;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

const MTLS = { tlsCa: P("ca.pem"), tlsCert: P("client.pem"), tlsKey: P("client.key") };

describe("TLS and tokens", () => {
  let gw: FakeGateway;
  const clients: SpawnClient[] = [];
  const client = (opts: object): SpawnClient => {
    const c = new SpawnClient(gw.target, { failFast: true, deadlineMs: T, ...opts });
    clients.push(c);
    return c;
  };
  const refused = async (c: SpawnClient): Promise<void> => {
    await assert.rejects(c.invoke({ system: "sys", actor: "a", action: "Get", deadlineMs: 0 }), (e: unknown) => {
      assert.ok(e instanceof SpawnError);
      assert.equal(e.code, StatusCode.UNAVAILABLE);
      return true;
    });
    assert.equal(gw.auth.size, 0, "a refused call reached the gateway");
  };

  before(async () => {
    gw = await FakeGateway.start(true);
  });
  after(() => {
    for (const c of clients) c.close();
    gw.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("mTLS: CA + certificate + key reach the gateway, the token once per call", async () => {
    const c = client({ ...MTLS, token: "tok-ts" });
    for (let i = 0; i < 3; i++) {
      assert.equal(await c.invoke({ system: "sys", actor: "a", action: "Get" }), undefined);
      assert.deepEqual(await gw.auth.get(), ["Invoke", ["Bearer tok-ts"]]);
    }
    await client(MTLS).invoke({ system: "sys", actor: "a", action: "Get" });
    assert.deepEqual(await gw.auth.get(), ["Invoke", []]);
  });

  it("no client certificate: UNAVAILABLE at the handshake", async () => {
    await refused(client({ tlsCa: P("ca.pem"), tlsCert: "", tlsKey: "", token: "tok" }));
  });

  it("a client certificate of another CA: UNAVAILABLE", async () => {
    await refused(client({ tlsCa: P("ca.pem"), tlsCert: P("rogue.pem"), tlsKey: P("rogue.key") }));
  });

  it("trusting the wrong CA: UNAVAILABLE", async () => {
    await refused(client({ tlsCa: P("rogue-ca.pem"), tlsCert: P("client.pem"), tlsKey: P("client.key") }));
  });

  it("plaintext against TLS: UNAVAILABLE", async () => {
    await refused(client({}));
  });

  it("the server-name override is checked against the certificate", async () => {
    await client({ ...MTLS, tlsServerName: "localhost" }).invoke({ system: "sys", actor: "a", action: "Get" });
    assert.deepEqual(await gw.auth.get(), ["Invoke", []]);
    await refused(client({ ...MTLS, tlsServerName: "gateway.elsewhere.test" }));
  });

  it("reads SPAWN_TLS_* and SPAWN_TOKEN when options are not given; '' = none", async () => {
    const env = { SPAWN_TLS_CA: P("ca.pem"), SPAWN_TLS_CERT: P("client.pem"), SPAWN_TLS_KEY: P("client.key"), SPAWN_TOKEN: "tok-env", SPAWN_TLS_SERVER_NAME: "localhost" };
    const [c1, c2, c3] = withEnv(env, () => [client({}), client({ token: "tok-opt" }), client({ tlsCert: "", tlsKey: "" })]);
    await c1!.invoke({ system: "sys", actor: "a", action: "Get" });
    assert.deepEqual(await gw.auth.get(), ["Invoke", ["Bearer tok-env"]]);
    await c2!.invoke({ system: "sys", actor: "a", action: "Get" });
    assert.deepEqual(await gw.auth.get(), ["Invoke", ["Bearer tok-opt"]]);
    await refused(c3!);
  });

  it("unusable files throw TLSConfigError at create", () => {
    const bad = [
      { tlsCa: P("missing.pem") },
      { tlsCa: P("ca.db/serial") }, // no PEM in it
      { tlsCa: P("ca.pem"), tlsCert: P("client.pem"), tlsKey: P("missing.key") },
      { tlsCa: P("ca.pem"), tlsCert: P("missing.pem"), tlsKey: P("client.key") },
      { tlsCa: P("ca.pem"), tlsCert: P("client.pem") },
      { tlsCa: P("ca.pem"), tlsKey: P("client.key") },
      { tlsCert: P("client.pem"), tlsKey: P("client.key") },
      { tlsServerName: "localhost" },
    ];
    for (const o of bad) {
      assert.throws(() => new SpawnClient(gw.target, o), TLSConfigError, JSON.stringify(o));
      assert.throws(() => new ActorHost(gw.target, "sys", o), TLSConfigError, JSON.stringify(o));
    }
    assert.throws(() => new SpawnClient(gw.target, { tlsCa: P("missing.pem") }), /missing\.pem/);
    assert.throws(() => new SpawnClient(gw.target, { token: "two\nlines" }), TypeError);
    withEnv({ SPAWN_TLS_CA: P("missing.pem") }, () => assert.throws(() => new SpawnClient(gw.target), TLSConfigError));
  });

  it("token over plaintext; a TLS client against a plaintext gateway is refused", async () => {
    const plain = await FakeGateway.start(false);
    try {
      const c = new SpawnClient(plain.target, { token: "plain", deadlineMs: T });
      await c.invoke({ system: "sys", actor: "a", action: "Get" });
      assert.deepEqual(await plain.auth.get(), ["Invoke", ["Bearer plain"]]);
      c.close();
      const t = new SpawnClient(plain.target, { tlsCa: P("ca.pem"), failFast: true });
      await assert.rejects(t.invoke({ system: "sys", actor: "a", action: "Get", deadlineMs: 0 }), (e: unknown) => e instanceof SpawnError && e.code === StatusCode.UNAVAILABLE);
      t.close();
    } finally {
      plain.stop();
    }
  });

  const host = (opts: object, warnings: string[]): ActorHost => {
    const h = new ActorHost(gw.target, "sys", { minBackoffMs: 20, maxBackoffMs: 100, logger: { warn: (m) => warnings.push(m) }, ...opts });
    h.addActor({ name: "a", stateful: false, actions: { Get: () => undefined } });
    return h.start();
  };

  it("mTLS host registers with its token on the stream", async () => {
    const h = host({ tlsCa: P("ca.pem"), tlsCert: P("host.pem"), tlsKey: P("host.key"), token: "tok-host" }, []);
    try {
      await h.waitRegistered(T);
      assert.deepEqual(await gw.auth.get(), ["Connect", ["Bearer tok-host"]]);
    } finally {
      await h.stop(T);
    }
  });

  it("a host without a client certificate, or trusting the wrong CA, never registers", async () => {
    for (const o of [
      { tlsCa: P("ca.pem"), tlsCert: "", tlsKey: "", token: "secret-tok" },
      { tlsCa: P("rogue-ca.pem"), tlsCert: P("host.pem"), tlsKey: P("host.key") },
    ]) {
      const warnings: string[] = [];
      const h = host(o, warnings);
      try {
        await assert.rejects(h.waitRegistered(1000));
        assert.ok(warnings.some((w) => w.includes("UNAVAILABLE")), warnings.join("\n"));
        assert.ok(!warnings.some((w) => w.includes("secret-tok")));
        assert.equal(gw.auth.size, 0);
      } finally {
        await h.stop(T);
      }
    }
  });
});
