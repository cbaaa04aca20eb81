// Customer support in the demo web app, in real Chromium pages against a real
// `ecb demo`: agent1's console (availability, an offer with its countdown,
// accept, the chat, whispers, close), an anonymous visitor's widget (the
// reference backend's POST /visitor: status, question, queue, chat, end),
// the supervisor's view (live conversations, monitor), and a transfer
// between agents; an agent with two chats at once, and a conference
// (support.invite, support.leave); a billing question waiting in the billing
// queue for agent2 only (queues); the widget outside opening hours.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, contrast, exact, snap } from "./harness.mjs";

// Offers last 30 s: time to see the countdown move, far from a revoke by timeout mid-test.
const demo = new BrowserDemo("ecb-browser-support-", ["--set", "support.offerTimeout=30s"]);

before(() => demo.start());
after(() => demo.stop());

const newPage = (who) => demo.newPage(who);

/** A signed-in page of one of the demo's users (password = user name, prefilled). */
async function signedIn(user) {
  const w = await newPage(user);
  await w.page.locator(`#user-${user}`).check();
  await w.page.getByRole("button", { name: "Sign in" }).click();
  await w.page.locator('#conn[data-state="connected"]').waitFor();
  return w;
}

/** An anonymous visitor who opened the widget from the sign-in page and gave a name. */
async function visitorPage(name) {
  const w = await newPage(`visitor-${name}`);
  await w.page.getByRole("link", { name: "Chat with support" }).click();
  await w.page.getByLabel("Your name").fill(name);
  await w.page.getByRole("button", { name: "Start" }).click();
  await w.page.locator('#conn[data-state="connected"]').waitFor();
  return w;
}

/** Message bodies with exactly this text, in the signed-in app's open thread or in the visitor's widget. */
function bodies(w, text) {
  return w.page.locator("#messages .msg-body, #visitor-messages .msg-body", { hasText: exact(text) });
}

/** Closes the open support chat through its confirmation (an in-page dialog). */
async function closeChat(w) {
  await w.page.getByRole("button", { name: "Close chat" }).click();
  const dialog = w.page.getByRole("dialog", { name: "Close this chat?" });
  await dialog.getByRole("button", { name: "Close chat" }).click();
  await dialog.waitFor({ state: "hidden" });
}

async function write(w, label, text) {
  const box = w.page.getByLabel(label, { exact: true });
  await box.pressSequentially(text, { delay: 15 });
  await box.press("Enter");
}

/** Seconds left on the offer's countdown ("27 s"). */
async function secondsLeft(offer) {
  return Number((await offer.locator(".offer-countdown").textContent()).replace(/\D/g, ""));
}

