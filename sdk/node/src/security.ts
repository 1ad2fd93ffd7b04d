/**
 * TLS, mutual TLS and bearer tokens: how a host or client authenticates the
 * gateway and itself to it.
 */
import * as fs from "node:fs";
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
