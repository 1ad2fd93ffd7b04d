/** gRPC status codes (the values HostError.code and client errors carry). */
export const StatusCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type StatusCodeName = keyof typeof StatusCode;

const CODE_NAMES: string[] = [];
for (const [k, v] of Object.entries(StatusCode)) CODE_NAMES[v] = k;

/** The name of a gRPC status code ("NOT_FOUND"), or "CODE_<n>". */
export function statusName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

/**
 * Thrown by an action handler to fail the invocation with a gRPC status
 * code. The gateway leaves the actor's state unchanged and hands `code` and
 * `message` to the caller (as a HostError on the host stream).
 */
export class ActorError extends Error {
  readonly code: number;

  constructor(code: number, message = "") {
    super(message);
    this.name = "ActorError";
    this.code = Math.trunc(Number(code));
  }
}

/**
 * What a SpawnClient call rejects with: the gRPC status `code` and the
 * gateway's `details` (also the error's message).
 */
export class SpawnError extends Error {
  readonly code: number;
  readonly details: string;

  constructor(code: number, details: string) {
    super(details || statusName(code));
    this.name = "SpawnError";
    this.code = code;
    this.details = details;
  }

  /** The code's name, e.g. "NOT_FOUND". */
  get codeName(): string {
    return statusName(this.code);
  }
}
