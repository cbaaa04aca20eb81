// createHandler: dispatch to the implementation's methods, the Go SDK's
// answers for every refusal, 501 for a missing optional method, and mounting
// under plain http, Express and Fastify; createCallbackHandler likewise.
import { test } from "node:test";
import assert from "node:assert/strict";
import express from "express";
import Fastify from "fastify";
import { CallbackTypes, EcbError, Paths, conflict, createCallbackHandler, createHandler, forbidden, notImplemented } from "../dist/index.js";
import { SECRET, memoryLogger, serve, signedCall } from "./helpers.mjs";

const T0 = "2026-03-04T11:58:00Z";
const thread = { id: "t1", createdAt: T0, updatedAt: T0 };
const message = { id: "m1", threadId: "t1", authorId: "alice", body: "hi", createdAt: T0 };

/** An implementation that records its calls; `extra` adds or overrides methods. */
function recorder(extra = {}) {
  const calls = [];
  const rec = (name, answer) => (req, ctx) => (calls.push({ name, req, ctx }), typeof answer === "function" ? answer(req, ctx) : answer);
  const impl = {
    authenticate: rec("authenticate", { userToken: "a.b.c", user: { id: "alice", name: "Alice" } }),
    getContacts: rec("getContacts", {}), // no contacts: answered as []
    getThreads: rec("getThreads", { threads: [{ thread: { ...thread }, threadToken: "x" }] }), // no members: []
    createThread: rec("createThread", async () => ({ thread: { ...thread, members: ["alice", "bob"] }, threadToken: "x", message })),
    getThread: rec("getThread", { thread: { ...thread, members: ["alice"] }, threadToken: "x" }), // no messages: []
    addThreadMessage: rec("addThreadMessage", { message, threadToken: "x" }),
  };
  for (const [k, v] of Object.entries(extra)) impl[k] = rec(k, v);
  return { impl, calls };
}

async function server(t, impl, opts = {}) {
  const log = memoryLogger();
  const srv = await serve(createHandler(impl, { secret: SECRET, logger: log, ...opts }));
  t.after(srv.close);
  return { ...srv, log };
}

test("dispatches each required call to its method with the request, the request id and the idempotency key", async (t) => {
  const { impl, calls } = recorder();
  const srv = await server(t, impl, { basePath: "/ecb/v1" });
  const base = srv.url + "/ecb/v1";
  const auth = await signedCall(base, "/authenticate", { accessToken: "tok", extra: "ignored field" });
  assert.equal(auth.status, 200);
  assert.deepEqual(auth.body, { userToken: "a.b.c", user: { id: "alice", name: "Alice" } });
  assert.equal(auth.headers.get("content-type"), "application/json");
  assert.equal(auth.headers.get("cache-control"), "no-store");
  assert.deepEqual((await signedCall(base, "/getContacts", { userId: "alice" })).body, { contacts: [] });
  assert.deepEqual((await signedCall(base, "/getThreads", { userId: "alice" })).body.threads[0].thread.members, []);
  const created = await signedCall(base, "/createThread", { userId: "alice", participants: ["bob"], message: { body: "hi", clientMessageId: "c-1" } }, { idempotencyKey: "c-1" });
  assert.equal(created.status, 200);
  assert.deepEqual((await signedCall(base, "/getThread", { userId: "alice", threadId: "t1", limit: 5, before: "c" })).body.messages, []);
  assert.equal((await signedCall(base, "/addThreadMessage", { userId: "alice", threadId: "t1", body: "hi" }, { headers: { "ECB-Request-Id": "r-77" } })).status, 200);

  assert.deepEqual(calls.map((c) => c.name), ["authenticate", "getContacts", "getThreads", "createThread", "getThread", "addThreadMessage"]);
  assert.deepEqual(calls[0].req, { accessToken: "tok", extra: "ignored field" });
  assert.equal(calls[3].ctx.idempotencyKey, "c-1");
  assert.equal(calls[3].ctx.requestId, "req-1");
  assert.equal(calls[4].req.limit, 5);
  assert.equal(calls[5].ctx.requestId, "r-77");
  assert.equal(calls[5].ctx.idempotencyKey, "");
  assert.ok(calls[5].ctx.signal instanceof AbortSignal);
  // Outside the base path: 404, as Go's StripPrefix answers.
  assert.equal((await signedCall(srv.url, "/authenticate", { accessToken: "tok" })).status, 404);
});

