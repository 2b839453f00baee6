// WebDriver end-to-end test of the SecureSign app (run by e2e.sh, which provides the
// server, token, Xvfb and D-Bus session). Every step has a timeout; assertions read
// the DOM; a screenshot is saved after every step.
import { spawn, execFile } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { remote } from "webdriverio";

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const API = env("SS_E2E_API"), KEY = env("SS_E2E_API_KEY"), APP = env("SS_E2E_APP");
const SHOTS = env("SS_E2E_SCREENSHOTS"), DRIVER = env("SS_E2E_TAURI_DRIVER");
const PIN = process.env.SECURESIGN_LAB_USER_PIN || "123456";
mkdirSync(SHOTS, { recursive: true });

let passed = 0, failed = 0, browser = null, driver = null, broken = false;

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer(); s.unref(); s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const withTimeout = (p, ms, what) => Promise.race([
  p, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)),
]);

async function step(name, fn, ms = 30000) {
  if (broken || (!browser && passed + failed > 0)) { failed++; console.log(`SKIP-FAIL ${name} (an earlier step broke the session)`); return; }
  const t0 = Date.now();
  try {
    await withTimeout(fn(), ms, name);
    passed++;
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  }
  if (browser) {
    const file = join(SHOTS, `${String(passed + failed).padStart(2, "0")}-${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
    await withTimeout(browser.saveScreenshot(file), 10000, "screenshot").catch(() => {});
  }
}

async function createRequest(n) {
  const documents = Array.from({ length: n }, (_, i) => ({
    id: `doc-${i}`, name: `Contract ${i + 1}.pdf`, digestAlgorithm: "SHA-256",
    digest: Buffer.alloc(32, i + 1).toString("base64"),
  }));
  const res = await fetch(`${API}/v1/auth/session`, {
    method: "POST", headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ origin: "https://portal.example.gov.in", documents }),
  });
  if (res.status !== 201) throw new Error(`create session: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).deepLink;
}

const text = async (sel) => (await browser.$(sel)).getText();
const visible = async (sel) => (await browser.$(sel)).isDisplayed();
async function waitText(sel, predicate, ms, what) {
  await browser.waitUntil(async () => predicate(await text(sel).catch(() => "")), { timeout: ms, interval: 200, timeoutMsg: what });
}
async function waitVisible(sel, ms = 15000) {
  await (await browser.$(sel)).waitForDisplayed({ timeout: ms, timeoutMsg: `${sel} not shown` });
}
async function typePin(pin) {
  const input = await browser.$("#pin-input");
  await input.waitForDisplayed({ timeout: 10000 });
  await input.setValue(pin);
  await (await browser.$("#pin-submit")).click();
}

async function main() {
  const port = await freePort(), nativePort = await freePort();
  driver = spawn(DRIVER, ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], { stdio: ["ignore", "inherit", "inherit"] });
  await new Promise((r) => setTimeout(r, 1000));

  const link1 = await createRequest(3);

  await step("cold start by deep link shows the request", async () => {
    browser = await remote({
      hostname: "127.0.0.1", port, logLevel: "error", connectionRetryTimeout: 60000, connectionRetryCount: 1,
      capabilities: { browserName: "wry", "wdio:enforceWebDriverClassic": true, "tauri:options": { application: APP, args: [link1] } },
    });
    await waitVisible("#screen-request", 30000);
    const tenant = await text("#tenant");
    if (tenant !== "Example Portal") throw new Error(`tenant is ${JSON.stringify(tenant)}`);
    if ((await text("#origin")) !== "https://portal.example.gov.in") throw new Error("origin missing");
    if (!(await text("#doc-count")).startsWith("3 ")) throw new Error("document count is not 3");
    if (!(await text("#cert")).includes("Demo Signer")) throw new Error("certificate not shown");
  }, 60000);

  await step("PIN screen shows the tries before the first attempt", async () => {
    await (await browser.$("#sign-btn")).click();
    await waitVisible("#screen-pin");
    const tries = await text("#pin-tries");
    if (!tries) throw new Error("no tries-left text");
  });

  await step("wrong PIN shows SS_PIN_INVALID and tries left, field cleared", async () => {
    await typePin("999999");
    await waitText("#pin-error", (t) => t.includes("SS_PIN_INVALID"), 15000, "no SS_PIN_INVALID");
    if ((await (await browser.$("#pin-input")).getValue()) !== "") throw new Error("PIN field not cleared");
    const announced = await text("#announce");
    if (!announced.includes("SS_PIN_INVALID")) throw new Error("error not announced");
  });

  await step("right PIN signs the 3-document batch", async () => {
    await typePin(PIN);
    await waitVisible("#screen-done", 30000);
    const msg = await text("#done-msg");
    if (!msg.includes("3 documents")) throw new Error(`done message: ${msg}`);
  }, 45000);

  await step("session banner shows the auto-logout countdown", async () => {
    await waitVisible("#session-banner", 10000);
    const banner = await text("#session-text");
    if (!/auto logout in 1[45]:\d\d/.test(banner)) throw new Error(`banner: ${banner}`);
  });

  await step("warm link via gio open signs without PIN", async () => {
    const link2 = await createRequest(2);
    await new Promise((resolve, reject) => execFile("gio", ["open", link2], { timeout: 20000 }, (err, _o, stderr) => err ? reject(new Error(`gio open: ${err.message} ${stderr}`)) : resolve()));
    await browser.waitUntil(async () => (await visible("#screen-request")) && (await text("#doc-count")).startsWith("2 "), { timeout: 20000, interval: 250, timeoutMsg: "request 2 did not open" });
    if (!(await visible("#session-note"))) throw new Error("session note not shown");
    await (await browser.$("#sign-btn")).click();
    await waitVisible("#screen-done", 30000);
    if (await visible("#screen-pin")) throw new Error("asked for the PIN");
    if (!(await text("#done-msg")).includes("2 documents")) throw new Error("not 2 signed");
  }, 60000);

  await step("log out now hides the banner", async () => {
    await (await browser.$("#logout-btn")).click();
    await browser.waitUntil(async () => !(await visible("#session-banner")), { timeout: 10000, timeoutMsg: "banner still shown" });
    await waitText("#announce", (t) => t.length > 0, 5000, "logout not announced");
  });

  await step("a malformed link shows an error screen, not a crash", async () => {
    await new Promise((resolve, reject) => execFile("gio", ["open", "securesign://sign?requestId=bad"], { timeout: 20000 }, (err) => err ? reject(err) : resolve()));
    await waitVisible("#screen-error", 20000);
    if ((await text("#error-code")) !== "SS_DEEP_LINK_INVALID") throw new Error("wrong code");
    if (!(await text("#error-resolution")).includes("portal")) throw new Error("no resolution text");
  }, 40000);

  await step("Hindi strings and labelled controls", async () => {
    await (await browser.$("#lang")).selectByAttribute("value", "hi");
    await waitText("#nav-settings", (t) => t === "सेटिंग्स", 5000, "not Hindi");
    const unlabeled = await browser.execute(() => [...document.querySelectorAll("input, select")]
      .filter((el) => !document.querySelector(`label[for="${el.id}"]`) && !el.getAttribute("aria-label")).map((el) => el.id));
    if (unlabeled.length) throw new Error(`unlabelled: ${unlabeled.join(",")}`);
  });
}

try {
  await main();
} catch (err) {
  failed++;
  console.log(`FAIL setup: ${err.message}`);
} finally {
  if (browser) await withTimeout(browser.deleteSession(), 15000, "deleteSession").catch(() => {});
  if (driver) { driver.kill("SIGTERM"); }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
