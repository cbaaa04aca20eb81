// The ECB demo web app: log in on the reference backend, then chat through ECB
// with @ecb/client. Plain DOM, no framework.
import {
  EcbClient,
  EcbError,
  newClientMessageId,
  type ConnectionEvent,
  type MemberEvent,
  type Message,
  type Presence,
  type PresenceShow,
  type ReadEvent,
  type Thread,
  type ThreadEvent,
  type TypingEvent,
  type User,
} from "@ecb/client";

// ---------- small DOM helpers ----------

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
}

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function show(el: HTMLElement, on: boolean): void {
  el.hidden = !on;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });

function when(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? timeFmt.format(d) : `${dayFmt.format(d)}, ${timeFmt.format(d)}`;
}

function initials(name: string): string {
  return (
    name
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((w) => w[0]!.toUpperCase())
      .join("") || "?"
  );
}

// A stable colour per user for avatars.
function hue(id: string): number {
  let x = 0;
  for (const c of id) x = (x * 31 + c.charCodeAt(0)) % 360;
  return x;
}

function avatar(id: string, name: string, cls = "avatar"): HTMLElement {
  const el = h("span", { class: cls, "aria-hidden": "true" }, initials(name));
  el.style.setProperty("--h", String(hue(id)));
  return el;
}

// ---------- presence ----------

const SHOW_LABEL: Record<string, string> = {
  available: "Available",
  chat: "Free to chat",
  away: "Away",
  xa: "Extended away",
  dnd: "Do not disturb",
  offline: "Offline",
};

function presenceOf(id: string): Presence {
  if (state.me && id === state.me.id) return { userId: id, show: state.myPresence.show, status: state.myPresence.status || undefined };
  return state.presence.get(id) ?? { userId: id, show: "offline" };
}

/** "Away · lunch", "Offline · last seen 14:05", "Available". */
function presenceText(id: string): string {
  const p = presenceOf(id);
  const label = SHOW_LABEL[p.show] ?? p.show;
  if (p.status) return `${label} · ${p.status}`;
  if (p.show === "offline" && p.lastSeen) return `${label} · last seen ${when(p.lastSeen)}`;
  return label;
}

function isOnline(id: string): boolean {
  return presenceOf(id).show !== "offline";
}

/** An avatar with the user's presence dot. */
function userAvatar(id: string, cls = "avatar"): HTMLElement {
  const p = presenceOf(id);
  // Hidden from screen readers: the presence text next to it says the same in words.
  const dot = h("span", { class: "dot", "data-show": p.show, "data-user-id": id, "aria-hidden": "true", title: presenceText(id) });
  return h("span", { class: "avatar-wrap" }, avatar(id, nameOf(id), cls), dot);
}

/** The thread's token says whether this user may add people (owner or admin bit). A UI hint only: ECB decides. */
function mayAddPeople(threadToken: string | undefined): boolean {
  if (!threadToken) return false;
  try {
    const part = threadToken.split(".")[1] ?? "";
    const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { acc?: number };
    return typeof claims.acc === "number" && (claims.acc & (4 | 8)) !== 0;
  } catch {
    return false;
  }
}

// ---------- state ----------

interface DirectoryUser {
  id: string;
  name: string;
  roles?: string[];
}

interface ThreadEntry {
  thread: Thread;
  unread: number;
}

interface Pending {
  clientMessageId: string;
  threadId: string;
  threadToken: string;
  body: string;
  createdAt: string;
  failed?: string;
}

interface Notice {
  at: string;
  text: string;
}

interface History {
  messages: Message[];
  ids: Set<string>;
  nextCursor: string | undefined;
  loaded: boolean;
  loadingOlder: boolean;
  /** Membership changes seen while the thread was live ("Carol joined"). */
  notices: Notice[];
}

const SESSION_KEY = "ecb-demo-session";
const PRESENCE_KEY = "ecb-demo-presence";

const state = {
  backendUrl: "",
  directory: new Map<string, DirectoryUser>(),
  me: null as User | null,
  client: null as EcbClient | null,
  threads: new Map<string, ThreadEntry>(),
  contacts: [] as User[],
  current: null as string | null,
  histories: new Map<string, History>(),
  pending: new Map<string, Pending>(),
  conn: { state: "idle", queued: 0 } as ConnectionEvent,
  presence: new Map<string, Presence>(),
  myPresence: { show: "available" as PresenceShow, status: "" },
  /** threadId → userId → the timer that forgets a typing start nobody stopped. */
  typing: new Map<string, Map<string, ReturnType<typeof setTimeout>>>(),
  /** threadId → userId → the newest message id that user read (read pushes). */
  reads: new Map<string, Map<string, string>>(),
  /** threadId → the message id this user last marked read. */
  marked: new Map<string, string>(),
  markReadOff: false,
};

function nameOf(id: string): string {
  if (state.me && id === state.me.id) return state.me.name;
  return state.directory.get(id)?.name ?? state.contacts.find((c) => c.id === id)?.name ?? id;
}

function threadTitle(t: Thread): string {
  if (t.subject) return t.subject;
  const others = t.members.filter((m) => m !== state.me?.id).map(nameOf);
  return others.join(", ") || "Just you";
}

function history(threadId: string): History {
  let hist = state.histories.get(threadId);
  if (!hist) {
    hist = { messages: [], ids: new Set(), nextCursor: undefined, loaded: false, loadingOlder: false, notices: [] };
    state.histories.set(threadId, hist);
  }
  return hist;
}

