// Issue #6 end-to-end tests 1–7 (and the final-try confirmation of issue #5), all real parts:
// the REST API on loopback (run.sh), SoftHSM2 and kryoptic tokens, the virtual PIV card
// behind its own pcscd, and the app's real webview under Xvfb driven through tauri-driver.
// Assertions read the DOM and the portal's API; a screenshot is saved after every step.
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { AppSession, Runner, check, env, gioOpen, readEnvFile, sleep } from "./lib.mjs";
import { Portal, demoDocuments, labTrust, verifyWithOpenssl } from "./portal.mjs";

const WORK = env("SS_E2E_WORK"), SHOTS = env("SS_E2E_SCREENSHOTS"), ROOT = env("SS_E2E_ROOT");
const portal = new Portal({ api: env("SS_E2E_API"), key: env("SS_E2E_API_KEY"), origin: env("SS_E2E_PORTAL") });
const softhsm = readEnvFile(env("SS_E2E_SOFTHSM_ENV"));
const kryoptic = readEnvFile(env("SS_E2E_KRYOPTIC_ENV"));
const pivRun = env("SS_E2E_PIV_RUN");
const piv = readEnvFile(join(pivRun, "env"));
// The virtual PIV card's own count, read by the CLI on a connection of its own (an empty
// VERIFY: no try spent); a verified PIN has no count ({"indicator":"unknown"}).
const pivCardTries = () => {
  const out = execFileSync(env("SS_E2E_CLI"), ["pin", "status", "--reader", piv.PIV_READER, "--json"], { env: { ...process.env, ...piv }, timeout: 20000 });
  return JSON.parse(out).pin.retries;
};
// Runs one of the PIV lab's scripts (kill-card.sh, restart-card.sh) on this run's card.
const pivScript = (name, extraEnv = {}) => execFileSync("bash", [join(ROOT, "tests/lab/piv", name), pivRun], { stdio: "pipe", env: { ...process.env, ...extraEnv } });
const only = (process.env.SS_E2E_ONLY || "").split(",").filter(Boolean);
const wanted = (group) => only.length === 0 || only.includes(group);
const run = new Runner();
// The run's lab PKI (tests/e2e/env.sh, e2e_pki): the server trusts its root, and so does the
// portal when it checks signatures with openssl. Both tokens' certificates are issued by it.
const trust = labTrust();

const settingsFor = (tokenSource, signingKey, idle = 15) => ({
  apiBaseUrl: portal.api, idleTimeoutMinutes: idle, tokenSource, signingKey,
});
const pkcs11 = (e) => ({ kind: "pkcs11", modulePath: e.SECURESIGN_PKCS11_MODULE });

