//! Every command through real IPC on the mock runtime, against the real REST API on
//! loopback and a fresh SoftHSM2 token. One test per process (nextest).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};

use common::{code, invoke_from, settings_for, Server, TestApp};
use securesign_core::biometric::{
    Availability, BiometricAuthenticator, BiometricOutcome, BiometricSetting, NoBiometrics,
    PromptRequest,
};
use securesign_testlab::{CertValidity, LabToken, Module};
use serde_json::{json, Value};

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "desktop".into(),
    })
}

struct Setup {
    server: Server,
    _token: LabToken,
    app: TestApp,
}

fn setup() -> Setup {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    Setup {
        server,
        _token: token,
        app,
    }
}

fn open(app: &TestApp, link: &str) -> Value {
    app.invoke("open_request", json!({ "link": link })).unwrap()
}

#[test]
fn open_request_shows_who_what_and_which_certificate() {
    let s = setup();
    let link = s.server.create_request(3);
    let view = open(&s.app, &link);
    assert_eq!(view["tenant"]["displayName"], "Example Portal");
    assert_eq!(view["origin"], common::PORTAL);
    let docs = view["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2]["name"], "Contract 2.pdf");
    assert!(docs[0].get("digest").is_none(), "digests stay in Rust");
    assert_eq!(view["certificate"]["info"]["commonName"], "Demo Signer");
    assert_eq!(view["certificate"]["validity"]["state"], "valid");
    assert_eq!(view["token"]["pin"]["status"], "NOT_VERIFIED");
    assert!(view["token"]["pinPolicy"]["minLen"].as_u64().unwrap() >= 4);
    assert!(view["blocker"].is_null());
    assert_eq!(view["sessionActive"], false);
    assert_eq!(
        view["gate"],
        json!({"next": "askPin", "end_session": false})
    );
}

#[test]
fn malformed_links_and_unknown_requests_are_errors_not_crashes() {
    let s = setup();
    for link in [
        "securesign://sign?requestId=short",
        "https://evil.example/?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV",
        "securesign://sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV&api=http://evil",
    ] {
        let err = s
            .app
            .invoke("open_request", json!({ "link": link }))
            .unwrap_err();
        assert_eq!(code(&err), "SS_DEEP_LINK_INVALID", "{link}");
        assert_eq!(
            err["resolution"],
            "Open the signing link from the portal again"
        );
    }
    let err = s
        .app
        .invoke(
            "open_request",
            json!({"link": "securesign://sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_NOT_FOUND");
    let err = s.app.invoke("open_request", json!({})).unwrap_err();
    assert!(err.as_str().unwrap().contains("link"), "{err}");
}

#[test]
fn wrong_pin_reports_tries_and_short_pin_never_reaches_the_token() {
    let s = setup();
    let link = s.server.create_request(1);
    open(&s.app, &link);
    let err = s
        .app
        .invoke("verify_pin", json!({"pin": "1", "confirmFinalTry": false}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_FORMAT");
    let err = s
        .app
        .invoke(
            "verify_pin",
            json!({"pin": "999999", "confirmFinalTry": false}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_INVALID");
    assert_eq!(err["resolution"], "User retries; show remaining attempts");
    assert!(err["retries"].is_object(), "{err}");
    assert!(
        !err.to_string().contains("999999"),
        "the PIN is never echoed"
    );
    let err = s
        .app
        .invoke(
            "sign_request",
            json!({"requestId": link.rsplit('=').next().unwrap()}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_REQUIRED");
}

#[test]
fn right_pin_signs_a_batch_then_the_session_signs_without_pin_until_logout() {
    let s = setup();
    let link = s.server.create_request(3);
    let id = link.rsplit('=').next().unwrap().to_owned();
    open(&s.app, &link);
    let state = s
        .app
        .invoke(
            "verify_pin",
            json!({"pin": "123456", "confirmFinalTry": false}),
        )
        .unwrap();
    assert_eq!(state["status"], "SESSION_ACTIVE");
    let done = s
        .app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap();
    assert_eq!(done["signed"], 3);
    assert_eq!(done["server"]["status"], "completed");
    assert_eq!(done["server"]["signatureAlgorithm"], "RSA-PKCS1-SHA256");
    let (status, body) = s.server.request_status(&link);
    assert_eq!(status, 409, "{body}");

    let remaining = s.app.invoke("session_remaining", json!({})).unwrap();
    let ms = remaining.as_u64().unwrap();
    assert!(ms > 14 * 60 * 1000 && ms <= 15 * 60 * 1000, "{ms}");

    // Next request in the session: no PIN.
    let link2 = s.server.create_request(2);
    let id2 = link2.rsplit('=').next().unwrap().to_owned();
    let view = open(&s.app, &link2);
    assert_eq!(view["sessionActive"], true);
    assert_eq!(view["gate"]["next"], "skipPin");
    let done = s
        .app
        .invoke("sign_request", json!({"requestId": id2}))
        .unwrap();
    assert_eq!(done["signed"], 2);

    assert_eq!(s.app.invoke("logout", json!({})).unwrap(), true);
    assert_eq!(s.app.invoke("logout", json!({})).unwrap(), false);
    assert!(s
        .app
        .invoke("session_remaining", json!({}))
        .unwrap()
        .is_null());
    let link3 = s.server.create_request(1);
    let id3 = link3.rsplit('=').next().unwrap().to_owned();
    let view = open(&s.app, &link3);
    assert_eq!(view["sessionActive"], false);
    let err = s
        .app
        .invoke("sign_request", json!({"requestId": id3}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_REQUIRED");
}

#[test]
fn signing_a_request_that_is_not_open_is_refused() {
    let s = setup();
    let err = s
        .app
        .invoke(
            "sign_request",
            json!({"requestId": "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_NOT_FOUND");
    let err = s
        .app
        .invoke(
            "signing_progress",
            json!({"requestId": "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_NOT_FOUND");
    assert_eq!(s.app.invoke("cancel_signing", json!({})).unwrap(), false);
    let err = s
        .app
        .invoke("decline_request", json!({"requestId": "x"}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_NOT_FOUND");
}

#[test]
fn declining_tells_the_server() {
    let s = setup();
    let link = s.server.create_request(1);
    let id = link.rsplit('=').next().unwrap().to_owned();
    open(&s.app, &link);
    let answer = s
        .app
        .invoke("decline_request", json!({"requestId": id}))
        .unwrap();
    assert_eq!(answer["status"], "cancelled");
    let err = s
        .app
        .invoke("open_request", json!({ "link": link }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_SIGN_CANCELLED");
    assert_eq!(err["resolution"], "Allow user to retry");
}

#[test]
fn expired_certificate_is_shown_and_refused() {
    let token = LabToken::builder(Module::SoftHsm2)
        .rsa_cert(CertValidity::Expired)
        .build()
        .unwrap();
    token.apply_env();
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());
    let link = server.create_request(1);
    let id = link.rsplit('=').next().unwrap().to_owned();
    let view = open(&app, &link);
    assert_eq!(view["certificate"]["validity"]["state"], "expired");
    assert_eq!(view["blocker"]["code"], "SS_CERT_EXPIRED");
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    let err = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_KEY_NOT_FOUND");
}

#[test]
fn pin_management_status_change_and_unblock() {
    let s = setup();
    let status = s.app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "NOT_VERIFIED");
    assert!(status["sessionRemainingMs"].is_null());
    let err = s
        .app
        .invoke(
            "change_pin",
            json!({"oldPin": "000000", "newPin": "654321", "confirmFinalTry": false}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_INVALID");
    s.app
        .invoke(
            "change_pin",
            json!({"oldPin": "123456", "newPin": "654321", "confirmFinalTry": false}),
        )
        .unwrap();
    let err = s
        .app
        .invoke(
            "verify_pin",
            json!({"pin": "123456", "confirmFinalTry": false}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_INVALID");
    let err = s
        .app
        .invoke(
            "unblock_pin",
            json!({"puk": "00000000", "newPin": "111111"}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PUK_INVALID");
    s.app
        .invoke(
            "unblock_pin",
            json!({"puk": "12345678", "newPin": "111111"}),
        )
        .unwrap();
    let state = s
        .app
        .invoke(
            "verify_pin",
            json!({"pin": "111111", "confirmFinalTry": false}),
        )
        .unwrap();
    assert_eq!(state["status"], "SESSION_ACTIVE");
    let status = s.app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "SESSION_ACTIVE");
    assert!(status["sessionRemainingMs"].as_u64().unwrap() > 0);
}

#[test]
fn settings_round_trip_and_invalid_settings_are_refused() {
    let s = setup();
    let view = s.app.invoke("get_settings", json!({})).unwrap();
    assert_eq!(view["biometricAvailability"]["state"], "unavailable");
    let mut settings = view["settings"].clone();
    assert_eq!(settings["idleTimeoutMinutes"], 15);
    settings["idleTimeoutMinutes"] = json!(5);
    s.app
        .invoke("save_settings", json!({ "settings": settings }))
        .unwrap();
    let view = s.app.invoke("get_settings", json!({})).unwrap();
    assert_eq!(view["settings"]["idleTimeoutMinutes"], 5);
    let saved = std::fs::read_to_string(s.app.config.path().join("settings.json")).unwrap();
    assert!(saved.contains("\"idleTimeoutMinutes\": 5"), "{saved}");

    let mut bad = settings.clone();
    bad["apiBaseUrl"] = json!("http://evil.example");
    let err = s
        .app
        .invoke("save_settings", json!({ "settings": bad }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_CONFIG");
    let view = s.app.invoke("get_settings", json!({})).unwrap();
    assert_eq!(view["settings"]["apiBaseUrl"], s.server.base.as_str());

    // The idle timeout applies to the running session.
    s.app
        .invoke(
            "verify_pin",
            json!({"pin": "123456", "confirmFinalTry": false}),
        )
        .unwrap();
    let ms = s
        .app
        .invoke("session_remaining", json!({}))
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(ms <= 5 * 60 * 1000, "{ms}");
}

#[test]
fn unreachable_api_is_a_network_error() {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let app = TestApp::start(
        &settings_for(&format!("http://127.0.0.1:{port}"), &token),
        desktop(),
    );
    let err = app
        .invoke(
            "open_request",
            json!({"link": "securesign://sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_NETWORK");
}

#[test]
fn commands_are_granted_to_the_main_window_local_content_only() {
    let s = setup();
    let other = tauri::WebviewWindowBuilder::new(&s.app.app, "other", Default::default())
        .build()
        .unwrap();
    let err = invoke_from(&other, "tauri://localhost", "get_settings", json!({})).unwrap_err();
    assert!(err.as_str().unwrap().contains("not allowed"), "{err}");
    let err = invoke_from(
        &s.app.main(),
        "https://evil.example",
        "get_settings",
        json!({}),
    )
    .unwrap_err();
    assert!(err.as_str().unwrap().contains("not allowed"), "{err}");
    assert!(s.app.invoke("get_settings", json!({})).is_ok());
}

#[test]
fn startup_link_is_taken_once() {
    let s = setup();
    assert!(s.app.invoke("startup_link", json!({})).unwrap().is_null());
    let state = tauri::Manager::state::<securesign_app::state::AppState>(&s.app.app);
    state.set_pending_link("securesign://sign?requestId=x".into());
    assert_eq!(
        s.app.invoke("startup_link", json!({})).unwrap(),
        "securesign://sign?requestId=x"
    );
    assert!(s.app.invoke("startup_link", json!({})).unwrap().is_null());
}

/// Replays outcomes; records prompts.
struct Scripted {
    outcomes: Mutex<Vec<BiometricOutcome>>,
    prompts: Mutex<Vec<bool>>,
}

impl BiometricAuthenticator for Scripted {
    fn availability(&self) -> Availability {
        Availability::Available
    }
    fn authenticate(&self, request: &PromptRequest) -> BiometricOutcome {
        self.prompts
            .lock()
            .unwrap()
            .push(request.allow_device_credential);
        self.outcomes.lock().unwrap().remove(0)
    }
}

#[test]
fn biometric_gate_failure_never_touches_the_token_and_success_needs_a_session() {
    let (server, _token, app, id, auth) = biometric_app(vec![
        BiometricOutcome::Failed,
        BiometricOutcome::Success,
        BiometricOutcome::Success,
    ]);
    let err = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_REQUIRED", "the gate comes first");

    let before = app.invoke("pin_status", json!({})).unwrap();
    let step = app
        .invoke("biometric_prompt", json!({"requestId": id}))
        .unwrap();
    assert_eq!(step, json!({"next": "retryOrCancel", "failures": 1}));
    let after = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(
        before["pin"], after["pin"],
        "a failed biometric spends no PIN try"
    );

    let step = app
        .invoke("biometric_prompt", json!({"requestId": id}))
        .unwrap();
    assert_eq!(
        step["next"], "askPin",
        "no session: a biometric alone is not enough"
    );
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    assert_eq!(
        app.invoke("sign_request", json!({"requestId": id}))
            .unwrap()["signed"],
        1
    );

    // With the session active, the next request skips the PIN after a biometric success.
    let link2 = server.create_request(1);
    let id2 = link2.rsplit('=').next().unwrap().to_owned();
    assert_eq!(open(&app, &link2)["gate"]["next"], "prompt");
    let step = app
        .invoke("biometric_prompt", json!({"requestId": id2}))
        .unwrap();
    assert_eq!(step["next"], "skipPin");
    assert_eq!(
        app.invoke("sign_request", json!({"requestId": id2}))
            .unwrap()["signed"],
        1
    );
    assert_eq!(*auth.prompts.lock().unwrap(), vec![false, false, false]);
}

/// An app with biometrics on, replaying `outcomes`, and one open one-document request
/// (its gate asks for the prompt first); the authenticator records the prompts.
fn biometric_app(
    outcomes: Vec<BiometricOutcome>,
) -> (Server, LabToken, TestApp, String, Arc<Scripted>) {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let mut settings = settings_for(&server.base, &token);
    settings.biometric = BiometricSetting {
        enabled: true,
        ..Default::default()
    };
    let auth = Arc::new(Scripted {
        outcomes: Mutex::new(outcomes),
        prompts: Mutex::new(Vec::new()),
    });
    let app = TestApp::start(&settings, auth.clone());
    let link = server.create_request(1);
    let id = link.rsplit('=').next().unwrap().to_owned();
    assert_eq!(open(&app, &link)["gate"]["next"], "prompt");
    (server, token, app, id, auth)
}

/// The PIN screen the app shows after a failed biometric (the user pressed Cancel on the
/// retry screen, then Sign) is the fallback: a verified PIN lets the request sign instead
/// of answering `SS_PIN_REQUIRED` forever. A wrong PIN does not pass the gate.
#[test]
fn pin_after_a_failed_biometric_and_cancel_passes_the_gate() {
    let (_server, _token, app, id, _) = biometric_app(vec![BiometricOutcome::Failed]);
    let step = app
        .invoke("biometric_prompt", json!({"requestId": id}))
        .unwrap();
    assert_eq!(step, json!({"next": "retryOrCancel", "failures": 1}));
    // Cancel on the retry screen calls nothing; Sign then shows the PIN screen.
    let err = app
        .invoke(
            "verify_pin",
            json!({"pin": "654321", "confirmFinalTry": false}),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_INVALID");
    let err = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_REQUIRED", "a wrong PIN passes nothing");
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    let done = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap();
    assert_eq!(done["signed"], 1);
    assert_eq!(done["server"]["status"], "completed");
}

/// The same after the user dismissed the platform prompt itself.
#[test]
fn pin_after_a_cancelled_biometric_prompt_passes_the_gate() {
    let (_server, _token, app, id, _) = biometric_app(vec![BiometricOutcome::Cancelled]);
    let step = app
        .invoke("biometric_prompt", json!({"requestId": id}))
        .unwrap();
    assert_eq!(step["next"], "cancelled");
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    let done = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap();
    assert_eq!(done["signed"], 1);
}

/// The PIN is the fallback of a biometric that was tried, not a way around the prompt: a
/// PIN verified before the prompt was ever shown leaves the gate closed.
#[test]
fn pin_before_any_biometric_prompt_leaves_the_gate_closed() {
    let (_server, _token, app, id, _) = biometric_app(vec![BiometricOutcome::Success]);
    app.invoke(
        "verify_pin",
        json!({"pin": "123456", "confirmFinalTry": false}),
    )
    .unwrap();
    let err = app
        .invoke("sign_request", json!({"requestId": id}))
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_REQUIRED", "the prompt comes first");
    // The prompt then passes with the session the PIN started.
    let step = app
        .invoke("biometric_prompt", json!({"requestId": id}))
        .unwrap();
    assert_eq!(step["next"], "skipPin");
    assert_eq!(
        app.invoke("sign_request", json!({"requestId": id}))
            .unwrap()["signed"],
        1
    );
}
