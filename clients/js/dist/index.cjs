"use strict";
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/index.ts
var index_exports = {};
__export(index_exports, {
  CLIENT_ERROR_CODES: () => CLIENT_ERROR_CODES,
  EcbClient: () => EcbClient,
  EcbError: () => EcbError,
  PROTOCOL_ERROR_CODES: () => PROTOCOL_ERROR_CODES,
  PROTOCOL_VERSION: () => PROTOCOL_VERSION,
  isEcbError: () => isEcbError,
  newClientMessageId: () => newClientMessageId
});
module.exports = __toCommonJS(index_exports);

// src/client.ts
var import_socket = require("socket.io-client");

// src/errors.ts
var PROTOCOL_ERROR_CODES = [
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
  "unavailable"
];
var CLIENT_ERROR_CODES = ["outbox_full", "timeout", "disconnected", "closed"];
var protocolCodes = new Set(PROTOCOL_ERROR_CODES);
var EcbError = class _EcbError extends Error {
  name = "EcbError";
  /** The error code; decide on it, not on the message. */
  code;
  /** With `rate_limited`: seconds to wait before retrying. */
  retryAfter;
  /** True when ECB answered with this error; false when this library raised it (checks, outbox, timeouts). */
  fromServer;
  constructor(code, message, options = {}) {
    super(message);
    this.code = code;
    this.fromServer = options.fromServer ?? false;
    if (options.retryAfter !== void 0) this.retryAfter = options.retryAfter;
  }
  /**
   * Builds the error from an ECB answer. A code outside the closed list (a newer
   * server) becomes `internal`, with the unknown code kept in the message.
   */
  static fromBody(body) {
    if (!body || typeof body !== "object") return new _EcbError("internal", "malformed error from server", { fromServer: true });
    const known = typeof body.code === "string" && protocolCodes.has(body.code);
    const msg = typeof body.message === "string" && body.message !== "" ? body.message : String(body.code);
    const retryAfter = typeof body.retryAfter === "number" && body.retryAfter > 0 ? body.retryAfter : void 0;
    const opts = retryAfter === void 0 ? { fromServer: true } : { fromServer: true, retryAfter };
    return known ? new _EcbError(body.code, msg, opts) : new _EcbError("internal", `${String(body.code)}: ${msg}`, opts);
  }
};
function isEcbError(e, code) {
  return e instanceof EcbError && (code === void 0 || e.code === code);
}

// src/validate.ts
function bad(message) {
  return new EcbError("invalid_argument", message);
}
function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function requireObject(v, what) {
  if (!isObject(v)) throw bad(`${what} must be an object`);
}
function nonEmptyString(v, field) {
  if (typeof v !== "string" || v.trim() === "") throw bad(`${field} must be a non-empty string`);
}
function optionalString(v, field) {
  if (v !== void 0 && typeof v !== "string") throw bad(`${field} must be a string`);
}
function optionalPositiveInt(v, field) {
  if (v !== void 0 && (typeof v !== "number" || !Number.isInteger(v) || v < 1)) {
    throw bad(`${field} must be a positive integer`);
  }
}
function clientMessageId(v, field) {
  if (v === void 0) return;
  if (typeof v !== "string" || v === "") throw bad(`${field} must be a non-empty string`);
  if ([...v].length > 128) throw bad(`${field} exceeds 128 characters`);
}
function messageData(v, field) {
  if (v !== void 0 && !isObject(v)) throw bad(`${field} must be a JSON object`);
}
function checkGetUserToken(req) {
  requireObject(req, "getUserToken's argument");
  nonEmptyString(req.accessToken, "accessToken");
}
function checkRefreshToken(req) {
  requireObject(req, "refreshToken's argument");
  nonEmptyString(req.userToken, "userToken");
}
function checkPage(req, op) {
  if (req === void 0) return;
  requireObject(req, `${op}'s argument`);
  optionalPositiveInt(req.page, "page");
  optionalPositiveInt(req.pageSize, "pageSize");
}
function checkCreateThread(req) {
  requireObject(req, "createThread's argument");
  if (!Array.isArray(req.participants) || req.participants.length === 0) {
    throw bad("participants must be a non-empty array of user ids");
  }
  for (const p of req.participants) nonEmptyString(p, "each participant");
  optionalString(req.subject, "subject");
  requireObject(req.message, "message");
  nonEmptyString(req.message.body, "message.body");
  clientMessageId(req.message.clientMessageId, "message.clientMessageId");
  messageData(req.message.data, "message.data");
}
function checkGetThread(req) {
  requireObject(req, "getThread's argument");
  nonEmptyString(req.threadToken, "threadToken");
  if (req.threadId !== void 0) nonEmptyString(req.threadId, "threadId");
  if (req.before !== void 0) nonEmptyString(req.before, "before");
  optionalPositiveInt(req.limit, "limit");
}
function checkSendMessage(req) {
  requireObject(req, "sendMessage's argument");
  nonEmptyString(req.threadToken, "threadToken");
  if (req.threadId !== void 0) nonEmptyString(req.threadId, "threadId");
  nonEmptyString(req.body, "body");
  clientMessageId(req.clientMessageId, "clientMessageId");
  messageData(req.data, "data");
}
function checkStopListening(req) {
  requireObject(req, "stopListening's argument");
  nonEmptyString(req.threadId, "threadId");
}

