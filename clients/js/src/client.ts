import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { EcbError, type ErrorBody } from "./errors.js";
import type {
  AcceptOfferResult,
  AddParticipantsRequest,
  AddParticipantsResult,
  ClosingEvent,
  ContactEvent,
  ContactRequest,
  MentionEvent,
  ContactResult,
  CreateThreadRequest,
  DeleteProfilePropertyRequest,
  CreateThreadResult,
  GetPresenceRequest,
  GetPresenceResult,
  GetThreadRequest,
  GetThreadResult,
  GetUserTokenRequest,
  GetUserTokenResult,
  GetWorkgroupStatusRequest,
  InvitationEvent,
  LeaveThreadRequest,
  LeaveThreadResult,
  MarkReadRequest,
  MarkReadResult,
  MemberPush,
  Message,
  MessagePush,
  OfferEvent,
  OfferRef,
  OfferRevokedEvent,
  Page,
  PageRequest,
  PresenceEvent,
  ProfileEvent,
  ProfileResult,
  QueueEvent,
  ReadPush,
  DeleteMessageRequest,
  DeleteMessageResult,
  EditMessageRequest,
  MessageChangeResult,
  MessageEditedPush,
  ReactRequest,
  ReactionPush,
  SearchMessagesRequest,
  SearchMessagesResult,
  DeleteThreadRequest,
  DeleteThreadResult,
  GetThreadsRequest,
  JoinThreadRequest,
  GetUploadUrlRequest,
  GetUploadUrlResult,
  JoinThreadResult,
  MessageDeletedPush,
  RemoveParticipantRequest,
  RemoveParticipantResult,
  SetAccessRequest,
  SetAccessResult,
  UpdateThreadRequest,
  UpdateThreadResult,
  RefreshTokenRequest,
  RefreshTokenResult,
  RejectOfferResult,
  ResumeRequest,
  ResumeResult,
  SearchUsersRequest,
  SendMessageRequest,
  SendMessageResult,
  SessionEvent,
  SetAvailabilityRequest,
  SetAvailabilityResult,
  SetPresenceRequest,
  SetPresenceResult,
  SetProfileRequest,
  SignedThread,
  StopListeningRequest,
  StopListeningResult,
  SupportAskRequest,
  SupportAskResult,
  SupportCancelResult,
  SupportCloseResult,
  SupportConversationsRequest,
  SupportConversationsResult,
  SupportEndedEvent,
  SupportInviteRequest,
  SupportInviteResult,
  SupportJoinResult,
  SupportLeaveResult,
  SupportMonitorResult,
  SupportRequestRef,
  SupportTransferRequest,
  SupportTransferResult,
  SupportTransferredEvent,
  Thread,
  ThreadEvent,
  TokenExpiringEvent,
  TypingEvent,
  TypingRequest,
  TypingResult,
  User,
  WorkgroupStatus,
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
  /** True when the message was missed while disconnected (replayed by `resume`, or fetched again with getThread). */
  recovered: boolean;
}

/** The `read` event: a member read a thread this client listens to up to `messageId`. */
export interface ReadEvent extends ReadPush {
  /** True when the read mark was missed while disconnected and replayed by `resume`. */
  recovered: boolean;
}

/** The `member` event: someone joined or left a thread this client listens to. */
export interface MemberEvent extends MemberPush {
  /** True when the change was missed while disconnected and replayed by `resume`. */
  recovered: boolean;
}

/** The `messageDeleted` event: a message of a thread this client listens to was deleted. */
export interface MessageDeletedEvent extends MessageDeletedPush {
  /** True when the deletion was missed while disconnected and replayed by `resume`. */
  recovered: boolean;
}

/** The `messageEdited` event: a message of a thread this client listens to was edited. */
export interface MessageEditedEvent extends MessageEditedPush {
  /** True when the edit was missed while disconnected and replayed by `resume`. */
  recovered: boolean;
}

/** The `reaction` event: a reaction to a message of a thread this client listens to was added or removed. */
export interface ReactionEvent extends ReactionPush {
  /** True when the change was missed while disconnected and replayed by `resume`. */
  recovered: boolean;
}

/** The `error` event: something the client did on its own failed (recovery, token refresh). */
export interface ErrorEvent {
  error: EcbError;
  /**
   * What failed: `getThread` (recovery of a thread, with its threadId), `refreshToken`, `getUserToken`,
   * `setPresence`, `agent.setAvailability` and `support.monitor` (re-applied after a reconnect; a
   * monitor that fails is forgotten, with the monitored threadId).
   */
  operation: string;
  threadId?: string;
}

/** The events of {@link EcbClient.on} and their payloads. */
export interface EcbClientEvents {
  message: MessageEvent;
  thread: ThreadEvent;
  presence: PresenceEvent;
  typing: TypingEvent;
  read: ReadEvent;
  member: MemberEvent;
  messageDeleted: MessageDeletedEvent;
  messageEdited: MessageEditedEvent;
  reaction: ReactionEvent;
  session: SessionEvent;
  tokenExpiring: TokenExpiringEvent;
  closing: ClosingEvent;
  connection: ConnectionEvent;
  error: ErrorEvent;
  // customer support (docs/support.md)
  queue: QueueEvent;
  offer: OfferEvent;
  offerRevoked: OfferRevokedEvent;
  invitation: InvitationEvent;
  supportEnded: SupportEndedEvent;
  supportTransferred: SupportTransferredEvent;
  // people (protocol 1.3)
  contact: ContactEvent;
  profile: ProfileEvent;
  // mentions (protocol 1.5)
  mention: MentionEvent;
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
  /** noteTyping sends `start` again at most this often while the user keeps typing, in ms (default 3000; ECB ends a start after 6 s). */
  typingRefresh?: number;
  /** noteTyping sends `stop` after this long without a keystroke, in ms (default 4000). */
  typingIdle?: number;
}

/** Ack answers of every operation: exactly one of data and error. */
interface Envelope<T> {
  data?: T;
  error?: ErrorBody;
}

type EmitOutcome<T> = { data: T } | { error: EcbError } | { lost: true };

/** What the client keeps per thread to re-attach and to spot missed pushes. */
/** A chat this connection monitors, and the last position of its pushes. */
interface MonitorState {
  threadId: string;
  epoch: string;
  offset: number;
}

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
  /** A recovery (#recover) of the thread is under way. */
  recovering: boolean;
  /** Recover the thread once more when the current run ends. */
  resyncAgain: boolean;
  /** Pushes that arrived while a re-attach was in flight. */
  buffer: HistoryPush[] | null;
}

