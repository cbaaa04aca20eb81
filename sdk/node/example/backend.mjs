// An in-memory ECB backend written with @ecb/server, the way an integrator
// would: users alice, bob and carol (password = name, each other's contacts)
// and dave (nobody's contact, with none of his own),
// threads, messages with idempotency, read marks, members that change, and
// ECB's callbacks stored once per event id. createSupportThread is left out,
// so the SDK answers it 501 not_implemented.
import { randomBytes } from "node:crypto";
import {
  Access,
  createCallbackHandler,
  createHandler,
  conflict,
  forbidden,
  invalidArgument,
  notFound,
  unauthenticated,
} from "@ecb/server";

const USERS = [
  { id: "alice", name: "Alice" },
  { id: "bob", name: "Bob" },
  { id: "carol", name: "Carol" },
  { id: "dave", name: "Dave" },
];
// Who may start threads with whom: alice, bob and carol with each other.
const CONTACTS = { alice: ["bob", "carol"], bob: ["alice", "carol"], carol: ["alice", "bob"], dave: [] };
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;
const MAX_MEMBERS = 101;

const enc = (seq) => Buffer.from(`c1:${seq}`).toString("base64url");
function dec(cursor) {
  const m = /^c1:(\d+)$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!m || enc(Number(m[1])) !== cursor) throw invalidArgument("unknown cursor");
  return Number(m[1]);
}

/** The store and the contract implementation over it. */
export class ExampleBackend {
  /** @param {import("@ecb/server").TokenSigner} signer */
  constructor(signer) {
    this.signer = signer;
    this.users = new Map(USERS.map((u) => [u.id, u]));
    this.sessions = new Map(); // access token -> user id
    this.threads = new Map(); // id -> {id, subject, createdAt, updatedAt, members: Map<userId, {acc, readSeq}>, messages: []}
    this.createdByKey = new Map(); // userId + "\0" + key -> {request, threadId}
    this.callbacks = new Map(); // event id -> event
    this.seq = 0;
  }

  login(username, password) {
    if (!this.users.has(username) || password !== username) return undefined;
    const token = randomBytes(24).toString("base64url");
    this.sessions.set(token, username);
    return token;
  }

  contactsOf(userId) {
    return CONTACTS[userId] ?? [];
  }