test("optional calls: served when the method exists, else 501 not_implemented whatever the request (as the Go SDK)", async (t) => {
  const core = recorder();
  const srvCore = await server(t, core.impl);
  for (const [path, name] of [[Paths.markRead, "markRead"], [Paths.addParticipants, "addParticipants"], [Paths.leaveThread, "leaveThread"], [Paths.createSupportThread, "createSupportThread"]]) {
    const r = await signedCall(srvCore.url, path, { userId: "alice", threadId: "t1", messageId: "m1" });
    assert.equal(r.status, 501, path);
    assert.deepEqual(r.body, { error: { code: "not_implemented", message: `this backend does not implement ${name}` } });
    // Nothing is read or checked: unsigned, even GET, is the same 501.
    const plain = await fetch(srvCore.url + path);
    assert.equal(plain.status, 501);
  }

  const full = recorder({
    markRead: { messageId: "m1", unread: 0 },
    addParticipants: { thread: { ...thread, members: ["alice", "carol"] }, threadToken: "x" }, // no added: []
    createSupportThread: { thread: { ...thread, members: ["v", "a"] }, visitorToken: "v", agentToken: "a" },
  });
  full.impl.leaveThread = () => {
    throw notImplemented("only adding is supported");
  };
  const srv = await server(t, full.impl);
  assert.deepEqual((await signedCall(srv.url, "/markRead", { userId: "alice", threadId: "t1", messageId: "m1" })).body, { messageId: "m1", unread: 0 });
  assert.deepEqual((await signedCall(srv.url, "/addParticipants", { userId: "alice", threadId: "t1", participants: ["carol"] })).body.added, []);
  const leave = await signedCall(srv.url, "/leaveThread", { userId: "alice", threadId: "t1" });
  assert.deepEqual([leave.status, leave.body.error], [501, { code: "not_implemented", message: "only adding is supported" }]);
  const support = await signedCall(srv.url, "/createSupportThread", { requestId: "r", workgroup: "w", visitorId: "v", agentId: "a", question: "?" });
  assert.equal(support.status, 200);
  const same = await signedCall(srv.url, "/createSupportThread", { requestId: "r", workgroup: "w", visitorId: "v", agentId: "v", question: "?" });
  assert.deepEqual([same.status, same.body.error.message], [400, "visitorId and agentId must differ"]);
  assert.deepEqual(full.calls.map((c) => c.name), ["markRead", "addParticipants", "createSupportThread"]);
});

