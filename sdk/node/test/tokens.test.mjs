// TokenSigner: each algorithm's tokens verify with jose against the public
// key, and carry exactly the claims of docs/tokens.md (and of the Go SDK).
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { jwtVerify } from "jose";
import { Access, TokenSigner, UnsupportedKeyError, loadPrivateKeyPEM, parsePrivateKeyPEM } from "../dist/index.js";
import { keyPair, tempDir } from "./helpers.mjs";

const NOW = new Date("2026-03-04T12:00:00Z");
const IAT = NOW.getTime() / 1000;

async function verified(token, publicKey, alg) {
  const { payload, protectedHeader } = await jwtVerify(token, publicKey, { algorithms: [alg], audience: "ecb", currentDate: NOW });
  return { payload, header: protectedHeader };
}

for (const [kind, alg] of [["rsa", "RS256"], ["ec", "ES256"], ["ed25519", "EdDSA"]]) {
  test(`${alg}: userToken, threadToken and anonymous token verify with jose and carry the contract's claims`, async () => {
    const { privateKey, publicKey } = keyPair(kind);
    const signer = new TokenSigner(privateKey, { audience: "ecb", issuer: "https://backend.example.com", keyId: "2026-01", now: () => NOW });
    assert.equal(signer.algorithm, alg);
    assert.equal(signer.publicKey.export({ type: "spki", format: "pem" }), publicKey.export({ type: "spki", format: "pem" }));

    const user = await signer.signUserToken({ id: "u-42", name: "Ann", roles: ["agent"], workgroups: ["billing"] });
    const u = await verified(user, publicKey, alg);
    assert.deepEqual(u.header, { alg, typ: "JWT", kid: "2026-01" });
    assert.equal(typeof u.payload.jti, "string");
    assert.match(u.payload.jti, /^[0-9a-f]{32}$/);
    const { jti: _j1, ...userClaims } = u.payload;
    assert.deepEqual(userClaims, {
      iss: "https://backend.example.com", sub: "u-42", aud: ["ecb"], exp: IAT + 3600, iat: IAT,
      typ: "user", name: "Ann", roles: ["agent"], workgroups: ["billing"],
    });
    // Each claim once, in its exact name, in the Go SDK's order (registered claims first).
    const raw = Buffer.from(user.split(".")[1], "base64url").toString();
    assert.deepEqual(Object.keys(JSON.parse(raw)), ["iss", "sub", "aud", "exp", "iat", "jti", "typ", "name", "roles", "workgroups"]);

    const thread = await signer.signThreadToken({ threadId: "t-7", userId: "u-42", access: Access.read | Access.write, members: ["u-42", "u-43"] });
    const th = await verified(thread, publicKey, alg);
    const { jti: _j2, ...threadClaims } = th.payload;
    assert.deepEqual(threadClaims, {
      iss: "https://backend.example.com", sub: "t-7", aud: ["ecb"], exp: IAT + 3600, iat: IAT,
      typ: "thread", uid: "u-42", acc: 3, members: ["u-42", "u-43"],
    });
    // acc 0 (no access) is a value, never left out.
    const banned = await verified(await signer.signThreadToken({ threadId: "t-7", userId: "u-9", access: 0 }), publicKey, alg);
    assert.equal(banned.payload.acc, 0);
    assert.equal("members" in banned.payload, false);

    const anon = await signer.signAnonymousToken({ origins: ["https://shop.example.com", "http://127.0.0.1:8080"] });
    const a = await verified(anon, publicKey, alg);
    const { jti: _j3, sub, ...anonClaims } = a.payload;
    assert.match(sub, /^anon-[0-9a-f]{24}$/);
    assert.deepEqual(anonClaims, {
      iss: "https://backend.example.com", aud: ["ecb"], exp: IAT + 15 * 60, iat: IAT,
      typ: "user", name: "Visitor", anon: true, origins: ["https://shop.example.com", "http://127.0.0.1:8080"],
    });
    assert.notEqual(u.payload.jti, th.payload.jti);
  });
}

test("defaults and options: no iss or kid unless given, empty lists left out, TTLs", async () => {
  const { privateKey, publicKey } = keyPair("ed25519");
  const signer = new TokenSigner(privateKey, { audience: "ecb", userTtlSeconds: 60, threadTtlSeconds: 120, now: () => NOW });
  const u = await verified(await signer.signUserToken({ id: "bob", name: "Bob", roles: [] }), publicKey, "EdDSA");
  assert.deepEqual(u.header, { alg: "EdDSA", typ: "JWT" });
  assert.deepEqual(Object.keys(u.payload), ["sub", "aud", "exp", "iat", "jti", "typ", "name"]);
  assert.equal(u.payload.exp, IAT + 60);
  const t = await verified(await signer.signThreadToken({ threadId: "t", userId: "bob", access: 15 }), publicKey, "EdDSA");
  assert.equal(t.payload.exp, IAT + 120);
  const a = await verified(await signer.signAnonymousToken({ id: "v-1", name: "Guest", origins: ["https://a.example"], ttlSeconds: 30 }), publicKey, "EdDSA");
  assert.deepEqual([a.payload.sub, a.payload.name, a.payload.exp], ["v-1", "Guest", IAT + 30]);
  // Another audience does not pass: aud is what ECB checks.
  await assert.rejects(jwtVerify(await signer.signUserToken({ id: "bob", name: "Bob" }), publicKey, { audience: "other", currentDate: NOW }));
});

