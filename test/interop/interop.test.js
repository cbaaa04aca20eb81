// Interop tests: the official socket.io-client and engine.io-client against
// ECB's Socket.IO server (internal/socketio), through its conformance server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { Socket as EngineSocket } from "engine.io-client";
import WebSocket from "ws";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
let bin, tmp, server, base;

// startServer runs the conformance server on addr and resolves with its base URL.
function startServer(addr = "127.0.0.1:0") {
  return new Promise((ok, fail) => {
    const proc = spawn(bin, ["-listen", addr], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => fail(new Error("server did not start: " + out)), 10000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        ok({ proc, url: m[1] });
      }
    });
    proc.on("exit", (code) => fail(new Error("server exited: " + code)));
  });
}

function stopServer(s) {
  return new Promise((ok) => {
    if (s.proc.exitCode !== null) return ok();
    s.proc.once("exit", () => ok());
    s.proc.kill("SIGTERM");
  });
}

// once resolves with the arguments of the next event, or rejects after ms.
function once(emitter, event, ms = 5000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      ok(args);
    });
  });
}

function client(path = "/", opts = {}) {
  return io(base + path, { reconnection: false, forceNew: true, ...opts });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "ecb-interop-"));
  bin = join(tmp, "conformance");
  execFileSync("go", ["build", "-o", bin, "./internal/socketio/conformance/cmd"], { cwd: repo, stdio: "inherit" });
  server = await startServer();
  base = server.url;
});

after(async () => {
  if (server) await stopServer(server);
  rmSync(tmp, { recursive: true, force: true });
});

test("websocket-only connect, auth payload, echo", async () => {
  const s = client("/", { transports: ["websocket"], auth: { token: "123" } });
  try {
    const [auth] = await once(s, "auth");
    assert.deepEqual(auth, { token: "123" });
    assert.equal(s.io.engine.transport.name, "websocket");
    assert.ok(s.id);
    s.emit("message", 1, "2", { 3: [true] });
    const args = await once(s, "message-back");
    assert.deepEqual(args, [1, "2", { 3: [true] }]);
  } finally {
    s.close();
  }
});

test("polling-only connect and echo", async () => {
  const s = client("/", { transports: ["polling"] });
  try {
    const [auth] = await once(s, "auth");
    assert.deepEqual(auth, {});
    assert.equal(s.io.engine.transport.name, "polling");
    s.emit("message", "hello", { a: [1, 2] });
    assert.deepEqual(await once(s, "message-back"), ["hello", { a: [1, 2] }]);
    // Several packets in one payload: emitted back to back.
    const got = [];
    const done = new Promise((ok) => s.on("pushed", (n) => { got.push(n); if (got.length === 20) ok(); }));
    for (let i = 0; i < 20; i++) s.emit("push-me", i);
    await done;
    assert.deepEqual(got, [...Array(20).keys()]);
  } finally {
    s.close();
  }
});

test("polling upgraded to websocket", async () => {
  const s = client("/");
  try {
    await once(s, "connect");
    if (s.io.engine.transport.name !== "websocket") {
      await once(s.io.engine, "upgrade");
    }
    assert.equal(s.io.engine.transport.name, "websocket");
    const res = await s.timeout(5000).emitWithAck("echo", "after-upgrade");
    assert.deepEqual(res, "after-upgrade");
  } finally {
    s.close();
  }
});

test("acks both ways", async () => {
  const s = client("/", { transports: ["websocket"] });
  try {
    await once(s, "connect");
    // client → server → ack
    const res = await s.timeout(5000).emitWithAck("message-with-ack", { x: 1 });
    assert.deepEqual(res, { x: 1 });
    // server → client with ack: the server re-emits our ack args as "answer"
    s.on("question", (q, cb) => cb("yes", q));
    s.emit("ask-me", { q: 42 });
    const answer = await once(s, "answer");
    assert.deepEqual(answer, ["yes", { q: 42 }]);
  } finally {
    s.close();
  }
});

