// echo_host.mjs - bench-echo-host on the TypeScript runtime (sdk/node, built
// into sdk/node/dist by `npm run build`): the same actor as bench/echo_host.c.
// Registers system S with one UNNAMED actor template "echo-actor" (stateful)
// whose action A answers with the request's payload and counts the calls in
// its state (an 8-byte counter). Prints "ready" once registered.
// Usage: node bench/echo_host.mjs --gateway HOST:PORT --system S --action A
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { ActorHost } = require(path.join(here, "..", "sdk", "node", "dist", "src", "index.js"));

const args = { gateway: "127.0.0.1:8090", system: "bench", action: "echo" };
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, "");
  if (!(k in args)) {
    console.error(`bench-echo-host.mjs: unknown option ${process.argv[i]}`);
    process.exit(2);
  }
  args[k] = process.argv[i + 1];
}
const STATE_URL = "type.googleapis.com/bench.Counter";
const host = new ActorHost(args.gateway, args.system, { logger: null });
host.addActor({
  name: "echo-actor",
  kind: "UNNAMED",
  stateful: true,
  actions: {
    [args.action]: (ctx) => {
      const st = ctx.state;
      const n = st && st.value.length === 8 ? Buffer.from(st.value).readBigUInt64LE(0) : 0n;
      const out = Buffer.alloc(8);
      out.writeBigUInt64LE(n + 1n, 0);
      return { state: { typeUrl: STATE_URL, value: out }, reply: ctx.payload };
    },
  },
});
host.once("registered", () => console.log("ready"));
host.start();
const stop = () => host.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
