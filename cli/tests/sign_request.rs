//! `securesign sign --request`: a portal's signing request signed by the real `securesign`
//! binary on a fresh SoftHSM2 token, against the real `securesign-server` binary on
//! loopback (a tenant, a live key and sessions made as a portal makes them), the posted
//! signatures judged by `openssl cms -verify` and by the server's own signer trust (the
//! token's lab PKI is the server's trust anchor).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{json, securesign};
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::verify_digest_signature;
use securesign_testlab::{CrlFreshness, LabPki, LabToken, PivLab, PIV_PIN, PIV_READER};
use serde_json::{json, Value};

const PORTAL: &str = "https://portal.example.gov.in";

/// The server binary beside the `securesign` binary under test. `cargo nextest run
/// --workspace` builds it; a run of this package alone builds it here once.
fn server_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_securesign"))
        .parent()
        .unwrap();
    let bin = dir.join(format!("securesign-server{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "securesign-server",
                "--bin",
                "securesign-server",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build securesign-server");
    }
    bin
}

/// The real server on 127.0.0.1 with a tenant "Example Portal" (origin [`PORTAL`]): with a
/// lab PKI, a live key and that PKI as its trust anchor; without, a test key (its sessions
/// complete with `trusted: false`). Killed on drop.
struct Server {
    child: Child,
    base: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(tok: &LabToken) -> Self {
        Self::start_with(Some(tok.pki()))
    }

    fn start_with(trust: Option<&LabPki>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("securesign.db");
        let admin = |args: &[&str]| {
            let out = Command::new(server_binary())
                .arg("--db")
                .arg(&db)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        let tenant = admin(&["tenant", "create", "--name", "Example Portal"]);
        admin(&["domain", "add", "--tenant", &tenant, PORTAL]);
        let mode = if trust.is_some() { "live" } else { "test" };
        let key = admin(&["key", "create", "--tenant", &tenant, "--mode", mode]);
        let mut serve = Command::new(server_binary());
        serve
            .arg("--db")
            .arg(&db)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(pki) = trust {
            pki.publish_crls(CrlFreshness::Current).unwrap();
            serve
                .arg("--trust-anchors")
                .arg(pki.root_pem())
                .arg("--intermediates")
                .arg(pki.ca_pem())
                .arg("--crl-dir")
                .arg(pki.crl_dir());
        }
        let mut child = serve
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        Self {
            child,
            base: format!("http://{addr}"),
            key,
            _dir: dir,
        }
    }

    /// `POST /v1/auth/session` as the portal: one document per file, the answer.
    fn create_session(&self, files: &[PathBuf], format: &str, signer: Option<Value>) -> Value {
        let documents: Vec<Value> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let digest = Sha256Digest::of(&std::fs::read(f).unwrap());
                json!({"id": format!("doc-{i}"),
                       "name": f.file_name().unwrap().to_string_lossy(),
                       "digestAlgorithm": "SHA-256", "digest": b64(&digest.0)})
            })
            .collect();
        let mut body = json!({"origin": PORTAL, "documents": documents, "signatureFormat": format});
        if let Some(signer) = signer {
            body["signer"] = signer;
        }
        self.curl(&["-X", "POST", "/v1/auth/session"], Some(&body))
    }

    /// `GET /v1/auth/session/{id}` as the portal.
    fn session(&self, session_id: &str) -> Value {
        self.curl(&[&format!("/v1/auth/session/{session_id}")], None)
    }

    fn curl(&self, args: &[&str], body: Option<&Value>) -> Value {
        let (path, method) = args.split_last().unwrap();
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-H"])
            .arg(format!("Authorization: Bearer {}", self.key))
            .args(method)
            .arg(format!("{}{path}", self.base));
        if let Some(body) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(body.to_string());
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "curl: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn documents(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("tender {i}.pdf"));
            std::fs::write(&p, format!("%PDF-1.7 tender {i}")).unwrap();
            p
        })
        .collect()
}

/// `securesign --module <tok> ARGS` (`setsid`: without a controlling terminal).
fn run(tok: &LabToken, args: &[&str], stdin: &str) -> Output {
    let module = tok.module_path().display().to_string();
    securesign(
        &[&["--module", module.as_str()], args].concat(),
        tok.env(),
        stdin,
    )
}

