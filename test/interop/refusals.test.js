// Refusals the official socket.io-client can read: a handshake ECB refuses
// before any work (a foreign Origin, an Origin that is a URL rather than an
// origin, the per-IP handshake rate, a node at its connection limit) reaches
// the client as a connect_error whose err.data carries the code, over
// polling and over WebSocket alike, and the client does not retry on its
// own (see docs/protocol.md, "Refused handshakes").
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import { Demo } from "./harness.js";

const transportsOf = { polling: ["polling"], websocket: ["websocket"] };
let plain, limited, full;

before(async () => {
  plain = Demo.build();
  const again = () => new Demo(plain.bin, mkdtempSync(join(tmpdir(), "ecb-interop-refusals-")));
  limited = again();
  full = again();
  await Promise.all([
    plain.start(),
    limited.start(["--set", "limits.handshakesPerSecondPerIP=1", "--set", "limits.handshakeBurstPerIP=2"]),
    full.start(["--set", "limits.maxConnections=1"]),
  ]);
});

after(async () => {
  await limited?.remove();
  await full?.remove();
  await plain?.remove(); // holds the binary
});

// outcome resolves with null once s connects, or with its connect_error.
function outcome(s, ms = 5000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("neither connect nor connect_error")), ms);
    s.once("connect", () => (clearTimeout(timer), ok(null)));
    s.once("connect_error", (err) => (clearTimeout(timer), ok(err)));
  });
}

// refused opens a socket (reconnection on, as by default) and resolves with
// its connect_error, checking that the client gave the connection up by
// itself: no reconnection is scheduled and the manager is closed.
async function refused(demo, auth, opts) {
  const s = io(demo.url, { auth, forceNew: true, reconnectionDelay: 100, ...opts });
  try {
    const err = await outcome(s);
    assert.ok(err, "connected");
    assert.equal(s.active, false, "the socket would reconnect by itself");
    assert.equal(s.io._readyState, "closed", "the manager keeps its connection");
    return err;
  } finally {
    s.close();
  }
}

for (const [name, transports] of Object.entries(transportsOf)) {
  test(`a foreign Origin over ${name} reads forbidden`, async () => {
    const err = await refused(plain, { accessToken: await plain.accessToken("alice") }, {
      transports,
      extraHeaders: { Origin: "https://evil.example" },
    });
    assert.equal(err.data?.code, "forbidden", `${err.message} ${JSON.stringify(err.data)}`);
    assert.match(err.message, /https:\/\/evil\.example/);
  });

  test(`ECB's own URL with a trailing slash as Origin over ${name} is not its origin`, async () => {
    const userToken = await plain.userToken("alice");
    const err = await refused(plain, { userToken }, { transports, extraHeaders: { Origin: plain.url + "/" } });
    assert.equal(err.data?.code, "forbidden", `${err.message} ${JSON.stringify(err.data)}`);
    // The origin itself is the page's own, and connects.
    const s = await plain.socket({ userToken }, { transports, reconnection: false, extraHeaders: { Origin: plain.url } });
    s.close();
  });

  test(`the per-IP handshake limit over ${name} reads rate_limited`, async () => {
    const accessToken = await limited.accessToken("alice");
    let err = null;
    for (let i = 0; i < 10 && !err; i++) {
      const s = io(limited.url, { auth: { accessToken }, forceNew: true, reconnection: false, transports });
      err = await outcome(s);
      s.close();
    }
    assert.ok(err, "10 handshakes at 1 per second and a burst of 2 were all accepted");
    assert.equal(err.data?.code, "rate_limited", `${err.message} ${JSON.stringify(err.data)}`);
    assert.ok(err.data.retryAfter >= 1, JSON.stringify(err.data));
  });
}

test("a node at its connection limit reads unavailable, on both transports", async () => {
  const alice = await full.socket({ accessToken: await full.accessToken("alice") }, { reconnection: false });
  try {
    const accessToken = await full.accessToken("bob");
    for (const transports of Object.values(transportsOf)) {
      const err = await refused(full, { accessToken }, { transports });
      assert.equal(err.data?.code, "unavailable", `${transports}: ${err.message} ${JSON.stringify(err.data)}`);
    }
  } finally {
    alice.close();
  }
});
