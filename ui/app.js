// SecureSign UI: screens only. Every decision is made by a Rust command; this file
// shows results, collects input and passes it on. No remote content, no innerHTML.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;
const $ = (id) => document.getElementById(id);

let lang = localStorage.getItem("ss-lang") === "hi" ? "hi" : "en";
let view = null;          // the RequestView on screen
let viewLink = null;      // the link it was opened from ("Retry after changing the token")
let retryAction = null;   // what "Try again" on the error screen does
let bannerTimer = null;

const t = (key, ...args) => {
  const v = (window.SS_STRINGS[lang] || {})[key] ?? window.SS_STRINGS.en[key];
  return typeof v === "function" ? v(...args) : (v ?? key);
};

function applyLanguage() {
  document.documentElement.lang = lang;
  $("lang").value = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-aria]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nAria)); });
}

function show(name) {
  document.querySelectorAll(".screen").forEach((s) => { s.hidden = s.id !== `screen-${name}`; });
  const heading = document.querySelector(`#screen-${name} h2`);
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

// User Timing marks for the launch benchmark (tests/app/bench.mjs), set once the frame
// that shows the screen has been painted. They hold no data and never leave the page.
function markPainted(name) { requestAnimationFrame(() => setTimeout(() => performance.mark(name), 0)); }

function announce(text) { $("announce").textContent = text || ""; }

// Errors arrive from Rust as {code, message, resolution}: the screen shows the text of
// the code in the chosen language (err_/res_ keys of i18n.js); the core's message stays
// as the detail (it names the file, the field, the certificate …).
function showError(err, retry) {
  const e = normalise(err);
  $("error-code").textContent = e.code;
  $("error-message").textContent = errText(e.code);
  $("error-detail").textContent = e.message || "";
  $("error-detail-row").hidden = !e.message;
  $("error-resolution").textContent = resText(e.code);
  retryAction = retry || null;
  $("error-retry").hidden = !retry;
  $("error-puk").hidden = e.code !== "SS_PIN_BLOCKED";
  show("error");
  announce(`${e.code}: ${errText(e.code)} ${resText(e.code)}`);
}

function normalise(err) {
  if (err && typeof err === "object" && err.code) return err;
  return { code: "SS_INTERNAL", message: String(err) };
}

const known = (key) => key in window.SS_STRINGS.en;
const errText = (code) => t(known(`err_${code}`) ? `err_${code}` : "err_SS_INTERNAL");
const resText = (code) => t(known(`res_${code}`) ? `res_${code}` : "res_SS_INTERNAL");
const statusText = (status) => (known(`status_${status}`) ? t(`status_${status}`) : status);

// The token's retry indicator in words (exact counts: "N tries left"). A PKCS#11 token's
// flags say "final try" in words (its count of 1 is read from the flag, not reported).
const TRIES_KEYS = { "more_than_one": "triesMoreThanOne", "low": "triesLow", "final_try": "triesFinal", "locked": "triesLocked", "unknown": "triesUnknown" };
function triesText(retries) {
  if (!retries) return "";
  if (retries.indicator === "locked") return t("triesLocked");
  if (retries.indicator === "final_try") return t("triesFinal");
  if (retries.remaining != null) return t("triesLeft", retries.remaining);
  return t(TRIES_KEYS[retries.indicator] || "triesUnknown");
}

const isFinalTry = (r) => !!r && (r.indicator === "final_try" || r.remaining === 1);

// PINs go to Rust encrypted, as raw bytes (never a JSON string): on WebKitGTK the IPC body
// passes through buffers of the app's own process that nobody wipes. Per call: Rust's
// one-use P-256 key (pin_key), our ephemeral ECDH key, HKDF-SHA-256 → AES-256-GCM over the
// NUL-separated secrets (aad = the command). Body: our public key (65) ‖ nonce (12) ‖
// ciphertext. The plaintext array is zeroed; the JS strings read from the inputs cannot be
// wiped (the engine owns them); the inputs themselves are cleared at submit.
const PIN_INFO = new TextEncoder().encode("securesign pin v1");
async function invokeSecrets(cmd, secrets, headers) {
  const enc = new TextEncoder();
  const parts = secrets.map((s) => enc.encode(s));
  const plain = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + parts.length - 1);
  let at = 0;
  parts.forEach((p, i) => { if (i) plain[at++] = 0; plain.set(p, at); at += p.length; p.fill(0); });
  try {
    const subtle = window.crypto.subtle;
    const appKey = await subtle.importKey("raw", new Uint8Array(await invoke("pin_key")), { name: "ECDH", namedCurve: "P-256" }, false, []);
    const ours = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    const shared = await subtle.deriveBits({ name: "ECDH", public: appKey }, ours.privateKey, 256);
    const hkdf = await subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const key = await subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: PIN_INFO }, hkdf, { name: "AES-GCM", length: 256 }, false, ["encrypt"]);
    new Uint8Array(shared).fill(0);
    const nonce = window.crypto.getRandomValues(new Uint8Array(12));
    const sealed = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: enc.encode(cmd) }, key, plain));
    const pub = new Uint8Array(await subtle.exportKey("raw", ours.publicKey));
    const body = new Uint8Array(pub.length + nonce.length + sealed.length);
    body.set(pub, 0); body.set(nonce, pub.length); body.set(sealed, pub.length + nonce.length);
    return await invoke(cmd, body, { headers });
  } finally {
    plain.fill(0);
  }
}

