// Edits, reactions, replies and message search in the demo web app (issue
// 16, items 1, 2, 3 and 7), in Debian's chromium through playwright-core
// against a real `ecb demo`: alice edits her message and bob sees the new
// text marked "(edited)"; bob reacts and takes it back, alice sees the count
// come and go; bob replies and both see the quote (alice again after a
// reload, from the history); alice searches a word and the hit opens its thread;
// alice mentions bob, who is reading another thread.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, bodies, say, snap, exact } from "./harness.mjs";

const demo = new BrowserDemo("ecb-browser-messages-");

before(() => demo.start());
after(() => demo.stop());

const signedIn = (user) => demo.signedIn(user, { viewport: { width: 1180, height: 760 } });

/** The message item whose own body is exactly text (a reply's quote of it does not count). */
const message = (w, text) => w.page.locator("#messages .msg").filter({ has: w.page.locator(".msg-body", { hasText: exact(text) }) });
const chip = (w, text, reaction) => message(w, text).locator(`.reaction[data-reaction="${reaction}"]`);


async function newThread(w, subject, first) {
  await w.page.getByRole("button", { name: "New thread" }).click();
  const dialog = w.page.getByRole("dialog", { name: "New thread" });
  await dialog.getByLabel("Bob").check();
  await dialog.getByLabel("Subject").fill(subject);
  await dialog.getByLabel("First message").fill(first);
  await dialog.getByRole("button", { name: "Create thread" }).click();
  await bodies(w, first).waitFor();
}

