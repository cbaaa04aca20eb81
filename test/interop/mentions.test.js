// Mentions (issue 16 item 5) with the official socket.io-client against a
// real `ecb demo` and its reference backend: bob, who does not listen to the
// thread, gets the mention push on his Socket.IO connection and on his SSE
// stream; the backend keeps members only; too many mentions are refused
// before the backend is asked; getThreads says mentioned until bob reads.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, errorCode } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-mentions-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

test("a mention reaches every connection of bob, who does not listen to the thread", async () => {
  const alice = await demo.connect("alice");
  const bob = await demo.connect("bob");
  const carol = await demo.connect("carol");
  const bobToken = await demo.userToken("bob");
  const bobStream = await demo.events(bobToken);
  const created = await data(alice, "createThread", { participants: ["bob", "carol"], message: { body: "standup" } });
  const id = created.thread.id;
  const pushed = { bob: [], carol: [], alice: [] };
  for (const [who, s] of [["bob", bob], ["carol", carol], ["alice", alice]]) s.on("mention", (p) => pushed[who].push(p));
  const bobMessages = [];
  bob.on("message", (p) => bobMessages.push(p));

  // Refused before the backend: too many, empty, not strings.
  const many = Array.from({ length: 21 }, (_, i) => `u${i}`);
  for (const mentions of [many, [""], [7], "bob"]) {
    assert.equal(await errorCode(alice, "sendMessage", { threadToken: created.threadToken, body: "x", mentions }), "invalid_argument", JSON.stringify(mentions));
  }

  // Socket.IO: kept members only (dave is no member, alice the author, bob repeated).
  const atSocket = once(bob, "mention", 5000, (p) => p.threadId === id);
  const atStream = once(bobStream, "mention", 5000, (p) => p.threadId === id);
  const sent = await data(alice, "sendMessage", { threadToken: created.threadToken, body: "@bob @dave", mentions: ["bob", "dave", "alice", "bob"] });
  assert.deepEqual(sent.message.mentions, ["bob"]);
  const p = await atSocket;
  assert.equal(p.message.id, sent.message.id);
  assert.deepEqual(p.message.mentions, ["bob"]);
  assert.equal((await atStream).message.id, sent.message.id);
  await new Promise((ok) => setTimeout(ok, 300));
  assert.equal(pushed.bob.length, 1, "bob got one mention");
  assert.equal(pushed.carol.length, 0, "carol, not mentioned, got none");
  assert.equal(pushed.alice.length, 0, "the author got none");
  assert.equal(bobMessages.length, 0, "bob does not listen to the thread");

  // The unread state: mentioned until bob reads past it.
  const listed = async () => (await data(bob, "getThreads", {})).items.find((t) => t.thread.id === id);
  const bobItem = await listed();
  assert.equal(bobItem.thread.mentioned, true);
  assert.equal((await data(carol, "getThreads", {})).items.find((t) => t.thread.id === id).thread.mentioned, false);
  await data(bob, "markRead", { threadToken: bobItem.threadToken, messageId: sent.message.id });
  assert.equal((await listed()).thread.mentioned, false);

  // REST: the same through POST /v1/threads/{id}/messages.
  const aliceToken = await demo.userToken("alice");
  const againSocket = once(bob, "mention", 5000, (m) => m.message.body === "@carol @bob via REST");
  const againStream = once(bobStream, "mention", 5000, (m) => m.message.body === "@carol @bob via REST");
  const r = await fetch(`${demo.url}/v1/threads/${id}/messages`, {
    method: "POST",
    headers: { authorization: "Bearer " + aliceToken, "content-type": "application/json", "ecb-thread-token": created.threadToken },
    body: JSON.stringify({ body: "@carol @bob via REST", mentions: ["carol", "bob"] }),
  });
  const body = await r.json();
  assert.equal(r.status, 201, JSON.stringify(body));
  assert.deepEqual(body.data.message.mentions, ["carol", "bob"]);
  await againSocket;
  await againStream;
  const tooMany = await fetch(`${demo.url}/v1/threads/${id}/messages`, {
    method: "POST",
    headers: { authorization: "Bearer " + aliceToken, "content-type": "application/json", "ecb-thread-token": created.threadToken },
    body: JSON.stringify({ body: "x", mentions: many }),
  });
  assert.equal(tooMany.status, 400);
  assert.equal((await tooMany.json()).error.code, "invalid_argument");

  bobStream.close();
  for (const s of [alice, bob, carol]) s.disconnect();
});
