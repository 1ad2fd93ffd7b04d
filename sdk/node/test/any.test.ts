/** pack / unpack / toAny. */
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ActorError, StatusCode, anyIs, isAny, pack, toAny, typeUrlOf, unpack, unpackObject } from "../src/index.js";
import { inc } from "./helpers.js";

describe("any", () => {
  it("packs with type.googleapis.com/<full name> and unpacks", () => {
    const a = pack(inc.State, { total: 42 });
    assert.equal(a.typeUrl, "type.googleapis.com/examples.incrementor.State");
    assert.equal(typeUrlOf(inc.Total), "type.googleapis.com/examples.incrementor.Total");
    assert.ok(isAny(a));
    assert.ok(anyIs(a, inc.State));
    assert.ok(!anyIs(a, inc.Total));
    const m = unpack<{ total: { toNumber(): number } }>(a, inc.State);
    assert.equal(m.total.toNumber(), 42);
    assert.deepEqual(unpackObject(a, inc.State), { total: 42 });
    // 64-bit values survive as strings.
    assert.deepEqual(unpackObject(pack(inc.State, { total: "9007199254740993" }), inc.State, { longs: String }), {
      total: "9007199254740993",
    });
  });

  it("gives defaults for a missing or empty Any", () => {
    assert.deepEqual(unpackObject(undefined, inc.State), { total: 0 });
    assert.deepEqual(unpackObject(null, inc.State), { total: 0 });
    assert.deepEqual(unpackObject({ typeUrl: "", value: new Uint8Array(0) }, inc.State), { total: 0 });
  });

  it("refuses another type or bad bytes with INVALID_ARGUMENT", () => {
    const a = pack(inc.Total, { total: 1 });
    assert.throws(
      () => unpack(a, inc.State),
      (e: unknown) => e instanceof ActorError && e.code === StatusCode.INVALID_ARGUMENT && /expected examples\.incrementor\.State/.test(e.message),
    );
    assert.throws(
      () => unpack({ typeUrl: typeUrlOf(inc.State), value: new Uint8Array([0x08]) }, inc.State),
      (e: unknown) => e instanceof ActorError && e.code === StatusCode.INVALID_ARGUMENT,
    );
  });

  it("accepts any type URL prefix", () => {
    const a = { typeUrl: "example.com/x/examples.incrementor.State", value: pack(inc.State, { total: 3 }).value };
    assert.deepEqual(unpackObject(a, inc.State), { total: 3 });
  });

  it("toAny takes an Any or a reflected message", () => {
    const a = pack(inc.Add, { value: 2 });
    assert.deepEqual(toAny(a), a);
    const msg = inc.Add.create({ value: 5 });
    const b = toAny(msg as never);
    assert.equal(b.typeUrl, "type.googleapis.com/examples.incrementor.Add");
    assert.deepEqual(unpackObject(b, inc.Add), { value: 5 });
    assert.throws(() => toAny({ value: 1 } as never), TypeError);
  });

  it("works with static-style classes (getTypeUrl)", () => {
    class Static {
      static encode(m: { total?: number }) {
        return inc.State.encode(inc.State.fromObject(m));
      }
      static decode(b: Uint8Array): { total: number } {
        return inc.State.toObject(inc.State.decode(b), { longs: Number, defaults: true }) as { total: number };
      }
      static getTypeUrl(prefix = "type.googleapis.com") {
        return `${prefix}/examples.incrementor.State`;
      }
    }
    const a = pack(Static, { total: 7 });
    assert.equal(a.typeUrl, "type.googleapis.com/examples.incrementor.State");
    const s = unpack(a, Static); // typed as { total: number }
    assert.equal(s.total, 7);
  });
});
