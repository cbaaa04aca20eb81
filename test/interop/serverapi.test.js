// The backend acting on threads through the Server API (issue 15), seen by
// the official socket.io-client against a real `ecb demo`: a member the
// backend added gets the thread with a threadToken of theirs and listens
// with it at once; a removed one stops getting the thread; the discovery
// document needs no token; the backend adds an agent to a live support
// conversation and ends it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Demo, once, data } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-serverapi-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

// backend calls the reference backend's contract directly, signed with the
// demo's secret: the backend changing its own store.
async function backend(path, body) {
  const secret = readFileSync(join(demo.data, "backend-secret"), "utf8").trim();
  const raw = JSON.stringify(body);
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = "v1=" + createHmac("sha256", secret).update(ts + "." + raw).digest("hex");
  const r = await fetch(demo.backend + "/ecb/v1" + path, {
    method: "POST",
    headers: { "content-type": "application/json", "ECB-Timestamp": ts, "ECB-Signature": sig },
    body: raw,
  });
  assert.equal(r.status, 200, `backend ${path}: ${await r.text()}`);
}

// serverAPI calls ECB's Server API with the demo's key.
async function serverAPI(method, path, body) {
  const key = readFileSync(join(demo.data, "server-api-key"), "utf8").trim();
  const r = await fetch(demo.url + "/server/v1" + path, {
    method,
    headers: { authorization: "Bearer " + key, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

test("a member added by the backend listens with the pushed threadToken; a removed one is detached", async () => {
  const alice = await demo.connect("alice");
  const carol = await demo.connect("carol");
  const created = await data(alice, "createThread", { participants: ["bob"], message: { body: "hello" } });
  const id = created.thread.id;
  await backend("/addParticipants", { userId: "alice", threadId: id, participants: ["carol"] });

  const added = once(carol, "thread", 5000, (p) => p.change === "added");
  const joined = once(alice, "member", 5000, (p) => p.userId === "carol" && p.change === "joined");
  const res = await serverAPI("POST", `/threads/${id}/members/carol`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const push = await added;
  assert.equal(push.threadId, id);
  assert.ok(push.threadToken, "the added push carries a threadToken");
  await joined;

  await data(carol, "getThread", { threadToken: push.threadToken });
  const got = once(carol, "message", 5000, (p) => p.message.body === "welcome");
  await data(alice, "sendMessage", { threadToken: created.threadToken, body: "welcome" });
  await got;

  await backend("/leaveThread", { userId: "carol", threadId: id });
  const removed = once(carol, "thread", 5000, (p) => p.change === "removed");
  const memberGone = once(alice, "member", 5000, (p) => p.userId === "carol" && p.change !== "joined");
  const rm = await serverAPI("DELETE", `/threads/${id}/members/carol`);
  assert.equal(rm.status, 200, JSON.stringify(rm.body));
  assert.equal(rm.body.data.detached, 1);
  await removed;
  const gone = await memberGone;
  assert.equal(gone.change, "removed", "the listeners are told carol was removed, as by a moderator");
  assert.equal(gone.by, undefined, "the backend removed her: no moderator");
  let leaked = false;
  carol.on("message", (p) => (leaked ||= p.threadId === id));
  await data(alice, "sendMessage", { threadToken: created.threadToken, body: "carol is gone" });
  await new Promise((ok) => setTimeout(ok, 300));
  assert.equal(leaked, false, "a removed member got a message");
  alice.close();
  carol.close();
});

test("GET /v1/discover answers without a token", async () => {
  const r = await fetch(demo.url + "/v1/discover");
  assert.equal(r.status, 200);
  const { data: d } = await r.json();
  assert.equal(d.endpoints.socketIO, "/socket.io/");
  assert.ok(d.versions.protocol && d.versions.contract && d.versions.serverApi);
  assert.ok(d.capabilities.operations.includes("sendMessage"));
  assert.deepEqual(d.transports, ["socketio", "sse"]);
});

test("the backend adds an agent to a live support conversation and ends it through the Server API", async () => {
  const alice = await demo.connect("alice");
  const agent1 = await demo.connect("agent1");
  const agent2 = await demo.connect("agent2");
  try {
    await data(agent1, "agent.setAvailability", { available: true });
    const offer = once(agent1, "offer", 5000);
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "Server API close?" });
    const o = await offer;
    const inv = once(alice, "invitation", 5000);
    await data(agent1, "offer.accept", { offerId: o.offerId });
    const iv = await inv;
    await data(alice, "getThread", { threadToken: iv.threadToken });

    // An agent added by the backend (available, not offered this chat) is invited into it.
    await data(agent2, "agent.setAvailability", { available: true });
    const invited = once(agent2, "invitation", 5000, (p) => p.thread?.id === iv.thread.id);
    const add = await serverAPI("POST", `/support/conversations/${asked.requestId}/agents`, { agent: "agent2" });
    assert.equal(add.status, 201, JSON.stringify(add.body));
    assert.deepEqual(add.body.data, { requestId: asked.requestId, agent: "agent2" });
    await invited;
    const wg = await serverAPI("GET", "/workgroups/support/conversations");
    const conv = wg.body.data.conversations.find((c) => c.requestId === asked.requestId);
    assert.ok(conv, JSON.stringify(wg.body));

    // Closing ends it for both sides and frees the agent (no longer listed).
    const ended = once(alice, "supportEnded", 5000);
    const close = await serverAPI("POST", `/support/conversations/${asked.requestId}/close`);
    assert.equal(close.status, 200, JSON.stringify(close.body));
    assert.deepEqual(close.body.data, { requestId: asked.requestId, state: "closed" });
    assert.equal((await ended).state, "closed");
    const after = await serverAPI("GET", "/workgroups/support/conversations");
    assert.equal(after.body.data.conversations.find((c) => c.requestId === asked.requestId), undefined);
    const again = await serverAPI("POST", `/support/conversations/${asked.requestId}/close`);
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, "not_found");
  } finally {
    await data(agent1, "agent.setAvailability", { available: false });
    await data(agent2, "agent.setAvailability", { available: false });
    for (const s of [alice, agent1, agent2]) s.close();
  }
});
