//! The portal's expected signer through real IPC on the mock runtime, against the real REST
//! API on loopback and a fresh SoftHSM2 token: another signer is refused before any PIN
//! (even the right PIN is not sent: no PIN session starts), the named one goes on to the
//! PIN. One test per process (nextest).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::{code, settings_for, Server, TestApp};
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_testlab::LabToken;
use serde_json::{json, Value};
use sha2::Digest as _;

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "desktop".into(),
    })
}

fn thumbprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn session_link(server: &Server, signer: Value) -> String {
    let (status, body) = server.create_session(1, json!({ "signer": signer }));
    assert_eq!(status, 201, "{body}");
    body["deepLink"].as_str().unwrap().to_owned()
}

#[test]
fn another_signer_is_refused_and_no_pin_reaches_the_token() {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    let link = session_link(
        &server,
        json!({"subject": {"serialNumber": "NOT-THIS-ONE"}}),
    );
    let id = link.rsplit('=').next().unwrap().to_owned();

    let view = app.invoke("open_request", json!({ "link": link })).unwrap();
    let refusal = &view["refusal"];
    assert_eq!(code(&refusal["error"]), "SS_SIGNER_MISMATCH", "{view}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("NOT-THIS-ONE"),
        "{refusal}"
    );
    assert_eq!(
        refusal["error"]["resolution"],
        "Insert the token holding the certificate the portal asked for, or ask the portal to update the expected signer"
    );
    assert_eq!(refusal["portal"], "Example Portal");
    assert_eq!(refusal["expected"], "serialNumber NOT-THIS-ONE");
    assert_eq!(refusal["holds"]["commonName"], "Demo Signer");
    assert_eq!(
        refusal["holds"]["sha256Thumbprint"],
        thumbprint(token.rsa_cert_der())
    );
    assert_eq!(code(&view["blocker"]), "SS_SIGNER_MISMATCH");
    assert_eq!(view["expectedSigner"], "serialNumber NOT-THIS-ONE");
    let before = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(before["pin"]["status"], "NOT_VERIFIED");

    // Not even the right PIN goes to the token: no PIN session starts.
    for pin in [token.user_pin(), "999999"] {
        let err = app
            .invoke("verify_pin", json!({"pin": pin, "confirmFinalTry": false}))
            .unwrap_err();
        assert_eq!(code(&err), "SS_SIGNER_MISMATCH", "{err}");
    }
    let after = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(
        after["pin"], before["pin"],
        "no login, no try spent (SoftHSM2 flags COUNT_LOW after one wrong PIN)"
    );
    let err = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_SIGNER_MISMATCH");

    // "Retry after changing the token" (same token here): refused again; then cancel.
    let again = app
        .invoke("open_request", json!({"link": link, "changeToken": true}))
        .unwrap();
    assert_eq!(code(&again["refusal"]["error"]), "SS_SIGNER_MISMATCH");
    let answer = app
        .invoke("decline_request", json!({"requestId": id}))
        .unwrap();
    assert_eq!(answer["status"], "cancelled");
}

#[test]
fn the_named_certificate_goes_on_to_the_pin() {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    let thumb = thumbprint(token.rsa_cert_der());
    let link = session_link(
        &server,
        json!({"certificateSha256": [thumb.to_uppercase()], "policyClasses": ["class3"]}),
    );
    let view = app.invoke("open_request", json!({ "link": link })).unwrap();
    assert!(view["refusal"].is_null(), "{view}");
    assert!(view["blocker"].is_null(), "{view}");
    assert!(
        view["expectedSigner"].as_str().unwrap().contains(&thumb),
        "{view}"
    );
    let state = app
        .invoke(
            "verify_pin",
            json!({"pin": token.user_pin(), "confirmFinalTry": false}),
        )
        .unwrap();
    assert_eq!(state["status"], "SESSION_ACTIVE");
}

#[test]
fn a_certificate_that_may_not_sign_is_refused_without_pin() {
    let token = LabToken::builder(securesign_testlab::Module::SoftHsm2)
        .ec_key_usage(securesign_testlab::DscKeyUsage::EncipherOnly)
        .build()
        .unwrap();
    token.apply_env();
    let server = Server::start();
    let mut settings = settings_for(&server.base, &token);
    settings.signing_key = Some("02".into());
    let app = TestApp::start(&settings, desktop());
    let link = server.create_request(1);
    let view = app.invoke("open_request", json!({ "link": link })).unwrap();
    let refusal = &view["refusal"];
    assert_eq!(code(&refusal["error"]), "SS_CERT_KEY_USAGE", "{view}");
    assert_eq!(
        refusal["error"]["resolution"],
        "Choose the token's signing certificate; this one may only encrypt"
    );
    assert!(refusal["expected"].is_null());
    assert_eq!(
        refusal["holds"]["sha256Thumbprint"],
        thumbprint(token.ec_cert_der())
    );
    let usage = refusal["holds"]["keyUsage"].as_array().unwrap();
    assert!(!usage
        .iter()
        .any(|u| u == "digitalSignature" || u == "nonRepudiation"));
    let before = app.invoke("pin_status", json!({})).unwrap();
    let err = app
        .invoke(
            "verify_pin",
            json!({"pin": token.user_pin(), "confirmFinalTry": false}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_CERT_KEY_USAGE");
    assert_eq!(app.invoke("pin_status", json!({})).unwrap(), before);
}
