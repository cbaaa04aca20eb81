// The ECB demo web app: log in on the reference backend, then chat through ECB
// with @ecb/client. Plain DOM, no framework. Besides the chat: customer
// support (docs/support.md), as an anonymous visitor's widget (#visitor), an
// agent console (role agent) and a supervisor view (role supervisor).
import {
  EcbClient,
  EcbError,
  newClientMessageId,
  type ConnectionEvent,
  type InvitationEvent,
  type MemberEvent,
  type Message,
  type MessageChangeResult,
  type ReactionCount,
  type ReactionEvent,
  type ReplyQuote,
  type SearchHit,
  type OfferEvent,
  type OfferRevokedEvent,
  type Presence,
  type PresenceShow,
  type QueueEvent,
  type ReadEvent,
  type SupportConversation,
  type SupportEndedEvent,
  type SupportTransferredEvent,
  type SupportVisitor,
  type Thread,
  type ThreadEvent,
  type TypingEvent,
  type User,
  type WorkgroupStatus,
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

/** A JWT's claims, read without verifying (UI hints only: ECB verifies and decides). */
function tokenClaims(token: string | undefined): Record<string, unknown> {
  if (!token) return {};
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as unknown;
    return claims && typeof claims === "object" ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** The thread's token says whether this user may add people (owner or admin bit). A UI hint only: ECB decides. */
function mayAddPeople(threadToken: string | undefined): boolean {
  const acc = tokenClaims(threadToken).acc;
  return typeof acc === "number" && (acc & (4 | 8)) !== 0;
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
  /** A message after this user's read mark mentions them (protocol 1.5): the "@" badge. */
  mentioned?: boolean;
  /** A support chat a supervisor monitors: not a member, no threadToken, pushes only. */
  monitor?: boolean;
}

interface Pending {
  clientMessageId: string;
  threadId: string;
  threadToken: string;
  body: string;
  createdAt: string;
  failed?: string;
  /** A whisper (agents and supervisors only). */
  whisper?: boolean;
  /** The id of the message this one replies to (protocol 1.4), and its quote shown while it is sent. */
  replyTo?: string;
  quote?: ReplyQuote;
  /** The members the body mentions (protocol 1.5). */
  mentions?: string[];
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
  /** Display names learned elsewhere than the directory: support visitors (offers, conversations). */
  names: new Map<string, string>(),
  /** The userToken's roles (agent, supervisor) and workgroups. */
  roles: new Set<string>(),
  workgroups: [] as string[],
  /** The public threads the backend lists that this user may join (protocol 1.3). */
  publicThreads: [] as Thread[],
  /** What the composer does besides sending (protocol 1.4): reply to a message, or edit one of this user's. */
  composing: null as { kind: "reply" | "edit"; threadId: string; messageId: string } | null,
  /** The message whose reaction picker is open. */
  reacting: null as string | null,
  /** The message a search hit opened, marked for a moment. */
  flash: null as string | null,
};

function nameOf(id: string): string {
  if (state.me && id === state.me.id) return state.me.name;
  const known = state.directory.get(id)?.name ?? state.names.get(id) ?? state.contacts.find((c) => c.id === id)?.name;
  // The reference backend's anonymous visitors have ids "anon_…" and no directory entry.
  return known ?? (id.startsWith("anon_") ? "Guest" : id);
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
  const cfg = (await res.json()) as { backendUrl: string; node?: string };
  state.backendUrl = cfg.backendUrl;
  if (cfg.node) {
    // Cluster mode (ecb demo --nodes N): say which node serves this page.
    const badge = document.getElementById("node-badge");
    if (badge) {
      badge.textContent = `on ${cfg.node}`;
      badge.hidden = false;
    }
  }
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
  show($("visitor"), false);
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
  state.reacting = null;
  state.flash = null;
  setComposing(null);
  ($("msg-search") as HTMLInputElement).value = "";
  renderMessageHits([]);
  stopSupportConsole();
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
    if (!$("app").hidden) startSupportConsole(client); // connect() had timed out: the roles come with the session
  });
  client.on("message", ({ threadId, message }) => onMessage(threadId, message));
  client.on("thread", (ev) => onThreadEvent(ev));
  client.on("presence", (p) => onPresence(p));
  client.on("typing", (ev) => onTyping(ev));
  client.on("read", (ev) => onRead(ev));
  client.on("member", (ev) => onMember(ev));
  client.on("contact", ({ change, user }) => onContactChange(change, user));
  client.on("profile", ({ user }) => {
    state.contacts = state.contacts.map((c) => (c.id === user.id ? user : c));
  });
  client.on("messageDeleted", (ev) => onMessageDeleted(ev.threadId, ev.messageId));
  client.on("messageEdited", (ev) => onMessageChanged(ev.threadId, ev.message, { push: true }));
  client.on("reaction", (ev) => onReaction(ev));
  client.on("mention", ({ threadId, message }) => onMention(threadId, message));
  client.on("error", ({ error, operation, threadId }) => {
    if (operation === "support.monitor" && threadId) {
      monitorLost(threadId); // the chat ended while the connection was away
      return;
    }
    if (operation === "agent.setAvailability") {
      availabilityLost(error);
      return;
    }
    // A thread this user was removed from, or that was deleted, while away: it just goes.
    if (threadId && (error.code === "forbidden" || error.code === "not_found")) dropThread(threadId);
    else if (operation !== "setPresence") banner(describe(error));
  });
  listenSupport(client);
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
  startSupportConsole(client);
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
      const mentioned = old ? old.mentioned : st.thread.id !== state.current && st.thread.mentioned === true;
      state.threads.set(st.thread.id, { thread: newer(old?.thread, st.thread), unread, mentioned });
    }
    renderContacts();
    renderThreads();
    void loadPublicThreads();
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
  if (ev.change === "left" || ev.change === "deleted" || ev.change === "removed") {
    // Left on another device, deleted, or removed by a moderator: it is gone from this one too.
    const title = state.threads.get(ev.threadId);
    dropThread(ev.threadId);
    if (ev.change !== "left" && ev.by && ev.by !== state.me?.id) {
      banner(`${nameOf(ev.by)} ${ev.change === "removed" ? "removed you from" : "deleted"} ${title ? threadTitle(title.thread) : "a thread"}.`);
    }
    void loadPublicThreads();
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
  // Out of a support chat's thread (left, removed): the chat is over for this user.
  const chat = chatOfThread(threadId);
  if (chat && !chat.ended) {
    chat.ended = "You are no longer in this chat.";
    saveSupportChats();
    renderAgentStatus();
  }
  state.threads.delete(threadId);
  state.histories.delete(threadId);
  state.reads.delete(threadId);
  state.marked.delete(threadId);
  forgetTyping(threadId);
  if (state.composing?.threadId === threadId) setComposing(null);
  if (state.current === threadId) {
    state.current = null;
    show($("thread-view"), false);
    show($("thread-empty"), true);
  }
  renderThreads();
}

/**
 * Someone mentioned this user (protocol 1.5): the push comes whether or not this page listens to
 * the thread. The thread gets the "@" badge until it is read, and a notice says who and where.
 */
function onMention(threadId: string, message: Message): void {
  const entry = state.threads.get(threadId);
  if (!entry) {
    void refreshLists(); // a thread this page does not list yet; getThreads says `mentioned`
    return;
  }
  if (threadId === state.current && !document.hidden) return; // being read now
  entry.mentioned = true;
  renderThreads();
  notify(`${nameOf(message.authorId)} mentioned you in ${threadTitle(entry.thread)}`);
}

let mentionNoticeTimer: ReturnType<typeof setTimeout> | undefined;

/** Shows a short notice above the thread list (a live region: screen readers read it). */
function notify(text: string): void {
  const el = $("mention-notice");
  el.textContent = text;
  show(el, true);
  clearTimeout(mentionNoticeTimer);
  mentionNoticeTimer = setTimeout(() => show(el, false), 8000);
}

/** The user ids a composed body mentions: "@id" or "@Name" (first name) of the thread's other members, at most 20. */
function mentionsIn(threadId: string, body: string): string[] | undefined {
  const members = (state.threads.get(threadId)?.thread.members ?? []).filter((m) => m !== state.me?.id);
  const out: string[] = [];
  for (const [, word] of body.matchAll(/(?:^|\s)@([\p{L}\p{N}_.-]+)/gu)) {
    const w = word.replace(/[.-]+$/, "").toLowerCase();
    const id = members.find((m) => m.toLowerCase() === w || nameOf(m).split(/\s+/)[0].toLowerCase() === w);
    if (id && !out.includes(id) && out.length < 20) out.push(id);
  }
  return out.length ? out : undefined;
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
  if (threadId === visitor.threadId) renderVisitorTyping();
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
    if (entry?.unread || entry?.mentioned) {
      entry.unread = 0;
      entry.mentioned = false;
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
  if (ev.change !== "joined") stoppedTyping(ev.threadId, ev.userId); // what they read stays read
  const hist = history(ev.threadId);
  // removed with no by: the backend removed them (Server API).
  const removed = ev.by ? `was removed by ${nameOf(ev.by)}` : "was removed";
  const what = ev.change === "joined" ? "joined the thread" : ev.change === "removed" ? removed : "left the thread";
  hist.notices.push({ at: new Date().toISOString(), text: `${nameOf(ev.userId)} ${what}` });
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
  // Live and monitored support chats are listed by the support console, not here (once it
  // ended, a chat is a thread like the others).
  const live = (threadId: string) => {
    const chat = chatOfThread(threadId);
    return !!chat && !chat.ended;
  };
  const entries = [...state.threads.values()].filter((e) => !e.monitor && !live(e.thread.id)).sort((a, b) => ts(b.thread.updatedAt) - ts(a.thread.updatedAt));
  if (!entries.length) list.append(h("li", { class: "muted small pad" }, "No threads yet. Start one!"));
  for (const { thread, unread, mentioned } of entries) {
    const last = thread.lastMessage;
    const typing = typingText(thread.id);
    const preview = typing || (last ? `${last.authorId === state.me?.id ? "You" : nameOf(last.authorId)}: ${last.deleted ? "message deleted" : last.body}` : "");
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
        mentioned ? h("span", { class: "badge badge-mention", title: "You were mentioned", "aria-label": "you were mentioned" }, "@") : null,
        unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
      ),
    );
    btn.addEventListener("click", () => void openThread(thread.id));
    list.append(h("li", {}, btn));
  }
  if (focusedId) list.querySelector<HTMLElement>(`[data-thread-id="${CSS.escape(focusedId)}"]`)?.focus();
  renderSupportChats(); // the same previews (typing, last message, unread) in the support console
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
  // Whispering is a choice per message and chat: another chat starts public; so are a reply and an edit.
  if (state.current !== threadId) {
    ($("whisper") as HTMLInputElement).checked = false;
    state.reacting = null;
    if (state.composing) setComposing(null);
  }
  state.current = threadId;
  entry.unread = 0;
  entry.mentioned = false;
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
  const chat = chatOfThread(threadId);
  if (chat) {
    // A support chat: who asked, and who answers (a guest's presence is not shared).
    const helpers = thread.members.filter((m) => m !== me && m !== chat.visitor.id).map(nameOf);
    sub.replaceChildren(`Customer support · asked by ${visitorName(chat.visitor)}${helpers.length ? ` · with ${helpers.join(", ")}` : ""}`);
  }
  // A support chat takes people through the support operations (invite, transfer, join).
  show($("add-people"), !chat && !entry.monitor && mayAddPeople(state.client?.threadToken(threadId)));
  renderSupportBar(threadId);
  // Members: a panel for group threads, online first, you first of all (not for a monitor: not a member).
  show($("members-panel"), group && !entry.monitor);
  $("members-count").textContent = String(thread.members.length);
  const sorted = [...thread.members].sort(
    (a, b) => Number(b === me) - Number(a === me) || Number(isOnline(b)) - Number(isOnline(a)) || nameOf(a).localeCompare(nameOf(b)),
  );
  // A moderator (admin or owner bit) may remove the others; the backend keeps the owner in.
  const moderator = !chat && mayAddPeople(state.client?.threadToken(threadId));
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
        moderator && m !== me ? removeButton(threadId, m) : null,
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
  // A message's buttons are drawn anew: the one that had the focus gets it back.
  const focusKey = list.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.key : undefined;
  list.replaceChildren(...messageItems(threadId));
  if (focusKey) list.querySelector<HTMLElement>(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
  show($("load-older"), !!hist.nextCursor);
  ($("load-older") as HTMLButtonElement).disabled = hist.loadingOlder;
  // A monitored chat shows only what came since monitoring began: not the start of it.
  show($("history-start"), hist.loaded && !hist.nextCursor && hist.messages.length > 0 && !state.threads.get(threadId)?.monitor);
  if (stick || atBottom) scroller.scrollTop = scroller.scrollHeight;
}

