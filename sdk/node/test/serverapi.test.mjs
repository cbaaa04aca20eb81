// ServerApiClient against a real `ecb demo` (ECB with the reference backend):
// the backend adds a member (their socket.io-client connection gets the
// thread with a threadToken and listens with it), removes them (detached,
// the other listener told member removed), announces a thread, reads
// presence and workgroups; refusals come back as ServerApiError with ECB's
// status and code.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { io } from "socket.io-client";
import { ServerApiClient, ServerApiError } from "../dist/index.js";
import { ecbBinary, tempDir } from "./helpers.mjs";

let demo, proc;
const sockets = [];

before(async () => {
  const data = join(tempDir("ecb-nodesdk-serverapi-"), "data");
  proc = spawn(ecbBinary(), ["demo", "--listen", "127.0.0.1:0", "--backend-listen", "127.0.0.1:0", "--data", data], { stdio: ["ignore", "pipe", "ignore"] });
  demo = await new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("ecb demo did not start: " + out)), 60000);
    proc.stdout.on("data", (d) => {
      out += d;
      const api = out.match(/ECB client API:\s+(http:\/\/\S+)/);
      const be = out.match(/reference backend:\s+(http:\/\/\S+)/);
      const key = out.match(/Server API key:\s+(\S+)/);
      if (api && be && key) {
        clearTimeout(timer);
        ok({ url: api[1], backend: be[1], key: key[1], secret: readFileSync(join(data, "backend-secret"), "utf8").trim() });
      }
    });
    proc.on("exit", (code) => fail(new Error(`ecb demo exited with ${code}: ${out}`)));
  });
});

after(async () => {
  for (const s of sockets) s.disconnect();
  if (proc && proc.exitCode === null) {
    const exited = new Promise((ok) => proc.once("exit", ok));
    proc.kill("SIGTERM");
    await exited;
  }
});

function once(emitter, event, filter = () => true, ms = 5000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      emitter.off(event, h);
      fail(new Error(`timeout waiting for ${event}`));
    }, ms);
    function h(arg) {
      if (!filter(arg)) return;
      clearTimeout(timer);
      emitter.off(event, h);
      ok(arg);
    }
    emitter.on(event, h);
  });
}

async function call(socket, op, payload) {
  const res = await socket.timeout(5000).emitWithAck(op, payload);
  assert.ok(res && res.error === undefined, `${op}: ${JSON.stringify(res)}`);
  return res.data;
}

async function connect(user) {
  const login = await fetch(demo.backend + "/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: user, password: user }),
  });
  assert.equal(login.status, 200, `login ${user}`);
  const { accessToken } = await login.json();
  const s = io(demo.url, { auth: { accessToken }, forceNew: true, transports: ["websocket"], reconnection: false });
  sockets.push(s);
  const session = once(s, "session");
  await once(s, "connect");
  await session;
  return s;
}

/** The backend changing its own store: a contract call to the reference backend, signed as ECB signs them. */
async function backend(path, body) {
  const raw = JSON.stringify(body);
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = "v1=" + createHmac("sha256", demo.secret).update(ts + "." + raw).digest("hex");
  const r = await fetch(demo.backend + "/ecb/v1" + path, {
    method: "POST",
    headers: { "content-type": "application/json", "ECB-Timestamp": ts, "ECB-Signature": sig },
    body: raw,
  });
  assert.equal(r.status, 200, `backend ${path}: ${await r.text()}`);
}

test("addMember, removeMember and announceThread act live on a real ECB", async () => {
  const api = new ServerApiClient({ baseUrl: demo.url + "/server/v1", key: demo.key });
  const alice = await connect("alice");
  const carol = await connect("carol");
  const created = await call(alice, "createThread", { participants: ["bob"], message: { body: "hello" } });
  const id = created.thread.id;

  await backend("/addParticipants", { userId: "alice", threadId: id, participants: ["carol"] });
  const added = once(carol, "thread", (p) => p.change === "added" && p.threadId === id);
  const joined = once(alice, "member", (p) => p.userId === "carol" && p.change === "joined");
  const res = await api.addMember(id, "carol");
  assert.deepEqual(res, { threadId: id, userId: "carol", told: 1 });
  const push = await added;
  await joined;
  await call(carol, "getThread", { threadToken: push.threadToken });
  const got = once(carol, "message", (p) => p.message.body === "welcome");
  await call(alice, "sendMessage", { threadToken: created.threadToken, body: "welcome" });
  await got;

  await backend("/leaveThread", { userId: "carol", threadId: id });
  const told = once(carol, "thread", (p) => p.change === "removed" && p.threadId === id);
  const gone = once(alice, "member", (p) => p.userId === "carol" && p.change !== "joined");
  const rm = await api.removeMember(id, "carol");
  assert.deepEqual(rm, { threadId: id, userId: "carol", detached: 1 });
  await told;
  const member = await gone;
  assert.equal(member.change, "removed");
  assert.equal(member.by, undefined);

  const announced = once(alice, "thread", (p) => p.change === "created" && p.threadId === id);
  const ann = await api.announceThread(id, ["alice", "dave"]);
  assert.deepEqual(ann.told, ["alice"]);
  assert.deepEqual(ann.offline, ["dave"]);
  assert.ok((await announced).threadToken, "the announce carries alice's threadToken");

  const presence = await api.userPresence("alice");
  assert.equal(presence.userId, "alice");
  assert.ok(presence.connections >= 1, JSON.stringify(presence));
  const { workgroups } = await api.listWorkgroups();
  assert.deepEqual(workgroups.map((w) => w.name), ["support"]);
});

test("refusals are ServerApiError with ECB's status and code", async () => {
  const api = new ServerApiClient({ baseUrl: demo.url + "/server/v1/", key: demo.key });
  await assert.rejects(api.closeConversation("no-such-request"), (e) => e instanceof ServerApiError && e.status === 404 && e.code === "not_found");
  await assert.rejects(api.addConversationAgent("no-such-request", "agent1"), (e) => e instanceof ServerApiError && e.status === 404 && e.code === "not_found");
  await assert.rejects(api.announceThread("t-none", []), (e) => e instanceof ServerApiError && e.status === 400 && e.code === "invalid_argument");
  const wrongKey = new ServerApiClient({ baseUrl: demo.url + "/server/v1", key: "not-a-key" });
  await assert.rejects(wrongKey.removeMember("t1", "carol"), (e) => e instanceof ServerApiError && e.status === 401 && e.code === "unauthenticated");
  assert.throws(() => new ServerApiClient({ baseUrl: "", key: "k" }), TypeError);
});
