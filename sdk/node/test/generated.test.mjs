// The committed types are what openapi-typescript generates from
// api/backend.yaml today: a change to the contract without `npm run generate`
// fails here, so the types cannot drift.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { generate, generateServer, outputPath, serverOutputPath } from "../scripts/generate-types.mjs";

test("src/generated/backend.ts is byte for byte a fresh generation from api/backend.yaml", async () => {
  const fresh = await generate();
  const committed = readFileSync(outputPath, "utf8");
  assert.ok(fresh.includes('"/authenticate"') && fresh.includes("CallbackEvent"), "the generation covers the contract");
  assert.equal(committed, fresh, "src/generated/backend.ts is stale: run `npm run generate` in sdk/node and commit it");
});

test("src/generated/server.ts is byte for byte a fresh generation from api/server.yaml", async () => {
  const fresh = await generateServer();
  const committed = readFileSync(serverOutputPath, "utf8");
  assert.ok(fresh.includes('"/threads/{threadId}/members/{userId}"') && fresh.includes("closeConversation"), "the generation covers the Server API");
  assert.equal(committed, fresh, "src/generated/server.ts is stale: run `npm run generate` in sdk/node and commit it");
});