// ---------- request ----------

async function openLink(link, changeToken = false) {
  announce("");
  show("loading");
  try {
    view = await invoke("open_request", { link, changeToken });
    viewLink = link;
    renderRequest();
  } catch (err) {
    view = null;
    showError(err);
  }
}

function renderRequest() {
  if (view.refusal) return renderRefusal();
  $("tenant").textContent = view.tenant.displayName;
  $("origin").textContent = view.origin;
  $("expires").textContent = new Date(view.expiresAt).toLocaleString(lang === "hi" ? "hi-IN" : "en-IN");
  $("doc-count").textContent = t("docCount", view.documents.length);
  const list = $("doc-list");
  list.replaceChildren(...view.documents.map((d) => { const li = document.createElement("li"); li.textContent = d.name; return li; }));
  const cert = view.certificate;
  $("cert").textContent = cert
    ? `${cert.info.commonName || cert.info.subject} — ${cert.info.issuer} — ${t("validUntil")} ${cert.info.notAfter}`
    : "—";
  $("expected-row").hidden = !view.expectedSigner;
  $("expected-signer").textContent = view.expectedSigner || "";
  const warn = $("cert-warning");
  warn.hidden = true;
  if (cert) {
    const v = cert.validity;
    if (v.state === "expiring_soon") { warn.textContent = t("certExpiring", v.daysLeft); warn.hidden = false; }
    if (v.state === "expired") { warn.textContent = t("certExpired"); warn.hidden = false; }
    if (v.state === "not_yet_valid") { warn.textContent = t("certNotYet"); warn.hidden = false; }
  }
  const blocker = $("request-blocker");
  if (view.blocker) {
    const b = view.blocker;
    blocker.textContent = `${b.code}: ${errText(b.code)} ${resText(b.code)} (${t("details")}: ${b.message})`;
    blocker.hidden = false;
    announce(blocker.textContent);
  } else {
    blocker.hidden = true;
  }
  $("sign-btn").disabled = !!view.blocker;
  $("session-note").hidden = !view.sessionActive;
  show("request");
  markPainted("ss:request-shown");
}

