import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { EcbError, type ErrorBody } from "./errors.js";
import type {
  CreateThreadRequest,
  CreateThreadResult,
  GetThreadRequest,
  GetThreadResult,
  GetUserTokenRequest,
  GetUserTokenResult,
  Message,
  MessagePush,
  Page,
  PageRequest,
  RefreshTokenRequest,
  RefreshTokenResult,
  SendMessageRequest,
  SendMessageResult,
  SessionEvent,
  SignedThread,
  StopListeningRequest,
  StopListeningResult,
  ThreadEvent,
  TokenExpiringEvent,
  User,
} from "./types.js";
import * as check from "./validate.js";

/**
 * Where the client stands:
 * - `idle`: connect() not called yet;
 * - `connecting`: the first connection is being made;
 * - `connected`: authenticated; operations and pushes flow;
 * - `reconnecting`: the connection was lost (or refused for a passing reason) and is being made again;
 * - `offline`: the network is down (the browser says so), or the client gave up because ECB refused it
 *   for good (the `connection` event's `error` says why; call connect() again once you have a fresh token);
 * - `closed`: close() was called; the client is done.
 */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "offline" | "closed";

/** The `connection` event: sent whenever the state, or the number of messages waiting in the outbox, changes. */
export interface ConnectionEvent {
  state: ConnectionState;
  /** Messages sent with sendMessage and not acknowledged yet (queued or in flight). */
  queued: number;
  /** Why the client is offline or reconnecting, when ECB said so. */
  error?: EcbError;
}

/** The `message` event: a message of a thread this client listens to. */
export interface MessageEvent {
  threadId: string;
  message: Message;
  /** The thread's push position, when the message came as a push. */
  epoch?: string;
  offset?: number;
  /** True when the message was missed while disconnected and fetched again on re-attach. */
  recovered: boolean;
}

/** The `error` event: something the client did on its own failed (re-attach, token refresh). */
export interface ErrorEvent {
  error: EcbError;
  /** What failed: `getThread` (re-attach), `refreshToken`, `getUserToken`. */
  operation: string;
  threadId?: string;
}

/** The events of {@link EcbClient.on} and their payloads. */
export interface EcbClientEvents {
  message: MessageEvent;
  thread: ThreadEvent;
  session: SessionEvent;
  tokenExpiring: TokenExpiringEvent;
  connection: ConnectionEvent;
  error: ErrorEvent;
}

export type EcbEventName = keyof EcbClientEvents;