test("refusals in the Go SDK's order and words: 404, 405, 400 version, 400 JSON, 400 required fields", async (t) => {
  const { impl, calls } = recorder();
  const srv = await server(t, impl);
  const unknown = await signedCall(srv.url, "/getEverything", {});
  assert.deepEqual([unknown.status, unknown.body], [404, { error: { code: "not_found", message: "no such operation: /getEverything" } }]);
  const get = await fetch(srv.url + "/getContacts");
  assert.deepEqual([get.status, get.headers.get("allow"), (await get.json()).error], [405, "POST", { code: "invalid_argument", message: "method GET not allowed; use POST" }]);
  const v2 = await signedCall(srv.url, "/getContacts", { userId: "alice" }, { headers: { "ECB-Contract-Version": "2" } });
  assert.deepEqual([v2.status, v2.body.error.message], [400, 'unsupported contract version "2"; this backend speaks "1"']);
  const noVersion = await signedCall(srv.url, "/getContacts", { userId: "alice" }, { headers: { "ECB-Contract-Version": "" } });
  assert.equal(noVersion.status, 200, "an absent version is accepted, as in Go");
  const cases = [
    ["/authenticate", '{"accessToken":', /^malformed JSON body/],
    ["/authenticate", "[]", /^malformed JSON body/],
    ["/authenticate", "{}", /^accessToken is required$/],
    ["/authenticate", "null", /^accessToken is required$/],
    ["/authenticate", '{"accessToken":5}', /^malformed JSON body: accessToken must be a string$/],
    ["/getContacts", '{"userId":""}', /^userId is required$/],
    ["/createThread", '{"userId":"a","participants":[],"message":{"body":"x"}}', /^participants must name at least one user$/],
    ["/createThread", '{"userId":"a","participants":["b",""],"message":{"body":"x"}}', /^participants must not contain an empty id$/],
    ["/createThread", '{"userId":"a","participants":["b"]}', /^message.body is required$/],
    ["/createThread", '{"userId":"a","participants":["b"],"message":{"body":1}}', /^malformed JSON body: message.body must be a string$/],
    ["/getThread", '{"userId":"a"}', /^threadId is required$/],
    ["/getThread", '{"userId":"a","threadId":"t","limit":-1}', /^limit must not be negative$/],
    ["/getThread", '{"userId":"a","threadId":"t","limit":1.5}', /^malformed JSON body: limit must be an integer$/],
    ["/addThreadMessage", '{"userId":"a","threadId":"t"}', /^body is required$/],
    ["/markRead", '{"userId":"a","threadId":"t"}', /^messageId is required$/],
  ];
  const withOptional = await server(t, recorder({ markRead: {} }).impl);
  for (const [path, raw, want] of cases) {
    const r = await signedCall(withOptional.url, path, undefined, { rawBody: raw });
    assert.equal(r.status, 400, `${path} ${raw}`);
    assert.equal(r.body.error.code, "invalid_argument");
    assert.match(r.body.error.message, want, `${path} ${raw}`);
  }
  assert.equal(calls.filter((c) => c.name !== "getContacts").length, 0, "no refused call reached the implementation");
});

test("answers from the implementation: EcbError with its status, anything else 500 internal and logged", async (t) => {
  let mode = "forbidden";
  const { impl } = recorder({
    getContacts: () => {
      if (mode === "forbidden") throw forbidden("not you");
      if (mode === "conflict") return Promise.reject(conflict("again"));
      if (mode === "custom") throw new EcbError("not_found", "", 0);
      if (mode === "crash") throw new Error("database on fire: password=hunter2");
      return null;
    },
  });
  const srv = await server(t, impl);
  const want = {
    forbidden: [403, { code: "forbidden", message: "not you" }],
    conflict: [409, { code: "conflict", message: "again" }],
    custom: [404, { code: "not_found", message: "Not Found" }],
    crash: [500, { code: "internal", message: "internal error" }],
    nothing: [500, { code: "internal", message: "internal error" }],
  };
  for (const [m, [status, error]] of Object.entries(want)) {
    mode = m;
    const r = await signedCall(srv.url, "/getContacts", { userId: "alice" }, { headers: { "ECB-Request-Id": "rid-" + m } });
    assert.deepEqual([r.status, r.body], [status, { error }], m);
  }
  const errors = srv.log.lines.filter((l) => l.level === "error");
  assert.equal(errors.length, 2);
  assert.equal(errors[0].attrs.request_id, "rid-crash");
  assert.match(errors[0].attrs.err, /database on fire/);
  assert.match(errors[1].attrs.err, /returned no response object/);
});

test("createHandler refuses an implementation without a required method", () => {
  const { impl } = recorder();
  delete impl.getThread;
  assert.throws(() => createHandler(impl, { secret: SECRET }), /lacks the required method getThread/);
  const log = memoryLogger();
  createHandler(recorder().impl, { secret: "", logger: log });
  assert.match(log.lines[0].message, /empty secret; every call will be refused/);
});

