// @ecb/client's customer-support operations against a real `ecb demo`
// (workgroup `support`, agents agent1 and agent2, supervisor super): an
// anonymous visitor (the reference backend's POST /visitor) asks, agent1
// accepts, both chat, a whisper reaches the supervisor but never the
// visitor, close ends it on both sides. Then offers rejected and revoked,
// a transfer, and availability set again by the client after a reconnect.
// Then a supervisor's monitor across a reconnect. support.invite and support.leave
// are tested in test/interop and test/browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EcbClient } from "../dist/index.js";
import { startEcb, startProxy, login, waitEvent, waitState, collect, until, fast } from "./helpers.mjs";

let ecb;
const clients = [];

function client(opts, url = ecb.url) {
  const c = new EcbClient({ url, requestTimeout: 15000, socketOptions: fast, ...opts });
  clients.push(c);
  return c;
}

async function connectAs(user, url) {
  const c = client({ accessToken: await login(ecb.backendUrl, user) }, url);
  await c.connect();
  return c;
}

/** An anonymous visitor: a token from the reference backend, used from ECB's origin (the token is bound to it). */
async function connectVisitor(name) {
  const res = await fetch(`${ecb.backendUrl}/visitor`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: ecb.url },
    body: JSON.stringify({ name }),
  });
  assert.equal(res.status, 200);
  const v = await res.json();
  const c = client({ userToken: v.userToken, socketOptions: { ...fast, extraHeaders: { Origin: ecb.url } } });
  await c.connect();
  return { client: c, user: v.user };
}

/** Waits until check() resolves truthy, asking again every 100 ms (for state only a request shows). */
async function eventually(check, what, ms = 10000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  // Fast pings: a connection cut by the proxy ends on the server within half a second.
  ecb = await startEcb({ sets: ["socketio.pingInterval=300ms", "socketio.pingTimeout=200ms"] });
});

after(async () => {
  for (const c of clients) c.close();
  await ecb?.stop();
});

