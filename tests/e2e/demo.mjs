// The demo's portal and user (run by scripts/demo.sh, which starts the server, the demo token,
// Xvfb and D-Bus): the portal validates its key, creates a 3-document CMS session and opens
// the deep link; the app shows the request; the PIN is typed (through WebDriver); the portal
// sees `completed` and verifies every signature with openssl, trusting only the lab PKI's root
// (the demo token's certificate is issued by its licensed CA). A screenshot of each screen.
import { join } from "node:path";
import { AppSession, check, env, gioOpen } from "./lib.mjs";
import { Portal, demoDocuments, labTrust, verifyWithOpenssl } from "./portal.mjs";

const OUT = env("SS_DEMO_OUT");
const SHOTS = join(OUT, "screenshots");
const token = Object.fromEntries(["SOFTHSM2_CONF", "SECURESIGN_PKCS11_MODULE", "SECURESIGN_LAB_USER_PIN"].map((k) => [k, env(k)]));
const trust = labTrust();
const portal = new Portal({ api: env("SS_E2E_API"), key: env("SS_E2E_API_KEY"), origin: env("SS_E2E_PORTAL") });
const say = (s) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);

let app = null;
let ok = false;
try {
  say(`Portal: POST /v1/auth/validate (origin ${portal.origin})`);
  const v = await portal.validate();
  console.log(JSON.stringify(v.body));
  check(v.status === 200 && v.body.allowed, "the portal's key or origin was refused");

  say("Portal: POST /v1/auth/session with 3 documents, signatureFormat cms");
  const docs = demoDocuments(3);
  let format = "cms";
  let s = await portal.createSession(docs, { format });
  if (s.status === 400 && JSON.stringify(s.body).includes("signatureFormat")) {
    console.log(`this server does not offer CMS yet (${s.body.error?.message}); using raw signatures`);
    format = "raw";
    s = await portal.createSession(docs);
  }
  check(s.status === 201, `session: HTTP ${s.status} ${JSON.stringify(s.body)}`);
  console.log(JSON.stringify(s.body));

  say("The app starts (waiting for a request); the portal opens the deep link");
  app = await AppSession.start({
    name: "demo", tokenEnv: token, shots: SHOTS, work: OUT,
    settings: { apiBaseUrl: portal.api, idleTimeoutMinutes: 15, tokenSource: { kind: "pkcs11", modulePath: token.SECURESIGN_PKCS11_MODULE }, signingKey: "01" },
  });
  await app.waitVisible("#screen-home", 30000);
  await app.shot("home");
  await gioOpen(s.body.deepLink);
  await app.browser.waitUntil(async () => app.visible("#screen-request"), { timeout: 30000, timeoutMsg: "the request did not open" });
  console.log(`request: ${await app.text("#tenant")} (${await app.text("#origin")}), ${await app.text("#doc-count")}`);
  console.log(`certificate: ${await app.text("#cert")}`);
  await app.shot("request");

  say("The user presses Sign and types the PIN (driven through WebDriver)");
  await app.click("#sign-btn");
  await app.waitVisible("#screen-pin");
  console.log(`PIN screen: ${await app.text("#pin-tries")}; ${await app.text("#pin-rules")}`);
  await app.shot("pin");
  await app.typePin(token.SECURESIGN_LAB_USER_PIN);
  await app.waitVisible("#screen-done", 45000);
  console.log(await app.text("#done-msg"));
  await app.shot("done");

  say("Portal: GET /v1/auth/session/{id}");
  const done = await portal.waitFinished(s.body.sessionId);
  console.log(`status ${done.body.status}, ${done.body.signatureAlgorithm || ""}`);
  check(done.body.status === "completed", `the portal sees ${done.body.status}`);

  say(`Portal: every signature checked with openssl against the lab root ${trust.root} (licensed CA ${trust.ca})`);
  console.log(format === "cms"
    ? "  openssl cms -verify -binary -inform DER -content DOC -CAfile <root + licensed CA> -certfile <licensed CA> -purpose any\n"
      + "  (the signature and the signer's certificate path to the lab root; no -noverify)"
    : "  openssl dgst -sha256 -verify <signer key> -signature SIG DOC, and the signer's certificate:\n"
      + "  openssl verify -CAfile <lab root> -untrusted <licensed CA> signer.pem");
  const files = verifyWithOpenssl(done.body, docs, format, join(OUT, "signed"), trust);
  for (const doc of docs) console.log(`  ${doc.name}: verified, signer chains to the lab root; a changed copy is refused`);

  say("Other screens");
  await app.click("#nav-pin"); await app.waitVisible("#screen-pinmgmt"); await app.shot("pin-management");
  await app.click("#nav-settings"); await app.waitVisible("#screen-settings"); await app.shot("settings");
  say("Where to look");
  console.log(`screenshots: ${SHOTS}`);
  console.log(`documents and signatures: ${join(OUT, "signed")} (${files.length} files)`);
  ok = true;
} catch (err) {
  console.log(`demo failed: ${err.message}`);
  if (app) await app.shot("failure");
} finally {
  if (app) await app.stop();
}
process.exit(ok ? 0 : 1);
