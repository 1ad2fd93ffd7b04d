/**
 * incrementor-gen TypeScript client: invokes the Incrementor through the
 * typed client protoc-gen-spawn generated from incrementor.proto (lang=ts).
 *
 *   node dist/client.js [--gateway TARGET] [--system NAME] [--actor NAME] add N
 *
 * Prints the total the actor replies. On failure prints
 * "client.js: STATUS: message" on stderr and exits 1.
 */
import * as spawn from "@spawn-gateway/sdk";

import { IncrementorClient } from "./gen/incrementor.spawn.js";

const args = process.argv.slice(2);
let gateway = process.env["SPAWN_GATEWAY"] || "127.0.0.1:8090";
let system = "spawn-system";
const opts: spawn.CallOptions = {};
while (args[0]?.startsWith("--") && args.length >= 2) {
  const [flag, value] = args.splice(0, 2) as [string, string];
  if (flag === "--gateway") gateway = value;
  else if (flag === "--system") system = value;
  else if (flag === "--actor") opts.actor = value;
}
if (args.length !== 2 || args[0] !== "add") {
  console.error("usage: client.js [--gateway TARGET] [--system NAME] [--actor NAME] add N");
  process.exit(2);
}

const client = new spawn.SpawnClient(gateway, { deadlineMs: 10000 });
const incrementor = new IncrementorClient(client, system);
incrementor
  .add({ value: Number(args[1]) }, opts)
  .then((total) => console.log(String(total.total)))
  .catch((e: unknown) => {
    if (!(e instanceof spawn.SpawnError)) throw e;
    console.error(`client.js: ${e.codeName}: ${e.details}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