test("server push", async () => {
  const s = client("/", { transports: ["websocket"] });
  try {
    await once(s, "connect");
    s.emit("push-me", { hello: "world" }, [1, 2, 3]);
    assert.deepEqual(await once(s, "pushed"), [{ hello: "world" }, [1, 2, 3]]);
  } finally {
    s.close();
  }
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`binary round trip over ${transports[0]}`, async () => {
    const s = client("/", { transports });
    try {
      await once(s, "connect");
      const a = Buffer.from([1, 2, 3]);
      const b = Buffer.from([4, 5, 6, 7]);
      s.emit("message", a, { nested: b, text: "t" });
      const [ga, gobj] = await once(s, "message-back");
      assert.deepEqual(Buffer.from(ga), a);
      assert.deepEqual(Buffer.from(gobj.nested), b);
      assert.equal(gobj.text, "t");
      const res = await s.timeout(5000).emitWithAck("echo", Buffer.from("bin-ack"));
      assert.equal(Buffer.from(res).toString(), "bin-ack");
    } finally {
      s.close();
    }
  });
}

test("auth refused with connect_error data, accepted with the right token", async () => {
  const bad = client("/private", { auth: { token: "bad" } });
  try {
    const [err] = await once(bad, "connect_error");
    assert.equal(err.message, "unauthorized");
    assert.deepEqual(err.data, { reason: "bad token" });
  } finally {
    bad.close();
  }
  const good = client("/private", { auth: { token: "good" } });
  try {
    const [auth] = await once(good, "auth");
    assert.deepEqual(auth, { token: "good" });
  } finally {
    good.close();
  }
});

test("/custom namespace and unknown namespace", async () => {
  const c = client("/custom", { auth: { a: 1 } });
  try {
    assert.deepEqual(await once(c, "auth"), [{ a: 1 }]);
  } finally {
    c.close();
  }
  const u = client("/nope");
  try {
    const [err] = await once(u, "connect_error");
    assert.equal(err.message, "Invalid namespace");
  } finally {
    u.close();
  }
});

test("raw Engine.IO echo with engine.io-client", async () => {
  for (const transports of [["websocket"], ["polling"]]) {
    const e = new EngineSocket(base, { path: "/engine.io/", transports });
    try {
      await once(e, "open");
      e.send("hello");
      assert.deepEqual(await once(e, "message"), ["hello"]);
      e.send(Buffer.from([9, 8, 7]));
      const [bin] = await once(e, "message");
      assert.deepEqual(Buffer.from(bin), Buffer.from([9, 8, 7]));
    } finally {
      e.close();
    }
  }
});

test("the server closes a dead connection after the ping timeout", async () => {
  // A raw WebSocket that never answers pings (pingInterval 300 ms, pingTimeout 200 ms).
  const ws = new WebSocket(base.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket");
  const start = Date.now();
  const msgs = [];
  ws.on("message", (d) => msgs.push(String(d)));
  const [code] = await once(ws, "close", 3000);
  const elapsed = Date.now() - start;
  assert.ok(msgs[0].startsWith("0{"), "open packet first");
  assert.ok(msgs.includes("2"), "got a ping");
  assert.ok(elapsed >= 450 && elapsed < 2000, `closed after ${elapsed} ms`);
  assert.ok(code !== undefined);
});

test("a client that answers pings stays connected", async () => {
  const e = new EngineSocket(base, { path: "/engine.io/", transports: ["websocket"] });
  try {
    await once(e, "open");
    await new Promise((ok) => setTimeout(ok, 1200)); // several ping intervals
    assert.equal(e.readyState, "open");
  } finally {
    e.close();
  }
});

test("drop-me closes the transport and the client reconnects", async () => {
  const s = io(base, { forceNew: true, transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 100 });
  try {
    await once(s, "connect");
    const first = s.id;
    s.emit("drop-me");
    const [reason] = await once(s, "disconnect");
    assert.equal(reason, "transport close");
    await once(s, "connect");
    assert.notEqual(s.id, first);
  } finally {
    s.close();
  }
});

test("reconnection after the server restarts", async () => {
  const s = io(base, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  try {
    await once(s, "connect");
    const addr = new URL(base).host;
    const disconnected = once(s, "disconnect");
    await stopServer(server);
    await disconnected;
    server = await startServer(addr);
    const reconnected = once(s.io, "reconnect", 10000);
    await once(s, "connect", 10000);
    await reconnected;
    assert.ok(s.connected);
    s.emit("push-me", "back");
    assert.deepEqual(await once(s, "pushed"), ["back"]);
  } finally {
    s.close();
  }
});