test("Express mounts it with app.use (before any body parser); express.raw hands it the raw bytes", async (t) => {
  const { impl, calls } = recorder();
  const app = express();
  app.use("/ecb/v1", createHandler(impl, { secret: SECRET, logger: memoryLogger() }));
  app.use("/raw/ecb/v1", express.raw({ type: "*/*" }), createHandler(impl, { secret: SECRET, logger: memoryLogger() }));
  const log = memoryLogger();
  app.use("/parsed/ecb/v1", express.json(), createHandler(impl, { secret: SECRET, logger: log }));
  const srv = await serve(app);
  t.after(srv.close);
  assert.equal((await signedCall(srv.url + "/ecb/v1", "/getContacts", { userId: "alice" })).status, 200);
  assert.equal((await signedCall(srv.url + "/raw/ecb/v1", "/getContacts", { userId: "bob" })).status, 200);
  assert.equal((await signedCall(srv.url + "/ecb/v1", "/getContacts", { userId: "alice" }, { secret: "wrong-wrong-wrong-wrong-wrong-xx" })).status, 401);
  assert.equal((await signedCall(srv.url + "/ecb/v1", "/markRead", { userId: "alice" })).status, 501);
  // A JSON parser before it has thrown the raw bytes away: the signature cannot be checked, and the log says why.
  const parsed = await signedCall(srv.url + "/parsed/ecb/v1", "/getContacts", { userId: "carol" });
  assert.equal(parsed.status, 500);
  assert.match(log.lines[0].message, /mount it before any JSON body parser/);
  assert.deepEqual(calls.map((c) => c.req.userId), ["alice", "bob"]);
});

test("Fastify mounts it with a buffer content-type parser and handler(req.raw, reply.raw)", async (t) => {
  const { impl, calls } = recorder();
  const handler = createHandler(impl, { secret: SECRET, basePath: "/ecb/v1", logger: memoryLogger() });
  const app = Fastify();
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    scope.all("/ecb/v1/*", async (req, reply) => {
      req.raw.body = req.body; // the raw bytes, which the handler prefers over reading the stream
      reply.hijack();
      await handler(req.raw, reply.raw);
    });
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  t.after(() => app.close());
  const url = `http://127.0.0.1:${app.server.address().port}/ecb/v1`;
  const ok = await signedCall(url, "/getContacts", { userId: "alice" });
  assert.deepEqual([ok.status, ok.body], [200, { contacts: [] }]);
  assert.equal((await signedCall(url, "/getContacts", { userId: "alice" }, { secret: "wrong-wrong-wrong-wrong-wrong-xx" })).status, 401);
  assert.equal((await signedCall(url, "/leaveThread", { userId: "alice" })).status, 501);
  assert.equal(calls.length, 1);
});

test("callbacks: 204 for a signed event, each refusal as the Go SDK's NewCallbackHandler answers it", async (t) => {
  const events = [];
  let fail = null;
  const log = memoryLogger();
  const srv = await serve(
    createCallbackHandler(
      (ev) => {
        if (fail) throw fail;
        events.push(ev);
      },
      { secret: SECRET, logger: log },
    ),
  );
  t.after(srv.close);
  const ev = { id: "ev_1", type: "support.requested", at: "2026-03-04T12:00:00Z", requestId: "sr_1", workgroup: "support", userId: "v", data: { question: "?" } };
  const ok = await signedCall(srv.url, "/", ev);
  assert.deepEqual([ok.status, ok.text], [204, ""]);
  assert.deepEqual(events, [ev]);
  const bad = await signedCall(srv.url, "/", ev, { secret: "wrong-wrong-wrong-wrong-wrong-xx" });
  assert.deepEqual([bad.status, bad.body.error.code], [401, "bad_signature"]);
  const noId = await signedCall(srv.url, "/", { type: "x" });
  assert.deepEqual([noId.status, noId.body.error.message], [400, "a callback event needs an id and a type"]);
  const notJSON = await signedCall(srv.url, "/", undefined, { rawBody: "{" });
  assert.equal(notJSON.status, 400);
  assert.match(notJSON.body.error.message, /^body is not a callback event/);
  assert.equal((await fetch(srv.url, { method: "PUT" })).status, 405);
  fail = forbidden("not for us");
  assert.equal((await signedCall(srv.url, "/", ev)).status, 403);
  fail = new Error("disk full");
  const crash = await signedCall(srv.url, "/", ev);
  assert.deepEqual([crash.status, crash.body.error], [500, { code: "internal", message: "internal error" }]);
  assert.equal(log.lines.at(-1).attrs.event, "ev_1");
  assert.equal(events.length, 1);
});

