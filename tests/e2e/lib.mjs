// Helpers of the end-to-end tests and the demo: one tauri-driver + app per scenario (its own
// token environment and settings), WebDriver steps with timeouts, screenshots, a runner that
// counts and prints "N passed, M failed".
import { spawn, execFile } from "node:child_process";
import { createServer, connect } from "node:net";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

// webdriverio lives in tests/app/node_modules (installed by tests/app/install.sh).
const require = createRequire(new URL("../app/package.json", import.meta.url));
const { remote } = await import(require.resolve("webdriverio"));

export const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const withTimeout = (p, ms, what) => {
  let timer;
  return Promise.race([
    p, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
};

/** `export K='V'` lines (securesign-lab output, the PIV run's env file) as an object. */
export function readEnvFile(file) {
  const out = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(?:'([^']*)'|"([^"]*)"|(\S*))\s*$/.exec(line.trim());
    if (m) out[m[1]] = m[2] ?? m[3] ?? m[4] ?? "";
  }
  return out;
}

export const freePort = () => new Promise((resolve, reject) => {
  const s = createServer(); s.unref(); s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const portOpen = (port) => new Promise((resolve) => {
  const c = connect(port, "127.0.0.1"); c.on("connect", () => { c.destroy(); resolve(true); }); c.on("error", () => resolve(false));
});

/** PIDs of running processes whose executable is `app`. */
export function appPids(app) {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === app; } catch { return false; }
  }).map(Number);
}

export function gioOpen(link) {
  return new Promise((resolve, reject) => execFile("gio", ["open", link], { timeout: 20000 },
    (err, _o, stderr) => (err ? reject(new Error(`gio open: ${err.message} ${stderr}`)) : resolve())));
}

let shotCounter = 0;

/** The app under WebDriver, with its own tauri-driver, token environment and settings. */
export class AppSession {
  static async start({ name, tokenEnv = {}, settings, args = [], shots, work }) {
    const app = env("SS_E2E_APP");
    const config = mkdtempSync(join(work, `config-${name}-`));
    writeFileSync(join(config, "settings.json"), JSON.stringify(settings, null, 2));
    const port = await freePort(), nativePort = await freePort();
    const driver = spawn(env("SS_E2E_TAURI_DRIVER"),
      ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"],
      { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...tokenEnv, SECURESIGN_CONFIG_DIR: config } });
    const s = new AppSession();
    Object.assign(s, { name, app, driver, shots, config, browser: null });
    for (let i = 0; i < 50 && !(await portOpen(port)); i++) await sleep(100);
    s.browser = await withTimeout(remote({
      hostname: "127.0.0.1", port, logLevel: "error", connectionRetryTimeout: 60000, connectionRetryCount: 1,
      capabilities: { browserName: "wry", "wdio:enforceWebDriverClassic": true, "tauri:options": { application: app, args } },
    }), 60000, `start the app (${name})`);
    return s;
  }

  async shot(label) {
    if (!this.browser || !this.shots) return null;
    mkdirSync(this.shots, { recursive: true });
    shotCounter += 1;
    const file = join(this.shots, `${String(shotCounter).padStart(2, "0")}-${this.name}-${label.replace(/[^a-z0-9]+/gi, "-")}.png`);
    await withTimeout(this.browser.saveScreenshot(file), 10000, "screenshot").catch(() => {});
    return file;
  }

  // DOM helpers (assertions read the DOM, never a screenshot).
  $(sel) { return this.browser.$(sel); }
  async text(sel) { return (await this.browser.$(sel)).getText(); }
  async visible(sel) { return (await this.browser.$(sel)).isDisplayed(); }
  async click(sel) { await (await this.browser.$(sel)).click(); }
  async waitVisible(sel, ms = 15000) {
    await (await this.browser.$(sel)).waitForDisplayed({ timeout: ms, timeoutMsg: `${sel} not shown within ${ms} ms` });
  }
  async waitText(sel, predicate, ms, what) {
    await this.browser.waitUntil(async () => predicate(await this.text(sel).catch(() => "")),
      { timeout: ms, interval: 100, timeoutMsg: `${what} (${sel}: ${JSON.stringify(await this.text(sel).catch(() => ""))})` });
  }
  async typePin(pin) {
    const input = await this.browser.$("#pin-input");
    await input.waitForDisplayed({ timeout: 10000 });
    await input.setValue(pin);
    await this.click("#pin-submit");
  }

  /** Ends the app as a session ending or a service manager does (SIGTERM) and waits for
   * it to exit; then stop(). (Ending the WebDriver session kills the app outright.) */
  async terminate() {
    for (const pid of appPids(this.app)) { try { process.kill(pid, "SIGTERM"); } catch { /* gone */ } }
    for (let i = 0; i < 100 && appPids(this.app).length; i++) await sleep(100);
    check(appPids(this.app).length === 0, "the app did not exit within 10 s of SIGTERM");
    await this.stop();
  }

  /** Ends the WebDriver session, then makes sure the app and the driver are gone (by PID). */
  async stop() {
    if (this.browser) await withTimeout(this.browser.deleteSession(), 15000, "deleteSession").catch(() => {});
    this.browser = null;
    for (let i = 0; i < 50 && appPids(this.app).length; i++) await sleep(100);
    for (const pid of appPids(this.app)) { try { process.kill(pid, "SIGTERM"); } catch { /* gone */ } }
    if (this.driver.exitCode === null) { this.driver.kill("SIGTERM"); }
    await sleep(200);
  }
}

/** Counts tests; each runs under a timeout; prints PASS/FAIL/SKIP lines and the total. */
export class Runner {
  constructor() { this.passed = 0; this.failed = 0; this.skipped = 0; }
  async test(name, fn, ms = 60000) {
    const t0 = Date.now();
    try {
      const result = await withTimeout(Promise.resolve().then(fn), ms, name);
      if (result && result.skip) { this.skipped++; console.log(`SKIP ${name}: ${result.skip}`); return false; }
      this.passed++; console.log(`PASS ${name} (${Date.now() - t0} ms)`); return true;
    } catch (err) {
      this.failed++; console.log(`FAIL ${name}: ${err.message}`); return false;
    }
  }
  failNotRun(name, why) { this.failed++; console.log(`FAIL ${name}: not run (${why})`); }
  summary() {
    console.log(`${this.passed} passed, ${this.failed} failed${this.skipped ? `, ${this.skipped} skipped` : ""}`);
    return this.failed === 0 && this.passed > 0;
  }
}

export function check(cond, message) { if (!cond) throw new Error(message); }
