// @ecb/client's live features against a real `ecb demo`: presence, typing,
// read marks, group threads, recovery with `resume` after the connection is
// killed mid-conversation, and the `closing` event (kicked, token_expired).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { EcbClient, EcbError } from "../dist/index.js";
import { startEcb, startProxy, login, rest, ecbBinary, waitEvent, waitState, collect, until, fast } from "./helpers.mjs";

const SERVER_KEY = "test-server-api-key-0123456789abcdef0123";
let ecb;
const clients = [];

function client(url, opts) {
  const c = new EcbClient({ url, requestTimeout: 15000, socketOptions: fast, ...opts });
  clients.push(c);
  return c;
}

async function connectAs(user, opts = {}, url = ecb.url) {
  const c = client(url, { accessToken: await login(ecb.backendUrl, user), ...opts });
  await c.connect();
  return c;
}

/** A thread of `owner` with `others`, every client listening to it; returns its id. */
async function shared(owner, others, subject) {
  const created = await owner.createThread({ participants: others.map((c) => c.user.id), subject, message: { body: `${subject}: hello` } });
  for (const c of others) {
    await c.getThreads({ pageSize: 100 });
    await c.getThread({ threadToken: c.threadToken(created.thread.id) });
  }
  return created.thread.id;
}

/** Records every event of the names given, in order, as [name, payload]. */
function record(c, names) {
  const log = [];
  for (const n of names) c.on(n, (e) => log.push([n, e]));
  return log;
}

/** A userToken signed with the demo's key (the backend's), valid for ttl. */
function signedUserToken(e, user, ttl) {
  return execFileSync(ecbBinary(), ["token", "--key", join(e.data, "private.pem"), "--aud", "ecb-demo", "--user", user, "--ttl", ttl], {
    encoding: "utf8",
  }).trim();
}

before(async () => {
  // A fast ping so a dead connection is noticed in half a second; a Server API key to kick users.
  ecb = await startEcb({
    sets: [
      "socketio.pingInterval=300ms",
      "socketio.pingTimeout=200ms",
      `serverApi.keys=[{name: test, key: "${SERVER_KEY}", scopes: ["*"]}]`,
    ],
  });
});

after(async () => {
  for (const c of clients) c.close();
  await ecb?.stop();
});

test("presence: online, setPresence with status, getPresence, offline with lastSeen, re-applied after a reconnect", async () => {
  const alice = await connectAs("alice");
  await alice.getContacts(); // alice now sees her contacts' presence
  const proxy = await startProxy(ecb.url);
  const online = waitEvent(alice, "presence", (p) => p.userId === "bob" && p.show === "available");
  const bob = await connectAs("bob", {}, proxy.url);
  await online;

  const away = waitEvent(alice, "presence", (p) => p.userId === "bob" && p.show === "away");
  const set = await bob.setPresence({ show: "away", status: "lunch" });
  assert.deepEqual({ userId: set.userId, show: set.show, status: set.status }, { userId: "bob", show: "away", status: "lunch" });
  assert.equal((await away).status, "lunch");
  const got = await alice.getPresence({ userIds: ["bob", "carol"] });
  assert.deepEqual(
    got.presence.map((p) => [p.userId, p.show, p.status]),
    [
      ["bob", "away", "lunch"],
      ["carol", "offline", undefined],
    ],
  );
  await assert.rejects(alice.getPresence({ userIds: ["agent1"] }), { code: "forbidden", fromServer: true });

  // The connection dies: bob goes offline; back, his new connection starts `available` and
  // the client sets `away` again by itself.
  const offline = waitEvent(alice, "presence", (p) => p.userId === "bob" && p.show === "offline");
  proxy.cut();
  assert.ok((await offline).lastSeen, "offline carries lastSeen");
  const awayAgain = waitEvent(alice, "presence", (p) => p.userId === "bob" && p.show === "away");
  proxy.heal();
  await waitState(bob, "connected");
  assert.equal((await awayAgain).status, "lunch");

  const gone = waitEvent(alice, "presence", (p) => p.userId === "bob" && p.show === "offline");
  bob.close();
  await gone;
  await proxy.close();
  alice.close();
});

