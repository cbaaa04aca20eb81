// End to end: a real `ecb serve` (built from this repository, configured with
// ECB_* variables only) in front of the example backend (its own `node`
// process, keys from `ecb keys generate`); alice and bob connect with the
// official socket.io-client and chat. The message is pushed to bob and stored
// in the example backend.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ecbKeys, keyPair, login, signedCall, startEcbServe, startExample, tempDir } from "./helpers.mjs";

let keys, example, ecb;
const sockets = [];

before(async () => {
  keys = ecbKeys();
  example = await startExample(keys.dir);
  ecb = await startEcbServe({ backendUrl: example.url, secret: keys.secret, publicKeyFile: keys.publicKey, audience: "ecb" });
});

after(async () => {
  for (const s of sockets) s.disconnect();
  await ecb?.stop();
  await example?.stop();
});

function once(emitter, event, ms = 10000, filter = () => true) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      emitter.off(event, h);
      fail(new Error(`timeout waiting for ${event}`));
    }, ms);
    function h(arg) {
      if (!filter(arg)) return;
      clearTimeout(timer);
      emitter.off(event, h);
      ok(arg);
    }
    emitter.on(event, h);
  });
}

async function call(socket, op, payload) {
  const res = await socket.timeout(10000).emitWithAck(op, payload);
  assert.ok(res && res.error === undefined, `${op} failed: ${JSON.stringify(res)}\n${ecb.logs().slice(-3000)}`);
  return res.data;
}

/** Connects with the access token from the example's /login: ECB authenticates it at the example and emits session. */
async function connect(user, e = { ecb, example }) {
  const s = io(e.ecb.url, { auth: { accessToken: await login(e.example.origin, user) }, forceNew: true, transports: ["websocket"], reconnection: false });
  sockets.push(s);
  const session = once(s, "session");
  await Promise.race([
    once(s, "connect"),
    once(s, "connect_error").then((err) => assert.fail(`connect ${user}: ${err.message} ${JSON.stringify(err.data)}\n${e.ecb.logs().slice(-3000)}`)),
  ]);
  s.session = await session;
  return s;
}

test("ecb serve against the example backend: alice and bob chat over socket.io-client, the message is stored", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  assert.equal(alice.session.user.id, "alice");
  assert.equal(bob.session.user.id, "bob");

  const contacts = await call(alice, "getContacts", {});
  assert.deepEqual(contacts.items.map((u) => u.id), ["bob", "carol"]);

  const bobSeesThread = once(bob, "thread", 10000, (p) => p.change === "created");
  const created = await call(alice, "createThread", { participants: ["bob"], subject: "Lunch?", message: { body: "Hi Bob", clientMessageId: "cm-1" } });
  assert.deepEqual([...created.thread.members].sort(), ["alice", "bob"]);
  const pushedThread = await bobSeesThread;
  assert.equal(pushedThread.threadId, created.thread.id);
  assert.equal(pushedThread.message.body, "Hi Bob");

  // Bob opens the thread with the threadToken the example signed for him, and listens.
  const mine = (await call(bob, "getThreads", {})).items.find((t) => t.thread.id === created.thread.id);
  assert.ok(mine, "bob's threads include the new one");
  const opened = await call(bob, "getThread", { threadToken: mine.threadToken });
  assert.deepEqual(opened.messages.map((m) => m.body), ["Hi Bob"]);

  const bobGetsMessage = once(bob, "message", 10000, (p) => p.threadId === created.thread.id);
  const sent = await call(alice, "sendMessage", { threadToken: created.threadToken, body: "Noon at the usual place?", clientMessageId: "cm-2" });
  assert.equal(sent.message.authorId, "alice");
  const pushed = await bobGetsMessage;
  assert.equal(pushed.message.body, "Noon at the usual place?");
  assert.equal(pushed.message.id, sent.message.id);
  assert.equal(pushed.message.authorId, "alice");

  // And bob answers: the push goes the other way too.
  const aliceGetsAnswer = once(alice, "message", 10000, (p) => p.threadId === created.thread.id);
  await call(bob, "sendMessage", { threadToken: opened.threadToken, body: "Sure" });
  assert.equal((await aliceGetsAnswer).message.body, "Sure");

  // Stored in the example backend: asked directly, as ECB would ask it.
  const stored = await signedCall(example.url, "/getThread", { userId: "bob", threadId: created.thread.id }, { secret: keys.secret });
  assert.equal(stored.status, 200);
  assert.deepEqual(stored.body.messages.map((m) => [m.authorId, m.body]), [["alice", "Hi Bob"], ["alice", "Noon at the usual place?"], ["bob", "Sure"]]);
  assert.equal(stored.body.messages[1].id, sent.message.id);
  assert.equal(stored.body.messages[1].clientMessageId, "cm-2", "the Idempotency-Key reached the backend");
});

for (const [kind, alg] of [["ec", "ES256"], ["ed25519", "EdDSA"]]) {
  test(`ecb serve accepts the SDK's ${alg} userTokens and threadTokens (auth.algorithms=${alg})`, async (t) => {
    const dir = tempDir("ecb-nodesdk-" + kind + "-");
    const { privateKey, publicKey } = keyPair(kind);
    writeFileSync(join(dir, "private.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(join(dir, "public.pem"), publicKey.export({ type: "spki", format: "pem" }));
    writeFileSync(join(dir, "backend-secret"), keys.secret);
    const ex = await startExample(dir);
    t.after(() => ex.stop());
    const node = await startEcbServe({ backendUrl: ex.url, secret: keys.secret, publicKeyFile: join(dir, "public.pem"), extraEnv: { ECB_AUTH_ALGORITHMS: alg } });
    t.after(() => node.stop());
    const carol = await connect("carol", { ecb: node, example: ex }); // the userToken passed ECB's check
    const bob = await connect("bob", { ecb: node, example: ex });
    const created = await carol.timeout(10000).emitWithAck("createThread", { participants: ["bob"], message: { body: "hello" } });
    assert.ok(created.data, JSON.stringify(created));
    const mine = (await bob.timeout(10000).emitWithAck("getThreads", {})).data.items[0];
    const opened = await bob.timeout(10000).emitWithAck("getThread", { threadToken: mine.threadToken }); // the threadToken passed too
    assert.deepEqual(opened.data?.messages?.map((m) => m.body), ["hello"], JSON.stringify(opened));
    // And a token of another algorithm than the configured one is refused: the check is real.
    const wrongAlg = keyPair(kind === "ec" ? "ed25519" : "ec");
    const { TokenSigner } = await import("../dist/index.js");
    const forged = await new TokenSigner(wrongAlg.privateKey, { audience: "ecb" }).signUserToken({ id: "bob", name: "Bob" });
    const refused = io(node.url, { auth: { userToken: forged }, forceNew: true, transports: ["websocket"], reconnection: false });
    sockets.push(refused);
    const err = await once(refused, "connect_error");
    assert.equal(err.data?.code, "unauthenticated");
    carol.disconnect();
    bob.disconnect();
  });
}