test("a visitor asks, agent1 accepts within the countdown; chat with typing both ways, a whisper the visitor never sees, the supervisor watches, close", async () => {
  const agent = await signedIn("agent1");
  const sup = await signedIn("super");
  let visitor;
  try {
    // agent1's console: not taking chats until the switch is on.
    const status = agent.page.locator("#agent-status");
    await status.filter({ hasText: "Not taking chats" }).waitFor();
    await agent.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent.page.locator('#agent-status[data-available="true"]').filter({ hasText: "Taking chats" }).waitFor();
    await sup.page.locator("#conversations", { hasText: "No live conversations." }).waitFor();

    // The visitor: the entry on the sign-in page is in view at 1280×800, then the
    // workgroup's status (an agent free, nobody waiting: no wait to announce), then the question.
    const signIn = await newPage("visitor-entry");
    const box = await signIn.page.getByRole("link", { name: "Chat with support" }).boundingBox();
    assert.ok(box && box.y + box.height <= 800, `"Chat with support" is below the fold: ${JSON.stringify(box)}`);
    await snap(signIn, "19-sign-in");
    await signIn.context.close();
    visitor = await visitorPage("Dana");
    await visitor.page.locator('#visitor-status[data-open="true"][data-agents="1"]', { hasText: exact("Open · 1 agent available · nobody waiting") }).waitFor();
    await visitor.page.getByRole("heading", { name: "Customer support" }).waitFor();
    await snap(visitor, "20-support-ask");
    await visitor.page.getByLabel("How can we help?").fill("Where is my parcel? Order A-17.");
    await visitor.page.getByRole("button", { name: "Ask" }).click();
    await visitor.page.locator("#visitor-position", { hasText: "You are next in the queue." }).waitFor();
    await visitor.page.locator("#visitor-question-echo", { hasText: "Where is my parcel? Order A-17." }).waitFor();
    // One estimate on the page: the queue's own, not the workgroup's for a newcomer beside it.
    await visitor.page.locator('#visitor-status[data-step="queued"]').waitFor();
    const estimates = (await visitor.page.locator("#visitor").innerText()).match(/about \d+ (s|min)|no wait/g) ?? [];
    assert.ok(estimates.length <= 1, `the visitor sees ${estimates.length} wait estimates: ${estimates}`);
    await snap(visitor, "21-support-queued");

    // agent1 gets the offer: who, what, and a countdown that runs.
    const offer = agent.page.locator(".offer", { hasText: "Where is my parcel? Order A-17." });
    await offer.waitFor();
    await offer.locator(".offer-who", { hasText: "Dana" }).locator(".tag", { hasText: "guest" }).waitFor();
    const first = await secondsLeft(offer);
    assert.ok(first > 20 && first <= 30, `the countdown starts near the offer timeout: ${first}`);
    await agent.page.waitForFunction(
      ([sel, before]) => Number(document.querySelector(sel)?.textContent?.replace(/\D/g, "")) < before,
      [".offer .offer-countdown", first],
    );
    await snap(agent, "22-support-offer");
    await offer.getByRole("button", { name: "Accept" }).click();
    await offer.waitFor({ state: "detached" });

    // Both sides are in the chat. The agent's sidebar lists it once, among the support chats.
    await agent.page.locator(".support-item", { hasText: "Dana" }).waitFor();
    const threadId = await agent.page.locator(".support-item", { hasText: "Dana" }).getAttribute("data-thread-id");
    const listed = agent.page.locator(`nav [data-thread-id="${threadId}"]`);
    assert.equal(await listed.count(), 1, "the support chat is listed more than once in the sidebar");
    await agent.page.locator("#support-info", { hasText: "Dana" }).waitFor();
    await agent.page.locator("#thread-sub", { hasText: "Customer support · asked by Dana" }).waitFor();
    await agent.page.locator("#thread-title", { hasText: "Where is my parcel? Order A-17." }).waitFor();
    await visitor.page.locator("#visitor-with", { hasText: "You are chatting with Agent One" }).waitFor();

    // Typing and messages, both ways.
    const visitorTyping = agent.page.locator("#typing", { hasText: "Dana is typing…" });
    await visitor.page.getByLabel("Message to support", { exact: true }).pressSequentially("Hello, any news", { delay: 20 });
    await visitorTyping.waitFor();
    await agent.page.locator(".support-item .is-typing", { hasText: "Dana is typing…" }).waitFor();
    await visitor.page.getByLabel("Message to support", { exact: true }).pressSequentially(" about my parcel?", { delay: 10 });
    await visitor.page.getByLabel("Message to support", { exact: true }).press("Enter");
    await bodies(agent, "Hello, any news about my parcel?").waitFor();
    await visitorTyping.waitFor({ state: "hidden" });

    const agentTyping = visitor.page.locator("#visitor-typing", { hasText: "Agent One is typing…" });
    await agent.page.getByLabel("Message", { exact: true }).pressSequentially("Let me check that for you", { delay: 20 });
    await agentTyping.waitFor();
    await snap(visitor, "23-support-typing");
    await agent.page.getByLabel("Message", { exact: true }).press("Enter");
    await bodies(visitor, "Let me check that for you").waitFor();

    // The agent edits a message and reacts to the visitor's: the widget shows both live (and offers neither).
    const own = (w, list, text) => w.page.locator(`${list} .msg`).filter({ has: w.page.locator(".msg-body", { hasText: exact(text) }) });
    await own(agent, "#messages", "Let me check that for you").getByRole("button", { name: "Edit message" }).click();
    await agent.page.getByLabel("Message", { exact: true }).fill("Let me check that for you, one moment.");
    await agent.page.getByLabel("Message", { exact: true }).press("Enter");
    await own(visitor, "#visitor-messages", "Let me check that for you, one moment.").locator(".msg-edited", { hasText: "(edited)" }).waitFor();
    await own(agent, "#messages", "Hello, any news about my parcel?").getByRole("button", { name: "Add reaction" }).click();
    await agent.page.getByRole("button", { name: "React with 👍" }).click();
    await own(visitor, "#visitor-messages", "Hello, any news about my parcel?").locator('.reaction[data-reaction="👍"] .reaction-count', { hasText: exact("1") }).waitFor();
    assert.equal(await visitor.page.locator("#visitor-messages .msg-action, #visitor-messages button.reaction").count(), 0, "the widget offers no reply, reaction or edit");
    await write(agent, "Message", "Oops, wrong chat.");
    await bodies(visitor, "Oops, wrong chat.").waitFor();
    await own(agent, "#messages", "Oops, wrong chat.").getByRole("button", { name: "Delete message" }).click();
    await visitor.page.locator("#visitor-messages .msg-deleted", { hasText: "Message deleted" }).waitFor();
    await bodies(visitor, "Oops, wrong chat.").waitFor({ state: "detached" });

    // The supervisor sees the conversation live and monitors it.
    await sup.page.getByRole("button", { name: "Refresh" }).click();
    const conv = sup.page.locator(".conversation", { hasText: "Where is my parcel? Order A-17." });
    await conv.filter({ hasText: "with Agent One" }).filter({ hasText: "in chat" }).waitFor();
    assert.match(await conv.locator(".offer-who").textContent(), /^Dana/);
    await conv.getByRole("button", { name: "Monitor" }).click();
    await sup.page.locator("#monitor-note", { hasText: "Monitoring read-only" }).waitFor();
    assert.equal(await sup.page.locator("#composer").isVisible(), false, "a monitor cannot write");

    // A whisper: marked internal for the agent and the supervisor.
    await agent.page.getByLabel("Whisper").check();
    await write(agent, "Message", "Internal: VIP customer, refund if late.");
    const agentWhisper = agent.page.locator(".msg.whisper", { hasText: "Internal: VIP customer, refund if late." });
    await agentWhisper.locator(".whisper-tag", { hasText: "Internal · agents only" }).waitFor();
    await agentWhisper.and(agent.page.locator(":not(.pending)")).waitFor();
    const supWhisper = sup.page.locator(".msg.whisper", { hasText: "Internal: VIP customer, refund if late." });
    await supWhisper.locator(".whisper-tag").waitFor();
    await snap(agent, "24-support-whisper");
    await snap(sup, "24-support-monitor");

    // Then a public message: once the visitor has it, a whisper pushed to them would be there already.
    await agent.page.getByLabel("Whisper").uncheck();
    await write(agent, "Message", "Your parcel arrives tomorrow.");
    await bodies(visitor, "Your parcel arrives tomorrow.").waitFor();
    await bodies(sup, "Your parcel arrives tomorrow.").waitFor();
    assert.equal(await visitor.page.getByText("Internal: VIP customer", { exact: false }).count(), 0, "the whisper is not on the visitor's page");
    assert.deepEqual(await visitor.page.locator("#visitor-messages .msg-body").allTextContents(), [
      "Hello, any news about my parcel?",
      "Let me check that for you, one moment.",
      "Message deleted",
      "Your parcel arrives tomorrow.",
    ]);
    assert.equal(await agent.page.locator(".msg.whisper").count(), 1);
    // The visitor's read mark passes the whisper, yet it never shows as read by them.
    await agent.page.locator(".receipt", { hasText: "Read by Dana" }).waitFor();
    const readTick = agent.page.locator(".msg.mine:not(.whisper)", { hasText: "Your parcel arrives tomorrow." }).locator('.tick[data-state="read"]');
    assert.ok((await contrast(readTick)) >= 4.5, `the read tick's contrast is ${await contrast(readTick)}`);
    assert.equal(await agentWhisper.locator('.tick[data-state="sent"]').count(), 1);
    await snap(visitor, "25-support-chat");

    // agent1 closes the chat, after a confirmation (Keep chatting leaves it open): both
    // sides show it ended, once; it leaves the agent's open chats; the visitor has left.
    await agent.page.locator('#thread-head-avatar .dot[data-show="available"]').waitFor();
    await agent.page.getByRole("button", { name: "Close chat" }).click();
    const confirm = agent.page.getByRole("dialog", { name: "Close this chat?" });
    await confirm.getByRole("button", { name: "Keep chatting" }).click();
    await confirm.waitFor({ state: "hidden" });
    assert.equal(await agent.page.locator("#support-bar").isVisible(), true, "Keep chatting closed the chat");
    assert.equal(await visitor.page.getByLabel("Message to support", { exact: true }).isVisible(), true);
    await closeChat(agent);
    await agent.page.locator("#support-ended", { hasText: "This support chat has ended" }).waitFor();
    assert.equal(await agent.page.getByText("This support chat has ended", { exact: false }).count(), 1, "the agent is told twice");
    await visitor.page.locator("#visitor-ended-text", { hasText: "This chat has ended" }).waitFor();
    assert.equal(await visitor.page.getByLabel("Message to support", { exact: true }).isVisible(), false, "no more writing");
    await agent.page.locator(".support-item").waitFor({ state: "detached" });
    await agent.page.locator("#support-chats", { hasText: "No open support chats." }).waitFor();
    await agent.page.locator("#agent-status", { hasText: "Taking chats · 0 open chats" }).waitFor();
    assert.equal(await listed.count(), 1, "the ended chat is listed once, among the threads");
    assert.equal(await visitor.page.getByText("This chat has ended", { exact: false }).count(), 1, "the visitor is told twice");
    // The widget's part is over: it disconnects, and the agent sees the visitor offline.
    await agent.page.locator('#thread-head-avatar .dot[data-show="offline"]').waitFor();
    await agent.page.locator(`#threads [data-thread-id="${threadId}"] .dot[data-show="offline"]`).waitFor();
    await snap(agent, "26-support-closed");
    await snap(visitor, "26-support-closed");
    // The supervisor's list no longer has it; the monitored view says it ended.
    await sup.page.getByRole("button", { name: "Refresh" }).click();
    await conv.waitFor({ state: "detached" });
    await sup.page.locator("#support-ended", { hasText: "This support chat has ended" }).waitFor();
    assert.equal(await sup.page.getByText("This support chat has ended", { exact: false }).count(), 1, "the supervisor is told twice");

    // The visitor closes the widget: back to the sign-in page.
    await visitor.page.getByRole("button", { name: "Close", exact: true }).click();
    await visitor.page.getByRole("button", { name: "Sign in" }).waitFor();
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await agent.context.close();
    await sup.context.close();
    await visitor?.context.close();
  }
});

