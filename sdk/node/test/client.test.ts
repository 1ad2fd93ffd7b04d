/** SpawnClient against a fake ActorGateway service. */
import * as assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";

import { INVOKE_METHOD, SPAWN_METHOD, SpawnClient, SpawnError, StatusCode, fromWireAny, pack, protocol, toWireAny, unpackObject } from "../src/index.js";
import { add, inc } from "./helpers.js";

type Answer = (req: any) => { error?: { code: number; details: string }; response?: object; delayMs?: number };

describe("SpawnClient", () => {
  let server: grpc.Server;
  let client: SpawnClient;
  let answer: Answer = () => ({ response: {} });
  const seen: any[] = [];

  before(async () => {
    const p = protocol();
    server = new grpc.Server();
    const unary = (path: string, req: { decode(b: Uint8Array): unknown }, resp: { encode(m: object): { finish(): Uint8Array } }) => ({
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => req.decode(b),
      responseSerialize: (m: object) => Buffer.from(resp.encode(m).finish()),
      responseDeserialize: (b: Buffer) => b,
    });
    const handle = (call: grpc.ServerUnaryCall<any, object>, cb: grpc.sendUnaryData<object>) => {
      seen.push(call.request);
      const a = answer(call.request);
      setTimeout(() => {
        if (a.error) cb({ code: a.error.code, details: a.error.details } as grpc.ServiceError);
        else cb(null, a.response ?? {});
      }, a.delayMs ?? 0);
    };
    server.addService(
      {
        Invoke: unary(INVOKE_METHOD, p.InvocationRequest, p.InvocationResponse),
        Spawn: unary(SPAWN_METHOD, p.SpawnRequest, p.SpawnResponse),
      },
      { Invoke: handle, Spawn: handle },
    );
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) => (e ? rej(e) : res(port))),
    );
    client = new SpawnClient(`127.0.0.1:${port}`);
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  it("sends the invocation and returns the reply Any", async () => {
    answer = () => ({ response: { status: { status: 1 }, value: toWireAny(pack(inc.Total, { total: 7 })) } });
    const reply = await client.invoke({
      system: "sys",
      actor: "c-1",
      action: "Add",
      payload: add(7),
      metadata: { k: "v" },
      registerRef: "counter",
      deadlineMs: 5000,
    });
    assert.equal(reply?.typeUrl, "type.googleapis.com/examples.incrementor.Total");
    assert.deepEqual(unpackObject(reply, inc.Total), { total: 7 });
    const req = seen.at(-1);
    assert.equal(req.system.name, "sys");
    assert.equal(req.actor.id.name, "c-1");
    assert.equal(req.actor.id.system, "sys");
    assert.equal(req.actor.id.parent, "counter");
    assert.equal(req.registerRef, "counter");
    assert.equal(req.actionName, "Add");
    assert.equal(req.async, false);
    assert.deepEqual({ ...req.metadata }, { k: "v" });
    assert.deepEqual(unpackObject(fromWireAny(req.value), inc.Add), { value: 7 });
    assert.ok(!req.noop);
  });

  it("passes a trace context on; metadata of the call's own wins", async () => {
    answer = () => ({ response: { noop: {} } });
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await client.invoke({ system: "s", actor: "a", action: "Get", trace: { traceparent: tp, tracestate: "k=v" } });
    assert.deepEqual({ ...seen.at(-1).metadata }, { traceparent: tp, tracestate: "k=v" });
    const ctxLike = { traceContext: () => ({ traceparent: tp }) };
    await client.invoke({ system: "s", actor: "a", action: "Get", trace: ctxLike, metadata: { k: "v" } });
    assert.deepEqual({ ...seen.at(-1).metadata }, { traceparent: tp, k: "v" });
  });

  it("sends Noop without a payload; a Noop reply is undefined", async () => {
    answer = () => ({ response: { noop: {} } });
    assert.equal(await client.invoke({ system: "s", actor: "a", action: "Get", async: true }), undefined);
    const req = seen.at(-1);
    assert.ok(req.noop);
    assert.ok(!req.value);
    assert.equal(req.async, true);
  });

  it("rejects with the gRPC status code and message", async () => {
    answer = () => ({ error: { code: grpc.status.FAILED_PRECONDITION, details: "not now" } });
    await assert.rejects(
      client.invoke({ system: "s", actor: "a", action: "Boom" }),
      (e: unknown) => e instanceof SpawnError && e.code === 9 && e.details === "not now" && e.message === "not now" && e.codeName === "FAILED_PRECONDITION",
    );
    answer = () => ({ response: { status: { status: 2, message: "no such actor" } } });
    await assert.rejects(client.invoke({ system: "s", actor: "a", action: "X" }), { code: StatusCode.NOT_FOUND, message: "no such actor" });
    answer = () => ({ response: {}, delayMs: 500 });
    await assert.rejects(client.invoke({ system: "s", actor: "a", action: "X", deadlineMs: 50 }), { code: StatusCode.DEADLINE_EXCEEDED });
    await assert.rejects(client.invoke({ system: "", actor: "a", action: "X" }), { code: StatusCode.INVALID_ARGUMENT });
  });

  it("spawns instances", async () => {
    answer = () => ({ response: { status: { status: 1 } } });
    await client.spawn({ system: "sys", actors: [{ name: "c-1", parent: "counter" }, { name: "c-2", parent: "counter" }] });
    const req = seen.at(-1);
    assert.deepEqual(
      req.actors.map((a: any) => [a.name, a.system, a.parent]),
      [
        ["c-1", "sys", "counter"],
        ["c-2", "sys", "counter"],
      ],
    );
    answer = () => ({ error: { code: grpc.status.NOT_FOUND, details: "no such parent actor in that system" } });
    await assert.rejects(client.spawn({ system: "sys", actors: [{ name: "x", parent: "nope" }] }), { code: StatusCode.NOT_FOUND });
    await assert.rejects(client.spawn({ system: "sys", actors: [] }), { code: StatusCode.INVALID_ARGUMENT });
  });

  it("fails with UNAVAILABLE when nothing listens (failFast, or no deadline)", async () => {
    const c = new SpawnClient("unix:/nonexistent/spawn-node-test.sock", { failFast: true });
    try {
      await assert.rejects(c.invoke({ system: "s", actor: "a", action: "X", deadlineMs: 2000 }), { code: StatusCode.UNAVAILABLE });
    } finally {
      c.close();
    }
    const d = new SpawnClient("unix:/nonexistent/spawn-node-test.sock");
    try {
      await assert.rejects(d.invoke({ system: "s", actor: "a", action: "X", deadlineMs: 0 }), { code: StatusCode.UNAVAILABLE });
    } finally {
      d.close();
    }
  });

  it("waits for the gateway up to the deadline by default, and says there was no connection", async () => {
    const target = "unix:/nonexistent/spawn-node-test.sock";
    const c = new SpawnClient(target);
    try {
      await assert.rejects(c.invoke({ system: "s", actor: "a", action: "X", deadlineMs: 300 }), (e: unknown) => {
        assert.ok(e instanceof SpawnError);
        assert.equal(e.code, StatusCode.DEADLINE_EXCEEDED);
        assert.match(e.message, /no connection to the gateway at unix:\/nonexistent/);
        return true;
      });
    } finally {
      c.close();
    }
  });

  it("checks its reconnect delays", () => {
    assert.throws(() => new SpawnClient("127.0.0.1:1", { reconnectMinMs: 0 }), RangeError);
    assert.throws(() => new SpawnClient("127.0.0.1:1", { reconnectMinMs: 100, reconnectMaxMs: 50 }), RangeError);
    new SpawnClient("127.0.0.1:1", { reconnectMinMs: 100 }).close();
  });
});
