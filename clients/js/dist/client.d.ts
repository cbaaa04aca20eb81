import { type ManagerOptions, type SocketOptions } from "socket.io-client";
import { EcbError } from "./errors.js";
import type { CreateThreadRequest, CreateThreadResult, GetThreadRequest, GetThreadResult, GetUserTokenRequest, GetUserTokenResult, Message, Page, PageRequest, RefreshTokenRequest, RefreshTokenResult, SendMessageRequest, SendMessageResult, SessionEvent, SignedThread, StopListeningRequest, StopListeningResult, ThreadEvent, TokenExpiringEvent, User } from "./types.js";
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
/** A random RFC 4122 version 4 id; falls back to getRandomValues where randomUUID is missing (insecure contexts). */
export declare function newClientMessageId(): string;
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
export declare class EcbClient {
    #private;
    constructor(options: EcbClientOptions);
    /** The connection state. */
    get state(): ConnectionState;
    /** The user this client is connected as, once known (from the session or getUserToken). */
    get user(): User | undefined;
    /** The newest userToken the client holds. */
    get userToken(): string | undefined;
    /** Messages waiting for their ack in the outbox (queued or in flight). */
    get queued(): number;
    /** Why the client last failed to connect, if it did. */
    get lastError(): EcbError | undefined;
    /** The newest threadToken the client knows for a thread (answers of getThreads, getThread, sendMessage, createThread). */
    threadToken(threadId: string): string | undefined;
    /** Whether this client listens to the thread's pushes (and re-attaches it after a reconnect). */
    isListening(threadId: string): boolean;
    /** Subscribes to an event; returns the function that unsubscribes. */
    on<K extends EcbEventName>(event: K, handler: (payload: EcbClientEvents[K]) => void): () => void;
    /** Unsubscribes a handler given to on(). */
    off<K extends EcbEventName>(event: K, handler: (payload: EcbClientEvents[K]) => void): void;
    /**
     * Opens the connection. Resolves once connected and authenticated; rejects with the
     * EcbError ECB refused the handshake with (after the refresh attempts), or with
     * `timeout` when not connected within requestTimeout (the client keeps trying).
     * Calling it again while connected does nothing; after a give-up it starts again.
     */
    connect(): Promise<void>;
    /** Closes the connection for good; pending operations and queued messages reject with `closed`. */
    close(): void;
    /** Trades the backend's access token for a userToken; the client uses it from then on. */
    getUserToken(req: GetUserTokenRequest): Promise<GetUserTokenResult>;
    /** Swaps the live connection's userToken for a fresh one of the same user (before it expires). */
    refreshToken(req: RefreshTokenRequest): Promise<RefreshTokenResult>;
    /** A page of the users this user may start threads with. */
    getContacts(req?: PageRequest): Promise<Page<User>>;
    /** A page of this user's threads, each with its threadToken. */
    getThreads(req?: PageRequest): Promise<Page<SignedThread>>;
    /**
     * Creates a thread with a first message; this connection listens to it from then on.
     * The message gets a clientMessageId when it has none, so a retry never creates a second thread.
     */
    createThread(req: CreateThreadRequest): Promise<CreateThreadResult>;
    /**
     * A thread with its newest messages (oldest first). Without `before` this connection
     * becomes a listener of the thread (and stays one across reconnects); with `before`
     * (a nextCursor) it pages older history.
     */
    getThread(req: GetThreadRequest): Promise<GetThreadResult>;
    /**
     * Sends a message through the outbox: at once when connected, or once the connection
     * is back. Resolves when ECB acknowledged it (the backend stored it). The clientMessageId
     * (generated when absent) is kept across retries, so the message is stored once.
     * Rejects with `outbox_full` when outboxLimit messages already wait.
     */
    sendMessage(req: SendMessageRequest): Promise<SendMessageResult>;
    /** Stops the thread's pushes to this connection; the client no longer re-attaches it. */
    stopListening(req: StopListeningRequest): Promise<StopListeningResult>;
}