test("an offer the visitor withdraws disappears from the agent's console, which says why; the visitor can ask again", async () => {
  const agent = await signedIn("agent2");
  let visitor;
  try {
    await agent.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent.page.locator('#agent-status[data-available="true"]').waitFor();
    visitor = await visitorPage("Eve");
    await visitor.page.locator('#visitor-status[data-agents="1"]').waitFor();
    await visitor.page.getByLabel("How can we help?").fill("Can I change my delivery address?");
    await visitor.page.getByRole("button", { name: "Ask" }).click();
    const offer = agent.page.locator(".offer", { hasText: "Can I change my delivery address?" });
    await offer.waitFor();

    await visitor.page.getByRole("button", { name: "Cancel my request" }).click();
    await offer.waitFor({ state: "detached" });
    await agent.page.locator(".offer-notice", { hasText: "Eve's request was withdrawn: the visitor cancelled it." }).waitFor();
    await snap(agent, "27-support-revoked");
    // The visitor is back at the question, which is kept, and told why.
    await visitor.page.locator("#visitor-note", { hasText: "You left the queue." }).waitFor();
    assert.equal(await visitor.page.getByLabel("How can we help?").inputValue(), "Can I change my delivery address?");

    // Switching off: the status says so, and ECB counts no agent available.
    await agent.page.getByRole("switch", { name: "Available for chats" }).uncheck();
    await agent.page.locator('#agent-status[data-available="false"]').waitFor();
    await visitor.page.locator('#visitor-status[data-agents="0"]').waitFor(); // refreshed every 5 s
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await agent.context.close();
    await visitor?.context.close();
  }
});

