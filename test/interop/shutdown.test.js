// A node shutting down (SIGTERM), seen by the official socket.io-client on
// both transports: closing {reason: "shutdown"} first, then a transport
// close (not a server DISCONNECT), after which the client reconnects by
// itself; the node refuses the reconnect while it drains.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-shutdown-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

test("shutdown: closing {reason: shutdown}, then a transport close that socket.io-client reconnects after", async () => {
  const ws = await demo.connect("alice");
  const polling = await demo.connect("bob", { transports: ["polling"] });
  try {
    const closing = [once(ws, "closing"), once(polling, "closing")];
    const disconnect = [once(ws, "disconnect", 15000), once(polling, "disconnect", 15000)];
    await demo.stop(); // SIGTERM, and waits until the process exits
    for (const c of await Promise.all(closing)) {
      // Protocol 1.2: a random delay (250 ms + up to http.reconnectJitter,
      // 2 s by default) so that a node's clients do not all come back at once.
      assert.equal(c.reason, "shutdown");
      assert.ok(Number.isInteger(c.reconnectAfterMs) && c.reconnectAfterMs >= 250 && c.reconnectAfterMs <= 2250, `reconnectAfterMs ${c.reconnectAfterMs}`);
      assert.deepEqual(Object.keys(c).sort(), ["reason", "reconnectAfterMs"]);
    }
    for (const reason of await Promise.all(disconnect)) {
      // "io server disconnect" would mean a DISCONNECT packet, after which
      // socket.io-client does not reconnect.
      assert.ok(reason === "transport close" || reason === "transport error", `disconnect reason ${reason}`);
    }
    assert.equal(ws.active, true, "the WebSocket client reconnects by itself");
    assert.equal(polling.active, true, "the polling client reconnects by itself");
  } finally {
    ws.close();
    polling.close();
  }
});