test("callbacks: a message.offline (contract 1.6) reaches the handler with its OfflineNudge data", async (t) => {
  const events = [];
  const srv = await serve(createCallbackHandler((ev) => events.push(ev), { secret: SECRET }));
  t.after(srv.close);
  const ev = {
    id: "ev_off_m_2",
    type: CallbackTypes.messageOffline,
    at: "2026-03-04T12:00:00Z",
    threadId: "t_1",
    data: { threadId: "t_1", messageId: "m_2", messageIds: ["m_1", "m_2"], count: 2, userIds: ["bob"], mentioned: ["carol"] },
  };
  assert.equal(CallbackTypes.messageOffline, "message.offline");
  const ok = await signedCall(srv.url, "/", ev);
  assert.equal(ok.status, 204);
  assert.deepEqual(events, [ev]);
});

test("an unexpected failure inside the handler is a 500, never a rejected promise", async (t) => {
  const log = memoryLogger();
  const handler = createHandler(recorder().impl, { secret: 42, logger: log }); // not a string or bytes: the HMAC throws
  const srv = await serve(handler);
  t.after(srv.close);
  const r = await signedCall(srv.url, "/getContacts", { userId: "alice" });
  assert.deepEqual([r.status, r.body], [500, { error: { code: "internal", message: "internal error" } }]);
  assert.match(log.lines.at(-1).message, /handler failed/);
  assert.equal((await signedCall(srv.url, "/getContacts", { userId: "alice" })).status, 500, "the server still answers");
});

test("people calls (contract 1.4): 501 without the method, served and checked with it", async (t) => {
  const core = recorder();
  const srvCore = await server(t, core.impl);
  for (const name of ["searchUsers", "addContact", "removeContact", "setProfile", "deleteProfileProperty"]) {
    const r = await signedCall(srvCore.url, Paths[name], { userId: "alice" });
    assert.equal(r.status, 501, name);
    assert.equal(r.body.error.message, `this backend does not implement ${name}`);
  }
  const user = { id: "alice", name: "Alice", properties: { title: "CTO" } };
  const full = recorder({
    searchUsers: {}, // no users: []
    addContact: { contact: { id: "bob", name: "Bob" }, user },
    removeContact: { contact: { id: "bob", name: "Bob" }, user },
    setProfile: { user },
    deleteProfileProperty: { user: { id: "alice", name: "Alice" } },
  });
  const srv = await server(t, full.impl);
  assert.deepEqual((await signedCall(srv.url, "/searchUsers", { userId: "alice", query: "bo" })).body, { users: [] });
  assert.equal((await signedCall(srv.url, "/addContact", { userId: "alice", contactId: "bob" })).status, 200);
  assert.equal((await signedCall(srv.url, "/removeContact", { userId: "alice", contactId: "bob" })).status, 200);
  assert.deepEqual((await signedCall(srv.url, "/setProfile", { userId: "alice", properties: { title: "CTO" } })).body, { user });
  assert.equal((await signedCall(srv.url, "/deleteProfileProperty", { userId: "alice", name: "title" })).status, 200);
  for (const [path, body] of [
    ["/searchUsers", { userId: "alice", query: "" }],
    ["/searchUsers", { userId: "alice", query: "x".repeat(257) }],
    ["/addContact", { userId: "alice", contactId: "alice" }],
    ["/removeContact", { userId: "alice" }],
    ["/setProfile", { userId: "alice", properties: {} }],
    ["/setProfile", { userId: "alice", properties: { "a b": "x" } }],
    ["/setProfile", { userId: "alice", properties: { a: 1 } }],
    ["/deleteProfileProperty", { userId: "alice", name: "" }],
  ]) {
    const r = await signedCall(srv.url, path, body);
    assert.deepEqual([r.status, r.body.error.code], [400, "invalid_argument"], `${path} ${JSON.stringify(body).slice(0, 60)}`);
  }
  assert.deepEqual(full.calls.map((c) => c.name), ["searchUsers", "addContact", "removeContact", "setProfile", "deleteProfileProperty"]);
});