test("agent1 transfers the chat to agent2 from the dialog; the visitor is told and goes on with agent2, then ends the chat", async () => {
  const agent1 = await signedIn("agent1");
  const agent2 = await signedIn("agent2");
  let visitor;
  try {
    // Only agent1 takes chats when the question comes.
    await agent1.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent1.page.locator('#agent-status[data-available="true"]').waitFor();
    visitor = await visitorPage("Finn");
    await visitor.page.locator('#visitor-status[data-agents="1"]').waitFor();
    await visitor.page.getByLabel("How can we help?").fill("I need a refund for order B-2.");
    await visitor.page.getByRole("button", { name: "Ask" }).click();
    await agent1.page.locator(".offer", { hasText: "I need a refund for order B-2." }).getByRole("button", { name: "Accept" }).click();
    await visitor.page.locator("#visitor-with", { hasText: "You are chatting with Agent One" }).waitFor();
    await write(agent1, "Message", "Refunds are agent2's desk, one moment.");
    await bodies(visitor, "Refunds are agent2's desk, one moment.").waitFor();

    // A transfer needs the other agent available.
    await agent2.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent2.page.locator('#agent-status[data-available="true"]').waitFor();
    await agent1.page.getByRole("button", { name: "Transfer" }).click();
    const dialog = agent1.page.getByRole("dialog", { name: "Transfer the chat" });
    assert.equal(await dialog.getByLabel("Back to the queue").isChecked(), true, "the queue is the default");
    await dialog.getByLabel("Agent Two").check();
    await snap(agent1, "28-support-transfer-dialog");
    await dialog.getByRole("button", { name: "Transfer" }).click();
    await dialog.waitFor({ state: "hidden" });

    // agent1: no longer theirs. agent2: in the open chats, with the history. The visitor: told.
    await agent1.page.locator("#support-ended", { hasText: "The chat was transferred to Agent Two." }).waitFor();
    await agent1.page.locator("#support-chats", { hasText: "No open support chats." }).waitFor();
    const item = agent2.page.locator(".support-item"); // agent2's only chat
    await item.waitFor();
    // The invitation named the visitor: agent2 sees "Finn", not an anonymous id.
    await agent2.page.locator(".offer-notice", { hasText: "Finn's chat was transferred to you" }).waitFor();
    await item.filter({ hasText: "Finn" }).waitFor();
    await item.click();
    await bodies(agent2, "Refunds are agent2's desk, one moment.").waitFor();
    await visitor.page.locator(".notice", { hasText: "Agent Two takes over your chat." }).waitFor();
    await visitor.page.locator("#visitor-with", { hasText: "You are chatting with Agent Two" }).waitFor();
    await write(agent2, "Message", "Hi Finn, the refund is on its way.");
    await bodies(visitor, "Hi Finn, the refund is on its way.").waitFor();
    await write(visitor, "Message to support", "Great, thanks!");
    await bodies(agent2, "Great, thanks!").waitFor();
    await snap(agent2, "29-support-transferred");
    await snap(visitor, "29-support-transferred");

    // The visitor ends the chat: agent2 sees it ended.
    await visitor.page.getByRole("button", { name: "End chat" }).click();
    const endDialog = visitor.page.getByRole("dialog", { name: "End this chat?" });
    await endDialog.getByRole("button", { name: "End chat" }).click();
    await endDialog.waitFor({ state: "hidden" });
    await visitor.page.locator("#visitor-ended-text", { hasText: "This chat has ended" }).waitFor();
    await agent2.page.locator("#support-ended", { hasText: "This support chat has ended: it was closed." }).waitFor();
    assert.equal(await agent2.page.locator("#composer").isVisible(), false, "an ended chat takes no more messages");
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await agent1.context.close();
    await agent2.context.close();
    await visitor?.context.close();
  }
});