test("alice edits, bob reacts and replies, alice finds a message by search", async () => {
  const alice = await signedIn("alice");
  const bob = await signedIn("bob");
  try {
    await newThread(alice, "Fruit", "Hello Bob.");
    const bobItem = bob.page.locator(".thread-item", { hasText: "Fruit" });
    await bobItem.waitFor();
    await bobItem.click();
    await bodies(bob, "Hello Bob.").waitFor();

    // 1. alice edits her message: both see the new text, marked (edited); the old text is gone.
    await say(alice, "I like apples.");
    await bodies(bob, "I like apples.").waitFor();
    assert.equal(await message(bob, "I like apples.").getByRole("button", { name: "Edit message" }).count(), 0, "only the author edits");
    const input = alice.page.getByLabel("Message", { exact: true });
    // Escape takes an edit back: the text to edit leaves the composer with it.
    await message(alice, "I like apples.").getByRole("button", { name: "Edit message" }).click();
    await alice.page.locator("#composer-context", { hasText: "Editing your message" }).waitFor();
    await input.press("Escape");
    await alice.page.locator("#composer-context").waitFor({ state: "hidden" });
    assert.equal(await input.inputValue(), "", "a cancelled edit leaves the composer empty");
    await alice.page.getByRole("button", { name: "Send" }).waitFor();
    await message(alice, "I like apples.").getByRole("button", { name: "Edit message" }).click();
    await alice.page.locator("#composer-context", { hasText: "Editing your message" }).waitFor();
    assert.equal(await input.inputValue(), "I like apples.", "the composer holds the text to edit");
    await alice.page.getByRole("button", { name: "Save" }).waitFor();
    await input.fill("I like pineapples.");
    await snap(alice, "40-editing");
    await input.press("Enter");
    for (const w of [alice, bob]) {
      await message(w, "I like pineapples.").locator(".msg-edited", { hasText: exact("(edited)") }).waitFor();
      await bodies(w, "I like apples.").waitFor({ state: "detached" });
    }
    await alice.page.locator("#composer-context").waitFor({ state: "hidden" });
    assert.equal(await input.inputValue(), "", "the composer is empty after the edit");
    assert.equal(await message(bob, "Hello Bob.").locator(".msg-edited").count(), 0, "an unedited message has no mark");
    await snap(bob, "40-edited");

    // 2. bob reacts: alice sees the chip with 1, bob's is marked as his; he takes it back and it goes.
    await message(bob, "I like pineapples.").getByRole("button", { name: "Add reaction" }).click();
    await bob.page.getByRole("button", { name: "React with 👍" }).waitFor();
    await snap(bob, "41-picker");
    await bob.page.getByRole("button", { name: "React with 👍" }).click();
    await chip(bob, "I like pineapples.", "👍").and(bob.page.locator('[aria-pressed="true"]')).waitFor();
    await snap(bob, "41-reaction");
    // The picker went with the pick: the focus is on the chip, not lost.
    await bob.page.waitForFunction(() => document.activeElement?.dataset?.reaction === "👍");
    const seen = chip(alice, "I like pineapples.", "👍");
    await seen.locator(".reaction-count", { hasText: exact("1") }).waitFor();
    assert.equal(await seen.getAttribute("aria-pressed"), "false", "bob's reaction is not alice's");
    assert.equal(await chip(bob, "I like pineapples.", "👍").locator(".reaction-count").textContent(), "1");
    assert.equal(await bob.page.locator(".reaction-picker").count(), 0, "the picker closes once picked");
    await snap(alice, "41-reaction");
    // alice reacts too: 2 on both pages, each page marks its own.
    await seen.click();
    await chip(bob, "I like pineapples.", "👍").locator(".reaction-count", { hasText: exact("2") }).waitFor();
    await seen.and(alice.page.locator('[aria-pressed="true"]')).locator(".reaction-count", { hasText: exact("2") }).waitFor();
    await seen.click(); // and takes hers back
    await chip(bob, "I like pineapples.", "👍").locator(".reaction-count", { hasText: exact("1") }).waitFor();
    assert.equal(await chip(bob, "I like pineapples.", "👍").getAttribute("aria-pressed"), "true");
    await chip(bob, "I like pineapples.", "👍").click();
    for (const w of [alice, bob]) await chip(w, "I like pineapples.", "👍").waitFor({ state: "detached" });
    // By keyboard: Enter opens the picker on its first reaction, Escape closes it back to the button.
    const reactButton = message(bob, "Hello Bob.").getByRole("button", { name: "Add reaction" });
    await reactButton.focus();
    await bob.page.keyboard.press("Enter");
    await bob.page.waitForFunction(() => document.activeElement?.getAttribute("aria-label") === "React with 👍");
    assert.equal(await reactButton.getAttribute("aria-expanded"), "true");
    await bob.page.keyboard.press("Escape");
    await bob.page.locator(".reaction-picker").waitFor({ state: "detached" });
    await bob.page.waitForFunction(() => document.activeElement?.getAttribute("aria-label") === "Add reaction");
    assert.equal(await reactButton.getAttribute("aria-expanded"), "false");

    // 3. bob replies to alice's message: both see the quote above his text. Escape first takes a reply back.
    await message(bob, "I like pineapples.").getByRole("button", { name: "Reply" }).click();
    await bob.page.locator("#composer-context", { hasText: "Replying to Alice" }).waitFor();
    await bob.page.getByLabel("Message", { exact: true }).press("Escape");
    await bob.page.locator("#composer-context").waitFor({ state: "hidden" });
    await message(bob, "I like pineapples.").getByRole("button", { name: "Reply" }).click();
    await bob.page.locator("#composer-context", { hasText: "Replying to Alice: I like pineapples." }).waitFor();
    await say(bob, "Me too!");
    await bob.page.locator("#composer-context").waitFor({ state: "hidden" });
    for (const w of [alice, bob]) {
      const quote = message(w, "Me too!").locator(".msg-quote");
      await quote.waitFor();
      assert.equal(await quote.locator(".msg-quote-author").textContent(), w === alice ? "You" : "Alice");
      assert.equal(await quote.locator(".msg-quote-text").textContent(), "I like pineapples.");
    }
    assert.equal(await message(alice, "I like pineapples.").locator(".msg-quote").count(), 0, "a message that replies to nothing has no quote");
    // The quote leads to the message it quotes.
    await message(bob, "Me too!").locator(".msg-quote").click();
    await bob.page.locator("#messages .msg.flash").filter({ has: bob.page.locator(".msg-body", { hasText: exact("I like pineapples.") }) }).waitFor();
    await snap(alice, "42-reply");

    // The history keeps all of it: after a reload alice sees the edit mark and the quote again.
    await alice.page.reload();
    await alice.page.locator('#conn[data-state="connected"]').waitFor();
    await alice.page.locator(".thread-item", { hasText: "Fruit" }).click();
    await message(alice, "I like pineapples.").locator(".msg-edited").waitFor();
    await message(alice, "Me too!").locator(".msg-quote-text", { hasText: exact("I like pineapples.") }).waitFor();

    // 4. alice, in another thread, searches a word: the hit names its thread, and opens it.
    await newThread(alice, "Weather", "Sunny today.");
    await alice.page.locator("#thread-title", { hasText: exact("Weather") }).waitFor();
    await alice.page.getByLabel("Search messages").fill("pineapples");
    const hits = alice.page.locator("#msg-search-results .msg-hit");
    await hits.first().waitFor();
    assert.equal(await hits.count(), 1, "one message has the word");
    assert.equal(await hits.locator(".msg-hit-thread").textContent(), "Fruit");
    assert.equal(await hits.locator(".msg-hit-body").textContent(), "You: I like pineapples.");
    await snap(alice, "43-search");
    await hits.click();
    await alice.page.locator("#thread-title", { hasText: exact("Fruit") }).waitFor();
    await alice.page.locator("#messages .msg.flash").filter({ has: alice.page.locator(".msg-body", { hasText: exact("I like pineapples.") }) }).waitFor();
    await alice.page.getByLabel("Search messages").fill("bananas");
    await alice.page.locator("#msg-search-results", { hasText: "No messages found." }).waitFor();
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});

/** Calls ECB's client REST API as user (a userToken from the backend's demo login) and returns the answer's data. */
async function restAs(user) {
  const login = await fetch(`${demo.backend}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: user, password: user }) });
  const { accessToken } = await login.json();
  let token;
  const call = async (method, path, body, threadToken) => {
    for (;;) {
      const r = await fetch(demo.url + path, {
        method,
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...(threadToken ? { "ECB-Thread-Token": threadToken } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const env = await r.json();
      if (r.status === 429) {
        await new Promise((ok) => setTimeout(ok, (env.error?.retryAfter ?? 1) * 1000)); // the per-user rate limit
        continue;
      }
      assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(env)}`);
      return env.data;
    }
  };
  token = (await call("POST", "/v1/token", { accessToken })).userToken;
  return call;
}