// The token's certificate may not sign this request (someone else's certificate, or one
// that may only encrypt): say who asked for whom and what the token holds. No PIN field.
function renderRefusal() {
  const r = view.refusal, e = r.error, h = r.holds;
  const mismatch = e.code === "SS_SIGNER_MISMATCH";
  $("signer-title").textContent = t(mismatch ? "signerMismatchTitle" : "keyUsageTitle");
  $("signer-intro").textContent = t(mismatch ? "signerIntro" : "keyUsageIntro", r.portal);
  $("signer-portal").textContent = `${r.portal} (${view.origin})`;
  $("signer-expected-row").hidden = !r.expected;
  $("signer-expected").textContent = r.expected || "";
  $("held-cn").textContent = h.commonName || t("notPresent");
  $("held-serial").textContent = h.subjectSerialNumber || t("notPresent");
  $("held-class").textContent = h.classes.length ? h.classes.join(", ") : t("noClass");
  $("held-thumb").textContent = h.sha256Thumbprint;
  $("held-usage").textContent = h.keyUsage.length ? h.keyUsage.join(", ") : t("notPresent");
  $("signer-code").textContent = e.code;
  $("signer-message").textContent = e.message;
  const resolution = resText(e.code);
  $("signer-resolution").textContent = resolution;
  show("signer");
  announce(`${e.code}: ${$("signer-title").textContent}. ${resolution}`);
  markPainted("ss:signer-refused-shown");
}

async function declineOpen() {
  try { await invoke("decline_request", { requestId: view.requestId }); view = null; viewLink = null; announce(t("declined")); show("home"); takeLink(); } catch (err) { showError(err); }
}

async function startSigning() {
  if (!view || view.refusal) return;
  performance.mark("ss:sign-clicked");
  const step = view.gate;
  if (step.next === "prompt") return biometric();
  if (step.next === "skipPin") return sign();
  return askPin();
}

async function biometric() {
  $("bio-text").textContent = t("bioWaiting");
  $("bio-retry").hidden = true;
  show("bio");
  try {
    const step = await invoke("biometric_prompt", { requestId: view.requestId, reason: t("bioReason") });
    view.gate = step;
    if (step.next === "skipPin") return sign();
    if (step.next === "askPin") return askPin();
    if (step.next === "retryOrCancel") {
      $("bio-text").textContent = t("bioFailed");
      $("bio-retry").hidden = false;
      announce(t("bioFailed"));
      return;
    }
    showError({ code: "SS_SIGN_CANCELLED" }, () => renderRequest());
  } catch (err) { showError(err); }
}

// ---------- PIN ----------

function askPin(retries) {
  if (!view || view.refusal) return; // never a PIN field for a refused signer
  const r = retries || view?.token?.pin?.retries;
  const policy = view?.token?.pinPolicy;
  $("pin-tries").textContent = triesText(r);
  $("pin-rules").textContent = policy ? t("pinRules", policy.minLen, policy.maxLen) : "";
  $("final-try").hidden = !isFinalTry(r);
  $("final-try-confirm").checked = false;
  $("pin-error").textContent = "";
  $("pin-input").value = "";
  show("pin");
  $("pin-input").focus();
  markPainted("ss:pin-shown");
}

async function submitPin(ev) {
  ev.preventDefault();
  const input = $("pin-input");
  const pin = input.value;
  input.value = ""; // cleared before anything else happens
  const policy = view?.token?.pinPolicy;
  if (policy && (pin.length < policy.minLen || pin.length > policy.maxLen)) {
    const msg = t("pinLength", policy.minLen, policy.maxLen);
    $("pin-error").textContent = msg;
    announce(msg);
    input.focus();
    return;
  }
  const confirmFinalTry = !$("final-try").hidden && $("final-try-confirm").checked;
  try {
    await invokeSecrets("verify_pin", [pin], { "ss-request-id": view.requestId, "ss-confirm-final-try": confirmFinalTry ? "1" : "0" });
    // The verified PIN passed the biometric gate (it is the fallback after a failed or
    // cancelled prompt): a later Sign on this request goes straight to signing.
    if (view.gate && view.gate.next !== "prompt") view.gate = { next: "skipPin" };
    await sign();
  } catch (err) {
    const e = normalise(err);
    if (e.code === "SS_PIN_INVALID") {
      $("pin-tries").textContent = triesText(e.retries);
      $("final-try").hidden = !isFinalTry(e.retries);
      const msg = `${e.code}: ${errText(e.code)} ${triesText(e.retries)}. ${resText(e.code)}`;
      $("pin-error").textContent = msg;
      announce(msg);
      input.focus();
    } else if (e.code === "SS_PIN_FINAL_TRY") {
      $("final-try").hidden = false;
      $("pin-error").textContent = `${e.code}: ${errText(e.code)} ${resText(e.code)}`;
      announce(t("finalTryConfirm"));
    } else if (e.code === "SS_PIN_FORMAT") {
      const p = view?.token?.pinPolicy;
      const msg = `${e.code}: ${errText(e.code)}${p ? ` ${t("pinLength", p.minLen, p.maxLen)}` : ""}`;
      $("pin-error").textContent = msg;
      announce(msg);
    } else {
      showError(e);
    }
  }
}

