// Live chat features over Socket.IO with the official socket.io-client
// against a real `ecb demo`: presence (including a connection that dies
// without a goodbye), typing, read marks, group threads, recovery after a
// connection is killed mid-conversation, and clientMessageId dedupe.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Demo, once, call, data } from "./harness.js";

let demo;
const userToken = (user) => demo.userToken(user);
const connect = (user, opts) => demo.connect(user, opts);

// threadWith creates a thread of alice's with the others and returns each user's threadToken.
async function threadWith(alice, others, sockets) {
  const created = await data(alice, "createThread", { participants: others, message: { body: "hello all" } });
  const tokens = { alice: created.threadToken };
  for (const [name, s] of Object.entries(sockets)) {
    const page = await data(s, "getThreads", {});
    tokens[name] = page.items.find((t) => t.thread.id === created.thread.id).threadToken;
  }
  return { created, tokens };
}

before(async () => {
  demo = Demo.build("ecb-live-");
  await demo.start(["--set", "socketio.pingInterval=300ms", "--set", "socketio.pingTimeout=200ms", "--set", "operations.typingTimeout=500ms"]);
});

after(async () => {
  await demo.remove();
});

test("presence: online, setPresence, and offline within the ping timeout after a silent death", async () => {
  const alice = await connect("alice");
  await data(alice, "getContacts", {}); // alice now watches bob and carol

  // bob connects with a raw WebSocket that will never answer a ping
  const tok = await userToken("bob");
  const ws = new WebSocket(demo.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket");
  // Listen for both now: under load the silent connection may die before the
  // next line runs (pingInterval 300ms + pingTimeout 200ms).
  const online = once(alice, "presence", 5000, (p) => p.userId === "bob" && p.show === "available");
  const offlineP = once(alice, "presence", 10000, (p) => p.userId === "bob" && p.show === "offline");
  const started = Date.now();
  ws.on("message", (m) => {
    if (String(m).startsWith("0")) ws.send("40" + JSON.stringify({ userToken: tok }));
  });
  await online;

  const seen = await data(alice, "getPresence", { userIds: ["bob"] });
  assert.ok(["available", "offline"].includes(seen.presence[0].show), seen.presence[0].show);
  const stranger = await call(alice, "getPresence", { userIds: ["agent1"] });
  assert.equal(stranger.error.code, "forbidden");

  // no pong: ECB closes the connection after pingInterval + pingTimeout (0.5s here)
  const offline = await offlineP;
  assert.ok(offline.lastSeen, "offline carries lastSeen");
  // not a speed check: "offline" must come from the ping timeout, long before any other cleanup
  assert.ok(Date.now() - started < 8000, `offline after ${Date.now() - started}ms`);
  ws.terminate();

  // Listen first: the push can reach alice before bob's client has seen its own connect.
  const back = once(alice, "presence", 5000, (p) => p.userId === "bob" && p.show === "available");
  const bob = await connect("bob");
  await back;
  const away = once(alice, "presence", 5000, (p) => p.userId === "bob" && p.show === "away");
  await data(bob, "setPresence", { show: "away", status: "lunch" });
  assert.equal((await away).status, "lunch");
  assert.equal((await call(bob, "setPresence", { show: "invisible" })).error.code, "invalid_argument");
  alice.close();
  bob.close();
});

test("typing is pushed to the others and stops by itself", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const { created, tokens } = await threadWith(alice, ["bob"], { bob });
  await data(bob, "getThread", { threadToken: tokens.bob });
  const start = once(bob, "typing", 5000, (t) => t.state === "start");
  await data(alice, "typing", { threadToken: tokens.alice, state: "start" });
  const s = await start;
  assert.equal(s.userId, "alice");
  assert.equal(s.threadId, created.thread.id);
  const stop = await once(bob, "typing", 3000, (t) => t.state === "stop"); // typingTimeout 500ms
  assert.equal(stop.userId, "alice");
  // a flood is rate limited
  const results = await Promise.all(Array.from({ length: 15 }, () => call(alice, "typing", { threadToken: tokens.alice, state: "start" })));
  assert.ok(results.some((r) => r.error && r.error.code === "rate_limited"), "typing flood not limited");
  alice.close();
  bob.close();
});

