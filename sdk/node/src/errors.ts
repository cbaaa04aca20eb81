// EcbError: the answer a backend method gives to refuse a call, with the
// same constructors and the same status mapping as the Go SDK's *ecbserver.Error.
import { Codes, type ErrorCode } from "./contract.js";

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Request Entity Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
};

/** The HTTP status of an error code (the Go SDK's statusOf). */
export function statusOf(code: string): number {
  switch (code) {
    case Codes.invalidArgument:
      return 400;
    case Codes.unauthenticated:
    case Codes.badSignature:
      return 401;
    case Codes.forbidden:
      return 403;
    case Codes.notFound:
      return 404;
    case Codes.conflict:
      return 409;
    case Codes.payloadTooLarge:
      return 413;
    case Codes.notImplemented:
      return 501;
    default:
      return 500;
  }
}

/**
 * An answer that refuses a call: the handler writes `status` and
 * `{"error": {"code", "message"}}`. The message travels to ECB and may reach
 * the end user: keep it short, human and free of secrets. Build errors with
 * the helpers (notFound, forbidden, ...) so status and code agree.
 */
export class EcbError extends Error {
  readonly status: number;
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, status?: number) {
    super(message);
    this.name = "EcbError";
    this.code = code;
    this.status = status !== undefined && status >= 400 && status <= 599 ? status : statusOf(code);
  }

  /** The wire body of this error (an empty message becomes the status text, as in Go). */
  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message || STATUS_TEXT[this.status] || "error" } };
  }
}

/** A malformed or incomplete request (400). */
export const invalidArgument = (msg: string) => new EcbError(Codes.invalidArgument, msg);
/** An access token that is unknown, expired or revoked (401); only authenticate has a reason to use it. */
export const unauthenticated = (msg: string) => new EcbError(Codes.unauthenticated, msg);
/** A caller who may not do this (403). */
export const forbidden = (msg: string) => new EcbError(Codes.forbidden, msg);
/** An unknown user or thread (404). */
export const notFound = (msg: string) => new EcbError(Codes.notFound, msg);
/** A request the current state forbids, such as an idempotency key reused for another message (409). */
export const conflict = (msg: string) => new EcbError(Codes.conflict, msg);
/** An optional call this backend does not support (501); the handler answers it by itself for a missing method. */
export const notImplemented = (msg: string) => new EcbError(Codes.notImplemented, msg);
