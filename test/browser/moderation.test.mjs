// Public threads and moderation in the demo web app (issue 15, items 4 and
// 5), in Debian's chromium through playwright-core against a real `ecb
// demo`: bob joins the seeded public Lobby; alice, the owner of a group
// thread, deletes bob's message and removes carol, who sees the thread go.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, bodies, say, snap, exact } from "./harness.mjs";

const demo = new BrowserDemo("ecb-browser-moderation-");

before(() => demo.start());
after(() => demo.stop());

const signedIn = (user) => demo.signedIn(user, { viewport: { width: 1180, height: 760 } });



test("bob joins the public Lobby; alice deletes a message and removes carol", async () => {
  const alice = await signedIn("alice");
  const bob = await signedIn("bob");
  const carol = await signedIn("carol");
  try {
    // The Lobby is offered to join, and joining opens it.
    const join = bob.page.getByRole("button", { name: "Join Lobby" });
    await join.waitFor();
    await snap(bob, "20-public-threads");
    await join.click();
    await bob.page.locator(".thread-item", { hasText: "Lobby" }).waitFor();
    await join.waitFor({ state: "detached" });
    await say(bob, "Hello, Lobby!");
    await snap(bob, "20-lobby-joined");

    // alice's group thread with bob and carol.
    await alice.page.getByRole("button", { name: "New thread" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "New thread" });
    await dialog.getByLabel("Bob").check();
    await dialog.getByLabel("Carol").check();
    await dialog.getByLabel("Subject").fill("Moderated");
    await dialog.getByLabel("First message").fill("Welcome, both.");
    await dialog.getByRole("button", { name: "Create thread" }).click();
    await bodies(alice, "Welcome, both.").waitFor();
    const bobItem = bob.page.locator(".thread-item", { hasText: "Moderated" });
    await bobItem.waitFor();
    await bobItem.click();
    await say(bob, "This message will be deleted.");
    const carolItem = carol.page.locator(".thread-item", { hasText: "Moderated" });
    await carolItem.waitFor();
    await carolItem.click();
    await bodies(carol, "This message will be deleted.").waitFor();

    // The owner deletes bob's message: gone on every page, its place kept.
    await bodies(alice, "This message will be deleted.").waitFor();
    const msg = alice.page.locator("#messages .msg", { hasText: "This message will be deleted." });
    await msg.getByRole("button", { name: "Delete message" }).click();
    await alice.page.locator("#messages .msg-deleted").waitFor();
    await carol.page.locator("#messages .msg-deleted", { hasText: "Message deleted" }).waitFor();
    await bodies(carol, "This message will be deleted.").waitFor({ state: "detached" });
    await bob.page.locator("#messages .msg-deleted").waitFor();
    // A member without the admin bit gets no delete button on others' messages.
    assert.equal(await carol.page.locator("#messages .msg", { hasText: "Welcome, both." }).getByRole("button", { name: "Delete message" }).count(), 0);
    await snap(alice, "21-message-deleted");

    // The owner removes carol: her page drops the thread at once and says why.
    const panel = alice.page.locator("#members-panel");
    await panel.getByRole("button", { name: "Remove Carol" }).click();
    await carolItem.waitFor({ state: "detached" });
    await carol.page.getByText("Alice removed you from Moderated.").waitFor();
    await panel.locator('.member[data-user-id="carol"]').waitFor({ state: "detached" });
    await alice.page.locator(".notice", { hasText: "Carol was removed by Alice" }).waitFor();
    assert.equal(await bob.page.getByRole("button", { name: "Remove Carol" }).count(), 0, "only moderators remove members");
    await snap(carol, "22-removed");
    await snap(alice, "22-member-removed");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await alice.context.close();
    await bob.context.close();
    await carol.context.close();
  }
});
