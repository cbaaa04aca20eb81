// The harness the ECB interop suites share: build the ecb binary, run a real
// `ecb demo` on random ports, log users in through the reference backend, and
// call operations with the official socket.io-client.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { EventEmitter } from "node:events";
import { io } from "socket.io-client";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

// Demo is one `ecb demo` process with its data directory.
export class Demo {
  // build compiles ecb once into a fresh temp dir.
  static build(prefix = "ecb-interop-") {
    const tmp = mkdtempSync(join(tmpdir(), prefix));
    const bin = join(tmp, "ecb");
    execFileSync("go", ["build", "-o", bin, "./cmd/ecb"], { cwd: repo, stdio: "inherit" });
    return new Demo(bin, tmp);
  }

  constructor(bin, tmp) {
    this.bin = bin;
    this.tmp = tmp;
    this.data = join(tmp, "data");
    this.proc = null;
    this.url = "";
    this.backend = "";
  }

  // start runs the demo (random ports unless listen addresses are given) and
  // resolves once it printed its URLs.
  start(args = [], { listen = "127.0.0.1:0", backendListen = "127.0.0.1:0" } = {}) {
    return new Promise((ok, fail) => {
      const proc = spawn(this.bin, ["demo", "--data", this.data, "--listen", listen, "--backend-listen", backendListen, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      let ready = false;
      const timer = setTimeout(() => fail(new Error("ecb demo did not start:\n" + out + err)), 30000);
      proc.stderr.on("data", (d) => (err += d));
      proc.stdout.on("data", (d) => {
        out += d;
        const e = out.match(/ECB client API:\s+(http:\/\/\S+)/);
        const b = out.match(/reference backend:\s+(http:\/\/\S+)/);
        if (e && b && !ready) {
          ready = true;
          clearTimeout(timer);
          Object.assign(this, { proc, url: e[1], backend: b[1] });
          ok(this);
        }
      });
      proc.on("exit", (code) => fail(new Error(`ecb demo exited with ${code}:\n${out}${err}`)));
    });
  }

  // stop ends the demo with SIGTERM and waits for it.
  stop() {
    const proc = this.proc;
    this.proc = null;
    return new Promise((ok) => {
      if (!proc || proc.exitCode !== null) return ok();
      proc.once("exit", () => ok());
      proc.kill("SIGTERM");
    });
  }

  // remove stops the demo and deletes its directory.
  async remove() {
    await this.stop();
    rmSync(this.tmp, { recursive: true, force: true });
  }

  // callbacks returns the support events ECB posted for requestId, as the
  // reference backend stored them (GET /callbacks?requestId=).
  async callbacks(requestId) {
    const r = await fetch(`${this.backend}/callbacks?requestId=${encodeURIComponent(requestId)}`);
    assert.equal(r.status, 200);
    return (await r.json()).events;
  }

  // waitForCallbacks polls until pred(events) holds (callbacks are
  // asynchronous), and fails the test with what arrived when it never does.
  async waitForCallbacks(requestId, pred, ms = 10000) {
    const until = Date.now() + ms;
    let events = [];
    while (Date.now() < until) {
      events = await this.callbacks(requestId);
      if (pred(events)) return events;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.fail(`callbacks of ${requestId} never matched: ${JSON.stringify(events)}`);
  }

  // accessToken logs user in at the reference backend (seed step 0).
  async accessToken(user) {
    const r = await fetch(this.backend + "/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: user, password: user }),
    });
    assert.equal(r.status, 200, `login ${user}`);
    return (await r.json()).accessToken;
  }

  // userToken runs getUserToken over REST.
  async userToken(user) {
    const r = await fetch(this.url + "/v1/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ accessToken: await this.accessToken(user) }),
    });
    return (await r.json()).data.userToken;
  }

  // socket opens a connected socket for auth ({userToken} or {accessToken});
  // with an accessToken it also waits for the session event (socket.session).
  async socket(auth, opts = {}) {
    const s = io(this.url, { auth, forceNew: true, transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 300, ...opts });
    const session = auth.accessToken ? once(s, "session") : null;
    await once(s, "connect");
    if (session) s.session = await session;
    return s;
  }

  // connect opens a socket for user with a fresh userToken.
  async connect(user, opts = {}) {
    return this.socket({ userToken: await this.userToken(user) }, opts);
  }

  // events opens GET /v1/events for token and emits each named SSE event
  // (its data decoded) on the returned emitter, then "end"; close() ends it;
  // ready is the stream's first (ready) event.
  async events(token) {
    const ac = new AbortController();
    const r = await fetch(this.url + "/v1/events", { headers: { authorization: "Bearer " + token }, signal: ac.signal });
    assert.equal(r.status, 200);
    const em = new EventEmitter();
    em.close = () => ac.abort();
    const ready = once(em, "ready");
    (async () => {
      const dec = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of r.body) {
          buf += dec.decode(chunk, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let name = "";
            let payload = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              if (line.startsWith("data:")) payload = line.slice(5).trim();
            }
            if (name) em.emit(name, JSON.parse(payload));
          }
        }
        em.emit("end");
      } catch {
        // aborted
      }
    })();
    em.ready = await ready;
    return em;
  }
}

// once resolves with the first argument of the next event that passes
// filter, or rejects after ms. Call it before the action that causes the
// event: a push can arrive before the ack of the call that caused it.
export function once(emitter, event, ms = 5000, filter = () => true) {
  return new Promise((ok, fail) => {
    const h = (...args) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      emitter.off(event, h);
      ok(args[0]);
    };
    const timer = setTimeout(() => {
      emitter.off(event, h);
      fail(new Error(`timeout waiting for ${event}`));
    }, ms);
    emitter.on(event, h);
  });
}

// call emits an operation and resolves with the envelope of its ack.
export function call(socket, op, payload, ms = 5000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no ack for ${op}`)), ms);
    socket.emit(op, payload, (res) => {
      clearTimeout(timer);
      ok(res);
    });
  });
}

// data calls op and returns its data, failing the test on an error.
export async function data(socket, op, payload) {
  const res = await call(socket, op, payload);
  assert.ok(res && res.data !== undefined && res.error === undefined, `${op} failed: ${JSON.stringify(res)}`);
  return res.data;
}

// errorCode calls op and returns its error code, failing the test on success.
export async function errorCode(socket, op, payload) {
  const res = await call(socket, op, payload);
  assert.ok(res && res.error, `${op} succeeded: ${JSON.stringify(res)}`);
  return res.error.code;
}