/// The arguments of `securesign sign --request` for a created session with the token's
/// `key`, no questions asked (`--yes`), the PIN read from stdin, the answer in JSON.
fn sign_request_args<'a>(created: &'a Value, server: &'a Server, key: &'a str) -> [&'a str; 10] {
    [
        "sign",
        "--request",
        created["deepLink"].as_str().unwrap(),
        "--api",
        &server.base,
        "--key",
        key,
        "--yes",
        "--pin-stdin",
        "--json",
    ]
}

/// The shell command line of `securesign sign --request` for a created session, with the
/// RSA key, for [`on_terminal`].
fn sign_command(tok: &LabToken, created: &Value, server: &Server, extra: &str) -> String {
    format!(
        "'{}' --module '{}' sign --request '{}' --api '{}' --key signer-rsa {extra}",
        env!("CARGO_BIN_EXE_securesign"),
        tok.module_path().display(),
        created["deepLink"].as_str().unwrap(),
        server.base,
    )
}

/// Runs `command` on a terminal of its own (`script` makes a pseudo-terminal) and types
/// each answer once its prompt is on screen (the PIN at the no-echo prompt): the exit code
/// and everything the terminal showed.
///
/// `script` starts the command with `$SHELL -c`; `exec` makes the program replace that
/// shell, so a Ctrl-C typed on the terminal reaches the program alone (dash, Debian's
/// `/bin/sh`, would otherwise wait in the same process group and die of the SIGINT).
fn on_terminal(tok: &LabToken, command: &str, answers: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new("script")
        .args(["-qec", &format!("exec {command}"), "/dev/null"])
        .envs(tok.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut screen = Vec::new();
    for (prompt, typed) in answers {
        while !String::from_utf8_lossy(&screen).contains(prompt) {
            let mut chunk = [0u8; 4096];
            let n = std::io::Read::read(&mut stdout, &mut chunk).unwrap();
            assert!(
                n > 0,
                "no {prompt:?} on {}",
                String::from_utf8_lossy(&screen)
            );
            screen.extend_from_slice(&chunk[..n]);
        }
        std::io::Write::write_all(&mut stdin, typed.as_bytes()).unwrap();
    }
    std::io::Read::read_to_end(&mut stdout, &mut screen).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    (status.code(), String::from_utf8_lossy(&screen).into_owned())
}

fn pin_state(tok: &LabToken) -> Value {
    json(&run(tok, &["pin", "status", "--json"], ""))["pin"].clone()
}

#[test]
fn a_portal_request_is_shown_confirmed_signed_and_posted_and_openssl_verifies_it() {
    let tok = LabToken::softhsm().unwrap();
    let server = Server::start(&tok);
    let dir = tempfile::tempdir().unwrap();
    let files = documents(dir.path(), 3);
    let thumbprint = Sha256Digest::of(tok.ec_cert_der()).to_hex();
    let created = server.create_session(
        &files,
        "cms",
        Some(json!({"certificateSha256": [thumbprint], "policyClasses": ["class2"]})),
    );
    let link = created["deepLink"].as_str().unwrap();
    let sign = |extra: &[&str], stdin: &str| {
        let args = [
            &[
                "sign",
                "--request",
                link,
                "--api",
                &server.base,
                "--key",
                "signer-ec",
            ][..],
            extra,
        ]
        .concat();
        run(&tok, &args, stdin)
    };

    // Without a terminal and without --yes: refused before the PIN, nothing posted.
    // (The test harness may own a terminal: the child gets none through setsid.)
    let out = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_securesign"))
        .args(["--module", &tok.module_path().display().to_string()])
        .args(["sign", "--request", link, "--api", &server.base])
        .args(["--key", "signer-ec", "--pin-stdin", "--json"])
        .envs(tok.env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_BAD_REQUEST", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--yes"));
    assert_eq!(v["request"]["tenant"]["displayName"], "Example Portal");

    let out = sign(&["--yes", "--pin-stdin", "--json"], "123456\n");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    // The request as shown: stable field names.
    let request = &v["request"];
    assert_eq!(request["tenant"]["displayName"], "Example Portal");
    assert_eq!(request["origin"], PORTAL);
    assert_eq!(request["signatureFormat"], "cms");
    assert!(request["expectedSigner"]
        .as_str()
        .unwrap()
        .contains(&thumbprint));
    let shown = request["documents"].as_array().unwrap();
    assert_eq!(shown.len(), 3);
    assert_eq!(shown[1]["name"], "tender 1.pdf");
    assert_eq!(
        shown[1]["digestSha256"],
        Sha256Digest::of(&std::fs::read(&files[1]).unwrap()).to_hex()
    );
    assert_eq!(v["certificate"]["sha256Thumbprint"], thumbprint.as_str());
    assert_eq!(v["result"]["signed"], 3);
    assert_eq!(v["result"]["status"], "completed");

    // The portal's view: completed by a trusted signer, each CMS verified by openssl.
    let session = server.session(created["sessionId"].as_str().unwrap());
    assert_eq!(session["status"], "completed", "{session}");
    assert_eq!(session["signer"]["trusted"], true, "{session}");
    for (i, f) in files.iter().enumerate() {
        let p7s = dir.path().join(format!("{i}.p7s"));
        std::fs::write(&p7s, common::b64(&session["documents"][i]["signature"])).unwrap();
        let ok = Command::new("openssl")
            .args(["cms", "-verify", "-binary", "-inform", "DER", "-noverify"])
            .arg("-in")
            .arg(&p7s)
            .arg("-content")
            .arg(f)
            .args(["-out", "/dev/null"])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    // Signing it again: the server says the request is finished.
    let out = sign(&["--yes", "--pin-stdin", "--json"], "123456\n");
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert!(
        matches!(
            v["error"]["code"].as_str(),
            Some("SS_CONFLICT" | "SS_NOT_FOUND")
        ),
        "{v}"
    );
}

#[test]
fn another_signer_is_refused_before_any_pin_try_and_the_request_stays_open() {
    let tok = LabToken::softhsm().unwrap();
    let server = Server::start(&tok);
    let dir = tempfile::tempdir().unwrap();
    let files = documents(dir.path(), 2);
    let created = server.create_session(
        &files,
        "raw",
        Some(json!({"subject": {"commonName": "Someone Else"}})),
    );
    let before = pin_state(&tok);
    let link = created["appLink"].as_str().unwrap();
    // A wrong PIN waits on stdin: had it reached the token, this would be SS_PIN_INVALID
    // and the token's retry state would change.
    let args = [
        "sign",
        "--request",
        link,
        "--api",
        &server.base,
        "--key",
        "signer-rsa",
        "--yes",
        "--pin-stdin",
    ];
    let out = run(&tok, &[&args[..], &["--json"]].concat(), "000000\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_SIGNER_MISMATCH", "{v}");
    assert_eq!(v["refusal"]["portal"], "Example Portal");
    assert_eq!(v["refusal"]["expected"], "\"Someone Else\"");
    assert_eq!(v["refusal"]["holds"]["commonName"], "Demo Signer");
    assert!(v.get("result").is_none());
    assert_eq!(pin_state(&tok), before, "no PIN try was spent");
    // People read the refusal and what to do on stderr.
    let out = run(&tok, &args, "000000\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expects \"Someone Else\"")
            && stderr.contains("No PIN was asked")
            && stderr.contains("error[SS_SIGNER_MISMATCH]"),
        "{stderr}"
    );
    assert_eq!(pin_state(&tok), before, "no PIN try was spent");
    let session = server.session(created["sessionId"].as_str().unwrap());
    assert_eq!(session["status"], "pending", "{session}");
}

