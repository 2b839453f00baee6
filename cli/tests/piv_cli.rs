//! The `securesign` binary with `--reader` against a fresh virtual PIV card behind its own
//! pcscd: readers, exact tries in the output, final-try confirmation, unblock, change,
//! certificates and signatures that verify.

mod common;

use std::process::Output;

use common::{json, securesign};

use base64::Engine as _;
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::verify_digest_signature;
use securesign_testlab::{PivLab, PivSlot, PIV_PIN, PIV_PUK, PIV_READER};
use serde_json::Value;

fn lab() -> PivLab {
    PivLab::start().unwrap_or_else(|e| panic!("PIV lab: {e:?}"))
}

/// Runs `securesign --reader <card> ARGS` with this lab's PC/SC socket.
fn run(lab: &PivLab, args: &[&str], stdin: &str) -> Output {
    run_raw(lab, &[&["--reader", PIV_READER], args].concat(), stdin)
}

fn run_raw(lab: &PivLab, args: &[&str], stdin: &str) -> Output {
    securesign(
        args,
        lab.env().iter().map(|(k, v)| (k.as_str(), v.as_str())),
        stdin,
    )
}

fn remaining(lab: &PivLab) -> Value {
    let v = json(&run(lab, &["pin", "status", "--json"], ""));
    v["pin"]["retries"]["remaining"].clone()
}

#[test]
fn readers_lists_the_card_reader() {
    let lab = lab();
    let out = run_raw(&lab, &["readers", "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    let readers = v["readers"].as_array().expect("array");
    let card = readers
        .iter()
        .find(|r| r["name"] == PIV_READER)
        .expect("the lab reader");
    assert_eq!(card["cardPresent"], true);
    let text = run_raw(&lab, &["readers"], "");
    assert!(String::from_utf8_lossy(&text.stdout).contains("Virtual PCD 00 00 (card present)"));
}

#[test]
fn an_unknown_reader_is_a_config_error() {
    let lab = lab();
    let out = run_raw(
        &lab,
        &["--reader", "No Such Reader", "pin", "status", "--json"],
        "",
    );
    assert!(!out.status.success());
    assert_eq!(json(&out)["error"]["code"], "SS_CONFIG");
}

#[test]
fn status_shows_the_exact_count_and_wrong_pins_count_down() {
    let lab = lab();
    let out = run(&lab, &["pin", "status"], "");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PIN status: NOT_VERIFIED — 3 tries left"),
        "{text}"
    );
    assert_eq!(remaining(&lab), 3, "status spends no try");

    let out = run(
        &lab,
        &["pin", "verify", "--pin-stdin", "--json"],
        "999999\n",
    );
    assert!(!out.status.success());
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_PIN_INVALID");
    assert_eq!(v["error"]["retries"]["remaining"], 2);
    assert_eq!(remaining(&lab), 2);

    let out = run(&lab, &["pin", "verify", "--pin-stdin"], "999999\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[SS_PIN_INVALID]") && err.contains("final try left"),
        "{err}"
    );

    // Final try: refused without --confirm-final-try, and no try spent.
    let out = run(
        &lab,
        &["pin", "verify", "--pin-stdin", "--json"],
        &format!("{PIV_PIN}\n"),
    );
    assert_eq!(json(&out)["error"]["code"], "SS_PIN_FINAL_TRY");
    assert_eq!(remaining(&lab), 1);
    let out = run(
        &lab,
        &[
            "pin",
            "verify",
            "--confirm-final-try",
            "--pin-stdin",
            "--json",
        ],
        &format!("{PIV_PIN}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["verified"], true);
    assert_eq!(remaining(&lab), 3);
}

#[test]
fn blocked_then_unblocked_with_the_puk_then_changed() {
    let lab = lab();
    for _ in 0..2 {
        run(&lab, &["pin", "verify", "--pin-stdin"], "999999\n");
    }
    let out = run(
        &lab,
        &[
            "pin",
            "verify",
            "--confirm-final-try",
            "--pin-stdin",
            "--json",
        ],
        "999999\n",
    );
    assert_eq!(json(&out)["error"]["code"], "SS_PIN_BLOCKED");
    let v = json(&run(&lab, &["pin", "status", "--json"], ""));
    assert_eq!(v["pin"]["status"], "BLOCKED");
    assert_eq!(v["pin"]["retries"]["remaining"], 0);

    let out = run(
        &lab,
        &["pin", "unblock", "--pin-stdin", "--json"],
        "87654321\n246810\n",
    );
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_PUK_INVALID");
    assert_eq!(v["error"]["retries"]["remaining"], 2);
    let out = run(
        &lab,
        &["pin", "unblock", "--pin-stdin", "--json"],
        &format!("{PIV_PUK}\n246810\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(remaining(&lab), 3);

    let out = run(
        &lab,
        &["pin", "change", "--pin-stdin", "--json"],
        "246810\n13572468\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &lab,
        &["pin", "verify", "--pin-stdin", "--json"],
        "246810\n",
    );
    assert_eq!(
        json(&out)["error"]["code"],
        "SS_PIN_INVALID",
        "old PIN refused"
    );
    let out = run(
        &lab,
        &["pin", "verify", "--pin-stdin", "--json"],
        "13572468\n",
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn certs_and_signatures_from_both_slots() {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    let v = json(&run(&lab, &["certs", "--json"], ""));
    let certs = v["certificates"].as_array().expect("array");
    assert_eq!(certs.len(), 2);
    assert!(certs.iter().any(|c| c["id"] == "9a"));
    assert!(certs.iter().any(|c| c["id"] == "9c"));

    let b64 = base64::engine::general_purpose::STANDARD;
    for (slot, scheme) in [
        (PivSlot::Auth9A, "ECDSA-P256-SHA256"),
        (PivSlot::Sign9C, "RSA-PKCS1-SHA256"),
    ] {
        let digests: Vec<String> = (0..3)
            .map(|i| Sha256Digest::of(format!("doc {i}").as_bytes()).to_hex())
            .collect();
        let key = format!("{:02x}", slot.key_ref());
        let mut args = vec!["sign", "--key", key.as_str(), "--pin-stdin", "--json"];
        for d in &digests {
            args.extend(["--digest-sha256", d.as_str()]);
        }
        let out = run(&lab, &args, &format!("{PIV_PIN}\n"));
        assert!(out.status.success(), "{slot:?}: {out:?}");
        let v = json(&out);
        assert_eq!(v["complete"], true);
        assert_eq!(v["scheme"], scheme);
        let cert = b64.decode(v["certificate"].as_str().unwrap()).unwrap();
        assert_eq!(cert, lab.cert_der(slot).unwrap());
        for s in v["signatures"].as_array().unwrap() {
            let digest = Sha256Digest::from_hex(s["digest"].as_str().unwrap()).unwrap();
            let sig = b64.decode(s["signature"].as_str().unwrap()).unwrap();
            verify_digest_signature(&cert, &digest.0, &sig).unwrap();
        }
    }
    assert_eq!(remaining(&lab), 3, "the CLI logged out and spent nothing");
}
