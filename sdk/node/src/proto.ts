/**
 * Loading .proto files at run time with protobufjs.
 *
 * The runtime reads the gateway's protocol from the repository's proto/
 * folder (spawn/actors/*.proto, spawn/gateway/v1/gateway.proto); nothing is
 * generated or copied. google/protobuf/{any,timestamp,...}.proto come with
 * protobufjs (descriptor.proto too, from its package folder).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as protobuf from "protobufjs";

/** The file that marks the protocol folder. */
const MARKER = path.join("spawn", "gateway", "v1", "gateway.proto");

/**
 * The folder holding spawn/actors/*.proto and spawn/gateway/v1/*.proto:
 * `$SPAWN_PROTO_DIR` when set, else the first `proto/` folder found walking
 * up from this module (in the repository: <root>/proto).
 */
export function findProtoDir(): string {
  const env = process.env["SPAWN_PROTO_DIR"];
  if (env) {
    if (!fs.existsSync(path.join(env, MARKER))) {
      throw new Error(`SPAWN_PROTO_DIR=${env} holds no ${MARKER}`);
    }
    return path.resolve(env);
  }
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const cand = path.join(dir, "proto");
    if (fs.existsSync(path.join(cand, MARKER))) return cand;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`cannot find the protocol's .proto files (${MARKER}) above ${__dirname}; set SPAWN_PROTO_DIR`);
}

/** protobufjs's own folder of google/protobuf/*.proto (descriptor.proto...). */
function protobufjsIncludeDir(): string {
  return path.dirname(require.resolve("protobufjs/package.json"));
}

/**
 * Load `files` (paths relative to one of `includeDirs`, or absolute) into a
 * new protobufjs Root, resolving imports against `includeDirs` like protoc's
 * -I. Field names become camelCase (protobufjs's default).
 */
export function loadProtos(files: string | string[], includeDirs: string[] = []): protobuf.Root {
  const dirs = [...includeDirs.map((d) => path.resolve(d)), protobufjsIncludeDir()];
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string => {
    if (path.isAbsolute(target) && fs.existsSync(target)) return target;
    for (const d of dirs) {
      const p = path.join(d, target);
      if (fs.existsSync(p)) return p;
    }
    // Relative to the importing file, then as given (the error names it).
    if (origin) {
      const p = path.join(path.dirname(origin), target);
      if (fs.existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(Array.isArray(files) ? files : [files], { keepCase: false });
  root.resolveAll();
  return root;
}

/** The protocol's message types this runtime uses. */
export interface Protocol {
  root: protobuf.Root;
  HostMessage: protobuf.Type;
  GatewayMessage: protobuf.Type;
  InvocationRequest: protobuf.Type;
  InvocationResponse: protobuf.Type;
  SpawnRequest: protobuf.Type;
  SpawnResponse: protobuf.Type;
  RegistrationRequest: protobuf.Type;
  Any: protobuf.Type;
  Kind: protobuf.Enum;
  Status: protobuf.Enum;
}

let cached: Protocol | undefined;

/** The gateway protocol, loaded once from findProtoDir(). */
export function protocol(): Protocol {
  if (cached) return cached;
  const root = loadProtos(
    ["spawn/actors/actor.proto", "spawn/actors/protocol.proto", "spawn/gateway/v1/gateway.proto"],
    [findProtoDir()],
  );
  cached = {
    root,
    HostMessage: root.lookupType("spawn.gateway.v1.HostMessage"),
    GatewayMessage: root.lookupType("spawn.gateway.v1.GatewayMessage"),
    InvocationRequest: root.lookupType("spawn.InvocationRequest"),
    InvocationResponse: root.lookupType("spawn.InvocationResponse"),
    SpawnRequest: root.lookupType("spawn.SpawnRequest"),
    SpawnResponse: root.lookupType("spawn.SpawnResponse"),
    RegistrationRequest: root.lookupType("spawn.RegistrationRequest"),
    Any: root.lookupType("google.protobuf.Any"),
    Kind: root.lookupEnum("spawn.actors.Kind"),
    Status: root.lookupEnum("spawn.Status"),
  };
  return cached;
}

/** Serialize a plain object (or message) of `type` to bytes. */
export function encode(type: protobuf.Type, obj: object): Buffer {
  const bytes = type.encode(obj as { [k: string]: unknown }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A 64-bit integer as protobufjs decodes it (number, Long, string). */
export type Int64 = number | string | bigint | { toString(): string; toNumber?(): number };

/** A decoded 64-bit integer as a JS number (exact up to 2^53). */
export function toNumber(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "bigint" || typeof v === "string") return Number(v);
  if (typeof v.toNumber === "function") return v.toNumber();
  return Number(v.toString());
}

/** A decoded 64-bit integer as a decimal string (exact). */
export function toDecimal(v: Int64 | null | undefined): string {
  if (v === null || v === undefined) return "0";
  return v.toString();
}
