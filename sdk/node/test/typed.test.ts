/**
 * The typed layer generated code stands on: TypeSet/MessageCodec on
 * definitions shaped like protoc-gen-spawn's (nested types, maps, oneofs,
 * enums, int64, bytes, an imported package), typedCall against a stub
 * client, typedActor's checks and results.
 */
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ActorError,
  MessageCodec,
  SpawnError,
  StatusCode,
  TypeSet,
  stateAction,
  statelessAction,
  typedActor,
  typedCall,
  type AnyMsg,
  type InvocationContext,
  type SpawnClient,
} from "../src/index.js";

const types = new TypeSet([
  ["c.Money", { edition: "proto3", fields: { currency: { type: "string", id: 1 }, units: { type: "int64", id: 2 } } }],
  [
    "k.Inv",
    {
      edition: "proto3",
      fields: {
        items: { keyType: "string", type: ".k.Inv.Item", id: 1 },
        status: { type: ".k.Inv.Status", id: 2 },
        history: { rule: "repeated", type: ".k.Inv.Item", id: 3 },
        person: { type: "string", id: 4 },
        teamId: { type: "int64", id: 5 },
        blob: { type: "bytes", id: 6 },
        budget: { keyType: "int32", type: ".c.Money", id: 7 },
        nums: { rule: "repeated", type: "int32", id: 8 },
        note: { type: "string", id: 9, options: { proto3_optional: true } },
      },
      oneofs: { owner: { oneof: ["person", "teamId"] }, _note: { oneof: ["note"] } },
    },
  ],
  ["k.Inv.Item", { edition: "proto3", fields: { sku: { type: "string", id: 1 }, price: { type: ".c.Money", id: 2 } } }],
  ["k.Inv.Status", { edition: "proto3", values: { UNSET: 0, OPEN: 1 } }],
]);

interface Money {
  currency: string;
  units: number;
}
interface Item {
  sku: string;
  price: Money | null;
}
interface Inv {
  items: { [k: string]: Item };
  status: number;
  history: Item[];
  person?: string;
  teamId?: number;
  blob: Uint8Array;
  budget: { [k: string]: Money };
  nums: number[];
  note?: string;
  owner?: "person" | "teamId";
}

const Inv = types.codec<Inv>("k.Inv");
const Money = types.codec<Money>("c.Money");

function ctx(state?: AnyMsg, payload?: AnyMsg): InvocationContext {
  return { actorName: "A", action: "Do", state, payload } as unknown as InvocationContext;
}

describe("MessageCodec", () => {
  it("fills in defaults", () => {
    const d = Inv.create();
    assert.deepEqual({ ...d, blob: [...d.blob] }, {
      items: {}, status: 0, history: [], blob: [], budget: {}, nums: [],
    });
    assert.equal(Inv.typeUrl, "type.googleapis.com/k.Inv");
  });

  it("round-trips maps, oneofs, enums, int64, bytes and nested types", () => {
    const v = Inv.create({
      items: { a: { sku: "x", price: { currency: "EUR", units: 2 ** 40 } } },
      status: 1,
      history: [{ sku: "h" }],
      teamId: 42,
      blob: new Uint8Array([1, 2]),
      budget: { 7: { units: 3 } },
      nums: [1, 2, 3],
      note: "",
    });
    assert.equal(v.items["a"]?.price?.units, 2 ** 40);
    assert.equal(v.history[0]?.price, null);
    assert.equal(v.teamId, 42);
    assert.equal(v.owner, "teamId");
    assert.equal(v.person, undefined);
    assert.equal(v.note, "", "a proto3 optional field keeps its presence");
    assert.deepEqual([...v.blob], [1, 2]);
    assert.equal(v.budget["7"]?.units, 3);
    assert.deepEqual(v.nums, [1, 2, 3]);
    // proto3 encoding: packed repeated, implicit presence.
    assert.deepEqual([...Inv.encode({ nums: [1, 2] })], [0x42, 2, 1, 2]);
    assert.equal(Inv.encode({ status: 0, person: undefined }).length, 0);
  });

  it("unpacks Anys and refuses other types", () => {
    assert.deepEqual(Money.unpack(Money.pack({ currency: "X" })), { currency: "X", units: 0 });
    assert.deepEqual(Money.unpack(undefined), { currency: "", units: 0 });
    assert.throws(() => Money.unpack(Inv.pack({})), (e: unknown) => e instanceof ActorError && e.code === StatusCode.INVALID_ARGUMENT);
    assert.throws(() => Money.unpack(Inv.pack({}), StatusCode.FAILED_PRECONDITION), (e: unknown) => e instanceof ActorError && e.code === StatusCode.FAILED_PRECONDITION);
    assert.throws(() => Money.encode({ units: "nope" as unknown as number }), TypeError);
  });
});