test("agent1 holds two chats at once, each message goes to its own visitor; agent2 is invited into one, writes, and leaves", async () => {
  const agent1 = await signedIn("agent1");
  const agent2 = await signedIn("agent2");
  const visitors = [];
  try {
    await agent1.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent1.page.locator('#agent-status[data-available="true"]').waitFor();

    // Two visitors ask; agent1 accepts both (offers come one at a time).
    for (const [name, question] of [["Gina", "My card was charged twice."], ["Hugo", "Can I change my delivery address?"]]) {
      const v = await visitorPage(name);
      visitors.push(v);
      await v.page.getByLabel("How can we help?").fill(question);
      await v.page.getByRole("button", { name: "Ask" }).click();
      await agent1.page.locator(".offer", { hasText: question }).getByRole("button", { name: "Accept" }).click();
      await v.page.locator("#visitor-with", { hasText: "You are chatting with Agent One" }).waitFor();
    }
    const [gina, hugo] = visitors;
    await agent1.page.locator("#agent-status", { hasText: "2 open chats" }).waitFor();
    assert.equal(await agent1.page.locator(".support-item").count(), 2);

    // Each chat's messages reach its own visitor only.
    await agent1.page.locator(".support-item", { hasText: "Gina" }).click();
    await write(agent1, "Message", "Gina, the second charge is refunded.");
    await agent1.page.locator(".support-item", { hasText: "Hugo" }).click();
    await write(agent1, "Message", "Hugo, which address should we use?");
    await bodies(gina, "Gina, the second charge is refunded.").waitFor();
    await bodies(hugo, "Hugo, which address should we use?").waitFor();
    await write(hugo, "Message to support", "12 Harbour Road, please.");
    await bodies(agent1, "12 Harbour Road, please.").waitFor();
    assert.equal(await gina.page.getByText("Hugo, which address", { exact: false }).count(), 0, "Gina got Hugo's message");
    assert.equal(await hugo.page.getByText("second charge", { exact: false }).count(), 0, "Hugo got Gina's message");
    await snap(agent1, "30-support-two-chats");

    // agent1 invites agent2 into Hugo's chat (a conference): agent2 writes to Hugo.
    await agent2.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent2.page.locator('#agent-status[data-available="true"]').waitFor();
    await agent1.page.getByRole("button", { name: "Invite agent" }).click();
    const dialog = agent1.page.getByRole("dialog", { name: "Invite an agent" });
    await dialog.getByLabel("Agent Two").check();
    await dialog.getByRole("button", { name: "Invite" }).click();
    await dialog.waitFor({ state: "hidden" });
    await agent2.page.locator(".offer-notice", { hasText: "You were invited into Hugo's chat." }).waitFor();
    const invited = agent2.page.locator(".support-item", { hasText: "Hugo" });
    await invited.filter({ hasText: "conference" }).click();
    await bodies(agent2, "12 Harbour Road, please.").waitFor(); // the chat's history
    await write(agent2, "Message", "Agent Two here: the address is updated.");
    await bodies(hugo, "Agent Two here: the address is updated.").waitFor();
    await bodies(agent1, "Agent Two here: the address is updated.").waitFor();
    await snap(agent2, "31-support-conference");

    // agent2 leaves; agent1 and Hugo go on.
    await agent2.page.getByRole("button", { name: "Leave chat" }).click();
    await agent2.page.locator("#support-ended", { hasText: "You left the chat." }).waitFor();
    await write(agent1, "Message", "Anything else, Hugo?");
    await bodies(hugo, "Anything else, Hugo?").waitFor();
    // Hugo has it: a push to agent2 would have left in the same fan-out (300 ms to show it).
    await agent2.page.waitForTimeout(300);
    assert.equal(await bodies(agent2, "Anything else, Hugo?").count(), 0, "agent2 still receives the chat after leaving");


    // agent1 closes both chats.
    for (const name of ["Hugo", "Gina"]) {
      await agent1.page.locator(".support-item", { hasText: name }).click();
      await closeChat(agent1);
      await agent1.page.locator("#support-ended", { hasText: "This support chat has ended" }).waitFor();
    }
    for (const v of visitors) await v.page.locator("#visitor-ended-text", { hasText: "This chat has ended" }).waitFor();
    await agent1.page.locator("#agent-status", { hasText: "0 open chats" }).waitFor();
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await agent1.context.close();
    await agent2.context.close();
    for (const v of visitors) await v.context.close();
  }
});

