// @ecb/client against a real `ecb demo`: the seed flow, errors as typed codes,
// arguments refused before sending.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EcbClient, EcbError, PROTOCOL_ERROR_CODES } from "../dist/index.js";
import { startEcb, login, waitEvent, collect, until, rest } from "./helpers.mjs";

let ecb;
const clients = [];

function client(opts) {
  const c = new EcbClient({ url: ecb.url, requestTimeout: 10000, ...opts });
  clients.push(c);
  return c;
}

async function connectAs(user, opts = {}) {
  const c = client({ accessToken: await login(ecb.backendUrl, user), ...opts });
  await c.connect();
  return c;
}

before(async () => {
  ecb = await startEcb();
});

after(async () => {
  for (const c of clients) c.close();
  await ecb?.stop();
});

test("the seed flow: session, contacts, threads, create, live messages both ways, history paging", async () => {
  const alice = client({ accessToken: await login(ecb.backendUrl, "alice") });
  const session = waitEvent(alice, "session");
  const states = [];
  alice.on("connection", (e) => states.push(e.state));
  assert.equal(alice.state, "idle");
  await alice.connect();
  assert.equal(alice.state, "connected");
  assert.deepEqual(states, ["connecting", "connected"]);
  const s = await session;
  assert.equal(s.user.id, "alice");
  assert.equal(typeof s.userToken, "string");
  assert.equal(alice.user.id, "alice");
  assert.equal(alice.userToken, s.userToken);

  const contacts = await alice.getContacts();
  assert.deepEqual(contacts.items.map((u) => u.id).sort(), ["bob", "carol"]);
  assert.equal(contacts.page, 1);
  assert.equal(contacts.hasMore, false);
  const page2 = await alice.getContacts({ page: 2, pageSize: 1 });
  assert.equal(page2.items.length, 1);
  assert.equal(page2.total, 2);

  const bob = await connectAs("bob");
  const bobThreadPush = waitEvent(bob, "thread");
  const created = await alice.createThread({ participants: ["bob"], subject: "Lunch?", message: { body: "Hi Bob" } });
  assert.equal(created.thread.subject, "Lunch?");
  assert.deepEqual([...created.thread.members].sort(), ["alice", "bob"]);
  assert.equal(created.message.body, "Hi Bob");
  assert.ok(created.message.clientMessageId, "the library gave the first message a clientMessageId");
  assert.equal(created.message.offset, 1);
  assert.ok(alice.isListening(created.thread.id));
  const pushed = await bobThreadPush;
  assert.equal(pushed.change, "created");
  assert.equal(pushed.threadId, created.thread.id);
  assert.equal(pushed.message.body, "Hi Bob");

  // Bob opens the thread with the token getThreads gave him.
  const bobThreads = await bob.getThreads();
  const mine = bobThreads.items.find((t) => t.thread.id === created.thread.id);
  assert.ok(mine, "bob's threads include the new one");
  assert.equal(bob.threadToken(created.thread.id), mine.threadToken);
  const opened = await bob.getThread({ threadToken: mine.threadToken });
  assert.deepEqual(opened.messages.map((m) => m.body), ["Hi Bob"]);
  assert.equal(typeof opened.epoch, "string");
  assert.ok(bob.isListening(created.thread.id));

  // Live, both ways.
  const bobGot = collect(bob);
  const aliceGot = collect(alice);
  const sent = await alice.sendMessage({ threadToken: created.threadToken, body: "Noon at the usual place?" });
  assert.equal(sent.message.body, "Noon at the usual place?");
  assert.ok(sent.message.clientMessageId);
  assert.notEqual(sent.threadToken, "");
  await until(bob, "message", () => bobGot.length === 1);
  assert.equal(bobGot[0].message.id, sent.message.id);
  assert.equal(bobGot[0].recovered, false);
  assert.equal(bobGot[0].offset, 2);
  const answer = await bob.sendMessage({ threadToken: bob.threadToken(created.thread.id), body: "Yes!" });
  await until(alice, "message", () => aliceGot.length === 1);
  assert.equal(aliceGot[0].message.id, answer.message.id);
  assert.equal(aliceGot[0].message.authorId, "bob");
  assert.equal(aliceGot.filter((e) => e.message.authorId === "alice").length, 0, "the author's connection gets no push of its own message");

  // History paging with before/nextCursor; a `before` page does not change listening.
  for (let i = 0; i < 5; i++) await alice.sendMessage({ threadToken: created.threadToken, body: `filler ${i}` });
  const newest = await alice.getThread({ threadToken: created.threadToken, limit: 3 });
  assert.deepEqual(newest.messages.map((m) => m.body), ["filler 2", "filler 3", "filler 4"]);
  assert.ok(newest.nextCursor);
  const older = await alice.getThread({ threadToken: created.threadToken, before: newest.nextCursor, limit: 10 });
  assert.deepEqual(older.messages.map((m) => m.body), ["Hi Bob", "Noon at the usual place?", "Yes!", "filler 0", "filler 1"]);
  assert.equal(older.nextCursor, undefined);

  // stopListening: no more pushes of the thread to bob.
  await bob.stopListening({ threadId: created.thread.id });
  assert.equal(bob.isListening(created.thread.id), false);
  const bobCount = bobGot.length;
  const carol = await connectAs("carol");
  const other = await carol.createThread({ participants: ["bob"], message: { body: "unrelated" } });
  await alice.sendMessage({ threadToken: created.threadToken, body: "after stop" });
  // A message in another thread bob listens to proves pushes still flow, in order.
  const bobThread2 = (await bob.getThreads()).items.find((t) => t.thread.id === other.thread.id);
  await bob.getThread({ threadToken: bobThread2.threadToken });
  await carol.sendMessage({ threadToken: other.threadToken, body: "ping" });
  await until(bob, "message", () => bobGot.some((e) => e.message.body === "ping"));
  assert.equal(bobGot.slice(bobCount).filter((e) => e.threadId === created.thread.id).length, 0);
});

