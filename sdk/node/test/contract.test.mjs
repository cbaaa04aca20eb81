// The contract test of internal/refbackend (TestContractCoverage and
// TestContractCatchesDrift), run against the example backend as its own
// `node` process: every call succeeds and fails the ways api/backend.yaml
// lists, each exchange validated against that file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { keyPair, login, signedCall, startExample, tempDir } from "./helpers.mjs";
import { contract, requestProblems, responseProblems } from "./contract.mjs";
import { CONTRACT_FULL_VERSION } from "../dist/index.js";

let full, core, secret;

before(async () => {
  const dir = tempDir("ecb-nodesdk-contract-");
  writeFileSync(join(dir, "private.pem"), keyPair("rsa").privateKey.export({ type: "pkcs8", format: "pem" }));
  secret = "f".repeat(64);
  writeFileSync(join(dir, "backend-secret"), secret + "\n"); // a trailing newline: the example trims it
  [full, core] = await Promise.all([startExample(dir), startExample(dir, { core: true })]);
});

after(async () => {
  await Promise.all([full?.stop(), core?.stop()]);
});

test("the SDK's contract version is api/backend.yaml's", () => {
  assert.equal(CONTRACT_FULL_VERSION, contract.info.version);
});

test("contract coverage: every operation to success and to each error status the contract lists, every exchange valid", async () => {
  const seen = new Set();
  async function exchange(path, body, o = {}) {
    const r = await signedCall(o.base ?? full.url, path, body, { secret: o.secret ?? secret, rawBody: o.rawBody, idempotencyKey: o.idempotencyKey });
    if (!o.invalidRequest) assert.deepEqual(requestProblems(path, r.request.headers, r.request.body), [], `request ${path} ${r.request.body}`);
    assert.deepEqual(responseProblems(path, r.status, r.headers.get("content-type"), r.text), [], `response ${r.status} to ${path}: ${r.text}`);
    seen.add(`${path} ${r.status}`);
    return r;
  }
  async function ok(path, body, o) {
    const r = await exchange(path, body, o);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    return r.body;
  }
  async function fails(path, body, o, status, code) {
    const r = await exchange(path, body, o);
    assert.deepEqual([r.status, r.body?.error?.code], [status, code], `${path} ${r.request.body}: ${r.text}`);
  }

  const auth = await ok("/authenticate", { accessToken: await login(full.origin, "alice") });
  assert.equal(auth.user.id, "alice");
  await fails("/authenticate", { accessToken: "nope" }, {}, 401, "unauthenticated");
  await fails("/authenticate", { accessToken: "x" }, { secret: "wrong".repeat(8) }, 401, "bad_signature");
  await fails("/authenticate", undefined, { rawBody: '{"accessToken":', invalidRequest: true }, 400, "invalid_argument");

  assert.deepEqual((await ok("/getContacts", { userId: "alice" })).contacts.map((u) => u.id), ["bob", "carol"]);
  assert.deepEqual((await ok("/getContacts", { userId: "dave" })).contacts, []); // an empty list
  await fails("/getContacts", { userId: "nobody" }, {}, 404, "not_found");

  assert.deepEqual((await ok("/getThreads", { userId: "alice" })).threads, []); // none yet

  await ok("/createThread", { userId: "alice", participants: ["bob"], subject: "Lunch", message: { body: "Noon?", clientMessageId: "c-1", data: { mood: "hungry" } } }, { idempotencyKey: "c-1" });
  await ok("/createThread", { userId: "bob", participants: ["carol"], message: { body: "hi" } });
  await fails("/createThread", { userId: "alice", participants: ["dave"], message: { body: "hi" } }, {}, 403, "forbidden");
  await fails("/createThread", { userId: "alice", participants: ["bob"], message: { body: "other", clientMessageId: "c-1" } }, { idempotencyKey: "c-1" }, 409, "conflict");
  await fails("/createThread", { userId: "alice", participants: ["ghost"], message: { body: "hi" } }, {}, 400, "invalid_argument");
  await fails("/createThread", { userId: "ghost", participants: ["bob"], message: { body: "hi" } }, {}, 404, "not_found");

  const threads = (await ok("/getThreads", { userId: "bob" })).threads;
  assert.equal(threads.length, 2, "bob has two threads");
  const id = threads[1].thread.id; // alice's, the older one
  assert.equal(threads[1].thread.subject, "Lunch");

  const added = await ok("/addThreadMessage", { userId: "bob", threadId: id, body: "Sure", clientMessageId: "m-1", data: [1, 2] }, { idempotencyKey: "m-1" });
  const again = await ok("/addThreadMessage", { userId: "bob", threadId: id, body: "Sure", clientMessageId: "m-1", data: [1, 2] }, { idempotencyKey: "m-1" });
  assert.deepEqual(again.message, added.message, "a retry returns the message stored the first time");
  await fails("/addThreadMessage", { userId: "bob", threadId: id, body: "Changed", clientMessageId: "m-1" }, { idempotencyKey: "m-1" }, 409, "conflict");
  await fails("/addThreadMessage", { userId: "carol", threadId: id, body: "hi" }, {}, 403, "forbidden");
  await fails("/addThreadMessage", { userId: "bob", threadId: "t_missing", body: "hi" }, {}, 404, "not_found");
  await fails("/addThreadMessage", { userId: "bob", threadId: id, body: "   " }, {}, 400, "invalid_argument");

  const page = await ok("/getThread", { userId: "alice", threadId: id, limit: 1 });
  assert.deepEqual(page.messages.map((m) => m.body), ["Sure"]);
  assert.ok(page.nextCursor, "a cursor on a partial page");
  const older = await ok("/getThread", { userId: "alice", threadId: id, before: page.nextCursor });
  assert.deepEqual(older.messages.map((m) => m.body), ["Noon?"]);
  assert.equal(older.nextCursor, undefined);
  await fails("/getThread", { userId: "carol", threadId: id }, {}, 403, "forbidden");
  await fails("/getThread", { userId: "alice", threadId: "t_missing" }, {}, 404, "not_found");
  await fails("/getThread", { userId: "alice", threadId: id, before: "!!" }, {}, 400, "invalid_argument");

  // The optional calls of contract 1.1.
  const withUnread = (await ok("/getThreads", { userId: "alice" })).threads.find((t) => t.thread.id === id);
  assert.equal(withUnread.thread.unread, 1, "bob's message is unread for alice");
  const marked = await ok("/markRead", { userId: "alice", threadId: id, messageId: added.message.id });
  assert.deepEqual(marked, { messageId: added.message.id, unread: 0 });
  await fails("/markRead", { userId: "carol", threadId: id, messageId: added.message.id }, {}, 403, "forbidden");
  await fails("/markRead", { userId: "alice", threadId: id, messageId: "m_missing" }, {}, 404, "not_found");
  await fails("/markRead", { userId: "alice", threadId: id }, { invalidRequest: true }, 400, "invalid_argument");

  assert.deepEqual((await ok("/addParticipants", { userId: "alice", threadId: id, participants: ["carol", "bob"] })).added, ["carol"]);
  assert.deepEqual((await ok("/addParticipants", { userId: "alice", threadId: id, participants: ["bob"] })).added, []);
  await fails("/addParticipants", { userId: "bob", threadId: id, participants: ["carol"] }, {}, 403, "forbidden");
  await fails("/addParticipants", { userId: "alice", threadId: id, participants: ["ghost"] }, {}, 400, "invalid_argument");
  await fails("/addParticipants", { userId: "alice", threadId: "t_missing", participants: ["carol"] }, {}, 404, "not_found");
  await fails("/addParticipants", { userId: "alice", threadId: id, participants: [] }, { invalidRequest: true }, 400, "invalid_argument");

  assert.deepEqual((await ok("/leaveThread", { userId: "carol", threadId: id })).thread.members, ["alice", "bob"]);
  await fails("/leaveThread", { userId: "carol", threadId: id }, {}, 403, "forbidden");
  await fails("/leaveThread", { userId: "carol", threadId: "t_missing" }, {}, 404, "not_found");
  await fails("/leaveThread", undefined, { rawBody: '{"userId":"carol"}', invalidRequest: true }, 400, "invalid_argument");

  // A backend without them answers 501, as documented: the core-only example, and createSupportThread everywhere.
  const c = { base: core.url };
  await fails("/markRead", { userId: "alice", threadId: id, messageId: added.message.id }, c, 501, "not_implemented");
  await fails("/addParticipants", { userId: "alice", threadId: id, participants: ["carol"] }, c, 501, "not_implemented");
  await fails("/leaveThread", { userId: "bob", threadId: id }, c, 501, "not_implemented");
  await fails("/createSupportThread", { requestId: "sr_1", workgroup: "support", visitorId: "v1", agentId: "alice", question: "?" }, {}, 501, "not_implemented");

  const ops = ["/authenticate", "/getContacts", "/getThreads", "/createThread", "/getThread", "/addThreadMessage", "/markRead", "/addParticipants", "/leaveThread"];
  for (const p of ops) assert.ok(seen.has(`${p} 200`), `${p} never succeeded`);
  for (const p of ["/markRead", "/addParticipants", "/leaveThread"]) {
    for (const s of [400, 403, 404, 501]) assert.ok(seen.has(`${p} ${s}`), `${p} never answered ${s}`);
  }
  for (const s of [400, 401, 403, 404, 409, 501]) assert.ok([...seen].some((k) => k.endsWith(` ${s}`)), `no call answered ${s}`);
});

