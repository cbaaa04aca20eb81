// @ecb/client's public threads and moderation (protocol 1.3) against a real
// `ecb demo`: joinThread on the seeded Lobby, deleteMessage with its
// `messageDeleted` event counted in the thread's offsets (no false gap, on
// the deleter's side either), setAccess, removeParticipant (the removed
// client stops listening), deleteThread.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EcbClient, EcbError, PROTOCOL_VERSION } from "../dist/index.js";
import { startEcb, login, waitEvent, fast } from "./helpers.mjs";

let ecb;
const clients = [];

async function connectAs(user) {
  const c = new EcbClient({ url: ecb.url, requestTimeout: 15000, socketOptions: fast, accessToken: await login(ecb.backendUrl, user) });
  clients.push(c);
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

test("join the Lobby, delete a message, set access, remove a member, delete the thread", async () => {
  assert.equal(PROTOCOL_VERSION, "1.5");
  const alice = await connectAs("alice");
  const bob = await connectAs("bob");
  const carol = await connectAs("carol");

  const pub = await bob.getThreads({ public: true });
  const lobby = pub.items.find((st) => st.thread.subject === "Lobby");
  assert.ok(lobby && lobby.thread.public && lobby.threadToken === "", JSON.stringify(pub.items));
  const joined = await bob.joinThread({ threadId: lobby.thread.id });
  assert.equal(joined.joined, true);
  await bob.getThread({ threadToken: joined.threadToken });
  await assert.rejects(carol.joinThread({ threadId: "" }), (e) => e instanceof EcbError && e.code === "invalid_argument");

  const created = await alice.createThread({ participants: ["bob", "carol"], subject: "Mod", message: { body: "hello" } });
  const id = created.thread.id;
  for (const c of [bob, carol]) {
    await c.getThreads({ pageSize: 100 });
    await c.getThread({ threadToken: c.threadToken(id) });
  }

  // bob deletes his own message: alice gets messageDeleted in order, and the
  // next message is no gap for either side.
  // Listen before sending: the push may reach alice before bob's ack.
  const oops = waitEvent(alice, "message", (e) => e.message.body === "oops");
  const sent = await bob.sendMessage({ threadToken: bob.threadToken(id), body: "oops" });
  assert.equal((await oops).message.id, sent.message.id);
  const deleted = waitEvent(alice, "messageDeleted", (e) => e.messageId === sent.message.id);
  const del = await bob.deleteMessage({ threadToken: bob.threadToken(id), messageId: sent.message.id });
  assert.equal(del.message.deleted, true);
  const ev = await deleted;
  assert.equal(ev.recovered, false);
  assert.equal(ev.by, "bob");
  const nextAtBob = waitEvent(bob, "message", (e) => e.message.body === "after the deletion");
  const nextAtAlice = waitEvent(carol, "message", (e) => e.message.body === "after the deletion");
  await alice.sendMessage({ threadToken: alice.threadToken(id), body: "after the deletion" });
  assert.equal((await nextAtBob).recovered, false);
  assert.equal((await nextAtAlice).recovered, false);

  // setAccess: never above the caller's bits.
  await assert.rejects(alice.setAccess({ threadToken: alice.threadToken(id), userId: "bob", acc: 16 }), (e) => e.code === "invalid_argument");
  const set = await alice.setAccess({ threadToken: alice.threadToken(id), userId: "bob", acc: 1, ttlSeconds: 60 });
  assert.equal(set.acc, 1);
  await assert.rejects(bob.sendMessage({ threadToken: bob.threadToken(id), body: "read-only" }), (e) => e.code === "forbidden");

  // removeParticipant: carol's client is told and stops listening.
  const removed = waitEvent(carol, "thread", (e) => e.threadId === id && e.change === "removed");
  await alice.removeParticipant({ threadToken: alice.threadToken(id), userId: "carol" });
  assert.equal((await removed).by, "alice");
  assert.equal(carol.isListening(id), false);

  // deleteThread: bob's client is told and stops listening.
  const gone = waitEvent(bob, "thread", (e) => e.threadId === id && e.change === "deleted");
  await alice.deleteThread({ threadToken: alice.threadToken(id) });
  await gone;
  assert.equal(bob.isListening(id), false);
});
