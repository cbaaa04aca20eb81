// Conference (support.invite / support.leave) with the official
// socket.io-client against a real `ecb demo`: an offer to agent1 times out
// (offer.revoked carries the visitor's operationId), agent1 accepts it when
// offered again and invites agent2, who gets an invitation into the same
// thread; the visitor sees agent2 join and write; agent2 leaves and the
// visitor sees it; invited again, agent2 is told when the chat closes. The
// callbacks show every step, messages included, in order. A bot user
// (helpbot) added to a support thread chats like anybody and, not being an
// agent, never receives a whisper.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, call, errorCode } from "./harness.js";

let demo;
const connect = (user, opts) => demo.connect(user, opts);

before(async () => {
  demo = Demo.build("ecb-conference-");
  await demo.start(["--set", "support.offerTimeout=1s"]);
});

after(async () => {
  await demo.remove();
});

test("conference: invite a second agent, who writes, leaves, is invited again and told of the close; callbacks in order", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  const alice = await connect("alice");
  const sup = await connect("super");
  try {
    await data(agent1, "agent.setAvailability", { available: true });

    // agent1 lets the first offer time out; it comes back to them (the only agent) after the cool-down.
    const first = once(agent1, "offer");
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "Two problems", operationId: "op-conf" });
    const o1 = await first;
    const revoked = await once(agent1, "offerRevoked", 5000, (r) => r.offerId === o1.offerId);
    assert.equal(revoked.reason, "timeout");
    const o2 = await once(agent1, "offer", 5000, (o) => o.requestId === asked.requestId);
    const invV = once(alice, "invitation");
    const acc = await data(agent1, "offer.accept", { offerId: o2.offerId });
    const iv = await invV;
    const threadId = acc.thread.id;
    await data(alice, "getThread", { threadToken: iv.threadToken });
    await data(agent1, "getThread", { threadToken: acc.threadToken });

    // Refusals: agent2 is not available; alice and a stranger agent may not invite.
    assert.equal(await errorCode(agent1, "support.invite", { requestId: asked.requestId, agent: "agent2" }), "conflict");
    assert.equal(await errorCode(alice, "support.invite", { requestId: asked.requestId, agent: "agent2" }), "forbidden");
    assert.equal(await errorCode(agent2, "support.invite", { requestId: asked.requestId, agent: "agent1" }), "not_found");
    assert.equal(await errorCode(agent1, "support.invite", { requestId: asked.requestId }), "invalid_argument");

    // agent2 is invited into the same thread; alice sees them join.
    await data(agent2, "agent.setAvailability", { available: true });
    const inv2 = once(agent2, "invitation");
    const joinedV = once(alice, "member", 5000, (m) => m.userId === "agent2" && m.change === "joined");
    assert.deepEqual(await data(agent1, "support.invite", { requestId: asked.requestId, agent: "agent2" }), { requestId: asked.requestId, agent: "agent2" });
    const i2 = await inv2;
    assert.equal(i2.conference, true);
    assert.equal(i2.requestId, asked.requestId);
    assert.equal(i2.thread.id, threadId);
    assert.ok(i2.thread.members.includes("agent2"));
    await joinedV;
    assert.equal(await errorCode(agent1, "support.invite", { requestId: asked.requestId, agent: "agent2" }), "conflict");
    const list = await data(sup, "support.conversations", { workgroup: "support" });
    assert.deepEqual(list.conversations.find((c) => c.requestId === asked.requestId).agents, ["agent1", "agent2"]);

    // agent2 writes; alice and agent1 get it.
    await data(agent2, "getThread", { threadToken: i2.threadToken });
    const toAlice = once(alice, "message", 5000, (m) => m.message.body === "agent2, billing");
    const toAgent1 = once(agent1, "message", 5000, (m) => m.message.body === "agent2, billing");
    await data(agent2, "sendMessage", { threadToken: i2.threadToken, body: "agent2, billing" });
    assert.equal((await toAlice).message.authorId, "agent2");
    await toAgent1;

    // Only invited people leave: agent1 owns the chat, alice is its visitor;
    // the chat may not go back to the queue while agent2 is in it.
    assert.equal(await errorCode(agent1, "support.leave", { requestId: asked.requestId }), "conflict");
    assert.equal(await errorCode(alice, "support.leave", { requestId: asked.requestId }), "not_found");
    assert.equal(await errorCode(agent1, "support.transfer", { requestId: asked.requestId }), "conflict");

    // agent2 leaves: alice sees it, agent2 stops receiving the thread.
    const leftV = once(alice, "member", 5000, (m) => m.userId === "agent2" && m.change === "left");
    await data(agent2, "support.leave", { requestId: asked.requestId });
    await leftV;
    const got2 = [];
    agent2.on("message", (m) => got2.push(m.message.body));
    const toAlice2 = once(alice, "message", 5000, (m) => m.message.body === "back to me");
    await data(agent1, "sendMessage", { threadToken: acc.threadToken, body: "back to me" });
    await toAlice2;
    assert.ok(!got2.includes("back to me"), "agent2 still listens after leaving");

    // Invited again, agent2 hears of the close.
    const inv3 = once(agent2, "invitation");
    await data(agent1, "support.invite", { requestId: asked.requestId, agent: "agent2" });
    await inv3;
    const ended2 = once(agent2, "supportEnded");
    const endedV = once(alice, "supportEnded");
    await data(agent1, "support.close", { requestId: asked.requestId });
    assert.equal((await ended2).state, "closed");
    assert.equal((await endedV).state, "closed");

    const want = ["support.requested", "offer.revoked", "offer.accepted", "participant.joined", "message.created",
      "participant.left", "message.created", "participant.joined", "conversation.closed"];
    const events = await demo.waitForCallbacks(asked.requestId, (evs) => evs.length >= want.length);
    assert.deepEqual(events.map((e) => e.type), want);
    assert.ok(events.every((e) => e.operationId === "op-conf" && e.workgroup === "support" && e.requestId === asked.requestId), JSON.stringify(events));
    const [, rev, , joined, msg, left] = events;
    assert.deepEqual([rev.userId, rev.data.offerId, rev.data.reason], ["agent1", o1.offerId, "timeout"]);
    assert.deepEqual([joined.userId, joined.data], ["agent2", { role: "agent", invitedBy: "agent1" }]);
    assert.deepEqual([msg.userId, msg.threadId, msg.data.body], ["agent2", threadId, "agent2, billing"]);
    assert.deepEqual([left.userId, left.data], ["agent2", { role: "agent" }]);
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    await call(agent2, "agent.setAvailability", { available: false });
    for (const s of [agent1, agent2, alice, sup]) s.disconnect();
  }
});

