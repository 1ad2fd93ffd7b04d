/**
 * conformance client driver in TypeScript: runs the calls run.py sends on
 * stdin through the typed clients protoc-gen-spawn generated from
 * conformance.proto (lang=ts) and writes their outcomes on stdout (the
 * line protocol of README.md, "Client drivers"). N calls of one CALL
 * command are started at once and awaited together.
 *
 *   node dist/client.js --gateway TARGET [--system NAME]
 */
import * as readline from "node:readline";

import * as spawn from "@spawn-gateway/sdk";

import {
  Blob,
  Count,
  EchoerClient,
  FailRequest,
  GetRequest,
  IncrementRequest,
  KeeperClient,
  Profile,
  TallyClient,
} from "./gen/conformance.spawn.js";

const args = process.argv.slice(2);
let gateway = "";
let system = "conformance";
for (let i = 0; i + 1 < args.length; i += 2) {
  if (args[i] === "--gateway") gateway = args[i + 1] as string;
  else if (args[i] === "--system") system = args[i + 1] as string;
}
if (!gateway) {
  console.error("usage: client.js --gateway TARGET [--system NAME]");
  process.exit(2);
}

interface Codec {
  decode(bytes: Uint8Array): unknown;
  encode(value: never): Uint8Array;
}

/** One action: its input and output codecs and the typed client's method. */
interface Action {
  input: Codec;
  output: Codec;
  call(msg: unknown, opts: spawn.CallOptions): Promise<unknown>;
}

let client: spawn.SpawnClient;
let actions: { [name: string]: Action };

function connect(): void {
  client = new spawn.SpawnClient(gateway, { deadlineMs: 30000 });
  const keeper = new KeeperClient(client, system);
  const echoer = new EchoerClient(client, system);
  const tally = new TallyClient(client, system);
  // The typed methods take what their codecs decode: the casts only
  // forget the type between the table and the call.
  type M<T> = (msg: T, opts: spawn.CallOptions) => Promise<unknown>;
  const a = <T>(input: Codec, output: Codec, call: M<T>): Action => ({ input, output, call: call as M<unknown> });
  actions = {
    "Keeper.Set": a<Profile>(Profile, Profile, (m, o) => keeper.set(m, o)),
    "Keeper.Merge": a<Profile>(Profile, Profile, (m, o) => keeper.merge(m, o)),
    "Keeper.Get": a<GetRequest>(GetRequest, Profile, (m, o) => keeper.get(m, o)),
    "Keeper.Fail": a<FailRequest>(FailRequest, Profile, (m, o) => keeper.fail(m, o)),
    "Keeper.Echo": a<Blob>(Blob, Blob, (m, o) => keeper.echo(m, o)),
    "Keeper.Increment": a<IncrementRequest>(IncrementRequest, Profile, (m, o) => keeper.increment(m, o)),
    "Echoer.Echo": a<Blob>(Blob, Blob, (m, o) => echoer.echo(m, o)),
    "Echoer.Fail": a<FailRequest>(FailRequest, Blob, (m, o) => echoer.fail(m, o)),
    "Tally.Add": a<IncrementRequest>(IncrementRequest, Count, (m, o) => tally.add(m, o)),
    "Tally.Get": a<GetRequest>(GetRequest, Count, (m, o) => tally.get(m, o)),
  };
}

function b64(bytes: Uint8Array): string {
  return bytes.length ? Buffer.from(bytes).toString("base64") : "-";
}

function unb64(text: string): Uint8Array {
  return text === "-" ? new Uint8Array(0) : new Uint8Array(Buffer.from(text, "base64"));
}

async function call(line: string, deadlineMs: number): Promise<string> {
  const [actor, instance, name, data] = line.split(" ") as [string, string, string, string];
  const action = actions[`${actor}.${name}`];
  if (!action) return `ERR -1 ${b64(Buffer.from(`no action ${actor}.${name}`))}`;
  const opts: spawn.CallOptions = { deadlineMs };
  if (instance !== "-") opts.actor = instance;
  try {
    const reply = await action.call(action.input.decode(unb64(data)), opts);
    return `OK ${b64(action.output.encode(reply as never))}`;
  } catch (e) {
    if (e instanceof spawn.SpawnError) return `ERR ${e.code} ${b64(Buffer.from(e.details, "utf8"))}`;
    return `ERR -1 ${b64(Buffer.from(String(e), "utf8"))}`;
  }
}

async function main(): Promise<void> {
  connect();
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const next = async (): Promise<string | undefined> => {
    const r = await lines.next();
    return r.done ? undefined : r.value;
  };
  process.stdout.write("ready\n");
  for (let line = await next(); line !== undefined && line !== "QUIT"; line = await next()) {
    if (line === "RECONNECT") {
      client.close();
      connect();
      process.stdout.write("OK\n");
      continue;
    }
    const [word, n, timeoutMs] = line.split(" ");
    if (word !== "CALL") throw new Error(`bad command ${line.slice(0, 80)}`);
    const calls: string[] = [];
    for (let i = 0; i < Number(n); i++) calls.push((await next()) ?? "");
    const results = await Promise.all(calls.map((c) => call(c, Number(timeoutMs))));
    process.stdout.write(results.map((r) => r + "\n").join(""));
  }
  client.close();
}

main().catch((e: unknown) => {
  console.error("client.js:", e);
  process.exit(1);
});
