/**
 * TLS, mutual TLS and bearer tokens: how a host or client authenticates the
 * gateway and itself to it.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";

/**
 * Each option left undefined is read from its environment variable when the
 * client or host is created (tlsCa: SPAWN_TLS_CA, tlsCert: SPAWN_TLS_CERT,
 * tlsKey: SPAWN_TLS_KEY, tlsServerName: SPAWN_TLS_SERVER_NAME, token:
 * SPAWN_TOKEN); "" means none and does not read the environment.
 *
 * With a CA (a PEM file) the channel is TLS: the gateway's certificate must
 * chain to it and name the target's host (or tlsServerName). With a
 * certificate and key too (PEM files) it is mutual TLS, as a gateway started
 * with --tls-client-ca requires. Without a CA it is plaintext. The files are
 * read once, at create: TLSConfigError names a file that cannot be used. The
 * token travels as `authorization: Bearer <token>` in the metadata of every
 * call and of the host's stream; it is never logged.
 */
export interface SecurityOptions {
  /** PEM file of the CA certificate(s) that sign the gateway's certificate. */
  tlsCa?: string;
  /** PEM file of this process's certificate (chain); needs tlsKey and tlsCa. */
  tlsCert?: string;
  /** PEM file of its private key. */
  tlsKey?: string;
  /** The name the gateway's certificate must carry, instead of the target's host. */
  tlsServerName?: string;
  /** Bearer token (printable ASCII). */
  token?: string;
}

/** A TLS setting that cannot be used (unreadable or non-PEM file, certificate without key). */
export class TLSConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TLSConfigError";
  }
}

/** What a client or host dials with; fixed at create. */
export interface Security {
  readonly tls: boolean;
  readonly credentials: grpc.ChannelCredentials;
  /** Channel options the settings need (the server-name override). */
  readonly channelOptions: grpc.ChannelOptions;
  /** Adds the token to md (when there is one) and returns md. */
  withToken(md: grpc.Metadata): grpc.Metadata;
}

/** A PEM file is small; anything larger is not one. */
const MAX_PEM_BYTES = 1 << 20;

function pick(opt: string | undefined, env: string): string | undefined {
  const v = opt === undefined ? process.env[env] : opt;
  return v ? v : undefined;
}

function readPem(what: string, path: string): Buffer {
  let data: Buffer;
  try {
    data = fs.readFileSync(path);
  } catch (e) {
    const why = e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : String(e);
    throw new TLSConfigError(`cannot read the TLS ${what} file ${path}: ${why}`);
  }
  if (data.length > MAX_PEM_BYTES) throw new TLSConfigError(`cannot read the TLS ${what} file ${path}: larger than 1 MiB`);
  if (!data.includes("-----BEGIN ")) throw new TLSConfigError(`cannot read the TLS ${what} file ${path}: no PEM block in it`);
  return data;
}

/** Resolves options and environment into what to dial with; throws TLSConfigError or TypeError (token). */
export function makeSecurity(o: SecurityOptions = {}): Security {
  const ca = pick(o.tlsCa, "SPAWN_TLS_CA");
  const cert = pick(o.tlsCert, "SPAWN_TLS_CERT");
  const key = pick(o.tlsKey, "SPAWN_TLS_KEY");
  const name = pick(o.tlsServerName, "SPAWN_TLS_SERVER_NAME");
  const token = pick(o.token, "SPAWN_TOKEN");
  if (token !== undefined && !/^[\x20-\x7e]+$/.test(token)) {
    throw new TypeError("the bearer token holds characters outside printable ASCII");
  }
  if (!cert !== !key) {
    throw new TLSConfigError("a TLS client certificate needs its key and a key its certificate (tlsCert/SPAWN_TLS_CERT, tlsKey/SPAWN_TLS_KEY)");
  }
  if ((cert || name) && !ca) {
    throw new TLSConfigError("a TLS client certificate or server name needs the gateway's CA (tlsCa/SPAWN_TLS_CA)");
  }
  const credentials = ca
    ? grpc.credentials.createSsl(readPem("CA", ca), key ? readPem("key", key) : null, cert ? readPem("certificate", cert) : null)
    : grpc.credentials.createInsecure();
  const auth = token === undefined ? undefined : `Bearer ${token}`;
  return {
    tls: !!ca,
    credentials,
    channelOptions: name ? { "grpc.ssl_target_name_override": name } : {},
    withToken(md: grpc.Metadata): grpc.Metadata {
      if (auth !== undefined) md.set("authorization", auth);
      return md;
    },
  };
}

