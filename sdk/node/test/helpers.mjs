// Test helpers: keys, signed calls, the example backend as its own `node`
// process, and a real `ecb serve` built from this repository.
import { spawn, execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { signHeaders } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
export const pkg = resolve(here, "..");
export const repo = resolve(here, "../../..");

const cleanups = [];
process.on("exit", () => {
  for (const f of cleanups.splice(0)) {
    try {
      f();
    } catch {
      /* exiting */
    }
  }
});

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export const SECRET = "0123456789abcdef0123456789abcdef";

export function keyPair(kind) {
  if (kind === "rsa") return generateKeyPairSync("rsa", { modulusLength: 2048 });
  if (kind === "ec") return generateKeyPairSync("ec", { namedCurve: "P-256" });
  return generateKeyPairSync(kind);
}

let bin;
/** Builds the ecb binary once per process with `go build` from the repository root (ECB_BIN overrides). */
export function ecbBinary() {
  if (process.env.ECB_BIN) return process.env.ECB_BIN;
  if (!bin) {
    const out = join(tempDir("ecb-nodesdk-bin-"), "ecb");
    execFileSync("go", ["build", "-o", out, "./cmd/ecb"], { cwd: repo, stdio: "inherit" });
    bin = out;
  }
  return bin;
}

/** `ecb keys generate` into a new directory: private.pem, public.pem, jwks.json, backend-secret. */
export function ecbKeys() {
  const dir = tempDir("ecb-nodesdk-keys-");
  execFileSync(ecbBinary(), ["keys", "generate", "--out", dir], { stdio: "pipe" });
  return { dir, secret: readFileSync(join(dir, "backend-secret"), "utf8").trim(), publicKey: join(dir, "public.pem") };
}

/** Starts `node example/server.mjs` and resolves with its contract URL once it printed it. */
export function startExample(keysDir, { core = false } = {}) {
  const args = [join(pkg, "example/server.mjs"), "--keys", keysDir, "--listen", "127.0.0.1:0"];
  if (core) args.push("--core");
  const proc = spawn(process.execPath, args, { cwd: pkg, stdio: ["ignore", "pipe", "pipe"] });
  const kill = () => proc.exitCode === null && proc.kill("SIGKILL");
  cleanups.push(kill);
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr = (stderr + d).slice(-20000)));
  return new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`example backend did not start:\n${out}\n${stderr}`)), 20000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/example backend: (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        const url = m[1];
        ok({ proc, url, origin: new URL(url).origin, stderr: () => stderr, stop: () => stop(proc) });
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`example backend exited with ${code}:\n${out}\n${stderr}`));
    });
  });
}

function stop(proc) {
  return new Promise((done) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return done();
    const force = setTimeout(() => proc.kill("SIGKILL"), 10000);
    proc.once("exit", () => {
      clearTimeout(force);
      done();
    });
    proc.kill("SIGTERM");
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `ecb serve` configured only through ECB_* variables (docs/configuration.md)
 * against a backend, and resolves once /readyz answers 200.
 */
export async function startEcbServe({ backendUrl, secret, publicKeyFile, audience = "ecb", extraEnv = {} }) {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ECB_LISTEN: `127.0.0.1:${port}`,
    ECB_BACKEND_URL: backendUrl,
    ECB_BACKEND_SECRET: secret,
    ECB_AUTH_PUBLIC_KEY_FILE: publicKeyFile,
    ECB_AUTH_AUDIENCE: audience,
    ...extraEnv,
  };
  const proc = spawn(ecbBinary(), ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const kill = () => proc.exitCode === null && proc.kill("SIGKILL");
  cleanups.push(kill);
  let logs = "";
  const keep = (d) => (logs = (logs + d).slice(-40000));
  proc.stdout.on("data", keep);
  proc.stderr.on("data", keep);
  let exited = null;
  proc.on("exit", (code) => (exited = code));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited !== null) throw new Error(`ecb serve exited with ${exited}:\n${logs}`);
    try {
      const r = await fetch(url + "/readyz");
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`ecb serve not ready in time:\n${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, url, logs: () => logs, stop: () => stop(proc) };
}

/** Sends a contract call as ECB would (signed, with its headers) and returns {status, headers, body (parsed or null), text}. */
export async function signedCall(base, path, body, { secret = SECRET, headers = {}, rawBody, now, idempotencyKey } = {}) {
  const text = rawBody ?? JSON.stringify(body);
  const h = {
    "content-type": "application/json",
    "ECB-Request-Id": "req-1",
    "ECB-Contract-Version": "1",
    ...signHeaders(secret, text, now),
    ...headers,
  };
  if (idempotencyKey) h["Idempotency-Key"] = idempotencyKey;
  const res = await fetch(base + path, { method: "POST", headers: h, body: text });
  const out = await res.text();
  let parsed = null;
  try {
    parsed = out ? JSON.parse(out) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed, text: out, request: { path, headers: h, body: text } };
}

/** Serves a Node request listener on 127.0.0.1 and resolves with its base URL and a close(). */
export function serve(listener) {
  return new Promise((ok) => {
    const server = http.createServer(listener);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      ok({
        url: `http://127.0.0.1:${port}`,
        server,
        close: () => new Promise((done) => (server.closeAllConnections(), server.close(done))),
      });
    });
  });
}

/** Logs in on the example backend (password = user name). */
export async function login(origin, user, password = user) {
  const r = await fetch(origin + "/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: user, password }) });
  const body = await r.json();
  if (!r.ok) throw new Error(`login ${user}: ${r.status} ${JSON.stringify(body)}`);
  return body.accessToken;
}

/** A logger that keeps what it is told, for assertions. */
export function memoryLogger() {
  const lines = [];
  return {
    lines,
    warn: (message, attrs) => lines.push({ level: "warn", message, attrs }),
    error: (message, attrs) => lines.push({ level: "error", message, attrs }),
  };
}
