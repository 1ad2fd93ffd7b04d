/**
 * The Node actor host of resume.test.ts, as a process of its own so that the
 * test can stop (SIGSTOP), continue and kill it:
 *
 *   node dist/test/resume-host.js TARGET
 *
 * Serves "incrementor" in "spawn-system": Add (checkpointed, so the store
 * knows the actor after a gateway restart) and Hang (prints "hanging", then
 * never answers). Prints "registered" each time the gateway accepts the
 * registration; reconnects with the ActorHost defaults.
 */
import { ActorHost, pack, unpackObject } from "../src/index.js";
import { inc, testLogger } from "./helpers.js";

const target = process.argv[2];
if (!target) {
  process.stderr.write("usage: resume-host TARGET\n");
  process.exit(2);
}
const host = new ActorHost(target, "spawn-system", { logger: testLogger });
host.addActor({
  name: "incrementor",
  stateType: inc.State,
  actions: {
    Add: async (ctx) => {
      const s = unpackObject<{ total: number }>(ctx.state, inc.State);
      s.total += unpackObject<{ value: number }>(ctx.payload, inc.Add).value;
      return { state: pack(inc.State, s), reply: pack(inc.Total, { total: s.total }), checkpoint: true };
    },
    Hang: () => {
      process.stdout.write("hanging\n");
      return new Promise(() => undefined);
    },
  },
});
host.on("registered", () => process.stdout.write("registered\n"));
host.start();
process.on("SIGTERM", () => {
  void host.stop(1000).then(() => process.exit(0));
});