/**
 * Round robin over every address a target resolves to: any member of a
 * cluster serves any call (gRPC's default, pick_first, would send every call
 * to the first member that answers).
 */
const SERVICE_CONFIG = '{"loadBalancingConfig":[{"round_robin":{}}]}';
const MAX_GATEWAYS = 64;

/** What a client or host dials: the gRPC target and the options it needs. */
export interface GatewayTarget {
  readonly target: string;
  readonly channelOptions: grpc.ChannelOptions;
}

/** [family, host] of a numeric "HOST:PORT" ("[v6]:PORT"), else undefined. */
function gatewayEntry(e: string): [4 | 6, string] | undefined {
  let host: string, port: string;
  if (e.startsWith("[")) {
    const i = e.indexOf("]:");
    if (i < 0) return undefined;
    host = e.slice(1, i);
    port = e.slice(i + 2);
    if (!net.isIPv6(host)) return undefined;
  } else {
    const i = e.lastIndexOf(":");
    if (i < 0) return undefined;
    host = e.slice(0, i);
    port = e.slice(i + 1);
    if (!net.isIPv4(host)) return undefined;
  }
  if (!/^[0-9]{1,5}$/.test(port) || +port < 1 || +port > 65535) return undefined;
  return [e.startsWith("[") ? 6 : 4, host];
}

/**
 * The gRPC target and channel options for `target`: any gRPC target
 * ("127.0.0.1:8090", "dns:///gw.example:8090" - every address of the name is
 * used -, "unix:/run/spawn.sock"), or a list of numeric gateway addresses
 * "10.0.0.1:8090,10.0.0.2:8090" (IPv4, or IPv6 in brackets, one family; also
 * as "ipv4:..." / "ipv6:..."), which becomes gRPC's "ipv4:"/"ipv6:" target.
 * Every channel gets the round_robin policy; a list also gets its first
 * entry as the authority (the name checked in the members' certificates
 * unless a server name is given: with `tls` and no `serverName` the hosts of
 * a list must be the same). Throws TypeError on a bad list, TLSConfigError
 * for TLS over different hosts without a server name.
 */
export function gatewayTarget(target: string, tls = false, serverName = false): GatewayTarget {
  let body = target;
  if (target.startsWith("ipv4:") || target.startsWith("ipv6:")) {
    body = target.slice(5);
  } else if (!target.includes(",") || target.includes("://") || /^(unix|unix-abstract|dns):/.test(target)) {
    return { target, channelOptions: { "grpc.service_config": SERVICE_CONFIG } };
  }
  const entries = body.split(",").map((e) => e.trim());
  if (entries.length > MAX_GATEWAYS) throw new TypeError(`gateway list "${target}" has more than ${MAX_GATEWAYS} entries`);
  const parsed = entries.map((e, i) => {
    const p = gatewayEntry(e);
    if (!p) {
      throw new TypeError(
        `gateway list "${target}": entry ${i + 1} is not a numeric HOST:PORT (a list takes IPv4 addresses or [IPv6] ones; for names use one DNS name with several addresses, "dns:///NAME:PORT")`,
      );
    }
    return p;
  });
  if (new Set(parsed.map((p) => p[0])).size > 1) throw new TypeError(`gateway list "${target}" mixes IPv4 and IPv6 addresses`);
  if (tls && !serverName && new Set(parsed.map((p) => p[1])).size > 1) {
    throw new TLSConfigError(
      `gateway list "${target}": with TLS, addresses on different hosts need tlsServerName (SPAWN_TLS_SERVER_NAME), a name every member's certificate carries`,
    );
  }
  return {
    target: `${parsed[0][0] === 4 ? "ipv4" : "ipv6"}:${entries.join(",")}`,
    channelOptions: { "grpc.service_config": SERVICE_CONFIG, "grpc.default_authority": entries[0] },
  };
}

/** gatewayTarget with the TLS settings of security. */
export function dialTarget(target: string, security: Security): GatewayTarget {
  return gatewayTarget(target, security.tls, "grpc.ssl_target_name_override" in security.channelOptions);
}
