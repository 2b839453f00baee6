// Benchmark of the release app (run by `e2e.sh bench`): time from launching with a deep
// link to the PIN screen being interactive, as a ratio to a baseline measured the same
// way in the same run (launching without a link to the home screen); RSS; sizes.
//
// Two clocks. "With automation": wall time around the WebDriver steps (session creation,
// element polling and the click included). "App": from the kernel's start time of the app
// process (/proc/PID/stat) to the UI's User Timing marks (ui/app.js, set once the frame
// is painted), minus the time between the request screen being shown and the click on
// "Sign" (a person's reading time, here the automation's latency). Resolution ~10 ms.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { remote } from "webdriverio";

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const API = env("SS_E2E_API"), KEY = env("SS_E2E_API_KEY"), APP = env("SS_E2E_APP"), DRIVER = env("SS_E2E_TAURI_DRIVER");
const RUNS = 5;

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer(); s.unref(); s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const timeout = (p, ms, what) => Promise.race([p, new Promise((_, r) => setTimeout(() => r(new Error(`timeout: ${what}`)), ms))]);

async function createRequest() {
  const res = await fetch(`${API}/v1/auth/session`, {
    method: "POST", headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ origin: "https://portal.example.gov.in", documents: [{ id: "d", name: "a.pdf", digestAlgorithm: "SHA-256", digest: Buffer.alloc(32, 7).toString("base64") }] }),
  });
  return (await res.json()).deepLink;
}

function appPids() {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === APP; } catch { return false; }
  });
}
const ppid = (pid) => { try { return /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]; } catch { return null; } };
const children = (parent) => readdirSync("/proc").filter((d) => /^\d+$/.test(d) && ppid(d) === parent);
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] || 0);

async function launch(port, args, until) {
  const t0 = performance.now();
  const browser = await remote({ hostname: "127.0.0.1", port, logLevel: "error", connectionRetryCount: 0,
    capabilities: { browserName: "wry", "wdio:enforceWebDriverClassic": true, "tauri:options": { application: APP, args } } });
  try {
    await until(browser);
  } catch (err) {
    // Leave evidence: a screenshot and the text of the screen on display.
    const shots = process.env.SS_E2E_SCREENSHOTS;
    if (shots) await browser.saveScreenshot(join(shots, "bench-failure.png")).catch(() => {});
    const shown = await browser.execute(() => [...document.querySelectorAll("[id^=screen-]")]
      .filter((e) => !e.hidden).map((e) => `${e.id}: ${e.innerText.slice(0, 300)}`).join(" | ")).catch((e) => `(no DOM: ${e.message})`);
    console.log(`bench step failed on: ${shown}`);
    await browser.deleteSession().catch(() => {});
    throw err;
  }
  return { browser, ms: performance.now() - t0 };
}

// Wall-clock time (ms) at which process PID started: its start in clock ticks since boot
// (field 22 of /proc/PID/stat; USER_HZ is 100 on Linux) plus the wall time of the boot.
function startWallMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const uptimeS = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  return Date.now() - uptimeS * 1000 + ticks * 10;
}
const newestApp = () => appPids().map((pid) => ({ pid, start: startWallMs(pid) })).sort((a, b) => b.start - a.start)[0];

// The UI's marks as wall-clock times, once `last` has been set.
async function marks(browser, last) {
  let got = {};
  for (let i = 0; i < 50 && !(last in got); i++) {
    got = await browser.execute(() => Object.fromEntries(performance.getEntriesByType("mark")
      .map((m) => [m.name, performance.timeOrigin + m.startTime])));
    if (!(last in got)) await new Promise((r) => setTimeout(r, 20));
  }
  if (!(last in got)) throw new Error(`the UI never set ${last}`);
  return got;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const port = await freePort(), nativePort = await freePort();
const driver = spawn(DRIVER, ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 1000));
let ok = true;
try {
  const base = [], link = [], baseApp = [], linkApp = [];
  let rss = 0, rssAll = 0;
  for (let i = 0; i < RUNS; i++) {
    const b = await timeout(launch(port, [], async (br) => (await br.$("#screen-home")).waitForDisplayed({ timeout: 20000 })), 60000, "baseline");
    base.push(b.ms);
    const bStart = newestApp().start, bMarks = await marks(b.browser, "ss:home-shown");
    baseApp.push(bMarks["ss:home-shown"] - bStart);
    await b.browser.deleteSession();
    const l = await timeout(launch(port, [await createRequest()], async (br) => {
      await (await br.$("#sign-btn")).waitForClickable({ timeout: 20000 });
      await (await br.$("#sign-btn")).click();
      await (await br.$("#pin-input")).waitForClickable({ timeout: 20000 });
    }), 60000, "deep link");
    link.push(l.ms);
    const lStart = newestApp().start, m = await marks(l.browser, "ss:pin-shown");
    linkApp.push(m["ss:request-shown"] - lStart + (m["ss:pin-shown"] - m["ss:sign-clicked"]));
    const origin = await l.browser.execute(() => performance.timeOrigin);
    console.log(`run ${i + 1}: process start -> page load starts ${(origin - lStart).toFixed(0)} ms, -> request screen ${(m["ss:request-shown"] - origin).toFixed(0)} ms more; click -> PIN screen ${(m["ss:pin-shown"] - m["ss:sign-clicked"]).toFixed(0)} ms`);
    if (i === RUNS - 1) {
      await new Promise((r) => setTimeout(r, 3000)); // idle
      const app = newestApp()?.pid;
      rss = app ? rssKb(app) : 0;
      rssAll = app ? [app, ...children(app)].map(rssKb).reduce((a, b) => a + b, 0) : 0;
    }
    await l.browser.deleteSession();
  }
  const bin = statSync(APP).size;
  const debDir = join(dirname(APP), "bundle", "deb");
  let deb = 0;
  try { deb = readdirSync(debDir).filter((f) => f.endsWith(".deb")).map((f) => statSync(join(debDir, f)).size)[0] || 0; } catch { deb = 0; }
  const mb = (n) => (n / 1048576).toFixed(1);
  const ms = (xs) => `median ${median(xs).toFixed(0)} ms over ${RUNS}: ${xs.map((x) => x.toFixed(0)).join(", ")}`;
  console.log(`app: launch->home (baseline)          ${ms(baseApp)}`);
  console.log(`app: deep link->PIN interactive       ${ms(linkApp)}   (target <= 1000 ms)`);
  console.log(`app: ratio deep-link/baseline ${(median(linkApp) / median(baseApp)).toFixed(2)} (extra ${(median(linkApp) - median(baseApp)).toFixed(0)} ms: API fetch + token read + PIN screen)`);
  console.log(`with automation: launch->home         ${ms(base)}`);
  console.log(`with automation: deep link->PIN       ${ms(link)}`);
  console.log(`RSS under WebDriver (automation loads more; see rss.sh for idle): app process ${(rss / 1024).toFixed(1)} MB; with its WebKit child processes ${(rssAll / 1024).toFixed(1)} MB`);
  console.log(`binary ${mb(bin)} MB, .deb ${deb ? mb(deb) + " MB" : "not built"}`);
} catch (err) {
  ok = false;
  console.log(`bench failed: ${err.message}`);
} finally {
  driver.kill("SIGTERM");
}
process.exit(ok ? 0 : 1);
