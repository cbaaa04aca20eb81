// @ecb/client when the connection breaks: reconnection, re-attach, missed
// messages, the outbox, lost acks, ECB restarts, token refresh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EcbClient } from "../dist/index.js";
import { startEcb, startProxy, login, rest, waitEvent, waitState, collect, until, fast } from "./helpers.mjs";

let ecb;
const clients = [];

function client(url, opts) {
  const c = new EcbClient({ url, requestTimeout: 15000, socketOptions: fast, ...opts });
  clients.push(c);
  return c;
}

async function connectAs(url, user, opts = {}) {
  const c = client(url, { accessToken: await login(ecb.backendUrl, user), ...opts });
  await c.connect();
  return c;
}

/** alice (through proxy) and bob (direct) share a new thread both listen to. */
async function pair(proxy) {
  const alice = await connectAs(proxy.url, "alice");
  const bob = await connectAs(ecb.url, "bob");
  const created = await alice.createThread({ participants: ["bob"], subject: "reconnect", message: { body: "first" } });
  const token = (await bob.getThreads()).items.find((t) => t.thread.id === created.thread.id).threadToken;
  await bob.getThread({ threadToken: token });
  return { alice, bob, threadId: created.thread.id };
}

/** Every body of the thread as the backend stores it (read through REST as bob). */
async function storedBodies(url, bobClient, threadId) {
  const r = rest(url);
  const page = await r.thread(bobClient.userToken, threadId, bobClient.threadToken(threadId));
  return page.messages.map((m) => m.body);
}

const count = (list, body) => list.filter((x) => x === body).length;

before(async () => {
  ecb = await startEcb();
});

after(async () => {
  for (const c of clients) c.close();
  await ecb?.stop();
});

test("after a network cut the client reconnects, re-attaches and emits the missed messages once", async () => {
  const proxy = await startProxy(ecb.url);
  const { alice, bob, threadId } = await pair(proxy);
  const aliceGot = collect(alice);
  const states = [];
  alice.on("connection", (e) => states.push(e.state));

  proxy.cut();
  await waitState(alice, "reconnecting");
  // Messages stored while alice is away: she gets no push of them.
  for (const body of ["missed 1", "missed 2", "missed 3"]) await bob.sendMessage({ threadToken: bob.threadToken(threadId), body });
  assert.equal(aliceGot.length, 0);

  proxy.heal();
  await until(alice, "message", () => aliceGot.length >= 3);
  assert.equal(alice.state, "connected");
  assert.deepEqual(aliceGot.map((e) => e.message.body), ["missed 1", "missed 2", "missed 3"]);
  assert.ok(aliceGot.every((e) => e.recovered && e.threadId === threadId));

  // Still a listener after the re-attach: live pushes flow again, no duplicates.
  await bob.sendMessage({ threadToken: bob.threadToken(threadId), body: "live again" });
  await until(alice, "message", () => aliceGot.some((e) => e.message.body === "live again"));
  const live = aliceGot.find((e) => e.message.body === "live again");
  assert.equal(live.recovered, false);
  assert.equal(new Set(aliceGot.map((e) => e.message.id)).size, aliceGot.length, "no message emitted twice");
  assert.deepEqual(states.slice(0, 2), ["reconnecting", "connected"]);
  await proxy.close();
});

test("messages sent while disconnected wait in the outbox and are stored exactly once", async () => {
  const proxy = await startProxy(ecb.url);
  const { alice, bob, threadId } = await pair(proxy);
  const bobGot = collect(bob);
  const token = alice.threadToken(threadId);

  proxy.cut();
  await waitState(alice, "reconnecting");
  const queuedEvent = waitEvent(alice, "connection", (e) => e.queued === 3);
  const sends = ["queued 1", "queued 2", "queued 3"].map((body) => alice.sendMessage({ threadToken: token, body }));
  const ev = await queuedEvent;
  assert.equal(ev.state, "reconnecting");
  assert.equal(alice.queued, 3);

  proxy.heal();
  const results = await Promise.all(sends);
  assert.equal(alice.queued, 0);
  assert.deepEqual(results.map((r) => r.message.body), ["queued 1", "queued 2", "queued 3"]);
  assert.ok(results.every((r) => r.message.clientMessageId));
  await until(bob, "message", () => bobGot.length >= 3);
  assert.deepEqual(bobGot.map((e) => e.message.body), ["queued 1", "queued 2", "queued 3"]);
  const stored = await storedBodies(ecb.url, bob, threadId);
  for (const b of ["queued 1", "queued 2", "queued 3"]) assert.equal(count(stored, b), 1, b);
  await proxy.close();
});

