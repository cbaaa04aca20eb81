// The signature scheme: the worked example of docs/backend-contract.md, and
// every refusal the Go SDK makes (bad, replayed, stale, oversized), directly
// and through the handler.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import http from "node:http";
import {
  DEFAULT_REPLAY_WINDOW_SECONDS,
  SignatureError,
  createHandler,
  sign,
  signHeaders,
  signatureMiddleware,
  verifyRequest,
  verifySignature,
} from "../dist/index.js";
import { SECRET, memoryLogger, serve, signedCall } from "./helpers.mjs";

const BODY = '{"accessToken":"abc"}';
const T = 1700000000;
const at = (unix) => new Date(unix * 1000);
const headersAt = (unix, body = BODY, secret = SECRET) => ({ "ecb-timestamp": String(unix), "ecb-signature": sign(secret, unix, body) });

function refused(fn, kind) {
  assert.throws(fn, (err) => err instanceof SignatureError && err.kind === kind, `want ${kind}`);
}

test("the worked example of docs/backend-contract.md (the Go SDK's ExampleSign vector)", () => {
  assert.equal(sign(SECRET, T, BODY), "v1=6d9324c2d68ab23f6eb23f65b21df22bb4254013c7da0acdbfd098e0074e3403");
  assert.equal(sign(Buffer.from(SECRET), T, Buffer.from(BODY)), sign(SECRET, T, BODY));
  assert.deepEqual(signHeaders(SECRET, BODY, at(T)), {
    "ECB-Timestamp": "1700000000",
    "ECB-Signature": "v1=6d9324c2d68ab23f6eb23f65b21df22bb4254013c7da0acdbfd098e0074e3403",
  });
});

test("a good signature passes, with Node headers and with Fetch Headers", () => {
  verifySignature(SECRET, headersAt(T), BODY, { now: at(T) });
  verifySignature(SECRET, new Headers(headersAt(T)), Buffer.from(BODY), { now: at(T) });
  // Upper-case hex is hex (Go's hex.DecodeString accepts it).
  const h = headersAt(T);
  h["ecb-signature"] = "v1=" + h["ecb-signature"].slice(3).toUpperCase();
  verifySignature(SECRET, h, BODY, { now: at(T) });
  // The MAC covers the timestamp exactly as sent: "+1700000000" is unix seconds (Go's ParseInt) when signed so.
  const plus = createHmac("sha256", SECRET).update("+1700000000." + BODY).digest("hex");
  verifySignature(SECRET, { "ecb-timestamp": "+1700000000", "ecb-signature": "v1=" + plus }, BODY, { now: at(T) });
});