test("a visitor asks, agent1 accepts; chat, typing, a whisper the visitor never gets, supervisor monitor and join, close", async () => {
  const { client: visitor, user: vUser } = await connectVisitor("Dana");
  const agent = await connectAs("agent1");
  const sup = await connectAs("super");
  const agentAvailable = await agent.setAvailability({ available: true });
  assert.equal(agentAvailable.available, true);
  assert.ok(agentAvailable.workgroups.includes("support"), JSON.stringify(agentAvailable));
  assert.equal(agentAvailable.chats, 0);

  const status = await visitor.getWorkgroupStatus({ workgroup: "support" });
  assert.equal(status.workgroup, "support");
  assert.equal(status.displayName, "Customer support");
  assert.equal(status.open, true);
  assert.equal(status.agentsAvailable, 1);
  assert.equal(status.queueLength, 0);

  const offered = waitEvent(agent, "offer");
  const asked = await visitor.supportAsk({ workgroup: "support", question: "Where is my parcel?", metadata: { order: "A-17" } });
  assert.equal(asked.position, 1);
  const offer = await offered;
  assert.equal(offer.requestId, asked.requestId);
  assert.equal(offer.workgroup, "support");
  assert.equal(offer.question, "Where is my parcel?");
  assert.deepEqual(offer.metadata, { order: "A-17" });
  assert.deepEqual(offer.visitor, { id: vUser.id, name: "Dana", anonymous: true });
  assert.ok(Date.parse(offer.expiresAt) > Date.now(), "the offer expires in the future");

  // Accept: the answer and both invitations carry the thread; the client keeps each side's token.
  const invitedVisitor = waitEvent(visitor, "invitation");
  const invitedAgent = waitEvent(agent, "invitation");
  const accepted = await agent.acceptOffer({ offerId: offer.offerId });
  const threadId = accepted.thread.id;
  assert.equal(accepted.requestId, asked.requestId);
  assert.equal(agent.threadToken(threadId), accepted.threadToken);
  const iv = await invitedVisitor;
  const ia = await invitedAgent;
  assert.equal(iv.requestId, asked.requestId);
  assert.equal(iv.workgroup, "support");
  assert.equal(iv.thread.id, threadId);
  assert.equal(ia.thread.id, threadId);
  assert.deepEqual([...iv.thread.members].sort(), [vUser.id, "agent1"].sort());
  assert.equal(visitor.threadToken(threadId), iv.threadToken, "the visitor's client kept the invitation's token");
  assert.equal(agent.isListening(threadId), false, "an invitation alone does not listen: getThread does");

  // From here on an ordinary thread: getThread by the kept tokens, messages and typing both ways.
  await visitor.getThread({ threadToken: visitor.threadToken(threadId) });
  await agent.getThread({ threadToken: agent.threadToken(threadId) });
  assert.ok(visitor.isListening(threadId) && agent.isListening(threadId));
  const visitorGot = collect(visitor);
  const agentGot = collect(agent);
  await visitor.sendMessage({ threadToken: visitor.threadToken(threadId), body: "Hi, my parcel A-17?" });
  await until(agent, "message", () => agentGot.some((e) => e.message.body === "Hi, my parcel A-17?"));
  await agent.sendMessage({ threadToken: agent.threadToken(threadId), body: "Let me check." });
  await until(visitor, "message", () => visitorGot.some((e) => e.message.body === "Let me check."));
  const typing = waitEvent(agent, "typing", (t) => t.userId === vUser.id && t.state === "start");
  await visitor.typing({ threadToken: visitor.threadToken(threadId), state: "start" });
  assert.equal((await typing).threadId, threadId);

  // The supervisor lists the chat and monitors it: the whisper reaches them, typed as such.
  const list = await sup.supportConversations({ workgroup: "support" });
  const conv = list.conversations.find((c) => c.requestId === asked.requestId);
  assert.ok(conv, JSON.stringify(list));
  assert.equal(conv.state, "chat");
  assert.deepEqual(conv.agents, ["agent1"]);
  assert.equal(conv.threadId, threadId);
  assert.equal(conv.visitor.name, "Dana");
  assert.equal(conv.question, "Where is my parcel?");
  const mon = await sup.supportMonitor({ requestId: asked.requestId });
  assert.equal(mon.threadId, threadId);
  assert.equal(typeof mon.epoch, "string");
  const supGot = collect(sup);

  const whisper = await agent.sendMessage({ threadToken: agent.threadToken(threadId), body: "VIP customer, be quick", visibility: "agents" });
  assert.equal(whisper.message.visibility, "agents");
  await until(sup, "message", () => supGot.some((e) => e.message.body === "VIP customer, be quick"));
  assert.equal(supGot.find((e) => e.message.body === "VIP customer, be quick").message.visibility, "agents");
  // A public message after it: once the visitor has it, the whisper would have come before it.
  await agent.sendMessage({ threadToken: agent.threadToken(threadId), body: "It arrives tomorrow." });
  await until(visitor, "message", () => visitorGot.some((e) => e.message.body === "It arrives tomorrow."));
  assert.deepEqual(
    visitorGot.map((e) => e.message.body),
    ["Let me check.", "It arrives tomorrow."],
  );
  assert.equal(visitorGot[1].message.visibility, undefined);
  await assert.rejects(visitor.sendMessage({ threadToken: visitor.threadToken(threadId), body: "x", visibility: "agents" }), {
    code: "forbidden",
    fromServer: true,
  });
  await assert.rejects(agent.sendMessage({ threadToken: agent.threadToken(threadId), body: "x", visibility: "everyone" }), {
    code: "invalid_argument",
    fromServer: false,
  });

  // The supervisor joins: the client keeps their token, and they write to the visitor.
  const joined = await sup.supportJoin({ requestId: asked.requestId });
  assert.equal(joined.thread.id, threadId);
  assert.equal(sup.threadToken(threadId), joined.threadToken);
  await sup.getThread({ threadToken: sup.threadToken(threadId) });
  await sup.sendMessage({ threadToken: sup.threadToken(threadId), body: "Supervisor here, all good." });
  await until(visitor, "message", () => visitorGot.some((e) => e.message.body === "Supervisor here, all good."));
  assert.ok(!visitorGot.some((e) => e.message.body === "VIP customer, be quick"), "the visitor never got the whisper");

  // Close, by the agent: both sides are told.
  const endedVisitor = waitEvent(visitor, "supportEnded");
  const endedAgent = waitEvent(agent, "supportEnded");
  assert.deepEqual(await agent.supportClose({ requestId: asked.requestId }), {});
  assert.deepEqual(await endedVisitor, { requestId: asked.requestId, state: "closed" });
  assert.deepEqual(await endedAgent, { requestId: asked.requestId, state: "closed" });
  await assert.rejects(visitor.supportClose({ requestId: asked.requestId }), { code: "not_found", fromServer: true });

  // Roles: a visitor is no agent, an agent no supervisor.
  await assert.rejects(visitor.setAvailability({ available: true }), { code: "forbidden", fromServer: true });
  await assert.rejects(agent.supportConversations({ workgroup: "support" }), { code: "forbidden", fromServer: true });
  await agent.setAvailability({ available: false });
  for (const c of [visitor, agent, sup]) c.close();
});