/** Adds messages to a thread's history, keyed by id, kept in time order. Returns how many were new. */
function addMessages(threadId: string, msgs: Message[]): number {
  const hist = history(threadId);
  let added = 0;
  for (const m of msgs) {
    if (hist.ids.has(m.id)) continue;
    hist.ids.add(m.id);
    hist.messages.push(m);
    added++;
  }
  // Stable sort by time (then push offset): pages come oldest first, and
  // messages of the same millisecond keep the order they came in.
  if (added) hist.messages.sort((a, b) => ts(a.createdAt) - ts(b.createdAt) || (a.offset ?? 0) - (b.offset ?? 0));
  return added;
}

/** RFC 3339 to milliseconds (the strings do not sort as text: trailing zeros are trimmed). */
function ts(iso: string): number {
  return Date.parse(iso) || 0;
}

/** Keeps the newest of two versions of a thread (answers and pushes may arrive out of order). */
function newer(old: Thread | undefined, next: Thread): Thread {
  if (!old) return next;
  const last = [old.lastMessage, next.lastMessage]
    .filter((m): m is Message => !!m)
    .sort((a, b) => ts(b.createdAt) - ts(a.createdAt))[0];
  const updatedAt = ts(next.updatedAt) >= ts(old.updatedAt) ? next.updatedAt : old.updatedAt;
  return { ...old, ...next, updatedAt, lastMessage: last };
}

// ---------- banner (errors shown to the person) ----------

function banner(text: string | null): void {
  $("banner-text").textContent = text ?? "";
  show($("banner"), !!text);
}

function describe(e: unknown): string {
  if (e instanceof EcbError) {
    switch (e.code) {
      case "backend_unavailable":
        return "The company backend is not answering right now. Please try again in a moment.";
      case "unavailable":
        return "The chat server is busy or restarting. Please try again in a moment.";
      case "unauthenticated":
        return "Your session has expired. Please sign in again.";
      case "forbidden":
        return `Not allowed: ${e.message}`;
      case "rate_limited":
        return `Slow down a little: try again in ${e.retryAfter ?? 1} s.`;
      case "outbox_full":
        return "Too many messages are waiting to be sent. Wait until you are back online.";
      case "timeout":
      case "disconnected":
        return "The chat server cannot be reached right now.";
      default:
        return e.message;
    }
  }
  return e instanceof Error ? e.message : String(e);
}

// ---------- login ----------

