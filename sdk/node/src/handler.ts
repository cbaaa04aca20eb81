// createHandler: the contract served for an implementation object, with the
// Go SDK's NewHandler behaviour (sdk/ecbserver/handler.go): unknown path 404,
// optional call not implemented 501, POST only 405, body limit 413, signature
// 401 bad_signature before any parsing, ECB-Contract-Version 400, JSON and
// required fields 400, the method, then 200 with the JSON answer, an EcbError's
// status, or 500 internal for anything else.
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  CONTRACT_VERSION,
  Codes,
  Headers,
  Paths,
  type AddParticipantsRequest,
  type AddParticipantsResponse,
  type AddThreadMessageRequest,
  type AddThreadMessageResponse,
  type AuthenticateRequest,
  type AuthenticateResponse,
  type CreateSupportThreadRequest,
  type CreateSupportThreadResponse,
  type CreateThreadRequest,
  type CreateThreadResponse,
  type GetContactsRequest,
  type GetContactsResponse,
  type GetThreadRequest,
  type GetThreadResponse,
  type GetThreadsRequest,
  type GetThreadsResponse,
  type LeaveThreadRequest,
  type LeaveThreadResponse,
  type MarkReadRequest,
  type MarkReadResponse,
  type SearchUsersRequest,
  type SearchUsersResponse,
  type ContactRequest,
  type ContactResponse,
  type SetProfileRequest,
  type DeleteProfilePropertyRequest,
  type ProfileResponse,
  type JoinThreadRequest,
  type JoinThreadResponse,
  type GetPublicThreadsRequest,
  type GetPublicThreadsResponse,
  type RemoveParticipantRequest,
  type RemoveParticipantResponse,
  type UpdateThreadRequest,
  type UpdateThreadResponse,
  type DeleteMessageRequest,
  type DeleteMessageResponse,
  type DeleteThreadRequest,
  type DeleteThreadResponse,
  type GetUploadUrlRequest,
  type GetUploadUrlResponse,
} from "./contract.js";
import { EcbError, invalidArgument, notFound, notImplemented } from "./errors.js";
import { type ReceiverOptions, newReceiver, readSigned, writeError, writeJSON } from "./receive.js";
import type { Secret } from "./signature.js";
import { validators } from "./validate.js";

/** What a method gets beside its request. */
export interface CallContext {
  /** ECB-Request-Id: the id ECB logs for the client request (correlation, not dedupe); "" when absent. */
  requestId: string;
  /** Idempotency-Key: createThread and addThreadMessage, the client's clientMessageId; "" when absent. */
  idempotencyKey: string;
  /** Aborted when ECB goes away (its timeout) before the answer. */
  signal: AbortSignal;
  /** The raw Node request. */
  request: IncomingMessage;
}

type Result<T> = T | Promise<T>;

/**
 * The six required calls. userId in each request was authenticated by ECB
 * from a userToken your backend signed: trust it as the caller, still check
 * what that user may do. Throw an EcbError (notFound, forbidden, ...) to
 * refuse; anything else thrown is logged and answered 500 internal.
 */
export interface RequiredBackend {
  authenticate(req: AuthenticateRequest, ctx: CallContext): Result<AuthenticateResponse>;
  getContacts(req: GetContactsRequest, ctx: CallContext): Result<GetContactsResponse>;
  getThreads(req: GetThreadsRequest, ctx: CallContext): Result<GetThreadsResponse>;
  createThread(req: CreateThreadRequest, ctx: CallContext): Result<CreateThreadResponse>;
  getThread(req: GetThreadRequest, ctx: CallContext): Result<GetThreadResponse>;
  addThreadMessage(req: AddThreadMessageRequest, ctx: CallContext): Result<AddThreadMessageResponse>;
}

/**
 * The optional calls (contract 1.1, 1.2 and 1.4). A method the implementation
 * lacks is answered 501 not_implemented, as the Go SDK does for an optional
 * interface the backend does not implement.
 */