describe("typedCall", () => {
  function stub(reply: AnyMsg | undefined, seen: unknown[]): SpawnClient {
    return {
      invoke: async (req: unknown) => {
        seen.push(req);
        return reply;
      },
    } as unknown as SpawnClient;
  }

  it("sends the typed input and decodes the reply", async () => {
    const seen: Array<{ [k: string]: unknown }> = [];
    const got = await typedCall(
      stub(Money.pack({ units: 9 }), seen),
      { system: "s", actor: "T", action: "Get", unnamed: true, pooled: true },
      Inv,
      Money,
      { teamId: 1 },
      { actor: "t-1", deadlineMs: 50, metadata: { k: "v" } },
    );
    assert.deepEqual(got, { currency: "", units: 9 });
    const req = seen[0] as { [k: string]: unknown };
    assert.equal(req["actor"], "t-1");
    assert.equal(req["registerRef"], "T");
    assert.equal(req["pooled"], true);
    assert.equal(req["deadlineMs"], 50);
    assert.deepEqual(req["metadata"], { k: "v" });
    assert.equal(Inv.unpack(req["payload"] as AnyMsg).teamId, 1);
  });

  it("gives defaults for no reply and INTERNAL for another type", async () => {
    assert.deepEqual(await typedCall(stub(undefined, []), { system: "s", actor: "T", action: "Get" }, Inv, Money, {}), Money.create());
    await assert.rejects(
      typedCall(stub(Inv.pack({}), []), { system: "s", actor: "T", action: "Get" }, Inv, Money, {}),
      (e: unknown) => e instanceof SpawnError && e.code === StatusCode.INTERNAL && /k\.Inv/.test(e.details),
    );
    await assert.rejects(
      typedCall(stub(undefined, []), { system: "s", actor: "T", action: "Get" }, Money, Money, { units: {} as unknown as number }),
      (e: unknown) => e instanceof SpawnError && e.code === StatusCode.INVALID_ARGUMENT,
    );
  });
});

describe("typedActor", () => {
  const def = typedActor<Money>({
    name: "A",
    kind: "NAMED",
    stateful: true,
    state: Money,
    snapshotMs: 0,
    deactivateMs: 5000,
    actions: {
      Do: stateAction(Money, Inv, Money, (s, m) => ({ state: { units: s.units + (m.teamId ?? 0) }, reply: { currency: "R" }, checkpoint: true })),
      Keep: stateAction(Money, Inv, Money, () => undefined),
      Bad: stateAction(Money, Inv, Money, () => ({ reply: { units: "x" as unknown as number } })),
      None: stateAction(Money, Inv, Money, undefined),
    },
  });

  it("carries the contract's settings", () => {
    assert.equal(def.stateType, "c.Money");
    assert.equal(def.deactivateMs, 5000);
    assert.equal(def.snapshotMs, undefined);
    assert.deepEqual(Object.keys(def.actions), ["Do", "Keep", "Bad", "None"]);
    assert.equal(def.channels, undefined);
    assert.equal(def.timers, undefined);
    const sub = typedActor<Money>({
      name: "S",
      kind: "NAMED",
      stateful: true,
      state: Money,
      snapshotMs: 0,
      deactivateMs: 0,
      actions: { Do: stateAction(Money, Inv, Money, () => undefined) },
      channels: [{ topic: "news", action: "Do" }],
      timers: { Do: 100 },
    });
    assert.deepEqual(sub.channels, [{ topic: "news", action: "Do" }]);
    assert.deepEqual(sub.timers, { Do: 100 });
  });

  it("hands typed state and input to the handler and packs its result", async () => {
    const r = (await def.actions["Do"]!(ctx(Money.pack({ units: 2 }), Inv.pack({ teamId: 3 })))) as { [k: string]: AnyMsg | boolean };
    assert.deepEqual(Money.unpack(r["state"] as AnyMsg), { currency: "", units: 5 });
    assert.deepEqual(Money.unpack(r["reply"] as AnyMsg), { currency: "R", units: 0 });
    assert.equal(r["checkpoint"], true);
    assert.deepEqual(await def.actions["Keep"]!(ctx()), {});
  });

  it("fails with the right codes", async () => {
    const code = (c: number) => (e: unknown) => e instanceof ActorError && e.code === c;
    await assert.rejects(async () => def.actions["Do"]!(ctx(Inv.pack({}))), code(StatusCode.FAILED_PRECONDITION));
    await assert.rejects(async () => def.actions["Do"]!(ctx(undefined, Money.pack({}))), code(StatusCode.INVALID_ARGUMENT));
    await assert.rejects(async () => def.actions["Bad"]!(ctx()), code(StatusCode.INTERNAL));
    await assert.rejects(async () => def.actions["None"]!(ctx()), code(StatusCode.UNIMPLEMENTED));
  });

  it("runs stateless actions", async () => {
    const d = typedActor({
      name: "W",
      kind: "POOLED",
      stateful: false,
      snapshotMs: 0,
      deactivateMs: 0,
      actions: { Run: statelessAction(Money, Money, async (m) => ({ units: m.units * 2 })) },
    });
    assert.equal(d.stateType, undefined);
    const r = (await d.actions["Run"]!(ctx(undefined, Money.pack({ units: 4 })))) as { reply: AnyMsg };
    assert.deepEqual(Money.unpack(r.reply), { currency: "", units: 8 });
  });

  it("MessageCodec is exported for instanceof checks", () => {
    assert.ok(Money instanceof MessageCodec);
  });
});
