/**
 * The typed layer generated code stands on: TypeSet/MessageCodec on
 * definitions shaped like protoc-gen-spawn's (nested types, maps, oneofs,
 * enums, int64, bytes, an imported package), typedCall against a stub
 * client, typedActor's checks and results, and the contract layer generated
 * modules call (ActorClient, contractActor, registerActor).
 */
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ActorClient,
  ActorError,
  MessageCodec,
  SpawnError,
  StatusCode,
  TypeSet,
  contractActor,
  registerActor,
  stateAction,
  statelessAction,
  typedActor,
  typedCall,
  type ActionResult,
  type ActorContract,
  type ActorDefinition,
  type ActorHost,
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

function ctx(state?: AnyMsg, payload?: AnyMsg, actorName = "A", action = "Do"): InvocationContext {
  return { actorName, action, state, payload } as unknown as InvocationContext;
}

/** A SpawnClient whose invoke records its requests and answers `reply`. */
function stubClient(reply: AnyMsg | undefined, seen: unknown[]): SpawnClient {
  return {
    invoke: async (req: unknown) => {
      seen.push(req);
      return reply;
    },
  } as unknown as SpawnClient;
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
  const stub = stubClient;

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

// As a generated module declares them.
interface BankHandlers {
  deposit(state: Money, msg: Inv, ctx: InvocationContext): ActionResult<Money, Money>;
  audit?(state: Money, msg: Inv, ctx: InvocationContext): ActionResult<Money, Money>;
}
const BankContract: ActorContract<BankHandlers, Money> = {
  name: "Bank",
  kind: "NAMED",
  stateful: true,
  state: Money,
  snapshotMs: 0,
  deactivateMs: 7000,
  actions: {
    Deposit: { method: "deposit", input: Inv, output: Money },
    Audit: { method: "audit", input: Inv, output: Money },
  },
};
interface EchoHandlers {
  echo(msg: Money, ctx: InvocationContext): Money;
}
const EchoContract: ActorContract<EchoHandlers> = {
  name: "Echo",
  kind: "POOLED",
  stateful: false,
  snapshotMs: 250,
  deactivateMs: 0,
  actions: { Echo: { method: "echo", input: Money, output: Money } },
};

describe("ActorClient", () => {
  it("calls the contract's actor by name, or the one in opts", async () => {
    const seen: Array<{ [k: string]: unknown }> = [];
    const client = stubClient(Money.pack({ units: 5 }), seen);
    const a = new ActorClient(client, "sys", BankContract);
    assert.equal(a.client, client);
    assert.equal(a.system, "sys");
    assert.equal(a.contract.name, "Bank");
    assert.deepEqual(await a.call("Deposit", Inv, Money, { teamId: 2 }, { metadata: { k: "v" } }), { currency: "", units: 5 });
    assert.equal(seen[0]?.["system"], "sys");
    assert.equal(seen[0]?.["actor"], "Bank");
    assert.equal(seen[0]?.["action"], "Deposit");
    assert.equal(seen[0]?.["registerRef"], undefined);
    assert.equal(seen[0]?.["pooled"], undefined);
    assert.deepEqual(seen[0]?.["metadata"], { k: "v" });
    assert.equal(Inv.unpack(seen[0]?.["payload"] as AnyMsg).teamId, 2);
    await a.call("Deposit", Inv, Money, {}, { actor: "bank-2", deadlineMs: 30 });
    assert.equal(seen[1]?.["actor"], "bank-2");
    assert.equal(seen[1]?.["deadlineMs"], 30);
  });

  it("sends UNNAMED instances their template and marks POOLED calls", async () => {
    const seen: Array<{ [k: string]: unknown }> = [];
    const unnamed = new ActorClient(stubClient(undefined, seen), "sys", { name: "Session", kind: "UNNAMED" });
    await unnamed.call("Open", Money, Money, {}, { actor: "s-1" });
    assert.equal(seen[0]?.["actor"], "s-1");
    assert.equal(seen[0]?.["registerRef"], "Session");
    assert.equal(seen[0]?.["pooled"], undefined);
    await new ActorClient(stubClient(undefined, seen), "sys", EchoContract).call("Echo", Money, Money, {});
    assert.equal(seen[1]?.["pooled"], true);
    assert.equal(seen[1]?.["registerRef"], undefined);
  });

  it("rejects like typedCall", async () => {
    const a = new ActorClient(stubClient(Inv.pack({}), []), "sys", BankContract);
    await assert.rejects(a.call("Deposit", Inv, Money, {}), (e: unknown) => e instanceof SpawnError && e.code === StatusCode.INTERNAL);
    await assert.rejects(
      a.call("Deposit", Money, Money, { units: "x" as unknown as number }),
      (e: unknown) => e instanceof SpawnError && e.code === StatusCode.INVALID_ARGUMENT,
    );
  });
});

describe("contractActor and registerActor", () => {
  it("declare the contract's settings, channels and timers", () => {
    const def = contractActor(BankContract, { deposit: () => undefined });
    assert.equal(def.name, "Bank");
    assert.equal(def.kind, "NAMED");
    assert.equal(def.stateful, true);
    assert.equal(def.stateType, "c.Money");
    assert.equal(def.deactivateMs, 7000);
    assert.equal(def.snapshotMs, undefined);
    assert.deepEqual(Object.keys(def.actions), ["Deposit", "Audit"]);
    assert.equal(def.channels, undefined);
    const sub = contractActor(BankContract, { deposit: () => undefined }, { channels: ["news"], timers: { Audit: 100 } });
    assert.deepEqual(sub.channels, ["news"]);
    assert.deepEqual(sub.timers, { Audit: 100 });
    const echo = contractActor(EchoContract, { echo: (m) => m });
    assert.equal(echo.stateful, false);
    assert.equal(echo.stateType, undefined);
    assert.equal(echo.snapshotMs, 250);
  });

  it("run the named handler method, typed, with the handlers as this", async () => {
    const handlers = {
      bonus: 10,
      deposit(this: { bonus: number }, s: Money, m: Inv) {
        return { state: { units: s.units + (m.teamId ?? 0) + this.bonus }, reply: { currency: "ok" } };
      },
    };
    const def = contractActor(BankContract, handlers);
    const r = (await def.actions["Deposit"]!(ctx(Money.pack({ units: 1 }), Inv.pack({ teamId: 2 })))) as { [k: string]: AnyMsg };
    assert.deepEqual(Money.unpack(r["state"]), { currency: "", units: 13 });
    assert.deepEqual(Money.unpack(r["reply"]), { currency: "ok", units: 0 });
    const echo = contractActor(EchoContract, { echo: (m: Money) => ({ ...m, units: m.units + 1 }) });
    const e = (await echo.actions["Echo"]!(ctx(undefined, Money.pack({ units: 4 })))) as { reply: AnyMsg };
    assert.deepEqual(Money.unpack(e.reply), { currency: "", units: 5 });
  });

  it("answer UNIMPLEMENTED for a missing method, looked up when the action runs", async () => {
    const handlers: BankHandlers = { deposit: () => undefined };
    const def = contractActor(BankContract, handlers);
    await assert.rejects(
      async () => def.actions["Audit"]!(ctx(undefined, undefined, "Bank", "Audit")),
      (e: unknown) => e instanceof ActorError && e.code === StatusCode.UNIMPLEMENTED && e.message.includes("Bank.Audit is not implemented"),
    );
    let audited = 0;
    handlers.audit = () => {
      audited++;
    };
    assert.deepEqual(await def.actions["Audit"]!(ctx()), {});
    assert.equal(audited, 1);
  });

  it("keep the typed checks and refuse non-object handlers", async () => {
    const def = contractActor(BankContract, { deposit: () => ({ reply: { units: "x" as unknown as number } }) });
    await assert.rejects(async () => def.actions["Deposit"]!(ctx(undefined, Money.pack({}))), (e: unknown) => e instanceof ActorError && e.code === StatusCode.INVALID_ARGUMENT);
    await assert.rejects(async () => def.actions["Deposit"]!(ctx(Inv.pack({}))), (e: unknown) => e instanceof ActorError && e.code === StatusCode.FAILED_PRECONDITION);
    await assert.rejects(async () => def.actions["Deposit"]!(ctx()), (e: unknown) => e instanceof ActorError && e.code === StatusCode.INTERNAL);
    assert.throws(() => contractActor(BankContract, null as unknown as BankHandlers), TypeError);
  });

  it("registerActor adds the definition to the host and returns it", () => {
    const added: ActorDefinition[] = [];
    const host = {
      addActor(d: ActorDefinition) {
        added.push(d);
        return this;
      },
    } as unknown as ActorHost;
    assert.equal(registerActor(host, BankContract, { deposit: () => undefined }, { timers: { Deposit: 50 } }), host);
    assert.equal(added.length, 1);
    assert.equal(added[0]?.name, "Bank");
    assert.equal(added[0]?.stateType, "c.Money");
    assert.deepEqual(added[0]?.timers, { Deposit: 50 });
  });
});