test("bad signatures: wrong secret, altered body or timestamp, malformed headers, empty secret", () => {
  refused(() => verifySignature("another-secret-another-secret-xx", headersAt(T), BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, headersAt(T), '{"accessToken":"abd"}', { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { ...headersAt(T), "ecb-timestamp": String(T + 1) }, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { ...headersAt(T), "ecb-timestamp": "+1700000000" }, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { ...headersAt(T), "ecb-timestamp": "1700000000.5" }, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { ...headersAt(T), "ecb-timestamp": "99999999999999999999" }, BODY, { now: at(T) }), "bad_signature");
  const sig = headersAt(T)["ecb-signature"];
  refused(() => verifySignature(SECRET, { "ecb-timestamp": String(T), "ecb-signature": sig.slice(3) }, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { "ecb-timestamp": String(T), "ecb-signature": "v2=" + sig.slice(3) }, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { "ecb-timestamp": String(T), "ecb-signature": sig.slice(0, -2) }, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { "ecb-timestamp": String(T), "ecb-signature": sig.slice(0, -1) + "g" }, BODY, { now: at(T) }), "bad_signature");
  // Anybody can compute an HMAC with an empty key: an empty secret refuses everything.
  const empty = { "ecb-timestamp": String(T), "ecb-signature": sign("", T, BODY) };
  refused(() => verifySignature("", empty, BODY, { now: at(T) }), "bad_signature");
  refused(() => verifySignature(SECRET, { "ecb-timestamp": String(T) }, BODY, { now: at(T) }), "missing_signature");
  refused(() => verifySignature(SECRET, { "ecb-signature": sig }, BODY, { now: at(T) }), "missing_signature");
  refused(() => verifySignature("", {}, BODY, { now: at(T) }), "missing_signature");
});

test("the replay window: 5 minutes either way by default, whole seconds, checked after the MAC", () => {
  assert.equal(DEFAULT_REPLAY_WINDOW_SECONDS, 300);
  verifySignature(SECRET, headersAt(T), BODY, { now: at(T + 300) });
  verifySignature(SECRET, headersAt(T), BODY, { now: at(T - 300) });
  verifySignature(SECRET, headersAt(T), BODY, { now: new Date(T * 1000 + 300_999) }); // 300.999 s is 300 whole seconds
  refused(() => verifySignature(SECRET, headersAt(T), BODY, { now: at(T + 301) }), "stale_timestamp"); // replayed later
  refused(() => verifySignature(SECRET, headersAt(T), BODY, { now: at(T - 301) }), "stale_timestamp"); // from the future
  // A narrower window, and a fraction rounded up as Go rounds a Duration up to seconds.
  refused(() => verifySignature(SECRET, headersAt(T), BODY, { now: at(T + 11), replayWindowSeconds: 10 }), "stale_timestamp");
  verifySignature(SECRET, headersAt(T), BODY, { now: at(T + 11), replayWindowSeconds: 10.5 });
  verifySignature(SECRET, headersAt(T), BODY, { now: at(T + 300), replayWindowSeconds: 0 }); // 0 = the default
  // A stale call with a wrong secret is a bad signature: stale means "check the clocks", never "check the secret".
  refused(() => verifySignature("wrong-wrong-wrong-wrong-wrong-xx", headersAt(T), BODY, { now: at(T + 1000) }), "bad_signature");
});

// A handler whose clock we move, for the answers on the wire.
async function clockedServer(clock, opts = {}) {
  const log = memoryLogger();
  const calls = [];
  const impl = {
    authenticate: (req) => (calls.push(req), { userToken: "a.b.c", user: { id: "u", name: "U" } }),
    getContacts: () => ({ contacts: [] }),
    getThreads: () => ({ threads: [] }),
    createThread: () => assert.fail("unused"),
    getThread: () => assert.fail("unused"),
    addThreadMessage: () => assert.fail("unused"),
  };
  const srv = await serve(createHandler(impl, { secret: SECRET, logger: log, now: () => clock.now, ...opts }));
  return { ...srv, log, calls };
}

test("through the handler: good 200, bad and missing 401 bad_signature, replayed and stale 401 with the clock message", async (t) => {
  const clock = { now: new Date() };
  const srv = await clockedServer(clock);
  t.after(srv.close);
  const good = await signedCall(srv.url, "/authenticate", { accessToken: "abc" });
  assert.equal(good.status, 200);
  assert.equal(srv.calls.length, 1);

  const bad = await signedCall(srv.url, "/authenticate", { accessToken: "abc" }, { secret: "wrong-wrong-wrong-wrong-wrong-xx" });
  assert.equal(bad.status, 401);
  assert.deepEqual(bad.body, { error: { code: "bad_signature", message: "signature does not match; check the shared secret" } });
  assert.equal(bad.headers.get("cache-control"), "no-store");

  const missing = await fetch(srv.url + "/authenticate", { method: "POST", body: "{}" });
  assert.equal(missing.status, 401);
  assert.deepEqual(await missing.json(), { error: { code: "bad_signature", message: "missing ECB-Timestamp or ECB-Signature header" } });

  // The very same signed request, captured and sent again six minutes later.
  const { request } = good;
  clock.now = new Date(clock.now.getTime() + 6 * 60 * 1000);
  const replayed = await fetch(srv.url + request.path, { method: "POST", headers: request.headers, body: request.body });
  assert.equal(replayed.status, 401);
  assert.deepEqual(await replayed.json(), { error: { code: "bad_signature", message: "ECB-Timestamp is outside the replay window; check both clocks" } });

  // Signed by a clock ten minutes fast.
  const stale = await signedCall(srv.url, "/authenticate", { accessToken: "abc" }, { now: new Date(clock.now.getTime() + 10 * 60 * 1000) });
  assert.equal(stale.status, 401);
  assert.equal(stale.body.error.message, "ECB-Timestamp is outside the replay window; check both clocks");
  assert.equal(srv.calls.length, 1, "no refused call reached the implementation");
  assert.ok(srv.log.lines.filter((l) => l.level === "warn" && l.message.includes("refused signature")).length >= 4, "refusals are logged");
});

/** Sends a POST with node:http (a declared length, or chunked) and resolves with the status and body. */
function rawPost(url, path, body, { chunked = false, headers = {} } = {}) {
  return new Promise((ok, fail) => {
    const req = http.request(url + path, { method: "POST", headers: { ...(chunked ? {} : { "content-length": body.length }), ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => ok({ status: res.statusCode, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on("error", (err) => (err.code === "EPIPE" || err.code === "ECONNRESET" ? undefined : fail(err)));
    if (chunked) {
      // Send in pieces so the limit is hit while streaming.
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

test("an oversized body is 413 payload_too_large before the signature is checked, declared or streamed", async (t) => {
  const clock = { now: new Date() };
  const srv = await clockedServer(clock);
  t.after(srv.close);
  const big = Buffer.alloc((1 << 20) + 1, "a");
  for (const chunked of [false, true]) {
    const r = await rawPost(srv.url, "/authenticate", big, { chunked, headers: signHeaders(SECRET, big) });
    assert.equal(r.status, 413, `chunked=${chunked}`);
    assert.deepEqual(r.body, { error: { code: "payload_too_large", message: "request body exceeds 1048576 bytes" } });
    assert.equal(r.headers.connection, "close");
  }
  // Exactly the limit is read and checked (here: a valid signature over a body that is not JSON).
  const limit = Buffer.alloc(1 << 20, "a");
  const r = await rawPost(srv.url, "/authenticate", limit, { headers: signHeaders(SECRET, limit) });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /^malformed JSON body/);

  const small = await clockedServer(clock, { maxBodyBytes: 16 });
  t.after(small.close);
  const r2 = await signedCall(small.url, "/authenticate", { accessToken: "abcdefghijklmnop" });
  assert.equal(r2.status, 413);
  assert.equal(r2.body.error.message, "request body exceeds 16 bytes");
  assert.equal(srv.calls.length + small.calls.length, 0);
});

test("verifyRequest and signatureMiddleware for routes of your own", async (t) => {
  const seen = [];
  const srv = await serve(async (req, res) => {
    if (req.url === "/own") {
      try {
        const body = await verifyRequest(req, { secret: SECRET, maxBodyBytes: 64 });
        seen.push(body.toString());
        res.writeHead(204).end();
      } catch (err) {
        res.writeHead(err.status, { "content-type": "application/json" }).end(JSON.stringify({ code: err.code, kind: err.cause?.kind }));
      }
      return;
    }
    const mw = signatureMiddleware({ secret: SECRET, logger: memoryLogger() });
    await mw(req, res, () => {
      seen.push("mw:" + req.rawBody.toString());
      res.writeHead(204).end();
    });
  });
  t.after(srv.close);
  assert.equal((await signedCall(srv.url, "/own", { a: 1 })).status, 204);
  const stale = await signedCall(srv.url, "/own", { a: 2 }, { now: new Date(Date.now() - 3600_000) });
  assert.deepEqual([stale.status, stale.body], [401, { code: "bad_signature", kind: "stale_timestamp" }]);
  const big = await signedCall(srv.url, "/own", { a: "x".repeat(100) });
  assert.deepEqual([big.status, big.body.code], [413, "payload_too_large"]);
  assert.equal((await signedCall(srv.url, "/mw", { b: 1 })).status, 204);
  const bad = await signedCall(srv.url, "/mw", { b: 2 }, { secret: "wrong-wrong-wrong-wrong-wrong-xx" });
  assert.deepEqual([bad.status, bad.body.error.code], [401, "bad_signature"]);
  const get = await fetch(srv.url + "/mw");
  assert.deepEqual([get.status, get.headers.get("allow")], [405, "POST"]);
  assert.deepEqual(seen, ['{"a":1}', 'mw:{"b":1}']);
});