test("a bot may be a member of a support thread: it writes to the visitor, and gets no whisper", async () => {
  const agent1 = await connect("agent1");
  const alice = await connect("alice");
  const bot = await connect("helpbot");
  try {
    await data(agent1, "agent.setAvailability", { available: true });
    const offer = once(agent1, "offer");
    const asked = await data(alice, "support.ask", { workgroup: "support", question: "Opening hours?", operationId: "op-bot" });
    const o = await offer;
    const invV = once(alice, "invitation");
    const acc = await data(agent1, "offer.accept", { offerId: o.offerId });
    const iv = await invV;
    const threadId = acc.thread.id;
    await data(alice, "getThread", { threadToken: iv.threadToken });
    await data(agent1, "getThread", { threadToken: acc.threadToken });

    // The agent adds the bot (the thread's creator is its admin): the bot
    // is told (thread added), finds the thread's token in its thread list
    // and opens it.
    const told = once(bot, "thread", 5000, (t) => t.threadId === threadId && t.change === "added");
    const added = await data(agent1, "addParticipants", { threadToken: acc.threadToken, participants: ["helpbot"] });
    assert.ok(added.thread.members.includes("helpbot"), JSON.stringify(added));
    await told;
    const mine = (await data(bot, "getThreads", {})).items.find((t) => t.thread.id === threadId);
    assert.ok(mine?.threadToken, "the support thread is in the bot's list");
    await data(bot, "getThread", { threadToken: mine.threadToken }); // listens to it
    const botToken = mine.threadToken;

    const botSaw = [];
    bot.on("message", (m) => botSaw.push(m.message.body));
    const toAlice = once(alice, "message", 5000, (m) => m.message.body === "We open at 9.");
    await data(bot, "sendMessage", { threadToken: botToken, body: "We open at 9." });
    assert.equal((await toAlice).message.authorId, "helpbot");

    // A whisper goes to agents only: the bot gets the public message after it, not the whisper.
    await data(agent1, "sendMessage", { threadToken: acc.threadToken, body: "bot answered", visibility: "agents" });
    const botGot = once(bot, "message", 5000, (m) => m.message.body === "Anything else?");
    await data(agent1, "sendMessage", { threadToken: acc.threadToken, body: "Anything else?" });
    await botGot;
    assert.ok(!botSaw.includes("bot answered"), `the bot received a whisper: ${botSaw}`);
    assert.equal(await errorCode(bot, "sendMessage", { threadToken: botToken, body: "x", visibility: "agents" }), "forbidden");

    await data(alice, "support.close", { requestId: asked.requestId });
    const events = await demo.waitForCallbacks(asked.requestId, (evs) => evs.some((e) => e.type === "conversation.closed"));
    const msgs = events.filter((e) => e.type === "message.created").map((e) => e.userId);
    assert.deepEqual(msgs, ["helpbot", "agent1", "agent1"]);
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    for (const s of [agent1, alice, bot]) s.disconnect();
  }
});
