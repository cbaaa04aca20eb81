// What the browser suites share: a real `ecb demo` built from this
// repository, Debian's chromium through playwright-core, pages that record
// every error they show, and screenshots under test/artifacts/screenshots.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const shots = join(repo, "test/artifacts/screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The time every wait in a page may take. */
export const T = 20000;

/** A RegExp matching exactly text. */
export const exact = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);

/** snap saves a screenshot of a page as <name>-<user>.png. */
export function snap(w, name) {
  return w.page.screenshot({ path: join(shots, `${name}-${w.user}.png`) });
}

export class BrowserDemo {
  /** @param {string} prefix of the temporary directory; @param {string[]} args more `ecb demo` flags */
  constructor(prefix, args = []) {
    this.prefix = prefix;
    this.args = args;
    this.pageErrors = [];
    this.kill = () => {
      if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
    };
    process.on("exit", this.kill); // also when a test fails or the runner is interrupted
  }

  /** start builds ecb (unless ECB_BIN names one), starts the demo and the browser. */
  async start() {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
    mkdirSync(shots, { recursive: true });
    this.tmp = mkdtempSync(join(tmpdir(), this.prefix));
    const bin = process.env.ECB_BIN ?? join(this.tmp, "ecb");
    if (!process.env.ECB_BIN) execFileSync("go", ["build", "-o", bin, "./cmd/ecb"], { cwd: repo, stdio: "inherit" });
    // A short ping: a page that goes away without closing its socket is offline within 2 s.
    const args = ["demo", "--listen", "127.0.0.1:0", "--backend-listen", "127.0.0.1:0", "--data", join(this.tmp, "data"),
      "--set", "socketio.pingInterval=1s", "--set", "socketio.pingTimeout=1s", ...this.args];
    this.proc = spawn(bin, args, { stdio: ["ignore", "pipe", process.env.ECB_LOG ? "inherit" : "ignore"] });
    await new Promise((ok, fail) => {
      let out = "";
      const timer = setTimeout(() => fail(new Error("ecb demo did not start: " + out)), 60000);
      this.proc.stdout.on("data", (d) => {
        out += d;
        const api = out.match(/ECB client API:\s+(http:\/\/\S+)/);
        const be = out.match(/reference backend:\s+(http:\/\/\S+)/);
        const key = out.match(/Server API key:\s+(\S+)/);
        if (api && be && key) {
          clearTimeout(timer);
          [this.url, this.backend, this.apiKey] = [api[1], be[1], key[1]];
          ok();
        }
      });
      this.proc.on("exit", (code) => fail(new Error(`ecb demo exited with ${code}: ${out}`)));
    });
    this.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }

  /** stop closes the browser, ends the demo (SIGTERM, then SIGKILL) and removes its directory. */
  async stop() {
    await this.browser?.close();
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((ok) => proc.once("exit", ok));
      proc.kill("SIGTERM");
      const force = setTimeout(this.kill, 10000);
      await exited;
      clearTimeout(force);
    }
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
  }

  /** serverAPI calls ECB's Server API with the demo's key and returns the status and the envelope ({data} or {error}). */
  async serverAPI(method, path, body) {
    const r = await fetch(`${this.url}/server/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.apiKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: r.status === 204 ? null : await r.json() };
  }

  /**
   * newPage opens the demo in a fresh browser context for who; page errors, console errors and
   * HTTP answers >= 400 go to pageErrors unless expected(kind, text, response) says otherwise.
   */
  async newPage(who, { viewport = { width: 1280, height: 800 }, expected = () => false } = {}) {
    const context = await this.browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC" });
    context.setDefaultTimeout(T);
    const page = await context.newPage();
    page.on("pageerror", (e) => this.pageErrors.push(`${who}: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !expected("console", m.text())) this.pageErrors.push(`${who} console: ${m.text()}`);
    });
    page.on("response", (r) => {
      if (r.status() >= 400 && !expected("response", r.url(), r)) this.pageErrors.push(`${who}: HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
    });
    await page.goto(this.url + "/");
    return { context, page, user: who };
  }

  /** signedIn opens the demo for user (newPage's options) and signs in as them, password = name. */
  async signedIn(user, opts) {
    const w = await this.newPage(user, opts);
    await w.page.locator(`#user-${user}`).check();
    await w.page.getByRole("button", { name: "Sign in" }).click();
    await w.page.locator('#conn[data-state="connected"]').waitFor();
    return w;
  }
}

/** The bodies of the open thread's messages that read exactly text. */
export const bodies = (w, text) => w.page.locator("#messages .msg-body", { hasText: exact(text) });

/** say sends text from the composer of the open thread and waits until the server acknowledged it. */
export async function say(w, text) {
  await w.page.getByLabel("Message", { exact: true }).fill(text);
  await w.page.getByLabel("Message", { exact: true }).press("Enter");
  await bodies(w, text).waitFor();
  await w.page.locator("#messages .msg.pending").waitFor({ state: "detached" });
}

/**
 * contrast is the WCAG contrast ratio between an element's colour (a read tick's
 * strokes are currentColor) and the background of its nearest ancestor that has
 * one (the message bubble); a translucent colour is blended over that background.
 */
export function contrast(locator) {
  return locator.evaluate((el) => {
    const rgba = (s) => {
      const [r, g, b, a = 1] = s.match(/[\d.]+/g).map(Number);
      return { r, g, b, a };
    };
    let bgEl = el.parentElement;
    while (bgEl && rgba(getComputedStyle(bgEl).backgroundColor).a === 0) bgEl = bgEl.parentElement;
    const bg = rgba(bgEl ? getComputedStyle(bgEl).backgroundColor : "rgb(255, 255, 255)");
    const fg = rgba(getComputedStyle(el).color);
    const mix = (k) => fg[k] * fg.a + bg[k] * (1 - fg.a);
    const lum = (c) => {
      const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
    };
    const [l1, l2] = [lum({ r: mix("r"), g: mix("g"), b: mix("b") }), lum(bg)].sort((a, b) => b - a);
    return (l1 + 0.05) / (l2 + 0.05);
  });
}