/** A thread's messages as list items: day separators, notices, read receipts, pending sends. */
function messageItems(threadId: string): HTMLElement[] {
  const hist = history(threadId);
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
    const m = hist.messages[i]!;
    if (m.authorId === state.me?.id && m.visibility !== "agents" && readersOf(threadId, i, indexOf).length) {
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
    // A whisper always shows its head (author and the "internal" mark), and is never continued.
    // It has no read ticks: read marks are positions, and the visitor reads past whispers they never get.
    const whisper = m.visibility === "agents";
    const readers = m.authorId === state.me?.id && !whisper ? readersOf(threadId, i, indexOf) : [];
    items.push(renderMessage(m, !whisper && m.authorId === prevAuthor, readers, others));
    if (i === receiptAt) {
      const text = others.length > 1 && others.every((o) => readers.includes(o)) ? "Read by everyone" : `Read by ${readers.map(nameOf).join(", ")}`;
      items.push(h("li", { class: "receipt", role: "note" }, text));
    }
    prevAuthor = whisper ? "" : m.authorId;
  });
  flushNotices(Infinity);
  for (const p of state.pending.values()) if (p.threadId === threadId) items.push(renderPending(p));
  return items;
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
  const whisper = m.visibility === "agents";
  // "(edited)" beside the body, not in it: the body is the text as its author wrote it last.
  const edited = m.editedAt && !m.deleted ? h("span", { class: "msg-edited", title: `Edited ${new Date(m.editedAt).toLocaleString()}` }, "(edited)") : null;
  const body = m.deleted ? h("p", { class: "msg-body msg-deleted" }, "Message deleted") : h("p", { class: "msg-body" }, m.body);
  return h(
    "li",
    {
      class: `msg${mine ? " mine" : ""}${continued ? " cont" : ""}${whisper ? " whisper" : ""}${state.flash === m.id ? " flash" : ""}${!mine && state.me && m.mentions?.includes(state.me.id) ? " mentions-me" : ""}`,
      "data-id": m.id,
    },
    continued ? h("span", { class: "avatar-gap", "aria-hidden": "true" }) : avatar(m.authorId, nameOf(m.authorId)),
    h(
      "div",
      { class: "bubble", title: new Date(m.createdAt).toLocaleString() },
      continued
        ? null
        : h(
            "div",
            { class: "msg-head" },
            h("span", { class: "msg-author" }, mine ? "You" : nameOf(m.authorId)),
            whisper ? whisperTag() : null,
            h("time", { datetime: m.createdAt }, when(m.createdAt)),
          ),
      m.replyTo ? quoteOf(m.replyTo) : null,
      tick || edited ? h("div", { class: "msg-line" }, body, edited, tick) : body,
      m.deleted ? null : attachmentsOf(m),
      m.deleted ? null : reactionsOf(m),
    ),
    messageActions(m),
  );
}

// ---------- edits, reactions, replies (protocol 1.4) ----------

/** The reactions a person picks from (ECB's allow-list, when configured, has the last word). */
const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/** The quote of the message a reply answers: its author and a short excerpt, or that it was deleted. */
function quoteOf(q: ReplyQuote): HTMLElement {
  const who = q.authorId ? (q.authorId === state.me?.id ? "You" : nameOf(q.authorId)) : "";
  const text = q.deleted ? "Original message deleted" : (q.excerpt ?? "");
  const btn = h(
    "button",
    { type: "button", class: "msg-quote", "data-reply-to": q.messageId, title: "Show the message this replies to" },
    who ? h("span", { class: "msg-quote-author" }, who) : null,
    h("span", { class: `msg-quote-text${q.deleted ? " msg-deleted" : ""}` }, text),
  );
  btn.addEventListener("click", () => showMessage(q.messageId));
  return btn;
}

/** Scrolls the open thread to a message (when it is loaded) and marks it for a moment. */
function showMessage(messageId: string): void {
  const el = $("messages").querySelector<HTMLElement>(`[data-id="${CSS.escape(messageId)}"]`);
  if (!el) return;
  state.flash = messageId;
  el.classList.add("flash");
  el.scrollIntoView({ block: "center" });
  setTimeout(() => {
    if (state.flash !== messageId) return;
    state.flash = null;
    $("messages").querySelector(`[data-id="${CSS.escape(messageId)}"]`)?.classList.remove("flash");
  }, 2000);
}

/** A message's reactions as chips (one per reaction: its count, pressed when this user reacted), and the picker when open. */
function reactionsOf(m: Message): HTMLElement | null {
  const token = state.client?.threadToken(m.threadId);
  const shown = (m.reactions ?? []).filter((r) => r.count > 0);
  const picking = state.reacting === m.id && !!token;
  if (!shown.length && !picking) return null;
  const chips = shown.map((r) => {
    // Without a token (a monitor, the visitor's widget) the counts are shown, not offered.
    if (!token) return h("span", { class: "reaction", role: "img", "aria-label": `${r.reaction} ${r.count}`, title: `${r.reaction} ${r.count}`, "data-reaction": r.reaction }, h("span", { class: "reaction-emoji", "aria-hidden": "true" }, r.reaction), h("span", { class: "reaction-count", "aria-hidden": "true" }, String(r.count)));
    const label = `${r.reaction} ${r.count}${r.me ? ", including you: take yours back" : ": react too"}`;
    const chip = h(
      "button",
      { type: "button", class: "reaction", "aria-pressed": r.me ? "true" : "false", "aria-label": label, title: label, "data-reaction": r.reaction, "data-key": `${m.id}:r:${r.reaction}` },
      h("span", { class: "reaction-emoji", "aria-hidden": "true" }, r.reaction),
      h("span", { class: "reaction-count", "aria-hidden": "true" }, String(r.count)),
    );
    chip.addEventListener("click", () => void toggleReaction(m, r.reaction, !r.me));
    return chip;
  });
  const picker = picking
    ? h(
        "span",
        { class: "reaction-picker", role: "group", "aria-label": "Pick a reaction" },
        ...REACTIONS.map((r) => {
          const btn = h("button", { type: "button", class: "reaction-pick", "aria-label": `React with ${r}`, title: `React with ${r}`, "data-key": `${m.id}:pick:${r}` }, r);
          btn.addEventListener("click", () => {
            state.reacting = null;
            const mine = m.reactions?.find((x) => x.reaction === r)?.me;
            // The picked reaction's chip takes the focus (the picker goes).
            const focusChip = () => $("messages").querySelector<HTMLElement>(`[data-key="${CSS.escape(`${m.id}:r:${r}`)}"]`)?.focus();
            if (mine) {
              renderMessages({});
              focusChip();
            } else void toggleReaction(m, r, true).then(focusChip);
          });
          btn.addEventListener("keydown", (e) => {
            if (e.key !== "Escape") return;
            state.reacting = null;
            renderMessages({});
            $("messages").querySelector<HTMLElement>(`[data-key="${CSS.escape(`${m.id}:react`)}"]`)?.focus();
          });
          return btn;
        }),
      )
    : null;
  return h("div", { class: "msg-reactions" }, ...chips, picker);
}

/** Reply, react and edit (own messages), and delete: for members of the thread (a monitor has no token). */
function messageActions(m: Message): HTMLElement | null {
  const token = state.client?.threadToken(m.threadId);
  if (m.deleted || !token) return null;
  const mine = m.authorId === state.me?.id;
  const action = (key: string, label: string, glyph: string, onClick: () => void, expanded?: boolean) => {
    const btn = h(
      "button",
      { type: "button", class: "msg-action", "aria-label": label, title: label, "data-key": `${m.id}:${key}`, "aria-expanded": expanded === undefined ? undefined : String(expanded) },
      glyph,
    );
    btn.addEventListener("click", onClick);
    return btn;
  };
  return h(
    "div",
    { class: "msg-actions" },
    // A whisper's reply would be public or need its own rule: whispers take no replies here.
    m.visibility === "agents" ? null : action("reply", "Reply", "↩", () => startReply(m)),
    action(
      "react",
      "Add reaction",
      "☺",
      () => {
        state.reacting = state.reacting === m.id ? null : m.id;
        renderMessages({});
        if (state.reacting === m.id) $("messages").querySelector<HTMLElement>(`[data-key="${CSS.escape(`${m.id}:pick:${REACTIONS[0]}`)}"]`)?.focus();
      },
      state.reacting === m.id,
    ),
    mine ? action("edit", "Edit message", "✎", () => startEdit(m)) : null,
    deleteButton(m),
  );
}

/** Adds or takes back this user's reaction; the answer is the message now (this connection gets no push of its own). */
async function toggleReaction(m: Message, reaction: string, add: boolean): Promise<void> {
  const client = state.client;
  const token = client?.threadToken(m.threadId);
  if (!client || !token) return;
  try {
    const req = { threadToken: token, messageId: m.id, reaction };
    const res: MessageChangeResult = add ? await client.react(req) : await client.unreact(req);
    onMessageChanged(m.threadId, res.message, {});
  } catch (e) {
    banner(describe(e));
    renderMessages({});
  }
}

/**
 * A message changed: edited (the messageEdited push, or this user's own edit answered) or
 * reacted to (the answer of react/unreact). An answer is the history's version, with `me`; a
 * push has no `me`, so this user's marks are kept from what was shown.
 */
function onMessageChanged(threadId: string, next: Message, { push }: { push?: boolean }): void {
  const hist = state.histories.get(threadId);
  const i = hist ? hist.messages.findIndex((x) => x.id === next.id) : -1;
  if (hist && i >= 0) {
    const old = hist.messages[i]!;
    const m: Message = { ...next };
    if (old.offset !== undefined) m.offset = old.offset; // its place in the thread stays
    if (push) {
      const mine = new Map((old.reactions ?? []).map((r) => [r.reaction, !!r.me]));
      m.reactions = next.reactions?.map((r) => ({ ...r, me: mine.get(r.reaction) ?? false }));
    }
    hist.messages[i] = m;
  }
  const entry = state.threads.get(threadId);
  const last = entry?.thread.lastMessage;
  if (entry && last?.id === next.id) {
    entry.thread = { ...entry.thread, lastMessage: { ...last, body: next.body, editedAt: next.editedAt } };
    renderThreads();
  }
  if (threadId === state.current) renderMessages({});
}

/** The reaction push: the counts after someone's change ("me" moves only with this user's own, from another device). */
function onReaction(ev: ReactionEvent): void {
  const m = state.histories.get(ev.threadId)?.messages.find((x) => x.id === ev.messageId);
  if (!m) return;
  const mine = new Map((m.reactions ?? []).map((r) => [r.reaction, !!r.me]));
  if (ev.userId === state.me?.id) mine.set(ev.reaction, ev.change === "added");
  // Keep the order the chips had; new reactions go last.
  const order = [...(m.reactions ?? []).map((r) => r.reaction), ...Object.keys(ev.counts)];
  const next: ReactionCount[] = [];
  for (const r of new Set(order)) {
    const count = ev.counts[r] ?? 0;
    if (count > 0) next.push({ reaction: r, count, me: mine.get(r) ?? false });
  }
  m.reactions = next;
  if (ev.threadId === state.current) renderMessages({});
}