test("typing: the raw operation, and noteTyping's pacing (one start, stop on send and on idle)", async () => {
  const alice = await connectAs("alice");
  const bob = await connectAs("bob", { typingRefresh: 150, typingIdle: 250 });
  const threadId = await shared(alice, [bob], "typing");
  const log = record(alice, ["typing", "message"]);

  const start = waitEvent(alice, "typing", (t) => t.state === "start");
  await bob.typing({ threadToken: bob.threadToken(threadId), state: "start" });
  assert.deepEqual(await start, { threadId, userId: "bob", state: "start" });
  const stop = waitEvent(alice, "typing", (t) => t.state === "stop");
  await bob.typing({ threadToken: bob.threadToken(threadId), state: "stop" });
  await stop;
  log.length = 0;

  // Many keystrokes at once: one start. Sending the message: stop, then the message.
  for (let i = 0; i < 10; i++) bob.noteTyping(threadId);
  await bob.sendMessage({ threadToken: bob.threadToken(threadId), body: "typed" });
  await until(alice, "message", () => log.some(([n]) => n === "message"));
  assert.deepEqual(
    log.map(([n, e]) => (n === "typing" ? e.state : e.message.body)),
    ["start", "stop", "typed"],
  );

  // Typing on after typingRefresh sends start again; then idle ends it with stop.
  log.length = 0;
  const first = waitEvent(alice, "typing", (t) => t.state === "start");
  bob.noteTyping(threadId);
  await first;
  await new Promise((r) => setTimeout(r, 180)); // the user keeps typing past typingRefresh (150 ms)
  const second = waitEvent(alice, "typing", (t) => t.state === "start");
  bob.noteTyping(threadId);
  await second;
  const t0 = Date.now();
  await waitEvent(alice, "typing", (t) => t.state === "stop");
  assert.ok(Date.now() - t0 < 3000, "stopped by the client's idle timer, not ECB's 6 s timeout");
  assert.deepEqual(
    log.map(([, e]) => e.state),
    ["start", "start", "stop"],
  );
  // Not connected: nothing is queued (typing is ephemeral).
  await assert.rejects(bob.typing({ threadToken: bob.threadToken(threadId), state: "begin" }), { code: "invalid_argument", fromServer: false });
});

test("markRead: the read push reaches the other side; the reader's own offset does not break its stream", async () => {
  const alice = await connectAs("alice");
  const bob = await connectAs("bob");
  const threadId = await shared(alice, [bob], "read marks");
  const bobGot = collect(bob);
  const errors = [];
  bob.on("error", (e) => errors.push(e));
  const sent = await alice.sendMessage({ threadToken: alice.threadToken(threadId), body: "read me" });
  await until(bob, "message", () => bobGot.some((e) => e.message.id === sent.message.id));

  const read = waitEvent(alice, "read", (r) => r.userId === "bob");
  const res = await bob.markRead({ threadToken: bob.threadToken(threadId), messageId: sent.message.id });
  assert.equal(res.unread, 0);
  assert.equal(res.messageId, sent.message.id);
  const r = await read;
  assert.equal(r.threadId, threadId);
  assert.equal(r.messageId, sent.message.id);
  assert.equal(r.recovered, false);
  assert.ok(r.offset > sent.message.offset);

  // bob's read took an offset he gets no push of: the next messages still arrive once, in order.
  for (const body of ["after read 1", "after read 2"]) await alice.sendMessage({ threadToken: alice.threadToken(threadId), body });
  await until(bob, "message", () => bobGot.some((e) => e.message.body === "after read 2"));
  assert.deepEqual(
    bobGot.map((e) => e.message.body),
    ["read me", "after read 1", "after read 2"],
  );
  // ... and as live pushes: the read's position came with its answer, so no false gap was recovered.
  assert.equal(res.offset, r.offset, "the answer carries the read push's position");
  assert.deepEqual(bobGot.map((e) => e.recovered), [false, false, false]);
  assert.deepEqual(errors, []);
  // alice's stream counted the read push: her next message from bob comes without a gap.
  const aliceGot = collect(alice);
  const answer = await bob.sendMessage({ threadToken: bob.threadToken(threadId), body: "answer" });
  await until(alice, "message", () => aliceGot.length === 1);
  assert.equal(aliceGot[0].recovered, false);
  // Read marks only move forward (the reference backend moves the author's to their own
  // message): an older one answers the current mark, pushes nothing and takes no offset.
  const aliceReads = [];
  alice.on("read", (e) => aliceReads.push(e));
  const older = await bob.markRead({ threadToken: bob.threadToken(threadId), messageId: sent.message.id });
  assert.equal(older.messageId, answer.message.id);
  await alice.sendMessage({ threadToken: alice.threadToken(threadId), body: "after the old mark" });
  await until(bob, "message", () => bobGot.some((e) => e.message.body === "after the old mark"));
  assert.deepEqual(aliceReads, []);
  assert.deepEqual(errors, []);
  await assert.rejects(bob.markRead({ threadToken: bob.threadToken(threadId) }), { code: "invalid_argument", fromServer: false });
});