test("a send whose ack was lost is retried with the same clientMessageId: one message", async () => {
  const proxy = await startProxy(ecb.url);
  const { alice, bob, threadId } = await pair(proxy);
  const bobGot = collect(bob);

  proxy.muteDown(); // ECB gets the send, alice never hears back
  const sending = alice.sendMessage({ threadToken: alice.threadToken(threadId), body: "ack lost", clientMessageId: "cmid-ack-lost-1" });
  await until(bob, "message", () => bobGot.length === 1); // stored and pushed
  proxy.cut();
  await waitState(alice, "reconnecting");
  assert.equal(alice.queued, 1, "still waiting for its ack");
  proxy.heal();
  const res = await sending;
  assert.equal(res.message.id, bobGot[0].message.id, "the retry answered with the stored message");
  assert.equal(res.message.clientMessageId, "cmid-ack-lost-1");

  // One more message through: if the retry had been pushed as a new message, bob would have it before this one.
  await alice.sendMessage({ threadToken: alice.threadToken(threadId), body: "marker" });
  await until(bob, "message", () => bobGot.some((e) => e.message.body === "marker"));
  assert.equal(count(bobGot.map((e) => e.message.body), "ack lost"), 1, "bob saw it once");
  const stored = await storedBodies(ecb.url, bob, threadId);
  assert.equal(count(stored, "ack lost"), 1, "stored once");
  await proxy.close();
});

test("the outbox is bounded by outboxLimit", async () => {
  const proxy = await startProxy(ecb.url);
  const alice = await connectAs(proxy.url, "alice", { outboxLimit: 2 });
  const t = await alice.createThread({ participants: ["carol"], message: { body: "limit" } });
  proxy.cut();
  await waitState(alice, "reconnecting");
  const a = alice.sendMessage({ threadToken: t.threadToken, body: "one" });
  const b = alice.sendMessage({ threadToken: t.threadToken, body: "two" });
  await assert.rejects(alice.sendMessage({ threadToken: t.threadToken, body: "three" }), { code: "outbox_full", fromServer: false });
  proxy.heal();
  await Promise.all([a, b]);
  await proxy.close();
});

test("after ECB restarts the client reconnects by itself and re-attaches (new epoch)", async () => {
  const own = await startEcb();
  const alice = client(own.url, { accessToken: await login(own.backendUrl, "alice") });
  await alice.connect();
  const t = await alice.createThread({ participants: ["bob"], message: { body: "before restart" } });
  const aliceGot = collect(alice);
  const r = rest(own.url);

  const down = waitState(alice, ["reconnecting", "offline"]);
  const restarted = await own.restart();
  try {
    await down;
    await waitState(alice, "connected", 30000);
    // Sent after the restart, by bob over REST: alice must be a listener again to get it.
    const bobToken = await r.userToken(await login(own.backendUrl, "bob"));
    const bobThread = (await r.threads(bobToken)).items.find((x) => x.thread.id === t.thread.id);
    await r.send(bobToken, t.thread.id, bobThread.threadToken, "after restart");
    await until(alice, "message", () => aliceGot.some((e) => e.message.body === "after restart"));
    assert.equal(count(aliceGot.map((e) => e.message.body), "after restart"), 1);
    // alice's queued-nothing outbox and her own sends still work.
    const sent = await alice.sendMessage({ threadToken: alice.threadToken(t.thread.id), body: "me too" });
    assert.equal(sent.message.body, "me too");
  } finally {
    alice.close();
    await restarted.stop();
  }
});

test("tokenExpiring: the client refreshes its userToken on the live connection", async () => {
  // The demo's userTokens live an hour; warn 59m58s ahead so the warning comes at once.
  const own = await startEcb({ sets: ["socketio.tokenExpiryWarning=3598s"] });
  try {
    const alice = client(own.url, { accessToken: await login(own.backendUrl, "alice") });
    const expiring = waitEvent(alice, "tokenExpiring");
    const firstSession = waitEvent(alice, "session");
    await alice.connect();
    const first = await firstSession;
    const warned = await expiring;
    assert.ok(Date.parse(warned.expiresAt) > Date.now());
    // The refresh: getUserToken with the access token, then refreshToken; a new session follows.
    const refreshed = await waitEvent(alice, "session", (s) => s.userToken !== first.userToken);
    assert.equal(refreshed.user.id, "alice");
    assert.equal(alice.userToken, refreshed.userToken);
    assert.equal(alice.state, "connected");
    alice.close();
  } finally {
    await own.stop();
  }
});
