// Attachments in the demo web app (issue 16, item 4), in Debian's chromium
// through playwright-core against a real `ecb demo`: alice attaches an
// image and a text file; the browser uploads them straight to the
// reference backend (cross-origin, its CORS), and both alice and bob see
// the image inline (loaded) and the text file as a link.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, snap, exact } from "./harness.mjs";

const demo = new BrowserDemo("ecb-browser-attach-");

before(() => demo.start());
after(() => demo.stop());

const signedIn = (user) => demo.signedIn(user, { viewport: { width: 1180, height: 760 } });

// A 2x2 red PNG.
const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==",
  "base64",
);

test("alice sends an image and a file; both see the image inline and the file as a link", async () => {
  const alice = await signedIn("alice");
  const bob = await signedIn("bob");
  try {
    await alice.page.getByRole("button", { name: "New thread" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "New thread" });
    await dialog.getByLabel("Bob").check();
    await dialog.getByLabel("Subject").fill("Pictures");
    await dialog.getByLabel("First message").fill("Look at this.");
    await dialog.getByRole("button", { name: "Create thread" }).click();
    await alice.page.locator("#messages .msg-body", { hasText: exact("Look at this.") }).waitFor();
    const bobItem = bob.page.locator(".thread-item", { hasText: "Pictures" });
    await bobItem.waitFor();
    await bobItem.click();
    await bob.page.locator("#messages .msg-body", { hasText: exact("Look at this.") }).waitFor();

    await alice.page.getByLabel("Message", { exact: true }).fill("the red square");
    await alice.page.locator("#attach").setInputFiles({ name: "red.png", mimeType: "image/png", buffer: png });
    for (const w of [alice, bob]) {
      const img = w.page.locator('#messages img.msg-img[alt="red.png"]');
      await img.waitFor();
      // Loaded from the backend's signed URL, not a broken image.
      await w.page.waitForFunction(() => {
        const i = document.querySelector('#messages img.msg-img[alt="red.png"]');
        return i && i.complete && i.naturalWidth === 2;
      });
      await w.page.locator("#messages .msg-body", { hasText: exact("the red square") }).waitFor();
    }
    await snap(bob, "30-image-attachment");

    await alice.page.locator("#attach").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("some notes") });
    const link = bob.page.locator("#messages a.msg-file", { hasText: "notes.txt" });
    await link.waitFor();
    const href = await link.getAttribute("href");
    const got = await fetch(href);
    assert.equal(await got.text(), "some notes");

    // A refused type says so, and nothing is sent.
    const before = await alice.page.locator("#messages .msg").count();
    await alice.page.locator("#attach").setInputFiles({ name: "page.html", mimeType: "text/html", buffer: Buffer.from("<b>x</b>") });
    await alice.page.getByText(/Could not send page\.html/).waitFor();
    assert.equal(await alice.page.locator("#messages .msg").count(), before);
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});