// Cancel at the PIN screen: the portal is told (SS_SIGN_CANCELLED), the request is closed.
async function cancelAtPin() {
  $("pin-input").value = "";
  try {
    if (view) await invoke("decline_request", { requestId: view.requestId });
    view = null; viewLink = null;
    showError({ code: "SS_SIGN_CANCELLED", message: t("pinCancelled") });
  } catch (err) { showError(err); }
}

// ---------- signing ----------

let progressBase = 0;    // documents already signed and kept when this pass started

async function sign() {
  const total = view.documents.length;
  try {
    progressBase = (await invoke("signing_progress", { requestId: view.requestId })).signed;
  } catch { progressBase = 0; }
  setProgress(progressBase, total);
  show("signing");
  try {
    const outcome = await invoke("sign_request", { requestId: view.requestId });
    $("done-msg").textContent = t("done", t("docCount", outcome.signed), view.tenant.displayName);
    view = null; viewLink = null;
    $("link-waiting-show").hidden = true;
    show("done");
    announce("");
    refreshBanner();
  } catch (err) {
    const e = normalise(err);
    if (e.code === "SS_PIN_REQUIRED") return askPinFresh();
    // Cancelled or token gone mid-batch: the signed documents are kept; "Try again" resumes.
    const resumable = ["SS_SIGN_CANCELLED", "SS_TOKEN_NOT_PRESENT", "SS_TOKEN_ERROR", "SS_NETWORK"].includes(e.code);
    showError(e, resumable ? resume : null);
  }
}

// Back to signing what is left: fresh token state first (the card may have been replaced).
async function resume() {
  try {
    const s = await invoke("pin_status");
    if (view.token) view.token.pin = s.pin;
    if (s.pin.status === "SESSION_ACTIVE") return sign();
    return askPin(s.pin.retries);
  } catch (err) {
    showError(err, resume);
  }
}

async function askPinFresh() {
  try {
    const s = await invoke("pin_status");
    if (view.token) view.token.pin = s.pin;
    askPin(s.pin.retries);
  } catch (err) { showError(err, resume); }
}

function setProgress(done, total) {
  $("progress").max = total;
  $("progress").value = done;
  $("progress-text").textContent = t("progress", done, total);
}

// ---------- session banner ----------

async function refreshBanner() {
  let ms = null;
  try { ms = await invoke("session_remaining"); } catch { ms = null; }
  const banner = $("session-banner");
  if (ms == null) { banner.hidden = true; return; }
  const secs = Math.ceil(ms / 1000);
  $("session-text").textContent = t("sessionLeft", Math.floor(secs / 60), secs % 60);
  banner.hidden = false;
}

async function logoutNow() {
  try {
    await invoke("logout");
    announce(t("loggedOut"));
  } catch (err) { showError(err); }
  refreshBanner();
}

// ---------- PIN management ----------

async function openPinManagement() {
  show("pinmgmt");
  try {
    const s = await invoke("pin_status");
    $("pm-label").textContent = s.label;
    $("pm-status").textContent = s.pin.status;
    $("pm-status-text").textContent = statusText(s.pin.status);
    $("pm-tries").textContent = triesText(s.pin.retries);
    // At the final try a PIN change spends it (the current PIN is checked): only with
    // an explicit confirmation, never by default.
    $("cp-final-try").hidden = !isFinalTry(s.pin.retries);
    $("cp-final-confirm").checked = false;
  } catch (err) { showError(err); }
}