test("offers: a reject passes it on, a cancel revokes it; a transfer to agent2 invites them into the same thread", async () => {
  const agent1 = await connectAs("agent1");
  const agent2 = await connectAs("agent2");
  await agent1.setAvailability({ available: true });
  await agent2.setAvailability({ available: true });
  const agents = { agent1, agent2 };
  const nextOffer = () => Promise.race(Object.entries(agents).map(([id, c]) => waitEvent(c, "offer").then((o) => ({ id, o }))));

  // Reject: the other agent gets the offer.
  const { client: visitor } = await connectVisitor("Eve");
  let offered = nextOffer();
  const asked = await visitor.supportAsk({ workgroup: "support", question: "Can I change my address?" });
  const first = await offered;
  const otherId = first.id === "agent1" ? "agent2" : "agent1";
  const passedOn = waitEvent(agents[otherId], "offer");
  assert.deepEqual(await agents[first.id].rejectOffer({ offerId: first.o.offerId }), {});
  const second = await passedOn;
  assert.equal(second.requestId, asked.requestId);
  await assert.rejects(agents[first.id].acceptOffer({ offerId: first.o.offerId }), { code: "conflict", fromServer: true });

  // The visitor cancels while it is offered: the offer is revoked, the visitor's request ends.
  const revoked = waitEvent(agents[otherId], "offerRevoked");
  const ended = waitEvent(visitor, "supportEnded");
  assert.deepEqual(await visitor.supportCancel({ requestId: asked.requestId }), {});
  assert.deepEqual(await revoked, { offerId: second.offerId, requestId: asked.requestId, reason: "cancelled" });
  assert.deepEqual(await ended, { requestId: asked.requestId, state: "cancelled" });

  // Transfer: agent1 takes a chat, hands it to agent2, who is invited into the same thread.
  await agent2.setAvailability({ available: false });
  offered = waitEvent(agent1, "offer");
  const asked2 = await visitor.supportAsk({ workgroup: "support", question: "Refund please" });
  const o = await offered;
  const invited = waitEvent(visitor, "invitation");
  const accepted = await agent1.acceptOffer({ offerId: o.offerId });
  await visitor.getThread({ threadToken: (await invited).threadToken });
  await agent2.setAvailability({ available: true });
  const invitedAgent2 = waitEvent(agent2, "invitation");
  const movedVisitor = waitEvent(visitor, "supportTransferred");
  const movedAgent1 = waitEvent(agent1, "supportTransferred");
  const moved = await agent1.supportTransfer({ requestId: asked2.requestId, toAgent: "agent2" });
  assert.equal(moved.toAgent, "agent2");
  const inv2 = await invitedAgent2;
  assert.equal(inv2.thread.id, accepted.thread.id);
  assert.equal(inv2.conference, undefined, "a transfer is no conference");
  assert.equal(agent2.threadToken(accepted.thread.id), inv2.threadToken);
  const want = { requestId: asked2.requestId, fromAgent: "agent1", toAgent: "agent2" };
  assert.deepEqual(await movedVisitor, want);
  assert.deepEqual(await movedAgent1, want);
  await agent2.getThread({ threadToken: agent2.threadToken(accepted.thread.id) });
  const visitorGot = collect(visitor);
  await agent2.sendMessage({ threadToken: agent2.threadToken(accepted.thread.id), body: "agent2 here, refund done" });
  await until(visitor, "message", () => visitorGot.some((e) => e.message.body === "agent2 here, refund done"));
  const closed = waitEvent(agent2, "supportEnded");
  await visitor.supportClose({ requestId: asked2.requestId });
  assert.equal((await closed).state, "closed");

  // Arguments are checked before anything is sent.
  await assert.rejects(agent1.acceptOffer({}), { code: "invalid_argument", fromServer: false });
  await assert.rejects(agent1.setAvailability({ available: "yes" }), { code: "invalid_argument", fromServer: false });
  await assert.rejects(visitor.supportAsk({ question: "no workgroup" }), { code: "invalid_argument", fromServer: false });
  await assert.rejects(agent1.supportInvite({ requestId: "r" }), { code: "invalid_argument", fromServer: false });
  for (const c of [agent1, agent2]) await c.setAvailability({ available: false });
  for (const c of [visitor, agent1, agent2]) c.close();
});

