/**
 * conformance host in TypeScript: the actors of conformance.proto (Keeper,
 * Echoer, Tally) on the code protoc-gen-spawn generated from it (lang=ts),
 * with the semantics the contract's comments define.
 *
 *   node dist/host.js --gateway TARGET [--system NAME]
 *
 * Prints "registered" each time the gateway accepts the registration;
 * exits 0 on SIGTERM or SIGINT.
 */
import * as spawn from "@spawn-gateway/sdk";

import {
  registerEchoer,
  registerKeeper,
  registerTally,
  type Blob,
  type EchoerHandlers,
  type KeeperHandlers,
  type Profile,
  type TallyHandlers,
} from "./gen/conformance.spawn.js";

const args = process.argv.slice(2);
let gateway = "";
let system = "conformance";
for (let i = 0; i + 1 < args.length; i += 2) {
  if (args[i] === "--gateway") gateway = args[i + 1] as string;
  else if (args[i] === "--system") system = args[i + 1] as string;
}
if (!gateway) {
  console.error("usage: host.js --gateway TARGET [--system NAME]");
  process.exit(2);
}

function echoOf(msg: Blob): Blob {
  return { data: msg.data, text: msg.text, size: msg.data.length };
}

/** Keeper.Merge's rules (conformance.proto). */
function merge(state: Profile, msg: Profile): Profile {
  const next: Profile = {
    ...state,
    labels: [...state.labels, ...msg.labels],
    numbers: [...state.numbers, ...msg.numbers],
    levels: [...state.levels, ...msg.levels],
    history: [...state.history, ...msg.history],
    scores: { ...state.scores },
    shapes: { ...state.shapes, ...msg.shapes },
    names: { ...state.names, ...msg.names },
    ranks: { ...state.ranks, ...msg.ranks },
  };
  if (msg.name) next.name = msg.name;
  if (msg.counter) next.counter = msg.counter;
  if (msg.level) next.level = msg.level;
  if (msg.active) next.active = msg.active;
  if (msg.blob.length > 0) next.blob = msg.blob;
  if (msg.ratio) next.ratio = msg.ratio;
  if (msg.big) next.big = msg.big;
  if (msg.shape) next.shape = msg.shape;
  for (const [key, value] of Object.entries(msg.scores)) {
    if (value === 0) delete next.scores[key];
    else next.scores[key] = value;
  }
  if (msg.contact) {
    // One member of a oneof at a time: drop the state's before setting p's.
    delete next.email;
    delete next.phone;
    delete next.location;
    next.contact = msg.contact;
    if (msg.contact === "email") next.email = msg.email as string;
    else if (msg.contact === "phone") next.phone = msg.phone as number;
    else next.location = msg.location as NonNullable<Profile["location"]>;
  }
  return next;
}

const keeper: KeeperHandlers = {
  set(_state, msg) {
    return { state: msg, reply: msg };
  },
  merge(state, msg) {
    const next = merge(state, msg);
    return { state: next, reply: next };
  },
  get(state) {
    return { reply: state };
  },
  fail(_state, msg) {
    throw new spawn.ActorError(msg.code, msg.message);
  },
  echo(_state, msg) {
    return { reply: echoOf(msg) };
  },
  increment(state, msg) {
    const next = { ...state, counter: state.counter + msg.by };
    return { state: next, reply: next, checkpoint: msg.checkpoint };
  },
};

const echoer: EchoerHandlers = {
  echo(msg) {
    return echoOf(msg);
  },
  fail(msg) {
    throw new spawn.ActorError(msg.code, msg.message);
  },
};

const tally: TallyHandlers = {
  add(state, msg) {
    const next = { value: state.value + msg.by };
    return { state: next, reply: next, checkpoint: msg.checkpoint };
  },
  get(state) {
    return { reply: state };
  },
};

const host = new spawn.ActorHost(gateway, system, {
  serviceName: "conformance-host-ts",
  onRegistered: () => console.log("registered"),
});
registerKeeper(host, keeper);
registerEchoer(host, echoer);
registerTally(host, tally);
host.start();

for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => void host.stop().then(() => process.exit(0)));
}