test("errors surface as EcbError with protocol codes", async () => {
  // A refused handshake: connect() rejects, the client gives up (offline).
  const bad = client({ accessToken: "not-a-real-access-token" });
  const offline = waitEvent(bad, "connection", (e) => e.state === "offline");
  const err = await bad.connect().then(
    () => assert.fail("connected with a bad token"),
    (e) => e,
  );
  assert.ok(err instanceof EcbError);
  assert.equal(err.code, "unauthenticated");
  assert.equal(err.fromServer, true);
  const ev = await offline;
  assert.equal(ev.error.code, "unauthenticated");
  // Operations on a client that gave up reject at once with the reason.
  await assert.rejects(bad.getContacts(), (e) => e instanceof EcbError && e.code === "unauthenticated");

  const alice = await connectAs("alice");
  const carol = await connectAs("carol");
  await assert.rejects(alice.getThread({ threadToken: "garbage.token.here" }), { name: "EcbError", code: "unauthenticated" });
  const t = await alice.createThread({ participants: ["bob"], message: { body: "private" } });
  // Carol holds alice's threadToken: ECB refuses it (issued for another user).
  await assert.rejects(carol.getThread({ threadToken: t.threadToken }), { code: "forbidden" });
  await assert.rejects(carol.sendMessage({ threadToken: t.threadToken, body: "let me in" }), { code: "forbidden" });
  // Too large for the configured limit (16 KiB): the server decides.
  await assert.rejects(alice.sendMessage({ threadToken: t.threadToken, body: "x".repeat(17000) }), { code: "payload_too_large" });
  // The token is for another thread than the threadId given.
  const t2 = await alice.createThread({ participants: ["carol"], message: { body: "other" } });
  await assert.rejects(alice.getThread({ threadToken: t.threadToken, threadId: t2.thread.id }), { code: "invalid_argument" });
  // Nothing of the failed sends reached the thread.
  const page = await alice.getThread({ threadToken: t.threadToken });
  assert.deepEqual(page.messages.map((m) => m.body), ["private"]);
  for (const e of [err]) assert.ok(PROTOCOL_ERROR_CODES.includes(e.code));
});

test("a refused userToken is replaced through the getUserToken callback", async () => {
  let calls = 0;
  const bob = client({
    userToken: "expired-or-garbage",
    getUserToken: async () => {
      calls++;
      return rest(ecb.url).userToken(await login(ecb.backendUrl, "bob"));
    },
  });
  await bob.connect();
  assert.equal(calls, 1);
  const contacts = await bob.getContacts();
  assert.deepEqual(contacts.items.map((u) => u.id).sort(), ["alice", "carol"]);

  // A callback that cannot help: the client gives up with unauthenticated.
  const hopeless = client({ userToken: "garbage", getUserToken: async () => "still-garbage" });
  await assert.rejects(hopeless.connect(), { code: "unauthenticated" });
  assert.equal(hopeless.state, "offline");
});