function startReply(m: Message): void {
  setComposing({ kind: "reply", threadId: m.threadId, messageId: m.id });
}

function startEdit(m: Message): void {
  const input = $("composer-input") as HTMLTextAreaElement;
  setComposing({ kind: "edit", threadId: m.threadId, messageId: m.id });
  input.value = m.body;
  autosize(input);
}

/** Sets (or ends, with null) a reply or an edit, and shows it above the composer. */
function setComposing(next: typeof state.composing): void {
  const wasEdit = state.composing?.kind === "edit";
  state.composing = next;
  const input = $("composer-input") as HTMLTextAreaElement;
  if (wasEdit && next?.kind !== "edit") {
    input.value = ""; // the edited text is not a new message
    autosize(input);
  }
  renderComposing();
  if (next) input.focus();
}

function renderComposing(): void {
  const c = state.composing;
  const target = c ? state.histories.get(c.threadId)?.messages.find((m) => m.id === c.messageId) : undefined;
  show($("composer-context"), !!c);
  $("composer-send").textContent = c?.kind === "edit" ? "Save" : "Send";
  const text = $("composer-context-text");
  if (!c) {
    text.textContent = "";
    return;
  }
  $("composer-context-cancel").setAttribute("aria-label", c.kind === "edit" ? "Cancel the edit" : "Cancel the reply");
  if (c.kind === "edit") text.textContent = "Editing your message";
  else text.textContent = `Replying to ${target ? (target.authorId === state.me?.id ? "yourself" : nameOf(target.authorId)) : "a message"}${target?.body ? `: ${excerpt(target.body)}` : ""}`;
}

function excerpt(body: string): string {
  const one = body.replace(/\s+/g, " ").trim();
  return one.length > 80 ? `${one.slice(0, 79)}…` : one;
}

/** Saves an edit of this user's message; the answer is the message now (no push comes back to this connection). */
async function saveEdit(threadId: string, messageId: string, body: string): Promise<void> {
  const client = state.client;
  const token = client?.threadToken(threadId);
  const old = state.histories.get(threadId)?.messages.find((m) => m.id === messageId);
  if (!client || !token) return;
  if (old && old.body === body) return setComposing(null); // nothing changed
  try {
    const res = await client.editMessage({ threadToken: token, messageId, body });
    if (state.composing?.kind === "edit" && state.composing.messageId === messageId) setComposing(null);
    onMessageChanged(threadId, res.message, {});
  } catch (e) {
    banner(describe(e)); // the text stays in the composer, to try again
  }
}

// ---------- public threads and moderation (protocol 1.3) ----------

/** Lists the public threads this user is not a member of, with a Join button each. */
async function loadPublicThreads(): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    const page = await client.getThreads({ public: true, pageSize: 100 });
    state.publicThreads = page.items.map((st) => st.thread).filter((t) => !state.threads.has(t.id));
  } catch {
    state.publicThreads = []; // a backend without public threads (not_found)
  }
  renderPublicThreads();
}

function renderPublicThreads(): void {
  const list = $("public-threads");
  show($("public-title"), state.publicThreads.length > 0);
  list.replaceChildren(
    ...state.publicThreads.map((t) => {
      const btn = h("button", { type: "button", class: "btn btn-ghost btn-sm", "aria-label": `Join ${threadTitle(t)}` }, "Join");
      btn.addEventListener("click", () => void joinPublic(t.id));
      return h("li", { class: "contact", "data-thread-id": t.id }, h("span", { class: "contact-name" }, threadTitle(t)), btn);
    }),
  );
}

async function joinPublic(threadId: string): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    const res = await client.joinThread({ threadId });
    state.threads.set(res.thread.id, { thread: res.thread, unread: 0 });
    state.publicThreads = state.publicThreads.filter((t) => t.id !== threadId);
    renderPublicThreads();
    renderThreads();
    await openThread(res.thread.id);
  } catch (e) {
    banner(describe(e));
  }
}

function removeButton(threadId: string, userId: string): HTMLElement {
  const btn = h("button", { type: "button", class: "btn btn-ghost btn-sm member-remove", "aria-label": `Remove ${nameOf(userId)}` }, "Remove");
  btn.addEventListener("click", () => {
    const client = state.client;
    const token = client?.threadToken(threadId);
    if (!client || !token) return;
    client.removeParticipant({ threadToken: token, userId }).catch((e) => banner(describe(e)));
  });
  return btn;
}

/** A deleted message keeps its place: its text is gone. */
function onMessageDeleted(threadId: string, messageId: string): void {
  const hist = state.histories.get(threadId);
  const m = hist?.messages.find((x) => x.id === messageId);
  if (m) {
    m.deleted = true;
    m.body = "";
    delete m.data;
  }
  const entry = state.threads.get(threadId);
  const last = entry?.thread.lastMessage;
  if (entry && last?.id === messageId) {
    entry.thread = { ...entry.thread, lastMessage: { ...last, body: "", deleted: true } };
    renderThreads();
  }
  if (threadId === state.current) renderMessages({});
}

function deleteButton(m: Message): HTMLElement | null {
  const token = state.client?.threadToken(m.threadId);
  if (m.deleted || !token || (m.authorId !== state.me?.id && !mayAddPeople(token))) return null;
  const btn = h("button", { type: "button", class: "msg-delete", "aria-label": "Delete message", title: "Delete message" }, "×");
  btn.addEventListener("click", () => {
    const client = state.client;
    if (!client) return;
    client
      .deleteMessage({ threadToken: token, messageId: m.id })
      .then(() => onMessageDeleted(m.threadId, m.id))
      .catch((e) => banner(describe(e)));
  });
  return btn;
}

/** The mark of a whisper: internal, seen by agents and supervisors only. */
function whisperTag(): HTMLElement {
  return h("span", { class: "whisper-tag", title: "A whisper: only agents and supervisors see it, never the visitor" }, "Internal · agents only");
}

function renderPending(p: Pending): HTMLElement {
  const connected = state.conn.state === "connected";
  const status = p.failed ? `Not sent: ${p.failed}` : connected ? "Sending…" : "Queued: will be sent when you are back online";
  const retry = p.failed ? h("button", { type: "button", class: "btn btn-ghost btn-sm" }, "Retry") : null;
  retry?.addEventListener("click", () => {
    p.failed = undefined;
    if (p.threadId === visitor.threadId && visitor.client) void visitorDeliver(visitor.client, p);
    else void deliver(p);
  });
  return h(
    "li",
    { class: `msg mine pending${p.failed ? " failed" : ""}${p.whisper ? " whisper" : ""}`, "data-client-id": p.clientMessageId },
    avatar(state.me?.id ?? "", state.me?.name ?? ""),
    h(
      "div",
      { class: "bubble" },
      h("div", { class: "msg-head" }, h("span", { class: "msg-author" }, "You"), p.whisper ? whisperTag() : null, h("span", { class: "msg-status" }, status), retry),
      p.quote ? quoteOf(p.quote) : null,
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
    const res = await client.sendMessage({
      threadToken: client.threadToken(p.threadId) ?? p.threadToken,
      body: p.body,
      clientMessageId: p.clientMessageId,
      visibility: p.whisper ? "agents" : undefined,
      replyTo: p.replyTo,
      mentions: p.mentions,
    });
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
  const c = state.composing?.threadId === threadId ? state.composing : null;
  if (c?.kind === "edit") {
    void saveEdit(threadId, c.messageId, body);
    return;
  }
  input.value = "";
  autosize(input);
  const whisper = !$("whisper-toggle").hidden && ($("whisper") as HTMLInputElement).checked;
  let quote: ReplyQuote | undefined;
  if (c?.kind === "reply") {
    const parent = history(threadId).messages.find((m) => m.id === c.messageId);
    quote = { messageId: c.messageId, authorId: parent?.authorId, excerpt: parent ? excerpt(parent.body) : undefined };
    setComposing(null);
  }
  const mentions = mentionsIn(threadId, body);
  void deliver({ clientMessageId: newClientMessageId(), threadId, threadToken: token, body, createdAt: new Date().toISOString(), whisper, replyTo: quote?.messageId, quote, mentions });
}

// ---------- attachments (protocol 1.4) ----------

/** A message's files: images inline, other files as download links. */
function attachmentsOf(m: Message): HTMLElement | null {
  if (!m.attachments?.length) return null;
  return h(
    "div",
    { class: "msg-files" },
    ...m.attachments.map((a) =>
      a.contentType.startsWith("image/")
        ? h("a", { href: a.url, target: "_blank", rel: "noopener", class: "msg-file-img" }, h("img", { src: a.thumbnailUrl ?? a.url, alt: a.name, class: "msg-img", loading: "lazy" }))
        : h("a", { href: a.url, target: "_blank", rel: "noopener", class: "msg-file", download: a.name }, `📎 ${a.name} (${fileSize(a.size)})`),
    ),
  );
}

function fileSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Uploads the chosen file to the backend's storage (the URL ECB got for it) and sends it, with the composer's text. */
async function onAttach(): Promise<void> {
  const picker = $("attach") as HTMLInputElement;
  const file = picker.files?.[0];
  picker.value = "";
  const threadId = state.current;
  const client = state.client;
  if (!file || !threadId || !client) return;
  const token = client.threadToken(threadId);
  if (!token) return;
  const input = $("composer-input") as HTMLTextAreaElement;
  try {
    const id = await client.uploadFile({ threadToken: token, file });
    const res = await client.sendMessage({ threadToken: client.threadToken(threadId) ?? token, body: input.value.trim(), attachments: [id] });
    input.value = "";
    autosize(input);
    onMessage(threadId, res.message);
    if (state.current === threadId) renderMessages({ stick: true });
  } catch (e) {
    banner(`Could not send ${file.name}: ${describe(e)}`);
  }
}

function autosize(t: HTMLTextAreaElement): void {
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

// ---------- new thread dialog ----------

function openNewDialog(preselect: string[] = []): void {
  renderNewPeople(preselect);
  ($("new-search") as HTMLInputElement).value = "";
  renderSearchResults([]);
  ($("new-subject") as HTMLInputElement).value = "";
  ($("new-body") as HTMLTextAreaElement).value = "";
  show($("new-error"), false);
  const dialog = $("new-dialog") as HTMLDialogElement;
  dialog.showModal();
  (preselect.length ? ($("new-subject") as HTMLInputElement) : $("new-people").querySelector("input"))?.focus();
}

/** The contacts to pick from in the new thread dialog, keeping what is checked. */
function renderNewPeople(preselect: string[] = []): void {
  const people = $("new-people");
  const checked = new Set([...preselect, ...[...people.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value)]);
  people.replaceChildren();
  if (!state.contacts.length) people.append(h("p", { class: "muted small" }, "No contacts yet: find people above and add them."));
  for (const c of state.contacts) {
    const id = `new-with-${c.id}`;
    people.append(
      h(
        "label",
        { class: "person", for: id },
        h("input", { type: "checkbox", id, value: c.id, checked: checked.has(c.id) }),
        avatar(c.id, c.name),
        h("span", {}, c.name),
      ),
    );
  }
}

// ---------- message search (protocol 1.4) ----------

let messageSearchTimer: ReturnType<typeof setTimeout> | undefined;
let messageSearchSeq = 0;
let messageSearchQuery = "";
let messageSearchCursor: string | undefined;

/** Searches the messages of every thread this user may read as they type (after a short pause). */
function onMessageSearchInput(): void {
  clearTimeout(messageSearchTimer);
  const query = ($("msg-search") as HTMLInputElement).value.trim();
  const seq = ++messageSearchSeq;
  if (!query) return renderMessageHits([]);
  messageSearchTimer = setTimeout(() => void runMessageSearch(query, seq), 300);
}

/** One page of hits, newest first; with a cursor, the next page after those shown. */
async function runMessageSearch(query: string, seq: number, cursor?: string, shown: SearchHit[] = []): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    const page = await client.searchMessages({ query, cursor, limit: 20 });
    if (seq !== messageSearchSeq) return;
    messageSearchQuery = query;
    messageSearchCursor = page.nextCursor;
    const hits = [...shown, ...page.hits];
    renderMessageHits(hits, hits.length ? "" : "No messages found.");
  } catch (e) {
    if (seq !== messageSearchSeq) return;
    messageSearchCursor = undefined;
    renderMessageHits([], e instanceof EcbError && e.code === "not_found" ? "This backend does not search messages." : describe(e));
  }
}

function renderMessageHits(hits: SearchHit[], note = ""): void {
  const list = $("msg-search-results");
  list.replaceChildren();
  for (const hit of hits) {
    const m = hit.message;
    const entry = state.threads.get(m.threadId);
    const where = entry ? threadTitle(entry.thread) : "A thread";
    const who = m.authorId === state.me?.id ? "You" : nameOf(m.authorId);
    const btn = h(
      "button",
      { type: "button", class: "msg-hit", "data-thread-id": m.threadId, "data-id": m.id, title: `Open ${where}` },
      h("span", { class: "msg-hit-head" }, h("span", { class: "msg-hit-thread" }, where), h("time", { datetime: m.createdAt }, when(m.createdAt))),
      h("span", { class: "msg-hit-body" }, `${who}: ${excerpt(m.body)}`),
    );
    btn.addEventListener("click", () => void openHit(hit));
    list.append(h("li", {}, btn));
  }
  if (hits.length && messageSearchCursor) {
    const more = h("button", { type: "button", class: "btn btn-ghost btn-sm" }, "More results");
    const query = messageSearchQuery;
    more.addEventListener("click", () => void runMessageSearch(query, ++messageSearchSeq, messageSearchCursor, hits));
    list.append(h("li", {}, more));
  }
  if (note) list.append(h("li", { class: "muted small pad" }, note));
  show(list, hits.length > 0 || note !== "");
}

/** Opens a hit's thread (fetched with the hit's token when this page does not know it yet) and shows the message. */
async function openHit(hit: SearchHit): Promise<void> {
  const client = state.client;
  const threadId = hit.message.threadId;
  if (!client) return;
  if (!state.threads.has(threadId)) {
    try {
      const page = await client.getThread({ threadToken: hit.threadToken, limit: 30 });
      state.threads.set(threadId, { thread: page.thread, unread: 0 });
      const hist = history(threadId);
      addMessages(threadId, page.messages);
      hist.nextCursor = page.nextCursor;
      hist.loaded = true;
    } catch (e) {
      banner(describe(e));
      return;
    }
  }
  await openThread(threadId);
  // An older message: load older pages until it is there (at most 10 pages of 30).
  const hist = history(threadId);
  for (let i = 0; i < 10 && state.current === threadId && !hist.ids.has(hit.message.id) && hist.nextCursor; i++) await loadOlder();
  if (state.current === threadId) showMessage(hit.message.id);
}

// ---------- user search and contacts (protocol 1.3) ----------

let searchTimer: ReturnType<typeof setTimeout> | undefined;
let searchSeq = 0;
let searchFound: User[] = [];

/** Searches as the user types (after a short pause); an empty box clears the results. */
function onSearchInput(): void {
  clearTimeout(searchTimer);
  const query = ($("new-search") as HTMLInputElement).value.trim();
  const seq = ++searchSeq;
  if (!query) return renderSearchResults([]);
  searchTimer = setTimeout(() => void runSearch(query, seq), 250);
}

async function runSearch(query: string, seq: number): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    const page = await client.searchUsers({ query, pageSize: 10 });
    if (seq === searchSeq) renderSearchResults(page.items, page.items.length ? "" : "Nobody found.");
  } catch (e) {
    if (seq === searchSeq) renderSearchResults([], describe(e));
  }
}