test("queues: a billing question from the widget waits in the billing queue, offered to agent2 only, not to agent1 who is available", async () => {
  const agent1 = await signedIn("agent1");
  const agent2 = await signedIn("agent2");
  let visitor;
  try {
    await agent1.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent1.page.locator('#agent-status[data-available="true"]').waitFor();
    visitor = await visitorPage("Bill");
    await visitor.page.locator('#visitor-status[data-agents="1"]').waitFor();
    await visitor.page.getByLabel("How can we help?").fill("I was charged twice for order B-9.");
    await visitor.page.getByLabel("Topic").selectOption("billing");
    await visitor.page.getByRole("button", { name: "Ask" }).click();
    await visitor.page.locator("#visitor-queue-name", { hasText: exact("Queue: billing") }).waitFor();
    await visitor.page.locator("#visitor-position", { hasText: "You are next in the queue." }).waitFor();
    // agent1 serves general only: no offer reaches their console.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await agent1.page.locator(".offer", { hasText: "charged twice" }).count(), 0, "agent1 is not of the billing queue");

    await agent2.page.getByRole("switch", { name: "Available for chats" }).check();
    await agent2.page.locator(".offer", { hasText: "I was charged twice for order B-9." }).waitFor();
    await snap(agent2, "33-support-billing-queue");
    assert.equal(await agent1.page.locator(".offer", { hasText: "charged twice" }).count(), 0);

    await visitor.page.getByRole("button", { name: "Cancel my request" }).click();
    await agent2.page.locator(".offer", { hasText: "charged twice" }).waitFor({ state: "detached" });
    await agent1.page.getByRole("switch", { name: "Available for chats" }).uncheck();
    await agent2.page.getByRole("switch", { name: "Available for chats" }).uncheck();
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await agent1.context.close();
    await agent2.context.close();
    await visitor?.context.close();
  }
});