/**
 * A push that takes a place in a thread's history (an offset): `message`,
 * `read`, `member`, `messageDeleted`, `messageEdited` and `reaction`. Offsets count them all.
 */
interface HistoryPush {
  kind: "message" | "read" | "member" | "messageDeleted" | "messageEdited" | "reaction";
  threadId: string;
  epoch: string;
  offset: number;
  message?: Message;
  raw: AnyHistoryPush;
}

type AnyHistoryPush = MessagePush | ReadPush | MemberPush | MessageDeletedPush | MessageEditedPush | ReactionPush;

/** noteTyping's state of one thread. */
interface Typer {
  sentAt: number;
  idle: ReturnType<typeof setTimeout> | null;
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
/** Threads per resume request. */
const RESUME_BATCH = 100;
/** Rounds of resume for one thread in one recovery before falling back to getThread. */
const RESUME_ROUNDS = 2;
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
 * callback), resumes the threads it listened to from the last position it processed
 * and emits what was missed meanwhile (`recovered: true`), dropping duplicates by message
 * id (a thread whose history ECB no longer holds is fetched again with getThread). sendMessage goes
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
  readonly #typingRefresh: number;
  readonly #typingIdle: number;

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
  /** The reason of the `closing` push, until the disconnect that follows it. */
  #closing: string | null = null;
  /** socket.io-client's own backoff while a shutdown's reconnectAfterMs replaces it. */
  #backoff: { delay: number; factor: number } | null = null;
  /** The last setPresence, applied again on every new connection (a connection starts `available`). */
  #presence: SetPresenceRequest | null = null;
  /**
   * The last agent.setAvailability with `available: true`, applied again on every new connection:
   * ECB makes an agent unavailable when their last connection ends, a network blip included.
   */
  #availability: SetAvailabilityRequest | null = null;
  /** requestId → threadId of the chats this connection monitors (support.monitor ends with the connection). */
  #monitors = new Map<string, MonitorState>();
  #typers = new Map<string, Typer>();

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
    this.#typingRefresh = options.typingRefresh ?? 3000;
    this.#typingIdle = options.typingIdle ?? 4000;
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
    this.#clearTypers();
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
    socket.on("message", (p: MessagePush) => this.#onPush("message", p));
    socket.on("read", (p: ReadPush) => this.#onPush("read", p));
    socket.on("member", (p: MemberPush) => this.#onPush("member", p));
    socket.on("messageDeleted", (p: MessageDeletedPush) => this.#onPush("messageDeleted", p));
    socket.on("messageEdited", (p: MessageEditedPush) => this.#onPush("messageEdited", p));
    socket.on("reaction", (p: ReactionPush) => this.#onPush("reaction", p));
    socket.on("thread", (ev: ThreadEvent) => this.#onThread(ev));
    socket.on("presence", (ev: PresenceEvent) => {
      if (ev && typeof ev === "object" && typeof ev.userId === "string") this.#emit("presence", ev);
    });
    socket.on("typing", (ev: TypingEvent) => {
      if (ev && typeof ev === "object" && typeof ev.threadId === "string") this.#emit("typing", ev);
    });
    socket.on("closing", (ev: ClosingEvent) => {
      const reason = ev && typeof ev.reason === "string" ? ev.reason : "";
      this.#closing = reason;
      const after = ev && typeof ev.reconnectAfterMs === "number" && ev.reconnectAfterMs >= 0 ? ev.reconnectAfterMs : undefined;
      if (reason === "shutdown" && after !== undefined) this.#reconnectAfter(socket, after);
      this.#emit("closing", after === undefined ? { reason } : { reason, reconnectAfterMs: after });
    });
    socket.on("tokenExpiring", (ev: TokenExpiringEvent) => void this.#onTokenExpiring(ev));
    this.#onSupportPushes(socket);
    socket.on("contact", (ev: ContactEvent) => {
      if (ev && typeof ev === "object" && (ev.change === "added" || ev.change === "removed") && ev.user && typeof ev.user.id === "string") {
        this.#emit("contact", ev);
      }
    });
    socket.on("profile", (ev: ProfileEvent) => {
      if (ev && typeof ev === "object" && ev.user && typeof ev.user.id === "string") this.#emit("profile", ev);
    });
    socket.on("mention", (ev: MentionEvent) => {
      if (ev && typeof ev === "object" && typeof ev.threadId === "string" && ev.message && typeof ev.message.id === "string") {
        this.#emit("mention", ev);
      }
    });
    socket.connect();
  }

  /**
   * The node shutting down said when to come back: socket.io-client's first
   * reconnect attempt waits exactly that (its own backoff, jitter included, is
   * restored once connected).
   */
  #reconnectAfter(socket: Socket, ms: number): void {
    const m = socket.io;
    if (!this.#backoff) this.#backoff = { delay: m.reconnectionDelay(), factor: m.randomizationFactor() };
    m.reconnectionDelay(Math.max(1, ms));
    m.randomizationFactor(0);
  }

  #restoreBackoff(socket: Socket | null): void {
    if (!this.#backoff || !socket) return;
    socket.io.reconnectionDelay(this.#backoff.delay);
    socket.io.randomizationFactor(this.#backoff.factor);
    this.#backoff = null;
  }

  #onConnect(): void {
    this.#restoreBackoff(this.#socket);
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
    // Resume the threads first (the server runs a socket's operations in order), then
    // presence, then the outbox.
    const listening = [...this.#threads.values()].filter((t) => t.listening);
    if (listening.length) this.#recover(listening);
    if (this.#presence) {
      void this.#emitOnce<SetPresenceResult>("setPresence", this.#presence, this.#requestTimeout).then((out) => {
        if ("error" in out) this.#emit("error", { error: out.error, operation: "setPresence" });
      });
    }
    this.#reapplySupport();
    this.#pump();
  }

  #onDisconnect(reason: string): void {
    this.#generation++;
    this.#ready = false;
    const closing = this.#closing;
    this.#closing = null;
    this.#clearTypers();
    if (this.#awaitingSession) {
      clearTimeout(this.#awaitingSession);
      this.#awaitingSession = null;
    }
    if (this.#state === "closed" || this.#givenUp) return;
    if (reason === "io server disconnect") {
      // ECB ended the session: socket.io-client does not reconnect by itself after that.
      if (closing === "kicked") {
        this.#giveUp(new EcbError("kicked", "ECB ended this session at the backend's request"));
        return;
      }
      if (closing === "token_expired") {
        // Reconnect at once, with a fresh token (the expired one would only be refused).
        this.#setState(this.#networkDown ? "offline" : "reconnecting");
        void this.#reauthenticate();
        return;
      }
      // Shutting down, an access change, ...: reconnect with backoff.
      this.#scheduleRetry(undefined);
    }
    this.#setState(this.#networkDown ? "offline" : "reconnecting");
  }

  /** After `closing` {reason: token_expired}: gets a fresh userToken, then reconnects. */
  async #reauthenticate(): Promise<void> {
    if (this.#opts.getUserToken) {
      let token: string;
      try {
        token = await this.#opts.getUserToken();
      } catch (err) {
        this.#giveUp(err instanceof EcbError ? err : new EcbError("unauthenticated", `could not get a fresh userToken: ${String(err)}`));
        return;
      }
      if (typeof token !== "string" || token === "") {
        this.#giveUp(new EcbError("unauthenticated", "getUserToken gave no token"));
        return;
      }
      this.#userToken = token;
      this.#triedCallback = true; // a refusal of this one falls back to the access token, or gives up
    } else if (this.#accessToken) {
      this.#userToken = undefined; // the handshake trades the access token for a fresh userToken
      this.#triedAccess = true;
    } else {
      this.#giveUp(new EcbError("unauthenticated", "the userToken expired and the client has no way to get a fresh one"));
      return;
    }
    if (this.#state === "closed" || this.#givenUp || this.#ready) return;
    this.#socket?.connect();
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
   * when the old one dropped before the answer (the chat operations are safe to retry:
   * reads, and writes that carry a clientMessageId). A `rate_limited` answer is retried
   * after its retryAfter when that fits in requestTimeout (not for `typing`: a late typing
   * notification is worse than none).
   *
   * `once`: the operation is not safe to send twice (support.ask, offer.accept, ...: a second
   * one is refused, or acts twice). When the connection drops after it was sent and before the
   * answer, it rejects with `timeout` instead, since ECB may have done it; the support pushes
   * that follow (queue, invitation, ...) tell what happened.
   */
  async #call<T>(op: string, payload: object, once = false): Promise<T> {
    const deadline = Date.now() + this.#requestTimeout;
    for (;;) {
      await this.#waitReady(deadline);
      const sent = this.#ready && this.#socket?.connected === true; // else #emitOnce sends nothing
      const out = await this.#emitOnce<T>(op, payload, deadline - Date.now());
      if ("data" in out) return out.data;
      if ("error" in out) {
        const wait = (out.error.retryAfter ?? 1) * 1000;
        if (out.error.code !== "rate_limited" || op === "typing" || Date.now() + wait >= deadline) throw out.error;
        await new Promise((ok) => setTimeout(ok, wait));
        if (this.#state === "closed") throw new EcbError("closed", "the client was closed");
        continue;
      }
      if (once && sent) throw new EcbError("timeout", `the connection dropped before ECB answered ${op}: it may have been done`);
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

  /** A page of the users the backend lets this user find whose id or name matches `query` (protocol 1.3). */
  async searchUsers(req: SearchUsersRequest): Promise<Page<User>> {
    check.checkSearchUsers(req);
    return this.#call<Page<User>>("searchUsers", pick(req, ["query", "page", "pageSize"]));
  }

  /** Makes `userId` and this user each other's contacts; both get a `contact` push and each other's presence. */
  async addContact(req: ContactRequest): Promise<ContactResult> {
    check.checkContact(req, "addContact");
    return this.#call<ContactResult>("addContact", { userId: req.userId });
  }

  /** Ends the contact with `userId`, both ways; both get a `contact` push and stop seeing each other's presence. */
  async removeContact(req: ContactRequest): Promise<ContactResult> {
    check.checkContact(req, "removeContact");
    return this.#call<ContactResult>("removeContact", { userId: req.userId });
  }

  /** Sets (adds or replaces) profile properties of this user; the contacts get a `profile` push. */
  async setProfile(req: SetProfileRequest): Promise<ProfileResult> {
    check.checkSetProfile(req);
    return this.#call<ProfileResult>("setProfile", { properties: req.properties });
  }

  /** Removes one profile property of this user; the contacts get a `profile` push. */
  async deleteProfileProperty(req: DeleteProfilePropertyRequest): Promise<ProfileResult> {
    check.checkDeleteProfileProperty(req);
    return this.#call<ProfileResult>("deleteProfileProperty", { name: req.name });
  }

  /** A page of this user's threads, each with its threadToken. */
  async getThreads(req: GetThreadsRequest = {}): Promise<Page<SignedThread>> {
    check.checkPage(req, "getThreads");
    if (req.public !== undefined && typeof req.public !== "boolean") throw new EcbError("invalid_argument", "public must be a boolean");
    const payload: Record<string, unknown> = pick(req, ["page", "pageSize"]);
    if (req.public) payload.public = true;
    const res = await this.#call<Page<SignedThread>>("getThreads", payload);
    // Public threads come without a threadToken: joinThread gives one.
    for (const st of res.items ?? []) if (st.threadToken) this.#noteToken(st.thread.id, st.threadToken, false);
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
    if (req.public) payload.public = true;
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
    if (req.visibility !== undefined) entryReq.visibility = req.visibility;
    if (req.attachments !== undefined) entryReq.attachments = req.attachments;
    if (req.replyTo !== undefined) entryReq.replyTo = req.replyTo;
    if (req.mentions !== undefined) entryReq.mentions = [...new Set(req.mentions)];
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
      if (tid !== undefined) {
        entry.threadId = tid;
        this.stopTyping(tid);
      }
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
    for (const [requestId, m] of this.#monitors) if (m.threadId === req.threadId) this.#monitors.delete(requestId);
    // A connection made after this call does not listen to the thread: nothing to undo there.
    if (!this.#ready) return {};
    const out = await this.#emitOnce<StopListeningResult>("stopListening", { threadId: req.threadId }, this.#requestTimeout);
    if ("error" in out) throw out.error;
    return {};
  }

  /**
   * Sets this user's presence (on this connection; the user's presence is the most available
   * of their connections). The client applies it again on every new connection.
   */
  async setPresence(req: SetPresenceRequest): Promise<SetPresenceResult> {
    check.checkSetPresence(req);
    const payload: SetPresenceRequest = { show: req.show };
    if (req.status !== undefined) payload.status = req.status;
    this.#presence = payload;
    return this.#call<SetPresenceResult>("setPresence", payload);
  }

  /** The presence of contacts and members of shared threads (anyone else: `forbidden`). */
  async getPresence(req: GetPresenceRequest): Promise<GetPresenceResult> {
    check.checkGetPresence(req);
    return this.#call<GetPresenceResult>("getPresence", { userIds: [...req.userIds] });
  }

  /**
   * Tells the thread's other listeners that this user starts or stops typing (needs the write bit).
   * For a text field, {@link noteTyping} and {@link stopTyping} do the pacing.
   */
  async typing(req: TypingRequest): Promise<TypingResult> {
    check.checkTyping(req);
    return this.#call<TypingResult>("typing", this.#threadPayload(req, { state: req.state }));
  }

  /**
   * Call on every keystroke in a thread's composer: sends `start` at once, then again at most
   * every `typingRefresh` ms while the typing goes on, and `stop` after `typingIdle` ms without
   * a keystroke. sendMessage to the thread (and stopTyping) sends `stop` at once. Best effort:
   * nothing is sent while disconnected, failures are ignored.
   */
  noteTyping(threadId: string): void {
    const t = this.#threads.get(threadId);
    if (!t || !this.#ready) return;
    let typer = this.#typers.get(threadId);
    const now = Date.now();
    if (!typer) {
      typer = { sentAt: 0, idle: null };
      this.#typers.set(threadId, typer);
    }
    if (now - typer.sentAt >= this.#typingRefresh) {
      typer.sentAt = now;
      this.#sendTyping(t, "start");
    }
    if (typer.idle) clearTimeout(typer.idle);
    typer.idle = setTimeout(() => this.stopTyping(threadId), this.#typingIdle);
  }

  /** Ends what noteTyping started in the thread: sends `stop` if a `start` was sent. */
  stopTyping(threadId: string): void {
    const typer = this.#typers.get(threadId);
    if (!typer) return;
    if (typer.idle) clearTimeout(typer.idle);
    this.#typers.delete(threadId);
    const t = this.#threads.get(threadId);
    if (t && this.#ready) this.#sendTyping(t, "stop");
  }

  #sendTyping(t: ThreadState, state: "start" | "stop"): void {
    void this.#emitOnce<TypingResult>("typing", { threadToken: t.token, state }, this.#requestTimeout);
  }

  /** Forgets noteTyping's state (the connection is gone: ECB ends the starts by itself). */
  #clearTypers(): void {
    for (const typer of this.#typers.values()) if (typer.idle) clearTimeout(typer.idle);
    this.#typers.clear();
  }

  /**
   * Marks the thread read up to messageId (the backend stores it); the other listeners get a
   * `read` push. Fails with `not_found` when the backend does not keep read marks.
   */
  async markRead(req: MarkReadRequest): Promise<MarkReadResult> {
    check.checkMarkRead(req);
    const res = await this.#call<MarkReadResult>("markRead", this.#threadPayload(req, { messageId: req.messageId }));
    // Its read push skips this connection: without the answer's position, the next push would
    // look like a gap (a resume for nothing).
    return this.#ownChange(req, res);
  }

  /** Adds members to a thread (needs the admin or owner bit); the listeners get a `member` push per new member. */
  async addParticipants(req: AddParticipantsRequest): Promise<AddParticipantsResult> {
    check.checkAddParticipants(req);
    const res = await this.#call<AddParticipantsResult>(
      "addParticipants",
      this.#threadPayload(req, { participants: [...req.participants] }),
    );
    if (res.thread?.id && res.threadToken) this.#noteToken(res.thread.id, res.threadToken, undefined);
    return res;
  }

  /** Leaves a thread: every connection of this user stops receiving it at once. */
  async leaveThread(req: LeaveThreadRequest): Promise<LeaveThreadResult> {
    check.checkLeaveThread(req);
    const id = req.threadId ?? this.#tokenToThread.get(req.threadToken);
    const res = await this.#call<LeaveThreadResult>("leaveThread", this.#threadPayload(req, {}));
    if (id !== undefined) {
      this.stopTyping(id);
      const t = this.#threads.get(id);
      if (t) t.listening = false;
    }
    return res;
  }

  /**
   * Asks for a short-lived upload URL for one file of a thread (the write bit). ECB carries no
   * bytes: send the file yourself (`uploadFile` does), then name `attachmentId` in
   * sendMessage's `attachments`. Over the size limit or of a refused type: `invalid_argument`.
   */
  async getUploadUrl(req: GetUploadUrlRequest): Promise<GetUploadUrlResult> {
    check.checkGetUploadUrl(req);
    return this.#call<GetUploadUrlResult>(
      "getUploadUrl",
      this.#threadPayload(req, { name: req.name, size: req.size, contentType: req.contentType }),
    );
  }

  /**
   * getUploadUrl for `file` (a Blob or File: its name, size and type), then uploads it with
   * fetch to the URL it got. Resolves with the attachment id for sendMessage's `attachments`.
   */
  async uploadFile(req: { threadToken: string; threadId?: string; file: Blob; name?: string }): Promise<string> {
    const name = req.name ?? (req.file as Blob & { name?: string }).name ?? "file";
    const u = await this.getUploadUrl({
      threadToken: req.threadToken,
      threadId: req.threadId,
      name,
      size: req.file.size,
      contentType: req.file.type || "application/octet-stream",
    });
    const res = await fetch(u.uploadUrl, { method: u.method, headers: u.headers ?? {}, body: req.file });
    if (!res.ok) {
      let message = `the upload failed with HTTP ${res.status}`;
      try {
        const body = (await res.json()) as { error?: { message?: string } };
        if (body.error?.message) message = body.error.message;
      } catch {
        // not JSON
      }
      throw new EcbError(res.status === 400 ? "invalid_argument" : "backend_error", message);
    }
    return u.attachmentId;
  }

  /**
   * Joins a public thread (the backend decides: a private one is `forbidden`); the answer's
   * threadToken opens it with getThread. The listeners get a `member` push.
   */
  async joinThread(req: JoinThreadRequest): Promise<JoinThreadResult> {
    check.checkJoinThread(req);
    const res = await this.#call<JoinThreadResult>("joinThread", { threadId: req.threadId });
    if (res.thread?.id && res.threadToken) this.#noteToken(res.thread.id, res.threadToken, undefined);
    return res;
  }

  /**
   * Removes a member (needs the admin or owner bit; nobody removes the owner): their
   * connections stop receiving the thread at once and get `thread {change: "removed"}`.
   */
  async removeParticipant(req: RemoveParticipantRequest): Promise<RemoveParticipantResult> {
    check.checkRemoveParticipant(req);
    return this.#call<RemoveParticipantResult>("removeParticipant", this.#threadPayload(req, { userId: req.userId }));
  }

  /** Changes the thread's subject or data (admin or owner); the listeners get `thread {change: "updated"}`. */
  async updateThread(req: UpdateThreadRequest): Promise<UpdateThreadResult> {
    check.checkUpdateThread(req);
    const rest: Record<string, unknown> = {};
    if (req.subject !== undefined) rest.subject = req.subject;
    if (req.data !== undefined) rest.data = req.data;
    return this.#call<UpdateThreadResult>("updateThread", this.#threadPayload(req, rest));
  }

  /** Deletes a message (its author, or an admin or owner); the other listeners get `messageDeleted`. */
  async deleteMessage(req: DeleteMessageRequest): Promise<DeleteMessageResult> {
    check.checkDeleteMessage(req);
    const res = await this.#call<DeleteMessageResult>("deleteMessage", this.#threadPayload(req, { messageId: req.messageId }));
    // This connection gets no push of its own deletion: the answer is its position.
    const id = req.threadId ?? this.#tokenToThread.get(req.threadToken);
    const t = id !== undefined ? this.#threads.get(id) : undefined;
    if (t) this.#own(t, res.epoch, res.offset);
    return res;
  }

  /** Edits a message (the backend decides who may: the reference backend, its author only); the other listeners get `messageEdited`. */
  async editMessage(req: EditMessageRequest): Promise<MessageChangeResult> {
    check.checkEditMessage(req);
    const rest: Record<string, unknown> = { messageId: req.messageId, body: req.body };
    if (req.data !== undefined) rest.data = req.data;
    return this.#ownChange(req, await this.#call<MessageChangeResult>("editMessage", this.#threadPayload(req, rest)));
  }

  /** Reacts to a message (once per reaction); the other listeners get `reaction`. */
  async react(req: ReactRequest): Promise<MessageChangeResult> {
    check.checkReact(req);
    const res = await this.#call<MessageChangeResult>("react", this.#threadPayload(req, { messageId: req.messageId, reaction: req.reaction }));
    return this.#ownChange(req, res);
  }

  /** Takes a reaction back; the other listeners get `reaction`. */
  async unreact(req: ReactRequest): Promise<MessageChangeResult> {
    check.checkReact(req);
    const res = await this.#call<MessageChangeResult>("unreact", this.#threadPayload(req, { messageId: req.messageId, reaction: req.reaction }));
    return this.#ownChange(req, res);
  }

  /** Searches the messages of the threads this user may read (the backend's search), newest first. */
  async searchMessages(req: SearchMessagesRequest): Promise<SearchMessagesResult> {
    check.checkSearchMessages(req);
    const payload: Record<string, unknown> = { query: req.query };
    if (req.threadToken !== undefined) payload.threadToken = req.threadToken;
    if (req.cursor !== undefined) payload.cursor = req.cursor;
    if (req.limit !== undefined) payload.limit = req.limit;
    return this.#call<SearchMessagesResult>("searchMessages", payload);
  }

  /** This connection gets no push of its own change: the answer's position is its own. */
  #ownChange<R extends { epoch?: string; offset?: number }>(req: { threadToken: string; threadId?: string }, res: R): R {
    if (typeof res.epoch !== "string" || typeof res.offset !== "number" || res.offset === 0) return res;
    const id = req.threadId ?? this.#tokenToThread.get(req.threadToken);
    const t = id !== undefined ? this.#threads.get(id) : undefined;
    if (t) this.#own(t, res.epoch, res.offset);
    return res;
  }

  /** Deletes the thread with its history (owner only); every member is detached and told. */
  async deleteThread(req: DeleteThreadRequest): Promise<DeleteThreadResult> {
    check.checkDeleteThread(req);
    const id = req.threadId ?? this.#tokenToThread.get(req.threadToken);
    const res = await this.#call<DeleteThreadResult>("deleteThread", this.#threadPayload(req, {}));
    if (id !== undefined) {
      this.stopTyping(id);
      const t = this.#threads.get(id);
      if (t) t.listening = false;
    }
    return res;
  }

  /**
   * Overrides a member's access live (admin; never above your own bits, never on a member
   * above you): `acc: 0` with `ttlSeconds: 3600` bans for an hour.
   */
  async setAccess(req: SetAccessRequest): Promise<SetAccessResult> {
    check.checkSetAccess(req);
    const rest: Record<string, unknown> = { userId: req.userId, acc: req.acc };
    if (req.ttlSeconds !== undefined) rest.ttlSeconds = req.ttlSeconds;
    return this.#call<SetAccessResult>("setAccess", this.#threadPayload(req, rest));
  }

  /**
   * Re-attaches this connection to threads from the positions given, and makes ECB send the
   * pushes missed since, before any newer one. The client does this by itself after a
   * reconnect for every thread it listens to; call it yourself only to resume threads from
   * positions you kept elsewhere. For a thread answered `recovered: false`, call getThread.
   */
  async resume(req: ResumeRequest): Promise<ResumeResult> {
    check.checkResume(req);
    const threads = req.threads.map((r) => ({ threadToken: this.#newestToken(r.threadToken), epoch: r.epoch, offset: r.offset }));
    const res = await this.#call<ResumeResult>("resume", { threads });
    res.threads.forEach((ans, i) => {
      const t = this.#noteToken(ans.threadId, threads[i]?.threadToken ?? "", true);
      const given = req.threads[i]?.threadToken;
      if (given) this.#tokenToThreadSet(given, ans.threadId);
      // The missed pushes came before this answer; from here on the offsets follow on.
      this.#position(t, ans.epoch, ans.offset, true);
    });
    return res;
  }

  /** The payload of an operation on a thread: the newest token of the thread, the threadId if given. */
  #threadPayload(req: { threadToken: string; threadId?: string }, rest: object): object {
    // The newest token of the thread the given token was issued for; a threadId given by the
    // caller is only checked by ECB against the token, never used to pick another token.
    const payload: Record<string, unknown> = { ...rest, threadToken: this.#newestToken(req.threadToken) };
    if (req.threadId !== undefined) payload.threadId = req.threadId;
    return payload;
  }

  // ---- customer support (docs/support.md) ----

  /** Whether a workgroup is open, how many agents are available, the queue's length and estimated wait. Anonymous visitors may call it. */
  async getWorkgroupStatus(req: GetWorkgroupStatusRequest): Promise<WorkgroupStatus> {
    check.checkWorkgroup(req, "getWorkgroupStatus");
    return this.#call<WorkgroupStatus>("getWorkgroupStatus", { workgroup: req.workgroup });
  }

  /**
   * Asks a workgroup a question (anonymous visitors may): the request waits in the queue,
   * `queue` pushes follow, then an `invitation` once an agent accepted it. Sent once: a
   * connection lost before the answer rejects with `timeout` (the request may exist; the
   * `queue` push after the reconnect tells).
   */
  async supportAsk(req: SupportAskRequest): Promise<SupportAskResult> {
    check.checkSupportAsk(req);
    return this.#call<SupportAskResult>("support.ask", pick(req, ["workgroup", "question", "metadata", "operationId"]), true);
  }

  /** Withdraws this user's waiting request (`supportEnded` {state: "cancelled"} follows). Sent once. */
  async supportCancel(req: SupportRequestRef): Promise<SupportCancelResult> {
    check.checkRequestRef(req, "supportCancel");
    return this.#call<SupportCancelResult>("support.cancel", { requestId: req.requestId }, true);
  }

  /** Ends a support chat, by the visitor or the agent: both get `supportEnded` {state: "closed"}. The thread stays. Sent once. */
  async supportClose(req: SupportRequestRef): Promise<SupportCloseResult> {
    check.checkRequestRef(req, "supportClose");
    return this.#call<SupportCloseResult>("support.close", { requestId: req.requestId }, true);
  }

  /**
   * `agent.setAvailability` (role agent): switches offers on or off, optionally with this agent's own
   * limit of concurrent chats. ECB makes an agent unavailable when their last connection ends, so the
   * client sets `available: true` again on every new connection, until it is called with `false`.
   */
  async setAvailability(req: SetAvailabilityRequest): Promise<SetAvailabilityResult> {
    check.checkSetAvailability(req);
    const payload: SetAvailabilityRequest = { available: req.available };
    if (req.maxChats !== undefined) payload.maxChats = req.maxChats;
    // Off at once (a reconnect meanwhile must not switch it back on); on once ECB agreed.
    if (!req.available) this.#availability = null;
    const res = await this.#call<SetAvailabilityResult>("agent.setAvailability", payload);
    if (req.available) this.#availability = payload;
    return res;
  }

  /**
   * Takes an offer made to this agent: ECB has the backend create the support thread and
   * both sides get an `invitation`. The client keeps the threadToken (threadToken(thread.id));
   * call getThread to listen to the thread. Sent once.
   */
  async acceptOffer(req: OfferRef): Promise<AcceptOfferResult> {
    check.checkOfferRef(req, "acceptOffer");
    const res = await this.#call<AcceptOfferResult>("offer.accept", { offerId: req.offerId }, true);
    this.#noteSigned(res.thread, res.threadToken);
    return res;
  }

  /** Declines an offer made to this agent; it goes to the next agent. Sent once. */
  async rejectOffer(req: OfferRef): Promise<RejectOfferResult> {
    check.checkOfferRef(req, "rejectOffer");
    return this.#call<RejectOfferResult>("offer.reject", { offerId: req.offerId }, true);
  }

  /** The live chats of a workgroup this user supervises (role supervisor). */
  async supportConversations(req: SupportConversationsRequest): Promise<SupportConversationsResult> {
    check.checkWorkgroup(req, "supportConversations");
    return this.#call<SupportConversationsResult>("support.conversations", { workgroup: req.workgroup });
  }

  /**
   * Watches a chat read-only (supervisor): this connection receives the thread's pushes, whispers
   * included, from now on (`message` events; there is no threadToken, so no history and no
   * writing). ECB ends a monitor with the connection; the client asks again on every new
   * connection, from the last position it saw, and ECB pushes again what was missed in between
   * (`recovered` in its answer: within the hub's history), until the chat ends (an `error`
   * event with operation `support.monitor` when ECB refuses it then).
   */
  async supportMonitor(req: SupportRequestRef): Promise<SupportMonitorResult> {
    check.checkRequestRef(req, "supportMonitor");
    const res = await this.#call<SupportMonitorResult>("support.monitor", { requestId: req.requestId });
    this.#monitors.set(res.requestId || req.requestId, { threadId: res.threadId, epoch: res.epoch, offset: res.offset });
    return res;
  }

  /**
   * Joins a chat as a member (supervisor): the answer carries this user's threadToken, which the
   * client keeps (threadToken(thread.id)); call getThread to read the history and listen. Ends a
   * monitor of the chat. Sent once.
   */
  async supportJoin(req: SupportRequestRef): Promise<SupportJoinResult> {
    check.checkRequestRef(req, "supportJoin");
    const res = await this.#call<SupportJoinResult>("support.join", { requestId: req.requestId }, true);
    this.#monitors.delete(req.requestId);
    this.#noteSigned(res.thread, res.threadToken);
    return res;
  }

  /**
   * Hands a chat to another available agent of the workgroup (`toAgent`, who gets an `invitation`)
   * or, without `toAgent`, back to the queue. By the chat's agent or a supervisor. Sent once.
   */
  async supportTransfer(req: SupportTransferRequest): Promise<SupportTransferResult> {
    check.checkSupportTransfer(req);
    return this.#call<SupportTransferResult>("support.transfer", pick(req, ["requestId", "toAgent"]), true);
  }

  /** Invites a second agent into a chat (a conference): they get an `invitation` with `conference: true`. Sent once. */
  async supportInvite(req: SupportInviteRequest): Promise<SupportInviteResult> {
    check.checkSupportInvite(req);
    return this.#call<SupportInviteResult>("support.invite", { requestId: req.requestId, agent: req.agent }, true);
  }

  /** Leaves a chat this user was invited into (an agent) or joined (a supervisor). Sent once. */
  async supportLeave(req: SupportRequestRef): Promise<SupportLeaveResult> {
    check.checkRequestRef(req, "supportLeave");
    const res = await this.#call<SupportLeaveResult>("support.leave", { requestId: req.requestId }, true);
    this.#monitors.delete(req.requestId);
    return res;
  }

  /** Keeps the threadToken of a support thread, as for getThreads: getThread, sendMessage, typing... then find it by threadToken(id). */
  #noteSigned(thread: Thread | undefined, token: string | undefined): void {
    if (thread && typeof thread.id === "string" && typeof token === "string" && token !== "") this.#noteToken(thread.id, token, undefined);
  }

  /** The support pushes: checked for shape, then emitted; an invitation's threadToken is kept. */
  #onSupportPushes(socket: Socket): void {
    const has = (ev: unknown, key: string): ev is Record<string, unknown> =>
      !!ev && typeof ev === "object" && typeof (ev as Record<string, unknown>)[key] === "string";
    socket.on("queue", (ev: QueueEvent) => {
      if (has(ev, "requestId")) this.#emit("queue", ev);
    });
    socket.on("offer", (ev: OfferEvent) => {
      if (has(ev, "offerId")) this.#emit("offer", ev);
    });
    socket.on("offerRevoked", (ev: OfferRevokedEvent) => {
      if (has(ev, "offerId")) this.#emit("offerRevoked", ev);
    });
    socket.on("invitation", (ev: InvitationEvent) => {
      if (!has(ev, "requestId")) return;
      this.#noteSigned(ev.thread, ev.threadToken);
      this.#emit("invitation", ev);
    });
    socket.on("supportEnded", (ev: SupportEndedEvent) => {
      if (!has(ev, "requestId")) return;
      this.#monitors.delete(ev.requestId);
      this.#emit("supportEnded", ev);
    });
    socket.on("supportTransferred", (ev: SupportTransferredEvent) => {
      if (has(ev, "requestId")) this.#emit("supportTransferred", ev);
    });
  }

  /** On a new connection: availability and monitors, which ECB ties to connections. */
  #reapplySupport(): void {
    if (this.#availability) {
      void this.#emitOnce<SetAvailabilityResult>("agent.setAvailability", this.#availability, this.#requestTimeout).then((out) => {
        if ("error" in out) this.#emit("error", { error: out.error, operation: "agent.setAvailability" });
      });
    }
    for (const [requestId, m] of this.#monitors) {
      // From the last position seen: ECB pushes again what this monitor missed, if it still can.
      const payload = { requestId, epoch: m.epoch, offset: m.offset };
      void this.#emitOnce<SupportMonitorResult>("support.monitor", payload, this.#requestTimeout).then((out) => {
        if ("data" in out) {
          // The missed pushes came before this answer (noted as they came); from here on they follow on.
          if (out.data.epoch !== m.epoch || out.data.offset > m.offset) Object.assign(m, { epoch: out.data.epoch, offset: out.data.offset });
          return;
        }
        if (!("error" in out)) return; // lost: the next connection asks again
        this.#monitors.delete(requestId); // ended, or no longer allowed
        this.#emit("error", { error: out.error, operation: "support.monitor", threadId: m.threadId });
      });
    }
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
        recovering: false,
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
      this.#recover([t]);
      return;
    }
    if (offset === t.offset + 1) {
      t.offset = offset;
      this.#advance(t);
    } else if (offset > t.offset) {
      t.ahead.add(offset);
    }
  }

  #onThread(ev: ThreadEvent): void {
    if (!ev || typeof ev !== "object" || typeof ev.threadId !== "string") return;
    const t = this.#threads.get(ev.threadId);
    // Left on another connection, removed by the backend, deleted, or read access taken
    // away: ECB detached this connection already; do not resume the thread after a reconnect.
    const gone = ev.change === "left" || ev.change === "removed" || ev.change === "deleted" || (ev.change === "access" && typeof ev.acc === "number" && (ev.acc & 1) === 0);
    if (t && gone) {
      t.listening = false;
      this.stopTyping(t.id);
    }
    this.#emit("thread", ev);
  }

  #onPush(kind: HistoryPush["kind"], p: AnyHistoryPush): void {
    if (!p || typeof p !== "object") return;
    const message = kind === "message" ? (p as MessagePush).message : undefined;
    if (kind === "message" && (!message || typeof message !== "object" || typeof message.id !== "string")) return;
    const threadId = p.threadId || message?.threadId;
    if (!threadId) return;
    const h: HistoryPush = { kind, threadId, epoch: p.epoch, offset: p.offset, raw: p };
    // The push's position is the message's offset (protocol 1.1: a message
    // push carries it beside the message, not inside it).
    if (message) h.message = typeof p.offset === "number" && message.offset === undefined ? { ...message, offset: p.offset } : message;
    const t = this.#threads.get(threadId);
    if (!t) {
      this.#noteMonitored(h);
      this.#deliver(undefined, h, false);
      return;
    }
    if (t.buffer) {
      t.buffer.push(h); // a recovery of the thread is under way: applied after it, in order
      return;
    }
    if (!this.#applyPush(t, h, false)) {
      // A gap, or a new epoch: recover what was missed; this push waits, and follows it.
      t.buffer = [h];
      this.#recover([t]);
    }
  }

  /** Follows the position of a monitored thread (no threadToken: no recovery, only a re-monitor from it). */
  #noteMonitored(h: HistoryPush): void {
    if (typeof h.epoch !== "string" || typeof h.offset !== "number") return;
    for (const m of this.#monitors.values()) {
      if (m.threadId !== h.threadId) continue;
      if (m.epoch !== h.epoch) Object.assign(m, { epoch: h.epoch, offset: h.offset });
      else m.offset = Math.max(m.offset, h.offset);
    }
  }

  /**
   * Processes a history push in the thread's order. Returns false (and does nothing) when
   * pushes were missed before it: a gap, or another epoch.
   */
  #applyPush(t: ThreadState, h: HistoryPush, recovered: boolean): boolean {
    if (!t.listening || typeof h.offset !== "number" || typeof h.epoch !== "string") {
      this.#deliver(t, h, recovered);
      return true;
    }
    if (h.epoch === t.epoch) {
      if (h.offset <= t.offset || t.ahead.has(h.offset)) {
        // Already processed (a replay, a retried send published once more): a message is still
        // emitted when its id is new (it cannot be, but the id decides), anything else is dropped.
        if (h.kind === "message") this.#deliver(t, h, recovered);
        return true;
      }
      if (h.offset === t.offset + 1) {
        t.offset = h.offset;
        this.#advance(t);
        this.#deliver(t, h, recovered);
        return true;
      }
    }
    return false;
  }

  /** Emits a history push as its event; messages once per id. */
  #deliver(t: ThreadState | undefined, h: HistoryPush, recovered: boolean): void {
    if (h.kind === "message") {
      const m = h.message;
      if (!m || (t && !this.#see(t, m.id))) return;
      const ev: MessageEvent = { threadId: h.threadId, message: m, recovered };
      if (h.epoch !== undefined) ev.epoch = h.epoch;
      if (h.offset !== undefined) ev.offset = h.offset;
      this.#emit("message", ev);
    } else if (h.kind === "read") {
      this.#emit("read", { ...(h.raw as ReadPush), recovered });
    } else if (h.kind === "messageDeleted") {
      this.#emit("messageDeleted", { ...(h.raw as MessageDeletedPush), recovered });
    } else if (h.kind === "messageEdited") {
      this.#emit("messageEdited", { ...(h.raw as MessageEditedPush), recovered });
    } else if (h.kind === "reaction") {
      this.#emit("reaction", { ...(h.raw as ReactionPush), recovered });
    } else {
      this.#emit("member", { ...(h.raw as MemberPush), recovered });
    }
  }

  /**
   * Applies the pushes buffered during a recovery, in offset order whatever order they came in
   * (the push that revealed a gap comes before the replay of the missed ones). Those up to
   * `upTo` of `epoch` are flagged recovered; those of an older epoch than the thread's are
   * stale (messages still emitted once by id). Returns false when a gap remains: the pushes
   * after it stay buffered. `force` emits them anyway (the recovery failed; never lose a message).
   */
  #flush(t: ThreadState, upTo?: number, epoch?: string, force = false): boolean {
    let pending = t.buffer ?? [];
    t.buffer = null;
    for (;;) {
      const rest: HistoryPush[] = [];
      for (const h of pending) {
        const recovered = upTo !== undefined && h.epoch === epoch && h.offset <= upTo;
        if (t.listening && t.epoch !== undefined && typeof h.offset === "number" && h.epoch !== t.epoch) {
          if (h.kind === "message") this.#deliver(t, h, true);
          continue;
        }
        if (!this.#applyPush(t, h, recovered)) rest.push(h);
      }
      if (rest.length === 0) return true;
      if (rest.length === pending.length) {
        if (force) {
          for (const h of rest) this.#deliver(t, h, false);
          return true;
        }
        t.buffer = rest;
        return false;
      }
      pending = rest;
    }
  }

  /**
   * Recovers what the threads missed: `resume` from the last position processed (ECB replays
   * the missed pushes, in order, before any newer one), and getThread for those ECB no longer
   * holds the history of. Pushes that come meanwhile wait in the thread's buffer. A thread
   * being recovered already is done once more when the current run ends.
   */
  #recover(list: ThreadState[]): void {
    const fresh: ThreadState[] = [];
    for (const t of list) {
      if (t.recovering) t.resyncAgain = true;
      else fresh.push(t);
    }
    if (!fresh.length) return;
    for (const t of fresh) t.recovering = true;
    void this.#recoverRun(fresh);
  }

  async #recoverRun(list: ThreadState[]): Promise<void> {
    const rounds = new Map<ThreadState, number>();
    try {
      let todo = list;
      while (todo.length && this.#ready) {
        const byResume: ThreadState[] = [];
        const byFetch: ThreadState[] = [];
        for (const t of todo) {
          t.resyncAgain = false;
          t.buffer ??= [];
          const n = rounds.get(t) ?? 0;
          rounds.set(t, n + 1);
          if (!t.listening) this.#flush(t);
          else if (n >= RESUME_ROUNDS + 2) this.#flush(t, undefined, undefined, true); // give up for now: the next gap tries again
          else (t.epoch !== undefined && n < RESUME_ROUNDS ? byResume : byFetch).push(t);
        }
        for (let i = 0; i < byResume.length; i += RESUME_BATCH) {
          byFetch.push(...(await this.#resumeBatch(byResume.slice(i, i + RESUME_BATCH))));
        }
        for (const t of byFetch) {
          if (!this.#ready) {
            t.resyncAgain = true;
            continue;
          }
          let fetched: boolean;
          try {
            fetched = await this.#reattach(t);
          } catch (err) {
            const error = err instanceof EcbError ? err : new EcbError("internal", String(err));
            this.#emit("error", { error, operation: "getThread", threadId: t.id });
            this.#flush(t, undefined, undefined, true);
            continue;
          }
          if (!fetched) t.resyncAgain = true; // the connection dropped
          else if (!this.#flush(t)) t.resyncAgain = true;
        }
        todo = list.filter((t) => t.resyncAgain);
      }
    } finally {
      for (const t of list) {
        t.recovering = false;
        if (!t.buffer && !t.resyncAgain) continue;
        if (!t.listening) this.#flush(t);
        else if (this.#ready) this.#recover([t]);
        // else: not connected; the next connection's recovery starts from this buffer.
      }
    }
  }

  /**
   * One `resume` request for threads with a known position. Threads recovered by it are done
   * (their missed pushes came before the answer and were buffered); returns those to fetch
   * again with getThread. A dropped connection leaves them to the next one.
   */
  async #resumeBatch(batch: ThreadState[]): Promise<ThreadState[]> {
    if (!batch.length) return [];
    const send = () =>
      this.#emitOnce<ResumeResult>(
        "resume",
        { threads: batch.map((t) => ({ threadToken: t.token, epoch: t.epoch ?? "", offset: t.offset })) },
        this.#requestTimeout,
      );
    let out = await send();
    if ("error" in out && out.error.code === "unauthenticated") {
      await this.#refreshThreadTokens(); // a threadToken expired: the whole request was refused
      out = await send();
    }
    if ("lost" in out) {
      for (const t of batch) t.resyncAgain = true;
      return [];
    }
    if ("error" in out) {
      // One token refused (left, removed...) refuses them all: getThread tells which (and
      // reports the error of that thread).
      return batch;
    }
    const again: ThreadState[] = [];
    batch.forEach((t, i) => {
      const ans = out.data.threads?.[i];
      if (!ans || ans.threadId !== t.id || !ans.recovered) {
        again.push(t);
        return;
      }
      if (!this.#flush(t, ans.offset, ans.epoch)) {
        t.resyncAgain = true;
      } else if (t.epoch !== ans.epoch || t.offset < ans.offset) {
        again.push(t); // the replay did not reach the answer's position: fetch instead
      }
    });
    return again;
  }

  /** Re-fetches a thread with getThread (a listener again) and emits the messages missed. False when the connection dropped. */
  async #reattach(t: ThreadState): Promise<boolean> {
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
    if (!first) return false;
    if (first.threadToken) this.#noteToken(t.id, first.threadToken, undefined);
    const nothingMissed = first.epoch === t.epoch && first.offset <= t.offset;
    const pages: Message[][] = [first.messages];
    if (!nothingMissed && t.seen.size > 0) {
      let cursor = first.nextCursor;
      let known = first.messages.some((m) => t.seen.has(m.id));
      for (let i = 1; !known && cursor && i < RECOVERY_MAX_PAGES; i++) {
        const older = await fetchPage(cursor);
        if (!older) return false;
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
    return true;
  }
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
