// Benchmark of the release app (run by `e2e.sh bench`): time from launching with a deep
// link to the PIN screen being interactive, as a ratio to a baseline measured the same
// way in the same run (launching without a link to the home screen); idle RSS; sizes.
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
  await until(browser);
  return { browser, ms: performance.now() - t0 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const port = await freePort(), nativePort = await freePort();
const driver = spawn(DRIVER, ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 1000));
let ok = true;
try {
  const base = [], link = [];
  let rss = 0, rssAll = 0;
  for (let i = 0; i < RUNS; i++) {
    const b = await timeout(launch(port, [], async (br) => (await br.$("#screen-home")).waitForDisplayed({ timeout: 20000 })), 60000, "baseline");
    base.push(b.ms);
    await b.browser.deleteSession();
    const l = await timeout(launch(port, [await createRequest()], async (br) => {
      await (await br.$("#sign-btn")).waitForClickable({ timeout: 20000 });
      await (await br.$("#sign-btn")).click();
      await (await br.$("#pin-input")).waitForClickable({ timeout: 20000 });
    }), 60000, "deep link");
    link.push(l.ms);
    if (i === RUNS - 1) {
      await new Promise((r) => setTimeout(r, 3000)); // idle
      const app = appPids()[0];
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
  console.log(`launch->home (baseline) median ${median(base).toFixed(0)} ms over ${RUNS}: ${base.map((x) => x.toFixed(0)).join(", ")}`);
  console.log(`deep link->PIN interactive median ${median(link).toFixed(0)} ms over ${RUNS}: ${link.map((x) => x.toFixed(0)).join(", ")}`);
  console.log(`ratio deep-link/baseline ${(median(link) / median(base)).toFixed(2)} (extra ${(median(link) - median(base)).toFixed(0)} ms: API fetch + token read + click)`);
  console.log(`idle RSS: app process ${(rss / 1024).toFixed(1)} MB; with its WebKit child processes ${(rssAll / 1024).toFixed(1)} MB`);
  console.log(`binary ${mb(bin)} MB, .deb ${deb ? mb(deb) + " MB" : "not built"}`);
} catch (err) {
  ok = false;
  console.log(`bench failed: ${err.message}`);
} finally {
  driver.kill("SIGTERM");
}
process.exit(ok ? 0 : 1);
