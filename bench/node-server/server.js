// The Node side of `ecb bench fanout --target node`: a plain socket.io 4.8
// server doing what ECB's fan-out does. Every socket that connects to "/"
// joins one room; an event "publish" (with ack) is broadcast to the room as
// "message" with the same payload, then acknowledged. Nothing else: no
// middleware, no adapter but the default in-memory one, defaults otherwise.
//
//   node server.js [port]   (default 0: any free port)
//
// It listens on 127.0.0.1 only, prints "listening 127.0.0.1:PORT" on stdout,
// and exits when its standard input closes (its parent, the load generator,
// went away) or on SIGTERM/SIGINT.
import { createServer } from "node:http";
import { Server } from "socket.io";

const ROOM = "bench";
const port = Number(process.argv[2] ?? 0);

const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });

io.on("connection", (socket) => {
  socket.join(ROOM);
  socket.on("publish", (payload, ack) => {
    io.to(ROOM).emit("message", payload);
    if (typeof ack === "function") ack();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  process.stdout.write(`listening ${address}:${port}\n`);
});

const stop = () => {
  io.close();
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