test("availability is set again after a reconnect: ECB made the agent unavailable when the connection died", async () => {
  const proxy = await startProxy(ecb.url);
  const agent = await connectAs("agent2", proxy.url);
  const { client: visitor } = await connectVisitor("Finn");
  await agent.setAvailability({ available: true });
  const available = async (n) => (await visitor.getWorkgroupStatus({ workgroup: "support" })).agentsAvailable === n;
  await eventually(() => available(1), "agent2 available");

  proxy.cut();
  await eventually(() => available(0), "agent2 unavailable once the server saw the connection end");
  proxy.heal();
  await waitState(agent, "connected");
  // The client set it again on the new connection: the next question is offered to agent2.
  const offered = waitEvent(agent, "offer");
  const asked = await visitor.supportAsk({ workgroup: "support", question: "Still there?" });
  assert.equal((await offered).requestId, asked.requestId);
  await visitor.supportCancel({ requestId: asked.requestId });
  await agent.setAvailability({ available: false });
  agent.close();
  visitor.close();
  await proxy.close();
});

test("a monitor survives a reconnect: the client monitors again from where it was, and ECB pushes what was missed, whispers included", async () => {
  const proxy = await startProxy(ecb.url);
  const agent = await connectAs("agent1");
  const sup = await connectAs("super", proxy.url);
  const { client: visitor } = await connectVisitor("Gil");
  try {
    await agent.setAvailability({ available: true });
    const offered = waitEvent(agent, "offer");
    const invited = waitEvent(visitor, "invitation");
    const asked = await visitor.supportAsk({ workgroup: "support", question: "Monitor me" });
    const acc = await agent.acceptOffer({ offerId: (await offered).offerId });
    const iv = await invited;
    await visitor.getThread({ threadToken: iv.threadToken });
    await agent.getThread({ threadToken: acc.threadToken });

    await sup.supportMonitor({ requestId: asked.requestId });
    const got = collect(sup);
    await visitor.sendMessage({ threadToken: iv.threadToken, body: "before the cut" });
    await until(sup, "message", () => got.some((e) => e.message.body === "before the cut"));

    // The supervisor's connection dies; the chat goes on, a whisper included.
    proxy.cut();
    await waitState(sup, "reconnecting");
    await visitor.sendMessage({ threadToken: iv.threadToken, body: "while away 1" });
    await agent.sendMessage({ threadToken: acc.threadToken, body: "while away: VIP", visibility: "agents" });
    await agent.sendMessage({ threadToken: acc.threadToken, body: "while away 2" });
    proxy.heal();
    await waitState(sup, "connected");
    await until(sup, "message", () => got.some((e) => e.message.body === "while away 2"));
    await agent.sendMessage({ threadToken: acc.threadToken, body: "after" });
    await until(sup, "message", () => got.some((e) => e.message.body === "after"));
    assert.deepEqual(got.map((e) => e.message.body), ["before the cut", "while away 1", "while away: VIP", "while away 2", "after"]);
    assert.equal(got.find((e) => e.message.body === "while away: VIP").message.visibility, "agents");

    await agent.supportClose({ requestId: asked.requestId });
  } finally {
    await agent.setAvailability({ available: false });
    for (const c of [agent, sup, visitor]) c.close();
    await proxy.close();
  }
});
