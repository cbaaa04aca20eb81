// The client API's browsable page (GET /v1/docs) in a real browser against a
// real `ecb demo`: Swagger UI renders api/client.yaml's operations under the
// page's Content-Security-Policy, every request the page makes goes to the
// node itself, and nothing shows an error (no CSP violation, no console
// error, no failed request).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BrowserDemo, T } from "./harness.mjs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const demo = new BrowserDemo("ecb-browser-apidocs-");
const shots = resolve(dirname(fileURLToPath(import.meta.url)), "../artifacts/screenshots");

before(() => demo.start());
after(() => demo.stop());

test("/v1/docs renders the client API's operations from this origin only, under its CSP", async () => {
  const context = await demo.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  context.setDefaultTimeout(T);
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  const origin = new URL(demo.url).origin;
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("request", (r) => requests.push(r.url()));
  page.on("requestfailed", (r) => errors.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  try {
    const resp = await page.goto(demo.url + "/v1/docs");
    assert.equal(new URL(page.url()).pathname, "/v1/docs/", "/v1/docs redirects to the page");
    const csp = resp.headers()["content-security-policy"];
    assert.match(csp ?? "", /script-src 'self'/, "the page is served with its CSP");

    // The API's title and known operations are rendered from api/client.yaml.
    await page.getByRole("heading", { name: /ECB client REST API/ }).waitFor();
    const threads = page.locator('.opblock-summary-path[data-path="/v1/threads"]');
    await threads.first().waitFor();
    assert.ok((await threads.count()) >= 2, "GET and POST /v1/threads are listed");
    await page.locator('.opblock-summary-path[data-path="/v1/users"]').first().waitFor();
    assert.ok((await page.locator(".opblock").count()) >= 25, "every operation has its block");

    // Opening one shows its parameters and answers (rendered, not just listed).
    await page.locator(".opblock-get", { has: page.locator('[data-path="/v1/users"]') }).locator(".opblock-summary").click();
    await page.locator(".opblock.is-open .parameters").first().waitFor();
    assert.match(await page.locator(".opblock.is-open").first().innerText(), /query/);
    await page.screenshot({ path: join(shots, "apidocs-01.png") });

    const foreign = requests.filter((u) => !u.startsWith("data:") && new URL(u).origin !== origin);
    assert.deepEqual(foreign, [], "no request leaves the node");
    assert.ok(requests.some((u) => u === `${origin}/v1/openapi.yaml`), "the spec is read from /v1/openapi.yaml");
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], "no CSP violation");
    assert.deepEqual(errors, [], "no error on the page");
  } finally {
    await context.close();
  }
});
