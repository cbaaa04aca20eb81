/**
 * The closed list of error codes of ECB's client protocol (version 1).
 * A client decides on the code only; the message is for people.
 */
export const PROTOCOL_ERROR_CODES = [
  "invalid_argument",
  "unauthenticated",
  "forbidden",
  "not_found",
  "conflict",
  "payload_too_large",
  "rate_limited",
  "internal",
  "backend_error",
  "backend_unavailable",
  "unavailable",
] as const;

/** An error code ECB sends (docs/protocol.md, "Error codes"). */
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/**
 * Codes this library reports itself, for what never reached ECB or never came back:
 * - `outbox_full`: sendMessage while `outboxLimit` messages already wait for their ack;
 * - `timeout`: no answer within `requestTimeout` (the connection did not come back in time), or the
 *   connection dropped before the answer of an operation the client does not send twice
 *   (support.ask, offer.accept, ...): it may have been done;
 * - `disconnected`: the client is not connected and will not reconnect by itself
 *   (never connected, or it gave up: see the `connection` event's error);
 * - `closed`: `close()` was called;
 * - `kicked`: ECB ended the session at the backend's request (`closing` with reason `kicked`);
 *   the client went `offline` and does not reconnect by itself.
 */
export const CLIENT_ERROR_CODES = ["outbox_full", "timeout", "disconnected", "closed", "kicked"] as const;

/** An error code this library reports itself. */
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** Every code an {@link EcbError} can carry. */
export type EcbErrorCode = ProtocolErrorCode | ClientErrorCode;

/** The wire form of an error: the `error` of the answer envelope. */
export interface ErrorBody {
  code: string;
  message: string;
  retryAfter?: number;
}

const protocolCodes = new Set<string>(PROTOCOL_ERROR_CODES);

/** Every failure of an operation: a code from the closed list, a message for people. */
export class EcbError extends Error {
  override readonly name = "EcbError";
  /** The error code; decide on it, not on the message. */
  readonly code: EcbErrorCode;
  /** With `rate_limited`: seconds to wait before retrying. */
  readonly retryAfter?: number;
  /** True when ECB answered with this error; false when this library raised it (checks, outbox, timeouts). */
  readonly fromServer: boolean;

  constructor(code: EcbErrorCode, message: string, options: { retryAfter?: number; fromServer?: boolean } = {}) {
    super(message);
    this.code = code;
    this.fromServer = options.fromServer ?? false;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }

  /**
   * Builds the error from an ECB answer. A code outside the closed list (a newer
   * server) becomes `internal`, with the unknown code kept in the message.
   */
  static fromBody(body: ErrorBody | undefined | null): EcbError {
    if (!body || typeof body !== "object") return new EcbError("internal", "malformed error from server", { fromServer: true });
    const known = typeof body.code === "string" && protocolCodes.has(body.code);
    const msg = typeof body.message === "string" && body.message !== "" ? body.message : String(body.code);
    const retryAfter = typeof body.retryAfter === "number" && body.retryAfter > 0 ? body.retryAfter : undefined;
    const opts = retryAfter === undefined ? { fromServer: true } : { fromServer: true, retryAfter };
    return known
      ? new EcbError(body.code as ProtocolErrorCode, msg, opts)
      : new EcbError("internal", `${String(body.code)}: ${msg}`, opts);
  }
}

/** Narrows an unknown value to an EcbError, optionally of one code. */
export function isEcbError(e: unknown, code?: EcbErrorCode): e is EcbError {
  return e instanceof EcbError && (code === undefined || e.code === code);
}
