// ECB over Socket.IO with the official socket.io-client: the seed flow
// (getUserToken → getContacts → getThreads → createThread → getThread →
// sendMessage, with the push reaching the other user) against a real
// `ecb demo`, over WebSocket, over polling, and polling upgraded; refused
// handshakes; token refresh on a live socket; reconnection after ECB restarts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { io } from "socket.io-client";
import { Demo, once, call, data } from "./harness.js";

const demoArgs = ["--set", "socketio.tokenExpiryWarning=59m57s"]; // tokenExpiring fires at once for 1h tokens
let demo;

const accessToken = (user) => demo.accessToken(user);

// connect opens a socket and resolves once connected (and, with an
// accessToken, once the session event arrived) as {s, session}.
async function connect(auth, opts = {}) {
  const s = await demo.socket(auth, { reconnection: false, ...opts });
  return { s, session: s.session ?? null };
}

before(async () => {
  demo = Demo.build();
  await demo.start(demoArgs);
});

after(async () => {
  await demo.remove();
});

for (const [name, transports] of [
  ["websocket", ["websocket"]],
  ["polling", ["polling"]],
  ["polling upgraded to websocket", ["polling", "websocket"]],
]) {
  test(`seed flow over ${name}`, async () => {
    const alice = await connect({ accessToken: await accessToken("alice") }, { transports });
    const bob = await connect({ accessToken: await accessToken("bob") }, { transports });
    assert.equal(alice.session.user.id, "alice");
    assert.ok(alice.session.userToken.split(".").length === 3);

    // getUserToken as an operation too.
    const again = await data(alice.s, "getUserToken", { accessToken: await accessToken("alice") });
    assert.equal(again.user.id, "alice");

    const contacts = await data(alice.s, "getContacts", { pageSize: 10 });
    assert.deepEqual(contacts.items.map((u) => u.id).sort(), ["bob", "carol"]);
    assert.equal(contacts.total, 2);
    assert.equal(contacts.hasMore, false);

    const bobThreadPush = once(bob.s, "thread");
    const created = await data(alice.s, "createThread", {
      participants: ["bob"],
      subject: name,
      message: { body: `hello over ${name}`, clientMessageId: `c-${name}` },
    });
    assert.equal(created.message.offset, 1);
    const tp = await bobThreadPush;
    assert.equal(tp.change, "created");
    assert.equal(tp.threadId, created.thread.id);

    const threads = await data(bob.s, "getThreads", {});
    const mine = threads.items.find((t) => t.thread.id === created.thread.id);
    assert.ok(mine, "bob sees the new thread");
    const page = await data(bob.s, "getThread", { threadToken: mine.threadToken });
    assert.equal(page.messages.length, 1);
    assert.equal(page.messages[0].body, `hello over ${name}`);
    assert.equal(page.offset, 1);

    const pushed = once(bob.s, "message");
    const sent = await data(alice.s, "sendMessage", { threadToken: created.threadToken, body: "are you there?" });
    assert.equal(sent.message.offset, 2);
    const push = await pushed;
    assert.equal(push.threadId, created.thread.id);
    assert.equal(push.offset, 2);
    assert.equal(push.epoch, page.epoch);
    assert.equal(push.message.body, "are you there?");
    assert.equal(push.message.authorId, "alice");

    // bob answers; alice (listening since createThread) gets it.
    const back = once(alice.s, "message");
    await data(bob.s, "sendMessage", { threadToken: page.threadToken, body: "yes" });
    assert.equal((await back).message.body, "yes");

    // errors come back in the envelope with their code
    const bad = await call(alice.s, "getThread", { threadToken: "not.a.token" });
    assert.equal(bad.error.code, "unauthenticated");
    const forbidden = await call(bob.s, "sendMessage", { threadToken: created.threadToken, body: "as alice?" });
    assert.equal(forbidden.error.code, "forbidden");
    const unknown = await call(alice.s, "noSuchOperation", {});
    assert.equal(unknown.error.code, "not_found");
    const invalid = await call(alice.s, "createThread", { participants: [], message: { body: "x" } });
    assert.equal(invalid.error.code, "invalid_argument");

    if (name.startsWith("polling upgraded")) assert.equal(alice.s.io.engine.transport.name, "websocket");
    alice.s.close();
    bob.s.close();
  });
}

