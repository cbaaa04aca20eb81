// Edits, reactions, replies and message search (issue 16 items 1-3 and 7)
// with the official socket.io-client against a real `ecb demo` and its
// reference backend, and the same over REST + SSE. A socket that was away
// resumes and gets the edit and reactions it missed, in order, once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, errorCode } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-messages-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

test("Socket.IO: edit, react, reply, search, and resume after missed changes", async () => {
  const alice = await demo.connect("alice");
  const bob = await demo.connect("bob");
  const created = await data(alice, "createThread", { participants: ["bob"], message: { body: "colour" } });
  const id = created.thread.id;
  const mid = created.message.id;
  const bobTok = (await data(bob, "getThreads", {})).items.find((t) => t.thread.id === id).threadToken;
  const page = await data(bob, "getThread", { threadToken: bobTok });

  // Edit: bob is told; bob may not edit alice's message.
  const edited = once(bob, "messageEdited", 5000, (p) => p.threadId === id);
  const ed = await data(alice, "editMessage", { threadToken: created.threadToken, messageId: mid, body: "color" });
  assert.equal(ed.message.body, "color");
  assert.ok(ed.message.editedAt);
  const ep = await edited;
  assert.equal(ep.message.body, "color");
  assert.equal(ep.offset, page.offset + 1);
  assert.equal(await errorCode(bob, "editMessage", { threadToken: bobTok, messageId: mid, body: "mine" }), "forbidden");

  // Reactions: counted, once per user; too long or with a space is refused.
  const reacted = once(alice, "reaction", 5000, (p) => p.userId === "bob");
  const r = await data(bob, "react", { threadToken: bobTok, messageId: mid, reaction: "👍" });
  assert.deepEqual(r.message.reactions, [{ reaction: "👍", count: 1, me: true }]);
  const rp = await reacted;
  assert.equal(rp.change, "added");
  assert.deepEqual(rp.counts, { "👍": 1 });
  const again = await data(bob, "react", { threadToken: bobTok, messageId: mid, reaction: "👍" });
  assert.equal(again.offset, undefined, "a second react changed nothing");
  assert.equal(await errorCode(bob, "react", { threadToken: bobTok, messageId: mid, reaction: "x".repeat(33) }), "invalid_argument");
  assert.equal(await errorCode(bob, "react", { threadToken: bobTok, messageId: mid, reaction: "a b" }), "invalid_argument");

  // Bob goes away; alice edits and reacts; bob comes back and resumes.
  const last = ep.offset + 1;
  bob.disconnect();
  await data(alice, "editMessage", { threadToken: created.threadToken, messageId: mid, body: "colour, after all" });
  await data(alice, "react", { threadToken: created.threadToken, messageId: mid, reaction: "🎉" });
  await data(alice, "unreact", { threadToken: created.threadToken, messageId: mid, reaction: "🎉" });
  const bob2 = await demo.connect("bob");
  const got = [];
  for (const ev of ["messageEdited", "reaction", "message"]) bob2.on(ev, (p) => got.push([ev, p.offset]));
  const res = await data(bob2, "resume", { threads: [{ threadToken: bobTok, epoch: page.epoch, offset: last }] });
  assert.equal(res.threads[0].recovered, true);
  assert.equal(res.threads[0].missed, 3);
  await new Promise((ok) => setTimeout(ok, 300));
  assert.deepEqual(got, [["messageEdited", last + 1], ["reaction", last + 2], ["reaction", last + 3]]);

  // A reply quotes its parent; a parent of another thread is refused.
  const replied = once(alice, "message", 5000, (p) => p.message?.replyTo);
  const reply = await data(bob2, "sendMessage", { threadToken: bobTok, body: "agreed", replyTo: mid });
  assert.equal(reply.message.replyTo.messageId, mid);
  assert.equal(reply.message.replyTo.authorId, "alice");
  assert.equal(reply.message.replyTo.excerpt, "colour, after all");
  assert.equal((await replied).message.replyTo.messageId, mid);
  const other = await data(alice, "createThread", { participants: ["carol"], message: { body: "elsewhere" } });
  assert.equal(await errorCode(alice, "sendMessage", { threadToken: created.threadToken, body: "x", replyTo: other.message.id }), "invalid_argument");

  // History: the last version, counts with me, the quote.
  const hist = await data(alice, "getThread", { threadToken: created.threadToken });
  const first = hist.messages.find((m) => m.id === mid);
  assert.equal(first.body, "colour, after all");
  assert.ok(first.editedAt);
  assert.deepEqual(first.reactions, [{ reaction: "👍", count: 1 }]);
  assert.ok(hist.messages.find((m) => m.replyTo?.messageId === mid));

  // Search: only threads the caller reads, each hit with its threadToken.
  const found = await data(bob2, "searchMessages", { query: "colo" });
  assert.deepEqual(found.hits.map((h) => h.message.id), [mid]);
  assert.ok(found.hits[0].threadToken);
  const carol = await demo.connect("carol");
  const none = await data(carol, "searchMessages", { query: "colour" });
  assert.equal(none.hits.length, 0);
  assert.equal(await errorCode(carol, "searchMessages", { query: "colour", threadToken: bobTok }), "forbidden");

  for (const s of [alice, bob2, carol]) s.disconnect();
});