test("read marks go to the backend and to the listeners; unread counts", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const { created, tokens } = await threadWith(alice, ["bob"], { bob });
  await data(alice, "sendMessage", { threadToken: tokens.alice, body: "second" });
  const before = (await data(bob, "getThreads", {})).items.find((t) => t.thread.id === created.thread.id);
  assert.equal(before.thread.unread, 2);
  const page = await data(bob, "getThread", { threadToken: tokens.bob });
  const last = page.messages[page.messages.length - 1];
  const read = once(alice, "read", 5000, (r) => r.userId === "bob");
  await data(bob, "markRead", { threadToken: tokens.bob, messageId: last.id });
  const r = await read;
  assert.equal(r.messageId, last.id);
  assert.ok(r.offset > 0);
  const after = (await data(bob, "getThreads", {})).items.find((t) => t.thread.id === created.thread.id);
  assert.equal(after.thread.unread, 0);
  const carol = await connect("carol");
  assert.equal((await call(carol, "markRead", { threadToken: tokens.bob, messageId: last.id })).error.code, "forbidden");
  alice.close();
  bob.close();
  carol.close();
});

test("group threads: add a member, leave, and the leaver stops receiving at once", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const carol = await connect("carol");
  const { created, tokens } = await threadWith(alice, ["bob"], { bob });
  await data(bob, "getThread", { threadToken: tokens.bob });

  const notDenied = await call(bob, "addParticipants", { threadToken: tokens.bob, participants: ["carol"] });
  assert.equal(notDenied.error.code, "forbidden", "a plain member cannot add");

  const told = once(carol, "thread", 5000, (t) => t.change === "added");
  const joined = once(bob, "member", 5000, (m) => m.userId === "carol" && m.change === "joined");
  const added = await data(alice, "addParticipants", { threadToken: tokens.alice, participants: ["carol"] });
  assert.deepEqual(added.added, ["carol"]);
  assert.equal((await told).threadId, created.thread.id);
  await joined;

  const carolTok = (await data(carol, "getThreads", {})).items.find((t) => t.thread.id === created.thread.id).threadToken;
  await data(carol, "getThread", { threadToken: carolTok });
  const left = once(carol, "member", 5000, (m) => m.userId === "bob" && m.change === "left");
  await data(bob, "leaveThread", { threadToken: tokens.bob });
  await left;

  let bobGot = 0;
  bob.on("message", () => bobGot++);
  const carolGets = once(carol, "message", 5000);
  await data(alice, "sendMessage", { threadToken: tokens.alice, body: "bob is gone" });
  await carolGets;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(bobGot, 0, "bob still receives after leaving");
  alice.close();
  bob.close();
  carol.close();
});

test("a killed connection resumes with exactly the messages sent meanwhile", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const { tokens } = await threadWith(alice, ["bob"], { bob });
  const page = await data(bob, "getThread", { threadToken: tokens.bob });
  let last = { epoch: page.epoch, offset: page.offset };
  const seen = [];
  bob.on("message", (m) => {
    seen.push(m.message.body);
    last = { epoch: m.epoch, offset: m.offset };
  });
  const got1 = once(bob, "message"); // listen before sending: the push may beat the ack
  await data(alice, "sendMessage", { threadToken: tokens.alice, body: "m1" });
  await got1;

  // kill bob's connection (no goodbye) and write while he is away
  const reconnected = once(bob, "connect", 10000);
  bob.io.engine.close();
  for (const body of ["m2", "m3", "m4"]) await data(alice, "sendMessage", { threadToken: tokens.alice, body });
  await reconnected;
  const res = await data(bob, "resume", { threads: [{ threadToken: tokens.bob, epoch: last.epoch, offset: last.offset }] });
  assert.equal(res.threads[0].recovered, true);
  assert.equal(res.threads[0].missed, 3);
  const got5 = once(bob, "message", 5000, (m) => m.message.body === "m5");
  await data(alice, "sendMessage", { threadToken: tokens.alice, body: "m5" });
  await got5;
  assert.deepEqual(seen, ["m1", "m2", "m3", "m4", "m5"], "each message exactly once, in order");

  // recovery with a stale epoch says so plainly
  const stale = await data(bob, "resume", { threads: [{ threadToken: tokens.bob, epoch: "gone", offset: 1 }] });
  assert.equal(stale.threads[0].recovered, false);
  const carol = await connect("carol");
  assert.equal((await call(carol, "resume", { threads: [{ threadToken: tokens.bob, epoch: last.epoch, offset: 0 }] })).error.code, "forbidden");
  alice.close();
  bob.close();
  carol.close();
});

test("a retried sendMessage with the same clientMessageId stores one message", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const { tokens } = await threadWith(alice, ["bob"], { bob });
  const msg = { threadToken: tokens.alice, body: "exactly once", clientMessageId: "retry-" + Date.now() };
  const first = await data(alice, "sendMessage", msg);
  // the ack was "lost": the client reconnects and retries
  alice.io.engine.close();
  await once(alice, "connect", 10000);
  const second = await data(alice, "sendMessage", msg);
  assert.equal(second.message.id, first.message.id);
  const page = await data(bob, "getThread", { threadToken: tokens.bob });
  assert.equal(page.messages.filter((m) => m.body === "exactly once").length, 1);
  alice.close();
  bob.close();
});
