//! The app's exit never leaves a verified PIN on the token: a card in a PC/SC reader keeps
//! its PIN verified until it is reset or told otherwise, whoever connects next. The
//! virtual PIV card behind a real pcscd, as the app's reader source.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::{fresh_piv_card, reader_settings, TestApp};
use securesign_app::state::AppState;
use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::TokenBackend;
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_core::status::PinStatus;
use securesign_testlab::PIV_PIN;
use serde_json::json;
use tauri::Manager;

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "desktop".into(),
    })
}

#[test]
fn the_exit_logs_the_card_out_of_the_pin_session() {
    let lab = fresh_piv_card();
    let app = TestApp::start(&reader_settings(&lab), desktop());
    app.invoke("verify_pin", json!({ "pin": PIV_PIN })).unwrap();
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "SESSION_ACTIVE", "{status}");

    assert!(app.app.state::<AppState>().close_for_exit());

    // Another program connecting now finds the PIN not verified, with all its tries.
    let mut card = PivBackend::open(PcscTransport::open(lab.reader()).unwrap()).unwrap();
    let state = card.pin_state().unwrap();
    assert_eq!(state.status, PinStatus::NotVerified, "{state:?}");
    assert_eq!(state.retries.remaining, Some(3), "{state:?}");
    // Nothing is left open: a second exit has nothing to close.
    assert!(app.app.state::<AppState>().close_for_exit());
}