function renderSearchResults(users: User[], note = ""): void {
  searchFound = users;
  const list = $("new-search-results");
  list.replaceChildren();
  for (const u of users) {
    const isContact = state.contacts.some((c) => c.id === u.id);
    const btn = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-user-id": u.id }, isContact ? "Remove contact" : "Add contact");
    btn.addEventListener("click", () => void toggleContact(u, isContact, btn));
    list.append(h("li", { class: "search-result", "data-user-id": u.id }, avatar(u.id, u.name), h("span", { class: "search-name" }, u.name), btn));
  }
  if (note) list.append(h("li", { class: "muted small" }, note));
  show(list, users.length > 0 || note !== "");
}

async function toggleContact(u: User, isContact: boolean, btn: HTMLButtonElement): Promise<void> {
  const client = state.client;
  if (!client) return;
  btn.disabled = true;
  try {
    const res = isContact ? await client.removeContact({ userId: u.id }) : await client.addContact({ userId: u.id });
    onContactChange(isContact ? "removed" : "added", res.contact);
  } catch (e) {
    const err = $("new-error");
    err.textContent = describe(e);
    show(err, true);
    btn.disabled = false;
  }
}

/** A contact added or removed, by this user (the answer) or either side (the push). */
function onContactChange(change: "added" | "removed", user: User): void {
  const had = state.contacts.some((c) => c.id === user.id);
  if (change === "added" && !had) state.contacts = [...state.contacts, user];
  if (change === "removed") state.contacts = state.contacts.filter((c) => c.id !== user.id);
  if (change === "removed") state.presence.delete(user.id);
  renderContacts();
  if (($("new-dialog") as HTMLDialogElement).open) {
    renderNewPeople();
    renderSearchResults(searchFound);
  }
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

// ---------- customer support: agents and supervisors ----------

/** A support chat this user takes part in, or watches. */
interface SupportChat {
  requestId: string;
  threadId: string;
  workgroup: string;
  visitor: SupportVisitor;
  question: string;
  /** agent: took it (an offer, a transfer); invited: a conference; supervisor: joined; monitor: watches read-only. */
  role: "agent" | "invited" | "supervisor" | "monitor";
  /** Why it is over for this user, once it is. */
  ended?: string;
}

interface Offer extends OfferEvent {
  receivedAt: number;
  busy?: boolean;
}

const SUPPORT_KEY = "ecb-demo-support";
const AVAILABLE_KEY = "ecb-demo-available";

const REVOKED: Record<string, string> = {
  timeout: "not answered in time, it goes to another agent",
  cancelled: "the visitor cancelled it",
  dropped: "the visitor went away",
  unavailable: "you are not available",
  failed: "the chat could not be created",
};

const support = {
  started: false,
  available: false,
  maxChats: undefined as number | undefined,
  offers: new Map<string, Offer>(),
  /** requestId → its offer: who asked what, to describe the chat once accepted. */
  asked: new Map<string, OfferEvent>(),
  notices: [] as { id: number; text: string }[],
  /** By requestId. */
  chats: new Map<string, SupportChat>(),
  conversations: [] as SupportConversation[],
  conversationsError: "",
  countdown: null as ReturnType<typeof setInterval> | null,
  poll: null as ReturnType<typeof setInterval> | null,
};
let noticeSeq = 0;

function isAgent(): boolean {
  return state.roles.has("agent");
}

function isSupervisor(): boolean {
  return state.roles.has("supervisor");
}

function supportWorkgroup(): string {
  return state.workgroups[0] ?? "support";
}

function visitorName(v: SupportVisitor): string {
  return v.name || nameOf(v.id);
}

/** The support chat of a thread: the live one if there is one. */
function chatOfThread(threadId: string): SupportChat | undefined {
  let found: SupportChat | undefined;
  for (const c of support.chats.values()) if (c.threadId === threadId && (!found || found.ended)) found = c;
  return found;
}

function activeChats(): SupportChat[] {
  return [...support.chats.values()].filter((c) => !c.ended);
}

function listenSupport(client: EcbClient): void {
  client.on("offer", onOffer);
  client.on("offerRevoked", onOfferRevoked);
  client.on("invitation", (ev) => void onInvitation(ev));
  client.on("supportEnded", onSupportEnded);
  client.on("supportTransferred", onSupportTransferred);
}

/** Shows the console of the roles in the userToken (agent, supervisor); once per session. */
function startSupportConsole(client: EcbClient): void {
  if (support.started || !client.userToken) return;
  const claims = tokenClaims(client.userToken);
  state.roles = new Set(stringList(claims.roles));
  state.workgroups = stringList(claims.workgroups);
  const agent = isAgent();
  const supervisor = isSupervisor();
  show($("support-console"), agent || supervisor);
  show($("agent-panel"), agent);
  show($("supervisor-panel"), supervisor);
  if (!agent && !supervisor) return;
  support.started = true;
  restoreSupportChats();
  // Available before a reload: a new page is a new connection, and ECB made the agent unavailable.
  if (agent && sessionStorage.getItem(AVAILABLE_KEY) === "1") void setAvailable(true);
  if (supervisor) {
    void refreshConversations();
    support.poll = setInterval(() => void refreshConversations(), 5000);
  }
  renderAgentStatus();
  renderSupportChats();
}

function stopSupportConsole(): void {
  if (support.countdown) clearInterval(support.countdown);
  if (support.poll) clearInterval(support.poll);
  Object.assign(support, { started: false, available: false, maxChats: undefined, countdown: null, poll: null, conversations: [], conversationsError: "", notices: [] });
  support.offers.clear();
  support.asked.clear();
  support.chats.clear();
  state.roles = new Set();
  state.workgroups = [];
  state.names.clear();
  sessionStorage.removeItem(SUPPORT_KEY);
  sessionStorage.removeItem(AVAILABLE_KEY);
  show($("support-console"), false);
  for (const id of ["offers", "offer-notices", "support-chats", "conversations"]) $(id).replaceChildren();
}

/** The chats survive a reload of the page (monitors do not: ECB ends them with the connection). */
function saveSupportChats(): void {
  const keep = [...support.chats.values()].filter((c) => c.role !== "monitor");
  sessionStorage.setItem(SUPPORT_KEY, JSON.stringify(keep));
}

function restoreSupportChats(): void {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SUPPORT_KEY) ?? "[]") as SupportChat[];
    for (const c of saved) {
      support.chats.set(c.requestId, c);
      if (c.visitor.name) state.names.set(c.visitor.id, c.visitor.name);
    }
  } catch {
    sessionStorage.removeItem(SUPPORT_KEY);
  }
}

// ---- availability ----

async function setAvailable(on: boolean): Promise<void> {
  const client = state.client;
  if (!client) return;
  const sw = $("agent-available") as HTMLInputElement;
  sw.checked = on;
  sw.disabled = true;
  try {
    const res = await client.setAvailability({ available: on });
    support.available = res.available;
    support.maxChats = res.maxChats;
    if (res.available) sessionStorage.setItem(AVAILABLE_KEY, "1");
    else sessionStorage.removeItem(AVAILABLE_KEY);
  } catch (e) {
    banner(describe(e));
  } finally {
    sw.disabled = false;
    renderAgentStatus();
  }
}

/** The client could not make the agent available again after a reconnect. */
function availabilityLost(error: EcbError): void {
  support.available = false;
  sessionStorage.removeItem(AVAILABLE_KEY);
  renderAgentStatus();
  banner(`You are no longer available for chats: ${describe(error)}`);
}

function renderAgentStatus(): void {
  if (!isAgent()) return;
  ($("agent-available") as HTMLInputElement).checked = support.available;
  const open = activeChats().filter((c) => c.role === "agent" || c.role === "invited").length;
  const chats = `${open}${support.maxChats ? ` of ${support.maxChats}` : ""} open chat${open === 1 && !support.maxChats ? "" : "s"}`;
  const el = $("agent-status");
  el.dataset.available = String(support.available);
  el.textContent = support.available ? `Taking chats · ${chats}` : `Not taking chats · ${chats}`;
}

