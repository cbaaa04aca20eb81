// Whispers (sendMessage with visibility "agents") with the official
// socket.io-client against a real `ecb demo`: the visitor never receives one,
// live, after a resume, or in the history; the other agent does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, data, errorCode } from "./harness.js";

let demo;
const connect = (user, opts) => demo.connect(user, opts);

before(async () => {
  demo = Demo.build("ecb-whisper-");
  await demo.start(["--set", "support.offerTimeout=1s", "--set", "support.grace=1s"]);
});

after(async () => {
  await demo.remove();
});



// Collects every event of a socket, to prove what it never received.
function record(socket) {
  const got = [];
  socket.onAny((event, payload) => got.push({ event, payload }));
  return got;
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test("whispers: the visitor never receives one, live or after a resume; the other agent does", async () => {
  const agent1 = await connect("agent1");
  const agent2 = await connect("agent2");
  let alice = await connect("alice");
  try {
    // agent1 starts a conversation with the visitor alice and agent2 (staff may).
    const created = await data(agent1, "createThread", { participants: ["alice", "agent2"], subject: "invoice", message: { body: "Hello Alice" } });
    const threadId = created.thread.id;
    const tokens = {};
    for (const [name, s] of [["alice", alice], ["agent2", agent2]]) {
      const threads = await data(s, "getThreads", {});
      const t = threads.items.find((x) => x.thread.id === threadId);
      assert.ok(t, `${name} has the thread`);
      tokens[name] = t.threadToken;
    }
    const aliceThread = await data(alice, "getThread", { threadToken: tokens.alice });
    await data(agent2, "getThread", { threadToken: tokens.agent2 });
    const aliceGot = record(alice);

    // alice may not whisper.
    assert.equal(await errorCode(alice, "sendMessage", { threadToken: tokens.alice, body: "psst", visibility: "agents" }), "forbidden");

    // Live: agent2 gets the whisper, then the public message; alice only the latter.
    const a2whisper = once(agent2, "message", 5000, (m) => m.message.body === "whisper 1");
    const alicePublic = once(alice, "message", 5000, (m) => m.message.body === "public 1");
    const sent = await data(agent1, "sendMessage", { threadToken: created.threadToken, body: "whisper 1", visibility: "agents" });
    assert.equal(sent.message.visibility, "agents");
    await data(agent1, "sendMessage", { threadToken: created.threadToken, body: "public 1" });
    const w = await a2whisper;
    assert.equal(w.message.visibility, "agents");
    await alicePublic;

    // Recovery: alice goes away; a whisper and a public message come meanwhile;
    // she reconnects and resumes from the position she had.
    alice.disconnect();
    const a2whisper2 = once(agent2, "message", 5000, (m) => m.message.body === "whisper 2");
    await data(agent1, "sendMessage", { threadToken: created.threadToken, body: "whisper 2", visibility: "agents" });
    await data(agent1, "sendMessage", { threadToken: created.threadToken, body: "public 2" });
    await a2whisper2;
    alice = await connect("alice");
    const aliceGot2 = record(alice);
    const resumed = await data(alice, "resume", { threads: [{ threadToken: tokens.alice, epoch: aliceThread.epoch, offset: aliceThread.offset }] });
    assert.equal(resumed.threads[0].recovered, true);
    await sleep(300);
    const bodies2 = aliceGot2.filter((e) => e.event === "message").map((e) => e.payload.message.body);
    assert.deepEqual(bodies2, ["public 1", "public 2"]);

    // History: the backend answers whispers to agents only.
    const aliceHistory = await data(alice, "getThread", { threadToken: tokens.alice });
    assert.deepEqual(aliceHistory.messages.map((m) => m.body), ["Hello Alice", "public 1", "public 2"]);
    assert.ok(!aliceHistory.thread.lastMessage || aliceHistory.thread.lastMessage.visibility === undefined);
    const agentHistory = await data(agent2, "getThread", { threadToken: tokens.agent2 });
    assert.deepEqual(agentHistory.messages.map((m) => m.body), ["Hello Alice", "whisper 1", "public 1", "whisper 2", "public 2"]);

    // Nothing alice received, on either connection, mentions a whisper.
    for (const e of [...aliceGot, ...aliceGot2]) {
      assert.ok(!JSON.stringify(e.payload ?? null).includes("whisper"), `alice received ${JSON.stringify(e)}`);
    }
  } finally {
    agent1.disconnect();
    agent2.disconnect();
    alice.disconnect();
  }
});