test("outside its opening hours the visitor widget says when support opens again; opened, the visitor can ask", async () => {
  // Open every day all day, except today (UTC): closed now, opens at midnight.
  const today = new Date().toISOString().slice(0, 10);
  const allDay = Object.fromEntries(["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map((d) => [d, ["00:00-24:00"]]));
  const put = await demo.serverAPI("PUT", "/workgroups/support", {
    displayName: "Customer support",
    hours: { timezone: "UTC", weekly: allDay, closedDates: [today] },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.data.status.open, false);
  const opensAt = new Date(put.body.data.status.opensAt);
  let visitor;
  try {
    visitor = await visitorPage("Olga");
    const status = visitor.page.locator('#visitor-status[data-open="false"]');
    await status.waitFor();
    // The page says when, in its own words (en-GB, UTC here): tomorrow's weekday and 00:00.
    const weekday = opensAt.toLocaleString("en-GB", { weekday: "long", timeZone: "UTC" });
    await status.filter({ hasText: `we open again ${weekday}` }).filter({ hasText: "00:00" }).waitFor();
    assert.equal(await visitor.page.getByRole("button", { name: "Ask" }).isDisabled(), true, "no asking while closed");
    await snap(visitor, "32-support-closed-hours");

    // The operator opens it (no hours): the widget notices within its refresh and takes the question.
    const reopened = await demo.serverAPI("PUT", "/workgroups/support", { displayName: "Customer support" });
    assert.equal(reopened.status, 200, JSON.stringify(reopened.body));
    await visitor.page.locator('#visitor-status[data-open="true"]').waitFor();
    await visitor.page.getByLabel("How can we help?").fill("Are you open now?");
    await visitor.page.getByRole("button", { name: "Ask" }).click();
    await visitor.page.getByRole("button", { name: "Cancel my request" }).click();
    await visitor.page.locator("#visitor-note", { hasText: "You left the queue." }).waitFor();
    assert.deepEqual(demo.pageErrors, [], "no errors in the pages");
  } finally {
    await demo.serverAPI("PUT", "/workgroups/support", { displayName: "Customer support" });
    await visitor?.context.close();
  }
});