  #now() {
    return new Date().toISOString();
  }

  #visible(thread, userId) {
    const m = thread.members.get(userId);
    if (!m || (m.acc & Access.read) === 0) return undefined;
    return m;
  }

  #thread(id) {
    const t = this.threads.get(id);
    if (!t) throw notFound("no such thread");
    return t;
  }

  #wire(t, userId, { withUnread = false } = {}) {
    const last = t.messages.at(-1);
    const out = { id: t.id, members: [...t.members.keys()], createdAt: t.createdAt, updatedAt: t.updatedAt };
    if (t.subject) out.subject = t.subject;
    if (last) out.lastMessage = last.wire;
    if (withUnread) {
      const mark = t.members.get(userId)?.readSeq ?? 0;
      out.unread = t.messages.filter((m) => m.seq > mark && m.wire.authorId !== userId).length;
    }
    return out;
  }

  #token(t, userId) {
    return this.signer.signThreadToken({ threadId: t.id, userId, access: t.members.get(userId)?.acc ?? 0, members: [...t.members.keys()] });
  }

  #store(t, authorId, { body, clientMessageId, data, visibility }) {
    const seq = ++this.seq;
    const wire = { id: `m_${seq}`, threadId: t.id, authorId, body, createdAt: this.#now() };
    if (clientMessageId) wire.clientMessageId = clientMessageId;
    if (data !== undefined) wire.data = data;
    if (visibility) wire.visibility = visibility;
    const m = { seq, wire, key: clientMessageId };
    t.messages.push(m);
    t.updatedAt = wire.createdAt;
    t.updatedSeq = seq;
    const author = t.members.get(authorId);
    if (author) author.readSeq = seq; // your own message is read
    return m;
  }

  // The contract (@ecb/server's Backend).

  async authenticate({ accessToken }) {
    const id = this.sessions.get(accessToken);
    if (!id) throw unauthenticated("access token is unknown or expired");
    const user = this.users.get(id);
    return { userToken: await this.signer.signUserToken({ id: user.id, name: user.name }), user };
  }

  async getContacts({ userId }) {
    if (!this.users.has(userId)) throw notFound("no such user");
    return { contacts: this.contactsOf(userId).map((id) => this.users.get(id)) };
  }

  async getThreads({ userId }) {
    const mine = [...this.threads.values()]
      .filter((t) => this.#visible(t, userId))
      .sort((a, b) => b.updatedSeq - a.updatedSeq);
    return {
      threads: await Promise.all(mine.map(async (t) => ({ thread: this.#wire(t, userId, { withUnread: true }), threadToken: await this.#token(t, userId) }))),
    };
  }

  async createThread(req, ctx) {
    const { userId, participants, subject, message } = req;
    if (!this.users.has(userId)) throw notFound("no such user");
    const key = ctx.idempotencyKey || message.clientMessageId;
    const fingerprint = JSON.stringify([participants, subject ?? "", message.body, message.data ?? null]);
    if (key) {
      const prev = this.createdByKey.get(userId + "\0" + key);
      if (prev) {
        if (prev.fingerprint !== fingerprint) throw conflict("this clientMessageId was used for another thread");
        const t = this.threads.get(prev.threadId);
        return { thread: this.#wire(t, userId), threadToken: await this.#token(t, userId), message: t.messages[0].wire };
      }
    }
    const contacts = this.contactsOf(userId);
    for (const p of participants) {
      if (!this.users.has(p)) throw invalidArgument(`unknown participant ${p}`);
      if (p !== userId && !contacts.includes(p)) throw forbidden(`${p} is not your contact`);
    }
    if (subject && subject.length > 200) throw invalidArgument("subject is longer than 200 characters");
    if (message.body.trim() === "") throw invalidArgument("message body is blank");
    const now = this.#now();
    const t = { id: "t_" + randomBytes(8).toString("hex"), subject, createdAt: now, updatedAt: now, updatedSeq: 0, members: new Map(), messages: [] };
    t.members.set(userId, { acc: Access.read | Access.write | Access.owner, readSeq: 0 });
    for (const p of participants) if (!t.members.has(p)) t.members.set(p, { acc: Access.read | Access.write, readSeq: 0 });
    this.threads.set(t.id, t);
    const first = this.#store(t, userId, { ...message, clientMessageId: message.clientMessageId || key || undefined });
    if (key) this.createdByKey.set(userId + "\0" + key, { fingerprint, threadId: t.id });
    return { thread: this.#wire(t, userId), threadToken: await this.#token(t, userId), message: first.wire };
  }

  async getThread({ userId, threadId, before, limit }) {
    const t = this.#thread(threadId);
    if (!this.#visible(t, userId)) throw forbidden("you are not a reader of this thread");
    const n = Math.min(limit || DEFAULT_LIMIT, MAX_LIMIT);
    const bound = before ? dec(before) : Infinity;
    const older = t.messages.filter((m) => m.seq < bound);
    const page = older.slice(-n);
    const out = { thread: this.#wire(t, userId), threadToken: await this.#token(t, userId), messages: page.map((m) => m.wire) };
    if (older.length > page.length) out.nextCursor = enc(page[0].seq);
    return out;
  }

  async addThreadMessage(req, ctx) {
    const t = this.#thread(req.threadId);
    const m = t.members.get(req.userId);
    if (!m || (m.acc & Access.write) === 0) throw forbidden("you may not write in this thread");
    if (req.body.trim() === "") throw invalidArgument("message body is blank");
    const key = ctx.idempotencyKey || req.clientMessageId;
    if (key) {
      const prev = t.messages.find((x) => x.key === key && x.wire.authorId === req.userId);
      if (prev) {
        if (prev.wire.body !== req.body) throw conflict("this clientMessageId was used for another message");
        return { message: prev.wire, threadToken: await this.#token(t, req.userId) };
      }
    }
    const stored = this.#store(t, req.userId, { ...req, clientMessageId: key || undefined });
    return { message: stored.wire, threadToken: await this.#token(t, req.userId) };
  }

  async markRead({ userId, threadId, messageId }) {
    const t = this.#thread(threadId);
    const msg = t.messages.find((m) => m.wire.id === messageId);
    if (!msg) throw notFound("no such message in this thread");
    const m = this.#visible(t, userId);
    if (!m) throw forbidden("you are not a reader of this thread");
    m.readSeq = Math.max(m.readSeq, msg.seq);
    const mark = t.messages.filter((x) => x.seq <= m.readSeq).at(-1);
    const unread = t.messages.filter((x) => x.seq > m.readSeq && x.wire.authorId !== userId).length;
    return { messageId: mark.wire.id, unread };
  }

  async addParticipants({ userId, threadId, participants }) {
    const t = this.#thread(threadId);
    const m = t.members.get(userId);
    if (!m || (m.acc & (Access.admin | Access.owner)) === 0) throw forbidden("you may not add members to this thread");
    const contacts = this.contactsOf(userId);
    const added = [];
    for (const p of participants) {
      if (!this.users.has(p)) throw invalidArgument(`unknown participant ${p}`);
      if (t.members.has(p) || added.includes(p)) continue;
      if (!contacts.includes(p)) throw forbidden(`${p} is not your contact`);
      added.push(p);
    }
    if (t.members.size + added.length > MAX_MEMBERS) throw conflict("a thread has at most 101 members");
    for (const p of added) t.members.set(p, { acc: Access.read | Access.write, readSeq: 0 });
    if (added.length > 0) t.updatedAt = this.#now();
    return { thread: this.#wire(t, userId), threadToken: await this.#token(t, userId), added };
  }

  async leaveThread({ userId, threadId }) {
    const t = this.#thread(threadId);
    if (!t.members.has(userId)) throw forbidden("you are not a member of this thread");
    t.members.delete(userId);
    return { thread: this.#wire(t, userId) };
  }
}

/** The required calls only: the optional ones answer 501 (for the contract test). */
export function coreOnly(b) {
  return {
    authenticate: (r, c) => b.authenticate(r, c),
    getContacts: (r, c) => b.getContacts(r, c),
    getThreads: (r, c) => b.getThreads(r, c),
    createThread: (r, c) => b.createThread(r, c),
    getThread: (r, c) => b.getThread(r, c),
    addThreadMessage: (r, c) => b.addThreadMessage(r, c),
  };
}

function readJSON(req, max = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      data += c;
      if (data.length > max) reject(new Error("too large"));
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(data || "{}"));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

function json(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store" }).end(JSON.stringify(body));
}

/**
 * The whole example server as one Node request listener: the contract under
 * /ecb/v1 (core: only the required calls), ECB's callbacks at
 * /ecb/v1/callbacks, and the demo's own POST /login {username, password}
 * -> {accessToken} (not part of the contract). Mount it with
 * http.createServer(listener).
 */
export function createExampleServer({ signer, secret, core = false, logger }) {
  const backend = new ExampleBackend(signer);
  const contract = createHandler(core ? coreOnly(backend) : backend, { secret, basePath: "/ecb/v1", logger });
  const callbacks = createCallbackHandler(
    (ev) => {
      if (!backend.callbacks.has(ev.id)) backend.callbacks.set(ev.id, ev); // dedupe on the id: a retry sends it again
    },
    { secret, logger },
  );
  const listener = async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    try {
      if (path === "/ecb/v1/callbacks") return await callbacks(req, res);
      if (path.startsWith("/ecb/v1/")) return await contract(req, res);
      if (path === "/login" && req.method === "POST") {
        const { username, password } = await readJSON(req);
        const accessToken = backend.login(String(username ?? ""), String(password ?? ""));
        if (!accessToken) return json(res, 401, { error: { code: "unauthenticated", message: "wrong user name or password" } });
        return json(res, 200, { accessToken });
      }
      json(res, 404, { error: { code: "not_found", message: "not found" } });
    } catch (err) {
      if (!res.headersSent) json(res, 400, { error: { code: "invalid_argument", message: String(err?.message ?? err) } });
    }
  };
  return { backend, listener };
}
