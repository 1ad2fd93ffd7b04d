/**
 * incrementor-gen TypeScript host: serves the Incrementor actor with the
 * code protoc-gen-spawn generated from incrementor.proto (lang=ts).
 *
 *   node dist/host.js [--gateway TARGET] [--system NAME] [--checkpoint]
 *
 * Prints "registered" each time the gateway accepts the registration;
 * exits 0 on SIGTERM or SIGINT.
 */
import * as spawn from "@spawn-gateway/sdk";

import { registerIncrementor, type IncrementorHandlers } from "./gen/incrementor.spawn.js";

const args = process.argv.slice(2);
let gateway = process.env["SPAWN_GATEWAY"] || "127.0.0.1:8090";
let system = "spawn-system";
let checkpoint = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--gateway" && i + 1 < args.length) gateway = args[++i] as string;
  else if (args[i] === "--system" && i + 1 < args.length) system = args[++i] as string;
  else if (args[i] === "--checkpoint") checkpoint = true;
  else {
    console.error("usage: host.js [--gateway TARGET] [--system NAME] [--checkpoint]");
    process.exit(2);
  }
}

// Add: the state and the input arrive typed; the outcome goes back typed.
const incrementor: IncrementorHandlers = {
  add(state, msg) {
    const total = state.total + msg.value;
    if (!Number.isSafeInteger(total)) {
      throw new spawn.ActorError(spawn.StatusCode.OUT_OF_RANGE, "total would overflow");
    }
    return { state: { total }, reply: { total }, checkpoint };
  },
};

const host = new spawn.ActorHost(gateway, system, { onRegistered: () => console.log("registered") });
registerIncrementor(host, incrementor);
host.start();

for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => void host.stop().then(() => process.exit(0)));
}