test("group threads: addParticipants, member pushes, the added member is told, leaveThread stops the pushes", async () => {
  const alice = await connectAs("alice");
  const bob = await connectAs("bob");
  const carol = await connectAs("carol");
  const threadId = await shared(alice, [bob], "group");

  await assert.rejects(bob.addParticipants({ threadToken: bob.threadToken(threadId), participants: ["carol"] }), { code: "forbidden" });
  const told = waitEvent(carol, "thread", (t) => t.change === "added" && t.threadId === threadId);
  const joinedBob = waitEvent(bob, "member", (m) => m.userId === "carol" && m.change === "joined");
  const joinedAlice = waitEvent(alice, "member", (m) => m.userId === "carol" && m.change === "joined");
  const added = await alice.addParticipants({ threadToken: alice.threadToken(threadId), participants: ["carol"] });
  assert.deepEqual(added.added, ["carol"]);
  assert.deepEqual([...added.thread.members].sort(), ["alice", "bob", "carol"]);
  const ev = await told;
  assert.deepEqual([...ev.thread.members].sort(), ["alice", "bob", "carol"]);
  const j = await joinedBob;
  assert.equal(j.threadId, threadId);
  assert.equal(typeof j.offset, "number");
  await joinedAlice;

  await carol.getThreads();
  const page = await carol.getThread({ threadToken: carol.threadToken(threadId) });
  assert.deepEqual(page.messages.map((m) => m.body), ["group: hello"]);
  const carolGot = collect(carol);
  const bobGot = collect(bob);

  const left = waitEvent(carol, "member", (m) => m.userId === "bob" && m.change === "left");
  await bob.leaveThread({ threadToken: bob.threadToken(threadId) });
  assert.equal(bob.isListening(threadId), false);
  await left;

  // alice writes in the group, then to bob in another thread: bob gets only the latter.
  const other = await alice.createThread({ participants: ["bob"], message: { body: "just us" } });
  await bob.getThreads();
  await bob.getThread({ threadToken: bob.threadToken(other.thread.id) });
  await alice.sendMessage({ threadToken: alice.threadToken(threadId), body: "bob is gone" });
  await alice.sendMessage({ threadToken: other.threadToken, body: "marker" });
  await until(bob, "message", () => bobGot.some((e) => e.message.body === "marker"));
  await until(carol, "message", () => carolGot.some((e) => e.message.body === "bob is gone"));
  assert.equal(bobGot.filter((e) => e.threadId === threadId).length, 0, "bob still receives the group after leaving");
});