test("a hit older than the first page opens its thread at the message", async () => {
  const alice = await signedIn("alice");
  try {
    // The word, then more messages after it than the thread's first page (30) shows.
    const call = await restAs("alice");
    const created = await call("POST", "/v1/threads", { participants: ["bob"], subject: "Archive", message: { body: "The needle is here." } });
    for (let i = 1; i <= 35; i++) await call("POST", `/v1/threads/${created.thread.id}/messages`, { body: `hay ${i}` }, created.threadToken);
    await alice.page.locator(".thread-item", { hasText: "Archive" }).waitFor();

    await alice.page.getByLabel("Search messages").fill("needle");
    const hit = alice.page.locator("#msg-search-results .msg-hit");
    await hit.waitFor();
    assert.equal(await hit.count(), 1);
    await hit.click();
    await alice.page.locator("#thread-title", { hasText: exact("Archive") }).waitFor();
    await alice.page.locator("#messages .msg.flash").filter({ has: alice.page.locator(".msg-body", { hasText: exact("The needle is here.") }) }).waitFor();
    await bodies(alice, "hay 35").waitFor();
    await snap(alice, "44-search-older");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
  }
});

// Mentions (issue 16, item 5): alice writes "@bob" in a thread bob is not
// reading; bob's page, showing another thread, gets the mention push (it
// does not listen to that thread), badges the thread "@" and says who
// mentioned him; opening it clears the badge. A reload before reading shows
// the badge again, from getThreads' `mentioned`; once read, it stays gone.
test("alice mentions bob in a thread he is not reading: the @ badge, the notice, cleared by reading", async () => {
  const alice = await signedIn("alice");
  const bob = await signedIn("bob");
  try {
    await newThread(alice, "Plans", "Lunch on Friday?");
    await newThread(alice, "Other", "Something else.");
    const plans = bob.page.locator(".thread-item", { hasText: "Plans" });
    const other = bob.page.locator(".thread-item", { hasText: "Other" });
    await other.waitFor();
    await other.click();
    await bodies(bob, "Something else.").waitFor();
    const badge = plans.locator(".badge-mention");
    assert.equal(await badge.count(), 0, "no mention yet");

    await alice.page.locator(".thread-item", { hasText: "Plans" }).click();
    await say(alice, "@bob can you book the table?");
    await badge.waitFor();
    assert.equal(await badge.getAttribute("aria-label"), "you were mentioned");
    await bob.page.locator("#mention-notice", { hasText: "Alice mentioned you in Plans" }).waitFor();
    // A message that mentions nobody (an unknown name) adds no badge elsewhere.
    await alice.page.locator(".thread-item", { hasText: "Other" }).click();
    await say(alice, "@nobody here?");
    await bodies(bob, "@nobody here?").waitFor();
    assert.equal(await other.locator(".badge-mention").count(), 0, "an unknown @name mentions no one");

    // Not read yet: after a reload the badge comes from getThreads (`mentioned`).
    await bob.page.reload();
    await bob.page.locator('#conn[data-state="connected"]').waitFor();
    await bob.page.locator(".thread-item", { hasText: "Plans" }).locator(".badge-mention").waitFor();

    // Reading the thread clears it, here and after another reload.
    await bob.page.locator(".thread-item", { hasText: "Plans" }).click();
    const mentioning = message(bob, "@bob can you book the table?");
    await mentioning.waitFor();
    assert.match((await mentioning.getAttribute("class")) ?? "", /mentions-me/);
    await bob.page.locator(".thread-item", { hasText: "Plans" }).locator(".badge-mention").waitFor({ state: "detached" });
    await bob.page.waitForTimeout(500); // the read mark reaches the backend
    await bob.page.reload();
    await bob.page.locator('#conn[data-state="connected"]').waitFor();
    await bob.page.locator(".thread-item", { hasText: "Plans" }).waitFor();
    assert.equal(await bob.page.locator(".thread-item", { hasText: "Plans" }).locator(".badge-mention").count(), 0, "read: no badge after a reload");
    await snap(bob, "messages-mention");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});
