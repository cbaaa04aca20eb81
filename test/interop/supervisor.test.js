// Supervisors and transfers with the official socket.io-client against a real
// `ecb demo`: the supervisor `super` lists the live conversations of the
// workgroup, monitors one read-only (messages and whispers reach them, their
// sendMessage is refused), joins it and writes; agent2 transfers the chat to
// agent1, who is invited into the same thread; a chat put back in the queue
// is offered again and accepted into the same thread.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, call, errorCode } from "./harness.js";

let demo;
const connect = (user, opts) => demo.connect(user, opts);

before(async () => {
  demo = Demo.build("ecb-supervisor-");
  await demo.start(["--set", "support.offerTimeout=2s", "--set", "support.grace=1s"]);
});

after(async () => {
  await demo.remove();
});

test("supervisor: conversations, monitor (messages and whispers, read-only), join; transfer to an agent and back to the queue", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  const alice = await connect("alice");
  const sup = await connect("super");
  try {
    // Only agent2 is available: the offer goes to them.
    await data(agent2, "agent.setAvailability", { available: true, maxChats: 2 });
    const offer = once(agent2, "offer");
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "My order is late" });
    const o = await offer;
    const invVisitor = once(alice, "invitation");
    const accepted = await data(agent2, "offer.accept", { offerId: o.offerId });
    const iv = await invVisitor;
    const threadId = accepted.thread.id;
    await data(alice, "getThread", { threadToken: iv.threadToken }); // listens to the thread

    // Only supervisors of the workgroup may list and monitor.
    assert.equal(await errorCode(alice, "support.conversations", { workgroup: "support" }), "forbidden");
    assert.equal(await errorCode(agent1, "support.monitor", { requestId: asked.requestId }), "forbidden");

    const list = await data(sup, "support.conversations", { workgroup: "support" });
    const conv = list.conversations.find((c) => c.requestId === asked.requestId);
    assert.ok(conv, JSON.stringify(list));
    assert.equal(conv.visitor.id, "alice");
    assert.deepEqual(conv.agents, ["agent2"]);
    assert.equal(conv.threadId, threadId);
    assert.equal(conv.state, "chat");
    assert.ok(Date.parse(conv.since) > 0);

    // Monitor: the visitor's message and the agent's whisper reach super.
    const mon = await data(sup, "support.monitor", { requestId: asked.requestId });
    assert.equal(mon.threadId, threadId);
    const supMsg = once(sup, "message", 5000, (m) => m.message.body === "still waiting");
    await data(alice, "sendMessage", { threadToken: iv.threadToken, body: "still waiting" });
    assert.equal((await supMsg).message.authorId, "alice");
    const supWhisper = once(sup, "message", 5000, (m) => m.message.body === "VIP customer");
    await data(agent2, "sendMessage", { threadToken: accepted.threadToken, body: "VIP customer", visibility: "agents" });
    assert.equal((await supWhisper).message.visibility, "agents");
    // Read-only: super may not write.
    assert.equal(await errorCode(sup, "sendMessage", { threadId, threadToken: accepted.threadToken, body: "hi" }), "forbidden");

    // stopListening ends the monitor: what follows does not reach super until they monitor again
    // (pushes to one connection keep their order, so "unwatched" would come before "watched again").
    await data(sup, "stopListening", { threadId });
    const supGot = [];
    sup.on("message", (m) => supGot.push(m.message.body));
    await data(alice, "sendMessage", { threadToken: iv.threadToken, body: "unwatched" });
    await data(sup, "support.monitor", { requestId: asked.requestId });
    const watched = once(sup, "message", 5000, (m) => m.message.body === "watched again");
    await data(alice, "sendMessage", { threadToken: iv.threadToken, body: "watched again" });
    await watched;
    assert.deepEqual(supGot, ["watched again"]);

    // Transfer refusals: agent1 is not available; a stranger's chat is not found.
    assert.equal(await errorCode(agent2, "support.transfer", { requestId: asked.requestId, toAgent: "agent1" }), "conflict");
    assert.equal(await errorCode(agent1, "support.transfer", { requestId: asked.requestId, toAgent: "agent2" }), "not_found");

    // Transfer agent2 -> agent1: agent1 is invited into the same thread.
    await data(agent1, "agent.setAvailability", { available: true });
    const inv1 = once(agent1, "invitation");
    const movedV = once(alice, "supportTransferred");
    const moved = await data(agent2, "support.transfer", { requestId: asked.requestId, toAgent: "agent1" });
    assert.equal(moved.toAgent, "agent1");
    const i1 = await inv1;
    assert.equal(i1.requestId, asked.requestId);
    assert.deepEqual([i1.visitor.id, i1.question], ["alice", "My order is late"]);
    assert.equal(i1.thread.id, threadId);
    assert.ok(i1.thread.members.includes("agent1"));
    assert.ok(i1.threadToken);
    assert.deepEqual(await movedV, { requestId: asked.requestId, fromAgent: "agent2", toAgent: "agent1" });
    await data(agent1, "getThread", { threadToken: i1.threadToken });
    const toAlice = once(alice, "message", 5000, (m) => m.message.body === "agent1 here");
    await data(agent1, "sendMessage", { threadToken: i1.threadToken, body: "agent1 here" });
    assert.equal((await toAlice).message.authorId, "agent1");
    const list2 = await data(sup, "support.conversations", { workgroup: "support" });
    assert.deepEqual(list2.conversations.find((c) => c.requestId === asked.requestId).agents, ["agent1"]);

    // Join: super becomes a member and may write.
    const joined = await data(sup, "support.join", { requestId: asked.requestId });
    assert.ok(joined.thread.members.includes("super"));
    const supToAlice = once(alice, "message", 5000, (m) => m.message.body === "supervisor here");
    await data(sup, "sendMessage", { threadToken: joined.threadToken, body: "supervisor here" });
    assert.equal((await supToAlice).message.authorId, "super");

    // Back to the queue: agent2 (agent1 just had it) gets the offer and the same thread.
    const offer2 = once(agent2, "offer", 5000, (x) => x.requestId === asked.requestId);
    const queued = await data(agent1, "support.transfer", { requestId: asked.requestId });
    assert.equal(queued.queued, true);
    const o2 = await offer2;
    const takenV = once(alice, "supportTransferred", 5000, (t) => t.toAgent === "agent2");
    const again = await data(agent2, "offer.accept", { offerId: o2.offerId });
    assert.equal(again.thread.id, threadId);
    assert.ok(again.threadToken);
    // alice, in the thread already, gets no invitation but learns who took it.
    assert.deepEqual(await takenV, { requestId: asked.requestId, toAgent: "agent2" });

    // The backend was told of both transfers and the supervisor's join.
    const events = await demo.waitForCallbacks(asked.requestId, (evs) => evs.filter((e) => e.type === "conversation.transferred").length === 2);
    const transfers = events.filter((e) => e.type === "conversation.transferred").map((e) => e.data);
    assert.deepEqual(transfers, [{ fromAgent: "agent2", toAgent: "agent1" }, { fromAgent: "agent1", queued: true }]);
    assert.ok(events.some((e) => e.type === "participant.joined" && e.userId === "super"), JSON.stringify(events));

    const ended = once(alice, "supportEnded");
    await data(agent2, "support.close", { requestId: asked.requestId });
    assert.equal((await ended).state, "closed");
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    await call(agent2, "agent.setAvailability", { available: false });
    for (const s of [agent1, agent2, alice, sup]) s.disconnect();
  }
});