// src/client.ts
var SEEN_PER_THREAD = 5e3;
var MAX_IN_FLIGHT = 8;
var RECOVERY_PAGE = 100;
var RECOVERY_MAX_PAGES = 10;
var TOKEN_MAP_MAX = 2e3;
function newClientMessageId() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = b[6] & 15 | 64;
  b[8] = b[8] & 63 | 128;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
var EcbClient = class {
  #url;
  #opts;
  #requestTimeout;
  #outboxLimit;
  #socket = null;
  #state = "idle";
  #lastError;
  #ready = false;
  #generation = 0;
  #givenUp = false;
  #networkDown = false;
  #userToken;
  #accessToken;
  #user;
  #authMode = "none";
  #triedAccess = false;
  #triedCallback = false;
  #awaitingSession = null;
  #retryTimer = null;
  #refusals = 0;
  #waiters = [];
  #connectPromise = null;
  #listeners = /* @__PURE__ */ new Map();
  #threads = /* @__PURE__ */ new Map();
  #tokenToThread = /* @__PURE__ */ new Map();
  #outbox = [];
  #inFlight = 0;
  #pumpTimer = null;
  #threadTokenRefresh = null;
  #unwatchNetwork = null;
  constructor(options) {
    if (!options || typeof options.url !== "string" || options.url === "") {
      throw new EcbError("invalid_argument", "options.url must be ECB's URL");
    }
    if (options.outboxLimit !== void 0 && (!Number.isInteger(options.outboxLimit) || options.outboxLimit < 0)) {
      throw new EcbError("invalid_argument", "options.outboxLimit must be a non-negative integer");
    }
    if (options.getUserToken !== void 0 && typeof options.getUserToken !== "function") {
      throw new EcbError("invalid_argument", "options.getUserToken must be a function");
    }
    this.#url = options.url;
    this.#opts = options;
    this.#userToken = options.userToken || void 0;
    this.#accessToken = options.accessToken || void 0;
    this.#requestTimeout = options.requestTimeout ?? 3e4;
    this.#outboxLimit = options.outboxLimit ?? 100;
  }
  // ---- state ----
  /** The connection state. */
  get state() {
    return this.#state;
  }
  /** The user this client is connected as, once known (from the session or getUserToken). */
  get user() {
    return this.#user;
  }
  /** The newest userToken the client holds. */
  get userToken() {
    return this.#userToken;
  }
  /** Messages waiting for their ack in the outbox (queued or in flight). */
  get queued() {
    return this.#outbox.length;
  }
  /** Why the client last failed to connect, if it did. */
  get lastError() {
    return this.#lastError;
  }
  /** The newest threadToken the client knows for a thread (answers of getThreads, getThread, sendMessage, createThread). */
  threadToken(threadId) {
    return this.#threads.get(threadId)?.token;
  }
  /** Whether this client listens to the thread's pushes (and re-attaches it after a reconnect). */
  isListening(threadId) {
    return this.#threads.get(threadId)?.listening ?? false;
  }
  // ---- events ----
  /** Subscribes to an event; returns the function that unsubscribes. */
  on(event, handler) {
    let set = this.#listeners.get(event);
    if (!set) {
      set = /* @__PURE__ */ new Set();
      this.#listeners.set(event, set);
    }
    set.add(handler);
    return () => this.off(event, handler);
  }
  /** Unsubscribes a handler given to on(). */
  off(event, handler) {
    this.#listeners.get(event)?.delete(handler);
  }
  #emit(event, payload) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(payload);
      } catch (err) {
        console.error(`@ecb/client: a "${event}" handler threw`, err);
      }
    }
  }
  #setState(state, error) {
    const changed = state !== this.#state || error !== this.#lastError;
    this.#state = state;
    if (error !== void 0 || state === "connected") this.#lastError = error;
    if (changed) this.#announce();
  }
  #announce() {
    const ev = { state: this.#state, queued: this.#outbox.length };
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
  connect() {
    if (this.#state === "closed") return Promise.reject(new EcbError("closed", "this client was closed"));
    if (this.#ready) return Promise.resolve();
    if (!this.#connectPromise) {
      let resolve;
      let reject;
      const promise = new Promise((ok, fail) => {
        resolve = ok;
        reject = fail;
      });
      const timer = setTimeout(
        () => this.#settleConnect(new EcbError("timeout", "could not connect to ECB in time; still trying")),
        this.#requestTimeout
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
        }
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
  #settleConnect(err) {
    const cp = this.#connectPromise;
    if (!cp) return;
    this.#connectPromise = null;
    if (err) cp.reject(err);
    else cp.resolve();
  }
  /** Closes the connection for good; pending operations and queued messages reject with `closed`. */
  close() {
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
    this.#lastError = void 0;
    this.#announce();
  }
  #clearTimers() {
    for (const t of [this.#awaitingSession, this.#retryTimer, this.#pumpTimer]) if (t) clearTimeout(t);
    this.#awaitingSession = this.#retryTimer = this.#pumpTimer = null;
  }
  #handshakeAuth() {
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
  #open() {
    if (this.#socket) {
      this.#socket.connect();
      return;
    }
    const opts = {
      ...this.#opts.socketOptions,
      autoConnect: false,
      reconnection: true,
      forceNew: true,
      auth: (cb) => cb(this.#handshakeAuth())
    };
    if (this.#opts.path) opts.path = this.#opts.path;
    if (this.#opts.transports) opts.transports = this.#opts.transports;
    const socket = (0, import_socket.io)(this.#url, opts);
    this.#socket = socket;
    socket.on("connect", () => this.#onConnect());
    socket.on("connect_error", (err) => this.#onConnectError(socket, err));
    socket.on("disconnect", (reason) => this.#onDisconnect(reason));
    socket.on("session", (ev) => this.#onSession(ev));
    socket.on("message", (p) => this.#onPush(p));
    socket.on("read", (p) => this.#onPush(p));
    socket.on("member", (p) => this.#onPush(p));
    socket.on("thread", (ev) => this.#emit("thread", ev));
    socket.on("tokenExpiring", (ev) => void this.#onTokenExpiring(ev));
    socket.connect();
  }
  #onConnect() {
    if (this.#authMode === "accessToken") {
      this.#awaitingSession = setTimeout(() => {
        this.#awaitingSession = null;
        this.#onReady();
      }, this.#requestTimeout);
      return;
    }
    this.#onReady();
  }
  #onSession(ev) {
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
  #onReady() {
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
    for (const t of this.#threads.values()) if (t.listening) void this.#resync(t);
    this.#pump();
  }
  #onDisconnect(reason) {
    this.#generation++;
    this.#ready = false;
    if (this.#awaitingSession) {
      clearTimeout(this.#awaitingSession);
      this.#awaitingSession = null;
    }
    if (this.#state === "closed" || this.#givenUp) return;
    if (reason === "io server disconnect") {
      this.#scheduleRetry(void 0);
    }
    this.#setState(this.#networkDown ? "offline" : "reconnecting");
  }
  #onConnectError(socket, err) {
    if (this.#state === "closed") return;
    if (socket.active) {
      if (this.#state !== "connecting") this.#setState(this.#networkDown ? "offline" : "reconnecting");
      return;
    }
    const data = err.data;
    const e = data && typeof data === "object" && typeof data.code === "string" ? EcbError.fromBody(data) : new EcbError("unavailable", err.message || "connection refused");
    void this.#onRefused(e);
  }
  async #onRefused(e) {
    switch (e.code) {
      case "unauthenticated":
        if (this.#authMode === "userToken" && this.#accessToken && !this.#triedAccess) {
          this.#triedAccess = true;
          this.#userToken = void 0;
          this.#socket?.connect();
          return;
        }
        if (this.#opts.getUserToken && !this.#triedCallback) {
          this.#triedCallback = true;
          this.#setState(this.#state === "connecting" ? "connecting" : "reconnecting", e);
          let token;
          try {
            token = await this.#opts.getUserToken();
          } catch (err) {
            this.#giveUp(
              err instanceof EcbError ? err : new EcbError("unauthenticated", `could not get a fresh userToken: ${String(err)}`)
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
        this.#setState(this.#state === "connecting" ? "connecting" : "reconnecting", e);
        this.#scheduleRetry(e);
    }
  }
  #scheduleRetry(e) {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const n = this.#refusals++;
    const base = e?.retryAfter ? e.retryAfter * 1e3 : Math.min(3e4, 500 * 2 ** n);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#state !== "closed" && !this.#givenUp && !this.#ready) this.#socket?.connect();
    }, delay);
  }
  #giveUp(e) {
    this.#givenUp = true;
    this.#ready = false;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#socket?.disconnect();
    this.#setState("offline", e);
    this.#settleConnect(e);
    this.#rejectWaiters(e);
  }
  #rejectWaiters(e) {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }
  #watchNetwork() {
    if (this.#unwatchNetwork || this.#opts.watchNetwork === false) return;
    const w = globalThis;
    if (typeof w.addEventListener !== "function" || typeof w.removeEventListener !== "function") return;
    const offline = () => {
      this.#networkDown = true;
      if (this.#state === "closed" || this.#givenUp) return;
      const engine = this.#socket?.io.engine;
      if (this.#socket?.connected && engine) engine.close();
      this.#setState("offline");
    };
    const online = () => {
      this.#networkDown = false;
      if (this.#state === "closed" || this.#givenUp || this.#ready) return;
      this.#setState(this.#socket ? "reconnecting" : "connecting");
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
      w.removeEventListener("offline", offline);
      w.removeEventListener("online", online);
    };
  }
  // ---- token refresh ----
  async #onTokenExpiring(ev) {
    this.#emit("tokenExpiring", ev);
    let token;
    try {
      if (this.#opts.getUserToken) {
        token = await this.#opts.getUserToken();
      } else if (this.#accessToken) {
        token = (await this.getUserToken({ accessToken: this.#accessToken })).userToken;
      } else {
        return;
      }
      await this.refreshToken({ userToken: token });
    } catch (err) {
      const error = err instanceof EcbError ? err : new EcbError("unauthenticated", `token refresh failed: ${String(err)}`);
      this.#emit("error", { error, operation: "refreshToken" });
    }
  }
  // ---- operations ----
  /** Waits until the client is connected, or rejects when it cannot be within the deadline. */
  #waitReady(deadline) {
    if (this.#ready) return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new EcbError("closed", "the client was closed"));
    if (this.#state === "idle") return Promise.reject(new EcbError("disconnected", "not connected: call connect() first"));
    if (this.#givenUp) {
      return Promise.reject(this.#lastError ?? new EcbError("disconnected", "not connected"));
    }
    return new Promise((resolve, reject) => {
      const w = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.#waiters = this.#waiters.filter((x) => x !== w);
            reject(new EcbError("timeout", "not connected to ECB in time"));
          },
          Math.max(0, deadline - Date.now())
        )
      };
      this.#waiters.push(w);
    });
  }
  /** Emits one operation on the live socket. `lost` when the connection dropped before the answer. */
  #emitOnce(op, payload, timeoutMs) {
    const socket = this.#socket;
    if (!socket || !this.#ready || !socket.connected) return Promise.resolve({ lost: true });
    const gen = this.#generation;
    return new Promise((resolve) => {
      socket.timeout(Math.max(1, timeoutMs)).emit(op, payload, (err, env) => {
        if (err) {
          if (gen !== this.#generation || !socket.connected) resolve({ lost: true });
          else resolve({ error: new EcbError("timeout", `no answer to ${op} in time`) });
          return;
        }
        if (env && typeof env === "object" && env.error) resolve({ error: EcbError.fromBody(env.error) });
        else if (env && typeof env === "object" && "data" in env) resolve({ data: env.data });
        else resolve({ error: new EcbError("internal", `malformed answer to ${op}`) });
      });
    });
  }
  /**
   * Runs an operation: waits for the connection, emits, and retries on a new connection
   * when the old one dropped before the answer (every operation of protocol 1 is safe to
   * retry: reads, and writes that carry a clientMessageId).
   */
  async #call(op, payload) {
    const deadline = Date.now() + this.#requestTimeout;
    for (; ; ) {
      await this.#waitReady(deadline);
      const out = await this.#emitOnce(op, payload, deadline - Date.now());
      if ("data" in out) return out.data;
      if ("error" in out) throw out.error;
      if (Date.now() >= deadline) throw new EcbError("timeout", `no answer to ${op} in time`);
    }
  }
  /** Trades the backend's access token for a userToken; the client uses it from then on. */
  async getUserToken(req) {
    checkGetUserToken(req);
    const res = await this.#call("getUserToken", { accessToken: req.accessToken });
    this.#userToken = res.userToken;
    this.#user = res.user;
    this.#emit("session", { userToken: res.userToken, user: res.user });
    return res;
  }
  /** Swaps the live connection's userToken for a fresh one of the same user (before it expires). */
  async refreshToken(req) {
    checkRefreshToken(req);
    const res = await this.#call("refreshToken", { userToken: req.userToken });
    this.#userToken = req.userToken;
    return res;
  }
  /** A page of the users this user may start threads with. */
  async getContacts(req = {}) {
    checkPage(req, "getContacts");
    return this.#call("getContacts", pick(req, ["page", "pageSize"]));
  }
  /** A page of this user's threads, each with its threadToken. */
  async getThreads(req = {}) {
    checkPage(req, "getThreads");
    const res = await this.#call("getThreads", pick(req, ["page", "pageSize"]));
    for (const st of res.items ?? []) this.#noteToken(st.thread.id, st.threadToken, false);
    return res;
  }
  /**
   * Creates a thread with a first message; this connection listens to it from then on.
   * The message gets a clientMessageId when it has none, so a retry never creates a second thread.
   */
  async createThread(req) {
    checkCreateThread(req);
    const payload = {
      participants: [...req.participants],
      message: { ...pick(req.message, ["body", "data"]), clientMessageId: req.message.clientMessageId ?? newClientMessageId() }
    };
    if (req.subject !== void 0) payload.subject = req.subject;
    const res = await this.#call("createThread", payload);
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
  async getThread(req) {
    checkGetThread(req);
    const token = this.#newestToken(req.threadToken);
    const payload = { ...pick(req, ["threadId", "before", "limit"]), threadToken: token };
    const res = await this.#call("getThread", payload);
    const listen = req.before === void 0;
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
  sendMessage(req) {
    try {
      checkSendMessage(req);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#state === "closed") return Promise.reject(new EcbError("closed", "the client was closed"));
    if (this.#outbox.length >= this.#outboxLimit) {
      return Promise.reject(
        new EcbError("outbox_full", `${this.#outbox.length} messages are already waiting to be sent (outboxLimit)`)
      );
    }
    const entryReq = {
      threadToken: req.threadToken,
      body: req.body,
      clientMessageId: req.clientMessageId ?? newClientMessageId()
    };
    if (req.threadId !== void 0) entryReq.threadId = req.threadId;
    if (req.data !== void 0) entryReq.data = req.data;
    return new Promise((resolve, reject) => {
      const entry = {
        req: entryReq,
        state: "queued",
        attempt: 0,
        tokenRetried: false,
        notBefore: 0,
        resolve,
        reject
      };
      const tid = this.#tokenToThread.get(req.threadToken);
      if (tid !== void 0) entry.threadId = tid;
      this.#outbox.push(entry);
      this.#announce();
      this.#pump();
    });
  }
  /** Stops the thread's pushes to this connection; the client no longer re-attaches it. */
  async stopListening(req) {
    checkStopListening(req);
    const t = this.#threads.get(req.threadId);
    if (t) t.listening = false;
    if (!this.#ready) return {};
    const out = await this.#emitOnce("stopListening", { threadId: req.threadId }, this.#requestTimeout);
    if ("error" in out) throw out.error;
    return {};
  }
  // ---- outbox ----
  #pump() {
    if (!this.#ready || this.#state === "closed") return;
    const now = Date.now();
    let wait = Infinity;
    for (const e of this.#outbox) {
      if (this.#inFlight >= MAX_IN_FLIGHT) break;
      if (e.state !== "queued") continue;
      if (e.notBefore > now) {
        wait = Math.min(wait, e.notBefore - now);
        break;
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
  #sendEntry(e) {
    e.state = "sending";
    const attempt = ++e.attempt;
    this.#inFlight++;
    const payload = { ...e.req, threadToken: this.#newestToken(e.req.threadToken, e.threadId) };
    void this.#emitOnce("sendMessage", payload, this.#requestTimeout).then(async (out) => {
      this.#inFlight--;
      if (e.attempt !== attempt || e.state !== "sending" || this.#state === "closed") return;
      if ("lost" in out || "error" in out && out.error.code === "timeout") {
        e.state = "queued";
      } else if ("error" in out) {
        const err = out.error;
        if (err.code === "rate_limited") {
          e.state = "queued";
          e.notBefore = Date.now() + (err.retryAfter ?? 1) * 1e3;
        } else if (err.code === "unauthenticated" && !e.tokenRetried && e.threadId) {
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
          const t = this.#noteToken(tid, res.threadToken, void 0);
          this.#see(t, res.message.id);
          this.#own(t, res.epoch, res.message.offset);
        }
        this.#finish(e);
        e.resolve(res);
      }
      this.#pump();
    });
  }
  #finish(e) {
    const i = this.#outbox.indexOf(e);
    if (i >= 0) this.#outbox.splice(i, 1);
    this.#announce();
  }
  /** Fetches fresh threadTokens for the threads the client knows (getThreads, all pages). */
  #refreshThreadTokens() {
    if (!this.#threadTokenRefresh) {
      this.#threadTokenRefresh = (async () => {
        try {
          for (let page = 1; page <= 20; page++) {
            const out = await this.#emitOnce("getThreads", { page, pageSize: 100 }, this.#requestTimeout);
            if (!("data" in out)) return;
            for (const st of out.data.items) this.#noteToken(st.thread.id, st.threadToken, void 0);
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
  #newestToken(token, threadId) {
    const id = threadId ?? this.#tokenToThread.get(token);
    return id !== void 0 && this.#threads.get(id)?.token || token;
  }
  #tokenToThreadSet(token, threadId) {
    this.#tokenToThread.set(token, threadId);
    if (this.#tokenToThread.size > TOKEN_MAP_MAX) {
      const oldest = this.#tokenToThread.keys().next().value;
      if (oldest !== void 0) this.#tokenToThread.delete(oldest);
    }
  }
  /** Records the newest token of a thread; listen true/false sets the listening flag, undefined keeps it. */
  #noteToken(threadId, token, listen) {
    let t = this.#threads.get(threadId);
    if (!t) {
      t = {
        id: threadId,
        token,
        listening: false,
        offset: 0,
        ahead: /* @__PURE__ */ new Set(),
        seen: /* @__PURE__ */ new Set(),
        resync: null,
        resyncAgain: false,
        buffer: null
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
  #see(t, id) {
    if (t.seen.has(id)) return false;
    t.seen.add(id);
    if (t.seen.size > SEEN_PER_THREAD) {
      const oldest = t.seen.values().next().value;
      if (oldest !== void 0) t.seen.delete(oldest);
    }
    return true;
  }
  /** Sets the thread's push position from an answer (createThread, getThread). */
  #position(t, epoch, offset, exact) {
    if (t.epoch === epoch && !exact) {
      t.offset = Math.max(t.offset, offset);
    } else {
      t.epoch = epoch;
      t.offset = offset;
    }
    for (const o of t.ahead) if (o <= t.offset) t.ahead.delete(o);
    this.#advance(t);
  }
  #advance(t) {
    while (t.ahead.delete(t.offset + 1)) t.offset++;
  }
  /** The position of this client's own message (sendMessage's answer; it gets no push of it). */
  #own(t, epoch, offset) {
    if (!t.listening || offset === void 0) return;
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
  #onPush(p) {
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
  #applyPush(t, p) {
    if (p.message && this.#see(t, p.message.id)) {
      this.#emit("message", { threadId: t.id, message: p.message, epoch: p.epoch, offset: p.offset, recovered: false });
    }
    if (!t.listening || typeof p.offset !== "number") return;
    if (p.epoch === t.epoch && p.offset <= t.offset) return;
    if (p.epoch === t.epoch && p.offset === t.offset + 1) {
      t.offset = p.offset;
      this.#advance(t);
      return;
    }
    if (p.epoch === t.epoch && t.ahead.has(p.offset)) return;
    void this.#resync(t);
  }
  /** Re-attaches a thread and emits what was missed; one at a time per thread. */
  #resync(t) {
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
  async #reattach(t) {
    const fetchPage = async (before) => {
      const payload = { threadToken: t.token, limit: RECOVERY_PAGE };
      if (before) payload.before = before;
      let out = await this.#emitOnce("getThread", payload, this.#requestTimeout);
      if ("error" in out && out.error.code === "unauthenticated") {
        await this.#refreshThreadTokens();
        payload.threadToken = t.token;
        out = await this.#emitOnce("getThread", payload, this.#requestTimeout);
      }
      if ("lost" in out) return null;
      if ("error" in out) {
        if (out.error.code === "forbidden" || out.error.code === "not_found") t.listening = false;
        throw out.error;
      }
      return out.data;
    };
    const first = await fetchPage();
    if (!first) return;
    if (first.threadToken) this.#noteToken(t.id, first.threadToken, void 0);
    const nothingMissed = first.epoch === t.epoch && first.offset <= t.offset;
    const pages = [first.messages];
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
};
function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== void 0) out[k] = obj[k];
  return out;
}

// src/index.ts
var PROTOCOL_VERSION = 1;
//# sourceMappingURL=index.cjs.map
