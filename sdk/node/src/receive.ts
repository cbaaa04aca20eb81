// What createHandler and createCallbackHandler share (the Go SDK's
// signedReceiver): a POST whose raw body, read with a size limit, is signed by
// ECB with the shared secret, checked before anything parses it.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Codes, Headers } from "./contract.js";
import { EcbError, invalidArgument } from "./errors.js";
import { type Secret, SignatureError, signatureMessage, verifySignature } from "./signature.js";

/** The Go SDK's DefaultMaxBodyBytes: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/** Where refused signatures (warn) and internal errors (error) go; default console. */
export interface Logger {
  warn(message: string, attrs?: Record<string, unknown>): void;
  error(message: string, attrs?: Record<string, unknown>): void;
}

export const consoleLogger: Logger = {
  warn: (m, a) => console.warn(m, a ?? {}),
  error: (m, a) => console.error(m, a ?? {}),
};

export interface ReceiverOptions {
  /** A larger request body is answered 413; default DEFAULT_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** How far ECB-Timestamp may be from this clock, in seconds; default 300. */
  replayWindowSeconds?: number;
  /** Default consoleLogger. */
  logger?: Logger;
  /** The clock (tests move it); default () => new Date(). */
  now?: () => Date;
}

export interface Receiver {
  secret: Secret;
  maxBody: number;
  window: number;
  log: Logger;
  now: () => Date;
}

export function newReceiver(secret: Secret, opts: ReceiverOptions, who: string): Receiver {
  const r: Receiver = {
    secret,
    maxBody: opts.maxBodyBytes && opts.maxBodyBytes > 0 ? opts.maxBodyBytes : DEFAULT_MAX_BODY_BYTES,
    window: opts.replayWindowSeconds && opts.replayWindowSeconds > 0 ? opts.replayWindowSeconds : 0,
    log: opts.logger ?? consoleLogger,
    now: opts.now ?? (() => new Date()),
  };
  if (secret === undefined || secret === null || (typeof secret === "string" ? secret.length : secret.byteLength) === 0) {
    // Not a throw: a misconfigured backend still starts and answers (401),
    // but the operator sees why every call fails.
    r.log.error(`@ecb/server: ${who} has an empty secret; every call will be refused`);
  }
  return r;
}

/** Writes a JSON answer with the headers the Go SDK sets (answers carry tokens: no-store). */
export function writeJSON(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...extra });
  res.end(body);
}

export function writeError(res: ServerResponse, e: EcbError, extra: Record<string, string> = {}): void {
  writeJSON(res, e.status, JSON.stringify(e.toJSON()), extra);
}

class TooLarge extends Error {}

/** A request as Express (express.raw) or Fastify (a buffer content-type parser) may hand it over: the body already read. */
type MaybeReadRequest = IncomingMessage & { body?: unknown; rawBody?: unknown };

function readBody(req: MaybeReadRequest, max: number): Promise<Buffer> {
  // A framework that already read the raw body leaves it on the request.
  for (const b of [req.rawBody, req.body]) {
    if (Buffer.isBuffer(b) || typeof b === "string") {
      const buf = Buffer.isBuffer(b) ? b : Buffer.from(b, "utf8");
      return buf.length > max ? Promise.reject(new TooLarge()) : Promise.resolve(buf);
    }
  }
  if (req.readableEnded || (req.body !== undefined && req.body !== null)) {
    return Promise.reject(
      new Error("the request body was consumed (parsed) before the ECB handler; mount it before any JSON body parser, or hand it the raw bytes"),
    );
  }
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) return Promise.reject(new TooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        cleanup();
        reject(new TooLarge());
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new Error("request aborted"));
    function cleanup() {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
    }
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
  });
}

/**
 * Checks the method (POST, else 405), reads the body (at most maxBody, else
 * 413) and verifies its signature (else 401 bad_signature) before anything
 * parses it. On a refusal it writes the answer, logs a bad signature, and
 * returns undefined.
 */
export async function readSigned(r: Receiver, req: IncomingMessage, res: ServerResponse, attrs: Record<string, unknown> = {}): Promise<Buffer | undefined> {
  if (req.method !== "POST") {
    writeError(res, new EcbError(Codes.invalidArgument, `method ${req.method} not allowed; use POST`, 405), { Allow: "POST" });
    return undefined;
  }
  let body: Buffer;
  try {
    body = await readBody(req, r.maxBody);
  } catch (err) {
    if (err instanceof TooLarge) {
      // The rest of the body is not read: close the connection after the answer.
      writeError(res, new EcbError(Codes.payloadTooLarge, `request body exceeds ${r.maxBody} bytes`), { Connection: "close" });
      return undefined;
    }
    if (err instanceof Error && err.message.startsWith("the request body was consumed")) {
      r.log.error(`@ecb/server: ${err.message}`, attrs);
      writeError(res, new EcbError(Codes.internal, "internal error"));
      return undefined;
    }
    writeError(res, invalidArgument("cannot read request body"));
    return undefined;
  }
  try {
    verifySignature(r.secret, req.headers, body, { now: r.now(), replayWindowSeconds: r.window });
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    r.log.warn("@ecb/server: refused signature", { ...attrs, remote: req.socket?.remoteAddress, err: err.message, kind: err.kind });
    writeError(res, new EcbError(Codes.badSignature, signatureMessage(err)));
    return undefined;
  }
  return body;
}

export { Headers };

/**
 * Reads the raw body of `req` (at most maxBodyBytes) and verifies its
 * ECB signature, for a route you write yourself. Resolves with the raw bytes;
 * rejects with an EcbError: 413 payload_too_large, or 401 bad_signature whose
 * `cause` is the SignatureError (kind missing_signature, bad_signature or
 * stale_timestamp).
 */
export async function verifyRequest(req: IncomingMessage, opts: ReceiverOptions & { secret: Secret }): Promise<Buffer> {
  const r = newReceiver(opts.secret, { ...opts, logger: opts.logger ?? { warn() {}, error() {} } }, "verifyRequest");
  let body: Buffer;
  try {
    body = await readBody(req, r.maxBody);
  } catch (err) {
    if (err instanceof TooLarge) throw new EcbError(Codes.payloadTooLarge, `request body exceeds ${r.maxBody} bytes`);
    throw invalidArgument(`cannot read request body: ${(err as Error).message}`);
  }
  try {
    verifySignature(r.secret, req.headers, body, { now: r.now(), replayWindowSeconds: r.window });
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    const e = new EcbError(Codes.badSignature, signatureMessage(err));
    (e as { cause?: unknown }).cause = err;
    throw e;
  }
  return body;
}

/**
 * Connect/Express-style middleware: POST only, the body limit and the
 * signature, answered as createHandler answers them; on success the raw
 * body is `req.rawBody` (a Buffer) and next() is called.
 */
export function signatureMiddleware(opts: ReceiverOptions & { secret: Secret }) {
  const r = newReceiver(opts.secret, opts, "signatureMiddleware");
  return async (req: IncomingMessage & { rawBody?: Buffer }, res: ServerResponse, next: (err?: unknown) => void): Promise<void> => {
    const body = await readSigned(r, req, res, { path: req.url });
    if (!body) return;
    req.rawBody = body;
    next();
  };
}
