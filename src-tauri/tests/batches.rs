//! Batches through real IPC on the mock runtime: a CMS request, cancel in the middle
//! of a batch (SoftHSM2), and the PC/SC token source with the virtual PIV card behind a real
//! pcscd — exact tries, and the card pulled after document 2 of 3. Real REST API on loopback.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::{code, fresh_piv_card, settings_for, Server, TestApp};
use securesign_app::settings::{Settings, TokenSource};
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_testlab::{LabToken, PivSlot, OPENSC_PKCS11, PIV_PIN};
use serde_json::{json, Value};
use tauri::Listener;

const WAIT: Duration = Duration::from_secs(30);

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "desktop".into(),
    })
}

fn request_id(link: &str) -> String {
    link.rsplit('=').next().unwrap().to_owned()
}

/// Progress events `(done, total)` of the app's token events.
fn progress_events(app: &TestApp) -> mpsc::Receiver<(u64, u64)> {
    let (tx, rx) = mpsc::channel();
    app.app.listen_any("token-event", move |event| {
        let payload: Value = serde_json::from_str(event.payload()).unwrap();
        if payload["event"] == "progress" {
            let _ = tx.send((
                payload["done"].as_u64().unwrap(),
                payload["total"].as_u64().unwrap(),
            ));
        }
    });
    rx
}

/// Invokes `sign_request` on its own thread (the test thread stays free to cancel or
/// pull the card); the answer arrives on the returned channel.
fn sign_in_background(app: &TestApp, id: &str) -> mpsc::Receiver<Result<Value, Value>> {
    let (tx, rx) = mpsc::channel();
    let window = app.main();
    let id = id.to_owned();
    std::thread::spawn(move || {
        let answer = common::invoke_from(
            &window,
            "tauri://localhost",
            "sign_request",
            json!({ "requestId": id }),
        );
        let _ = tx.send(answer);
    });
    rx
}

fn progress(app: &TestApp, id: &str) -> (u64, u64) {
    let p = app
        .invoke("signing_progress", json!({ "requestId": id }))
        .unwrap();
    (p["signed"].as_u64().unwrap(), p["total"].as_u64().unwrap())
}

#[test]
fn cancel_mid_batch_keeps_completed_signatures_and_posts_nothing() {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    let n = 300;
    let (status, session) = server.create_session(n, json!({}));
    assert_eq!(status, 201, "{session}");
    let link = session["deepLink"].as_str().unwrap().to_owned();
    let id = request_id(&link);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    let events = progress_events(&app);
    let answer = sign_in_background(&app, &id);
    // Wait for two signatures; should the batch end first, say how (a failure once seen in
    // CI timed out here with no progress at all).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok((done, _)) if done >= 2 => break,
            Ok(_) => {}
            Err(_) => {
                if let Ok(early) = answer.try_recv() {
                    panic!("the batch ended before two signatures: {early:?}");
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no progress within {WAIT:?}"
                );
            }
        }
    }
    assert_eq!(app.invoke("cancel_signing", json!({})).unwrap(), true);
    let err = answer.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(code(&err), "SS_SIGN_CANCELLED", "{err}");
    assert_eq!(err["resolution"], "Allow user to retry");
    let (kept, total) = progress(&app, &id);
    assert_eq!(total, n as u64);
    assert!(
        (2..n as u64).contains(&kept),
        "cancelled after {kept} of {n}"
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{kept} of {n} documents are signed and kept")),
        "{err}"
    );
    // Nothing reached the portal: the request is still pending there.
    let (status, body) = server.request_status(&link);
    assert_eq!(status, 200, "still pending: {body}");
    let (_, portal) = server.portal_session(session["sessionId"].as_str().unwrap());
    assert_ne!(portal["status"], "completed", "{portal}");

    // Resuming signs only the rest (the session is still active), then posts everything.
    let events = progress_events(&app);
    let done = app
        .invoke("sign_request", json!({ "requestId": id }))
        .unwrap();
    assert_eq!(done["signed"], n);
    assert_eq!(done["server"]["status"], "completed");
    let (_, total) = events.recv_timeout(WAIT).unwrap();
    assert_eq!(
        total,
        n as u64 - kept,
        "the resumed pass covers the rest only"
    );
    let (_, portal) = server.portal_session(session["sessionId"].as_str().unwrap());
    assert_eq!(portal["status"], "completed", "{portal}");
}