async function changePin(ev) {
  ev.preventDefault();
  const [o, n, n2] = ["cp-old", "cp-new", "cp-new2"].map((id) => { const v = $(id).value; $(id).value = ""; return v; });
  if (n !== n2) { announce(t("pinMismatch")); return; }
  const atFinalTry = !$("cp-final-try").hidden;
  const confirmFinalTry = atFinalTry && $("cp-final-confirm").checked;
  $("cp-final-confirm").checked = false;
  // At the final try nothing is sent without the confirmation (Rust refuses it too).
  if (atFinalTry && !confirmFinalTry) {
    announce(`SS_PIN_FINAL_TRY: ${errText("SS_PIN_FINAL_TRY")} ${resText("SS_PIN_FINAL_TRY")}`);
    $("cp-final-confirm").focus();
    return;
  }
  try {
    await invokeSecrets("change_pin", [o, n], { "ss-confirm-final-try": confirmFinalTry ? "1" : "0" });
    announce(t("pinChanged"));
    openPinManagement();
  } catch (err) {
    const e = normalise(err);
    if (e.code === "SS_PIN_FINAL_TRY") {
      // Nothing reached the token: ask for the confirmation and let the user type again.
      $("cp-final-try").hidden = false;
      announce(`${e.code}: ${errText(e.code)} ${resText(e.code)}`);
      $("cp-old").focus();
      return;
    }
    showError(e);
  }
}

async function unblockPin(ev) {
  ev.preventDefault();
  const [puk, n, n2] = ["puk-input", "puk-new", "puk-new2"].map((id) => { const v = $(id).value; $(id).value = ""; return v; });
  // A mistyped new PIN would leave the user with a PIN they do not know: nothing is sent.
  if (n !== n2) { announce(t("pinMismatch")); return; }
  try {
    await invokeSecrets("unblock_pin", [puk, n], {});
    announce(t("pinUnblocked"));
    openPinManagement();
  } catch (err) { showError(err); }
}

// ---------- settings ----------

async function openSettings() {
  show("settings");
  try {
    const { settings, biometricAvailability, phone } = await invoke("get_settings");
    $("set-api").value = settings.apiBaseUrl;
    $("set-idle").value = settings.idleTimeoutMinutes;
    const src = settings.tokenSource;
    $("src-pkcs11").checked = src.kind === "pkcs11";
    $("src-pcsc").checked = src.kind === "pcscReader";
    // The phone choice is offered on phones, and shown wherever it is the saved source.
    $("src-phone-choice").hidden = !(phone || src.kind === "phone");
    $("src-phone").checked = src.kind === "phone";
    $("set-link").value = src.link || "auto";
    $("set-device").value = src.device || "";
    showPhoneFields();
    $("set-module").value = src.modulePath || "";
    $("set-token-label").value = src.tokenLabel || "";
    $("set-reader").value = src.reader || "";
    $("set-key").value = settings.signingKey || "";
    $("set-bio").checked = settings.biometric.enabled;
    $("set-lockout").value = settings.biometric.onLockout;
    const unavailable = biometricAvailability.state !== "available";
    $("set-bio").disabled = unavailable;
    $("bio-availability").textContent = unavailable ? t("bioUnavailable") : "";
    $("bio-availability").title = unavailable ? biometricAvailability.reason || "" : "";
  } catch (err) { showError(err); }
  findTokens();
}

// ---------- token discovery (settings) ----------

let discovery = null;    // the last discover_tokens answer

// Lists every token found (PKCS#11 modules: settings path, p11-kit, the DSC vendors'
// known paths; PC/SC readers). Nothing logs in; no PIN is asked.
async function findTokens() {
  $("discovery-status").textContent = t("searching");
  $("token-list").replaceChildren();
  $("cert-choice").hidden = true;
  try {
    discovery = await invoke("discover_tokens");
  } catch (err) {
    $("discovery-status").textContent = "";
    return showError(err);
  }
  renderTokens();
}

function choiceItem(name, id, text, hint, onPick) {
  const li = document.createElement("li");
  const input = document.createElement("input");
  input.type = "radio"; input.name = name; input.id = id;
  input.addEventListener("change", onPick);
  const label = document.createElement("label");
  label.htmlFor = id; label.textContent = text;
  li.append(input, label);
  if (hint) { const h = document.createElement("span"); h.className = "hint"; h.textContent = hint; li.append(h); }
  return li;
}