export interface OptionalBackend {
  markRead?(req: MarkReadRequest, ctx: CallContext): Result<MarkReadResponse>;
  addParticipants?(req: AddParticipantsRequest, ctx: CallContext): Result<AddParticipantsResponse>;
  leaveThread?(req: LeaveThreadRequest, ctx: CallContext): Result<LeaveThreadResponse>;
  createSupportThread?(req: CreateSupportThreadRequest, ctx: CallContext): Result<CreateSupportThreadResponse>;
  // people (contract 1.4): a contact is mutual; both contact calls are idempotent.
  searchUsers?(req: SearchUsersRequest, ctx: CallContext): Result<SearchUsersResponse>;
  addContact?(req: ContactRequest, ctx: CallContext): Result<ContactResponse>;
  removeContact?(req: ContactRequest, ctx: CallContext): Result<ContactResponse>;
  setProfile?(req: SetProfileRequest, ctx: CallContext): Result<ProfileResponse>;
  deleteProfileProperty?(req: DeleteProfilePropertyRequest, ctx: CallContext): Result<ProfileResponse>;
  // Contract 1.4: public threads and moderation.
  joinThread?(req: JoinThreadRequest, ctx: CallContext): Result<JoinThreadResponse>;
  getPublicThreads?(req: GetPublicThreadsRequest, ctx: CallContext): Result<GetPublicThreadsResponse>;
  removeParticipant?(req: RemoveParticipantRequest, ctx: CallContext): Result<RemoveParticipantResponse>;
  updateThread?(req: UpdateThreadRequest, ctx: CallContext): Result<UpdateThreadResponse>;
  deleteMessage?(req: DeleteMessageRequest, ctx: CallContext): Result<DeleteMessageResponse>;
  deleteThread?(req: DeleteThreadRequest, ctx: CallContext): Result<DeleteThreadResponse>;
  // Contract 1.5: an upload URL of your storage for one file (bind it to the user and the thread).
  getUploadUrl?(req: GetUploadUrlRequest, ctx: CallContext): Result<GetUploadUrlResponse>;
}

export type Backend = RequiredBackend & OptionalBackend;

export interface HandlerOptions extends ReceiverOptions {
  /** The shared secret (ECB's backend.secret). Trim a secret read from a file. */
  secret: Secret;
  /**
   * The base path the handler is mounted under, stripped from the request path
   * (like Go's http.StripPrefix), e.g. "/ecb/v1" with http.createServer.
   * Leave it out under Express's app.use("/ecb/v1", handler), which strips it itself.
   */
  basePath?: string;
}

/** A Node request handler; `next` is accepted (and unused) so frameworks may mount it as middleware. */
export type EcbRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: unknown) => Promise<void>;

type Op = (body: unknown, ctx: CallContext) => Promise<unknown>;

const REQUIRED = ["authenticate", "getContacts", "getThreads", "createThread", "getThread", "addThreadMessage"] as const;
const OPTIONAL = [
  "markRead", "addParticipants", "leaveThread", "createSupportThread",
  "searchUsers", "addContact", "removeContact", "setProfile", "deleteProfileProperty",
  "joinThread", "getPublicThreads", "removeParticipant", "updateThread", "deleteMessage", "deleteThread",
  "getUploadUrl",
] as const;
type OpName = (typeof REQUIRED)[number] | (typeof OPTIONAL)[number];

// normalize makes absent arrays answer [] (the Go SDK's nil slices), as the contract says they are arrays.
function normalizeThread(t: unknown): void {
  if (t && typeof t === "object" && (t as { members?: unknown }).members == null) (t as { members: unknown[] }).members = [];
}
const normalizers: Partial<Record<OpName, (r: Record<string, unknown>) => void>> = {
  getContacts: (r) => {
    r.contacts ??= [];
  },
  getThreads: (r) => {
    r.threads ??= [];
    for (const st of r.threads as { thread?: unknown }[]) normalizeThread(st?.thread);
  },
  createThread: (r) => normalizeThread(r.thread),
  getThread: (r) => {
    normalizeThread(r.thread);
    r.messages ??= [];
  },
  addParticipants: (r) => {
    normalizeThread(r.thread);
    r.added ??= [];
  },
  leaveThread: (r) => normalizeThread(r.thread),
  createSupportThread: (r) => normalizeThread(r.thread),
  searchUsers: (r) => {
    r.users ??= [];
  },
  joinThread: (r) => normalizeThread(r.thread),
  getPublicThreads: (r) => {
    r.threads ??= [];
    for (const t of r.threads as unknown[]) normalizeThread(t);
  },
  removeParticipant: (r) => normalizeThread(r.thread),
  updateThread: (r) => normalizeThread(r.thread),
  deleteThread: (r) => normalizeThread(r.thread),
};

