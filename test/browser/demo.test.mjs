// The demo web app in a real browser: Debian's chromium through
// playwright-core, against a real `ecb demo` built from this repository.
// Two browser contexts (alice, bob) chat live; then bob goes offline, writes,
// comes back, and the message arrives exactly once. Then the live features:
// presence dots, the typing indicator, read ticks, and a group thread.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, contrast, snap } from "./harness.mjs";

const demo = new BrowserDemo("ecb-browser-");

before(() => demo.start());
after(() => demo.stop());

async function openAs(user) {
  const w = await demo.newPage(user, {
    viewport: { width: 1180, height: 760 },
    // Failed requests are checked by URL; while offline, failing ones are
    // expected, and the test's wrong password is refused on purpose.
    expected: (kind, text, r) => (kind === "console" && text.startsWith("Failed to load resource")) ||
      (kind === "response" && r.status() === 401 && text.endsWith("/login")),
  });
  await w.page.locator(`#user-${user}`).check();
  return w;
}

async function signIn(w) {
  await assert.doesNotReject(async () => {
    const pw = w.page.getByLabel("Password");
    assert.equal(await pw.inputValue(), w.user, "the password is prefilled with the demo's hint");
  });
  await w.page.getByRole("button", { name: "Sign in" }).click();
  await w.page.locator('#conn[data-state="connected"]').waitFor();
}

/** The message bodies shown in the open thread with exactly this text. */
function bodies(w, text) {
  return w.page.locator("#messages .msg-body", { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) });
}

test("alice and bob chat live; a message written offline arrives exactly once", async () => {
  const alice = await openAs("alice");
  const bob = await openAs("bob");
  try {
    // Login screen: the seeded users from the backend's GET /users.
    const names = await alice.page.locator("#user-list .user-name").allTextContents();
    for (const n of ["Alice", "Bob", "Carol"]) assert.ok(names.includes(n), `login lists ${n}: ${names}`);
    await snap(alice, "01-login");

    // A refused login is shown to the person.
    await alice.page.getByLabel("Password").fill("wrong");
    await alice.page.getByRole("button", { name: "Sign in" }).click();
    await alice.page.getByRole("alert").filter({ hasText: "Wrong user name or password" }).waitFor();
    await snap(alice, "02-login-refused");
    await alice.page.getByLabel("Password").fill("alice");
    await signIn(alice);
    await signIn(bob);
    await bob.page.locator("#thread-empty").waitFor();
    await snap(bob, "03-signed-in");

    // alice starts a thread with bob.
    await alice.page.getByRole("button", { name: "New thread" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "New thread" });
    await dialog.getByLabel("Bob").check();
    await dialog.getByLabel("Subject").fill("Project kickoff");
    await dialog.getByLabel("First message").fill("Hi Bob, ready for the kickoff tomorrow?");
    await snap(alice, "04-new-thread-dialog");
    await dialog.getByRole("button", { name: "Create thread" }).click();
    await bodies(alice, "Hi Bob, ready for the kickoff tomorrow?").waitFor();

    // bob sees the thread appear live, without reloading.
    const bobThread = bob.page.locator(".thread-item", { hasText: "Project kickoff" });
    await bobThread.waitFor();
    await bobThread.click();
    await bodies(bob, "Hi Bob, ready for the kickoff tomorrow?").waitFor();

    // alice writes again; bob sees it live. bob answers; alice sees it.
    await alice.page.getByLabel("Message", { exact: true }).fill("I'll bring the slides.");
    await alice.page.getByLabel("Message", { exact: true }).press("Enter");
    await bodies(bob, "I'll bring the slides.").waitFor();
    await bob.page.getByLabel("Message", { exact: true }).fill("Yes! Let's start at 10.");
    await bob.page.getByRole("button", { name: "Send" }).click();
    await bodies(alice, "Yes! Let's start at 10.").waitFor();
    await snap(alice, "05-chat");
    await snap(bob, "05-chat");

    // bob goes offline and writes: the message is queued, visibly.
    await bob.context.setOffline(true);
    await bob.page.locator('#conn[data-state="offline"]').waitFor();
    const offlineText = "Written on the train, no signal.";
    await bob.page.getByLabel("Message", { exact: true }).fill(offlineText);
    await bob.page.getByLabel("Message", { exact: true }).press("Enter");
    const pending = bob.page.locator(".msg.pending", { hasText: offlineText });
    await pending.locator(".msg-status", { hasText: "Queued" }).waitFor();
    await bob.page.locator("#conn", { hasText: "1 message queued" }).waitFor();
    await snap(bob, "06-offline-queued");

    // Back online: it is sent once, and alice gets it once.
    await bob.context.setOffline(false);
    await bob.page.locator('#conn[data-state="connected"]').waitFor();
    await pending.waitFor({ state: "detached" });
    await bodies(alice, offlineText).waitFor();
    // A marker after it: were the message delivered twice, the copy would come before the marker.
    await bob.page.getByLabel("Message", { exact: true }).fill("Back online.");
    await bob.page.getByLabel("Message", { exact: true }).press("Enter");
    await bodies(alice, "Back online.").waitFor();
    assert.equal(await bodies(alice, offlineText).count(), 1, "alice shows it once");
    assert.equal(await bodies(bob, offlineText).count(), 1, "bob shows it once");
    await snap(alice, "07-after-reconnect");
    await snap(bob, "07-after-reconnect");

    // And the backend stored it once (REST, as bob).
    const login = await (
      await fetch(`${demo.backend}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "bob", password: "bob" }) })
    ).json();
    const tok = (await (await fetch(`${demo.url}/v1/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ accessToken: login.accessToken }) })).json()).data.userToken;
    const threads = (await (await fetch(`${demo.url}/v1/threads`, { headers: { authorization: `Bearer ${tok}` } })).json()).data.items;
    const t = threads.find((x) => x.thread.subject === "Project kickoff");
    assert.ok(t, "bob's threads include the kickoff");
    const page = (
      await (await fetch(`${demo.url}/v1/threads/${t.thread.id}?limit=200`, { headers: { authorization: `Bearer ${tok}`, "ecb-thread-token": t.threadToken } })).json()
    ).data;
    const stored = page.messages.map((m) => m.body);
    assert.equal(stored.filter((b) => b === offlineText).length, 1, `stored once: ${JSON.stringify(stored)}`);
    assert.deepEqual(stored, [
      "Hi Bob, ready for the kickoff tomorrow?",
      "I'll bring the slides.",
      "Yes! Let's start at 10.",
      offlineText,
      "Back online.",
    ]);
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});

