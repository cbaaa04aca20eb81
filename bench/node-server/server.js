// The Node side of `ecb bench fanout --target node`: a plain socket.io 4.8
// server doing what ECB's fan-out does. Every socket that connects to "/"
// joins the room its CONNECT payload names (auth {thread: "t3"}; none: the
// room "bench"; "": no room); an event "publish" (with ack) is broadcast as
// "message" with the same payload to the room named by its second argument
// (none: "bench"), then acknowledged. Nothing else: no middleware, defaults
// otherwise.
//
// With BENCH_REDIS_URL set (the cluster scenario, `ecb bench fanout
// --cluster`), the server uses @socket.io/redis-adapter on that Redis, with
// BENCH_PREFIX as the adapter's key (each run its own), so that several
// such servers act as one: a broadcast on one reaches the room's sockets on
// every server. Without it, the default in-memory adapter.
//
//   node server.js [port]   (default 0: any free port)
//
// It listens on 127.0.0.1 only, prints "listening 127.0.0.1:PORT" on stdout
// once it can serve, and exits when its standard input closes (its parent,
// the load generator, went away) or on SIGTERM/SIGINT.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const ROOM = "bench";
const port = Number(process.argv[2] ?? 0);
const redisURL = process.env.BENCH_REDIS_URL ?? "";

const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });
const clients = [];

if (redisURL !== "") {
  const pub = createClient({ url: redisURL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) {
    c.on("error", (err) => process.stderr.write(`redis: ${err}\n`));
  }
  await Promise.all([pub.connect(), sub.connect()]);
  clients.push(pub, sub);
  io.adapter(createAdapter(pub, sub, { key: process.env.BENCH_PREFIX || "socket.io" }));
}

io.on("connection", (socket) => {
  const room = socket.handshake.auth?.thread ?? ROOM;
  if (room !== "") socket.join(room);
  socket.on("publish", (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : null;
    const [payload, thread] = args;
    io.to(typeof thread === "string" && thread !== "" ? thread : ROOM).emit("message", payload);
    if (ack) ack();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  process.stdout.write(`listening ${address}:${port}\n`);
});

const stop = () => {
  io.close();
  for (const c of clients) c.disconnect().catch(() => {});
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
