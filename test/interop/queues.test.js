// Queues inside a workgroup (Fastpath's several queues per workgroup, chosen
// by the request's metadata) with the official socket.io-client against a
// real `ecb demo`, whose workgroup `support` has two queues: `billing`
// (metadata topic "billing", agent2) and the catch-all `general` (agent1 and
// agent2). A billing request lands in billing and is offered only to
// agent2, never to agent1 (who is available and idle); it waits there while
// agent2 is away; the status, the answer of support.ask and the queue push
// give per-queue figures; another request lands in general.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data } from "./harness.js";

let demo;
const connect = (user, opts) => demo.connect(user, opts);

before(async () => {
  demo = Demo.build("ecb-queues-");
  await demo.start(["--set", "support.offerTimeout=2s"]);
});

after(async () => {
  await demo.remove();
});

// collect records every `event` pushed to socket.
function collect(socket, event) {
  const got = [];
  socket.on(event, (p) => got.push(p));
  return got;
}

test("queues: a request lands in the queue its metadata matches, offered only to that queue's agents, with per-queue status", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  const alice = await connect("alice");
  const bob = await connect("bob");
  try {
    const offersToAgent1 = collect(agent1, "offer");
    await data(agent1, "agent.setAvailability", { available: true });

    const st0 = await data(alice, "getWorkgroupStatus", { workgroup: "support" });
    assert.deepEqual(st0.queues.map((q) => [q.queue, q.agentsAvailable, q.queueLength]), [["billing", 0, 0], ["general", 1, 0]]);

    // A billing question: it lands in billing, where nobody is available;
    // agent1 (general only) is idle and is not offered it.
    const queued = once(alice, "queue");
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "Why was I charged twice?", metadata: { topic: "billing", email: "alice@example.com" } });
    assert.equal(asked.queue, "billing");
    assert.equal(asked.position, 1);
    const q = await queued;
    assert.deepEqual([q.requestId, q.queue, q.position], [asked.requestId, "billing", 1]);

    const st1 = await data(bob, "getWorkgroupStatus", { workgroup: "support" });
    assert.equal(st1.queueLength, 1, "the workgroup counts every queue");
    assert.deepEqual(st1.queues.map((x) => [x.queue, x.agentsAvailable, x.queueLength]), [["billing", 0, 1], ["general", 1, 0]]);
    assert.ok(st1.queues[0].estimatedWait >= st1.queues[1].estimatedWait, "billing has one waiting ahead");

    // Another question (no topic) lands in general, first there, and goes
    // to agent1 at once though it is younger.
    const offerGeneral = once(agent1, "offer");
    const other = await data(bob, "support.ask", { workgroup: "support", question: "Do you ship to Norway?", metadata: { topic: "shipping" } });
    assert.equal(other.queue, "general");
    assert.equal(other.position, 1);
    const og = await offerGeneral;
    assert.deepEqual([og.requestId, og.queue], [other.requestId, "general"]);

    // agent2 comes: the billing request is theirs.
    const offerBilling = once(agent2, "offer");
    await data(agent2, "agent.setAvailability", { available: true });
    const ob = await offerBilling;
    assert.deepEqual([ob.requestId, ob.queue, ob.workgroup], [asked.requestId, "billing", "support"]);

    // agent2 rejects: the request stays in billing (agent1 is idle again
    // after rejecting bob's too) and is never offered to agent1, even after
    // the offers time out and are passed on.
    await data(agent1, "offer.reject", { offerId: og.offerId });
    await data(agent2, "offer.reject", { offerId: ob.offerId });
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(offersToAgent1.length >= 1);
    for (const o of offersToAgent1) {
      assert.notEqual(o.requestId, asked.requestId, "agent1 serves general only: never offered the billing request");
      assert.equal(o.queue, "general");
    }
    const st2 = await data(bob, "getWorkgroupStatus", { workgroup: "support" });
    assert.equal(st2.queues[0].queueLength, 1, "still waiting in billing");
    assert.equal(st2.queues[0].agentsAvailable, 1);
    assert.equal(st2.queues[1].agentsAvailable, 2);

    // Back to agent2 once their rejection cooled down; accepted, both invited.
    const offerAgain = once(agent2, "offer", 8000, (o) => o.requestId === asked.requestId);
    const o2 = await offerAgain;
    const invited = once(alice, "invitation");
    const acc = await data(agent2, "offer.accept", { offerId: o2.offerId });
    assert.equal(acc.requestId, asked.requestId);
    assert.equal((await invited).requestId, asked.requestId);
  } finally {
    for (const s of [agent1, agent2, alice, bob]) s.disconnect();
  }
});