test("invalid arguments are refused before anything is sent", async () => {
  // An idle client has no connection: had it tried to send, it would say `disconnected`.
  const idle = new EcbClient({ url: ecb.url });
  const tok = "some.thread.token";
  const cases = [
    () => idle.getUserToken({}),
    () => idle.getUserToken({ accessToken: "" }),
    () => idle.refreshToken({ userToken: 42 }),
    () => idle.getContacts({ page: 0 }),
    () => idle.getContacts({ pageSize: 2.5 }),
    () => idle.getThreads({ page: "1" }),
    () => idle.getThreads(null),
    () => idle.createThread({ participants: [], message: { body: "x" } }),
    () => idle.createThread({ participants: ["bob", ""], message: { body: "x" } }),
    () => idle.createThread({ participants: ["bob"], message: { body: "   " } }),
    () => idle.createThread({ participants: ["bob"], subject: 7, message: { body: "x" } }),
    () => idle.createThread({ participants: "bob", message: { body: "x" } }),
    () => idle.createThread({ participants: ["bob"] }),
    () => idle.getThread({}),
    () => idle.getThread({ threadToken: tok, limit: 0 }),
    () => idle.getThread({ threadToken: tok, before: "" }),
    () => idle.sendMessage({ threadToken: tok }),
    () => idle.sendMessage({ threadToken: "", body: "x" }),
    () => idle.sendMessage({ threadToken: tok, body: "x", data: [1, 2] }),
    () => idle.sendMessage({ threadToken: tok, body: "x", data: "text" }),
    () => idle.sendMessage({ threadToken: tok, body: "x", clientMessageId: "c".repeat(129) }),
    () => idle.stopListening({}),
    () => idle.sendMessage(undefined),
    () => idle.setPresence({ show: "invisible" }),
    () => idle.setPresence({ show: "away", status: 3 }),
    () => idle.getPresence({ userIds: [] }),
    () => idle.getPresence({ userIds: ["bob", ""] }),
    () => idle.typing({ threadToken: tok, state: "typing" }),
    () => idle.typing({ state: "start" }),
    () => idle.markRead({ threadToken: tok, messageId: "" }),
    () => idle.addParticipants({ threadToken: tok, participants: [] }),
    () => idle.addParticipants({ threadToken: tok, participants: "carol" }),
    () => idle.leaveThread({ threadToken: "" }),
    () => idle.resume({ threads: [] }),
    () => idle.resume({ threads: [{ threadToken: tok, epoch: "e", offset: -1 }] }),
    () => idle.resume({ threads: [{ threadToken: tok, offset: 1 }] }),
    () => idle.searchUsers({ query: "" }),
    () => idle.searchUsers({ query: "é".repeat(129) }),
    () => idle.searchUsers({ query: "a", page: 0 }),
    () => idle.addContact({}),
    () => idle.removeContact({ userId: "" }),
    () => idle.setProfile({ properties: {} }),
    () => idle.setProfile({ properties: { "a b": "x" } }),
    () => idle.setProfile({ properties: { a: 1 } }),
    () => idle.deleteProfileProperty({ name: "" }),
  ];
  for (const [i, f] of cases.entries()) {
    await assert.rejects(f(), (e) => e instanceof EcbError && e.code === "invalid_argument" && !e.fromServer, `case ${i}`);
  }
  assert.equal(idle.queued, 0, "nothing entered the outbox");
  // A valid call on the idle client does try: it says it is not connected.
  await assert.rejects(idle.getContacts(), { code: "disconnected" });
  assert.throws(() => new EcbClient({}), { code: "invalid_argument" });
  assert.throws(() => new EcbClient({ url: ecb.url, outboxLimit: -1 }), { code: "invalid_argument" });
});

test("close() rejects queued messages and later calls with `closed`", async () => {
  const alice = await connectAs("alice");
  alice.close();
  assert.equal(alice.state, "closed");
  await assert.rejects(alice.getContacts(), { code: "closed" });
  await assert.rejects(alice.sendMessage({ threadToken: "t", body: "x" }), { code: "closed" });
  await assert.rejects(alice.connect(), { code: "closed" });
});

test("the CommonJS build and the types ship next to the ESM build", async () => {
  const { createRequire } = await import("node:module");
  const { existsSync, readFileSync } = await import("node:fs");
  const cjs = createRequire(import.meta.url)("../dist/index.cjs");
  assert.equal(typeof cjs.EcbClient, "function");
  // The version the client says it speaks is the one docs/protocol.md documents.
  const documented = /^# ECB client protocol \(version ([0-9.]+)\)/m.exec(
    readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8"),
  );
  assert.ok(documented, "docs/protocol.md names its version in its title");
  assert.equal(cjs.PROTOCOL_VERSION, documented[1]);
  assert.ok(new cjs.EcbError("timeout", "x") instanceof Error);
  assert.ok(existsSync(new URL("../dist/index.d.ts", import.meta.url)));
});

test("people (protocol 1.3): searchUsers, addContact/removeContact with the contact events, setProfile with the profile event", async () => {
  const alice = await connectAs("alice");
  const agent = await connectAs("agent2");
  const found = await alice.searchUsers({ query: "agent two" });
  assert.deepEqual(found.items.map((u) => u.id), ["agent2"]);

  const told = waitEvent(agent, "contact", (ev) => ev.change === "added");
  const added = await alice.addContact({ userId: "agent2" });
  assert.equal(added.contact.id, "agent2");
  assert.equal((await told).user.id, "alice");

  const pushed = waitEvent(agent, "profile", (ev) => ev.user.id === "alice");
  const prof = await alice.setProfile({ properties: { team: "sales" } });
  assert.deepEqual(prof.user.properties, { team: "sales" });
  assert.equal((await pushed).user.properties.team, "sales");
  assert.equal((await alice.deleteProfileProperty({ name: "team" })).user.properties, undefined);

  const gone = waitEvent(agent, "contact", (ev) => ev.change === "removed");
  await alice.removeContact({ userId: "agent2" });
  assert.equal((await gone).user.id, "alice");
  await assert.rejects(alice.addContact({ userId: "ghost" }), { code: "not_found" });
});