test("a connection killed mid-conversation resumes: the messages, read marks and member changes missed arrive once, in order", async () => {
  const proxy = await startProxy(ecb.url);
  const alice = await connectAs("alice", {}, proxy.url);
  const bob = await connectAs("bob");
  const carol = await connectAs("carol");
  const threadId = await shared(alice, [bob], "resume");
  const log = record(alice, ["message", "read", "member"]);
  const errors = [];
  alice.on("error", (e) => errors.push(e));
  const token = () => bob.threadToken(threadId);

  await bob.sendMessage({ threadToken: token(), body: "m1" });
  await until(alice, "message", () => log.length === 1);

  proxy.cut(); // the TCP connection dies without a goodbye
  await waitState(alice, "reconnecting");
  const m2 = await bob.sendMessage({ threadToken: token(), body: "m2" });
  await bob.markRead({ threadToken: token(), messageId: m2.message.id });
  await bob.sendMessage({ threadToken: token(), body: "m3" });
  proxy.heal();
  // More while alice reconnects and resumes: they must come after the missed ones, once.
  const live = (async () => {
    await waitState(alice, "connected");
    for (const body of ["m4", "m5"]) await bob.sendMessage({ threadToken: token(), body });
  })();
  await live;
  await until(alice, "message", () => log.filter(([n]) => n === "message").length >= 5);

  const got = log.map(([n, e]) => (n === "message" ? e.message.body : n === "read" ? `read ${e.messageId === m2.message.id ? "m2" : "?"}` : `${e.change} ${e.userId}`));
  assert.deepEqual(got, ["m1", "m2", "read m2", "m3", "m4", "m5"]);
  const [, r] = log.find(([n]) => n === "read");
  assert.equal(r.recovered, true, "the read mark was replayed by resume (getThread cannot bring it back)");
  for (const [n, e] of log) if (n === "message" && ["m2", "m3"].includes(e.message.body)) assert.equal(e.recovered, true);
  for (const [n, e] of log) if (n === "message" && e.message.body === "m1") assert.equal(e.recovered, false);
  const offsets = log.map(([, e]) => e.offset);
  assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), "in offset order");
  assert.equal(new Set(offsets).size, offsets.length, "each push once");

  // A member change missed while away comes back too.
  log.length = 0;
  proxy.cut();
  await waitState(alice, "reconnecting");
  await bob.sendMessage({ threadToken: token(), body: "m6" });
  await bob.leaveThread({ threadToken: token() });
  proxy.heal();
  await until(alice, "member", () => log.some(([n]) => n === "member"));
  assert.deepEqual(
    log.map(([n, e]) => [n === "message" ? e.message.body : `${e.change} ${e.userId}`, e.recovered]),
    [
      ["m6", true],
      ["left bob", true],
    ],
  );
  // And the stream goes on live after it.
  await alice.sendMessage({ threadToken: alice.threadToken(threadId), body: "to myself" });
  await alice.addParticipants({ threadToken: alice.threadToken(threadId), participants: ["carol"] });
  await until(alice, "member", () => log.some(([n, e]) => n === "member" && e.userId === "carol"));
  assert.equal(log.at(-1)[1].recovered, false);
  assert.deepEqual(errors, []);
  await proxy.close();
  carol.close();
});

test("recovery falls back to getThread when ECB no longer holds the gap (recovered: false): still once, in order", async () => {
  const own = await startEcb({ sets: ["hub.historySize=2"] });
  const proxy = await startProxy(own.url);
  try {
    const alice = client(proxy.url, { accessToken: await login(own.backendUrl, "alice") });
    await alice.connect();
    const t = await alice.createThread({ participants: ["bob"], message: { body: "small history" } });
    const r = rest(own.url);
    const bobToken = await r.userToken(await login(own.backendUrl, "bob"));
    const bobThread = (await r.threads(bobToken)).items.find((x) => x.thread.id === t.thread.id);
    const aliceGot = collect(alice);
    proxy.cut();
    await waitState(alice, "reconnecting");
    for (let i = 1; i <= 5; i++) await r.send(bobToken, t.thread.id, bobThread.threadToken, `gone ${i}`);
    proxy.heal();
    await until(alice, "message", () => aliceGot.length >= 5);
    assert.deepEqual(aliceGot.map((e) => e.message.body), ["gone 1", "gone 2", "gone 3", "gone 4", "gone 5"]);
    assert.ok(aliceGot.every((e) => e.recovered && e.epoch === undefined), "fetched with getThread");
    await r.send(bobToken, t.thread.id, bobThread.threadToken, "live");
    await until(alice, "message", () => aliceGot.length === 6);
    assert.equal(aliceGot[5].recovered, false);
    alice.close();
  } finally {
    await proxy.close();
    await own.stop();
  }
});

