// People (protocol 1.3) end to end against a real `ecb demo` with the
// official socket.io-client and REST + SSE: user search, contacts added and
// removed with the contact push and presence that follows at once, and
// profile properties pushed to the contacts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Demo, once, call, data, errorCode } from "./harness.js";

let demo;

before(async () => {
  demo = Demo.build("ecb-people-");
  await demo.start();
});

after(async () => {
  await demo.remove();
});

async function rest(method, path, token, body) {
  const r = await fetch(demo.url + path, {
    method,
    headers: { authorization: "Bearer " + token, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, ...(await r.json()) };
}

test("searchUsers over Socket.IO and REST, with the bad-input rules", async () => {
  const alice = await demo.connect("alice");
  const page = await data(alice, "searchUsers", { query: "agent", pageSize: 1 });
  assert.equal(page.total, 2);
  assert.equal(page.items.length, 1);
  assert.equal(page.items[0].id, "agent1");
  assert.equal(page.hasMore, true);
  const two = await data(alice, "searchUsers", { query: "AGENT", page: 2, pageSize: 1 });
  assert.equal(two.items[0].id, "agent2");
  assert.equal((await data(alice, "searchUsers", { query: "alice" })).total, 0, "the caller is not among the matches");

  assert.equal(await errorCode(alice, "searchUsers", { query: "" }), "invalid_argument");
  assert.equal(await errorCode(alice, "searchUsers", { query: "   " }), "invalid_argument");
  assert.equal(await errorCode(alice, "searchUsers", { query: "a".repeat(10240) }), "invalid_argument");
  assert.equal(await errorCode(alice, "searchUsers", {}), "invalid_argument");

  const tok = await demo.userToken("bob");
  const r = await rest("GET", "/v1/users?query=car", tok);
  assert.equal(r.status, 200);
  assert.deepEqual(r.data.items.map((u) => u.id), ["carol"]);
  const bad = await rest("GET", "/v1/users?query=" + "b".repeat(10240), tok);
  assert.equal(bad.status, 400);
  assert.equal(bad.error.code, "invalid_argument");
  alice.close();
});

test("addContact and removeContact: both sides are told, presence follows at once", async () => {
  const alice = await demo.connect("alice");
  const agent = await demo.connect("agent1");
  await data(agent, "setPresence", { show: "dnd", status: "on a call" });
  assert.equal(await errorCode(alice, "getPresence", { userIds: ["agent1"] }), "forbidden");

  const told = once(agent, "contact", 5000, (c) => c.change === "added");
  const agentsPresence = once(alice, "presence", 5000, (p) => p.userId === "agent1");
  const alicesPresence = once(agent, "presence", 5000, (p) => p.userId === "alice");
  const res = await data(alice, "addContact", { userId: "agent1" });
  assert.equal(res.contact.id, "agent1");
  assert.equal(res.contact.name, "Agent One");
  assert.equal((await told).user.id, "alice");
  const p = await agentsPresence;
  assert.equal(p.show, "dnd");
  assert.equal(p.status, "on a call");
  assert.equal((await alicesPresence).show, "available");
  const contacts = await data(alice, "getContacts", {});
  assert.ok(contacts.items.some((u) => u.id === "agent1"));
  assert.equal((await data(alice, "getPresence", { userIds: ["agent1"] })).presence[0].show, "dnd");
  // Later changes reach the new contact.
  const away = once(alice, "presence", 5000, (q) => q.userId === "agent1" && q.show === "away");
  await data(agent, "setPresence", { show: "away" });
  await away;

  // The removal is told to the other side over SSE too.
  const stream = await demo.events(await demo.userToken("agent1"));
  const removed = once(stream, "contact", 5000, (c) => c.change === "removed");
  const removedIo = once(agent, "contact", 5000, (c) => c.change === "removed");
  await data(alice, "removeContact", { userId: "agent1" });
  assert.equal((await removed).user.id, "alice");
  assert.equal((await removedIo).user.id, "alice");
  assert.equal(await errorCode(alice, "getPresence", { userIds: ["agent1"] }), "forbidden");
  let leaked = false;
  alice.on("presence", (q) => (leaked = leaked || q.userId === "agent1"));
  await data(agent, "setPresence", { show: "chat" });
  await new Promise((ok) => setTimeout(ok, 300));
  assert.equal(leaked, false, "a removed contact still sees presence");

  assert.equal(await errorCode(alice, "addContact", { userId: "alice" }), "invalid_argument");
  assert.equal(await errorCode(alice, "addContact", {}), "invalid_argument");
  assert.equal(await errorCode(alice, "addContact", { userId: "ghost" }), "not_found");
  stream.close();
  alice.close();
  agent.close();
});

test("setProfile and deleteProfileProperty are pushed to the contacts (REST call, Socket.IO and SSE pushes)", async () => {
  const bob = await demo.connect("bob"); // alice's contact in the demo
  const agent = await demo.connect("agent2"); // nobody's contact
  const stream = await demo.events(await demo.userToken("carol"));
  let stranger = false;
  agent.on("profile", () => (stranger = true));

  const pushed = once(bob, "profile", 5000, (p) => p.user.id === "alice" && p.user.properties?.title === "CTO");
  const pushedSse = once(stream, "profile", 5000, (p) => p.user.id === "alice");
  const tok = await demo.userToken("alice");
  const set = await rest("PATCH", "/v1/profile", tok, { properties: { title: "CTO", city: "Oslo" } });
  assert.equal(set.status, 200);
  assert.deepEqual(set.data.user.properties, { title: "CTO", city: "Oslo" });
  await pushed;
  assert.equal((await pushedSse).user.properties.city, "Oslo");

  const gone = once(bob, "profile", 5000, (p) => p.user.id === "alice" && p.user.properties?.city === undefined);
  const del = await rest("DELETE", "/v1/profile/properties/city", tok);
  assert.equal(del.status, 200);
  assert.deepEqual(del.data.user.properties, { title: "CTO" });
  await gone;
  const bobs = await data(bob, "getContacts", {});
  assert.equal(bobs.items.find((u) => u.id === "alice").properties.title, "CTO");

  assert.equal((await rest("PATCH", "/v1/profile", tok, { properties: { "a b": "x" } })).error.code, "invalid_argument");
  assert.equal((await rest("PATCH", "/v1/profile", tok, { properties: {} })).error.code, "invalid_argument");
  assert.equal(await errorCode(bob, "deleteProfileProperty", { name: "" }), "invalid_argument");
  assert.equal(stranger, false, "a user who is no contact got the profile");
  stream.close();
  bob.close();
  agent.close();
});

test("anonymous visitors may not use the people operations", async () => {
  const r = await fetch(demo.backend + "/visitor", {
    method: "POST",
    headers: { "content-type": "application/json", origin: demo.url },
    body: JSON.stringify({ name: "Dana" }),
  });
  assert.equal(r.status, 200);
  const { userToken } = await r.json();
  const v = await demo.socket({ userToken }, { extraHeaders: { Origin: demo.url }, transports: ["polling"], reconnection: false });
  for (const [op, payload] of [
    ["searchUsers", { query: "a" }],
    ["addContact", { userId: "alice" }],
    ["removeContact", { userId: "alice" }],
    ["setProfile", { properties: { a: "b" } }],
    ["deleteProfileProperty", { name: "a" }],
  ]) {
    assert.equal((await call(v, op, payload)).error.code, "forbidden", op);
  }
  v.close();
});

test("REST + SSE log-off: DELETE /v1/events/{streamId} ends the stream and presence is offline at once", async () => {
  const bob = await demo.connect("bob");
  const aliceTok = await demo.userToken("alice");
  const online = once(bob, "presence", 5000, (p) => p.userId === "alice" && p.show === "available");
  const stream = await demo.events(aliceTok);
  const { streamId } = stream.ready;
  assert.ok(streamId, JSON.stringify(stream.ready));
  await online;

  // Another user cannot end it: not_found, as for a stream that never existed.
  const other = await rest("DELETE", `/v1/events/${encodeURIComponent(streamId)}`, await demo.userToken("carol"));
  assert.equal(other.status, 404);
  assert.equal(other.error.code, "not_found");

  // Offline long before the resume window (sse.resumeWindow, 2 minutes) would end it.
  const offline = once(bob, "presence", 3000, (p) => p.userId === "alice" && p.show === "offline");
  const ended = once(stream, "end", 3000);
  const off = await rest("DELETE", `/v1/events/${encodeURIComponent(streamId)}`, aliceTok);
  assert.equal(off.status, 200, JSON.stringify(off));
  assert.deepEqual(off.data, { streamId, ended: true });
  await offline;
  await ended;
  const again = await rest("DELETE", `/v1/events/${encodeURIComponent(streamId)}`, aliceTok);
  assert.equal(again.status, 404);
  assert.equal(again.error.code, "not_found");
  stream.close();
  bob.close();
});
