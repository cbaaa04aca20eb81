// Public threads and moderation (issue 15, items 4 and 5) with the official
// socket.io-client against a real `ecb demo`, and the same walk over REST +
// SSE: join the seeded Lobby, update a thread, delete a message, set an
// access override, remove a member (told at once, nothing more after it),
// delete the thread. The refusals of the bad-input rules on the way.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, call, data, errorCode } from "./harness.js";

let demo;
const connect = (user) => demo.connect(user);

before(async () => {
  demo = Demo.build("ecb-moderation-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

test("Socket.IO: join the Lobby, moderate a thread, remove a member, delete the thread", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const carol = await connect("carol");

  // The seeded public thread: listed, joined, its member push.
  const pub = await data(alice, "getThreads", { public: true });
  const lobby = pub.items.find((t) => t.thread.subject === "Lobby");
  assert.ok(lobby && lobby.thread.public, JSON.stringify(pub));
  assert.deepEqual(lobby.thread.members, []);
  const aj = await data(alice, "joinThread", { threadId: lobby.thread.id });
  assert.equal(aj.joined, true);
  await data(alice, "getThread", { threadToken: aj.threadToken });
  const joined = once(alice, "member", 5000, (m) => m.userId === "bob" && m.change === "joined");
  const bj = await data(bob, "joinThread", { threadId: lobby.thread.id });
  assert.ok(bj.threadToken);
  await joined;

  // A group thread of alice's (owner) with bob and carol.
  const created = await data(alice, "createThread", { participants: ["bob", "carol"], subject: "Team", message: { body: "a1" } });
  const id = created.thread.id;
  const tok = async (s) => (await data(s, "getThreads", {})).items.find((t) => t.thread.id === id).threadToken;
  const bobTok = await tok(bob);
  const carolTok = await tok(carol);
  await data(bob, "getThread", { threadToken: bobTok });
  await data(carol, "getThread", { threadToken: carolTok });

  // Bad input: a member without the bit, a private join.
  assert.equal(await errorCode(bob, "removeParticipant", { threadToken: bobTok, userId: "carol" }), "forbidden");
  assert.equal(await errorCode(bob, "deleteThread", { threadToken: bobTok }), "forbidden");
  assert.equal(await errorCode(bob, "setAccess", { threadToken: bobTok, userId: "carol", acc: 0 }), "forbidden");
  const priv = await data(alice, "createThread", { participants: ["carol"], message: { body: "just us" } });
  assert.equal(await errorCode(bob, "joinThread", { threadId: priv.thread.id }), "forbidden");

  // updateThread: the listeners hear it.
  const updated = once(bob, "thread", 5000, (e) => e.threadId === id && e.change === "updated");
  await data(alice, "updateThread", { threadToken: created.threadToken, subject: "Renamed" });
  assert.equal((await updated).thread.subject, "Renamed");

  // deleteMessage: carol's own message; bob gets messageDeleted; the history shows it deleted.
  const sent = await data(carol, "sendMessage", { threadToken: carolTok, body: "oops" });
  const deletedP = once(bob, "messageDeleted", 5000, (e) => e.messageId === sent.message.id);
  const del = await data(carol, "deleteMessage", { threadToken: carolTok, messageId: sent.message.id });
  assert.equal(del.message.deleted, true);
  const pushed = await deletedP;
  assert.equal(pushed.by, "carol");
  assert.equal(typeof pushed.offset, "number");
  assert.equal(await errorCode(bob, "deleteMessage", { threadToken: bobTok, messageId: created.message.id }), "forbidden");
  const hist = await data(bob, "getThread", { threadToken: bobTok, before: undefined, limit: 10 });
  const gone = hist.messages.find((m) => m.id === sent.message.id);
  assert.ok(gone && gone.deleted && gone.body === "", JSON.stringify(hist.messages));

  // setAccess: bob read-only for an hour, live; never above the owner's bits.
  const told = once(bob, "thread", 5000, (e) => e.threadId === id && e.change === "access");
  const set = await data(alice, "setAccess", { threadToken: created.threadToken, userId: "bob", acc: 1, ttlSeconds: 3600 });
  assert.equal(set.acc, 1);
  assert.ok(set.expiresAt);
  assert.equal((await told).acc, 1);
  assert.equal(await errorCode(bob, "sendMessage", { threadToken: bobTok, body: "read-only?" }), "forbidden");
  assert.equal(await errorCode(alice, "setAccess", { threadToken: created.threadToken, userId: "bob", acc: 16 }), "invalid_argument");

  // A moderator (carol, made admin live by the owner's setAccess) cannot
  // grant above her own bits, nor ban or remove the owner.
  const modTold = once(carol, "thread", 5000, (e) => e.threadId === id && e.change === "access");
  await data(alice, "setAccess", { threadToken: created.threadToken, userId: "carol", acc: 1 | 2 | 4 });
  assert.equal((await modTold).acc, 7);
  assert.equal(await errorCode(carol, "setAccess", { threadToken: carolTok, userId: "bob", acc: 15 }), "forbidden", "above her own bits");
  assert.equal(await errorCode(carol, "setAccess", { threadToken: carolTok, userId: "alice", acc: 0 }), "forbidden", "ban the owner");
  assert.equal(await errorCode(carol, "removeParticipant", { threadToken: carolTok, userId: "alice" }), "forbidden", "remove the owner");

  // removeParticipant: carol is told at once and gets nothing more.
  const removed = once(carol, "thread", 5000, (e) => e.threadId === id && e.change === "removed");
  const memberRemoved = once(alice, "member", 5000, (m) => m.userId === "carol" && m.change === "removed");
  await data(alice, "removeParticipant", { threadToken: created.threadToken, userId: "carol" });
  assert.equal((await removed).by, "alice");
  await memberRemoved;
  let leaked = false;
  carol.on("message", (m) => {
    if (m.threadId === id) leaked = true;
  });
  await data(alice, "sendMessage", { threadToken: created.threadToken, body: "not for carol" });
  assert.equal(await errorCode(carol, "resume", { threads: [{ threadToken: carolTok, epoch: created.epoch, offset: 1 }] }), "forbidden");
  await new Promise((ok) => setTimeout(ok, 300));
  assert.equal(leaked, false, "a removed member got a message");

  // deleteThread: owner only; bob detached and told.
  const deleted = once(bob, "thread", 5000, (e) => e.threadId === id && e.change === "deleted");
  await data(alice, "deleteThread", { threadToken: created.threadToken });
  await deleted;
  assert.equal(await errorCode(alice, "getThread", { threadToken: created.threadToken }), "not_found");

  for (const s of [alice, bob, carol]) s.close();
});

test("REST + SSE: join the Lobby, delete a message, remove a member", async () => {
  const rest = async (method, path, token, body, threadToken) => {
    const headers = { authorization: "Bearer " + token };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (threadToken) headers["ecb-thread-token"] = threadToken;
    const r = await fetch(demo.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const alice = await demo.userToken("alice");
  const carol = await demo.userToken("carol");

  const pub = await rest("GET", "/v1/threads?public=true", carol);
  assert.equal(pub.status, 200);
  const lobby = pub.body.data.items.find((t) => t.thread.subject === "Lobby");
  const j = await rest("POST", `/v1/threads/${lobby.thread.id}/join`, carol);
  assert.equal(j.status, 200, JSON.stringify(j.body));
  assert.ok(j.body.data.threadToken);

  const c = (await rest("POST", "/v1/threads", alice, { participants: ["carol"], message: { body: "hi" } })).body.data;
  const carolTok = (await rest("GET", "/v1/threads", carol)).body.data.items.find((t) => t.thread.id === c.thread.id).threadToken;

  // carol's event stream listens to the thread.
  const ctl = new AbortController();
  const es = await fetch(demo.url + "/v1/events", { headers: { authorization: "Bearer " + carol }, signal: ctl.signal });
  assert.equal(es.status, 200);
  const reader = es.body.getReader();
  let buf = "";
  const events = [];
  const pump = (async () => {
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const d = /^data: (.*)$/m.exec(block)?.[1];
          if (ev) events.push({ event: ev, data: d ? JSON.parse(d) : null });
        }
      }
    } catch {
      // aborted
    }
  })();
  const waitFor = async (pred, ms = 5000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const e = events.find(pred);
      if (e) return e;
      await new Promise((ok) => setTimeout(ok, 25));
    }
    assert.fail("no matching event among " + JSON.stringify(events.map((e) => e.event)));
  };
  const ready = await waitFor((e) => e.event === "ready");
  const streamId = ready.data.streamId;
  const listen = await fetch(demo.url + "/v1/threads/" + c.thread.id, { headers: { authorization: "Bearer " + carol, "ecb-thread-token": carolTok, "ecb-stream": streamId } });
  assert.equal(listen.status, 200);

  const m = (await rest("POST", `/v1/threads/${c.thread.id}/messages`, alice, { body: "to delete" }, c.threadToken)).body.data.message;
  const d = await rest("DELETE", `/v1/threads/${c.thread.id}/messages/${m.id}`, alice, undefined, c.threadToken);
  assert.equal(d.status, 200, JSON.stringify(d.body));
  await waitFor((e) => e.event === "messageDeleted" && e.data.messageId === m.id);

  // A member without the bit: 403 before the backend.
  const refused = await rest("DELETE", `/v1/threads/${c.thread.id}/participants/alice`, carol, undefined, carolTok);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, "forbidden");

  const r = await rest("DELETE", `/v1/threads/${c.thread.id}/participants/carol`, alice, undefined, c.threadToken);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await waitFor((e) => e.event === "thread" && e.data.change === "removed");
  await rest("POST", `/v1/threads/${c.thread.id}/messages`, alice, { body: "not for carol" }, c.threadToken);
  await new Promise((ok) => setTimeout(ok, 300));
  assert.equal(events.filter((e) => e.event === "message" && e.data.message?.body === "not for carol").length, 0);
  ctl.abort();
  await pump;
});