test("closing: kicked goes offline with a typed error; connect() later starts again", async () => {
  const alice = await connectAs("alice");
  const closing = waitEvent(alice, "closing");
  const offline = waitEvent(alice, "connection", (e) => e.state === "offline");
  const res = await fetch(`${ecb.url}/server/v1/users/alice/disconnect`, { method: "POST", headers: { authorization: `Bearer ${SERVER_KEY}` } });
  assert.equal(res.status, 200, await res.text());
  assert.deepEqual(await closing, { reason: "kicked" });
  const ev = await offline;
  assert.ok(ev.error instanceof EcbError);
  assert.equal(ev.error.code, "kicked");
  assert.equal(alice.lastError.code, "kicked");
  await assert.rejects(alice.getContacts(), { code: "kicked" });
  await alice.connect();
  assert.equal(alice.state, "connected");
  assert.equal((await alice.getContacts()).items.length, 2);
});

test("closing: token_expired gets a fresh token and reconnects; without a way to refresh, offline", async () => {
  // userTokens that expire in 3 s; the refresh on tokenExpiring fails once, so ECB ends the session.
  let calls = 0;
  const fresh = async () => rest(ecb.url).userToken(await login(ecb.backendUrl, "alice"));
  const alice = client(ecb.url, {
    userToken: signedUserToken(ecb, "alice", "3s"),
    getUserToken: async () => {
      if (++calls === 1) throw new Error("the backend is busy");
      return fresh();
    },
  });
  const stuck = client(ecb.url, { userToken: signedUserToken(ecb, "bob", "3s") });
  const refreshFailed = waitEvent(alice, "error", (e) => e.operation === "refreshToken");
  const closing = waitEvent(alice, "closing");
  const stuckOffline = waitEvent(stuck, "connection", (e) => e.state === "offline");
  await Promise.all([alice.connect(), stuck.connect()]);
  const t = await alice.createThread({ participants: ["bob"], message: { body: "across expiry" } });
  const aliceGot = collect(alice);
  await refreshFailed;
  assert.deepEqual(await closing, { reason: "token_expired" });
  await waitState(alice, "connected");
  assert.equal(calls, 2);
  // Still listening after the new session: bob's message reaches alice.
  const r = rest(ecb.url);
  const bobToken = await r.userToken(await login(ecb.backendUrl, "bob"));
  const bobThread = (await r.threads(bobToken)).items.find((x) => x.thread.id === t.thread.id);
  await r.send(bobToken, t.thread.id, bobThread.threadToken, "after expiry");
  await until(alice, "message", () => aliceGot.some((e) => e.message.body === "after expiry"));
  assert.equal(aliceGot.length, 1);

  const ev = await stuckOffline;
  assert.equal(ev.error.code, "unauthenticated");
});

test("rate_limited answers are retried after retryAfter (but typing is not)", async () => {
  const own = await startEcb({ sets: ["limits.opsPerSecondPerUser=2", "limits.opsBurstPerUser=3"] });
  try {
    const alice = client(own.url, { accessToken: await login(own.backendUrl, "alice") });
    await alice.connect();
    // Twice the burst at once: the calls beyond it wait as ECB says, then succeed.
    const started = Date.now();
    const pages = await Promise.all(Array.from({ length: 6 }, () => alice.getContacts()));
    assert.ok(pages.every((p) => p.items.length === 2));
    assert.ok(Date.now() - started >= 900, "some calls waited for their retryAfter (1 s)");
    const t = await alice.createThread({ participants: ["bob"], message: { body: "limits" } });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => alice.typing({ threadToken: t.threadToken, state: "start" })));
    assert.ok(
      results.some((r) => r.status === "rejected" && r.reason.code === "rate_limited" && r.reason.retryAfter >= 1),
      "a late typing notification is not sent again",
    );
    alice.close();
  } finally {
    await own.stop();
  }
});