test("refusals: bad params, origins that are not scheme://host[:port], unsupported keys", async () => {
  const signer = new TokenSigner(keyPair("ec").privateKey, { audience: "ecb" });
  await assert.rejects(signer.signUserToken({ id: "", name: "x" }), /id and name are required/);
  await assert.rejects(signer.signUserToken({ id: "x" }), /id and name are required/);
  await assert.rejects(signer.signThreadToken({ threadId: "t", userId: "" , access: 1 }), /threadId and userId are required/);
  for (const access of [-1, 16, 1.5, "3"]) {
    await assert.rejects(signer.signThreadToken({ threadId: "t", userId: "u", access }), /not a sum of the Access bits/);
  }
  await assert.rejects(signer.signAnonymousToken({ origins: [] }), /at least one origin/);
  for (const o of ["https://a.example/", "https://a.example/path", "https://a.example?q", "https://u@a.example", "a.example", "https://", "https://a.example#f"]) {
    await assert.rejects(signer.signAnonymousToken({ origins: [o] }), /is not of the form scheme:\/\/host\[:port\]/, o);
  }
  assert.throws(() => new TokenSigner(keyPair("ec").privateKey, {}), /audience is required/);
  assert.throws(() => new TokenSigner(keyPair("ec").privateKey, { audience: "ecb", userTtlSeconds: -1 }), /must not be negative/);
  assert.throws(() => new TokenSigner(generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey, { audience: "ecb" }), UnsupportedKeyError);
  assert.throws(() => new TokenSigner(generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey, { audience: "ecb" }), /want P-256/);
  assert.throws(() => new TokenSigner(generateKeyPairSync("ed448").privateKey, { audience: "ecb" }), UnsupportedKeyError);
  assert.throws(() => new TokenSigner(keyPair("ec").publicKey, { audience: "ecb" }), /a private key is needed/);
});

test("PEM keys: PKCS #8, PKCS #1 and SEC 1 load; encrypted and public ones are refused", () => {
  const dir = tempDir("ecb-nodesdk-pem-");
  const rsa = keyPair("rsa").privateKey;
  const ec = keyPair("ec").privateKey;
  const cases = {
    "pkcs8.pem": [rsa.export({ type: "pkcs8", format: "pem" }), "RS256"],
    "pkcs1.pem": [rsa.export({ type: "pkcs1", format: "pem" }), "RS256"],
    "sec1.pem": ["-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + ec.export({ type: "sec1", format: "pem" }), "ES256"],
    "ed.pem": [keyPair("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }), "EdDSA"],
  };
  for (const [name, [pem, alg]] of Object.entries(cases)) {
    writeFileSync(join(dir, name), pem);
    assert.equal(new TokenSigner(loadPrivateKeyPEM(join(dir, name)), { audience: "ecb" }).algorithm, alg, name);
    assert.equal(new TokenSigner(pem, { audience: "ecb" }).algorithm, alg, name + " as text");
  }
  const encrypted = rsa.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" });
  assert.throws(() => parsePrivateKeyPEM(encrypted), /encrypted private keys are not supported/);
  assert.throws(() => parsePrivateKeyPEM(keyPair("ec").publicKey.export({ type: "spki", format: "pem" })), /no private key PEM block/);
  assert.throws(() => loadPrivateKeyPEM(join(dir, "missing.pem")), /read private key/);
});

test("the CommonJS build loads (require of the ESM-only jose, Node 20.19+) and signs the same tokens", async () => {
  const { createRequire } = await import("node:module");
  const cjs = createRequire(import.meta.url)("../dist/index.cjs");
  const { privateKey, publicKey } = keyPair("ed25519");
  const token = await new cjs.TokenSigner(privateKey, { audience: "ecb", now: () => NOW }).signThreadToken({ threadId: "t", userId: "u", access: cjs.Access.read });
  const { payload } = await verified(token, publicKey, "EdDSA");
  assert.deepEqual([payload.typ, payload.uid, payload.acc], ["thread", "u", 1]);
  assert.equal(cjs.sign("0123456789abcdef0123456789abcdef", 1700000000, '{"accessToken":"abc"}'), "v1=6d9324c2d68ab23f6eb23f65b21df22bb4254013c7da0acdbfd098e0074e3403");
});
