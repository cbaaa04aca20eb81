// Test helpers: build and run a real `ecb demo`, log in on its reference
// backend, talk REST to ECB, and a TCP proxy that can cut the network.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../../..");

const cleanups = [];
// Kill whatever is still running when the process ends, also on failure.
process.on("exit", () => {
  for (const f of cleanups.splice(0)) {
    try {
      f();
    } catch {
      /* exiting */
    }
  }
});

let binPromise;
/** Builds the ecb binary once per process (ECB_BIN overrides). */
export function ecbBinary() {
  if (process.env.ECB_BIN) return process.env.ECB_BIN;
  if (!binPromise) {
    const dir = mkdtempSync(join(tmpdir(), "ecb-client-bin-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const bin = join(dir, "ecb");
    execFileSync("go", ["build", "-o", bin, "./cmd/ecb"], { cwd: repo, stdio: "inherit" });
    binPromise = bin;
  }
  return binPromise;
}

/**
 * Starts `ecb demo` and resolves once it printed its URLs. Options: data (a
 * directory to reuse), listen, backendListen, sets (["key=value"]).
 */
export function startEcb(opts = {}) {
  const data = opts.data ?? mkdtempSync(join(tmpdir(), "ecb-client-data-"));
  if (!opts.data) cleanups.push(() => rmSync(data, { recursive: true, force: true }));
  const args = ["demo", "--listen", opts.listen ?? "127.0.0.1:0", "--backend-listen", opts.backendListen ?? "127.0.0.1:0", "--data", data];
  for (const s of opts.sets ?? []) args.push("--set", s);
  const proc = spawn(ecbBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  const kill = () => proc.exitCode === null && proc.kill("SIGKILL");
  cleanups.push(kill);
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-20000);
    if (process.env.ECB_LOG) process.stderr.write(d);
  });
  return new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => {
      kill();
      fail(new Error(`ecb demo did not start in time:\n${out}\n${stderr}`));
    }, 60000);
    proc.stdout.on("data", (d) => {
      out += d;
      const api = out.match(/ECB client API:\s+(http:\/\/\S+)/);
      const backend = out.match(/reference backend:\s+(http:\/\/\S+)/);
      if (api && backend) {
        clearTimeout(timer);
        const ecb = {
          proc,
          data,
          url: api[1],
          backendUrl: backend[1],
          stderr: () => stderr,
          /** Stops the process (SIGTERM, then SIGKILL after 10 s) and resolves when it exited. */
          stop() {
            return new Promise((done) => {
              if (proc.exitCode !== null || proc.signalCode !== null) return done();
              const force = setTimeout(kill, 10000);
              proc.once("exit", () => {
                clearTimeout(force);
                done();
              });
              proc.kill("SIGTERM");
            });
          },
          /** Stops and starts again on the same ports with the same data. */
          async restart() {
            await ecb.stop();
            return startEcb({
              data,
              listen: new URL(ecb.url).host,
              backendListen: new URL(ecb.backendUrl).host,
              sets: opts.sets,
            });
          },
        };
        ok(ecb);
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`ecb demo exited with ${code}:\n${out}\n${stderr}`));
    });
  });
}

/** Logs in on the reference backend (password = user name) and returns the access token. */
export async function login(backendUrl, user, password = user) {
  const res = await fetch(`${backendUrl}/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: user, password }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`login ${user}: ${res.status} ${JSON.stringify(body)}`);
  return body.accessToken;
}

/** A small REST client of ECB's /v1 API (the same operations, another transport). */
export function rest(ecbUrl) {
  async function call(method, path, { token, threadToken, body } = {}) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (threadToken) headers["ecb-thread-token"] = threadToken;
    const res = await fetch(ecbUrl + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const env = await res.json();
    if (env.error) throw Object.assign(new Error(`${method} ${path}: ${env.error.code}: ${env.error.message}`), { code: env.error.code });
    return env.data;
  }
  return {
    userToken: async (accessToken) => (await call("POST", "/v1/token", { body: { accessToken } })).userToken,
    threads: (token) => call("GET", "/v1/threads?pageSize=100", { token }),
    thread: (token, id, threadToken, limit = 200) => call("GET", `/v1/threads/${id}?limit=${limit}`, { token, threadToken }),
    send: (token, id, threadToken, body, clientMessageId) =>
      call("POST", `/v1/threads/${id}/messages`, { token, threadToken, body: { body, clientMessageId } }),
  };
}

/**
 * A TCP proxy in front of ECB that can cut the network: cut() drops every
 * connection and refuses new ones until heal(); muteDown() keeps connections
 * up but drops everything ECB sends (so acks get lost).
 */
export function startProxy(target) {
  const { hostname, port } = new URL(target);
  const pairs = new Set();
  let refusing = false;
  let muted = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    const pair = { client, upstream };
    pairs.add(pair);
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (!muted) client.write(d);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on("close", end);
      s.on("error", end);
    }
  });
  cleanups.push(() => server.close());
  return new Promise((ok) => {
    server.listen(0, "127.0.0.1", () => {
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        get connections() {
          return pairs.size;
        },
        cut() {
          refusing = true;
          for (const p of [...pairs]) {
            p.client.destroy();
            p.upstream.destroy();
          }
        },
        muteDown() {
          muted = true;
        },
        heal() {
          refusing = false;
          muted = false;
        },
        close() {
          this.cut();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}

/**
 * Resolves with the first payload of `event` on client that satisfies pred;
 * rejects after ms. Subscribe before causing the event.
 */
export function waitEvent(client, event, pred = () => true, ms = 15000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error(`timeout waiting for ${event}`));
    }, ms);
    const off = client.on(event, (e) => {
      if (pred(e)) {
        clearTimeout(timer);
        off();
        ok(e);
      }
    });
  });
}

/** Waits until the client's state is one of states. */
export function waitState(client, states, ms = 15000) {
  const want = [].concat(states);
  if (want.includes(client.state)) return Promise.resolve();
  return waitEvent(client, "connection", (e) => want.includes(e.state), ms);
}

/** Collects a client's message events. */
export function collect(client) {
  const got = [];
  client.on("message", (e) => got.push(e));
  return got;
}

/** Waits until cond() is true, checked on each event of client (no polling timer). */
export function until(client, event, cond, ms = 15000) {
  if (cond()) return Promise.resolve();
  return waitEvent(client, event, () => cond(), ms);
}

/** Fast reconnection for tests. */
export const fast = { reconnectionDelay: 50, reconnectionDelayMax: 250 };
