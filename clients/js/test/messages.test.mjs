// @ecb/client's edits, reactions, replies and search (protocol 1.4) against
// a real `ecb demo`: editMessage and react/unreact with their
// `messageEdited` and `reaction` events counted in the thread's offsets (no
// false gap on either side: the next message is not "recovered"),
// sendMessage {replyTo} with its quote, searchMessages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EcbClient, EcbError } from "../dist/index.js";
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

test("edit, react, reply and search, with the pushes in the thread's offsets", async () => {
  const alice = await connectAs("alice");
  const bob = await connectAs("bob");
  const created = await alice.createThread({ participants: ["bob"], message: { body: "helo" } });
  const id = created.thread.id;
  const mid = created.message.id;
  await bob.getThreads({ pageSize: 100 });
  await bob.getThread({ threadToken: bob.threadToken(id) });

  const edited = waitEvent(bob, "messageEdited", (e) => e.threadId === id);
  const ed = await alice.editMessage({ threadToken: alice.threadToken(id), messageId: mid, body: "hello" });
  assert.ok(ed.message.editedAt);
  const ev = await edited;
  assert.equal(ev.message.body, "hello");
  assert.equal(ev.recovered, false);
  await assert.rejects(bob.editMessage({ threadToken: bob.threadToken(id), messageId: mid, body: "x" }), (e) => e instanceof EcbError && e.code === "forbidden");
  await assert.rejects(bob.react({ threadToken: bob.threadToken(id), messageId: mid, reaction: "" }), (e) => e instanceof EcbError && e.code === "invalid_argument");

  const reacted = waitEvent(alice, "reaction", (e) => e.userId === "bob");
  const r = await bob.react({ threadToken: bob.threadToken(id), messageId: mid, reaction: "👍" });
  assert.deepEqual(r.message.reactions, [{ reaction: "👍", count: 1, me: true }]);
  const rev = await reacted;
  assert.deepEqual(rev.counts, { "👍": 1 });
  assert.equal(rev.change, "added");

  // The next message is in order on both sides: the edit and the reaction took their offsets.
  const atAlice = waitEvent(alice, "message", (e) => e.message.body === "hi");
  const reply = await bob.sendMessage({ threadToken: bob.threadToken(id), body: "hi", replyTo: mid });
  assert.equal(reply.message.replyTo.messageId, mid);
  const m = await atAlice;
  assert.equal(m.recovered, false);
  assert.equal(m.message.replyTo.excerpt, "hello");
  const atBob = waitEvent(bob, "message", (e) => e.message.body === "next");
  await alice.sendMessage({ threadToken: alice.threadToken(id), body: "next" });
  assert.equal((await atBob).recovered, false);

  const found = await bob.searchMessages({ query: "hello" });
  assert.deepEqual(found.hits.map((h) => h.message.id), [mid]);
  assert.ok(found.hits[0].threadToken);
});

test("mentions: bob, not listening to the thread, gets the mention event; the thread says mentioned until read", async () => {
  const alice = await connectAs("alice");
  const bob = await connectAs("bob");
  const created = await alice.createThread({ participants: ["bob", "carol"], message: { body: "plan" } });
  const id = created.thread.id;
  await assert.rejects(alice.sendMessage({ threadToken: alice.threadToken(id), body: "x", mentions: Array.from({ length: 21 }, (_, i) => `u${i}`) }), (e) => e instanceof EcbError && e.code === "invalid_argument");
  const mentioned = waitEvent(bob, "mention", (e) => e.threadId === id);
  const sent = await alice.sendMessage({ threadToken: alice.threadToken(id), body: "@bob @dave", mentions: ["bob", "dave", "bob"] });
  assert.deepEqual(sent.message.mentions, ["bob"]);
  const ev = await mentioned;
  assert.equal(ev.message.id, sent.message.id);
  assert.deepEqual(ev.message.mentions, ["bob"]);
  const listed = (await bob.getThreads({ pageSize: 100 })).items.find((t) => t.thread.id === id);
  assert.equal(listed.thread.mentioned, true);
  await bob.markRead({ threadToken: bob.threadToken(id), messageId: sent.message.id });
  const again = (await bob.getThreads({ pageSize: 100 })).items.find((t) => t.thread.id === id);
  assert.equal(again.thread.mentioned, false);
});