// ---- offers ----

function onOffer(o: OfferEvent): void {
  support.offers.set(o.offerId, { ...o, receivedAt: Date.now() });
  support.asked.set(o.requestId, o);
  if (o.visitor.name) state.names.set(o.visitor.id, o.visitor.name);
  renderOffers();
}

function onOfferRevoked(ev: OfferRevokedEvent): void {
  const o = support.offers.get(ev.offerId);
  support.offers.delete(ev.offerId);
  const who = o ? visitorName(o.visitor) : "A visitor";
  addNotice(`${who}'s request was withdrawn: ${REVOKED[ev.reason] ?? ev.reason}.`);
  renderOffers();
}

function addNotice(text: string): void {
  const id = ++noticeSeq;
  support.notices.push({ id, text });
  if (support.notices.length > 3) support.notices.shift();
  renderNotices();
  setTimeout(() => {
    support.notices = support.notices.filter((n) => n.id !== id);
    renderNotices();
  }, 20000);
}

function renderNotices(): void {
  $("offer-notices").replaceChildren(...support.notices.map((n) => h("li", { class: "offer-notice" }, n.text)));
}

function renderOffers(): void {
  $("offers").replaceChildren(...[...support.offers.values()].map(offerItem));
  tickOffers();
}

function offerItem(o: Offer): HTMLElement {
  const name = visitorName(o.visitor);
  const accept = h("button", { type: "button", class: "btn btn-primary btn-sm", disabled: !!o.busy }, "Accept");
  const reject = h("button", { type: "button", class: "btn btn-ghost btn-sm", disabled: !!o.busy }, "Reject");
  accept.addEventListener("click", () => void answerOffer(o, true));
  reject.addEventListener("click", () => void answerOffer(o, false));
  const meta = Object.entries(o.metadata ?? {}).map(([k, v]) => h("li", {}, h("span", { class: "muted" }, `${k}: `), typeof v === "string" ? v : JSON.stringify(v)));
  return h(
    "li",
    { class: "offer", "data-offer-id": o.offerId, "aria-label": `Request from ${name}` },
    h(
      "div",
      { class: "offer-head" },
      avatar(o.visitor.id, name, "avatar avatar-sm"),
      h("span", { class: "offer-who" }, name, o.visitor.anonymous ? h("span", { class: "tag" }, "guest") : null),
      h("span", { class: "offer-countdown", role: "timer" }),
    ),
    h("p", { class: "offer-question" }, o.question),
    meta.length ? h("ul", { class: "offer-meta" }, ...meta) : null,
    h("div", { class: "offer-bar", "aria-hidden": "true" }, h("i")),
    h("div", { class: "offer-actions" }, reject, accept),
  );
}

/** Updates the countdowns (and runs while there are offers). */
function tickOffers(): void {
  const now = Date.now();
  for (const [id, o] of support.offers) {
    const end = Date.parse(o.expiresAt);
    // offerRevoked removes an expired offer; this only drops one whose revoke never came (connection lost).
    if (end < now - 5000) {
      support.offers.delete(id);
      $("offers").querySelector(`[data-offer-id="${CSS.escape(id)}"]`)?.remove();
      continue;
    }
    const el = $("offers").querySelector<HTMLElement>(`[data-offer-id="${CSS.escape(id)}"]`);
    if (!el) continue;
    const left = Math.max(0, end - now);
    const countdown = el.querySelector<HTMLElement>(".offer-countdown")!;
    countdown.textContent = `${Math.ceil(left / 1000)} s`;
    countdown.title = `Expires at ${timeFmt.format(new Date(end))}`;
    countdown.dataset.urgent = String(left < 5000);
    const total = Math.max(1, end - o.receivedAt);
    el.querySelector<HTMLElement>(".offer-bar i")!.style.width = `${Math.min(100, (left / total) * 100)}%`;
  }
  if (support.offers.size && !support.countdown) support.countdown = setInterval(tickOffers, 250);
  if (!support.offers.size && support.countdown) {
    clearInterval(support.countdown);
    support.countdown = null;
  }
}

async function answerOffer(o: Offer, accept: boolean): Promise<void> {
  const client = state.client;
  if (!client || o.busy) return;
  o.busy = true;
  renderOffers();
  try {
    if (!accept) {
      await client.rejectOffer({ offerId: o.offerId });
      return;
    }
    const res = await client.acceptOffer({ offerId: o.offerId });
    support.offers.delete(o.offerId);
    renderOffers();
    addSupportChat({ requestId: res.requestId, threadId: res.thread.id, workgroup: o.workgroup, visitor: o.visitor, question: o.question, role: "agent" }, res.thread);
    await openThread(res.thread.id);
  } catch (e) {
    // Revoked meanwhile, accepted elsewhere, or failed: the offer is gone either way.
    addNotice(`Could not ${accept ? "accept" : "reject"} ${visitorName(o.visitor)}'s request: ${describe(e)}`);
  } finally {
    support.offers.delete(o.offerId);
    renderOffers();
  }
}

// ---- chats ----

function addSupportChat(c: SupportChat, thread: Thread): SupportChat {
  const chat: SupportChat = { ...c, ended: undefined }; // a chat handed back to this user is live again
  support.chats.set(c.requestId, chat);
  if (c.visitor.name) state.names.set(c.visitor.id, c.visitor.name);
  const entry = state.threads.get(thread.id);
  // A monitored chat's entry was made up from the conversation: the member's thread replaces it.
  state.threads.set(thread.id, { thread: newer(entry?.monitor ? undefined : entry?.thread, thread), unread: entry?.unread ?? 0 });
  saveSupportChats();
  renderThreads();
  renderAgentStatus();
  if (state.current === thread.id) renderThreadHead();
  void loadPresence(); // the visitor and the other agents of the chat: thread members may see each other
  return chat;
}

async function onInvitation(ev: InvitationEvent): Promise<void> {
  const client = state.client;
  if (!client) return;
  const old = support.chats.get(ev.requestId);
  const asked = support.asked.get(ev.requestId);
  const live = old && !old.ended && old.threadId === ev.thread.id && old.role !== "monitor";
  if (!live) {
    // The invitation says who asked what, also after a transfer or an invite.
    const v: SupportVisitor = ev.visitor;
    if (v.name) state.names.set(v.id, v.name);
    addSupportChat(
      { requestId: ev.requestId, threadId: ev.thread.id, workgroup: ev.workgroup, visitor: v, question: ev.question ?? asked?.question ?? old?.question ?? ev.thread.subject ?? "", role: ev.conference ? "invited" : "agent" },
      ev.thread,
    );
    // Not from this page's accept: a transfer, or a conference.
    if (!asked) addNotice(ev.conference ? `You were invited into ${visitorName(v)}'s chat.` : `${visitorName(v)}'s chat was transferred to you.`);
  }
  // Listen now so that its messages and typing arrive (the page itself loads when it is opened).
  if (!client.isListening(ev.thread.id)) {
    try {
      await client.getThread({ threadToken: ev.threadToken, limit: 1 });
    } catch (e) {
      banner(describe(e));
    }
  }
}

/** Marks a chat over for this user: the thread stays, and the bar above it says why (#support-ended). */
function endChat(chat: SupportChat, why: string): void {
  if (chat.ended) return;
  chat.ended = why;
  state.client?.stopTyping(chat.threadId);
  saveSupportChats();
  renderThreads();
  renderAgentStatus();
  if (state.current === chat.threadId) {
    renderThreadHead();
    renderMessages({});
  }
}

function onSupportEnded(ev: SupportEndedEvent): void {
  const chat = support.chats.get(ev.requestId);
  if (chat) endChat(chat, ev.state === "closed" ? "This support chat has ended: it was closed." : `This support chat has ended (${ev.state}).`);
}

function onSupportTransferred(ev: SupportTransferredEvent): void {
  const chat = support.chats.get(ev.requestId);
  if (!chat) return;
  if (!ev.fromAgent) return; // taken from the queue again: told to the visitor only
  if (ev.fromAgent === state.me?.id) {
    // This user's chat changed hands (by them, or by a supervisor): it is no longer theirs.
    endChat(chat, ev.toAgent ? `The chat was transferred to ${nameOf(ev.toAgent)}.` : "The chat was put back in the queue.");
    return;
  }
  const text = ev.toAgent ? `${nameOf(ev.fromAgent)} transferred the chat to ${nameOf(ev.toAgent)}.` : `${nameOf(ev.fromAgent)} put the chat back in the queue.`;
  history(chat.threadId).notices.push({ at: new Date().toISOString(), text });
  if (state.current === chat.threadId) renderMessages({});
}

/** A monitor the client could not restore after a reconnect: the chat is over. */
function monitorLost(threadId: string): void {
  const chat = chatOfThread(threadId);
  if (chat?.role === "monitor") endChat(chat, "Monitoring ended: the chat is over.");
}

function currentChat(): SupportChat | undefined {
  const chat = state.current ? chatOfThread(state.current) : undefined;
  return chat && !chat.ended ? chat : undefined;
}

/** Close chat asks first: it ends the chat for everyone. */
function openCloseDialog(): void {
  const chat = currentChat();
  if (!chat) return;
  $("close-text").textContent = `The chat ends for everyone in it, and ${visitorName(chat.visitor)} is told. The conversation stays in your threads.`;
  show($("close-error"), false);
  ($("close-dialog") as HTMLDialogElement).showModal();
  ($("close-cancel") as HTMLButtonElement).focus();
}

async function closeSupportChat(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = state.client;
  const chat = currentChat();
  const dialog = $("close-dialog") as HTMLDialogElement;
  if (!client || !chat) {
    dialog.close();
    return;
  }
  const submit = $("close-submit") as HTMLButtonElement;
  submit.disabled = true;
  try {
    await client.supportClose({ requestId: chat.requestId });
    dialog.close();
    endChat(chat, "This support chat has ended: it was closed."); // supportEnded says the same, to both sides
  } catch (e) {
    if (e instanceof EcbError && e.code === "not_found") {
      dialog.close();
      endChat(chat, "This support chat had already ended.");
    } else {
      $("close-error").textContent = describe(e);
      show($("close-error"), true);
    }
  } finally {
    submit.disabled = false;
  }
}

async function leaveSupportChat(): Promise<void> {
  const client = state.client;
  const chat = currentChat();
  if (!client || !chat) return;
  try {
    await client.supportLeave({ requestId: chat.requestId });
    endChat(chat, "You left the chat.");
  } catch (e) {
    banner(describe(e));
  }
}

/** The support bar, the ended notice, the composer or the monitor note, and the whisper toggle of the open thread. */
function renderSupportBar(threadId: string): void {
  const chat = chatOfThread(threadId);
  const active = !!chat && !chat.ended;
  const monitor = chat?.role === "monitor" || !!state.threads.get(threadId)?.monitor;
  show($("support-bar"), active);
  show($("support-ended"), !!chat?.ended);
  $("support-ended").textContent = chat?.ended ?? "";
  if (chat) {
    const role = { agent: "", invited: " · you were invited", supervisor: " · you joined as supervisor", monitor: " · monitoring" }[chat.role];
    const guest = chat.visitor.anonymous || chat.visitor.id.startsWith("anon_");
    $("support-info").replaceChildren(h("span", { class: "tag" }, "Support"), ` ${visitorName(chat.visitor)}`, ...(guest ? [h("span", { class: "tag" }, "guest")] : []), role);
  }
  const role = chat?.role;
  show($("support-transfer"), active && role === "agent");
  show($("support-invite"), active && role === "agent");
  show($("support-close"), active && role === "agent");
  show($("support-leave"), active && (role === "invited" || role === "supervisor"));
  show($("monitor-note"), active && monitor);
  // A chat that ended, or one watched read-only, takes no messages from here.
  show($("composer"), !monitor && !chat?.ended);
  const whisper = active && !monitor && (isAgent() || isSupervisor());
  show($("whisper-toggle"), whisper);
  if (!whisper) ($("whisper") as HTMLInputElement).checked = false;
  renderWhisperMode();
  show($("leave-thread"), !active && !monitor);
}

