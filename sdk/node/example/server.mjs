#!/usr/bin/env node
// Runs the example backend:
//
//   ecb keys generate --out keys
//   node example/server.mjs --keys keys --listen 127.0.0.1:8090
//
// It signs tokens with keys/private.pem and checks ECB's calls with
// keys/backend-secret (trimmed), and prints its contract URL: ECB's
// backend.url. Options: --audience (default ecb, ECB's auth.audience),
// --core (serve only the six required calls).
import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TokenSigner, loadPrivateKeyPEM } from "@ecb/server";
import { createExampleServer } from "./backend.mjs";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "keys" },
    listen: { type: "string", default: "127.0.0.1:8090" },
    audience: { type: "string", default: "ecb" },
    core: { type: "boolean", default: false },
  },
});
const signer = new TokenSigner(loadPrivateKeyPEM(join(values.keys, "private.pem")), { audience: values.audience });
const secret = readFileSync(join(values.keys, "backend-secret"), "utf8").trim();
const { listener } = createExampleServer({ signer, secret, core: values.core });
const i = values.listen.lastIndexOf(":");
const server = http.createServer(listener);
server.listen(Number(values.listen.slice(i + 1)), values.listen.slice(0, i), () => {
  const { address, port } = server.address();
  console.log(`example backend: http://${address}:${port}/ecb/v1 (${signer.algorithm} tokens, audience ${values.audience})`);
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections(); // ECB keeps connections alive between calls
  });
}
