//! Issue 13 over real IPC on the mock runtime, against the real REST API and a fresh
//! SoftHSM2 token: a deep link arriving mid-flow never replaces the open request (its PIN,
//! its kept signatures), and PINs never travel as JSON.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{code, invoke_from, settings_for, Server, TestApp};
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_testlab::LabToken;
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

fn setup() -> (Server, LabToken, TestApp) {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    (server, token, app)
}

/// Opens `link`, verifies the PIN, starts signing in the background (as the page does) and
/// returns, with the batch still running, once two documents are signed; the receiver gets
/// the command's answer.
fn open_and_sign_until_two_are_done(
    app: &TestApp,
    link: &str,
) -> mpsc::Receiver<Result<Value, Value>> {
    app.invoke("open_request", json!({ "link": link })).unwrap();
    app.invoke("verify_pin", json!({"pin": "123456"})).unwrap();
    let id = request_id(link);
    let (tx, events) = mpsc::channel();
    app.app.listen_any("token-event", move |event| {
        let payload: Value = serde_json::from_str(event.payload()).unwrap();
        if payload["event"] == "progress" {
            let _ = tx.send(payload["done"].as_u64().unwrap());
        }
    });
    let (answer_tx, answer) = mpsc::channel();
    let window = app.main();
    std::thread::spawn(move || {
        let _ = answer_tx.send(invoke_from(
            &window,
            "tauri://localhost",
            "sign_request",
            json!({ "requestId": id }),
        ));
    });
    while events.recv_timeout(WAIT).unwrap() < 2 {}
    answer
}

/// Cancels the batch `answer` belongs to and returns how many signatures `id` kept.
fn cancel_and_count_kept(
    app: &TestApp,
    answer: &mpsc::Receiver<Result<Value, Value>>,
    id: &str,
) -> u64 {
    assert_eq!(app.invoke("cancel_signing", json!({})).unwrap(), true);
    let err = answer.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(code(&err), "SS_SIGN_CANCELLED", "{err}");
    signed(app, id)
}

