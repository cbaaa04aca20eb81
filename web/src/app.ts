// The ECB demo web app: log in on the reference backend, then chat through ECB
// with @ecb/client. Plain DOM, no framework.
import {
  EcbClient,
  EcbError,
  newClientMessageId,
  type ConnectionEvent,
  type Message,
  type Thread,
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

interface History {
  messages: Message[];
  ids: Set<string>;
  nextCursor: string | undefined;
  loaded: boolean;
  loadingOlder: boolean;
}

const SESSION_KEY = "ecb-demo-session";

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
    hist = { messages: [], ids: new Set(), nextCursor: undefined, loaded: false, loadingOlder: false };
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
  state.client?.close();
  state.client = null;
  state.me = null;
  state.threads.clear();
  state.histories.clear();
  state.pending.clear();
  state.current = null;
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
  client.on("thread", (ev) => void onThreadCreated(ev.threadId));
  client.on("error", ({ error }) => banner(describe(error)));
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
      state.threads.set(st.thread.id, { thread: newer(old?.thread, st.thread), unread: old?.unread ?? 0 });
    }
    renderContacts();
    renderThreads();
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

async function onThreadCreated(threadId: string): Promise<void> {
  if (state.threads.has(threadId)) return;
  await refreshLists();
}

function onMessage(threadId: string, message: Message): void {
  const entry = state.threads.get(threadId);
  const added = addMessages(threadId, [message]);
  if (!added) return;
  if (entry) {
    entry.thread = newer(entry.thread, { ...entry.thread, lastMessage: message, updatedAt: message.createdAt });
    if (message.authorId !== state.me?.id && (threadId !== state.current || document.hidden)) entry.unread++;
  } else {
    void refreshLists();
  }
  renderThreads();
  if (threadId === state.current) renderMessages({ stick: message.authorId === state.me?.id });
}

function onConnection(ev: ConnectionEvent): void {
  state.conn = ev;
  renderConn();
  if (ev.state === "offline" && ev.error?.code === "unauthenticated") {
    logout("Your session has expired. Please sign in again.");
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
  for (const c of state.contacts) {
    const btn = h("button", { type: "button", class: "contact", title: `Start a thread with ${c.name}` }, avatar(c.id, c.name), h("span", {}, c.name));
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
    const preview = last ? `${last.authorId === state.me?.id ? "You" : nameOf(last.authorId)}: ${last.body}` : "";
    const other = thread.members.find((m) => m !== state.me?.id) ?? thread.id;
    const btn = h(
      "button",
      {
        type: "button",
        class: "thread-item",
        "data-thread-id": thread.id,
        "aria-current": thread.id === state.current ? "true" : undefined,
      },
      avatar(other, nameOf(other)),
      h(
        "span",
        { class: "thread-item-text" },
        h("span", { class: "thread-item-title" }, threadTitle(thread)),
        h("span", { class: "thread-item-preview" }, preview),
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

async function openThread(threadId: string): Promise<void> {
  const client = state.client;
  const entry = state.threads.get(threadId);
  if (!client || !entry) return;
  state.current = threadId;
  entry.unread = 0;
  renderThreads();
  show($("thread-empty"), false);
  show($("thread-view"), true);
  $("thread-title").textContent = threadTitle(entry.thread);
  $("thread-members").textContent = entry.thread.members.map(nameOf).join(", ");
  const hist = history(threadId);
  renderMessages({ stick: true });
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
      if (state.current === threadId) renderMessages({ stick: true });
    } catch (e) {
      banner(describe(e));
    }
  }
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
  for (const m of hist.messages) {
    const day = new Date(m.createdAt).toDateString();
    if (day !== prevDay) {
      items.push(h("li", { class: "day", role: "presentation" }, dayFmt.format(new Date(m.createdAt))));
      prevDay = day;
      prevAuthor = "";
    }
    items.push(renderMessage(m, m.authorId === prevAuthor));
    prevAuthor = m.authorId;
  }
  for (const p of state.pending.values()) if (p.threadId === threadId) items.push(renderPending(p));
  list.replaceChildren(...items);
  show($("load-older"), !!hist.nextCursor);
  ($("load-older") as HTMLButtonElement).disabled = hist.loadingOlder;
  show($("history-start"), hist.loaded && !hist.nextCursor && hist.messages.length > 0);
  if (stick || atBottom) scroller.scrollTop = scroller.scrollHeight;
}

function renderMessage(m: Message, continued: boolean): HTMLElement {
  const mine = m.authorId === state.me?.id;
  return h(
    "li",
    { class: `msg${mine ? " mine" : ""}${continued ? " cont" : ""}`, "data-id": m.id },
    continued ? h("span", { class: "avatar-gap", "aria-hidden": "true" }) : avatar(m.authorId, nameOf(m.authorId)),
    h(
      "div",
      { class: "bubble", title: new Date(m.createdAt).toLocaleString() },
      continued ? null : h("div", { class: "msg-head" }, h("span", { class: "msg-author" }, mine ? "You" : nameOf(m.authorId)), h("time", { datetime: m.createdAt }, when(m.createdAt))),
      h("p", { class: "msg-body" }, m.body),
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

// ---------- wiring ----------

function wire(): void {
  $("login-form").addEventListener("submit", (e) => void onLogin(e as SubmitEvent));
  $("logout").addEventListener("click", () => logout());
  $("banner-close").addEventListener("click", () => banner(null));
  $("new-thread").addEventListener("click", () => openNewDialog());
  $("new-cancel").addEventListener("click", () => ($("new-dialog") as HTMLDialogElement).close());
  $("new-form").addEventListener("submit", (e) => void onCreate(e as SubmitEvent));
  $("composer").addEventListener("submit", onSend);
  $("load-older").addEventListener("click", () => void loadOlder());
  $("scroller").addEventListener("scroll", () => {
    if ($("scroller").scrollTop < 40) void loadOlder();
  });
  const input = $("composer-input") as HTMLTextAreaElement;
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) onSend(e);
  });
  input.addEventListener("input", () => autosize(input));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.current) {
      const entry = state.threads.get(state.current);
      if (entry?.unread) {
        entry.unread = 0;
        renderThreads();
      }
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