fn piv_settings(server: &Server, slot: PivSlot) -> Settings {
    Settings {
        api_base_url: server.base.clone(),
        token_source: TokenSource::PcscReader { reader: None },
        signing_key: Some(format!("{:02x}", slot.key_ref())),
        ..Settings::default()
    }
}

#[test]
fn pcsc_reader_source_shows_the_exact_tries_left() {
    let _card = fresh_piv_card();
    let server = Server::start();
    let app = TestApp::start(&piv_settings(&server, PivSlot::Auth9A), desktop());
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "NOT_VERIFIED", "{status}");
    assert_eq!(status["pin"]["retries"]["remaining"], 3, "{status}");

    let link = server.create_request(1);
    let view = app.invoke("open_request", json!({ "link": link })).unwrap();
    assert_eq!(view["token"]["pin"]["retries"]["remaining"], 3, "{view}");
    assert!(view["certificate"]["info"].is_object(), "{view}");
    assert!(view["blocker"].is_null(), "{view}");

    let err = app
        .invoke(
            "verify_pin",
            json!({"pin": "999999", "confirmFinalTry": false}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_INVALID");
    assert_eq!(err["retries"]["remaining"], 2, "{err}");
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["retries"]["remaining"], 2, "{status}");

    app.invoke(
        "verify_pin",
        json!({"pin": PIV_PIN, "confirmFinalTry": false}),
    )
    .unwrap();
    let done = app
        .invoke("sign_request", json!({ "requestId": request_id(&link) }))
        .unwrap();
    assert_eq!(done["server"]["status"], "completed", "{done}");
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "SESSION_ACTIVE", "{status}");
    assert_eq!(app.invoke("logout", json!({})).unwrap(), true);
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(
        status["pin"]["retries"]["remaining"], 3,
        "the right PIN reset the counter: {status}"
    );
}

#[test]
fn card_pulled_after_document_2_of_3_keeps_both_and_resumes_when_back() {
    let lab = fresh_piv_card();
    let server = Server::start();
    let app = TestApp::start(&piv_settings(&server, PivSlot::Sign9C), desktop());
    let (status, session) = server.create_session(3, json!({}));
    assert_eq!(status, 201, "{session}");
    let session_id = session["sessionId"].as_str().unwrap().to_owned();
    let link = session["deepLink"].as_str().unwrap().to_owned();
    let id = request_id(&link);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    app.invoke(
        "verify_pin",
        json!({"pin": PIV_PIN, "confirmFinalTry": false}),
    )
    .unwrap();

    // Freeze the card the moment document 2 is reported, so document 3 never completes;
    // then pull it.
    let (frozen_tx, frozen) = mpsc::channel();
    let card = lab.card_pid().unwrap();
    app.app.listen_any("token-event", move |event| {
        let payload: Value = serde_json::from_str(event.payload()).unwrap();
        if payload["event"] == "progress" && payload["done"] == 2 {
            // SIGSTOP by PID, straight from the event thread.
            let stopped = std::process::Command::new("bash")
                .args(["-c", &format!("kill -STOP {card}")])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            let _ = frozen_tx.send(stopped);
        }
    });
    let answer = sign_in_background(&app, &id);
    assert!(frozen.recv_timeout(WAIT).unwrap(), "card frozen");
    // Let document 3's command reach the frozen card, then pull it.
    std::thread::sleep(Duration::from_millis(300));
    lab.kill_card().unwrap();
    let err = answer.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(code(&err), "SS_TOKEN_NOT_PRESENT", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("2 of 3 documents are signed and kept"),
        "{err}"
    );
    assert_eq!(progress(&app, &id), (2, 3));
    let (_, portal) = server.portal_session(&session_id);
    assert_ne!(portal["status"], "completed", "no partial result: {portal}");
    let err = app.invoke("pin_status", json!({})).unwrap_err();
    assert_eq!(code(&err), "SS_TOKEN_NOT_PRESENT");

    // The card is back: the PIN is asked again (the card forgot it), then only
    // document 3 is signed and the whole result is posted.
    lab.restart_card().unwrap();
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "NOT_VERIFIED", "{status}");
    assert_eq!(status["pin"]["retries"]["remaining"], 3, "no try spent");
    let err = app
        .invoke("sign_request", json!({ "requestId": id }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_REQUIRED", "{err}");
    assert_eq!(progress(&app, &id), (2, 3), "still kept");
    app.invoke(
        "verify_pin",
        json!({"pin": PIV_PIN, "confirmFinalTry": false}),
    )
    .unwrap();
    let events = progress_events(&app);
    let done = app
        .invoke("sign_request", json!({ "requestId": id }))
        .unwrap();
    assert_eq!(done["signed"], 3);
    assert_eq!(done["server"]["status"], "completed", "{done}");
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        (1, 1),
        "only document 3 was signed again"
    );
    let (_, portal) = server.portal_session(&session_id);
    assert_eq!(portal["status"], "completed", "{portal}");
}