function renderWhisperMode(): void {
  const on = !$("whisper-toggle").hidden && ($("whisper") as HTMLInputElement).checked;
  $("composer").classList.toggle("whispering", on);
  ($("composer-input") as HTMLTextAreaElement).placeholder = on ? "Whisper to agents… (the visitor never sees it)" : "Write a message…";
}

function renderSupportChats(): void {
  if (!support.started) return;
  const list = $("support-chats");
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.requestId;
  list.replaceChildren();
  const chats = activeChats();
  if (!chats.length) list.append(h("li", { class: "muted small pad" }, "No open support chats."));
  for (const chat of chats) {
    const entry = state.threads.get(chat.threadId);
    const last = history(chat.threadId).messages.at(-1) ?? entry?.thread.lastMessage;
    const typing = typingText(chat.threadId);
    const preview = typing || (last ? `${last.authorId === state.me?.id ? "You" : nameOf(last.authorId)}: ${last.body}` : chat.question);
    const tag = { agent: null, invited: "conference", supervisor: "joined", monitor: "monitoring" }[chat.role];
    const btn = h(
      "button",
      {
        type: "button",
        class: "thread-item support-item",
        "data-thread-id": chat.threadId,
        "data-request-id": chat.requestId,
        "aria-current": chat.threadId === state.current ? "true" : undefined,
      },
      avatar(chat.visitor.id, visitorName(chat.visitor)),
      h(
        "span",
        { class: "thread-item-text" },
        h("span", { class: "thread-item-title" }, visitorName(chat.visitor), tag ? h("span", { class: "tag" }, tag) : null),
        h("span", { class: `thread-item-preview${typing ? " is-typing" : ""}` }, preview),
      ),
      entry?.unread ? h("span", { class: "thread-item-meta" }, h("span", { class: "badge", "aria-label": `${entry.unread} unread` }, String(entry.unread))) : null,
    );
    btn.addEventListener("click", () => void openThread(chat.threadId));
    list.append(h("li", {}, btn));
  }
  if (focused) list.querySelector<HTMLElement>(`[data-request-id="${CSS.escape(focused)}"]`)?.focus();
}

// ---- transfer and invite ----

/** The demo's other agents (the directory's users with the agent role). */
function otherAgents(): DirectoryUser[] {
  return [...state.directory.values()].filter((u) => u.roles?.includes("agent") && u.id !== state.me?.id);
}

function openTransferDialog(): void {
  const chat = currentChat();
  if (!chat) return;
  const list = $("transfer-targets");
  list.replaceChildren();
  const choice = (id: string, value: string, label: Node[], checked: boolean) =>
    h("label", { class: "person", for: id }, h("input", { type: "radio", name: "transfer-to", id, value, checked }), ...label);
  list.append(choice("transfer-queue", "", [h("span", {}, "Back to the queue")], true));
  for (const a of otherAgents()) list.append(choice(`transfer-${a.id}`, a.id, [avatar(a.id, a.name), h("span", {}, a.name)], false));
  show($("transfer-error"), false);
  ($("transfer-dialog") as HTMLDialogElement).showModal();
}

async function onTransfer(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = state.client;
  const chat = currentChat();
  if (!client || !chat) return;
  const to = document.querySelector<HTMLInputElement>("#transfer-targets input:checked")?.value ?? "";
  const submit = $("transfer-submit") as HTMLButtonElement;
  submit.disabled = true;
  try {
    await client.supportTransfer({ requestId: chat.requestId, toAgent: to || undefined });
    ($("transfer-dialog") as HTMLDialogElement).close();
    // supportTransferred tells the same; the answer may come first.
    endChat(chat, to ? `The chat was transferred to ${nameOf(to)}.` : "The chat was put back in the queue.");
  } catch (e) {
    $("transfer-error").textContent = describe(e);
    show($("transfer-error"), true);
  } finally {
    submit.disabled = false;
  }
}

function openInviteDialog(): void {
  const chat = currentChat();
  if (!chat) return;
  const members = state.threads.get(chat.threadId)?.thread.members ?? [];
  const list = $("invite-targets");
  list.replaceChildren();
  const agents = otherAgents().filter((a) => !members.includes(a.id));
  agents.forEach((a, i) =>
    list.append(
      h("label", { class: "person", for: `invite-${a.id}` }, h("input", { type: "radio", name: "invite-agent", id: `invite-${a.id}`, value: a.id, checked: i === 0 }), avatar(a.id, a.name), h("span", {}, a.name)),
    ),
  );
  if (!agents.length) list.append(h("p", { class: "muted" }, "Every other agent is already in this chat."));
  ($("invite-submit") as HTMLButtonElement).disabled = !agents.length;
  show($("invite-error"), false);
  ($("invite-dialog") as HTMLDialogElement).showModal();
}

async function onInvite(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = state.client;
  const chat = currentChat();
  const agent = document.querySelector<HTMLInputElement>("#invite-targets input:checked")?.value;
  if (!client || !chat || !agent) return;
  const submit = $("invite-submit") as HTMLButtonElement;
  submit.disabled = true;
  try {
    await client.supportInvite({ requestId: chat.requestId, agent });
    ($("invite-dialog") as HTMLDialogElement).close();
    history(chat.threadId).notices.push({ at: new Date().toISOString(), text: `You invited ${nameOf(agent)}.` });
    if (state.current === chat.threadId) renderMessages({});
  } catch (e) {
    $("invite-error").textContent = describe(e);
    show($("invite-error"), true);
  } finally {
    submit.disabled = false;
  }
}

// ---- supervisors ----

async function refreshConversations(): Promise<void> {
  const client = state.client;
  if (!client || !isSupervisor() || client.state !== "connected") return;
  try {
    const res = await client.supportConversations({ workgroup: supportWorkgroup() });
    support.conversations = res.conversations;
    support.conversationsError = "";
    for (const c of res.conversations) if (c.visitor.name) state.names.set(c.visitor.id, c.visitor.name);
    // Supervisors get no supportEnded: a watched or joined chat no longer listed is over.
    const live = new Set(res.conversations.map((c) => c.requestId));
    for (const chat of support.chats.values()) {
      if ((chat.role === "monitor" || chat.role === "supervisor") && !live.has(chat.requestId)) endChat(chat, "This support chat has ended.");
    }
  } catch (e) {
    support.conversationsError = describe(e);
  }
  renderConversations();
}

function renderConversations(): void {
  const list = $("conversations");
  list.replaceChildren();
  if (support.conversationsError) list.append(h("li", { class: "form-error small" }, support.conversationsError));
  else if (!support.conversations.length) list.append(h("li", { class: "muted small pad" }, "No live conversations."));
  for (const c of support.conversations) {
    const mine = support.chats.get(c.requestId);
    const watching = mine && !mine.ended;
    const name = visitorName(c.visitor);
    const agents = c.agents.filter(Boolean).map(nameOf).join(", ");
    const actions: HTMLElement[] = [];
    if (watching) {
      const open = h("button", { type: "button", class: "btn btn-ghost btn-sm" }, "Open");
      open.addEventListener("click", () => void openThread(mine.threadId));
      actions.push(open);
    }
    if (c.state === "chat" && !watching) {
      const monitor = h("button", { type: "button", class: "btn btn-ghost btn-sm" }, "Monitor");
      monitor.addEventListener("click", () => void monitorConversation(c));
      actions.push(monitor);
    }
    if (c.state === "chat" && !(watching && mine.role === "supervisor")) {
      const join = h("button", { type: "button", class: "btn btn-primary btn-sm" }, "Join");
      join.addEventListener("click", () => void joinConversation(c.requestId));
      actions.push(join);
    }
    list.append(
      h(
        "li",
        { class: "conversation", "data-request-id": c.requestId },
        h(
          "div",
          { class: "offer-head" },
          avatar(c.visitor.id, name, "avatar avatar-sm"),
          h("span", { class: "offer-who" }, name, c.visitor.anonymous ? h("span", { class: "tag" }, "guest") : null),
          h("span", { class: `tag state-${c.state}` }, c.state === "chat" ? "in chat" : "pending"),
        ),
        h("p", { class: "offer-question" }, c.question),
        h(
          "p",
          { class: "muted small conv-meta" },
          `${agents ? `with ${agents}` : "no agent yet"} · since ${when(c.since)}`,
          c.supervisors.length ? ` · joined: ${c.supervisors.map(nameOf).join(", ")}` : "",
        ),
        actions.length ? h("div", { class: "offer-actions" }, ...actions) : null,
      ),
    );
  }
}

async function monitorConversation(c: SupportConversation): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    const res = await client.supportMonitor({ requestId: c.requestId });
    if (!state.threads.has(res.threadId)) {
      // Not a member: no threadToken, no history; the pushes from now on fill it.
      const thread: Thread = { id: res.threadId, subject: c.question, members: [c.visitor.id, ...c.agents.filter(Boolean)], createdAt: c.since, updatedAt: c.since };
      state.threads.set(res.threadId, { thread, unread: 0, monitor: true });
      const hist = history(res.threadId);
      hist.loaded = true;
      hist.notices.push({ at: new Date().toISOString(), text: "Monitoring from here on: earlier messages are not shown." });
    }
    support.chats.set(c.requestId, { requestId: c.requestId, threadId: res.threadId, workgroup: c.workgroup, visitor: c.visitor, question: c.question, role: "monitor" });
    renderConversations();
    await openThread(res.threadId);
  } catch (e) {
    banner(describe(e));
  }
}

async function joinConversation(requestId: string): Promise<void> {
  const client = state.client;
  if (!client) return;
  const c = support.conversations.find((x) => x.requestId === requestId);
  const old = support.chats.get(requestId);
  try {
    const res = await client.supportJoin({ requestId });
    const visitor = c?.visitor ?? old?.visitor ?? { id: res.thread.members[0] ?? "" };
    addSupportChat({ requestId, threadId: res.thread.id, workgroup: c?.workgroup ?? supportWorkgroup(), visitor, question: c?.question ?? res.thread.subject ?? "", role: "supervisor" }, res.thread);
    history(res.thread.id).loaded = false; // a member now: the history can be read
    renderConversations();
    await openThread(res.thread.id);
  } catch (e) {
    banner(describe(e));
  }
}

// ---------- customer support: the anonymous visitor's widget ----------

const VISITOR_KEY = "ecb-demo-visitor";
const VISITOR_WORKGROUP = "support";

/** What a visitor's page keeps across a reload (the anonymous token lives 15 minutes). */
interface VisitorSession {
  userToken: string;
  expiresAt: string;
  user: User;
  requestId?: string;
  question?: string;
  threadId?: string;
  threadToken?: string;
}

const visitor = {
  session: null as VisitorSession | null,
  client: null as EcbClient | null,
  step: "start" as "start" | "ask" | "queued" | "chat",
  queue: null as QueueEvent | null,
  /** Why the chat ended, once it did. */
  ended: "",
  statusTimer: null as ReturnType<typeof setInterval> | null,
  /** The support thread, once invited (renderTyping's hook). */
  threadId: null as string | null,
  /**
   * Who answers now: the thread's members say who ever took part (an agent who transferred
   * the chat stays a member), so this follows the invitation, transfers, joins and leaves.
   */
  agents: [] as string[],
};

function readVisitorSession(): VisitorSession | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(VISITOR_KEY) ?? "null") as VisitorSession | null;
    // A token about to expire is no use: start again.
    return s && Date.parse(s.expiresAt) > Date.now() + 30_000 ? s : null;
  } catch {
    return null;
  }
}

