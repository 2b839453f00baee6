//! The `securesign` binary against fresh SoftHSM2 / kryoptic tokens: JSON shapes, exit
//! codes, PINs only from stdin, signatures that verify.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{b64, json, securesign};
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::verify_digest_signature;
use securesign_testlab::LabToken;

fn run(tok: &LabToken, args: &[&str], stdin: &str) -> Output {
    let module = tok.module_path().display().to_string();
    securesign(
        &[&["--module", module.as_str()], args].concat(),
        tok.env(),
        stdin,
    )
}

fn softhsm() -> LabToken {
    LabToken::softhsm().unwrap_or_else(|e| panic!("token lab: {e}"))
}

#[test]
fn tokens_certs_and_status_in_json() {
    let tok = softhsm();
    let out = run(&tok, &["tokens", "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["tokens"][0]["label"], tok.label());
    assert_eq!(v["tokens"][0]["pin"]["status"], "NOT_VERIFIED");
    assert_eq!(
        v["tokens"][0]["pin"]["retries"]["indicator"],
        "more_than_one"
    );
    assert_eq!(v["tokens"][0]["flags"]["userPinInitialized"], true);
    assert_eq!(v["tokens"][0]["flags"]["loginRequired"], true);

    let v = json(&run(&tok, &["certs", "--json"], ""));
    let certs = v["certificates"].as_array().expect("array");
    assert_eq!(certs.len(), 2);
    let rsa = certs.iter().find(|c| c["id"] == "01").expect("RSA cert");
    assert_eq!(rsa["label"], "signer-rsa");
    assert_eq!(rsa["validity"]["state"], "valid");
    assert_eq!(rsa["certificate"]["indiaPki"][0], "class3");
    assert_eq!(rsa["certificate"]["commonName"], "Demo Signer");

    let v = json(&run(&tok, &["pin", "status", "--json"], ""));
    assert_eq!(v["pin"]["status"], "NOT_VERIFIED");
    assert_eq!(v["token"]["label"], tok.label());
}

#[test]
fn a_wrong_pin_exits_non_zero_with_its_code_and_retries() {
    let tok = softhsm();
    let out = run(
        &tok,
        &["pin", "verify", "--pin-stdin", "--json"],
        "000000\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_PIN_INVALID");
    assert_eq!(v["error"]["retries"]["indicator"], "low");
    assert_eq!(
        v["error"]["resolution"],
        "User retries; show remaining attempts"
    );
    // The PIN appears nowhere in the output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("000000"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("000000"));

    let out = run(
        &tok,
        &["pin", "verify", "--pin-stdin", "--json"],
        "123456\n",
    );
    assert!(out.status.success(), "{out:?}");
    // The PIN was accepted; the CLI keeps no session after it exits: the spec's ACTIVE.
    assert_eq!(json(&out)["pin"]["status"], "ACTIVE");
}

#[test]
fn pins_are_never_taken_from_arguments() {
    let tok = softhsm();
    let out = run(&tok, &["pin", "verify", "--pin", "123456"], "");
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown option");
    // With --pin-stdin and nothing on stdin, it says so instead of hanging.
    let out = run(&tok, &["pin", "verify", "--pin-stdin", "--json"], "");
    assert_eq!(json(&out)["error"]["code"], "SS_BAD_REQUEST");
}

#[test]
fn a_malformed_pin_is_refused_without_touching_the_token() {
    let tok = softhsm();
    let out = run(&tok, &["pin", "verify", "--pin-stdin", "--json"], "12\n");
    assert_eq!(
        json(&out)["error"]["code"],
        "SS_PIN_FORMAT",
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json(&run(&tok, &["pin", "status", "--json"], ""));
    assert_eq!(v["pin"]["status"], "NOT_VERIFIED", "no failure counted");
}

#[test]
fn sign_digests_prints_verifiable_signatures() {
    let tok = softhsm();
    let digests: Vec<Sha256Digest> = (0..3)
        .map(|i| Sha256Digest::of(format!("invoice {i}").as_bytes()))
        .collect();
    let mut args = vec!["sign".to_owned(), "--key".into(), "signer-ec".into()];
    for d in &digests {
        args.push("--digest-sha256".into());
        args.push(d.to_hex());
    }
    args.extend(["--pin-stdin".into(), "--json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&tok, &args, "123456\n");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["complete"], true);
    assert_eq!(v["total"], 3);
    assert_eq!(v["scheme"], "ECDSA-P256-SHA256");
    let cert = b64(&v["certificate"]);
    assert_eq!(cert, tok.ec_cert_der());
    let sigs = v["signatures"].as_array().expect("array");
    assert_eq!(sigs.len(), 3);
    for (i, s) in sigs.iter().enumerate() {
        assert_eq!(s["digest"], digests[i].to_hex());
        verify_digest_signature(&cert, &digests[i].0, &b64(&s["signature"])).unwrap();
    }
}

#[test]
fn sign_files_writes_one_signature_file_each() {
    let tok = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("signed");
    let files: Vec<_> = (0..3)
        .map(|i| {
            let p = dir.path().join(format!("doc{i}.pdf"));
            std::fs::write(&p, format!("%PDF-1.7 document {i}")).unwrap();
            p
        })
        .collect();
    let mut args: Vec<String> = vec!["sign".into(), "--key".into(), "01".into(), "--in".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend([
        "--out".into(),
        out_dir.display().to_string(),
        "--pin-stdin".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&tok, &args, "123456\n");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Signed 3/3"), "{text}");
    for f in &files {
        let sig_path = out_dir.join(format!("{}.sig", f.file_name().unwrap().to_string_lossy()));
        let sig = std::fs::read(&sig_path).expect("signature file");
        let digest = Sha256Digest::of(&std::fs::read(f).unwrap());
        verify_digest_signature(tok.rsa_cert_der(), &digest.0, &sig).unwrap();
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn bad_input_is_refused_before_the_pin_is_asked() {
    let tok = softhsm();
    // A malformed digest: nothing is read from stdin, the token is not touched.
    let out = run(&tok, &["sign", "--digest-sha256", "abcd", "--json"], "");
    assert_eq!(json(&out)["error"]["code"], "SS_BAD_REQUEST");
    // Two certificates and no --key: the user must choose.
    let d = Sha256Digest::of(b"x").to_hex();
    let out = run(&tok, &["sign", "--digest-sha256", &d, "--json"], "");
    assert_eq!(json(&out)["error"]["code"], "SS_BAD_REQUEST");
    let out = run(
        &tok,
        &["sign", "--digest-sha256", &d, "--key", "nope", "--json"],
        "",
    );
    assert_eq!(json(&out)["error"]["code"], "SS_KEY_NOT_FOUND");
    // A missing input file.
    let out = run(
        &tok,
        &[
            "sign",
            "--in",
            "/nonexistent/doc.pdf",
            "--out",
            "/tmp",
            "--json",
        ],
        "",
    );
    assert_eq!(json(&out)["error"]["code"], "SS_BAD_REQUEST");
}

#[test]
fn a_missing_module_is_a_config_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_securesign"))
        .args(["--module", "/nonexistent/libvendor.so", "tokens", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["code"], "SS_CONFIG");
    // Human output goes to stderr with the code and the resolution.
    let out = Command::new(env!("CARGO_BIN_EXE_securesign"))
        .args(["--module", "/nonexistent/libvendor.so", "tokens"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error[SS_CONFIG]"), "{err}");
}

#[test]
fn pin_change_and_unblock_read_pins_from_stdin_in_order() {
    let tok = softhsm();
    let out = run(
        &tok,
        &["pin", "change", "--pin-stdin", "--json"],
        "123456\n654321\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &tok,
        &["pin", "verify", "--pin-stdin", "--json"],
        "654321\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &tok,
        &["pin", "unblock", "--pin-stdin", "--json"],
        "12345678\n111111\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &tok,
        &["pin", "verify", "--pin-stdin", "--json"],
        "111111\n",
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_final_try_needs_an_explicit_flag() {
    let tok = LabToken::kryoptic().unwrap_or_else(|e| panic!("token lab: {e}"));
    for _ in 0..9 {
        let out = run(
            &tok,
            &["pin", "verify", "--pin-stdin", "--json"],
            "99999999\n",
        );
        assert_eq!(json(&out)["error"]["code"], "SS_PIN_INVALID");
    }
    let v = json(&run(&tok, &["pin", "status", "--json"], ""));
    assert_eq!(v["pin"]["retries"]["indicator"], "final_try");
    let out = run(
        &tok,
        &["pin", "verify", "--pin-stdin", "--json"],
        &format!("{}\n", tok.user_pin()),
    );
    assert_eq!(json(&out)["error"]["code"], "SS_PIN_FINAL_TRY");
    let out = run(
        &tok,
        &[
            "pin",
            "verify",
            "--confirm-final-try",
            "--pin-stdin",
            "--json",
        ],
        &format!("{}\n", tok.user_pin()),
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn human_output_is_short_and_plain() {
    let tok = softhsm();
    let out = run(&tok, &["pin", "status"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PIN status: NOT_VERIFIED — more than one try left"),
        "{text}"
    );
    let path: &Path = tok.module_path();
    assert!(path.exists());
}

#[test]
fn sign_format_cms_writes_p7s_files_openssl_accepts() {
    let tok = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..3)
        .map(|i| {
            let p = dir.path().join(format!("tender{i}.pdf"));
            std::fs::write(&p, format!("%PDF-1.7 tender {i}")).unwrap();
            p
        })
        .collect();
    for key in ["signer-rsa", "signer-ec"] {
        // One directory per key: a run never replaces another certificate's signature file.
        let out_dir = dir.path().join(format!("signed-{key}"));
        let mut args: Vec<String> = vec!["sign".into(), "--key".into(), key.into(), "--in".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend([
            "--out".into(),
            out_dir.display().to_string(),
            "--format".into(),
            "cms".into(),
            "--pin-stdin".into(),
            "--json".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&tok, &args, "123456\n");
        assert!(out.status.success(), "{out:?}");
        let v = json(&out);
        assert_eq!(v["format"], "cms");
        for (i, f) in files.iter().enumerate() {
            let entry = &v["signatures"][i];
            assert_eq!(
                entry["digest"],
                Sha256Digest::of(&std::fs::read(f).unwrap()).to_hex(),
                "the document digest is reported, not the attributes'"
            );
            let p7s = std::path::PathBuf::from(entry["signatureFile"].as_str().unwrap());
            assert_eq!(p7s.extension().unwrap(), "p7s");
            assert_eq!(std::fs::read(&p7s).unwrap(), b64(&entry["signature"]));
            let ok = Command::new("openssl")
                .args([
                    "cms",
                    "-verify",
                    "-binary",
                    "-inform",
                    "DER",
                    "-noverify",
                    "-in",
                ])
                .arg(&p7s)
                .arg("-content")
                .arg(f)
                .args(["-out", "/dev/null"])
                .output()
                .unwrap();
            assert!(
                ok.status.success(),
                "{key}: {}",
                String::from_utf8_lossy(&ok.stderr)
            );
        }
    }
}

#[test]
fn a_certificate_that_may_not_sign_is_refused_before_the_pin() {
    let tok = LabToken::builder(securesign_testlab::Module::SoftHsm2)
        .ec_key_usage(securesign_testlab::DscKeyUsage::EncipherOnly)
        .build()
        .unwrap_or_else(|e| panic!("token lab: {e}"));
    let d = Sha256Digest::of(b"x").to_hex();
    // A wrong PIN on stdin: had the PIN been used, this would be SS_PIN_INVALID.
    let args = ["sign", "--digest-sha256", &d, "--key", "02", "--pin-stdin"];
    let out = run(&tok, &[&args[..], &["--json"]].concat(), "000000\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_CERT_KEY_USAGE", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("keyEncipherment, dataEncipherment"),
        "{message}"
    );
    // Human output says why and what to do.
    let out = run(&tok, &args, "000000\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SS_CERT_KEY_USAGE") && stderr.contains("may not sign"),
        "{stderr}"
    );
    // The token's own signing certificate still signs.
    let out = run(
        &tok,
        &[
            "sign",
            "--digest-sha256",
            &d,
            "--key",
            "01",
            "--pin-stdin",
            "--json",
        ],
        &format!("{}\n", securesign_testlab::USER_PIN),
    );
    assert!(out.status.success(), "{out:?}");
}