test("older history loads when scrolling to the top", async () => {
  // bob wrote 45 messages to alice over REST before she signs in.
  const api = async (method, path, token, body, threadToken) => {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (threadToken) headers["ecb-thread-token"] = threadToken;
    for (let attempt = 0; ; attempt++) {
      const env = await (await fetch(demo.url + path, { method, headers, body: body && JSON.stringify(body) })).json();
      // 45 sends in a row can exceed the user's operations per second: wait as ECB says.
      if (env.error?.code === "rate_limited" && attempt < 5) {
        await new Promise((r) => setTimeout(r, (env.error.retryAfter ?? 1) * 1000));
        continue;
      }
      assert.ok(env.data, JSON.stringify(env.error));
      return env.data;
    }
  };
  const alice = await openAs("alice");
  try {
    const access = (
      await (await fetch(`${demo.backend}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "bob", password: "bob" }) })).json()
    ).accessToken;
    const tok = (await api("POST", "/v1/token", null, { accessToken: access })).userToken;
    const created = await api("POST", "/v1/threads", tok, { participants: ["alice"], subject: "Long history", message: { body: "history 0" } });
    let threadToken = created.threadToken;
    for (let i = 1; i < 45; i++) {
      threadToken = (await api("POST", `/v1/threads/${created.thread.id}/messages`, tok, { body: `history ${i}` }, threadToken)).threadToken;
    }
    await signIn(alice);
    const item = alice.page.locator(".thread-item", { hasText: "Long history" });
    await item.waitFor();
    await item.click();
    await bodies(alice, "history 44").waitFor();
    await alice.page.locator("#load-older").waitFor();
    assert.equal(await alice.page.locator("#messages .msg-body").count(), 30, "the newest 30 first");
    assert.equal(await bodies(alice, "history 0").count(), 0);
    // Scrolling to the top loads the older ones.
    await alice.page.locator("#scroller").evaluate((el) => el.scrollTo(0, 0));
    await bodies(alice, "history 0").waitFor();
    assert.equal(await alice.page.locator("#messages .msg-body").count(), 45);
    await alice.page.locator("#history-start").waitFor();
    await snap(alice, "08-history");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
  }
});

/** The presence dot of a user in the contact list. */
function contactDot(w, user) {
  return w.page.locator(`.contact[data-user-id="${user}"] .dot`);
}

async function typeInComposer(w, text) {
  await w.page.getByLabel("Message", { exact: true }).pressSequentially(text, { delay: 20 });
}

async function newThread(w, people, subject, body) {
  await w.page.getByRole("button", { name: "New thread" }).click();
  const dialog = w.page.getByRole("dialog", { name: "New thread" });
  for (const p of people) await dialog.getByLabel(p).check();
  await dialog.getByLabel("Subject").fill(subject);
  await dialog.getByLabel("First message").fill(body);
  await dialog.getByRole("button", { name: "Create thread" }).click();
  await bodies(w, body).waitFor();
}

test("presence dots, the typing indicator and read ticks", async () => {
  const alice = await openAs("alice");
  let bob;
  try {
    await signIn(alice);
    // bob is not signed in: grey.
    await contactDot(alice, "bob").and(alice.page.locator('[data-show="offline"]')).waitFor();

    // bob signs in: his dot turns green in alice's contacts.
    bob = await openAs("bob");
    await signIn(bob);
    await contactDot(alice, "bob").and(alice.page.locator('[data-show="available"]')).waitFor();
    await alice.page.locator('.contact[data-user-id="bob"] .presence-text', { hasText: /^Available$/ }).waitFor();
    await snap(alice, "10-presence-online");

    // bob is away, with a status: alice sees both.
    await bob.page.getByLabel("Your presence").selectOption("away");
    await bob.page.getByLabel("Status message").fill("In a meeting until 3");
    await bob.page.getByLabel("Status message").press("Enter");
    await contactDot(alice, "bob").and(alice.page.locator('[data-show="away"]')).waitFor();
    await alice.page.locator('.contact[data-user-id="bob"] .presence-text', { hasText: "Away · In a meeting until 3" }).waitFor();
    await snap(alice, "10-presence-away");
    await snap(bob, "10-presence-away");

    // Read ticks: alice writes; ✓ until bob opens the thread, then ✓✓.
    await newThread(alice, ["Bob"], "Design review", "The new mockups are in the shared folder.");
    const tick = alice.page.locator(".msg.mine", { hasText: "The new mockups are in the shared folder." }).locator(".tick");
    await tick.and(alice.page.locator('[data-state="sent"]')).waitFor();
    // The tick is small: it needs the contrast of text (4.5:1) on the author's bubble.
    assert.ok((await contrast(tick)) >= 4.5, `the sent tick's contrast is ${await contrast(tick)}`);
    await alice.page.locator(".thread-sub", { hasText: "Away · In a meeting until 3" }).waitFor();
    await snap(alice, "12-read-sent");
    const bobThread = bob.page.locator(".thread-item", { hasText: "Design review" });
    await bobThread.locator(".badge").waitFor(); // unread until he opens it
    await bobThread.click();
    await bodies(bob, "The new mockups are in the shared folder.").waitFor();
    await tick.and(alice.page.locator('[data-state="read"]')).waitFor();
    assert.equal(await tick.getAttribute("aria-label"), "Read by Bob");
    assert.ok((await contrast(tick)) >= 4.5, `the read tick's contrast is ${await contrast(tick)}`);
    await snap(alice, "12-read-seen");

    // Typing: bob types, alice sees it in the thread (and in her list); sending ends it.
    const indicator = alice.page.locator("#typing", { hasText: "Bob is typing…" });
    await typeInComposer(bob, "Love the colours. One question about");
    await indicator.waitFor();
    await alice.page.locator(".thread-item-preview.is-typing", { hasText: "Bob is typing…" }).waitFor();
    await snap(alice, "11-typing");
    await typeInComposer(bob, " the header.");
    await bob.page.getByLabel("Message", { exact: true }).press("Enter");
    await bodies(alice, "Love the colours. One question about the header.").waitFor();
    await indicator.waitFor({ state: "hidden" });
    // alice has the thread open: bob's message shows as read on his side.
    const bobTick = bob.page.locator(".msg.mine", { hasText: "One question about the header." }).locator(".tick");
    await bobTick.and(bob.page.locator('[data-state="read"]')).waitFor();
    await snap(bob, "12-read-seen");
    await snap(alice, "11-typing-done");

    // bob closes his page: alice sees him offline, with when he was last seen.
    await bob.context.close();
    bob = undefined;
    await contactDot(alice, "bob").and(alice.page.locator('[data-show="offline"]')).waitFor();
    await alice.page.locator('.contact[data-user-id="bob"] .presence-text', { hasText: "Offline · last seen" }).waitFor();
    await alice.page.locator(".thread-sub", { hasText: "Offline" }).waitFor();
    await snap(alice, "10-presence-offline");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
    await bob?.context.close();
  }
});

test("a group thread: alice adds carol, who shows as a member, writes, and leaves", async () => {
  const alice = await openAs("alice");
  const carol = await openAs("carol");
  try {
    await signIn(alice);
    await signIn(carol);
    await newThread(alice, ["Bob"], "Launch plan", "Draft of the launch plan is ready.");
    // Owners may add people; the 1:1 thread has no member panel yet.
    assert.equal(await alice.page.locator("#members-panel").isVisible(), false);
    await alice.page.getByRole("button", { name: "Add people" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "Add people" });
    await dialog.getByLabel("Carol").check();
    await snap(alice, "13-group-add");
    await dialog.getByRole("button", { name: "Add", exact: true }).click();
    await dialog.waitFor({ state: "hidden" });

    // alice: a member panel with carol (online), a notice, the count.
    const panel = alice.page.locator("#members-panel");
    await panel.locator('.member[data-user-id="carol"] .dot[data-show="available"]').waitFor();
    assert.equal(await panel.locator("#members-count").textContent(), "3");
    assert.deepEqual(await panel.locator(".member-name").allTextContents(), ["Alice (you)", "Carol", "Bob"]);
    await alice.page.locator(".notice", { hasText: "Carol joined the thread" }).waitFor();

    // carol: the thread appears live; she sees the members and the history, and writes.
    const item = carol.page.locator(".thread-item", { hasText: "Launch plan" });
    await item.waitFor();
    await item.click();
    await bodies(carol, "Draft of the launch plan is ready.").waitFor();
    const carolPanel = carol.page.locator("#members-panel");
    await carolPanel.locator('.member[data-user-id="alice"] .dot[data-show="available"]').waitFor();
    assert.deepEqual((await carolPanel.locator(".member").evaluateAll((els) => els.map((e) => e.dataset.userId))).sort(), ["alice", "bob", "carol"]);
    assert.equal(await carol.page.getByRole("button", { name: "Add people" }).isVisible(), false, "only owners add people");
    await carol.page.getByLabel("Message", { exact: true }).fill("Thanks for adding me! I'll take the press release.");
    await carol.page.getByLabel("Message", { exact: true }).press("Enter");
    await bodies(alice, "Thanks for adding me! I'll take the press release.").waitFor();
    await alice.page.getByLabel("Message", { exact: true }).fill("Great, thank you Carol.");
    await alice.page.getByLabel("Message", { exact: true }).press("Enter");
    await bodies(carol, "Great, thank you Carol.").waitFor();
    await snap(alice, "13-group");
    await snap(carol, "13-group");

    // carol leaves: the thread goes from her list, alice sees her leave.
    await carol.page.getByRole("button", { name: "Leave thread" }).click();
    await carol.page.getByRole("dialog", { name: "Leave thread?" }).getByRole("button", { name: "Leave" }).click();
    await item.waitFor({ state: "detached" });
    await carol.page.locator("#thread-empty").waitFor();
    await alice.page.locator(".notice", { hasText: "Carol left the thread" }).waitFor();
    await panel.locator('.member[data-user-id="carol"]').waitFor({ state: "detached" });
    assert.equal(await panel.locator("#members-count").textContent(), "2");
    await snap(alice, "13-group-left");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
    await carol.context.close();
  }
});
