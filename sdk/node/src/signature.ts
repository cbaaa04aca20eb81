// The ECB-Signature scheme, byte for byte the Go SDK's (sdk/ecbserver/signature.go):
// "v1=" + lowercase hex HMAC-SHA256(secret, ECB-Timestamp + "." + raw body),
// a timestamp within the replay window of this clock, compared in constant time.
import { createHmac, timingSafeEqual } from "node:crypto";
import { Headers } from "./contract.js";

/** How far ECB-Timestamp may be from this clock, either way, by default (5 minutes, as in Go). */
export const DEFAULT_REPLAY_WINDOW_SECONDS = 300;

const PREFIX = "v1=";
const HEX_SIG = /^[0-9a-fA-F]{64}$/;
// strconv.ParseInt(ts, 10, 64): an optional sign and decimal digits.
const DECIMAL = /^[+-]?[0-9]+$/;
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** A secret as the shared secret configured in ECB (backend.secret). */
export type Secret = string | Uint8Array;

/** Why a signature was refused; every kind is answered 401 bad_signature. */
export type SignatureErrorKind = "missing_signature" | "bad_signature" | "stale_timestamp";

/** A refused signature (the Go SDK's ErrMissingSignature, ErrBadSignature, ErrStaleTimestamp). */
export class SignatureError extends Error {
  readonly kind: SignatureErrorKind;
  constructor(kind: SignatureErrorKind, message: string) {
    super(message);
    this.name = "SignatureError";
    this.kind = kind;
  }
}

function toBytes(v: Secret | Uint8Array | string): Buffer {
  return typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function mac(secret: Secret, timestamp: string, body: Uint8Array | string): Buffer {
  const h = createHmac("sha256", toBytes(secret));
  h.update(timestamp);
  h.update(".");
  h.update(toBytes(body));
  return h.digest();
}

/**
 * Returns the ECB-Signature value for a call whose ECB-Timestamp is
 * `unixSeconds` in decimal. The caller sends the same timestamp; signHeaders
 * returns both.
 */
export function sign(secret: Secret, unixSeconds: number, body: Uint8Array | string): string {
  return PREFIX + mac(secret, String(Math.trunc(unixSeconds)), body).toString("hex");
}

/** The ECB-Timestamp and ECB-Signature headers of a call with `body`, signed at `now` (default: this clock). */
export function signHeaders(secret: Secret, body: Uint8Array | string, now: Date = new Date()): Record<string, string> {
  const ts = Math.floor(now.getTime() / 1000);
  return { [Headers.timestamp]: String(ts), [Headers.signature]: sign(secret, ts, body) };
}

/** Headers as Node gives them (lower-case names), or a Fetch Headers object. */
export type HeaderSource =
  | Record<string, string | string[] | undefined>
  | { get(name: string): string | null };

function header(h: HeaderSource, name: string): string {
  if (typeof (h as { get?: unknown }).get === "function") {
    return (h as { get(name: string): string | null }).get(name) ?? "";
  }
  const rec = h as Record<string, string | string[] | undefined>;
  const v = rec[name.toLowerCase()] ?? rec[name];
  return Array.isArray(v) ? (v[0] ?? "") : (v ?? "");
}

export interface VerifyOptions {
  /** The clock; default now. */
  now?: Date;
  /** The replay window in seconds; 0 or absent means DEFAULT_REPLAY_WINDOW_SECONDS. */
  replayWindowSeconds?: number;
}

/**
 * Checks that a call with these headers and this raw body was signed with
 * `secret`, recently: ECB-Timestamp within the replay window of `now`, in
 * either direction. Throws a SignatureError; returns nothing when it passes.
 * The order of the checks is the Go SDK's: headers present, a secret, the
 * timestamp's form, the signature's form, the HMAC (constant time), and only
 * then the freshness, so a stale_timestamp always means a genuine call that is
 * too old or too new (the clocks), never a wrong secret. An empty secret
 * refuses everything.
 */
export function verifySignature(secret: Secret, headers: HeaderSource, body: Uint8Array | string, opts: VerifyOptions = {}): void {
  const ts = header(headers, Headers.timestamp);
  const sig = header(headers, Headers.signature);
  if (ts === "" || sig === "") {
    throw new SignatureError("missing_signature", `headers ${Headers.timestamp} and ${Headers.signature} are required`);
  }
  if (toBytes(secret).length === 0) {
    throw new SignatureError("bad_signature", "no secret is configured");
  }
  if (!DECIMAL.test(ts)) {
    throw new SignatureError("bad_signature", `${Headers.timestamp} is not unix seconds`);
  }
  const unix = BigInt(ts);
  if (unix > INT64_MAX || unix < INT64_MIN) {
    throw new SignatureError("bad_signature", `${Headers.timestamp} is not unix seconds`);
  }
  if (!sig.startsWith(PREFIX)) {
    throw new SignatureError("bad_signature", `${Headers.signature} does not start with "${PREFIX}"`);
  }
  const hex = sig.slice(PREFIX.length);
  if (!HEX_SIG.test(hex)) {
    throw new SignatureError("bad_signature", `${Headers.signature} is not 64 hex digits`);
  }
  if (!timingSafeEqual(Buffer.from(hex, "hex"), mac(secret, ts, body))) {
    throw new SignatureError("bad_signature", "signature does not match");
  }
  let window = opts.replayWindowSeconds ?? 0;
  if (!(window > 0)) window = DEFAULT_REPLAY_WINDOW_SECONDS;
  const w = BigInt(Math.ceil(window));
  const n = BigInt(Math.floor((opts.now ?? new Date()).getTime() / 1000));
  if (unix < n - w || unix > n + w) {
    throw new SignatureError(
      "stale_timestamp",
      `${Headers.timestamp} is ${unix - n}s away from this server's clock (window ${window}s)`,
    );
  }
}

/** The message answered for a refused signature: which check failed, echoing nothing the caller sent (Go's signatureMessage). */
export function signatureMessage(err: SignatureError): string {
  switch (err.kind) {
    case "missing_signature":
      return `missing ${Headers.timestamp} or ${Headers.signature} header`;
    case "stale_timestamp":
      return `${Headers.timestamp} is outside the replay window; check both clocks`;
    default:
      return "signature does not match; check the shared secret";
  }
}