#[test]
fn malformed_links_and_api_urls_are_refused_with_their_codes_before_anything_else() {
    let id = "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV";
    for (request, api, code) in [
        (
            "securesign://sign?requestId=short",
            "http://127.0.0.1:9",
            "SS_DEEP_LINK_INVALID",
        ),
        (
            "https://evil.example/sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV",
            "http://127.0.0.1:9",
            "SS_DEEP_LINK_INVALID",
        ),
        ("not a link", "http://127.0.0.1:9", "SS_DEEP_LINK_INVALID"),
        (id, "http://portal.example.gov.in", "SS_CONFIG"),
        (id, "https://api.example.in/v1", "SS_CONFIG"),
        // Nothing listens on port 9 of this computer.
        (id, "http://127.0.0.1:9", "SS_NETWORK"),
    ] {
        let out = securesign(
            &[
                "sign",
                "--request",
                request,
                "--api",
                api,
                "--yes",
                "--json",
            ],
            Vec::<(String, String)>::new(),
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{request} {api}");
        assert_eq!(json(&out)["error"]["code"], code, "{request} {api}");
    }
    // --request needs --api; a portal request takes no digests or files.
    for args in [
        &["sign", "--request", id][..],
        &[
            "sign",
            "--request",
            id,
            "--api",
            "http://127.0.0.1:9",
            "--in",
            "a.pdf",
            "--out",
            "x",
        ],
    ] {
        let out = securesign(args, Vec::<(String, String)>::new(), "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn the_terminal_confirms_or_declines_and_a_decline_leaves_the_request_open() {
    let tok = LabToken::softhsm().unwrap();
    let server = Server::start(&tok);
    let dir = tempfile::tempdir().unwrap();
    let created = server.create_session(&documents(dir.path(), 1), "raw", None);
    let session_id = created["sessionId"].as_str().unwrap();
    let command = sign_command(&tok, &created, &server, "");
    let on_terminal = |answers: &[(&str, &str)]| on_terminal(&tok, &command, answers);

    let (code, text) = on_terminal(&[("[y/N] ", "n\n")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Portal:          Example Portal"), "{text}");
    assert!(
        text.contains("Sign 1 document(s) for Example Portal? [y/N]"),
        "{text}"
    );
    assert!(text.contains("error[SS_SIGN_CANCELLED]"), "{text}");
    assert!(
        !text.contains("PIN:"),
        "no PIN is asked after a decline: {text}"
    );
    assert_eq!(server.session(session_id)["status"], "pending");

    let (code, text) = on_terminal(&[("[y/N] ", "y\n"), ("PIN: ", "123456\n")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("PIN:"), "{text}");
    assert!(
        text.contains("Signed 1 document(s) for Example Portal; the server answered: completed"),
        "{text}"
    );
    assert_eq!(server.session(session_id)["status"], "completed");
}

#[test]
fn ctrl_c_mid_request_posts_nothing_and_leaves_the_request_to_sign_again() {
    const DOCUMENTS: usize = 500; // the most one session may hold
    let tok = LabToken::softhsm().unwrap();
    let server = Server::start(&tok);
    let dir = tempfile::tempdir().unwrap();
    let files = documents(dir.path(), DOCUMENTS);
    let created = server.create_session(&files, "cms", None);
    let session_id = created["sessionId"].as_str().unwrap();
    let before = pin_state(&tok);
    let command = sign_command(&tok, &created, &server, "--yes");

    // Ctrl-C typed on the terminal once the fifth document is being signed: the terminal
    // sends SIGINT to the program, as a person's Ctrl-C does.
    let (code, text) = on_terminal(
        &tok,
        &command,
        &[("PIN: ", "123456\n"), ("Signing 5/", "\u{3}")],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("error[SS_SIGN_CANCELLED]"), "{text}");
    let signed: usize = text
        .split(" of 500 documents were signed")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of signed documents in {text}"));
    assert!(
        (5..DOCUMENTS).contains(&signed),
        "stopped after {signed} of {DOCUMENTS}: the batch should stop mid-way"
    );
    assert!(
        text.contains("nothing was sent, the request stays open"),
        "{text}"
    );
    // Nothing reached the portal, and no PIN try was spent.
    let session = server.session(session_id);
    assert_eq!(session["status"], "pending", "{session}");
    assert_eq!(pin_state(&tok), before);

    // Signing it again from the start completes the request.
    let out = run(
        &tok,
        &sign_request_args(&created, &server, "signer-rsa"),
        "123456\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["result"]["signed"], DOCUMENTS);
    assert_eq!(server.session(session_id)["status"], "completed");
}

#[test]
fn a_portal_request_is_signed_on_the_virtual_piv_card() {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    let server = Server::start_with(None);
    let dir = tempfile::tempdir().unwrap();
    let files = documents(dir.path(), 2);
    let created = server.create_session(&files, "raw", None);
    let env = lab.env().iter().map(|(k, v)| (k.as_str(), v.as_str()));
    // 9C is the PIV signing key ("PIN always"): one PIN entry signs both documents.
    let out = securesign(
        &[
            &["--reader", PIV_READER][..],
            &sign_request_args(&created, &server, "9c"),
        ]
        .concat(),
        env.clone(),
        &format!("{PIV_PIN}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["result"]["status"], "completed");
    let session = server.session(created["sessionId"].as_str().unwrap());
    assert_eq!(session["status"], "completed", "{session}");
    let cert = lab.cert_der(securesign_testlab::PivSlot::Sign9C).unwrap();
    assert_eq!(common::b64(&session["signerCertificate"]), cert);
    for (i, f) in files.iter().enumerate() {
        let digest = Sha256Digest::of(&std::fs::read(f).unwrap());
        let sig = common::b64(&session["documents"][i]["signature"]);
        verify_digest_signature(&cert, &digest.0, &sig).unwrap();
    }
    let status = json(&securesign(
        &["--reader", PIV_READER, "pin", "status", "--json"],
        env,
        "",
    ));
    assert_eq!(status["pin"]["retries"]["remaining"], 3, "{status}");
}
