// Attachments (protocol 1.4) end to end against a real `ecb demo` with the
// official socket.io-client and REST + SSE: getUploadUrl through ECB, the
// upload straight to the reference backend's signed URL (no bytes through
// ECB), sendMessage naming the attachment, the push and the history with it,
// the download; and the refusals (size, type before the backend; another
// thread's file, a reused upload URL by the backend).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, errorCode } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-attach-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

async function upload(u, bytes) {
  return fetch(u.uploadUrl, { method: u.method, headers: u.headers ?? {}, body: bytes });
}

test("upload an image over Socket.IO: pushed, in the history, downloadable", async () => {
  const alice = await demo.connect("alice");
  const bob = await demo.connect("bob");
  const created = await data(alice, "createThread", { participants: ["bob"], message: { body: "a picture follows" } });
  const threads = await data(bob, "getThreads", {});
  const bobTok = threads.items.find((t) => t.thread.id === created.thread.id).threadToken;
  await data(bob, "getThread", { threadToken: bobTok });

  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    "base64",
  );
  const u = await data(alice, "getUploadUrl", { threadToken: created.threadToken, name: "dot.png", size: png.length, contentType: "image/png" });
  assert.equal(u.method, "PUT");
  assert.ok(!u.uploadUrl.startsWith(demo.url), "the upload goes to the backend, not through ECB");
  assert.ok(Date.parse(u.expiresAt) > Date.now());
  assert.equal((await upload(u, png)).status, 204);
  assert.equal((await upload(u, png)).status, 409, "an upload URL is good for one upload");

  const pushed = once(bob, "message", 5000, (p) => p.message.attachments?.length === 1);
  const sent = await data(alice, "sendMessage", { threadToken: created.threadToken, body: "", attachments: [u.attachmentId] });
  assert.equal(sent.message.attachments[0].name, "dot.png");
  const p = await pushed;
  const att = p.message.attachments[0];
  assert.equal(att.id, u.attachmentId);
  assert.equal(att.contentType, "image/png");
  assert.equal(att.size, png.length);
  const dl = await fetch(att.url);
  assert.equal(dl.status, 200);
  assert.equal(dl.headers.get("content-type"), "image/png");
  assert.deepEqual(Buffer.from(await dl.arrayBuffer()), png);

  const hist = await data(bob, "getThread", { threadToken: bobTok });
  assert.equal(hist.messages.at(-1).attachments[0].id, u.attachmentId);

  // Refused before the backend: too big, a refused type; by the backend:
  // the same file again, an unknown id.
  assert.equal(await errorCode(alice, "getUploadUrl", { threadToken: created.threadToken, name: "big.png", size: 11 * 1024 * 1024, contentType: "image/png" }), "invalid_argument");
  assert.equal(await errorCode(alice, "getUploadUrl", { threadToken: created.threadToken, name: "x.html", size: 10, contentType: "text/html" }), "invalid_argument");
  assert.equal(await errorCode(alice, "sendMessage", { threadToken: created.threadToken, body: "again", attachments: [u.attachmentId] }), "invalid_argument");
  assert.equal(await errorCode(alice, "sendMessage", { threadToken: created.threadToken, body: "x", attachments: ["att_nope"] }), "invalid_argument");
  assert.equal(await errorCode(bob, "getUploadUrl", { threadToken: "not.a.token", name: "a.png", size: 1, contentType: "image/png" }), "unauthenticated");
  alice.close();
  bob.close();
});

test("a file over REST + SSE; another thread's file cannot be attached", async () => {
  const alice = await demo.userToken("alice");
  const bob = await demo.userToken("bob");
  const rest = async (method, path, token, body, headers = {}) => {
    const r = await fetch(demo.url + path, {
      method,
      headers: { authorization: "Bearer " + token, "content-type": "application/json", ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, ...(await r.json()) };
  };
  const c1 = (await rest("POST", "/v1/threads", alice, { participants: ["bob"], message: { body: "one" } })).data;
  const c2 = (await rest("POST", "/v1/threads", alice, { participants: ["carol"], message: { body: "two" } })).data;
  const text = Buffer.from("minutes of the meeting");
  const u = await rest("POST", `/v1/threads/${c2.thread.id}/uploads`, alice, { name: "minutes.txt", size: text.length, contentType: "text/plain" }, { "ECB-Thread-Token": c2.threadToken });
  assert.equal(u.status, 200);
  assert.equal((await upload(u.data, text)).status, 204);
  const other = await rest("POST", `/v1/threads/${c1.thread.id}/messages`, alice, { body: "see", attachments: [u.data.attachmentId] }, { "ECB-Thread-Token": c1.threadToken });
  assert.equal(other.status, 400);
  assert.equal(other.error.code, "invalid_argument");

  const ok = await rest("POST", `/v1/threads/${c2.thread.id}/messages`, alice, { body: "see", attachments: [u.data.attachmentId] }, { "ECB-Thread-Token": c2.threadToken });
  assert.equal(ok.status, 201);
  const a = ok.data.message.attachments[0];
  assert.equal(a.name, "minutes.txt");
  const dl = await fetch(a.url);
  assert.equal(await dl.text(), "minutes of the meeting");
  assert.match(dl.headers.get("content-disposition"), /^attachment/);
  // bob is no member of c2: no upload URL for him there.
  const bobs = await rest("POST", `/v1/threads/${c2.thread.id}/uploads`, bob, { name: "a.txt", size: 1, contentType: "text/plain" }, { "ECB-Thread-Token": c2.threadToken });
  assert.ok(bobs.status === 401 || bobs.status === 403, `status ${bobs.status}`);
});
