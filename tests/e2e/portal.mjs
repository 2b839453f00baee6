// The demo "portal": what a portal's server does with the SecureSign REST API (validate its
// key and origin, create a session with documents, poll the session), and how it checks the
// signatures it gets back with openssl — a tool that knows nothing about SecureSign.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class Portal {
  constructor({ api, key, origin }) { Object.assign(this, { api, key, origin }); }

  async call(method, path, body, key = this.key) {
    const res = await fetch(`${this.api}${path}`, {
      method,
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15000),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = { raw: text }; }
    return { status: res.status, body: json };
  }

  /** POST /v1/auth/validate for `origin`. */
  validate(origin = this.origin, key = this.key) {
    return this.call("POST", "/v1/auth/validate", { origin, platform: "web" }, key);
  }

  /**
   * POST /v1/auth/session for `docs` ([{id, name, content}]), digests computed here.
   * `format` is "raw" or "cms" (sent only when given); `ttlSeconds` optional.
   */
  createSession(docs, { format, ttlSeconds, origin = this.origin, key = this.key } = {}) {
    const body = {
      origin,
      documents: docs.map((d) => ({
        id: d.id, name: d.name, digestAlgorithm: "SHA-256",
        digest: createHash("sha256").update(d.content).digest("base64"),
      })),
    };
    if (format) body.signatureFormat = format;
    if (ttlSeconds) body.ttlSeconds = ttlSeconds;
    return this.call("POST", "/v1/auth/session", body, key);
  }

  /** GET /v1/auth/session/{id}. */
  session(id) { return this.call("GET", `/v1/auth/session/${id}`); }

  /** Polls the session until its status is not `pending` (or the time is up). */
  async waitFinished(id, ms = 15000) {
    const end = Date.now() + ms;
    for (;;) {
      const s = await this.session(id);
      if (s.body?.status !== "pending" || Date.now() > end) return s;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** A few demo documents with real content. */
export function demoDocuments(n, tag = "") {
  return Array.from({ length: n }, (_, i) => ({
    id: `doc-${i + 1}`,
    name: `Contract ${i + 1}${tag}.txt`,
    content: Buffer.from(`SecureSign demo contract ${i + 1}${tag}\nSigned on ${new Date().toISOString()}\n`),
  }));
}

/**
 * The lab PKI a portal trusts: the root (trust anchor) and the licensed CA (intermediate) PEM
 * files, from SECURESIGN_LAB_TRUST_ANCHORS / SECURESIGN_LAB_INTERMEDIATES (securesign-lab's
 * output, exported by tests/e2e/env.sh).
 */
export function labTrust(env = process.env) {
  const root = env.SECURESIGN_LAB_TRUST_ANCHORS, ca = env.SECURESIGN_LAB_INTERMEDIATES;
  if (!root || !ca) throw new Error("SECURESIGN_LAB_TRUST_ANCHORS / SECURESIGN_LAB_INTERMEDIATES are not set (securesign-lab output)");
  return { root, ca };
}

/**
 * Writes every document, its signature and the certificate under `dir`, and verifies each
 * signature with openssl, trusting only the lab root (`trust.root`, with the licensed CA
 * `trust.ca` as the intermediate):
 * CMS: `openssl cms -verify -binary -inform DER -content DOC -CAfile ROOT+CA -certfile CA -purpose any`
 * (signature and signer's certificate path; never -noverify). OpenSSL 3.0's `cms -verify` has
 * no `-untrusted` and builds the path only from the certificates inside the CMS (`-certfile`
 * only finds signers), so the licensed CA also goes into the -CAfile bundle; without
 * -partial_chain the path must still end at the self-signed lab root (a bundle of the CA
 * alone is refused);
 * raw: `openssl dgst -sha256 -verify PUBKEY -signature SIG DOC`, and the signer certificate
 * with `openssl verify -CAfile ROOT -untrusted CA CERT`.
 * Also checks that a changed document is refused. Returns the files written; throws on any failure.
 */
export function verifyWithOpenssl(session, docs, format, dir, trust = labTrust()) {
  mkdirSync(dir, { recursive: true });
  const files = [];
  const cert = join(dir, "signer.der");
  writeFileSync(cert, Buffer.from(session.signerCertificate || "", "base64"));
  const pub = join(dir, "signer.pub.pem");
  const chain = join(dir, "trust-root-and-ca.pem");
  writeFileSync(chain, Buffer.concat([readFileSync(trust.root), readFileSync(trust.ca)]));
  if (format !== "cms") {
    const certPem = join(dir, "signer.pem");
    execFileSync("openssl", ["x509", "-inform", "DER", "-in", cert, "-out", certPem], { stdio: "pipe" });
    try {
      execFileSync("openssl", ["verify", "-CAfile", trust.root, "-untrusted", trust.ca, certPem], { stdio: "pipe" });
    } catch (err) {
      throw new Error(`openssl verify refused the signer certificate: ${String(err.stderr || err.stdout || err.message).trim()}`);
    }
    writeFileSync(pub, execFileSync("openssl", ["x509", "-inform", "DER", "-in", cert, "-pubkey", "-noout"]));
  }
  for (const doc of docs) {
    const signed = (session.documents || []).find((d) => d.id === doc.id);
    if (!signed?.signature) throw new Error(`no signature for ${doc.id}`);
    const docFile = join(dir, doc.name);
    const sigFile = join(dir, `${doc.name}.${format === "cms" ? "p7s" : "sig"}`);
    writeFileSync(docFile, doc.content);
    writeFileSync(sigFile, Buffer.from(signed.signature, "base64"));
    const verify = (content) => {
      const args = format === "cms"
        ? ["cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", content,
          "-CAfile", chain, "-certfile", trust.ca, "-purpose", "any", "-out", "/dev/null"]
        : ["dgst", "-sha256", "-verify", pub, "-signature", sigFile, content];
      try { execFileSync("openssl", args, { stdio: "pipe" }); return true; } catch { return false; }
    };
    if (!verify(docFile)) throw new Error(`openssl refused the signature of ${doc.name}`);
    const tampered = join(dir, `${doc.name}.tampered`);
    const bytes = Buffer.from(doc.content); bytes[0] ^= 1;
    writeFileSync(tampered, bytes);
    if (verify(tampered)) throw new Error(`openssl accepted a changed ${doc.name}`);
    files.push(docFile, sigFile);
  }
  return files;
}