// A module's vendor (a proper name, as the table has it) and, when the name does not say
// what it is, its kind in the user's words (kind_<key>: "software token").
function vendorText(m) {
  if (!m.vendor) return t("unknownVendor");
  return m.kind && known(`kind_${m.kind}`) ? t("vendorWithKind", m.vendor, t(`kind_${m.kind}`)) : m.vendor;
}

function renderTokens() {
  if (!discovery) return;
  const items = [];
  discovery.modules.forEach((m, mi) => {
    const vendor = vendorText(m);
    if (m.error) {
      const li = document.createElement("li");
      li.textContent = `${vendor} — ${t("moduleUnreadable")} (${m.error.code}: ${errText(m.error.code)})`;
      const h = document.createElement("span"); h.className = "hint"; h.textContent = m.path; li.append(h);
      items.push(li);
      return;
    }
    m.tokens.forEach((tok, ti) => {
      const text = `${tok.label} — ${vendor}`;
      const hint = `${[tok.manufacturer, tok.model, tok.serial].filter(Boolean).join(" · ")} — ${triesText(tok.pin.retries)} — ${m.path}`;
      // The label is kept only where the module shows several tokens (else "the only one").
      const label = m.tokens.length > 1 ? tok.label : null;
      items.push(choiceItem("found-token", `tok-${mi}-${ti}`, text, hint, () => pickToken({ modulePath: m.path, slot: tok.slot, label })));
    });
  });
  discovery.readers.forEach((r, ri) => {
    const hint = r.cardPresent ? t("readerWithCard") : t("readerNoCard");
    items.push(choiceItem("found-token", `rdr-${ri}`, t("readerLabel", r.name), hint, () => pickToken({ reader: r.name })));
  });
  $("token-list").replaceChildren(...items);
  $("discovery-status").textContent = items.length ? "" : t("noTokens");
}

// The certificates on the chosen token: subject, issuer, class, expiry; picking one
// fills the token source and the signing key (Save keeps them).
async function pickToken(source) {
  $("cert-list").replaceChildren();
  $("cert-choice").hidden = false;
  let certs;
  try {
    certs = await invoke("token_certificates", source.reader ? { reader: source.reader } : { modulePath: source.modulePath, slot: source.slot });
  } catch (err) { return showError(err); }
  if (!certs.length) {
    const li = document.createElement("li"); li.textContent = t("noCertificates");
    return $("cert-list").replaceChildren(li);
  }
  $("cert-list").replaceChildren(...certs.map((c, i) => {
    const info = c.info;
    const classes = info.indiaPki.map((k) => (known(`pki_${k}`) ? t(`pki_${k}`) : k)).join(", ") || t("noClass");
    const expired = c.validity.state === "expired" ? ` (${t("certExpiredShort")})` : "";
    const text = `${info.commonName || info.subject} — ${t("certClass")}: ${classes} — ${t("certExpiry")} ${info.notAfter}${expired}`;
    const hint = `${t("certSubject")}: ${info.subject} · ${t("certIssuer")}: ${info.issuer} · ${t("certId")} ${c.id}`;
    return choiceItem("found-cert", `cert-${i}`, text, hint, () => pickCertificate(source, c));
  }));
}

function pickCertificate(source, cert) {
  const pcsc = !!source.reader;
  $("src-pcsc").checked = pcsc;
  $("src-pkcs11").checked = !pcsc;
  showPhoneFields();
  $("set-module").value = pcsc ? "" : source.modulePath;
  $("set-token-label").value = pcsc ? "" : source.label || "";
  $("set-reader").value = pcsc ? source.reader : "";
  $("set-key").value = cert.id;
  announce(t("chosenKey", cert.id));
}

// The link and device fields belong to the phone source only.
function showPhoneFields() {
  $("phone-fields").hidden = !$("src-phone").checked;
}