async function newSession(docs, opts = {}) {
  const res = await portal.createSession(docs, opts);
  check(res.status === 201 && res.body.deepLink, `create session: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function expectRequestScreen(app, n) {
  await app.browser.waitUntil(async () => (await app.visible("#screen-request")) && (await app.text("#doc-count")).startsWith(`${n} `),
    { timeout: 30000, interval: 200, timeoutMsg: `request with ${n} documents not shown` });
  check((await app.text("#tenant")) === "Example Portal", "tenant not shown");
  check((await app.text("#origin")) === portal.origin, "verified origin not shown");
}

async function expectDone(app, n) {
  await app.waitVisible("#screen-done", 45000);
  const msg = await app.text("#done-msg");
  check(msg.includes(n === 1 ? "1 document" : `${n} documents`), `done message: ${msg}`);
}

// The error screen shows the code, and the resolution in the user's words for that code
// (the UI's English text of `res_<code>`; the API's JSON keeps the spec's resolution).
async function expectError(app, code, { resolution = false, ms = 30000 } = {}) {
  await app.waitVisible("#screen-error", ms);
  const shown = await app.text("#error-code");
  check(shown === code, `error code ${shown}, expected ${code} (${await app.text("#error-message")})`);
  if (resolution) {
    const want = await app.browser.execute((c) => window.SS_STRINGS.en[`res_${c}`], code);
    const got = await app.text("#error-resolution");
    check(want && got === want, `resolution: ${got} (expected ${want})`);
  }
}

// Saves the settings form. Save is brought to the middle first: WebKitWebDriver's own
// scroll leaves a click on the long form short of it once discovery filled the list.
async function saveSettings(app) {
  await app.browser.execute(() => document.querySelector("#settings-form button[type=submit]").scrollIntoView({ block: "center" }));
  await app.click("#settings-form button[type=submit]");
  await app.waitText("#announce", (t) => t === "Settings saved.", 10000, "settings not saved");
}

async function completedAndVerified(sessionId, docs, format, label) {
  const s = await portal.waitFinished(sessionId);
  check(s.body.status === "completed", `portal sees ${s.body.status}: ${JSON.stringify(s.body)}`);
  verifyWithOpenssl(s.body, docs, format, join(WORK, "signed", label), trust);
}

// ---------- 7: no deep link without a valid key and a whitelisted origin ----------
if (wanted("portal")) {
  await run.test("7: an invalid API key or a non-whitelisted origin never produces a deep link", async () => {
    const docs = demoDocuments(1);
    const badKey = "ss_live_" + "x".repeat(40);
    let r = await portal.validate(portal.origin, badKey);
    check(r.status >= 400 && r.body.error?.code === "SS_API_KEY_INVALID", `validate with a bad key: ${r.status} ${JSON.stringify(r.body)}`);
    r = await portal.createSession(docs, { key: badKey });
    check(r.status >= 400 && !r.body.deepLink && r.body.error?.code === "SS_API_KEY_INVALID", `session with a bad key: ${r.status} ${JSON.stringify(r.body)}`);
    r = await portal.validate("https://evil.example.com");
    check(r.status >= 400 && r.body.error?.code === "SS_DOMAIN_NOT_ALLOWED", `validate evil origin: ${r.status} ${JSON.stringify(r.body)}`);
    r = await portal.createSession(docs, { origin: "https://evil.example.com" });
    check(!r.body.deepLink && r.body.error?.code === "SS_DOMAIN_NOT_ALLOWED", `session for evil origin: ${r.status} ${JSON.stringify(r.body)}`);
    r = await portal.validate();
    check(r.status === 200 && r.body.allowed === true, `the real portal is allowed: ${JSON.stringify(r.body)}`);
  });
}

// ---------- SoftHSM2: 1 (raw, cold; CMS, warm), 3, 5, 4 ----------
if (wanted("softhsm")) {
  const pin = softhsm.SECURESIGN_LAB_USER_PIN;
  const docsRaw = demoDocuments(3, "-raw");
  let first;
  try { first = await newSession(docsRaw); } catch (err) { run.failNotRun("1: happy path (raw)", err.message); }
  let app = null;
  if (first) {
    const ok = await run.test("1: happy path, 3 documents, raw: cold deep link → PIN → batch → completed → openssl verifies", async () => {
      const v = await portal.validate();
      check(v.body.allowed === true, "portal key not valid");
      app = await AppSession.start({ name: "softhsm", tokenEnv: softhsm, settings: settingsFor(pkcs11(softhsm), "01"), args: [first.deepLink], shots: SHOTS, work: WORK });
      await expectRequestScreen(app, 3);
      check((await app.text("#cert")).includes("Demo Signer"), "certificate not shown");
      await app.shot("request");
      await app.click("#sign-btn");
      await app.waitVisible("#screen-pin");
      check((await app.text("#pin-tries")).length > 0, "no tries-left text before the first attempt");
      await app.shot("pin");
      await app.typePin(pin);
      await expectDone(app, 3);
      await app.shot("done");
      await completedAndVerified(first.sessionId, docsRaw, "raw", "raw");
      await app.waitVisible("#session-banner", 10000);
    }, 120000);
    if (!ok && app) { await app.stop(); app = null; }
  }
  if (app) {
    await run.test("1: happy path, 3 documents, CMS: warm link (gio open) into the running app → completed → openssl cms verifies", async () => {
      const docs = demoDocuments(3, "-cms");
      const res = await portal.createSession(docs, { format: "cms" });
      if (res.status === 400 && JSON.stringify(res.body).includes("signatureFormat")) {
        return { skip: `the server does not accept "signatureFormat" yet: ${res.body.error?.message}` };
      }
      check(res.status === 201, `create CMS session: ${res.status} ${JSON.stringify(res.body)}`);
      await gioOpen(res.body.deepLink);
      await expectRequestScreen(app, 3);
      check(await app.visible("#session-note"), "PIN session note not shown");
      await app.click("#sign-btn");
      await expectDone(app, 3);
      await app.shot("cms-done");
      await completedAndVerified(res.body.sessionId, docs, "cms", "cms");
    }, 90000);

    await run.test("3: a second request in the PIN session signs without the PIN; after the idle timeout the PIN is asked again", async () => {
      const docs = demoDocuments(1, "-session");
      const s = await newSession(docs);
      await gioOpen(s.deepLink);
      await expectRequestScreen(app, 1);
      check(await app.visible("#session-note"), "PIN session note not shown");
      await app.click("#sign-btn");
      await expectDone(app, 1);
      check(!(await app.visible("#screen-pin")), "the PIN was asked inside the session");
      await completedAndVerified(s.sessionId, docs, "raw", "session");
      // Shorten the idle timeout in Settings: it applies to the running session.
      await app.click("#nav-settings");
      await app.waitVisible("#screen-settings");
      const idle = await app.$("#set-idle");
      await idle.clearValue(); await idle.setValue("1");
      await saveSettings(app);
      await app.shot("settings-idle-1-min");
      await app.waitText("#session-text", (t) => /auto logout in (0:[0-5]\d|1:00)/.test(t), 10000, "banner does not count down from 1 minute");
      await app.browser.waitUntil(async () => !(await app.visible("#session-banner")), { timeout: 80000, interval: 1000, timeoutMsg: "session did not end after the idle timeout" });
      const s2 = await newSession(demoDocuments(1, "-after-idle"));
      await gioOpen(s2.deepLink);
      await expectRequestScreen(app, 1);
      check(!(await app.visible("#session-note")), "session note shown after the idle timeout");
      await app.click("#sign-btn");
      await app.waitVisible("#screen-pin");
      await app.shot("pin-after-idle");
      app.pendingSession = s2.sessionId;
    }, 150000);

    await run.test("5: cancel at the PIN screen → the portal sees cancelled (SS_SIGN_CANCELLED)", async () => {
      check(app.pendingSession && (await app.visible("#screen-pin")), "not at a PIN screen (test 3 failed)");
      await app.click("#pin-cancel");
      await expectError(app, "SS_SIGN_CANCELLED", { resolution: true });
      await app.shot("cancelled");
      const s = await portal.waitFinished(app.pendingSession);
      check(s.body.status === "cancelled", `portal sees ${s.body.status}`);
    });

    await run.test("4: session expired before the PIN → SS_SESSION_EXPIRED with its resolution; nothing posted", async () => {
      const s = await newSession(demoDocuments(1, "-expiring"), { ttlSeconds: 3 });
      await gioOpen(s.deepLink);
      await expectRequestScreen(app, 1);
      await sleep(4000);
      await app.click("#sign-btn");
      // Without a PIN session the PIN comes first; either way nothing may be signed.
      await app.browser.waitUntil(async () => (await app.visible("#screen-pin")) || (await app.visible("#screen-error")),
        { timeout: 15000, timeoutMsg: "neither the PIN screen nor an error" });
      if (await app.visible("#screen-pin")) await app.typePin(pin);
      await expectError(app, "SS_SESSION_EXPIRED", { resolution: true });
      await app.shot("expired");
      const st = await portal.session(s.sessionId);
      check(st.body.status === "expired", `portal sees ${st.body.status}`);
      check(!(st.body.documents || []).some((d) => d.signature), "a signature reached the portal");
    }, 60000);
    await app.stop();
  }
}

// ---------- kryoptic: the final-try confirmation ----------
if (wanted("kryoptic")) {
  let app = null;
  await run.test("final try: 9 wrong PINs → \"final try — are you sure?\"; confirming with the right PIN signs (kryoptic)", async () => {
    const pin = kryoptic.SECURESIGN_LAB_USER_PIN;
    const wrong = "1".repeat(pin.length);
    const docs = demoDocuments(1, "-final-try");
    const s = await newSession(docs);
    app = await AppSession.start({ name: "kryoptic", tokenEnv: kryoptic, settings: settingsFor(pkcs11(kryoptic), "01"), args: [s.deepLink], shots: SHOTS, work: WORK });
    await expectRequestScreen(app, 1);
    await app.click("#sign-btn");
    await app.waitVisible("#screen-pin");
    for (let i = 1; i <= 9; i++) {
      await app.browser.execute(() => { document.getElementById("pin-error").textContent = ""; });
      await app.typePin(wrong);
      await app.waitText("#pin-error", (t) => t.includes("SS_PIN_INVALID"), 15000, `wrong PIN ${i} not reported`);
    }
    await app.waitVisible("#final-try", 5000);
    const label = await app.text("label[for=final-try-confirm]");
    check(label.includes("Final try — are you sure?"), `final-try text: ${label}`);
    await app.shot("final-try");
    // Not confirmed: refused before the token is touched.
    await app.browser.execute(() => { document.getElementById("pin-error").textContent = ""; });
    await app.typePin(pin);
    await app.waitText("#pin-error", (t) => t.includes("SS_PIN_FINAL_TRY"), 15000, "unconfirmed final try not refused");
    await app.click("#final-try-confirm");
    await app.typePin(pin);
    await expectDone(app, 1);
    await app.shot("final-try-signed");
    await completedAndVerified(s.sessionId, docs, "raw", "final-try");
  }, 180000);
  if (app) await app.stop();
}

// ---------- virtual PIV card: 2 (exact tries), 6 (card pulled after document 2 of 3) ----------
if (wanted("piv")) {
  const pin = "123456";
  let app = null;
  await run.test("2: wrong PIN then right PIN: the tries shown drop by one, then the batch signs (PIV card)", async () => {
    const docs = demoDocuments(3, "-piv");
    const s = await newSession(docs);
    app = await AppSession.start({ name: "piv", tokenEnv: piv, settings: settingsFor({ kind: "pcscReader", reader: null }, "9a"), args: [s.deepLink], shots: SHOTS, work: WORK });
    await expectRequestScreen(app, 3);
    await app.click("#sign-btn");
    await app.waitVisible("#screen-pin");
    const before = await app.text("#pin-tries");
    check(before === "3 tries left", `before the first attempt: ${before}`);
    await app.typePin("999999");
    await app.waitText("#pin-tries", (t) => t === "2 tries left", 15000, "tries did not drop by one");
    await app.shot("piv-wrong-pin");
    await app.typePin(pin);
    await expectDone(app, 3);
    await completedAndVerified(s.sessionId, docs, "raw", "piv");
  }, 120000);

  if (app) {
    await run.test("6: card pulled after document 2 of 3 → the app says so, keeps both, resumes when the card is back; no partial result", async () => {
      // A slow card (no TCP_QUICKACK: ~0.1 s per APDU, like a real USB token) so that the
      // test sees "2 of 3" before document 3 is done. Re-inserting it ends the PIN session.
      // (If document 3 still wins the race, the test fails: it never passes by luck.)
      pivScript("kill-card.sh");
      pivScript("restart-card.sh", { PIV_CARD_ARGS: "--no-quickack" });
      // Sign with 9C, the card's "PIN always" RSA key (VERIFY + RSA-2048 per document): slower
      // still, so "2 of 3" is seen well before document 3 is done. Chosen in Settings.
      await app.click("#nav-settings");
      await app.waitVisible("#screen-settings");
      // The typed key is under "Advanced" (Settings offers the found tokens first).
      await app.browser.execute(() => { document.getElementById("advanced").open = true; });
      const key = await app.$("#set-key");
      await key.clearValue(); await key.setValue("9c");
      await saveSettings(app);
      const docs = demoDocuments(3, "-removal");
      const s = await newSession(docs);
      await gioOpen(s.deepLink);
      await expectRequestScreen(app, 3);
      await app.click("#sign-btn");
      await app.waitVisible("#screen-pin");
      await app.typePin(pin);
      await app.browser.waitUntil(async () => (await app.browser.execute(() => document.getElementById("progress-text").textContent)) === "2 of 3 signed",
        { timeout: 30000, interval: 10, timeoutMsg: "never saw 2 of 3" });
      process.kill(Number(readFileSync(join(pivRun, "card.pid"), "utf8").trim()), "SIGSTOP");
      pivScript("kill-card.sh");
      const pulled = Date.now();
      try {
        await expectError(app, "SS_TOKEN_NOT_PRESENT", { ms: 90000 });
        console.log(`  the app reported the pulled card after ${Date.now() - pulled} ms`);
      } catch (err) {
        await app.shot("card-pulled-failure");
        const screens = await app.browser.execute(() => [...document.querySelectorAll(".screen")].filter((s) => !s.hidden).map((s) => s.id).join(",")
          + " | " + document.getElementById("progress-text").textContent + " | " + document.getElementById("announce").textContent);
        throw new Error(`${err.message}; on screen: ${screens}`);
      }
      // The code's text in the user's words, and the core's account of what is kept.
      const detail = await app.text("#error-detail");
      check(detail.includes("2 of 3 documents are signed and kept"), `detail: ${detail}`);
      check(await app.visible("#error-retry"), "no way to resume");
      await app.shot("card-pulled");
      let st = await portal.session(s.sessionId);
      check(st.body.status === "pending", `portal sees ${st.body.status} with the card out`);
      pivScript("restart-card.sh");
      await app.click("#error-retry");
      await app.waitVisible("#screen-pin", 15000);
      await app.typePin(pin);
      await expectDone(app, 3);
      await app.shot("resumed-done");
      await completedAndVerified(s.sessionId, docs, "raw", "removal");
    }, 120000);
    // The app ends with its PIN session still active. Its orderly exit (SIGTERM, as at the
    // end of a desktop session) must log the card out, or the next program to connect
    // finds the PIN verified: a card keeps it until it is reset.
    await run.test("6b: the app's exit on SIGTERM leaves no verified PIN on the card", async () => {
      await app.terminate();
      const left = pivCardTries();
      check(left.remaining === 3, `after the app exited the card reads ${JSON.stringify(left)} (verified: no count)`);
    });
    await app.stop();
  } else if (wanted("piv")) {
    run.failNotRun("6: card pulled after document 2 of 3", "the PIV app did not start");
  }
}

// ---------- OpenSC over the virtual PIV card: the PIN change at the final try, in the UI ----------
// OpenSC's PKCS#11 module reports FINAL_TRY after two failures (the PIV card has 3 tries).
// The two wrong PINs are typed by the test as the current PIN of the change form; the card's
// own count is read with `securesign pin status --reader` (an empty VERIFY: no try spent).
if (wanted("opensc")) {
  const pin = "123456", newPin = "24681357", wrong = "999999";
  const module = ["/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so"].find((p) => existsSync(p));
  const fillChange = async (app, oldPin) => {
    await app.click("#nav-pin");
    await app.waitVisible("#screen-pinmgmt");
    await app.waitText("#pm-tries", (t) => t.length > 0, 15000, "tries not shown");
    for (const [id, v] of [["cp-old", oldPin], ["cp-new", newPin], ["cp-new2", newPin]]) await (await app.$(`#${id}`)).setValue(v);
    await app.browser.execute(() => { document.getElementById("announce").textContent = ""; });
    await app.browser.execute(() => document.querySelector("#change-form button[type=submit]").scrollIntoView({ block: "center" }));
  };
  const submitChange = (app) => app.click("#change-form button[type=submit]");
  let app = null;
  await run.test("final try in the PIN change form (OpenSC): two wrong current PINs → \"Final try\"; unconfirmed → nothing sent; confirmed → changed, tries back to more than one, the new PIN signs", async () => {
    check(module, "opensc-pkcs11.so not installed");
    // A card just inserted, whatever the groups before left on it.
    pivScript("kill-card.sh");
    pivScript("restart-card.sh");
    app = await AppSession.start({ name: "opensc", tokenEnv: piv, settings: settingsFor({ kind: "pkcs11", modulePath: module }, "01"), shots: SHOTS, work: WORK });
    await app.waitVisible("#screen-home", 30000);
    const start = pivCardTries();
    check(start.remaining === 3, `the card starts with ${JSON.stringify(start)}`);
    for (let i = 1; i <= 2; i++) {
      await fillChange(app, wrong);
      await submitChange(app);
      await expectError(app, "SS_PIN_INVALID");
      const left = pivCardTries();
      check(left.remaining === 3 - i, `after wrong PIN ${i} the card has ${JSON.stringify(left)}`);
      await app.click("#error-ok");
    }
    await fillChange(app, pin);
    const tries = await app.text("#pm-tries");
    check(tries === "Final try", `tries in words: ${tries}`);
    check(await app.visible("#cp-final-try"), "the final-try confirmation is not offered");
    const warning = await app.text("label[for=cp-final-confirm]");
    check(warning.startsWith("Final try — changing the PIN uses it"), `warning: ${warning}`);
    await app.shot("change-final-try");
    // Not confirmed: refused in the UI, the card untouched.
    await submitChange(app);
    await app.waitText("#announce", (t) => t.includes("SS_PIN_FINAL_TRY"), 10000, "unconfirmed change not refused");
    check(await app.visible("#screen-pinmgmt"), "left the PIN screen");
    for (const id of ["cp-old", "cp-new", "cp-new2"]) check((await (await app.$(`#${id}`)).getValue()) === "", `#${id} not cleared`);
    const untouched = pivCardTries();
    check(untouched.remaining === 1, `the card after the unconfirmed change: ${JSON.stringify(untouched)}`);
    await app.shot("change-final-try-refused");
    // Confirmed with the right PIN: changed.
    await fillChange(app, pin);
    await app.click("#cp-final-confirm");
    await submitChange(app);
    await app.waitText("#announce", (t) => t === "PIN changed.", 15000, "PIN not changed");
    // The change reset the card's counter: OpenSC still flags FINAL_TRY, the app knows better.
    await app.waitText("#pm-tries", (t) => t === "More than one try left", 10000, "tries after the change");
    check(!(await app.visible("#cp-final-try")), "the final-try confirmation is still offered after the change");
    await app.shot("changed");
    // The new PIN signs, with no confirmation asked.
    const docs = demoDocuments(1, "-opensc");
    const s = await newSession(docs);
    await gioOpen(s.deepLink);
    await expectRequestScreen(app, 1);
    await app.click("#sign-btn");
    await app.waitVisible("#screen-pin");
    const before = await app.text("#pin-tries");
    check(before === "More than one try left", `PIN screen tries: ${before}`);
    check(!(await app.visible("#final-try")), "the final-try confirmation is asked after the change");
    await app.typePin(newPin);
    await expectDone(app, 1);
    await app.shot("new-pin-signed");
    await completedAndVerified(s.sessionId, docs, "raw", "opensc");
  }, 180000);
  if (app) await app.stop();
}

process.exit(run.summary() ? 0 : 1);