async function loadConfig(): Promise<void> {
  const res = await fetch("demo/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`demo/config.json: HTTP ${res.status}`);
  state.backendUrl = ((await res.json()) as { backendUrl: string }).backendUrl;
}

async function loadDirectory(): Promise<void> {
  const res = await fetch(`${state.backendUrl}/users`);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const { users } = (await res.json()) as { users: DirectoryUser[] };
  state.directory = new Map(users.map((u) => [u.id, u]));
}

function renderUserPicker(selected?: string): void {
  const list = $("user-list");
  list.replaceChildren();
  for (const u of state.directory.values()) {
    const id = `user-${u.id}`;
    const input = h("input", { type: "radio", name: "username", id, value: u.id, checked: u.id === selected });
    input.addEventListener("change", () => {
      const pw = $("password") as HTMLInputElement;
      pw.value = u.id; // the demo's hint, prefilled: password = user name
    });
    // The login name under the display name: it is also the demo's password.
    const sub = u.roles?.length ? `${u.id} · ${u.roles.join(", ")}` : u.id;
    list.append(
      h(
        "label",
        { class: "user-choice", for: id },
        input,
        avatar(u.id, u.name),
        h("span", { class: "user-text" }, h("span", { class: "user-name" }, u.name), h("span", { class: "user-id" }, sub)),
      ),
    );
  }
}

function showLogin(message?: string): void {
  show($("app"), false);
  show($("me"), false);
  show($("conn"), false);
  show($("login"), true);
  const err = $("login-error");
  err.textContent = message ?? "";
  show(err, !!message);
  const first = document.querySelector<HTMLInputElement>("#user-list input:checked") ?? document.querySelector<HTMLInputElement>("#user-list input");
  first?.focus();
}

async function onLogin(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const username = (document.querySelector<HTMLInputElement>("#user-list input:checked")?.value ?? "").trim();
  const password = ($("password") as HTMLInputElement).value;
  const err = $("login-error");
  const fail = (msg: string) => {
    err.textContent = msg;
    show(err, true);
  };
  if (!username) return fail("Choose who you are.");
  if (!password) return fail("Enter the password.");
  const submit = $("login-submit") as HTMLButtonElement;
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    let res: Response;
    try {
      res = await fetch(`${state.backendUrl}/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
    } catch {
      return fail(`Cannot reach the backend at ${state.backendUrl}. Is the demo still running?`);
    }
    const body = (await res.json().catch(() => ({}))) as { accessToken?: string; error?: { message?: string } };
    if (!res.ok || !body.accessToken) {
      return fail(res.status === 401 ? "Wrong user name or password." : (body.error?.message ?? `Login failed (HTTP ${res.status}).`));
    }
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ accessToken: body.accessToken, username }));
    show(err, false);
    await start(body.accessToken);
  } finally {
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
}

function logout(message?: string): void {
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(PRESENCE_KEY);
  state.client?.close();
  state.client = null;
  state.me = null;
  state.threads.clear();
  state.histories.clear();
  state.pending.clear();
  state.presence.clear();
  state.reads.clear();
  state.marked.clear();
  clearTyping();
  state.myPresence = { show: "available", status: "" };
  ($("me-status") as HTMLInputElement).value = "";
  state.markReadOff = false;
  state.current = null;
  show($("thread-view"), false);
  show($("thread-empty"), true);
  banner(null);
  showLogin(message);
}

// ---------- the chat ----------

async function start(accessToken: string): Promise<void> {
  const client = new EcbClient({ url: location.origin, accessToken });
  state.client = client;
  client.on("connection", onConnection);
  client.on("session", ({ user }) => {
    state.me = user;
    renderMe();
  });
  client.on("message", ({ threadId, message }) => onMessage(threadId, message));
  client.on("thread", (ev) => onThreadEvent(ev));
  client.on("presence", (p) => onPresence(p));
  client.on("typing", (ev) => onTyping(ev));
  client.on("read", (ev) => onRead(ev));
  client.on("member", (ev) => onMember(ev));
  client.on("error", ({ error, operation, threadId }) => {
    // A thread this user was removed from, or that was deleted, while away: it just goes.
    if (threadId && (error.code === "forbidden" || error.code === "not_found")) dropThread(threadId);
    else if (operation !== "setPresence") banner(describe(error));
  });
  // The presence chosen before a reload (a new connection starts available). The client
  // keeps it and applies it as soon as it is connected (this call itself fails: not yet connected).
  const saved = readSavedPresence();
  if (saved && SHOW_LABEL[saved.show] && (saved.show !== "available" || saved.status)) {
    state.myPresence = { show: saved.show, status: saved.status ?? "" };
    ($("me-status") as HTMLInputElement).value = state.myPresence.status;
    void client.setPresence({ show: saved.show, status: state.myPresence.status }).catch(() => undefined);
  }
  try {
    await client.connect();
  } catch (e) {
    if (client !== state.client) return;
    if (e instanceof EcbError && e.code === "unauthenticated") return logout("Your session has expired. Please sign in again.");
    if (e instanceof EcbError && e.code === "timeout") {
      banner("The chat server cannot be reached. Still trying…");
    } else {
      return logout(describe(e));
    }
  }
  show($("login"), false);
  show($("app"), true);
  show($("me"), true);
  show($("conn"), true);
  renderConn();
  await refreshLists();
  ($("new-thread") as HTMLButtonElement).focus();
}

function renderMe(): void {
  if (!state.me) return;
  $("me-name").textContent = state.me.name;
  const a = $("me-avatar");
  a.textContent = initials(state.me.name);
  a.style.setProperty("--h", String(hue(state.me.id)));
  const dot = $("me-dot");
  dot.dataset.show = state.conn.state === "connected" ? state.myPresence.show : "offline";
  ($("me-show") as HTMLSelectElement).value = state.myPresence.show;
}

async function applyPresence(): Promise<void> {
  const client = state.client;
  if (!client) return;
  const show = ($("me-show") as HTMLSelectElement).value as PresenceShow;
  const status = ($("me-status") as HTMLInputElement).value.trim();
  if (show === state.myPresence.show && status === state.myPresence.status) return;
  state.myPresence = { show, status };
  sessionStorage.setItem(PRESENCE_KEY, JSON.stringify(state.myPresence));
  renderMe();
  try {
    await client.setPresence({ show, status });
  } catch (e) {
    banner(describe(e));
  }
}

function readSavedPresence(): { show: PresenceShow; status?: string } | null {
  try {
    return JSON.parse(sessionStorage.getItem(PRESENCE_KEY) ?? "null") as { show: PresenceShow; status?: string } | null;
  } catch {
    return null;
  }
}

let refreshing: Promise<void> | null = null;
let refreshAgain = false;

/** Reloads contacts and threads; calls made while one runs are folded into one more run. */
function refreshLists(): Promise<void> {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      await loadLists();
    } while (refreshAgain);
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function loadLists(): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    const [contacts, threads] = await Promise.all([client.getContacts({ pageSize: 100 }), client.getThreads({ pageSize: 100 })]);
    state.contacts = contacts.items;
    for (const st of threads.items) {
      const old = state.threads.get(st.thread.id);
      // The backend counts unread messages (read marks): the count survives a reload.
      const unread = old ? old.unread : st.thread.id === state.current ? 0 : (st.thread.unread ?? 0);
      state.threads.set(st.thread.id, { thread: newer(old?.thread, st.thread), unread });
    }
    renderContacts();
    renderThreads();
    void loadPresence();
    // Listen to every thread, so that the list stays live (limit 1: the page is not needed).
    await Promise.all(
      threads.items
        .filter((st) => !client.isListening(st.thread.id))
        .map((st) => client.getThread({ threadToken: st.threadToken, limit: 1 }).catch(() => undefined)),
    );
  } catch (e) {
    banner(describe(e));
  }
}

/** The presence of everyone shown: contacts and the members of this user's threads. */
async function loadPresence(): Promise<void> {
  const client = state.client;
  if (!client || !state.me) return;
  const me = state.me.id;
  const contacts = state.contacts.map((c) => c.id).filter((id) => id !== me);
  const members = new Set<string>();
  for (const { thread } of state.threads.values()) for (const m of thread.members) if (m !== me && !contacts.includes(m)) members.add(m);
  // One request per kind: a name ECB does not let this user see refuses the whole request.
  for (const ids of [contacts, [...members]]) {
    for (let i = 0; i < ids.length; i += 100) {
      try {
        const res = await client.getPresence({ userIds: ids.slice(i, i + 100) });
        for (const p of res.presence) state.presence.set(p.userId, p);
      } catch {
        // not allowed, or not connected: the pushes will tell
      }
    }
  }
  renderPresence();
}

function onPresence(p: Presence): void {
  state.presence.set(p.userId, p);
  renderPresence();
}

/** Re-renders what shows presence. */
function renderPresence(): void {
  renderContacts();
  renderThreads();
  if (state.current) renderThreadHead();
}

function onThreadEvent(ev: ThreadEvent): void {
  if (ev.change === "left" || ev.change === "deleted") {
    // Left on another device, or deleted: it is gone from this one too.
    dropThread(ev.threadId);
    return;
  }
  const entry = state.threads.get(ev.threadId);
  if (entry && ev.thread) {
    entry.thread = newer(entry.thread, ev.thread);
    renderThreads();
    if (state.current === ev.threadId) renderThreadHead();
  }
  if (!entry) void refreshLists(); // created with this user, or this user was added
}

function dropThread(threadId: string): void {
  state.threads.delete(threadId);
  state.histories.delete(threadId);
  state.reads.delete(threadId);
  state.marked.delete(threadId);
  forgetTyping(threadId);
  if (state.current === threadId) {
    state.current = null;
    show($("thread-view"), false);
    show($("thread-empty"), true);
  }
  renderThreads();
}

function onMessage(threadId: string, message: Message): void {
  const entry = state.threads.get(threadId);
  // This user's message may come back (a recovery) before its own answer: no pending copy then.
  if (message.authorId === state.me?.id && message.clientMessageId) state.pending.delete(message.clientMessageId);
  const added = addMessages(threadId, [message]);
  if (!added) return;
  stoppedTyping(threadId, message.authorId); // their message is what they were typing
  if (entry) {
    entry.thread = newer(entry.thread, { ...entry.thread, lastMessage: message, updatedAt: message.createdAt });
    if (message.authorId !== state.me?.id && (threadId !== state.current || document.hidden)) entry.unread++;
  } else {
    void refreshLists();
  }
  renderThreads();
  if (threadId === state.current) {
    renderMessages({ stick: message.authorId === state.me?.id });
    markSeen(threadId);
  }
}

// ---------- typing ----------

function onTyping(ev: TypingEvent): void {
  if (ev.userId === state.me?.id) return;
  if (ev.state === "start") {
    let users = state.typing.get(ev.threadId);
    if (!users) {
      users = new Map();
      state.typing.set(ev.threadId, users);
    }
    const old = users.get(ev.userId);
    if (old) clearTimeout(old);
    // ECB ends a start after 6 s with a stop; this only guards against a stop that never comes.
    users.set(ev.userId, setTimeout(() => stoppedTyping(ev.threadId, ev.userId), 8000));
    renderTyping(ev.threadId);
  } else {
    stoppedTyping(ev.threadId, ev.userId);
  }
}

function stoppedTyping(threadId: string, userId: string): void {
  const users = state.typing.get(threadId);
  const timer = users?.get(userId);
  if (!users || timer === undefined) return;
  clearTimeout(timer);
  users.delete(userId);
  if (!users.size) state.typing.delete(threadId);
  renderTyping(threadId);
}

function forgetTyping(threadId: string): void {
  for (const t of state.typing.get(threadId)?.values() ?? []) clearTimeout(t);
  state.typing.delete(threadId);
}

function clearTyping(): void {
  for (const id of [...state.typing.keys()]) forgetTyping(id);
}

function typingText(threadId: string): string {
  const names = [...(state.typing.get(threadId)?.keys() ?? [])].map(nameOf);
  if (!names.length) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

function renderTyping(threadId: string): void {
  renderThreads();
  if (threadId !== state.current) return;
  const text = typingText(threadId);
  const el = $("typing");
  el.replaceChildren();
  if (text) el.append(h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), h("span", {}, text));
}

// ---------- read marks ----------

function onRead(ev: ReadEvent): void {
  if (ev.userId === state.me?.id) {
    // Read on another device of this user.
    state.marked.set(ev.threadId, ev.messageId);
    const entry = state.threads.get(ev.threadId);
    if (entry?.unread) {
      entry.unread = 0;
      renderThreads();
    }
    return;
  }
  let marks = state.reads.get(ev.threadId);
  if (!marks) {
    marks = new Map();
    state.reads.set(ev.threadId, marks);
  }
  // Read marks only move forward.
  const hist = history(ev.threadId);
  const at = (id: string | undefined) => (id === undefined ? -1 : hist.messages.findIndex((m) => m.id === id));
  const old = marks.get(ev.userId);
  if (old !== undefined && at(old) > at(ev.messageId)) return;
  marks.set(ev.userId, ev.messageId);
  if (ev.threadId === state.current) renderMessages({});
}

/** Marks the open thread read up to its newest message from someone else, once per message. */
function markSeen(threadId: string): void {
  const client = state.client;
  if (!client || state.markReadOff || threadId !== state.current || document.hidden) return;
  const hist = history(threadId);
  const last = [...hist.messages].reverse().find((m) => m.authorId !== state.me?.id);
  const token = client.threadToken(threadId);
  if (!last || !token || state.marked.get(threadId) === last.id) return;
  const lastIndex = hist.messages.indexOf(last);
  const markedIndex = hist.messages.findIndex((m) => m.id === state.marked.get(threadId));
  if (markedIndex > lastIndex) return;
  state.marked.set(threadId, last.id);
  client.markRead({ threadToken: token, messageId: last.id }).catch((e: unknown) => {
    if (e instanceof EcbError && e.code === "not_found") state.markReadOff = true; // the backend keeps no read marks
    else if (state.marked.get(threadId) === last.id) state.marked.delete(threadId); // try again next time
  });
}

/** Who of the others has read message index i of the thread. */
function readersOf(threadId: string, index: number, indexOf: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [userId, messageId] of state.reads.get(threadId) ?? []) {
    const at = indexOf.get(messageId);
    if (at !== undefined && at >= index) out.push(userId);
  }
  return out;
}

// ---------- members ----------

function onMember(ev: MemberEvent): void {
  const entry = state.threads.get(ev.threadId);
  if (!entry) return;
  const members = new Set(entry.thread.members);
  if (ev.change === "joined") members.add(ev.userId);
  else members.delete(ev.userId);
  entry.thread = { ...entry.thread, members: [...members] };
  if (ev.change === "left") stoppedTyping(ev.threadId, ev.userId); // what they read stays read
  const hist = history(ev.threadId);
  hist.notices.push({ at: new Date().toISOString(), text: `${nameOf(ev.userId)} ${ev.change === "joined" ? "joined" : "left"} the thread` });
  renderThreads();
  if (ev.threadId === state.current) {
    renderThreadHead();
    renderMessages({});
  }
  if (ev.change === "joined" && !state.presence.has(ev.userId)) void loadPresence();
}

function onConnection(ev: ConnectionEvent): void {
  const was = state.conn.state;
  state.conn = ev;
  renderConn();
  renderMe();
  if (ev.state !== "connected" && was === "connected") {
    // Typing pushes stop with the connection; presence pushes too (fetched again once back).
    clearTyping();
    if (state.current) renderTyping(state.current);
  }
  if (ev.state === "connected" && was !== "connected" && was !== "connecting" && state.me) void loadPresence();
  if (ev.state === "offline" && ev.error?.code === "unauthenticated") {
    logout("Your session has expired. Please sign in again.");
    return;
  }
  if (ev.state === "offline" && ev.error?.code === "kicked") {
    logout("You were signed out by an administrator.");
    return;
  }
  if (ev.state === "connected") banner(null);
  else if (ev.error && ev.state === "reconnecting") banner(describe(ev.error));
  if (state.current) renderMessages({});
}

function renderConn(): void {
  const { state: s, queued } = state.conn;
  const el = $("conn");
  el.dataset.state = s;
  const q = queued ? ` · ${queued} message${queued === 1 ? "" : "s"} queued` : "";
  const label: Record<string, string> = {
    idle: "Not connected",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    closed: "Disconnected",
  };
  $("conn-text").textContent = (label[s] ?? s) + q;
}

function renderContacts(): void {
  const list = $("contacts");
  list.replaceChildren();
  // Online first, then by name.
  const contacts = [...state.contacts].sort((a, b) => Number(isOnline(b.id)) - Number(isOnline(a.id)) || a.name.localeCompare(b.name));
  for (const c of contacts) {
    const btn = h(
      "button",
      { type: "button", class: "contact", "data-user-id": c.id, title: `Start a thread with ${c.name}` },
      userAvatar(c.id),
      h("span", { class: "contact-text" }, h("span", { class: "contact-name" }, c.name), h("span", { class: "presence-text" }, presenceText(c.id))),
    );
    btn.addEventListener("click", () => openNewDialog([c.id]));
    list.append(h("li", {}, btn));
  }
  if (!state.contacts.length) list.append(h("li", { class: "muted small pad" }, "No contacts."));
}

function renderThreads(): void {
  const list = $("threads");
  const focusedId = (document.activeElement as HTMLElement | null)?.dataset?.threadId;
  list.replaceChildren();
  const entries = [...state.threads.values()].sort((a, b) => ts(b.thread.updatedAt) - ts(a.thread.updatedAt));
  if (!entries.length) list.append(h("li", { class: "muted small pad" }, "No threads yet. Start one!"));
  for (const { thread, unread } of entries) {
    const last = thread.lastMessage;
    const typing = typingText(thread.id);
    const preview = typing || (last ? `${last.authorId === state.me?.id ? "You" : nameOf(last.authorId)}: ${last.body}` : "");
    const others = thread.members.filter((m) => m !== state.me?.id);
    const group = others.length > 1;
    const btn = h(
      "button",
      {
        type: "button",
        class: "thread-item",
        "data-thread-id": thread.id,
        "aria-current": thread.id === state.current ? "true" : undefined,
      },
      group ? groupAvatar(thread) : userAvatar(others[0] ?? thread.id),
      h(
        "span",
        { class: "thread-item-text" },
        h("span", { class: "thread-item-title" }, threadTitle(thread)),
        h("span", { class: `thread-item-preview${typing ? " is-typing" : ""}` }, preview),
      ),
      h(
        "span",
        { class: "thread-item-meta" },
        h("time", { datetime: thread.updatedAt }, when(thread.updatedAt)),
        unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
      ),
    );
    btn.addEventListener("click", () => void openThread(thread.id));
    list.append(h("li", {}, btn));
  }
  if (focusedId) list.querySelector<HTMLElement>(`[data-thread-id="${CSS.escape(focusedId)}"]`)?.focus();
}

/** A group thread's avatar: the first two other members, overlapping. */
function groupAvatar(thread: Thread): HTMLElement {
  const others = thread.members.filter((m) => m !== state.me?.id);
  const el = h("span", { class: "avatar-group", "aria-hidden": "true" });
  for (const m of others.slice(0, 2)) el.append(avatar(m, nameOf(m), "avatar avatar-xs"));
  if (others.length > 2) el.append(h("span", { class: "avatar avatar-xs avatar-more" }, `+${others.length - 2}`));
  return el;
}

async function openThread(threadId: string): Promise<void> {
  const client = state.client;
  const entry = state.threads.get(threadId);
  if (!client || !entry) return;
  if (state.current && state.current !== threadId) client.stopTyping(state.current);
  state.current = threadId;
  entry.unread = 0;
  renderThreads();
  show($("thread-empty"), false);
  show($("thread-view"), true);
  renderThreadHead();
  renderTyping(threadId);
  const hist = history(threadId);
  renderMessages({ stick: true });
  markSeen(threadId);
  ($("composer-input") as HTMLTextAreaElement).focus();
  if (!hist.loaded) {
    const token = client.threadToken(threadId);
    if (!token) return;
    try {
      const page = await client.getThread({ threadToken: token, limit: 30 });
      addMessages(threadId, page.messages);
      hist.nextCursor = page.nextCursor;
      hist.loaded = true;
      entry.thread = newer(entry.thread, page.thread);
      renderThreads();
      if (state.current === threadId) {
        renderThreadHead();
        renderMessages({ stick: true });
        markSeen(threadId);
      }
    } catch (e) {
      banner(describe(e));
    }
  }
}

/** The open thread's title, members (with presence), and actions. */
function renderThreadHead(): void {
  const threadId = state.current;
  const entry = threadId ? state.threads.get(threadId) : undefined;
  if (!threadId || !entry) return;
  const { thread } = entry;
  const me = state.me?.id;
  const others = thread.members.filter((m) => m !== me);
  const group = others.length > 1;
  $("thread-title").textContent = threadTitle(thread);
  $("thread-head-avatar").replaceChildren(group ? groupAvatar(thread) : userAvatar(others[0] ?? threadId));
  const sub = $("thread-sub");
  sub.replaceChildren();
  if (group) {
    const online = thread.members.filter(isOnline).length;
    sub.append(`${thread.members.length} members · ${online} online`);
  } else if (others[0]) {
    sub.append(h("span", { class: "presence-text", "data-user-id": others[0] }, presenceText(others[0])));
  }
  show($("add-people"), mayAddPeople(state.client?.threadToken(threadId)));
  // Members: a panel for group threads, online first, you first of all.
  show($("members-panel"), group);
  $("members-count").textContent = String(thread.members.length);
  const sorted = [...thread.members].sort(
    (a, b) => Number(b === me) - Number(a === me) || Number(isOnline(b)) - Number(isOnline(a)) || nameOf(a).localeCompare(nameOf(b)),
  );
  $("members").replaceChildren(
    ...sorted.map((m) =>
      h(
        "li",
        { class: "member", "data-user-id": m },
        userAvatar(m, "avatar avatar-sm"),
        h(
          "span",
          { class: "member-text" },
          h("span", { class: "member-name" }, m === me ? `${nameOf(m)} (you)` : nameOf(m)),
          h("span", { class: "presence-text" }, presenceText(m)),
        ),
      ),
    ),
  );
}

async function loadOlder(): Promise<void> {
  const client = state.client;
  const threadId = state.current;
  if (!client || !threadId) return;
  const hist = history(threadId);
  const token = client.threadToken(threadId);
  if (!hist.nextCursor || hist.loadingOlder || !token) return;
  hist.loadingOlder = true;
  const scroller = $("scroller");
  const before = scroller.scrollHeight - scroller.scrollTop;
  try {
    const page = await client.getThread({ threadToken: token, before: hist.nextCursor, limit: 30 });
    addMessages(threadId, page.messages);
    hist.nextCursor = page.nextCursor;
  } catch (e) {
    banner(describe(e));
  } finally {
    hist.loadingOlder = false;
  }
  if (state.current === threadId) {
    renderMessages({});
    scroller.scrollTop = scroller.scrollHeight - before; // keep the view where it was
  }
}

function renderMessages({ stick }: { stick?: boolean }): void {
  const threadId = state.current;
  if (!threadId) return;
  const hist = history(threadId);
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const list = $("messages");
  const items: HTMLElement[] = [];
  let prevAuthor = "";
  let prevDay = "";
  const indexOf = new Map(hist.messages.map((m, i) => [m.id, i]));
  const others = (state.threads.get(threadId)?.thread.members ?? []).filter((m) => m !== state.me?.id);
  const notices = [...hist.notices];
  const flushNotices = (until: number) => {
    while (notices.length && ts(notices[0]!.at) <= until) {
      items.push(h("li", { class: "notice", role: "note" }, notices.shift()!.text));
      prevAuthor = "";
    }
  };
  // "Read by …" under the newest of this user's messages that someone has read.
  let receiptAt = -1;
  for (let i = hist.messages.length - 1; i >= 0; i--) {
    if (hist.messages[i]!.authorId === state.me?.id && readersOf(threadId, i, indexOf).length) {
      receiptAt = i;
      break;
    }
  }
  hist.messages.forEach((m, i) => {
    flushNotices(ts(m.createdAt));
    const day = new Date(m.createdAt).toDateString();
    if (day !== prevDay) {
      items.push(h("li", { class: "day", role: "presentation" }, dayFmt.format(new Date(m.createdAt))));
      prevDay = day;
      prevAuthor = "";
    }
    const readers = m.authorId === state.me?.id ? readersOf(threadId, i, indexOf) : [];
    items.push(renderMessage(m, m.authorId === prevAuthor, readers, others));
    if (i === receiptAt) {
      const text = others.length > 1 && others.every((o) => readers.includes(o)) ? "Read by everyone" : `Read by ${readers.map(nameOf).join(", ")}`;
      items.push(h("li", { class: "receipt", role: "note" }, text));
    }
    prevAuthor = m.authorId;
  });
  flushNotices(Infinity);
  for (const p of state.pending.values()) if (p.threadId === threadId) items.push(renderPending(p));
  list.replaceChildren(...items);
  show($("load-older"), !!hist.nextCursor);
  ($("load-older") as HTMLButtonElement).disabled = hist.loadingOlder;
  show($("history-start"), hist.loaded && !hist.nextCursor && hist.messages.length > 0);
  if (stick || atBottom) scroller.scrollTop = scroller.scrollHeight;
}

/** A check mark (sent) or two (read), as an inline SVG. */
function checks(double: boolean): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", double ? "0 0 22 12" : "0 0 16 12");
  svg.setAttribute("width", double ? "20" : "14");
  svg.setAttribute("height", "11");
  svg.setAttribute("aria-hidden", "true");
  const marks = double ? ["M1 6.5 4.8 10 12 2", "M8.5 8.8 10 10 17.2 2"] : ["M2 6.5 5.8 10 13.5 2"];
  for (const d of marks) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function renderMessage(m: Message, continued: boolean, readers: string[], others: string[]): HTMLElement {
  const mine = m.authorId === state.me?.id;
  let tick: HTMLElement | null = null;
  if (mine) {
    // ✓ sent (ECB acknowledged it: the backend stored it); ✓✓ read by the other side
    // (in a group: by everyone when bright, by some when dim).
    const label = readers.length ? `Read by ${readers.map(nameOf).join(", ")}` : "Sent";
    const all = readers.length > 0 && others.every((o) => readers.includes(o));
    tick = h("span", { class: "tick", role: "img", "data-state": readers.length ? (all ? "read" : "partly-read") : "sent", title: label, "aria-label": label });
    tick.append(checks(readers.length > 0));
  }
  return h(
    "li",
    { class: `msg${mine ? " mine" : ""}${continued ? " cont" : ""}`, "data-id": m.id },
    continued ? h("span", { class: "avatar-gap", "aria-hidden": "true" }) : avatar(m.authorId, nameOf(m.authorId)),
    h(
      "div",
      { class: "bubble", title: new Date(m.createdAt).toLocaleString() },
      continued ? null : h("div", { class: "msg-head" }, h("span", { class: "msg-author" }, mine ? "You" : nameOf(m.authorId)), h("time", { datetime: m.createdAt }, when(m.createdAt))),
      tick ? h("div", { class: "msg-line" }, h("p", { class: "msg-body" }, m.body), tick) : h("p", { class: "msg-body" }, m.body),
    ),
  );
}

function renderPending(p: Pending): HTMLElement {
  const connected = state.conn.state === "connected";
  const status = p.failed ? `Not sent: ${p.failed}` : connected ? "Sending…" : "Queued: will be sent when you are back online";
  const retry = p.failed ? h("button", { type: "button", class: "btn btn-ghost btn-sm" }, "Retry") : null;
  retry?.addEventListener("click", () => {
    p.failed = undefined;
    void deliver(p);
  });
  return h(
    "li",
    { class: `msg mine pending${p.failed ? " failed" : ""}`, "data-client-id": p.clientMessageId },
    avatar(state.me?.id ?? "", state.me?.name ?? ""),
    h(
      "div",
      { class: "bubble" },
      h("div", { class: "msg-head" }, h("span", { class: "msg-author" }, "You"), h("span", { class: "msg-status" }, status), retry),
      h("p", { class: "msg-body" }, p.body),
    ),
  );
}

async function deliver(p: Pending): Promise<void> {
  const client = state.client;
  if (!client) return;
  state.pending.set(p.clientMessageId, p);
  if (state.current === p.threadId) renderMessages({ stick: true });
  try {
    // The same clientMessageId on every try: ECB's backend stores the message once.
    const res = await client.sendMessage({ threadToken: client.threadToken(p.threadId) ?? p.threadToken, body: p.body, clientMessageId: p.clientMessageId });
    state.pending.delete(p.clientMessageId);
    onMessage(p.threadId, res.message);
    if (state.current === p.threadId) renderMessages({ stick: true });
  } catch (e) {
    if (e instanceof EcbError && e.code === "closed") return;
    p.failed = describe(e);
    if (state.current === p.threadId) renderMessages({});
  }
}

function onSend(ev: Event): void {
  ev.preventDefault();
  const input = $("composer-input") as HTMLTextAreaElement;
  const body = input.value.trim();
  const threadId = state.current;
  const client = state.client;
  if (!body || !threadId || !client) return;
  const token = client.threadToken(threadId);
  if (!token) return;
  input.value = "";
  autosize(input);
  void deliver({ clientMessageId: newClientMessageId(), threadId, threadToken: token, body, createdAt: new Date().toISOString() });
}

function autosize(t: HTMLTextAreaElement): void {
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

// ---------- new thread dialog ----------

function openNewDialog(preselect: string[] = []): void {
  const people = $("new-people");
  people.replaceChildren();
  for (const c of state.contacts) {
    const id = `new-with-${c.id}`;
    people.append(
      h(
        "label",
        { class: "person", for: id },
        h("input", { type: "checkbox", id, value: c.id, checked: preselect.includes(c.id) }),
        avatar(c.id, c.name),
        h("span", {}, c.name),
      ),
    );
  }
  ($("new-subject") as HTMLInputElement).value = "";
  ($("new-body") as HTMLTextAreaElement).value = "";
  show($("new-error"), false);
  const dialog = $("new-dialog") as HTMLDialogElement;
  dialog.showModal();
  (preselect.length ? ($("new-subject") as HTMLInputElement) : people.querySelector("input"))?.focus();
}

async function onCreate(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = state.client;
  if (!client) return;
  const participants = [...document.querySelectorAll<HTMLInputElement>("#new-people input:checked")].map((i) => i.value);
  const subject = ($("new-subject") as HTMLInputElement).value.trim();
  const body = ($("new-body") as HTMLTextAreaElement).value.trim();
  const err = $("new-error");
  const fail = (msg: string) => {
    err.textContent = msg;
    show(err, true);
  };
  if (!participants.length) return fail("Choose at least one person.");
  if (!body) return fail("Write a first message.");
  const submit = $("new-submit") as HTMLButtonElement;
  submit.disabled = true;
  try {
    const res = await client.createThread({ participants, subject: subject || undefined, message: { body } });
    state.threads.set(res.thread.id, { thread: newer(state.threads.get(res.thread.id)?.thread, { ...res.thread, lastMessage: res.message }), unread: 0 });
    const hist = history(res.thread.id);
    addMessages(res.thread.id, [res.message]);
    hist.loaded = true;
    ($("new-dialog") as HTMLDialogElement).close();
    await openThread(res.thread.id);
  } catch (e) {
    fail(describe(e));
  } finally {
    submit.disabled = false;
  }
}

// ---------- add people, leave ----------

function openAddDialog(): void {
  const entry = state.current ? state.threads.get(state.current) : undefined;
  if (!entry) return;
  const list = $("add-people-list");
  list.replaceChildren();
  const candidates = state.contacts.filter((c) => !entry.thread.members.includes(c.id));
  for (const c of candidates) {
    const id = `add-${c.id}`;
    list.append(
      h("label", { class: "person", for: id }, h("input", { type: "checkbox", id, value: c.id }), userAvatar(c.id, "avatar"), h("span", {}, c.name)),
    );
  }
  if (!candidates.length) list.append(h("p", { class: "muted" }, "Everyone in your contacts is already here."));
  $("add-intro").textContent = `They will see “${threadTitle(entry.thread)}” and its history.`;
  ($("add-submit") as HTMLButtonElement).disabled = !candidates.length;
  show($("add-error"), false);
  ($("add-dialog") as HTMLDialogElement).showModal();
  list.querySelector("input")?.focus();
}

async function onAdd(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = state.client;
  const threadId = state.current;
  const token = threadId ? client?.threadToken(threadId) : undefined;
  if (!client || !threadId || !token) return;
  const participants = [...document.querySelectorAll<HTMLInputElement>("#add-people-list input:checked")].map((i) => i.value);
  const err = $("add-error");
  if (!participants.length) {
    err.textContent = "Choose at least one person.";
    show(err, true);
    return;
  }
  const submit = $("add-submit") as HTMLButtonElement;
  submit.disabled = true;
  try {
    const res = await client.addParticipants({ threadToken: token, participants });
    const entry = state.threads.get(threadId);
    if (entry) entry.thread = newer(entry.thread, res.thread);
    ($("add-dialog") as HTMLDialogElement).close();
    renderThreads();
    if (state.current === threadId) renderThreadHead();
    void loadPresence();
  } catch (e) {
    err.textContent = describe(e);
    show(err, true);
  } finally {
    submit.disabled = false;
  }
}

function openLeaveDialog(): void {
  const entry = state.current ? state.threads.get(state.current) : undefined;
  if (!entry) return;
  $("leave-text").textContent = `You will stop receiving the messages of “${threadTitle(entry.thread)}”, and it leaves your list.`;
  show($("leave-error"), false);
  ($("leave-dialog") as HTMLDialogElement).showModal();
  ($("leave-cancel") as HTMLButtonElement).focus();
}

async function onLeave(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = state.client;
  const threadId = state.current;
  const token = threadId ? client?.threadToken(threadId) : undefined;
  if (!client || !threadId || !token) return;
  const submit = $("leave-submit") as HTMLButtonElement;
  submit.disabled = true;
  try {
    await client.leaveThread({ threadToken: token });
    ($("leave-dialog") as HTMLDialogElement).close();
    dropThread(threadId);
  } catch (e) {
    $("leave-error").textContent = describe(e);
    show($("leave-error"), true);
  } finally {
    submit.disabled = false;
  }
}

// ---------- wiring ----------

function wire(): void {
  $("login-form").addEventListener("submit", (e) => void onLogin(e as SubmitEvent));
  $("logout").addEventListener("click", () => logout());
  $("banner-close").addEventListener("click", () => banner(null));
  $("new-thread").addEventListener("click", () => openNewDialog());
  $("new-cancel").addEventListener("click", () => ($("new-dialog") as HTMLDialogElement).close());
  $("new-form").addEventListener("submit", (e) => void onCreate(e as SubmitEvent));
  $("composer").addEventListener("submit", onSend);
  $("add-people").addEventListener("click", openAddDialog);
  $("add-cancel").addEventListener("click", () => ($("add-dialog") as HTMLDialogElement).close());
  $("add-form").addEventListener("submit", (e) => void onAdd(e as SubmitEvent));
  $("leave-thread").addEventListener("click", openLeaveDialog);
  $("leave-cancel").addEventListener("click", () => ($("leave-dialog") as HTMLDialogElement).close());
  $("leave-form").addEventListener("submit", (e) => void onLeave(e as SubmitEvent));
  $("me-show").addEventListener("change", () => void applyPresence());
  $("presence-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void applyPresence();
  });
  $("me-status").addEventListener("change", () => void applyPresence());
  $("load-older").addEventListener("click", () => void loadOlder());
  $("scroller").addEventListener("scroll", () => {
    if ($("scroller").scrollTop < 40) void loadOlder();
  });
  const input = $("composer-input") as HTMLTextAreaElement;
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) onSend(e);
  });
  input.addEventListener("input", () => {
    autosize(input);
    if (!state.current) return;
    if (input.value.trim()) state.client?.noteTyping(state.current);
    else state.client?.stopTyping(state.current);
  });
  input.addEventListener("blur", () => {
    if (state.current && !input.value.trim()) state.client?.stopTyping(state.current);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.current) {
      const entry = state.threads.get(state.current);
      if (entry?.unread) {
        entry.unread = 0;
        renderThreads();
      }
      markSeen(state.current);
    }
  });
}

async function main(): Promise<void> {
  wire();
  try {
    await loadConfig();
  } catch (e) {
    show($("login"), true);
    $("user-list").replaceChildren(h("p", { class: "form-error" }, `This page is served by ECB's demo; its configuration could not be read (${describe(e)}).`));
    return;
  }
  try {
    await loadDirectory();
  } catch {
    show($("login"), true);
    $("user-list").replaceChildren(h("p", { class: "form-error" }, `Cannot reach the backend at ${state.backendUrl}. Is the demo still running?`));
    return;
  }
  const saved = sessionStorage.getItem(SESSION_KEY);
  const session = saved ? (JSON.parse(saved) as { accessToken: string; username: string }) : null;
  renderUserPicker(session?.username ?? state.directory.keys().next().value);
  const checked = document.querySelector<HTMLInputElement>("#user-list input:checked");
  if (checked) ($("password") as HTMLInputElement).value = checked.value;
  if (session) await start(session.accessToken);
  else showLogin();
}

void main();