function saveVisitorSession(): void {
  if (visitor.session) sessionStorage.setItem(VISITOR_KEY, JSON.stringify(visitor.session));
}

function openVisitor(): void {
  show($("login"), false);
  show($("app"), false);
  show($("me"), false);
  show($("visitor"), true);
  banner(null);
  const saved = readVisitorSession();
  if (saved && !visitor.client) {
    visitor.session = saved;
    void connectVisitor();
    return;
  }
  if (!visitor.client) setVisitorStep("start");
  ($("visitor-name") as HTMLInputElement).focus();
}

/** Ends the widget: the connection, the saved session, what it showed. */
function endVisitor(): void {
  visitor.client?.close();
  if (visitor.statusTimer) clearInterval(visitor.statusTimer);
  if (visitor.threadId) {
    state.threads.delete(visitor.threadId);
    state.histories.delete(visitor.threadId);
    forgetTyping(visitor.threadId);
  }
  Object.assign(visitor, { session: null, client: null, step: "start", queue: null, ended: "", statusTimer: null, threadId: null, agents: [] });
  sessionStorage.removeItem(VISITOR_KEY);
  state.me = null;
  state.pending.clear();
  ($("visitor-question") as HTMLTextAreaElement).value = "";
  ($("visitor-input") as HTMLTextAreaElement).value = "";
  $("visitor-status").textContent = "";
  $("visitor-note").textContent = "";
  show($("visitor"), false);
  show($("conn"), false);
}

/** The Back and Close buttons: leave the widget for the sign-in page. */
function leaveVisitor(): void {
  endVisitor();
  if (location.hash) history_.replaceState(null, "", location.pathname + location.search);
  showLogin();
}

// `history` is this file's message store; the browser's is window.history.
const history_ = window.history;

async function onVisitorStart(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const name = ($("visitor-name") as HTMLInputElement).value.trim();
  const err = $("visitor-start-error");
  const submit = $("visitor-start-submit") as HTMLButtonElement;
  submit.disabled = true;
  show(err, false);
  try {
    // The reference backend mints an anonymous userToken bound to this page's origin.
    const res = await fetch(`${state.backendUrl}/visitor`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(name ? { name } : {}),
    });
    const body = (await res.json().catch(() => ({}))) as Partial<VisitorSession> & { error?: { message?: string } };
    if (!res.ok || !body.userToken || !body.user || !body.expiresAt) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
    visitor.session = { userToken: body.userToken, expiresAt: body.expiresAt, user: body.user };
    saveVisitorSession();
    await connectVisitor();
  } catch (e) {
    err.textContent = `Support cannot be reached right now (${describe(e)}).`;
    show(err, true);
  } finally {
    submit.disabled = false;
  }
}

async function connectVisitor(): Promise<void> {
  const session = visitor.session;
  if (!session) return;
  // Polling first, then WebSocket, like every page: the anonymous token is bound to this page's
  // origin, and ECB also recognises a same-origin GET without an Origin header by its
  // Sec-Fetch-Site: same-origin (docs/tokens.md).
  const client = new EcbClient({ url: location.origin, userToken: session.userToken });
  visitor.client = client;
  state.me = session.user;
  client.on("connection", (ev) => {
    state.conn = ev;
    renderConn();
    if (ev.state === "offline" && ev.error?.code === "unauthenticated") visitorEnded("Your guest session has expired.");
  });
  client.on("queue", onVisitorQueue);
  client.on("invitation", (ev) => void onVisitorInvitation(ev));
  client.on("supportEnded", onVisitorEnded);
  client.on("supportTransferred", onVisitorTransferred);
  client.on("message", ({ threadId, message }) => onVisitorMessage(threadId, message));
  // What the agents change in the chat shows in the widget too (the widget itself only writes).
  client.on("messageEdited", (ev) => {
    onMessageChanged(ev.threadId, ev.message, { push: true });
    if (ev.threadId === visitor.threadId) renderVisitorChat({});
  });
  client.on("messageDeleted", (ev) => {
    onMessageDeleted(ev.threadId, ev.messageId);
    if (ev.threadId === visitor.threadId) renderVisitorChat({});
  });
  client.on("reaction", (ev) => {
    onReaction(ev);
    if (ev.threadId === visitor.threadId) renderVisitorChat({});
  });
  client.on("typing", (ev) => onTyping(ev));
  client.on("read", (ev) => {
    onRead(ev);
    renderVisitorChat({});
  });
  client.on("member", (ev) => {
    onMember(ev); // "Agent Two joined the thread" in the transcript, and the members
    if (ev.threadId === visitor.threadId && ev.userId !== state.me?.id) {
      if (ev.change === "joined") {
        visitor.queue = null; // an agent took the chat put back in the queue
        if (!visitor.agents.includes(ev.userId)) visitor.agents.push(ev.userId);
      } else {
        visitor.agents = visitor.agents.filter((a) => a !== ev.userId);
      }
    }
    renderVisitorChat({});
  });
  show($("conn"), true);
  try {
    await client.connect();
  } catch (e) {
    if (client !== visitor.client) return;
    if (!(e instanceof EcbError && e.code === "timeout")) {
      endVisitor();
      openVisitor();
      $("visitor-start-error").textContent = `Support cannot be reached right now (${describe(e)}).`;
      show($("visitor-start-error"), true);
      return;
    }
  }
  if (client !== visitor.client) return;
  if (session.threadId && session.threadToken) {
    await showVisitorChat(session.threadId, session.threadToken);
  } else if (session.requestId) {
    // Back within the grace period: ECB pushes the place in the queue, or the invitation missed.
    setVisitorStep("queued");
  } else {
    setVisitorStep("ask");
    ($("visitor-question") as HTMLTextAreaElement).focus();
  }
}

function setVisitorStep(step: typeof visitor.step): void {
  visitor.step = step;
  show($("visitor-start"), step === "start");
  show($("visitor-ask"), step === "ask");
  show($("visitor-queue"), step === "queued");
  show($("visitor-chat"), step === "chat");
  show($("visitor-back"), step === "start" || step === "ask");
  // The workgroup's status matters while deciding to ask: refreshed every few seconds then.
  if (step === "ask" || step === "queued") {
    void refreshVisitorStatus();
    visitor.statusTimer ??= setInterval(() => void refreshVisitorStatus(), 5000);
  } else if (visitor.statusTimer) {
    clearInterval(visitor.statusTimer);
    visitor.statusTimer = null;
  }
  // The workgroup's figures are for deciding to ask and for waiting, not for the chat.
  if (step === "start" || step === "chat") $("visitor-status").textContent = "";
  renderVisitorQueue();
}

async function refreshVisitorStatus(): Promise<void> {
  const client = visitor.client;
  if (!client || client.state !== "connected") return;
  try {
    renderVisitorStatus(await client.getWorkgroupStatus({ workgroup: VISITOR_WORKGROUP }));
  } catch (e) {
    $("visitor-status").textContent = describe(e);
  }
}

function renderVisitorStatus(st: WorkgroupStatus): void {
  if (visitor.step !== "ask" && visitor.step !== "queued") return; // an answer that came after the step changed
  $("visitor-title").textContent = st.displayName || "Customer support";
  const el = $("visitor-status");
  el.dataset.open = String(st.open);
  el.dataset.agents = String(st.agentsAvailable);
  el.dataset.step = visitor.step;
  if (!st.open) {
    // With opening hours ECB says when it opens next; without, it is up to the operators.
    const opens = st.opensAt ? new Date(st.opensAt) : null;
    el.textContent = opens && !isNaN(opens.getTime())
      ? `Closed right now: we open again ${opens.toLocaleString(undefined, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" })}.`
      : "Closed right now: please come back later.";
  } else {
    const agents = st.agentsAvailable === 1 ? "1 agent available" : `${st.agentsAvailable} agents available`;
    const queue = st.queueLength ? `${st.queueLength} waiting` : "nobody waiting";
    // The workgroup's estimate is for someone who asks now: while queued, the visitor's own
    // (the queue push) is the one shown, below; with an agent free for them, there is no wait to announce.
    const wait = visitor.step === "ask" && st.agentsAvailable <= st.queueLength && st.estimatedWait > 0 ? ` · ${about(st.estimatedWait)} wait` : "";
    el.textContent = `Open · ${agents} · ${queue}${wait}`;
  }
  ($("visitor-ask-submit") as HTMLButtonElement).disabled = !st.open;
}

/** An estimated wait (seconds, a hint) for people: "about 30 s", "about 2 min". */
function about(seconds: number): string {
  return seconds < 60 ? `about ${seconds} s` : `about ${Math.round(seconds / 60)} min`;
}

async function onVisitorAsk(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const client = visitor.client;
  const session = visitor.session;
  const question = ($("visitor-question") as HTMLTextAreaElement).value.trim();
  const err = $("visitor-ask-error");
  if (!client || !session) return;
  if (!question) {
    err.textContent = "Write your question first.";
    show(err, true);
    return;
  }
  const submit = $("visitor-ask-submit") as HTMLButtonElement;
  submit.disabled = true;
  show(err, false);
  try {
    // The topic picks the workgroup's queue (the demo's billing queue matches {topic: "billing"}).
    const topic = ($("visitor-topic") as HTMLSelectElement).value;
    const res = await client.supportAsk({ workgroup: VISITOR_WORKGROUP, question, ...(topic ? { metadata: { topic } } : {}) });
    session.requestId = res.requestId;
    session.question = question;
    saveVisitorSession();
    visitor.queue = visitor.queue?.requestId === res.requestId ? visitor.queue : res; // a queue push may have come first
    $("visitor-note").textContent = "";
    setVisitorStep("queued");
    ($("visitor-cancel") as HTMLButtonElement).focus();
  } catch (e) {
    err.textContent = describe(e);
    show(err, true);
  } finally {
    submit.disabled = false;
  }
}

function onVisitorQueue(ev: QueueEvent): void {
  if (visitor.session?.requestId && ev.requestId !== visitor.session.requestId) return;
  visitor.queue = ev;
  renderVisitorQueue();
  if (visitor.step === "chat") renderVisitorChat({});
}

function renderVisitorQueue(): void {
  const q = visitor.queue;
  $("visitor-position").textContent = q ? (q.position <= 1 ? "You are next in the queue." : `You are number ${q.position} in the queue.`) : "Waiting in the queue…";
  $("visitor-wait").textContent = q ? (q.estimatedWait > 0 ? `Estimated wait: ${about(q.estimatedWait)}.` : "An agent will be with you any moment.") : "";
  $("visitor-question-echo").textContent = visitor.session?.question ? `“${visitor.session.question}”` : "";
  $("visitor-queue-name").textContent = q?.queue ? `Queue: ${q.queue}` : "";
}

async function onVisitorCancel(): Promise<void> {
  const client = visitor.client;
  const requestId = visitor.session?.requestId;
  if (!client || !requestId) return;
  try {
    await client.supportCancel({ requestId });
    onVisitorEnded({ requestId, state: "cancelled" }); // the supportEnded push says the same
  } catch (e) {
    banner(describe(e));
  }
}

async function onVisitorInvitation(ev: InvitationEvent): Promise<void> {
  const session = visitor.session;
  if (!session || (session.requestId && ev.requestId !== session.requestId)) return;
  session.requestId = ev.requestId;
  session.threadId = ev.thread.id;
  session.threadToken = ev.threadToken;
  saveVisitorSession();
  state.threads.set(ev.thread.id, { thread: ev.thread, unread: 0 });
  await showVisitorChat(ev.thread.id, ev.threadToken);
}

