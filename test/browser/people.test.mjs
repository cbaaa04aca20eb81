// People in the demo web app (protocol 1.3), in a real browser against a
// real `ecb demo`: alice's "New thread" dialog searches users, adds Agent
// One as a contact (agent1's contact list shows alice at once, and alice
// may now start a thread with them), then removes the contact again.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, snap } from "./harness.mjs";

const demo = new BrowserDemo("ecb-browser-people-");

before(() => demo.start());
after(() => demo.stop());

const signedIn = (user) => demo.signedIn(user);

test("the New thread dialog searches users; adding and removing a contact shows on both sides at once", async () => {
  const alice = await signedIn("alice");
  const agent = await signedIn("agent1");
  try {
    const aliceInAgentsList = agent.page.locator('#contacts .contact[data-user-id="alice"]');
    assert.equal(await aliceInAgentsList.count(), 0, "agent1 starts without contacts");

    await alice.page.getByRole("button", { name: "New thread" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "New thread" });
    assert.equal(await dialog.getByLabel("Agent One").count(), 0, "Agent One is no contact yet");
    await dialog.getByLabel("Find people").fill("agent");
    const results = dialog.getByRole("list", { name: "People found" });
    const one = results.locator('.search-result[data-user-id="agent1"]');
    await one.waitFor();
    assert.equal(await results.locator(".search-result").count(), 2, "Agent One and Agent Two match");
    await snap(alice, "people-01-search");

    await one.getByRole("button", { name: "Add contact" }).click();
    await one.getByRole("button", { name: "Remove contact" }).waitFor();
    // agent1's page learns it from the contact push, without a reload.
    await aliceInAgentsList.waitFor();
    // alice may now start a thread with Agent One from the same dialog.
    await dialog.getByLabel("Agent One").check();
    await dialog.getByLabel("First message").fill("Hello, new contact!");
    await snap(alice, "people-02-added");
    await dialog.getByRole("button", { name: "Create thread" }).click();
    await agent.page.locator(".thread-item", { hasText: "Hello, new contact!" }).waitFor();

    await alice.page.getByRole("button", { name: "New thread" }).click();
    await dialog.getByLabel("Find people").fill("Agent One");
    await one.getByRole("button", { name: "Remove contact" }).click();
    await one.getByRole("button", { name: "Add contact" }).waitFor();
    await aliceInAgentsList.waitFor({ state: "detached" });
    assert.equal(await dialog.getByLabel("Agent One").count(), 0, "Agent One left alice's contacts");
    await snap(agent, "people-03-removed");

    // An empty search shows nothing and asks nothing.
    await dialog.getByLabel("Find people").fill("   ");
    await results.waitFor({ state: "hidden" });
    assert.deepEqual(demo.pageErrors, []);
  } finally {
    await alice.context.close();
    await agent.context.close();
  }
});