#[test]
fn a_cms_request_is_signed_as_detached_cms_that_the_server_and_the_core_accept() {
    use base64::Engine as _;
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    let (status, session) = server.create_session(3, json!({"signatureFormat": "cms"}));
    assert_eq!(status, 201, "{session}");
    let link = session["deepLink"].as_str().unwrap().to_owned();
    let view = app.invoke("open_request", json!({ "link": link })).unwrap();
    assert_eq!(view["signatureFormat"], "cms");
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    let done = app
        .invoke("sign_request", json!({ "requestId": request_id(&link) }))
        .unwrap();
    assert_eq!(done["server"]["status"], "completed", "{done}");
    let (_, portal) = server.portal_session(session["sessionId"].as_str().unwrap());
    assert_eq!(portal["status"], "completed", "{portal}");
    let b64 = base64::engine::general_purpose::STANDARD;
    for (i, doc) in portal["documents"].as_array().unwrap().iter().enumerate() {
        let der = b64.decode(doc["signature"].as_str().unwrap()).unwrap();
        let digest = securesign_core::digest::Sha256Digest([i as u8 + 1; 32]);
        let verified = securesign_core::cms::verify_detached(&der, &digest).unwrap();
        assert_eq!(
            b64.encode(&verified.signer_cert_der),
            portal["signerCertificate"].as_str().unwrap()
        );
    }
}

/// A USB token behind a PKCS#11 module (OpenSC over the virtual card) pulled while the PIN
/// session is open: the app's slot watcher ends the session as `removed` and drops the
/// kept PIN at once, without waiting for the next token call or the idle timeout.
#[test]
fn a_pkcs11_token_pulled_ends_the_pin_session_without_a_token_call() {
    let lab = fresh_piv_card();
    let server = Server::start();
    let settings = Settings {
        api_base_url: server.base.clone(),
        token_source: TokenSource::Pkcs11 {
            module_path: Some(OPENSC_PKCS11.into()),
            token_label: None,
        },
        signing_key: Some(format!("{:02x}", PivSlot::Sign9C.opensc_id())),
        ..Settings::default()
    };
    let app = TestApp::start(&settings, desktop());
    let link = server.create_request(1);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    app.invoke(
        "verify_pin",
        json!({"pin": PIV_PIN, "confirmFinalTry": false}),
    )
    .unwrap();
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "SESSION_ACTIVE", "{status}");

    let (tx, ended) = mpsc::channel();
    app.app.listen_any("token-event", move |event| {
        let payload: Value = serde_json::from_str(event.payload()).unwrap();
        if payload["event"] == "sessionEnded" {
            let _ = tx.send(payload["reason"].as_str().unwrap_or_default().to_owned());
        }
    });
    lab.kill_card().unwrap();
    // The app polls the slot every 500 ms; no command is invoked until the event came.
    let reason = ended
        .recv_timeout(Duration::from_secs(5))
        .expect("the session ends on removal, without a token call");
    assert_eq!(reason, "removed");
    let remaining = app.invoke("session_remaining", json!({})).unwrap();
    assert!(remaining.is_null(), "no PIN session left: {remaining}");
}