export interface EcbClientOptions {
  /** ECB's base URL, e.g. `https://chat.example.com`. */
  url: string;
  /** A userToken the backend signed (one of userToken, accessToken, getUserToken is needed). */
  userToken?: string;
  /** The backend's access token: ECB trades it for a userToken in the handshake (and on refresh). */
  accessToken?: string;
  /**
   * Called for a fresh userToken when ECB refuses the current one (expired) and before it expires.
   * Rejecting makes the client give up (state `offline`).
   */
  getUserToken?: () => Promise<string>;
  /** How many messages may wait for their ack (default 100); sendMessage beyond that rejects with `outbox_full`. */
  outboxLimit?: number;
  /** Socket.IO transports, in order of preference (default polling with upgrade to websocket). */
  transports?: ("polling" | "websocket" | "webtransport")[];
  /** How long an operation may wait for the connection and its answer, in ms (default 30000). */
  requestTimeout?: number;
  /** Socket.IO path (default `/socket.io/`). */
  path?: string;
  /**
   * Drop the connection as soon as the browser says it is offline, and reconnect at once when it is
   * back online (default true where `window` has online/offline events).
   */
  watchNetwork?: boolean;
  /** Extra socket.io-client options (reconnection delays, ...). auth, autoConnect and reconnection are the client's. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

/** Ack answers of every operation: exactly one of data and error. */
interface Envelope<T> {
  data?: T;
  error?: ErrorBody;
}

type EmitOutcome<T> = { data: T } | { error: EcbError } | { lost: true };

/** What the client keeps per thread to re-attach and to spot missed pushes. */
interface ThreadState {
  id: string;
  token: string;
  listening: boolean;
  epoch?: string;
  /** The last offset processed without a gap. */
  offset: number;
  /** Offsets beyond `offset` already processed (own acks that came before earlier pushes). */
  ahead: Set<number>;
  /** Ids of the messages this client saw (answers and pushes), newest last, bounded. */
  seen: Set<string>;
  resync: Promise<void> | null;
  resyncAgain: boolean;
  /** Pushes that arrived while a re-attach was in flight. */
  buffer: HistoryPush[] | null;
}

/**
 * A push that takes a place in a thread's history (an offset): `message`, and
 * the other history pushes a server may send (`read`, `member`), which the
 * client only counts so that their offsets are not mistaken for a gap.
 */
interface HistoryPush {
  threadId: string;
  epoch: string;
  offset: number;
  message?: Message;
}

interface OutboxEntry {
  req: SendMessageRequest & { clientMessageId: string };
  threadId?: string;
  state: "queued" | "sending";
  attempt: number;
  tokenRetried: boolean;
  notBefore: number;
  resolve: (r: SendMessageResult) => void;
  reject: (e: EcbError) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (e: EcbError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const SEEN_PER_THREAD = 5000;
const MAX_IN_FLIGHT = 8;
const RECOVERY_PAGE = 100;
const RECOVERY_MAX_PAGES = 10;
const TOKEN_MAP_MAX = 2000;

/** A random RFC 4122 version 4 id; falls back to getRandomValues where randomUUID is missing (insecure contexts). */
export function newClientMessageId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A connection to ECB over Socket.IO, with one typed method per operation.
 *
 * It reconnects by itself, re-authenticates (with the access token or the getUserToken
 * callback), re-attaches the threads it listened to and emits the messages missed
 * meanwhile (`recovered: true`), dropping duplicates by message id. sendMessage goes
 * through an outbox: while disconnected the message waits and is sent once the
 * connection is back, always with the same clientMessageId, so a retry never
 * duplicates it.
 *
 * Handlers run synchronously on the client's events and should not throw.
 */
export class EcbClient {
  readonly #url: string;
  readonly #opts: EcbClientOptions;
  readonly #requestTimeout: number;
  readonly #outboxLimit: number;

  #socket: Socket | null = null;
  #state: ConnectionState = "idle";
  #lastError: EcbError | undefined;
  #ready = false;
  #generation = 0;
  #givenUp = false;
  #networkDown = false;

  #userToken: string | undefined;
  #accessToken: string | undefined;
  #user: User | undefined;
  #authMode: "userToken" | "accessToken" | "none" = "none";
  #triedAccess = false;
  #triedCallback = false;
  #awaitingSession: ReturnType<typeof setTimeout> | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #refusals = 0;

  #waiters: Waiter[] = [];
  #connectPromise: { promise: Promise<void>; resolve: () => void; reject: (e: EcbError) => void } | null = null;
  #listeners = new Map<EcbEventName, Set<(e: never) => void>>();

  #threads = new Map<string, ThreadState>();
  #tokenToThread = new Map<string, string>();
  #outbox: OutboxEntry[] = [];
  #inFlight = 0;
  #pumpTimer: ReturnType<typeof setTimeout> | null = null;
  #threadTokenRefresh: Promise<void> | null = null;
  #unwatchNetwork: (() => void) | null = null;

  constructor(options: EcbClientOptions) {
    if (!options || typeof options.url !== "string" || options.url === "") {
      throw new EcbError("invalid_argument", "options.url must be ECB's URL");
    }
    if (options.outboxLimit !== undefined && (!Number.isInteger(options.outboxLimit) || options.outboxLimit < 0)) {
      throw new EcbError("invalid_argument", "options.outboxLimit must be a non-negative integer");
    }
    if (options.getUserToken !== undefined && typeof options.getUserToken !== "function") {
      throw new EcbError("invalid_argument", "options.getUserToken must be a function");
    }
    this.#url = options.url;
    this.#opts = options;
    this.#userToken = options.userToken || undefined;
    this.#accessToken = options.accessToken || undefined;
    this.#requestTimeout = options.requestTimeout ?? 30_000;
    this.#outboxLimit = options.outboxLimit ?? 100;
  }

  // ---- state ----

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The user this client is connected as, once known (from the session or getUserToken). */
  get user(): User | undefined {
    return this.#user;
  }

  /** The newest userToken the client holds. */
  get userToken(): string | undefined {
    return this.#userToken;
  }

  /** Messages waiting for their ack in the outbox (queued or in flight). */
  get queued(): number {
    return this.#outbox.length;
  }

  /** Why the client last failed to connect, if it did. */
  get lastError(): EcbError | undefined {
    return this.#lastError;
  }

  /** The newest threadToken the client knows for a thread (answers of getThreads, getThread, sendMessage, createThread). */
  threadToken(threadId: string): string | undefined {
    return this.#threads.get(threadId)?.token;
  }

  /** Whether this client listens to the thread's pushes (and re-attaches it after a reconnect). */
  isListening(threadId: string): boolean {
    return this.#threads.get(threadId)?.listening ?? false;
  }

  // ---- events ----

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends EcbEventName>(event: K, handler: (payload: EcbClientEvents[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(handler as (e: never) => void);
    return () => this.off(event, handler);
  }

  /** Unsubscribes a handler given to on(). */
  off<K extends EcbEventName>(event: K, handler: (payload: EcbClientEvents[K]) => void): void {
    this.#listeners.get(event)?.delete(handler as (e: never) => void);
  }

  #emit<K extends EcbEventName>(event: K, payload: EcbClientEvents[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const h of [...set]) {
      try {
        (h as (p: EcbClientEvents[K]) => void)(payload);
      } catch (err) {
        console.error(`@ecb/client: a "${event}" handler threw`, err);
      }
    }
  }

  #setState(state: ConnectionState, error?: EcbError): void {
    const changed = state !== this.#state || error !== this.#lastError;
    this.#state = state;
    if (error !== undefined || state === "connected") this.#lastError = error;
    if (changed) this.#announce();
  }

  #announce(): void {
    const ev: ConnectionEvent = { state: this.#state, queued: this.#outbox.length };
    if (this.#lastError && this.#state !== "connected") ev.error = this.#lastError;
    this.#emit("connection", ev);
  }

  // ---- connection ----

  /**
   * Opens the connection. Resolves once connected and authenticated; rejects with the
   * EcbError ECB refused the handshake with (after the refresh attempts), or with
   * `timeout` when not connected within requestTimeout (the client keeps trying).
   * Calling it again while connected does nothing; after a give-up it starts again.
   */
  connect(): Promise<void> {
    if (this.#state === "closed") return Promise.reject(new EcbError("closed", "this client was closed"));
    if (this.#ready) return Promise.resolve();
    if (!this.#connectPromise) {
      let resolve!: () => void;
      let reject!: (e: EcbError) => void;
      const promise = new Promise<void>((ok, fail) => {
        resolve = ok;
        reject = fail;
      });
      const timer = setTimeout(
        () => this.#settleConnect(new EcbError("timeout", "could not connect to ECB in time; still trying")),
        this.#requestTimeout,
      );
      this.#connectPromise = {
        promise,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    }
    const p = this.#connectPromise.promise;
    if (this.#givenUp || this.#state === "idle") {
      this.#givenUp = false;
      this.#triedAccess = false;
      this.#triedCallback = false;
      this.#setState(this.#socket ? "reconnecting" : "connecting");
      this.#watchNetwork();
      this.#open();
    }
    return p;
  }

  #settleConnect(err?: EcbError): void {
    const cp = this.#connectPromise;
    if (!cp) return;
    this.#connectPromise = null;
    if (err) cp.reject(err);
    else cp.resolve();
  }

  /** Closes the connection for good; pending operations and queued messages reject with `closed`. */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#ready = false;
    this.#clearTimers();
    this.#unwatchNetwork?.();
    this.#unwatchNetwork = null;
    const socket = this.#socket;
    this.#socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    const err = new EcbError("closed", "the client was closed");
    this.#settleConnect(err);
    this.#rejectWaiters(err);
    for (const e of this.#outbox.splice(0)) e.reject(err);
    this.#lastError = undefined;
    this.#announce();
  }

  #clearTimers(): void {
    for (const t of [this.#awaitingSession, this.#retryTimer, this.#pumpTimer]) if (t) clearTimeout(t);
    this.#awaitingSession = this.#retryTimer = this.#pumpTimer = null;
  }

  #handshakeAuth(): Record<string, string> {
    if (this.#userToken) {
      this.#authMode = "userToken";
      return { userToken: this.#userToken };
    }
    if (this.#accessToken) {
      this.#authMode = "accessToken";
      return { accessToken: this.#accessToken };
    }
    this.#authMode = "none";
    return {};
  }

  #open(): void {
    if (this.#socket) {
      this.#socket.connect();
      return;
    }
    const opts: Partial<ManagerOptions & SocketOptions> = {
      ...this.#opts.socketOptions,
      autoConnect: false,
      reconnection: true,
      forceNew: true,
      auth: (cb: (auth: object) => void) => cb(this.#handshakeAuth()),
    };
    if (this.#opts.path) opts.path = this.#opts.path;
    if (this.#opts.transports) opts.transports = this.#opts.transports;
    const socket = io(this.#url, opts);
    this.#socket = socket;

    socket.on("connect", () => this.#onConnect());
    socket.on("connect_error", (err: Error & { data?: unknown }) => this.#onConnectError(socket, err));
    socket.on("disconnect", (reason: string) => this.#onDisconnect(reason));
    socket.on("session", (ev: SessionEvent) => this.#onSession(ev));
    socket.on("message", (p: MessagePush) => this.#onPush(p));
    socket.on("read", (p: HistoryPush) => this.#onPush(p));
    socket.on("member", (p: HistoryPush) => this.#onPush(p));
    socket.on("thread", (ev: ThreadEvent) => this.#emit("thread", ev));
    socket.on("tokenExpiring", (ev: TokenExpiringEvent) => void this.#onTokenExpiring(ev));
    socket.connect();
  }

  #onConnect(): void {
    if (this.#authMode === "accessToken") {
      // ECB emits `session` with the userToken right after such a handshake.
      this.#awaitingSession = setTimeout(() => {
        this.#awaitingSession = null;
        this.#onReady();
      }, this.#requestTimeout);
      return;
    }
    this.#onReady();
  }

  #onSession(ev: SessionEvent): void {
    if (ev && typeof ev.userToken === "string") {
      this.#userToken = ev.userToken;
      this.#user = ev.user;
      this.#emit("session", ev);
    }
    if (this.#awaitingSession) {
      clearTimeout(this.#awaitingSession);
      this.#awaitingSession = null;
      this.#onReady();
    }
  }

  #onReady(): void {
    if (this.#state === "closed") return;
    this.#ready = true;
    this.#refusals = 0;
    this.#triedAccess = false;
    this.#triedCallback = false;
    this.#setState("connected");
    this.#settleConnect();
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    // Re-attach first (the server runs a socket's operations in order), then the outbox.
    for (const t of this.#threads.values()) if (t.listening) void this.#resync(t);
    this.#pump();
  }

  #onDisconnect(reason: string): void {
    this.#generation++;
    this.#ready = false;
    if (this.#awaitingSession) {
      clearTimeout(this.#awaitingSession);
      this.#awaitingSession = null;
    }
    if (this.#state === "closed" || this.#givenUp) return;
    if (reason === "io server disconnect") {
      // ECB ended the session (token expiry, kicked, shutting down): socket.io-client does
      // not reconnect by itself after that; the client does, with a fresh token if needed.
      this.#scheduleRetry(undefined);
    }
    this.#setState(this.#networkDown ? "offline" : "reconnecting");
  }

  #onConnectError(socket: Socket, err: Error & { data?: unknown }): void {
    if (this.#state === "closed") return;
    if (socket.active) {
      // A transport error: socket.io-client tries again by itself.
      if (this.#state !== "connecting") this.#setState(this.#networkDown ? "offline" : "reconnecting");
      return;
    }
    const data = err.data as ErrorBody | undefined;
    const e =
      data && typeof data === "object" && typeof data.code === "string"
        ? EcbError.fromBody(data)
        : new EcbError("unavailable", err.message || "connection refused");
    void this.#onRefused(e);
  }

  async #onRefused(e: EcbError): Promise<void> {
    switch (e.code) {
      case "unauthenticated":
        if (this.#authMode === "userToken" && this.#accessToken && !this.#triedAccess) {
          // The userToken expired: let ECB trade the access token again.
          this.#triedAccess = true;
          this.#userToken = undefined;
          this.#socket?.connect();
          return;
        }
        if (this.#opts.getUserToken && !this.#triedCallback) {
          this.#triedCallback = true;
          this.#setState(this.#state === "connecting" ? "connecting" : "reconnecting", e);
          let token: string;
          try {
            token = await this.#opts.getUserToken();
          } catch (err) {
            this.#giveUp(
              err instanceof EcbError ? err : new EcbError("unauthenticated", `could not get a fresh userToken: ${String(err)}`),
            );
            return;
          }
          if (this.#state === "closed") return;
          if (typeof token !== "string" || token === "") {
            this.#giveUp(new EcbError("unauthenticated", "getUserToken gave no token"));
            return;
          }
          this.#userToken = token;
          this.#socket?.connect();
          return;
        }
        this.#giveUp(e);
        return;
      case "forbidden":
      case "invalid_argument":
      case "not_found":
      case "payload_too_large":
        this.#giveUp(e);
        return;
      default:
        // backend_unavailable, unavailable, rate_limited, ...: passing; try again with backoff.
        this.#setState(this.#state === "connecting" ? "connecting" : "reconnecting", e);
        this.#scheduleRetry(e);
    }
  }

  #scheduleRetry(e: EcbError | undefined): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const n = this.#refusals++;
    const base = e?.retryAfter ? e.retryAfter * 1000 : Math.min(30_000, 500 * 2 ** n);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#state !== "closed" && !this.#givenUp && !this.#ready) this.#socket?.connect();
    }, delay);
  }

  #giveUp(e: EcbError): void {
    this.#givenUp = true;
    this.#ready = false;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#socket?.disconnect();
    this.#setState("offline", e);
    this.#settleConnect(e);
    this.#rejectWaiters(e);
  }

  #rejectWaiters(e: EcbError): void {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  #watchNetwork(): void {
    if (this.#unwatchNetwork || this.#opts.watchNetwork === false) return;
    const w = globalThis as unknown as {
      addEventListener?: (t: string, f: () => void) => void;
      removeEventListener?: (t: string, f: () => void) => void;
      navigator?: { onLine?: boolean };
    };
    if (typeof w.addEventListener !== "function" || typeof w.removeEventListener !== "function") return;
    const offline = () => {
      this.#networkDown = true;
      if (this.#state === "closed" || this.#givenUp) return;
      // Drop the connection now instead of waiting for the ping timeout;
      // socket.io-client keeps trying to reconnect.
      const engine = this.#socket?.io.engine;
      if (this.#socket?.connected && engine) engine.close();
      this.#setState("offline");
    };
    const online = () => {
      this.#networkDown = false;
      if (this.#state === "closed" || this.#givenUp || this.#ready) return;
      this.#setState(this.#socket ? "reconnecting" : "connecting");
      // Skip whatever backoff delay socket.io-client is in: try now.
      const s = this.#socket;
      if (s && !s.connected) {
        s.disconnect();
        s.connect();
      }
    };
    w.addEventListener("offline", offline);
    w.addEventListener("online", online);
    if (w.navigator?.onLine === false) this.#networkDown = true;
    this.#unwatchNetwork = () => {
      w.removeEventListener!("offline", offline);
      w.removeEventListener!("online", online);
    };
  }

  // ---- token refresh ----

  async #onTokenExpiring(ev: TokenExpiringEvent): Promise<void> {
    this.#emit("tokenExpiring", ev);
    let token: string | undefined;
    try {
      if (this.#opts.getUserToken) {
        token = await this.#opts.getUserToken();
      } else if (this.#accessToken) {
        token = (await this.getUserToken({ accessToken: this.#accessToken })).userToken;
      } else {
        return; // nothing to refresh with: ECB disconnects at expiry
      }
      await this.refreshToken({ userToken: token });
    } catch (err) {
      const error = err instanceof EcbError ? err : new EcbError("unauthenticated", `token refresh failed: ${String(err)}`);
      this.#emit("error", { error, operation: "refreshToken" });
    }
  }

  // ---- operations ----

  /** Waits until the client is connected, or rejects when it cannot be within the deadline. */
  #waitReady(deadline: number): Promise<void> {
    if (this.#ready) return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new EcbError("closed", "the client was closed"));
    if (this.#state === "idle") return Promise.reject(new EcbError("disconnected", "not connected: call connect() first"));
    if (this.#givenUp) {
      return Promise.reject(this.#lastError ?? new EcbError("disconnected", "not connected"));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.#waiters = this.#waiters.filter((x) => x !== w);
            reject(new EcbError("timeout", "not connected to ECB in time"));
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      this.#waiters.push(w);
    });
  }

  /** Emits one operation on the live socket. `lost` when the connection dropped before the answer. */
  #emitOnce<T>(op: string, payload: object, timeoutMs: number): Promise<EmitOutcome<T>> {
    const socket = this.#socket;
    if (!socket || !this.#ready || !socket.connected) return Promise.resolve({ lost: true });
    const gen = this.#generation;
    return new Promise((resolve) => {
      socket.timeout(Math.max(1, timeoutMs)).emit(op, payload, (err: Error | null, env: Envelope<T>) => {
        if (err) {
          if (gen !== this.#generation || !socket.connected) resolve({ lost: true });
          else resolve({ error: new EcbError("timeout", `no answer to ${op} in time`) });
          return;
        }
        if (env && typeof env === "object" && env.error) resolve({ error: EcbError.fromBody(env.error) });
        else if (env && typeof env === "object" && "data" in env) resolve({ data: env.data as T });
        else resolve({ error: new EcbError("internal", `malformed answer to ${op}`) });
      });
    });
  }

  /**
   * Runs an operation: waits for the connection, emits, and retries on a new connection
   * when the old one dropped before the answer (every operation of protocol 1 is safe to
   * retry: reads, and writes that carry a clientMessageId).
   */
  async #call<T>(op: string, payload: object): Promise<T> {
    const deadline = Date.now() + this.#requestTimeout;
    for (;;) {
      await this.#waitReady(deadline);
      const out = await this.#emitOnce<T>(op, payload, deadline - Date.now());
      if ("data" in out) return out.data;
      if ("error" in out) throw out.error;
      if (Date.now() >= deadline) throw new EcbError("timeout", `no answer to ${op} in time`);
    }
  }

  /** Trades the backend's access token for a userToken; the client uses it from then on. */
  async getUserToken(req: GetUserTokenRequest): Promise<GetUserTokenResult> {
    check.checkGetUserToken(req);
    const res = await this.#call<GetUserTokenResult>("getUserToken", { accessToken: req.accessToken });
    this.#userToken = res.userToken;
    this.#user = res.user;
    this.#emit("session", { userToken: res.userToken, user: res.user });
    return res;
  }

  /** Swaps the live connection's userToken for a fresh one of the same user (before it expires). */
  async refreshToken(req: RefreshTokenRequest): Promise<RefreshTokenResult> {
    check.checkRefreshToken(req);
    const res = await this.#call<RefreshTokenResult>("refreshToken", { userToken: req.userToken });
    this.#userToken = req.userToken;
    return res;
  }

  /** A page of the users this user may start threads with. */
  async getContacts(req: PageRequest = {}): Promise<Page<User>> {
    check.checkPage(req, "getContacts");
    return this.#call<Page<User>>("getContacts", pick(req, ["page", "pageSize"]));
  }

  /** A page of this user's threads, each with its threadToken. */
  async getThreads(req: PageRequest = {}): Promise<Page<SignedThread>> {
    check.checkPage(req, "getThreads");
    const res = await this.#call<Page<SignedThread>>("getThreads", pick(req, ["page", "pageSize"]));
    for (const st of res.items ?? []) this.#noteToken(st.thread.id, st.threadToken, false);
    return res;
  }

  /**
   * Creates a thread with a first message; this connection listens to it from then on.
   * The message gets a clientMessageId when it has none, so a retry never creates a second thread.
   */
  async createThread(req: CreateThreadRequest): Promise<CreateThreadResult> {
    check.checkCreateThread(req);
    const payload: CreateThreadRequest = {
      participants: [...req.participants],
      message: { ...pick(req.message, ["body", "data"]), clientMessageId: req.message.clientMessageId ?? newClientMessageId() },
    };
    if (req.subject !== undefined) payload.subject = req.subject;
    const res = await this.#call<CreateThreadResult>("createThread", payload);
    const t = this.#noteToken(res.thread.id, res.threadToken, true);
    this.#see(t, res.message.id);
    this.#position(t, res.epoch, res.message.offset ?? 0, true);
    return res;
  }

  /**
   * A thread with its newest messages (oldest first). Without `before` this connection
   * becomes a listener of the thread (and stays one across reconnects); with `before`
   * (a nextCursor) it pages older history.
   */
  async getThread(req: GetThreadRequest): Promise<GetThreadResult> {
    check.checkGetThread(req);
    const token = this.#newestToken(req.threadToken);
    const payload = { ...pick(req, ["threadId", "before", "limit"]), threadToken: token };
    const res = await this.#call<GetThreadResult>("getThread", payload);
    const listen = req.before === undefined;
    const t = this.#noteToken(res.thread.id, res.threadToken, listen);
    this.#tokenToThreadSet(req.threadToken, res.thread.id);
    for (const m of res.messages) this.#see(t, m.id);
    if (listen) this.#position(t, res.epoch, res.offset, false);
    return res;
  }

  /**
   * Sends a message through the outbox: at once when connected, or once the connection
   * is back. Resolves when ECB acknowledged it (the backend stored it). The clientMessageId
   * (generated when absent) is kept across retries, so the message is stored once.
   * Rejects with `outbox_full` when outboxLimit messages already wait.
   */
  sendMessage(req: SendMessageRequest): Promise<SendMessageResult> {
    try {
      check.checkSendMessage(req);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#state === "closed") return Promise.reject(new EcbError("closed", "the client was closed"));
    if (this.#outbox.length >= this.#outboxLimit) {
      return Promise.reject(
        new EcbError("outbox_full", `${this.#outbox.length} messages are already waiting to be sent (outboxLimit)`),
      );
    }
    const entryReq: OutboxEntry["req"] = {
      threadToken: req.threadToken,
      body: req.body,
      clientMessageId: req.clientMessageId ?? newClientMessageId(),
    };
    if (req.threadId !== undefined) entryReq.threadId = req.threadId;
    if (req.data !== undefined) entryReq.data = req.data;
    return new Promise<SendMessageResult>((resolve, reject) => {
      const entry: OutboxEntry = {
        req: entryReq,
        state: "queued",
        attempt: 0,
        tokenRetried: false,
        notBefore: 0,
        resolve,
        reject,
      };
      // The thread the token was issued for (a threadId given by the caller is only
      // checked by ECB against the token, never used to pick another token).
      const tid = this.#tokenToThread.get(req.threadToken);
      if (tid !== undefined) entry.threadId = tid;
      this.#outbox.push(entry);
      this.#announce();
      this.#pump();
    });
  }

  /** Stops the thread's pushes to this connection; the client no longer re-attaches it. */
  async stopListening(req: StopListeningRequest): Promise<StopListeningResult> {
    check.checkStopListening(req);
    const t = this.#threads.get(req.threadId);
    if (t) t.listening = false;
    // A connection made after this call does not listen to the thread: nothing to undo there.
    if (!this.#ready) return {};
    const out = await this.#emitOnce<StopListeningResult>("stopListening", { threadId: req.threadId }, this.#requestTimeout);
    if ("error" in out) throw out.error;
    return {};
  }

  // ---- outbox ----

  #pump(): void {
    if (!this.#ready || this.#state === "closed") return;
    const now = Date.now();
    let wait = Infinity;
    for (const e of this.#outbox) {
      if (this.#inFlight >= MAX_IN_FLIGHT) break;
      if (e.state !== "queued") continue;
      if (e.notBefore > now) {
        wait = Math.min(wait, e.notBefore - now);
        break; // keep the order: later messages wait behind this one
      }
      this.#sendEntry(e);
    }
    if (wait !== Infinity && !this.#pumpTimer) {
      this.#pumpTimer = setTimeout(() => {
        this.#pumpTimer = null;
        this.#pump();
      }, wait);
    }
  }

  #sendEntry(e: OutboxEntry): void {
    e.state = "sending";
    const attempt = ++e.attempt;
    this.#inFlight++;
    const payload = { ...e.req, threadToken: this.#newestToken(e.req.threadToken, e.threadId) };
    void this.#emitOnce<SendMessageResult>("sendMessage", payload, this.#requestTimeout).then(async (out) => {
      this.#inFlight--;
      if (e.attempt !== attempt || e.state !== "sending" || this.#state === "closed") return;
      if ("lost" in out || ("error" in out && out.error.code === "timeout")) {
        e.state = "queued"; // sent again on the next connection, with the same clientMessageId
      } else if ("error" in out) {
        const err = out.error;
        if (err.code === "rate_limited") {
          e.state = "queued";
          e.notBefore = Date.now() + (err.retryAfter ?? 1) * 1000;
        } else if (err.code === "unauthenticated" && !e.tokenRetried && e.threadId) {
          // The connection is authenticated, so the threadToken expired: get fresh ones.
          e.tokenRetried = true;
          await this.#refreshThreadTokens();
          e.state = "queued";
        } else {
          this.#finish(e);
          e.reject(err);
        }
      } else {
        const res = out.data;
        const tid = res.message.threadId || e.threadId;
        if (tid) {
          const t = this.#noteToken(tid, res.threadToken, undefined);
          this.#see(t, res.message.id);
          this.#own(t, res.epoch, res.message.offset);
        }
        this.#finish(e);
        e.resolve(res);
      }
      this.#pump();
    });
  }

  #finish(e: OutboxEntry): void {
    const i = this.#outbox.indexOf(e);
    if (i >= 0) this.#outbox.splice(i, 1);
    this.#announce();
  }

  /** Fetches fresh threadTokens for the threads the client knows (getThreads, all pages). */
  #refreshThreadTokens(): Promise<void> {
    if (!this.#threadTokenRefresh) {
      this.#threadTokenRefresh = (async () => {
        try {
          for (let page = 1; page <= 20; page++) {
            const out = await this.#emitOnce<Page<SignedThread>>("getThreads", { page, pageSize: 100 }, this.#requestTimeout);
            if (!("data" in out)) return;
            for (const st of out.data.items) this.#noteToken(st.thread.id, st.threadToken, undefined);
            if (!out.data.hasMore) return;
          }
        } finally {
          this.#threadTokenRefresh = null;
        }
      })();
    }
    return this.#threadTokenRefresh;
  }

  // ---- threads: tokens, positions, pushes, re-attach ----

  /** The newest token of the thread `token` was issued for (threadId when the caller knows it already). */
  #newestToken(token: string, threadId?: string): string {
    const id = threadId ?? this.#tokenToThread.get(token);
    return (id !== undefined && this.#threads.get(id)?.token) || token;
  }

  #tokenToThreadSet(token: string, threadId: string): void {
    this.#tokenToThread.set(token, threadId);
    if (this.#tokenToThread.size > TOKEN_MAP_MAX) {
      const oldest = this.#tokenToThread.keys().next().value;
      if (oldest !== undefined) this.#tokenToThread.delete(oldest);
    }
  }

  /** Records the newest token of a thread; listen true/false sets the listening flag, undefined keeps it. */
  #noteToken(threadId: string, token: string, listen: boolean | undefined): ThreadState {
    let t = this.#threads.get(threadId);
    if (!t) {
      t = {
        id: threadId,
        token,
        listening: false,
        offset: 0,
        ahead: new Set(),
        seen: new Set(),
        resync: null,
        resyncAgain: false,
        buffer: null,
      };
      this.#threads.set(threadId, t);
    }
    if (token) {
      t.token = token;
      this.#tokenToThreadSet(token, threadId);
    }
    if (listen === true) t.listening = true;
    return t;
  }

  #see(t: ThreadState, id: string): boolean {
    if (t.seen.has(id)) return false;
    t.seen.add(id);
    if (t.seen.size > SEEN_PER_THREAD) {
      const oldest = t.seen.values().next().value;
      if (oldest !== undefined) t.seen.delete(oldest);
    }
    return true;
  }

  /** Sets the thread's push position from an answer (createThread, getThread). */
  #position(t: ThreadState, epoch: string, offset: number, exact: boolean): void {
    if (t.epoch === epoch && !exact) {
      t.offset = Math.max(t.offset, offset);
    } else {
      t.epoch = epoch;
      t.offset = offset;
    }
    for (const o of t.ahead) if (o <= t.offset) t.ahead.delete(o);
    this.#advance(t);
  }

  #advance(t: ThreadState): void {
    while (t.ahead.delete(t.offset + 1)) t.offset++;
  }

  /** The position of this client's own message (sendMessage's answer; it gets no push of it). */
  #own(t: ThreadState, epoch: string, offset: number | undefined): void {
    if (!t.listening || offset === undefined) return;
    if (t.epoch !== epoch) {
      void this.#resync(t);
      return;
    }
    if (offset === t.offset + 1) {
      t.offset = offset;
      this.#advance(t);
    } else if (offset > t.offset) {
      t.ahead.add(offset);
    }
  }

  #onPush(p: HistoryPush): void {
    if (!p || typeof p !== "object") return;
    const threadId = p.threadId || p.message?.threadId;
    if (!threadId) return;
    const t = this.#threads.get(threadId);
    if (!t) {
      if (p.message) this.#emit("message", { threadId, message: p.message, epoch: p.epoch, offset: p.offset, recovered: false });
      return;
    }
    if (t.buffer) {
      t.buffer.push(p);
      return;
    }
    this.#applyPush(t, p);
  }

  #applyPush(t: ThreadState, p: HistoryPush): void {
    if (p.message && this.#see(t, p.message.id)) {
      this.#emit("message", { threadId: t.id, message: p.message, epoch: p.epoch, offset: p.offset, recovered: false });
    }
    if (!t.listening || typeof p.offset !== "number") return;
    if (p.epoch === t.epoch && p.offset <= t.offset) return; // a duplicate (a retried send re-published)
    if (p.epoch === t.epoch && p.offset === t.offset + 1) {
      t.offset = p.offset;
      this.#advance(t);
      return;
    }
    if (p.epoch === t.epoch && t.ahead.has(p.offset)) return;
    // A gap, or a new epoch (ECB forgot the thread's history): fetch what was missed.
    void this.#resync(t);
  }

  /** Re-attaches a thread and emits what was missed; one at a time per thread. */
  #resync(t: ThreadState): Promise<void> {
    if (t.resync) {
      t.resyncAgain = true;
      return t.resync;
    }
    t.resync = (async () => {
      do {
        t.resyncAgain = false;
        if (!this.#ready || !t.listening) break;
        t.buffer = [];
        try {
          await this.#reattach(t);
        } catch (err) {
          const error = err instanceof EcbError ? err : new EcbError("internal", String(err));
          this.#emit("error", { error, operation: "getThread", threadId: t.id });
        } finally {
          const buffered = t.buffer ?? [];
          t.buffer = null;
          for (const p of buffered) this.#applyPush(t, p);
        }
      } while (t.resyncAgain);
    })().finally(() => {
      t.resync = null;
    });
    return t.resync;
  }

  async #reattach(t: ThreadState): Promise<void> {
    const fetchPage = async (before?: string): Promise<GetThreadResult | null> => {
      const payload: Record<string, unknown> = { threadToken: t.token, limit: RECOVERY_PAGE };
      if (before) payload.before = before;
      let out = await this.#emitOnce<GetThreadResult>("getThread", payload, this.#requestTimeout);
      if ("error" in out && out.error.code === "unauthenticated") {
        await this.#refreshThreadTokens();
        payload.threadToken = t.token;
        out = await this.#emitOnce<GetThreadResult>("getThread", payload, this.#requestTimeout);
      }
      if ("lost" in out) return null; // the next connection re-attaches again
      if ("error" in out) {
        if (out.error.code === "forbidden" || out.error.code === "not_found") t.listening = false;
        throw out.error;
      }
      return out.data;
    };
    const first = await fetchPage();
    if (!first) return;
    if (first.threadToken) this.#noteToken(t.id, first.threadToken, undefined);
    const nothingMissed = first.epoch === t.epoch && first.offset <= t.offset;
    const pages: Message[][] = [first.messages];
    if (!nothingMissed && t.seen.size > 0) {
      let cursor = first.nextCursor;
      let known = first.messages.some((m) => t.seen.has(m.id));
      for (let i = 1; !known && cursor && i < RECOVERY_MAX_PAGES; i++) {
        const older = await fetchPage(cursor);
        if (!older) return;
        pages.unshift(older.messages);
        known = older.messages.some((m) => t.seen.has(m.id));
        cursor = older.nextCursor;
      }
    }
    for (const page of pages) {
      for (const m of page) {
        if (this.#see(t, m.id)) this.#emit("message", { threadId: t.id, message: m, recovered: true });
      }
    }
    this.#position(t, first.epoch, first.offset, true);
  }
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
