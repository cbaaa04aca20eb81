// Customer-support routing (the Fastpath seed's user and expert state
// diagrams) with the official socket.io-client against a real `ecb demo`:
// a visitor asks, gets queue pushes, agent1 rejects the offer, agent2
// accepts, both are invited and chat in the support thread; an offer nobody
// answers is revoked after the (short) offer timeout and passed on; a
// visitor cancels; non-agents are refused the agent operations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, call, errorCode } from "./harness.js";

let demo;
const connect = (user, opts) => demo.connect(user, opts);

before(async () => {
  demo = Demo.build("ecb-support-");
  await demo.start(["--set", "support.offerTimeout=1s", "--set", "support.grace=1s"]);
});

after(async () => {
  await demo.remove();
});


test("fastpath: ask, queue, reject passes the offer on, accept, invitation to both, chat, close", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  const alice = await connect("alice");
  try {
    await data(agent1, "agent.setAvailability", { available: true });
    await data(agent2, "agent.setAvailability", { available: true, maxChats: 2 });
    const status = await data(alice, "getWorkgroupStatus", { workgroup: "support" });
    assert.equal(status.open, true);
    assert.equal(status.agentsAvailable, 2);
    assert.equal(status.queueLength, 0);

    // Join -> Queued (a queue push) -> offer to agent1 (round-robin starts there).
    const queued = once(alice, "queue");
    const offer1 = once(agent1, "offer");
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "Where is my invoice?", metadata: { email: "alice@example.com" }, operationId: "op-42" });
    assert.ok(asked.requestId);
    assert.equal(asked.position, 1);
    const q = await queued;
    assert.equal(q.requestId, asked.requestId);
    assert.equal(q.position, 1);
    const o1 = await offer1;
    assert.equal(o1.requestId, asked.requestId);
    assert.equal(o1.workgroup, "support");
    assert.equal(o1.question, "Where is my invoice?");
    assert.equal(o1.visitor.id, "alice");
    assert.deepEqual(o1.metadata, { email: "alice@example.com" });
    assert.ok(Date.parse(o1.expiresAt) > Date.now());

    // Reject -> the next agent gets it.
    const offer2 = once(agent2, "offer");
    await data(agent1, "offer.reject", { offerId: o1.offerId });
    const o2 = await offer2;
    assert.equal(o2.requestId, asked.requestId);
    assert.notEqual(o2.offerId, o1.offerId);
    // agent1's offer is gone; agent1 may not take agent2's.
    assert.equal(await errorCode(agent1, "offer.accept", { offerId: o1.offerId }), "conflict");
    assert.equal(await errorCode(agent1, "offer.accept", { offerId: o2.offerId }), "forbidden");

    // Accept -> Chat Pending -> invitation to both sides.
    const invVisitor = once(alice, "invitation");
    const invAgent = once(agent2, "invitation");
    const accepted = await data(agent2, "offer.accept", { offerId: o2.offerId });
    assert.equal(accepted.requestId, asked.requestId);
    assert.deepEqual([...accepted.thread.members].sort(), ["agent2", "alice"]);
    const iv = await invVisitor;
    const ia = await invAgent;
    assert.equal(iv.thread.id, accepted.thread.id);
    assert.equal(ia.thread.id, accepted.thread.id);
    assert.equal(iv.thread.subject, "Where is my invoice?");
    assert.notEqual(iv.threadToken, ia.threadToken);

    // The chat room is a normal thread.
    await data(alice, "getThread", { threadToken: iv.threadToken });
    await data(agent2, "getThread", { threadToken: ia.threadToken });
    const toAgent = once(agent2, "message", 5000, (m) => m.message.body === "hello, my invoice?");
    await data(alice, "sendMessage", { threadToken: iv.threadToken, body: "hello, my invoice?" });
    assert.equal((await toAgent).message.authorId, "alice");
    const toVisitor = once(alice, "message", 5000, (m) => m.message.body === "Let me check.");
    await data(agent2, "sendMessage", { threadToken: ia.threadToken, body: "Let me check." });
    assert.equal((await toVisitor).message.authorId, "agent2");

    // A chat cannot be cancelled, only closed; closing tells both sides.
    assert.equal(await errorCode(alice, "support.cancel", { requestId: asked.requestId }), "conflict");
    const endedV = once(alice, "supportEnded");
    const endedA = once(agent2, "supportEnded");
    await data(agent2, "support.close", { requestId: asked.requestId });
    assert.equal((await endedV).state, "closed");
    assert.equal((await endedA).requestId, asked.requestId);
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    await call(agent2, "agent.setAvailability", { available: false });
    for (const s of [agent1, agent2, alice]) s.disconnect();
  }
});