/** The chat step: listen to the support thread and show it. */
async function showVisitorChat(threadId: string, threadToken: string): Promise<void> {
  const client = visitor.client;
  if (!client) return;
  visitor.threadId = threadId;
  visitor.queue = null;
  const others = (t?: Thread) => (t?.members ?? []).filter((m) => m !== state.me?.id);
  visitor.agents = others(state.threads.get(threadId)?.thread); // the invitation's thread: the agent who took it
  setVisitorStep("chat");
  renderVisitorChat({ stick: true });
  try {
    const page = await client.getThread({ threadToken: client.threadToken(threadId) ?? threadToken, limit: 50 });
    state.threads.set(threadId, { thread: page.thread, unread: 0 });
    if (!visitor.agents.length) visitor.agents = others(page.thread); // after a reload
    addMessages(threadId, page.messages);
    history(threadId).loaded = true;
    renderVisitorChat({ stick: true });
    visitorMarkSeen();
    ($("visitor-input") as HTMLTextAreaElement).focus();
  } catch (e) {
    if (e instanceof EcbError && (e.code === "forbidden" || e.code === "not_found")) visitorEnded("This chat is no longer available.");
    else banner(describe(e));
  }
}

function onVisitorMessage(threadId: string, message: Message): void {
  if (threadId !== visitor.threadId) return;
  if (message.authorId === state.me?.id && message.clientMessageId) state.pending.delete(message.clientMessageId);
  if (!addMessages(threadId, [message])) return;
  stoppedTyping(threadId, message.authorId);
  // A chat put back in the queue and taken again tells the visitor nothing (no invitation: they
  // are in the thread already): an agent's message shows it is answered again.
  if (message.authorId !== state.me?.id) {
    visitor.queue = null;
    if (!visitor.agents.includes(message.authorId)) visitor.agents.push(message.authorId);
  }
  renderVisitorChat({ stick: message.authorId === state.me?.id });
  visitorMarkSeen();
}

function visitorMarkSeen(): void {
  const client = visitor.client;
  const threadId = visitor.threadId;
  if (!client || !threadId || document.hidden) return;
  const last = [...history(threadId).messages].reverse().find((m) => m.authorId !== state.me?.id);
  const token = client.threadToken(threadId);
  if (!last || !token || state.marked.get(threadId) === last.id) return;
  state.marked.set(threadId, last.id);
  client.markRead({ threadToken: token, messageId: last.id }).catch(() => state.marked.delete(threadId));
}

function onVisitorTransferred(ev: SupportTransferredEvent): void {
  const threadId = visitor.threadId;
  if (!threadId || ev.requestId !== visitor.session?.requestId) return;
  const text = ev.toAgent ? `${nameOf(ev.toAgent)} takes over your chat.` : "Your chat is waiting for the next available agent.";
  visitor.agents = ev.toAgent ? [ev.toAgent] : [];
  history(threadId).notices.push({ at: new Date().toISOString(), text });
  renderVisitorChat({ stick: true });
}

function onVisitorEnded(ev: SupportEndedEvent): void {
  const session = visitor.session;
  if (!session || ev.requestId !== session.requestId) return;
  if (!session.threadId) {
    // Never got to chat: back to the question, which is kept.
    session.requestId = undefined;
    saveVisitorSession();
    visitor.queue = null;
    $("visitor-note").textContent = ev.state === "cancelled" ? "You left the queue. Ask again whenever you like." : "Your request has ended. You can ask again.";
    setVisitorStep("ask");
    return;
  }
  visitorEnded(ev.state === "closed" ? "This chat has ended. Thank you for contacting us!" : `This chat has ended (${ev.state}).`);
}

/**
 * The chat is over: the transcript stays, with the reason and a Close button. The guest's
 * connection has nothing left to do, so the widget disconnects: the agents see the visitor
 * leave (offline) when the chat ends, not when the page is closed.
 */
function visitorEnded(text: string): void {
  visitor.ended = text;
  if (visitor.threadId) visitor.client?.stopTyping(visitor.threadId);
  sessionStorage.removeItem(VISITOR_KEY); // nothing to come back to
  if (visitor.step !== "chat") setVisitorStep("chat");
  renderVisitorChat({ stick: true });
  visitor.client?.close();
  show($("conn"), false);
  ($("visitor-close") as HTMLButtonElement).focus();
}

function renderVisitorChat({ stick }: { stick?: boolean }): void {
  const threadId = visitor.threadId;
  const ended = !!visitor.ended;
  show($("visitor-composer"), !ended && !!threadId);
  show($("visitor-chat-actions"), !ended && !!threadId);
  show($("visitor-ended"), ended);
  $("visitor-ended-text").textContent = visitor.ended;
  if (!threadId) return;
  const agents = visitor.agents.map(nameOf);
  const q = visitor.queue;
  $("visitor-with").textContent = ended
    ? ""
    : q
      ? `Waiting for the next agent · number ${q.position} in the queue`
      : agents.length
        ? `You are chatting with ${agents.join(" and ")}`
        : "Connecting you with an agent…";
  const scroller = $("visitor-scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  $("visitor-messages").replaceChildren(...messageItems(threadId));
  if (stick || atBottom) scroller.scrollTop = scroller.scrollHeight;
  renderVisitorTyping();
}

function renderVisitorTyping(): void {
  const threadId = visitor.threadId;
  const text = threadId && !visitor.ended ? typingText(threadId) : "";
  const el = $("visitor-typing");
  el.replaceChildren();
  if (text) el.append(h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), h("span", {}, text));
}

function onVisitorSend(ev: Event): void {
  ev.preventDefault();
  const input = $("visitor-input") as HTMLTextAreaElement;
  const body = input.value.trim();
  const client = visitor.client;
  const threadId = visitor.threadId;
  const token = threadId ? client?.threadToken(threadId) : undefined;
  if (!body || !client || !threadId || !token || visitor.ended) return;
  input.value = "";
  autosize(input);
  void visitorDeliver(client, { clientMessageId: newClientMessageId(), threadId, threadToken: token, body, createdAt: new Date().toISOString() });
}

async function visitorDeliver(client: EcbClient, p: Pending): Promise<void> {
  state.pending.set(p.clientMessageId, p);
  renderVisitorChat({ stick: true });
  try {
    const res = await client.sendMessage({ threadToken: client.threadToken(p.threadId) ?? p.threadToken, body: p.body, clientMessageId: p.clientMessageId });
    state.pending.delete(p.clientMessageId);
    addMessages(p.threadId, [res.message]);
  } catch (e) {
    if (e instanceof EcbError && e.code === "closed") return;
    p.failed = describe(e);
  }
  renderVisitorChat({ stick: true });
}

async function onVisitorEnd(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  ($("end-dialog") as HTMLDialogElement).close();
  const client = visitor.client;
  const requestId = visitor.session?.requestId;
  if (!client || !requestId) return;
  try {
    await client.supportClose({ requestId });
    onVisitorEnded({ requestId, state: "closed" }); // the supportEnded push says the same
  } catch (e) {
    if (e instanceof EcbError && e.code === "not_found") visitorEnded("This chat has ended.");
    else banner(describe(e));
  }
}

// ---------- wiring ----------

function wire(): void {
  $("login-form").addEventListener("submit", (e) => void onLogin(e as SubmitEvent));
  $("logout").addEventListener("click", () => logout());
  $("banner-close").addEventListener("click", () => banner(null));
  $("new-thread").addEventListener("click", () => openNewDialog());
  $("new-cancel").addEventListener("click", () => ($("new-dialog") as HTMLDialogElement).close());
  $("new-search").addEventListener("input", onSearchInput);
  $("new-search").addEventListener("keydown", (e) => {
    if (e.key === "Enter") e.preventDefault(); // searching is not creating
  });
  $("new-form").addEventListener("submit", (e) => void onCreate(e as SubmitEvent));
  $("composer").addEventListener("submit", onSend);
  $("composer-context-cancel").addEventListener("click", () => setComposing(null));
  $("msg-search").addEventListener("input", onMessageSearchInput);
  $("msg-search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(messageSearchTimer);
    const query = ($("msg-search") as HTMLInputElement).value.trim();
    if (query) void runMessageSearch(query, ++messageSearchSeq);
  });
  $("attach").addEventListener("change", () => void onAttach());
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
    if (e.key === "Escape" && state.composing) {
      e.preventDefault();
      setComposing(null);
    }
  });
  input.addEventListener("input", () => {
    autosize(input);
    if (!state.current || state.composing?.kind === "edit") return; // an edit is not a new message coming
    if (input.value.trim()) state.client?.noteTyping(state.current);
    else state.client?.stopTyping(state.current);
  });
  input.addEventListener("blur", () => {
    if (state.current && !input.value.trim()) state.client?.stopTyping(state.current);
  });
  // Customer support: the agent console and the supervisor view.
  $("agent-available").addEventListener("change", () => void setAvailable(($("agent-available") as HTMLInputElement).checked));
  $("conversations-refresh").addEventListener("click", () => void refreshConversations());
  $("support-close").addEventListener("click", openCloseDialog);
  $("close-cancel").addEventListener("click", () => ($("close-dialog") as HTMLDialogElement).close());
  $("close-form").addEventListener("submit", (e) => void closeSupportChat(e as SubmitEvent));
  $("support-leave").addEventListener("click", () => void leaveSupportChat());
  $("support-transfer").addEventListener("click", openTransferDialog);
  $("transfer-cancel").addEventListener("click", () => ($("transfer-dialog") as HTMLDialogElement).close());
  $("transfer-form").addEventListener("submit", (e) => void onTransfer(e as SubmitEvent));
  $("support-invite").addEventListener("click", openInviteDialog);
  $("invite-cancel").addEventListener("click", () => ($("invite-dialog") as HTMLDialogElement).close());
  $("invite-form").addEventListener("submit", (e) => void onInvite(e as SubmitEvent));
  $("monitor-join").addEventListener("click", () => {
    const chat = currentChat();
    if (chat) void joinConversation(chat.requestId);
  });
  $("whisper").addEventListener("change", () => {
    renderWhisperMode();
    ($("composer-input") as HTMLTextAreaElement).focus();
  });
  // The visitor's widget.
  $("visitor-start").addEventListener("submit", (e) => void onVisitorStart(e as SubmitEvent));
  $("visitor-ask").addEventListener("submit", (e) => void onVisitorAsk(e as SubmitEvent));
  $("visitor-cancel").addEventListener("click", () => void onVisitorCancel());
  $("visitor-end").addEventListener("click", () => {
    ($("end-dialog") as HTMLDialogElement).showModal();
    ($("end-cancel") as HTMLButtonElement).focus();
  });
  $("end-cancel").addEventListener("click", () => ($("end-dialog") as HTMLDialogElement).close());
  $("end-form").addEventListener("submit", (e) => void onVisitorEnd(e as SubmitEvent));
  $("visitor-close").addEventListener("click", leaveVisitor);
  $("visitor-back").addEventListener("click", leaveVisitor);
  $("visitor-composer").addEventListener("submit", onVisitorSend);
  const vInput = $("visitor-input") as HTMLTextAreaElement;
  vInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) onVisitorSend(e);
  });
  vInput.addEventListener("input", () => {
    autosize(vInput);
    const id = visitor.threadId;
    if (!id) return;
    if (vInput.value.trim()) visitor.client?.noteTyping(id);
    else visitor.client?.stopTyping(id);
  });
  window.addEventListener("hashchange", () => {
    // #visitor opens the widget (unless signed in); leaving it with the browser's Back ends it.
    if (location.hash === "#visitor" && !state.client) openVisitor();
    else if (location.hash !== "#visitor" && !$("visitor").hidden) {
      endVisitor();
      showLogin();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) visitorMarkSeen();
    if (!document.hidden && state.current) {
      const entry = state.threads.get(state.current);
      if (entry?.unread || entry?.mentioned) {
        entry.unread = 0;
        entry.mentioned = false;
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
  // A guest on the support widget (#visitor, or a chat going on before a reload).
  if (!session && (location.hash === "#visitor" || readVisitorSession())) openVisitor();
  else if (session) await start(session.accessToken);
  else showLogin();
}

void main();
