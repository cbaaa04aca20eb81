// Callbacks to the backend (issue 6 item 6) with the official
// socket.io-client against a real `ecb demo`, whose callbacks.url is the
// reference backend's POST /ecb/v1/callbacks: a support flow (ask, offer,
// reject, a second agent accepts, close) and then GET /callbacks?requestId=
// at the reference backend shows the signed events ECB posted, in order,
// each with its own id and the visitor's operationId echoed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, call } from "./harness.js";

let demo;
const connect = (user, opts) => demo.connect(user, opts);

before(async () => {
  demo = Demo.build("ecb-callbacks-");
  await demo.start(["--set", "support.offerTimeout=5s"]);
});

after(async () => {
  await demo.remove();
});

const callbacks = (requestId) => demo.callbacks(requestId);
const waitFor = (requestId, pred) => demo.waitForCallbacks(requestId, pred);

test("callbacks: ask, reject, accept by the second agent, close, all posted in order with the operationId", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  const alice = await connect("alice");
  try {
    await data(agent1, "agent.setAvailability", { available: true });
    await data(agent2, "agent.setAvailability", { available: true });

    const offers = [];
    let gotOffer;
    const firstOffer = new Promise((ok) => { gotOffer = ok; });
    for (const [name, s] of [["agent1", agent1], ["agent2", agent2]]) {
      s.on("offer", (o) => { offers.push([name, s, o]); gotOffer(); });
    }
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "Refund?", metadata: { order: "A-17" }, operationId: "op-cb-1" });
    await firstOffer;
    const [firstName, firstSock, o1] = offers[0];
    assert.equal(o1.requestId, asked.requestId);
    const [otherName, otherSock] = firstName === "agent1" ? ["agent2", agent2] : ["agent1", agent1];

    // Reject: passed on to the other agent, who accepts.
    const passed = once(otherSock, "offer", 5000, (o) => o.requestId === asked.requestId);
    await data(firstSock, "offer.reject", { offerId: o1.offerId });
    const o2 = await passed;
    const invited = once(alice, "invitation");
    const accepted = await data(otherSock, "offer.accept", { offerId: o2.offerId });
    await invited;

    const ended = once(alice, "supportEnded");
    await data(otherSock, "support.close", { requestId: asked.requestId });
    assert.equal((await ended).state, "closed");

    const want = ["support.requested", "offer.rejected", "offer.accepted", "conversation.closed"];
    const events = await waitFor(asked.requestId, (evs) => evs.length >= want.length);
    assert.deepEqual(events.map((e) => e.type), want);
    assert.equal(new Set(events.map((e) => e.id)).size, events.length, "event ids are unique");
    for (const e of events) {
      assert.ok(e.id, "every event has an id");
      assert.equal(e.requestId, asked.requestId);
      assert.equal(e.operationId, "op-cb-1");
      assert.equal(e.workgroup, "support");
      assert.ok(Date.parse(e.at) > 0);
    }
    const [requested, rejected, acc, closed] = events;
    assert.equal(requested.userId, "alice");
    assert.equal(requested.data.question, "Refund?");
    assert.deepEqual(requested.data.metadata, { order: "A-17" });
    assert.equal(rejected.userId, firstName);
    assert.equal(rejected.data.offerId, o1.offerId);
    assert.equal(acc.userId, otherName);
    assert.equal(acc.threadId, accepted.thread.id);
    assert.equal(closed.data.state, "closed");

    // Nothing more arrives for this conversation.
    await new Promise((ok) => setTimeout(ok, 200));
    assert.equal((await callbacks(asked.requestId)).length, want.length);
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    await call(agent2, "agent.setAvailability", { available: false });
    for (const s of [agent1, agent2, alice]) s.disconnect();
  }
});

test("callbacks: the reference backend refuses an unsigned callback and a listing without requestId", async () => {
  const r = await fetch(`${demo.backend}/ecb/v1/callbacks`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ id: "ev_forged", type: "support.requested", requestId: "rq_forged" }),
  });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, "bad_signature");
  assert.deepEqual(await callbacks("rq_forged"), []);
  assert.equal((await fetch(`${demo.backend}/callbacks`)).status, 400);
});
