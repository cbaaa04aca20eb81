// The demo in cluster mode in a real browser: `ecb demo --nodes 2` (two ECB
// processes sharing the machine's Redis, under a prefix of this run), alice's
// page served by node1 and bob's by node2. Each page says which node serves
// it, and they chat across the nodes live.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import { T, exact, snap } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const REDIS = process.env.ECB_TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";
const prefix = "browser-" + randomBytes(4).toString("hex");
let tmp, proc, browser, nodes;
const pageErrors = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  mkdirSync(join(repo, "test/artifacts/screenshots"), { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), "ecb-browser-cluster-"));
  const bin = process.env.ECB_BIN ?? join(tmp, "ecb");
  if (!process.env.ECB_BIN) execFileSync("go", ["build", "-o", bin, "./cmd/ecb"], { cwd: repo, stdio: "inherit" });
  const data = join(tmp, "data");
  proc = spawn(bin, ["demo", "--nodes", "2", "--listen", "127.0.0.1:0", "--data", data, "--redis", REDIS, "--set", "cluster.prefix=" + prefix],
    { stdio: ["ignore", "pipe", process.env.ECB_LOG ? "inherit" : "ignore"] });
  process.on("exit", () => proc.exitCode === null && proc.kill("SIGKILL"));
  await new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("ecb demo --nodes 2 did not start (is Redis running at " + REDIS + "?): " + out)), 90000);
    proc.stdout.on("data", (d) => {
      out += d;
      if (out.includes("ECB demo ready")) {
        clearTimeout(timer);
        ok();
      }
    });
    proc.on("exit", (code) => fail(new Error(`ecb demo --nodes 2 exited with ${code} (is Redis running at ${REDIS}?): ${out}`)));
  });
  nodes = JSON.parse(readFileSync(join(data, "cluster.json"), "utf8")).nodes;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
});

after(async () => {
  await browser?.close();
  if (proc && proc.exitCode === null) {
    const exited = new Promise((ok) => proc.once("exit", ok));
    proc.kill("SIGTERM");
    await exited;
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function openOn(node, user) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 760 }, locale: "en-GB", timezoneId: "UTC" });
  context.setDefaultTimeout(T);
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${user}: ${e.message}`));
  await page.goto(node.url + "/");
  await page.locator(`#user-${user}`).check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('#conn[data-state="connected"]').waitFor();
  return { context, page, user };
}

test("two pages on two nodes say where they are and chat across the nodes", async () => {
  const alice = await openOn(nodes[0], "alice");
  const bob = await openOn(nodes[1], "bob");
  try {
    assert.equal(await alice.page.locator("#node-badge").textContent(), "on node1");
    assert.equal(await bob.page.locator("#node-badge").textContent(), "on node2");

    await alice.page.getByRole("button", { name: "New thread" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "New thread" });
    await dialog.getByLabel("Bob").check();
    await dialog.getByLabel("Subject").fill("Across nodes");
    await dialog.getByLabel("First message").fill("Hello from node1");
    await dialog.getByRole("button", { name: "Create thread" }).click();

    const thread = bob.page.locator(".thread-item", { hasText: "Across nodes" });
    await thread.waitFor();
    await thread.click();
    await bob.page.locator("#messages .msg-body", { hasText: exact("Hello from node1") }).waitFor();
    await bob.page.getByLabel("Message", { exact: true }).fill("Hello back from node2");
    await bob.page.getByLabel("Message", { exact: true }).press("Enter");
    await alice.page.locator("#messages .msg-body", { hasText: exact("Hello back from node2") }).waitFor();
    await snap(alice, "cluster-01-node1");
    await snap(bob, "cluster-02-node2");
    assert.equal(await alice.page.locator("#messages .msg-body", { hasText: exact("Hello back from node2") }).count(), 1);
    assert.deepEqual(pageErrors, []);
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});
