// Every user-visible text of the app is localised (English and Hindi), run with
// `node --test tests/app/i18n.test.mjs` (no build, no browser; e2e.sh runs it first).
// Fails on: a key missing in one language, a key used by index.html or app.js that no
// language has, an SS_* code of the core (core/src/error.rs) without its err_/res_ texts,
// a PIN status, retry indicator, PKCS#11 module kind or India PKI class without its words, English text in
// index.html outside data-i18n, a literal string put on screen by app.js, and Hindi
// values copied unchanged from English.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import vm from "node:vm";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (p) => readFileSync(join(root, p), "utf8");
const sandbox = { window: {} };
vm.runInNewContext(read("ui/i18n.js"), sandbox);
const { en, hi } = sandbox.window.SS_STRINGS;
const html = read("ui/index.html");
const app = read("ui/app.js");
const errorRs = read("core/src/error.rs");
const statusRs = read("core/src/status.rs");
const certRs = read("core/src/cert.rs");
const vendorsRs = read("core/src/backend/pkcs11/vendors.rs");

const snake = (name) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
const enumVariants = (src, name) => {
  const body = src.slice(src.indexOf(`pub enum ${name} {`));
  const block = body.slice(0, body.indexOf("\n}"));
  return [...block.matchAll(/^\s{4}([A-Z][A-Za-z0-9]*)[,\s{]/gm)].map((m) => m[1]);
};

test("English and Hindi have the same keys, none empty", () => {
  assert.deepEqual(Object.keys(hi).sort(), Object.keys(en).sort());
  for (const [k, v] of Object.entries({ ...en, ...hi })) {
    if (typeof v === "function") continue;
    assert.ok(String(v).trim().length > 0, `empty text: ${k}`);
  }
  for (const k of Object.keys(en)) {
    assert.equal(typeof hi[k], typeof en[k], `${k}: string in one language, function in the other`);
    if (typeof en[k] === "function") assert.equal(hi[k].length, en[k].length, `${k}: arguments differ`);
  }
});

test("Hindi is translated, not copied", () => {
  // Names and symbols that read the same in both languages.
  const same = new Set(["appName", "puk", "notPresent"]);
  const copied = Object.keys(en).filter((k) => typeof en[k] === "string" && en[k] === hi[k] && !same.has(k));
  assert.deepEqual(copied, [], `untranslated Hindi: ${copied.join(", ")}`);
});

test("every key index.html uses exists", () => {
  const keys = [...html.matchAll(/data-i18n(?:-aria)?="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(keys.length > 50, "index.html keys not found");
  const missing = keys.filter((k) => !(k in en));
  assert.deepEqual(missing, [], `missing keys: ${missing.join(", ")}`);
});

test("every key app.js names exists", () => {
  const keys = [...app.matchAll(/\bt\("([A-Za-z0-9_]+)"/g)].map((m) => m[1])
    .concat(Object.values(JSON.parse(/const TRIES_KEYS = (\{[^}]*\})/.exec(app)[1])));
  assert.ok(keys.length > 40, "app.js keys not found");
  const missing = [...new Set(keys)].filter((k) => !(k in en));
  assert.deepEqual(missing, [], `missing keys: ${missing.join(", ")}`);
});

test("every SS_* code of the core has its text and resolution in both languages", () => {
  const codes = [...errorRs.matchAll(/#\[serde\(rename = "(SS_[A-Z_]+)"\)\]/g)].map((m) => m[1]);
  const declared = Number(/pub const ALL: \[ErrorCode; (\d+)\]/.exec(errorRs)?.[1]);
  assert.equal(codes.length, declared, "every ErrorCode variant found in error.rs");
  for (const code of codes) {
    for (const [name, strings] of [["en", en], ["hi", hi]]) {
      assert.ok(strings[`err_${code}`], `${name}: err_${code} missing`);
      assert.ok(strings[`res_${code}`], `${name}: res_${code} missing`);
    }
  }
  // The UI looks errors up by code, never shows the core's English resolution.
  assert.ok(/errText\(/.test(app) && /resText\(/.test(app));
  assert.ok(!/\.resolution\b/.test(app.replace(/\/\/.*$/gm, "")), "app.js shows a core resolution");
});

test("every PIN status, retry indicator, module kind and India PKI class has its words", () => {
  const statuses = [...statusRs.matchAll(/Self::\w+ => "([A-Z_]+)"/g)].map((m) => m[1]);
  assert.ok(statuses.includes("NOT_VERIFIED") && statuses.includes("SESSION_ACTIVE"), String(statuses));
  for (const s of statuses) assert.ok(en[`status_${s}`] && hi[`status_${s}`], `status_${s} missing`);
  const indicators = enumVariants(statusRs, "RetryIndicator").map(snake);
  assert.ok(indicators.includes("more_than_one"), String(indicators));
  for (const i of indicators.filter((i) => i !== "exact")) {
    const key = new RegExp(`"${i}": "(\\w+)"`).exec(app)?.[1];
    assert.ok(key && en[key] && hi[key], `triesText has no words for ${i}`);
  }
  // A PKCS#11 module's kind (vendors.rs ModuleKind, sent camelCase) is worded by key.
  const kinds = enumVariants(vendorsRs, "ModuleKind").map((k) => k[0].toLowerCase() + k.slice(1));
  assert.ok(kinds.includes("softwareToken"), String(kinds));
  for (const k of kinds) assert.ok(en[`kind_${k}`] && hi[`kind_${k}`], `kind_${k} missing`);
  const classes = enumVariants(certRs, "IndiaPkiClass").map(snake);
  assert.ok(classes.includes("class3"), String(classes));
  for (const c of classes) assert.ok(en[`pki_${c}`] && hi[`pki_${c}`], `pki_${c} missing`);
});

test("index.html has no English text outside data-i18n", () => {
  const body = html.slice(html.indexOf("<body"));
  const bare = [];
  for (const m of body.matchAll(/<([a-z0-9]+)([^>]*)>([^<]*)/gi)) {
    const [, tag, attrs, text] = m;
    if (!/[A-Za-z]/.test(text)) continue;
    if (/data-i18n=/.test(attrs)) continue;
    // The language menu names each language in itself.
    if (tag === "option" && /value="(en|hi)"/.test(attrs)) continue;
    bare.push(`<${tag}${attrs}>${text.trim()}`);
  }
  assert.deepEqual(bare, [], `bare text: ${bare.join(" | ")}`);
});

test("app.js puts no literal text on screen", () => {
  const code = app.replace(/^\s*\/\/.*$/gm, "");
  // A string literal at `at` (quote included), with its ${…} parts cut out.
  const literalAt = (at) => {
    const quote = code[at];
    let i = at + 1, depth = 0, out = "";
    for (; i < code.length; i++) {
      const c = code[i];
      if (depth === 0 && c === "\\") { i++; continue; }
      if (quote === "`" && depth === 0 && c === "$" && code[i + 1] === "{") { depth = 1; i++; continue; }
      if (depth > 0) { if (c === "{") depth++; if (c === "}") depth--; continue; }
      if (c === quote) break;
      out += c;
    }
    return out;
  };
  const bare = [];
  for (const m of code.matchAll(/(\.textContent\s*=\s*|announce\(\s*|message:\s*)(["'`])/g)) {
    const text = literalAt(m.index + m[0].length - 1);
    // A word of two letters or more is text a user reads (codes like SS_* are data).
    if (/[A-Za-z]{2,}/.test(text.replace(/SS_[A-Z_]+/g, ""))) bare.push(`${m[1]}${m[2]}${text}`);
  }
  assert.deepEqual(bare, [], `literal text: ${bare.join(" | ")}`);
});
