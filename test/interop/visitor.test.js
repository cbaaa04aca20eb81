// An anonymous website visitor end to end (issue 6 item 5, the Skype
// customer-care flow) with the official socket.io-client against a real
// `ecb demo`: the page gets an anonymous userToken from the reference
// backend's POST /visitor, connects to ECB from the allowed origin, asks the
// support workgroup, agent1 accepts, both chat (messages and typing both
// ways), an agent whisper never reaches the visitor, the visitor closes, and
// the callbacks show the whole conversation. The same token from another
// origin is refused, and so is a non-support operation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { Demo, once, data, call } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-visitor-");
  await demo.start(["--set", "support.offerTimeout=10s"]);
});

after(async () => {
  await demo.remove();
});

async function visitorToken(name) {
  const r = await fetch(`${demo.backend}/visitor`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: demo.url },
    body: JSON.stringify({ name }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), demo.url);
  return r.json();
}

function visitorSocket(userToken, origin = demo.url) {
  return io(demo.url, {
    auth: { userToken },
    extraHeaders: { Origin: origin },
    transports: ["polling"],
    forceNew: true,
    reconnection: false,
  });
}

test("visitor: anonymous token, ask, accept, chat both ways, no whisper, close, callbacks in order", async () => {
  const v = await visitorToken("Dana");
  assert.ok(v.user.id);
  assert.equal(v.user.name, "Dana");
  assert.ok(Date.parse(v.expiresAt) > Date.now());

  const agent1 = await demo.connect("agent1");
  const visitor = visitorSocket(v.userToken);
  const seen = [];
  visitor.onAny((event, payload) => seen.push({ event, payload }));
  try {
    await once(visitor, "connect");
    await data(agent1, "agent.setAvailability", { available: true });

    const offer = once(agent1, "offer");
    const asked = await data(visitor, "support.ask", { workgroup: "support", question: "Where is my parcel?", operationId: "op-visitor" });
    const o = await offer;
    assert.equal(o.requestId, asked.requestId);
    assert.equal(o.visitor.id, v.user.id);
    assert.equal(o.visitor.anonymous, true);

    const invV = once(visitor, "invitation");
    const invA = once(agent1, "invitation");
    const accepted = await data(agent1, "offer.accept", { offerId: o.offerId });
    const iv = await invV;
    const ia = await invA;
    assert.equal(iv.thread.id, accepted.thread.id);
    assert.deepEqual([...iv.thread.members].sort(), [v.user.id, "agent1"].sort());

    await data(visitor, "getThread", { threadToken: iv.threadToken });
    await data(agent1, "getThread", { threadToken: ia.threadToken });

    // Messages both ways.
    const toAgent = once(agent1, "message", 5000, (m) => m.message.body === "hi, my parcel?");
    await data(visitor, "sendMessage", { threadToken: iv.threadToken, body: "hi, my parcel?" });
    assert.equal((await toAgent).message.authorId, v.user.id);
    const toVisitor = once(visitor, "message", 5000, (m) => m.message.body === "Let me look.");
    await data(agent1, "sendMessage", { threadToken: ia.threadToken, body: "Let me look." });
    const lookPush = await toVisitor;
    assert.equal(lookPush.message.authorId, "agent1");

    // Typing both ways.
    const typingA = once(agent1, "typing", 5000, (t) => t.userId === v.user.id && t.state === "start");
    await data(visitor, "typing", { threadToken: iv.threadToken, state: "start" });
    await typingA;
    const typingV = once(visitor, "typing", 5000, (t) => t.userId === "agent1" && t.state === "start");
    await data(agent1, "typing", { threadToken: ia.threadToken, state: "start" });
    await typingV;

    // A whisper never reaches the visitor; the next public message does.
    await data(agent1, "sendMessage", { threadToken: ia.threadToken, body: "secret note", visibility: "agents" });
    const after = once(visitor, "message", 5000, (m) => m.message.body === "Found it.");
    await data(agent1, "sendMessage", { threadToken: ia.threadToken, body: "Found it." });
    const found = await after;
    // The whisper's offset is a gap the visitor sees (protocol 1.5): a
    // resume from before it is recovered and replays the public message
    // only, before its answer.
    assert.equal(found.epoch, lookPush.epoch);
    assert.ok(found.offset > lookPush.offset + 1, `no gap: ${lookPush.offset} then ${found.offset}`);
    const replayed = once(visitor, "message", 5000, (m) => m.message.body === "Found it.");
    const resumed = await data(visitor, "resume", { threads: [{ threadToken: iv.threadToken, epoch: lookPush.epoch, offset: lookPush.offset }] });
    assert.equal(resumed.threads.length, 1);
    assert.equal(resumed.threads[0].threadId, iv.thread.id);
    assert.equal(resumed.threads[0].recovered, true, JSON.stringify(resumed));
    assert.equal((await replayed).offset, found.offset);
    // Only with a threadToken issued for the visitor: the agent's is refused.
    assert.equal((await call(visitor, "resume", { threads: [{ threadToken: ia.threadToken, epoch: lookPush.epoch, offset: lookPush.offset }] })).error?.code, "forbidden");
    // The visitor may not whisper.
    const w = await call(visitor, "sendMessage", { threadToken: iv.threadToken, body: "x", visibility: "agents" });
    assert.equal(w.error?.code, "forbidden");

    // The visitor closes.
    const endedA = once(agent1, "supportEnded");
    await data(visitor, "support.close", { requestId: asked.requestId });
    assert.equal((await endedA).state, "closed");

    for (const e of seen) {
      assert.ok(!JSON.stringify(e.payload ?? null).includes("secret note"), `the visitor received ${JSON.stringify(e)}`);
    }

    // The service application sees the whole conversation, whispers
    // included (marked), in order, each event with the visitor's operationId.
    const want = ["support.requested", "offer.accepted", "message.created", "message.created", "message.created", "message.created", "conversation.closed"];
    const events = await demo.waitForCallbacks(asked.requestId, (evs) => evs.length >= want.length);
    assert.deepEqual(events.map((e) => e.type), want);
    assert.ok(events.every((e) => e.operationId === "op-visitor" && e.workgroup === "support"), JSON.stringify(events));
    assert.equal(events[0].userId, v.user.id);
    assert.equal(events[1].threadId, accepted.thread.id);
    const msgs = events.filter((e) => e.type === "message.created");
    assert.deepEqual(msgs.map((e) => [e.userId, e.data.body, e.data.visibility ?? ""]), [
      [v.user.id, "hi, my parcel?", ""],
      ["agent1", "Let me look.", ""],
      ["agent1", "secret note", "agents"],
      ["agent1", "Found it.", ""],
    ]);
    assert.ok(msgs.every((e) => e.threadId === accepted.thread.id && e.data.messageId), JSON.stringify(msgs));
  } finally {
    await call(agent1, "agent.setAvailability", { available: false });
    agent1.disconnect();
    visitor.disconnect();
  }
});

test("visitor: the token from another origin is refused; non-support operations are forbidden", async () => {
  const v = await visitorToken();
  const evil = visitorSocket(v.userToken, "https://evil.example");
  try {
    const err = await once(evil, "connect_error");
    // ECB's CORS policy refuses a foreign Origin before the handshake (HTTP
    // 403 on the polling request); were the origin a CORS-allowed one, the
    // token's origins would refuse it with connect_error data.code forbidden.
    const refused = err.data?.code === "forbidden" || err.description === 403 || err.context?.status === 403;
    assert.ok(refused, `connect_error: ${err.message} ${err.description} ${JSON.stringify(err.data)}`);
  } finally {
    evil.disconnect();
  }
  const visitor = visitorSocket(v.userToken);
  try {
    await once(visitor, "connect");
    const r = await call(visitor, "getContacts", {});
    assert.equal(r.error?.code, "forbidden");
  } finally {
    visitor.disconnect();
  }
});