function bind(name: OpName, impl: Backend): Op {
  const method = (impl as unknown as Record<string, (req: unknown, ctx: CallContext) => unknown>)[name]!.bind(impl);
  const validate = validators[name];
  return async (body, ctx) => {
    const problem = validate(body);
    if (problem) throw invalidArgument(problem);
    const resp = await method(body ?? {}, ctx);
    if (resp === null || resp === undefined || typeof resp !== "object") {
      throw new Error(`@ecb/server: backend method ${name} returned no response object`);
    }
    normalizers[name]?.(resp as Record<string, unknown>);
    return resp;
  };
}

/** The optional paths and their names, for the 501 of an implementation without the method. */
const optionalPaths: Record<string, string> = Object.fromEntries(OPTIONAL.map((n) => [Paths[n], n]));

/**
 * Returns the request handler serving the contract for `impl`: the six
 * required calls and each optional call whose method `impl` has (found once,
 * here); the other optional paths answer 501 not_implemented whatever the
 * request. Mount it with http.createServer (basePath "/ecb/v1"), Express
 * (app.use("/ecb/v1", handler), before any body parser) or Fastify (see the
 * docs: a buffer content-type parser and handler(req.raw, reply.raw)).
 */
export function createHandler(impl: Backend, options: HandlerOptions): EcbRequestHandler {
  if (!impl || typeof impl !== "object") throw new TypeError("createHandler: an implementation object is required");
  for (const name of REQUIRED) {
    if (typeof (impl as unknown as Record<string, unknown>)[name] !== "function") {
      throw new TypeError(`createHandler: the implementation lacks the required method ${name}`);
    }
  }
  const r = newReceiver(options.secret, options, "createHandler");
  const ops = new Map<string, Op>();
  for (const name of REQUIRED) ops.set(Paths[name], bind(name, impl));
  for (const name of OPTIONAL) {
    if (typeof (impl as unknown as Record<string, unknown>)[name] === "function") ops.set(Paths[name], bind(name, impl));
  }
  const base = (options.basePath ?? "").replace(/\/+$/, "");

  // The returned promise never rejects: plain http.createServer would turn a
  // rejection into an unhandled one (a crash on Node 20).
  return async function ecbHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await serveCall(req, res);
    } catch (err) {
      r.log.error("@ecb/server: handler failed", { url: req.url, err: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) writeError(res, new EcbError(Codes.internal, "internal error"));
      else res.destroy();
    }
  };

  async function serveCall(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = (req.url ?? "/").split("?")[0] ?? "/";
    if (base) path = path.startsWith(base + "/") ? path.slice(base.length) : "";
    const op = ops.get(path);
    if (!op) {
      const name = optionalPaths[path];
      // Known to the contract, not implemented here: nothing is read or checked.
      if (name) writeError(res, notImplemented(`this backend does not implement ${name}`));
      else writeError(res, notFound(`no such operation: ${path}`));
      return;
    }
    const requestId = String(req.headers[Headers.requestId.toLowerCase()] ?? "");
    const body = await readSigned(r, req, res, { path, request_id: requestId });
    if (!body) return;
    const version = String(req.headers[Headers.contractVersion.toLowerCase()] ?? "");
    if (version !== "" && version !== CONTRACT_VERSION) {
      writeError(res, invalidArgument(`unsupported contract version "${version}"; this backend speaks "${CONTRACT_VERSION}"`));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch (err) {
      writeError(res, invalidArgument(`malformed JSON body: ${(err as Error).message}`));
      return;
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort(new Error("ECB went away before the answer"));
    };
    res.once("close", onClose);
    const ctx: CallContext = {
      requestId,
      idempotencyKey: String(req.headers[Headers.idempotencyKey.toLowerCase()] ?? ""),
      signal: abort.signal,
      request: req,
    };
    let out: string;
    try {
      out = JSON.stringify(await op(parsed, ctx));
    } catch (err) {
      if (err instanceof EcbError) {
        writeError(res, err);
        return;
      }
      const attrs = { path, request_id: requestId, err: err instanceof Error ? err.message : String(err) };
      // ECB gave up waiting (its timeout) or went away: a warning, not an alert.
      if (abort.signal.aborted) r.log.warn("@ecb/server: backend call failed", attrs);
      else r.log.error("@ecb/server: backend call failed", attrs);
      writeError(res, new EcbError(Codes.internal, "internal error"));
      return;
    } finally {
      res.off("close", onClose);
    }
    writeJSON(res, 200, out);
  }
}