test("fastpath: an unanswered offer is revoked after the timeout and passed on; the visitor cancels", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  const bob = await connect("bob");
  try {
    await data(agent1, "agent.setAvailability", { available: true });
    await data(agent2, "agent.setAvailability", { available: true });
    const offers = [];
    const firstOffer = new Promise((ok) => {
      agent1.on("offer", (o) => { offers.push(["agent1", o]); ok(); });
      agent2.on("offer", (o) => { offers.push(["agent2", o]); ok(); });
    });
    const asked = await data(bob, "support.ask", { workgroup: "support", question: "anyone?" });
    await firstOffer;
    const [first, o1] = offers[0];
    const [firstSock, otherSock, other] = first === "agent1" ? [agent1, agent2, "agent2"] : [agent2, agent1, "agent1"];
    assert.equal(o1.requestId, asked.requestId);

    // Nobody answers: revoked after ~1s (support.offerTimeout=1s), passed on.
    const started = Date.now();
    const revoked = await once(firstSock, "offerRevoked", 5000, (r) => r.offerId === o1.offerId);
    assert.equal(revoked.reason, "timeout");
    const elapsed = Date.now() - started;
    assert.ok(elapsed > 500 && elapsed < 3000, `revoked after ${elapsed}ms`);
    await new Promise((ok) => setTimeout(ok, 100));
    const passed = offers.find(([who, o]) => who === other && o.requestId === asked.requestId);
    assert.ok(passed, `the offer was not passed on to ${other}: ${JSON.stringify(offers)}`);
    assert.equal(await errorCode(firstSock, "offer.accept", { offerId: o1.offerId }), "conflict");
    assert.equal(await errorCode(otherSock, "offer.accept", { offerId: o1.offerId }), "forbidden");

    // Leave: the visitor cancels; the agent holding the offer is told.
    const revokedOther = once(otherSock, "offerRevoked", 5000, (r) => r.offerId === passed[1].offerId);
    const ended = once(bob, "supportEnded");
    await data(bob, "support.cancel", { requestId: asked.requestId });
    assert.equal((await revokedOther).reason, "cancelled");
    assert.equal((await ended).state, "cancelled");
    assert.equal(await errorCode(otherSock, "offer.accept", { offerId: passed[1].offerId }), "conflict");
    const status = await data(bob, "getWorkgroupStatus", { workgroup: "support" });
    assert.equal(status.queueLength, 0);
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    await call(agent2, "agent.setAvailability", { available: false });
    for (const s of [agent1, agent2, bob]) s.disconnect();
  }
});

test("fastpath: a visitor who disconnects keeps the place for the grace period, then it is dropped", async () => {
  const carol = await connect("carol");
  const asked = await data(carol, "support.ask", { workgroup: "support", question: "still there?" });
  carol.disconnect();
  const back = await connect("carol");
  const status = await data(back, "getWorkgroupStatus", { workgroup: "support" });
  assert.equal(status.queueLength, 1, "the request kept its place");
  assert.equal(await errorCode(back, "support.ask", { workgroup: "support", question: "again" }), "conflict");
  back.disconnect();
  await new Promise((ok) => setTimeout(ok, 1600)); // support.grace=1s
  const later = await connect("carol");
  try {
    const st = await data(later, "getWorkgroupStatus", { workgroup: "support" });
    assert.equal(st.queueLength, 0, "dropped after the grace period");
    assert.equal(await errorCode(later, "support.cancel", { requestId: asked.requestId }), "not_found");
  } finally {
    later.disconnect();
  }
});

test("refusals: non-agents, unknown workgroups, offers and requests", async () => {
  const alice = await connect("alice");
  const sup = await connect("super");
  try {
    assert.equal(await errorCode(alice, "agent.setAvailability", { available: true }), "forbidden");
    assert.equal(await errorCode(sup, "agent.setAvailability", { available: true }), "forbidden");
    assert.equal(await errorCode(alice, "offer.accept", { offerId: "off-x" }), "forbidden");
    assert.equal(await errorCode(alice, "offer.reject", { offerId: "off-x" }), "forbidden");
    assert.equal(await errorCode(alice, "support.ask", { workgroup: "sales", question: "?" }), "not_found");
    assert.equal(await errorCode(alice, "getWorkgroupStatus", { workgroup: "sales" }), "not_found");
    assert.equal(await errorCode(alice, "support.ask", { workgroup: "support", question: "?", metadata: [1] }), "invalid_argument");
    assert.equal(await errorCode(alice, "support.cancel", { requestId: "req-nope" }), "not_found");
    const agent1 = await connect("agent1");
    try {
      assert.equal(await errorCode(agent1, "offer.accept", { offerId: "off-nope" }), "not_found");
    } finally {
      agent1.disconnect();
    }
  } finally {
    alice.disconnect();
    sup.disconnect();
  }
});
