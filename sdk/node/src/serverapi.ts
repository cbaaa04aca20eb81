// A typed client of ECB's Server API (api/server.yaml, docs/server-api.md):
// what your backend calls to act on ECB live, authenticated with a Server API
// key as `Authorization: Bearer <key>`. The request and answer types are
// generated from api/server.yaml (src/generated/server.ts). The counterpart
// of the Go SDK's ServerAPIClient.
import type { operations } from "./generated/server.js";

type Ops = operations;
/** The `data` of an operation's 200 or 201 answer. */
export type ServerApiData<O extends keyof Ops> = Ops[O]["responses"] extends infer R
  ? R extends { 200: { content: { "application/json": { data: infer D } } } }
    ? D
    : R extends { 201: { content: { "application/json": { data: infer D } } } }
      ? D
      : never
  : never;
/** The JSON body of an operation's request. */
export type ServerApiBody<O extends keyof Ops> = Ops[O] extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

/** An error answer of the Server API: its HTTP status, code and message. */
export class ServerApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds to wait before retrying (429 and 503), when ECB said. */
  readonly retryAfter?: number;

  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(`ECB Server API: ${status} ${code}: ${message}`);
    this.name = "ServerApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export interface ServerApiClientOptions {
  /** ECB's Server API base, e.g. `http://ecb:8080/server/v1` (or the serverApi.listen address + /server/v1). */
  baseUrl: string;
  /** A Server API key (serverApi.keys); its scopes decide what it may call. */
  key: string;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Milliseconds a call may take (default 10000). */
  timeoutMs?: number;
}

const seg = (s: string) => encodeURIComponent(s);

/** ServerApiClient calls ECB's Server API; every method answers the call's `data` or throws ServerApiError. */
export class ServerApiClient {
  readonly #base: string;
  readonly #key: string;
  readonly #fetch: typeof fetch;
  readonly #timeout: number;

  constructor(opts: ServerApiClientOptions) {
    if (!opts.baseUrl) throw new TypeError("ServerApiClient: baseUrl is required");
    if (!opts.key) throw new TypeError("ServerApiClient: key is required");
    this.#base = opts.baseUrl.replace(/\/+$/, "");
    this.#key = opts.key;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#timeout = opts.timeoutMs ?? 10000;
  }