test("a refused handshake is a connect_error carrying the code", async () => {
  for (const [auth, code] of [
    [{}, "unauthenticated"],
    [{ userToken: "garbage" }, "unauthenticated"],
    [{ accessToken: "forged" }, "unauthenticated"],
  ]) {
    const s = io(demo.url, { auth, reconnection: false, forceNew: true, transports: ["websocket"] });
    const err = await once(s, "connect_error");
    assert.equal(err.data.code, code, JSON.stringify(err.data));
    assert.ok(err.message.length > 0);
    s.close();
  }
});

test("a page of a foreign origin cannot connect", async () => {
  const s = io(demo.url, { auth: { accessToken: await accessToken("alice") }, reconnection: false, forceNew: true, transports: ["polling"], extraHeaders: { Origin: "https://evil.example" } });
  const err = await once(s, "connect_error");
  assert.ok(err, "refused");
  s.close();
});

test("tokenExpiring is announced and refreshToken extends the live socket", async () => {
  const alice = await connect({ accessToken: await accessToken("alice") }, { transports: ["websocket"] });
  const warning = await once(alice.s, "tokenExpiring", 5000);
  assert.ok(Date.parse(warning.expiresAt) > Date.now());
  const fresh = await data(alice.s, "getUserToken", { accessToken: await accessToken("alice") });
  const refreshed = await data(alice.s, "refreshToken", { userToken: fresh.userToken });
  assert.ok(Date.parse(refreshed.expiresAt) >= Date.parse(warning.expiresAt));
  const bobs = await data(await (await connect({ accessToken: await accessToken("bob") })).s, "getUserToken", { accessToken: await accessToken("bob") });
  const wrongUser = await call(alice.s, "refreshToken", { userToken: bobs.userToken });
  assert.equal(wrongUser.error.code, "forbidden");
  alice.s.close();
});

test("a socket whose token expires is told why and disconnected", async () => {
  // a 2-second userToken, signed with the demo's key like the backend would
  const token = execFileSync(demo.bin, ["token", "--key", join(demo.data, "private.pem"), "--aud", "ecb-demo", "--user", "alice", "--ttl", "2s"]).toString().trim();
  const s = io(demo.url, { auth: { userToken: token }, reconnection: false, forceNew: true, transports: ["websocket"] });
  await once(s, "connect");
  const started = Date.now();
  // both arrive in one batch: listen for both before awaiting either
  const closingP = once(s, "closing", 5000);
  const disconnectP = once(s, "disconnect", 5000);
  const closing = await closingP;
  assert.equal(closing.reason, "token_expired");
  const reason = await disconnectP;
  assert.equal(reason, "io server disconnect");
  assert.ok(Date.now() - started < 4000);
  s.close();
});

test("the client reconnects after ECB restarts and resumes its thread", async () => {
  const url = new URL(demo.url);
  const backendUrl = new URL(demo.backend);
  const aliceAccess = await accessToken("alice");
  const bobAccess = await accessToken("bob");
  const alice = await connect({ accessToken: aliceAccess }, { transports: ["websocket"] });
  const created = await data(alice.s, "createThread", { participants: ["bob"], message: { body: "before restart" } });
  const bobSession = await connect({ accessToken: bobAccess }, { transports: ["websocket"] });
  const bobToken = bobSession.session.userToken;
  bobSession.s.close();

  // bob's client reconnects by itself with his userToken
  const bob = io(demo.url, { auth: { userToken: bobToken }, forceNew: true, transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 300 });
  await once(bob, "connect");
  const threads = await data(bob, "getThreads", {});
  const tok = threads.items.find((t) => t.thread.id === created.thread.id).threadToken;
  const before = await data(bob, "getThread", { threadToken: tok });

  // restart ECB on the same ports with the same data
  await demo.stop();
  await demo.start(demoArgs, { listen: url.host, backendListen: backendUrl.host });
  await once(bob, "connect", 15000);

  // resume: re-attach with getThread; the epoch changed (history lost on restart)
  const after = await data(bob, "getThread", { threadToken: before.threadToken });
  assert.notEqual(after.epoch, before.epoch, "a restart starts a new epoch");
  assert.equal(after.messages.length, 1);

  const alice2 = await connect({ accessToken: await accessToken("alice") }, { transports: ["websocket"] });
  const pushed = once(bob, "message");
  const aliceThread = (await data(alice2.s, "getThreads", {})).items.find((t) => t.thread.id === created.thread.id);
  await data(alice2.s, "sendMessage", { threadToken: aliceThread.threadToken, body: "after restart" });
  const push = await pushed;
  assert.equal(push.message.body, "after restart");
  bob.close();
  alice.s.close();
  alice2.s.close();
});