/// How many of `id`'s documents are signed and kept.
fn signed(app: &TestApp, id: &str) -> u64 {
    app.invoke("signing_progress", json!({ "requestId": id }))
        .unwrap()["signed"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_link_arriving_after_the_pin_waits_and_the_pin_signs_only_the_open_request() {
    let (server, _token, app) = setup();
    let (link_a, link_b) = (server.create_request(3), server.create_request(2));
    let (id_a, id_b) = (request_id(&link_a), request_id(&link_b));
    app.invoke("open_request", json!({ "link": link_a }))
        .unwrap();
    app.invoke("verify_pin", json!({"pin": "123456", "requestId": id_a}))
        .unwrap();

    // B arrives warm (single instance → on_open_url → deliver) between the PIN and the signing.
    securesign_app::links::deliver(app.app.handle(), link_b.clone());
    let err = app
        .invoke("open_request", json!({ "link": link_b }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_CONFLICT", "{err}");
    assert!(err["message"].as_str().unwrap().contains(&id_a), "{err}");
    // Nothing about B can run while A is open: not its signing, not a PIN typed for it.
    let err = app
        .invoke("sign_request", json!({ "requestId": id_b }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_NOT_FOUND", "{err}");
    let err = app
        .invoke("verify_pin", json!({"pin": "123456", "requestId": id_b}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_CONFLICT", "{err}");

    // The PIN typed for A signs A's three documents, and only A completes.
    let done = app
        .invoke("sign_request", json!({ "requestId": id_a }))
        .unwrap();
    assert_eq!(done["signed"], 3);
    assert_eq!(done["server"]["status"], "completed");
    let (status, _) = server.request_status(&link_a);
    assert_ne!(status, 200, "A is no longer pending");
    let (status, pending) = server.request_status(&link_b);
    assert_eq!(status, 200, "B is untouched and pending: {pending}");
    assert_eq!(pending["documents"].as_array().unwrap().len(), 2);

    // B waited: the UI takes it once A is finished, and it opens then.
    let waiting = app.invoke("startup_link", json!({})).unwrap();
    assert_eq!(waiting, Value::String(link_b.clone()));
    let view = app
        .invoke("open_request", json!({ "link": link_b }))
        .unwrap();
    assert_eq!(view["requestId"], id_b.as_str());
    assert_eq!(view["documents"].as_array().unwrap().len(), 2);
}

#[test]
fn a_link_arriving_mid_batch_keeps_the_signatures_made_and_declining_lets_it_open() {
    let (server, _token, app) = setup();
    let (link_a, link_b) = (server.create_request(300), server.create_request(1));
    let id_a = request_id(&link_a);
    let answer = open_and_sign_until_two_are_done(&app, &link_a);
    // B arrives while A's batch runs: refused, A's batch goes on.
    let err = app
        .invoke("open_request", json!({ "link": link_b }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_CONFLICT", "{err}");
    let kept = cancel_and_count_kept(&app, &answer, &id_a);
    assert!(kept >= 2, "kept {kept}");
    // B again, with A's kept signatures: still refused, and they are still there.
    let err = app
        .invoke("open_request", json!({ "link": link_b }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_CONFLICT", "{err}");
    assert_eq!(signed(&app, &id_a), kept);
    // The user declines A: then B opens.
    app.invoke("decline_request", json!({ "requestId": id_a }))
        .unwrap();
    let view = app
        .invoke("open_request", json!({ "link": link_b }))
        .unwrap();
    assert_eq!(view["documents"].as_array().unwrap().len(), 1);
}

#[test]
fn a_page_reloaded_mid_flow_gets_the_open_request_back_with_its_signatures() {
    let (server, _token, app) = setup();
    let (link_a, link_b) = (server.create_request(300), server.create_request(1));
    let id_a = request_id(&link_a);
    let answer = open_and_sign_until_two_are_done(&app, &link_a);
    let kept = cancel_and_count_kept(&app, &answer, &id_a);
    securesign_app::links::deliver(app.app.handle(), link_b.clone());

    // The page reloads and has forgotten A: it asks what to open, and gets A, not B
    // (B would be refused with SS_CONFLICT and A could be neither shown nor declined).
    for _ in 0..2 {
        let link = app.invoke("startup_link", json!({})).unwrap();
        assert_eq!(
            link,
            Value::String(link_a.clone()),
            "the open request first"
        );
    }
    let view = app
        .invoke("open_request", json!({ "link": link_a }))
        .unwrap();
    assert_eq!(view["requestId"], id_a.as_str());
    assert_eq!(signed(&app, &id_a), kept, "signatures kept");

    // Once A is declined, B (which waited) is next.
    app.invoke("decline_request", json!({ "requestId": id_a }))
        .unwrap();
    let link = app.invoke("startup_link", json!({})).unwrap();
    assert_eq!(link, Value::String(link_b));
}

#[test]
fn pins_sent_as_json_or_in_the_clear_are_refused_before_the_token_and_cost_no_try() {
    let (server, _token, app) = setup();
    let link = server.create_request(1);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    for (cmd, args) in [
        (
            "verify_pin",
            json!({"pin": "123456", "confirmFinalTry": false}),
        ),
        (
            "change_pin",
            json!({"oldPin": "000000", "newPin": "654321", "confirmFinalTry": false}),
        ),
        (
            "unblock_pin",
            json!({"puk": "00000000", "newPin": "654321"}),
        ),
    ] {
        let err = invoke_from(&app.main(), "tauri://localhost", cmd, args).unwrap_err();
        assert_eq!(code(&err), "SS_BAD_REQUEST", "{cmd}: {err}");
    }
    // Raw but unencrypted (the PIN in the clear), or encrypted for another command, or
    // with a key used already: refused too.
    let clear = common::invoke_raw(
        &app.main(),
        "verify_pin",
        b"123456".to_vec(),
        Default::default(),
    )
    .unwrap_err();
    assert_eq!(code(&clear), "SS_BAD_REQUEST", "{clear}");
    let app_key: Vec<u8> =
        serde_json::from_value(app.invoke("pin_key", json!({})).unwrap()).unwrap();
    let for_change = common::seal_for(&app_key, "change_pin", b"123456\x00654321");
    let err =
        common::invoke_raw(&app.main(), "verify_pin", for_change, Default::default()).unwrap_err();
    assert_eq!(code(&err), "SS_BAD_REQUEST", "{err}");
    let again = common::seal_for(&app_key, "verify_pin", b"123456");
    let err = common::invoke_raw(&app.main(), "verify_pin", again, Default::default()).unwrap_err();
    assert_eq!(
        code(&err),
        "SS_BAD_REQUEST",
        "a key is good for one PIN command: {err}"
    );
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "NOT_VERIFIED", "{status}");
    assert_eq!(
        app.invoke("session_remaining", json!({})).unwrap(),
        Value::Null
    );
    // The raw form works, and a wrong old PIN still counts as the user's one try.
    let err = app
        .invoke(
            "change_pin",
            json!({"oldPin": "000000", "newPin": "654321"}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_INVALID", "{err}");
    app.invoke(
        "change_pin",
        json!({"oldPin": "123456", "newPin": "654321"}),
    )
    .unwrap();
    app.invoke("verify_pin", json!({"pin": "654321"})).unwrap();
}