test("the validation is not vacuous: calls and answers that break the contract are reported", () => {
  const h = { "ECB-Timestamp": "1", "ECB-Signature": "v1=00", "ECB-Request-Id": "r1", "ECB-Contract-Version": "1" };
  const requests = [
    ["good", "/getThread", h, '{"userId":"a","threadId":"t"}', true],
    ["missing threadId", "/getThread", h, '{"userId":"a"}', false],
    ["negative limit", "/getThread", h, '{"userId":"a","threadId":"t","limit":-1}', false],
    ["unsigned", "/getContacts", { "ECB-Request-Id": "r1", "ECB-Contract-Version": "1" }, '{"userId":"a"}', false],
    ["no request id", "/getContacts", { ...h, "ECB-Request-Id": undefined }, '{"userId":"a"}', false],
    ["version 2", "/getContacts", { ...h, "ECB-Contract-Version": "2" }, '{"userId":"a"}', false],
    ["unknown operation", "/getEverything", h, "{}", false],
    ["markRead without messageId", "/markRead", h, '{"userId":"a","threadId":"t"}', false],
    ["no participants to add", "/addParticipants", h, '{"userId":"a","threadId":"t","participants":[]}', false],
    // Contract 1.6: mentions, at most 20 non-empty ids.
    ["mentions", "/addThreadMessage", h, '{"userId":"a","threadId":"t","body":"x","mentions":["b","c"]}', true],
    ["21 mentions", "/addThreadMessage", h, JSON.stringify({ userId: "a", threadId: "t", body: "x", mentions: Array.from({ length: 21 }, (_, i) => `u${i}`) }), false],
    ["an empty mention", "/addThreadMessage", h, '{"userId":"a","threadId":"t","body":"x","mentions":[""]}', false],
  ];
  for (const [name, path, headers, body, valid] of requests) {
    const clean = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined));
    assert.equal(requestProblems(path, clean, body).length === 0, valid, `request ${name}`);
  }
  const responses = [
    ["good", "/getContacts", 200, '{"contacts":[{"id":"b","name":"B"}]}', true],
    ["null list", "/getContacts", 200, '{"contacts":null}', false],
    // threadToken is optional since contract 1.5 (re-issued only when due).
    ["no threadToken", "/addThreadMessage", 200, '{"message":{"id":"m","threadId":"t","authorId":"a","body":"x","createdAt":"2026-01-02T03:04:05Z"}}', true],
    ["no message", "/addThreadMessage", 200, '{"threadToken":"x"}', false],
    ["bad time", "/addThreadMessage", 200, '{"message":{"id":"m","threadId":"t","authorId":"a","body":"x","createdAt":"yesterday"},"threadToken":"x"}', false],
    ["good error", "/getThread", 404, '{"error":{"code":"not_found","message":"no"}}', true],
    ["unknown code", "/getThread", 404, '{"error":{"code":"gone","message":"no"}}', false],
    ["undocumented status", "/getThread", 418, '{"error":{"code":"internal","message":"teapot"}}', false],
    ["501 on a required call", "/getThread", 501, '{"error":{"code":"not_implemented","message":"no"}}', false],
    ["501 on an optional call", "/leaveThread", 501, '{"error":{"code":"not_implemented","message":"no"}}', true],
    ["markRead empty", "/markRead", 200, "{}", true],
    ["markRead negative unread", "/markRead", 200, '{"unread":-1}', false],
    ["added missing", "/addParticipants", 200, '{"thread":{"id":"t","members":["a"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"},"threadToken":"x"}', false],
    ["leave without thread", "/leaveThread", 200, "{}", false],
    ["kept mentions", "/addThreadMessage", 200, '{"message":{"id":"m","threadId":"t","authorId":"a","body":"x","createdAt":"2026-01-02T03:04:05Z","mentions":["b"]}}', true],
    ["mentions not a list", "/addThreadMessage", 200, '{"message":{"id":"m","threadId":"t","authorId":"a","body":"x","createdAt":"2026-01-02T03:04:05Z","mentions":"b"}}', false],
    ["mentioned", "/getThreads", 200, '{"threads":[{"thread":{"id":"t","members":["a"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z","mentioned":true},"threadToken":"x"}]}', true],
    ["mentioned not a boolean", "/getThreads", 200, '{"threads":[{"thread":{"id":"t","members":["a"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z","mentioned":"yes"},"threadToken":"x"}]}', false],
  ];
  for (const [name, path, status, body, valid] of responses) {
    assert.equal(responseProblems(path, status, "application/json", body).length === 0, valid, `response ${name}: ${responseProblems(path, status, "application/json", body)}`);
  }
});
