// A chat through a balancer in front of several ECB nodes, driven with the
// official socket.io-client, for test/e2e/balancer_test.go (which starts the
// nodes, the balancer and this script, and checks what it prints).
//
// Usage: node cluster-chat.mjs '<json config>'
//   {url, threadToken: {alice, bob, carol}, userToken: {alice, bob, carol},
//    messages, intervalMs, untilStopped}
// alice sends `messages` messages (or, with untilStopped, until a line "stop"
// arrives on stdin, then `messages` more), one at a time, every intervalMs,
// each with a clientMessageId and retried with it until acknowledged. bob
// listens over long-polling only, carol over polling upgraded to WebSocket.
// A listener that reconnects (socket.io-client does it by itself) resumes
// from the last position it saw and records the answer. When alice is done
// it prints one JSON line:
//   {acked: [body], listeners: {bob: {received: [{body, epoch, offset}],
//    connects, resumes: [recovered], polls, transport}, carol: {...}}}
// Before that, "ready" once every client listens; with untilStopped, a line
// "sids" on stdin prints {bob, carol}: the listeners' Engine.IO session ids.
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(user, transports) {
  return io(cfg.url, {
    transports,
    auth: { userToken: cfg.userToken[user] },
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    forceNew: true,
  });
}

// call answers {cut: true} when the connection drops before the answer (the
// operation's fate is unknown: a sendMessage is sent again with its
// clientMessageId, a resume is done again by the next connection).
async function call(socket, op, payload, timeoutMs = 10000) {
  let onDisconnect;
  const cut = new Promise((r) => {
    onDisconnect = () => r({ cut: true });
    socket.once("disconnect", onDisconnect);
  });
  try {
    return await Promise.race([socket.timeout(timeoutMs).emitWithAck(op, payload), cut]);
  } catch (err) {
    return { error: { code: "timeout", message: String(err) } };
  } finally {
    socket.off("disconnect", onDisconnect);
  }
}

function listener(user, transports) {
  const state = { received: [], connects: 0, resumes: [], polls: 0, transport: "", pos: null, ready: null };
  const socket = client(user, transports);
  let markReady;
  state.ready = new Promise((r) => (markReady = r));
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    const count = (t) => t.on("poll", () => state.polls++);
    count(engine.transport);
    engine.on("upgrade", (t) => (state.transport = t.name));
    state.transport = engine.transport.name;
  });
  socket.on("message", (p) => {
    state.received.push({ body: p.message.body, epoch: p.epoch, offset: p.offset });
    state.pos = { epoch: p.epoch, offset: p.offset };
  });
  socket.on("connect", async () => {
    state.connects++;
    const tok = cfg.threadToken[user];
    if (state.pos === null) {
      const a = await call(socket, "getThread", { threadToken: tok });
      if (a.cut) return; // the next connection tries again
      if (a.error) throw new Error(`${user} getThread: ${JSON.stringify(a.error)}`);
      if (state.pos === null) state.pos = { epoch: a.data.epoch, offset: a.data.offset };
      markReady();
      return;
    }
    const a = await call(socket, "resume", { threads: [{ threadToken: tok, epoch: state.pos.epoch, offset: state.pos.offset }] });
    if (a.cut) return; // the next connection resumes
    state.resumes.push(a.error ? `error:${a.error.code}` : a.data.threads[0].recovered);
  });
  return { socket, state };
}

const bob = listener("bob", ["polling"]);
const carol = listener("carol", ["polling", "websocket"]);
const alice = client("alice", ["polling", "websocket"]);
await new Promise((r) => alice.once("connect", r));
await Promise.all([bob.state.ready, carol.state.ready]);
console.log("ready");

let stopped = !cfg.untilStopped;
if (cfg.untilStopped) {
  createInterface({ input: process.stdin }).on("line", (l) => {
    if (l.trim() === "stop") stopped = true;
    // The Engine.IO session ids, which name the node holding each session.
    if (l.trim() === "sids") console.log(JSON.stringify({ bob: bob.socket.io.engine?.id, carol: carol.socket.io.engine?.id }));
  });
}

const acked = [];
let i = 0;
let after = 0;
while (!stopped || after < cfg.messages) {
  if (stopped) after++;
  const body = `m${i}`;
  const clientMessageId = `cluster-chat-${process.pid}-${i}`;
  for (;;) {
    if (!alice.connected) {
      await sleep(50);
      continue;
    }
    const a = await call(alice, "sendMessage", { threadToken: cfg.threadToken.alice, body, clientMessageId });
    if (!a.error && !a.cut) break;
    await sleep(a.error?.code === "rate_limited" ? 1000 : 100); // unavailable, a cut connection: the same id again
  }
  acked.push(body);
  i++;
  await sleep(cfg.intervalMs);
}
// Let the last pushes arrive.
const deadline = Date.now() + 15000;
while (Date.now() < deadline && [bob, carol].some((l) => l.state.received.length < acked.length)) await sleep(50);

const out = { acked, listeners: {} };
for (const [name, l] of [["bob", bob], ["carol", carol]]) {
  const { received, connects, resumes, polls, transport } = l.state;
  out.listeners[name] = { received, connects, resumes, polls, transport };
  l.socket.close();
}
alice.close();
console.log(JSON.stringify(out));
process.exit(0);