  async #call<O extends keyof Ops>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<ServerApiData<O>> {
    const timeout = AbortSignal.timeout(this.#timeout);
    const r = await this.#fetch(this.#base + path, {
      method,
      headers: { authorization: `Bearer ${this.#key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (r.status === 204) return undefined as ServerApiData<O>;
    const text = await r.text();
    let env: { data?: unknown; error?: { code?: string; message?: string; retryAfter?: number } } | undefined;
    try {
      env = JSON.parse(text);
    } catch {
      env = undefined;
    }
    if (!r.ok || !env || env.error || !("data" in env)) {
      const e = env?.error;
      throw new ServerApiError(r.status, e?.code ?? "internal", e?.message ?? (text.slice(0, 200) || r.statusText), e?.retryAfter);
    }
    return env.data as ServerApiData<O>;
  }

  // Threads (scope threads:write, threads:read).

  /** Overrides a user's access bits on a thread (acc 0 bans), for ttlSeconds or until removed. */
  setAccess(threadId: string, userId: string, body: ServerApiBody<"setAccess">, signal?: AbortSignal) {
    return this.#call<"setAccess">("PUT", `/threads/${seg(threadId)}/access/${seg(userId)}`, body, signal);
  }
  getAccess(threadId: string, userId: string, signal?: AbortSignal) {
    return this.#call<"getAccess">("GET", `/threads/${seg(threadId)}/access/${seg(userId)}`, undefined, signal);
  }
  deleteAccess(threadId: string, userId: string, signal?: AbortSignal) {
    return this.#call<"deleteAccess">("DELETE", `/threads/${seg(threadId)}/access/${seg(userId)}`, undefined, signal);
  }
  /** Stores (through the backend) and pushes a system message. */
  publishSystemMessage(threadId: string, body: ServerApiBody<"publishSystemMessage">, signal?: AbortSignal) {
    return this.#call<"publishSystemMessage">("POST", `/threads/${seg(threadId)}/messages`, body, signal);
  }
  /** Pushes a thread change (updated, closed, reopened, deleted) to its listeners. */
  threadEvent(threadId: string, body: ServerApiBody<"threadEvent">, signal?: AbortSignal) {
    return this.#call<"threadEvent">("POST", `/threads/${seg(threadId)}/events`, body, signal);
  }
  threadInfo(threadId: string, signal?: AbortSignal) {
    return this.#call<"threadInfo">("GET", `/threads/${seg(threadId)}`, undefined, signal);
  }
  /**
   * Makes live that the backend added userId to the thread: their connections get
   * `thread {change: "added", threadToken}` (a threadToken you signed, or ECB asks your getThread as them).
   */
  addMember(threadId: string, userId: string, threadToken?: string, signal?: AbortSignal) {
    return this.#call<"addMember">("POST", `/threads/${seg(threadId)}/members/${seg(userId)}`, threadToken ? { threadToken } : {}, signal);
  }
  /** Makes live that the backend removed userId: detached on every node, told `thread {change: "removed"}`. */
  removeMember(threadId: string, userId: string, signal?: AbortSignal) {
    return this.#call<"removeMember">("DELETE", `/threads/${seg(threadId)}/members/${seg(userId)}`, undefined, signal);
  }
  /** Announces a thread the backend created: each online member gets `thread {change: "created", threadToken}`. */
  announceThread(threadId: string, members: string[], signal?: AbortSignal) {
    return this.#call<"announceThread">("POST", `/threads/${seg(threadId)}/announce`, { members }, signal);
  }

  // Users (scope users:write, presence:read).

  disconnectUser(userId: string, body: ServerApiBody<"disconnectUser"> = {}, signal?: AbortSignal) {
    return this.#call<"disconnectUser">("POST", `/users/${seg(userId)}/disconnect`, body, signal);
  }
  userPresence(userId: string, signal?: AbortSignal) {
    return this.#call<"userPresence">("GET", `/users/${seg(userId)}/presence`, undefined, signal);
  }

  // Support (scope support:read, support:write).

  listWorkgroups(signal?: AbortSignal) {
    return this.#call<"listWorkgroups">("GET", "/workgroups", undefined, signal);
  }
  getWorkgroup(name: string, signal?: AbortSignal) {
    return this.#call<"getWorkgroup">("GET", `/workgroups/${seg(name)}`, undefined, signal);
  }
  putWorkgroup(name: string, settings: ServerApiBody<"putWorkgroup">, signal?: AbortSignal) {
    return this.#call<"putWorkgroup">("PUT", `/workgroups/${seg(name)}`, settings, signal);
  }
  async deleteWorkgroup(name: string, signal?: AbortSignal): Promise<void> {
    await this.#call<"deleteWorkgroup">("DELETE", `/workgroups/${seg(name)}`, undefined, signal);
  }
  listConversations(name: string, signal?: AbortSignal) {
    return this.#call<"listConversations">("GET", `/workgroups/${seg(name)}/conversations`, undefined, signal);
  }
  /** Ends a live support conversation: the agents are freed and conversation.closed is sent. */
  closeConversation(requestId: string, signal?: AbortSignal) {
    return this.#call<"closeConversation">("POST", `/support/conversations/${seg(requestId)}/close`, undefined, signal);
  }
  /** Invites one more agent into a live support conversation. */
  addConversationAgent(requestId: string, agent: string, signal?: AbortSignal) {
    return this.#call<"addConversationAgent">("POST", `/support/conversations/${seg(requestId)}/agents`, { agent }, signal);
  }
}