function tokenSourceFromForm() {
  if ($("src-phone").checked) {
    const link = $("set-link").value;
    return link === "usb"
      ? { kind: "phone", link, device: $("set-device").value.trim() || null }
      : { kind: "phone", link };
  }
  return $("src-pcsc").checked
    ? { kind: "pcscReader", reader: $("set-reader").value.trim() || null }
    : { kind: "pkcs11", modulePath: $("set-module").value.trim() || null, tokenLabel: $("set-token-label").value.trim() || null };
}

async function saveSettings(ev) {
  ev.preventDefault();
  const settings = {
    apiBaseUrl: $("set-api").value.trim(),
    idleTimeoutMinutes: Number($("set-idle").value),
    biometric: { enabled: $("set-bio").checked, onLockout: $("set-lockout").value },
    tokenSource: tokenSourceFromForm(),
    signingKey: $("set-key").value.trim() || null,
  };
  try {
    await invoke("save_settings", { settings });
    announce(t("saved"));
  } catch (err) { showError(err); }
}

// ---------- wiring ----------

// One request at a time: while one is open (its screen, PIN entry, signing, kept
// signatures) a new link waits in Rust and is only announced; it opens once the open
// request is finished or declined. Rust refuses it too (SS_CONFLICT).
async function takeLink() {
  if (view) { $("link-waiting").hidden = false; $("link-waiting-show").hidden = false; announce(t("linkWaiting")); return; }
  const link = await invoke("startup_link");
  $("link-waiting").hidden = true;
  if (link) await openLink(link);
}

window.addEventListener("DOMContentLoaded", async () => {
  applyLanguage();
  $("lang").addEventListener("change", (e) => { lang = e.target.value === "hi" ? "hi" : "en"; localStorage.setItem("ss-lang", lang); applyLanguage(); if (view && (!$("screen-request").hidden || !$("screen-signer").hidden)) renderRequest(); if (!$("screen-settings").hidden) renderTokens(); });
  $("nav-home").addEventListener("click", () => show("home"));
  $("nav-pin").addEventListener("click", openPinManagement);
  $("nav-settings").addEventListener("click", openSettings);
  $("sign-btn").addEventListener("click", startSigning);
  $("decline-btn").addEventListener("click", declineOpen);
  $("signer-cancel").addEventListener("click", declineOpen);
  $("signer-retry").addEventListener("click", () => { if (viewLink) openLink(viewLink, true); });
  $("bio-retry").addEventListener("click", biometric);
  $("bio-cancel").addEventListener("click", () => { if (view) renderRequest(); else show("home"); });
  $("pin-form").addEventListener("submit", submitPin);
  $("pin-cancel").addEventListener("click", cancelAtPin);
  $("signing-cancel").addEventListener("click", () => invoke("cancel_signing"));
  // A link that waited opens once the user has seen how the open request ended.
  $("done-ok").addEventListener("click", () => { show("home"); takeLink(); });
  $("error-ok").addEventListener("click", () => { if (view?.refusal) renderRefusal(); else if (view) show("request"); else { show("home"); takeLink(); } });
  $("error-retry").addEventListener("click", () => retryAction && retryAction());
  $("error-puk").addEventListener("click", openPinManagement);
  $("logout-btn").addEventListener("click", logoutNow);
  $("link-waiting-show").addEventListener("click", () => { if (view?.refusal) renderRefusal(); else if (view) renderRequest(); });
  $("change-form").addEventListener("submit", changePin);
  $("puk-form").addEventListener("submit", unblockPin);
  $("settings-form").addEventListener("submit", saveSettings);
  for (const id of ["src-pkcs11", "src-pcsc", "src-phone"]) $(id).addEventListener("change", showPhoneFields);
  $("find-tokens").addEventListener("click", findTokens);

  await listen("token-event", (e) => {
    const p = e.payload || {};
    if (p.event === "progress" && view) setProgress(progressBase + p.done, view.documents.length);
    if (p.event === "sessionStarted") refreshBanner();
    if (p.event === "sessionEnded") { refreshBanner(); announce(p.reason === "removed" ? t("tokenRemoved") : t("sessionEnded")); }
  });
  await listen("link-waiting", () => takeLink());
  bannerTimer = setInterval(refreshBanner, 1000);
  show("home");
  markPainted("ss:home-shown");
  await takeLink();
});