test("REST + SSE: edit, react, reply, search; a resumed stream gets the missed changes", async () => {
  const rest = async (method, path, token, body, threadToken, extra = {}) => {
    const headers = { authorization: "Bearer " + token, ...extra };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (threadToken) headers["ecb-thread-token"] = threadToken;
    const r = await fetch(demo.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const alice = await demo.userToken("alice");
  const bob = await demo.userToken("bob");
  const c = (await rest("POST", "/v1/threads", alice, { participants: ["bob"], message: { body: "budget draft" } })).body.data;
  const bobTok = (await rest("GET", "/v1/threads", bob)).body.data.items.find((t) => t.thread.id === c.thread.id).threadToken;

  const stream = async (lastEventId) => {
    const ctl = new AbortController();
    const headers = { authorization: "Bearer " + bob };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const es = await fetch(demo.url + "/v1/events", { headers, signal: ctl.signal });
    assert.equal(es.status, 200);
    const reader = es.body.getReader();
    const events = [];
    let buf = "";
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
            const eid = /^id: (.*)$/m.exec(block)?.[1];
            if (ev) events.push({ event: ev, id: eid, data: d ? JSON.parse(d) : null });
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
    return { events, waitFor, close: async () => { ctl.abort(); await pump; } };
  };

  const s1 = await stream();
  const ready = await s1.waitFor((e) => e.event === "ready");
  const listen = await fetch(demo.url + "/v1/threads/" + c.thread.id, { headers: { authorization: "Bearer " + bob, "ecb-thread-token": bobTok, "ecb-stream": ready.data.streamId } });
  assert.equal(listen.status, 200);
  const msgPath = `/v1/threads/${c.thread.id}/messages/${c.message.id}`;
  const ed = await rest("PATCH", msgPath, alice, { body: "budget final" }, c.threadToken);
  assert.equal(ed.status, 200, JSON.stringify(ed.body));
  const seen = await s1.waitFor((e) => e.event === "messageEdited");
  assert.equal(seen.data.message.body, "budget final");
  const refused = await rest("PATCH", msgPath, bob, { body: "no" }, bobTok);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, "forbidden");
  await s1.close();

  // Missed while the stream was away: a reaction and its removal, in order.
  const react = msgPath + "/reactions/" + encodeURIComponent("👍");
  const put = await rest("PUT", react, alice, undefined, c.threadToken);
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual(put.body.data.message.reactions, [{ reaction: "👍", count: 1, me: true }]);
  assert.equal((await rest("DELETE", react, alice, undefined, c.threadToken)).status, 200);
  const s2 = await stream(seen.id);
  await s2.waitFor((e) => e.event === "reaction" && e.data.change === "removed");
  assert.deepEqual(s2.events.filter((e) => e.event !== "ready").map((e) => [e.event, e.data.change]), [["reaction", "added"], ["reaction", "removed"]]);
  await s2.close();

  const reply = await rest("POST", `/v1/threads/${c.thread.id}/messages`, bob, { body: "ok", replyTo: c.message.id }, bobTok);
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  assert.equal(reply.body.data.message.replyTo.excerpt, "budget final");

  const found = await rest("GET", "/v1/messages?query=budget", bob);
  assert.equal(found.status, 200, JSON.stringify(found.body));
  assert.deepEqual(found.body.data.hits.map((h) => h.message.id), [c.message.id]);
  const carol = await demo.userToken("carol");
  assert.equal((await rest("GET", "/v1/messages?query=budget", carol)).body.data.hits.length, 0);
});
