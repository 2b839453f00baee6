//! The app's token worker on phone tokens: the settings' `phone` source opens the token
//! through the transport plugin's Rust (`OpenPhoneToken`) and watches it through the
//! plugin's presence checks, as on a phone. Only the native transfer is simulated: the
//! plugin's scripted platform (`plugins/…/tests/support`), whose USB side is the core's
//! CCID reader simulation and whose card is the lab's real virtual PIV card behind pcscd.
//! Real REST API on loopback, real IPC on the mock runtime.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;
#[path = "../../plugins/tauri-plugin-securesign-transport/tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{code, fresh_piv_card, Server, TestApp};
use securesign_app::settings::{Settings, TokenSource};
use securesign_app::state::AppState;
use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::apdu::{ApduTransport, TransportError};
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_testlab::{PivLab, PivSlot, PIV_PIN};
use serde_json::{json, Value};
use support::{Card, Platform};
use tauri::{Listener, Manager};
use tauri_plugin_securesign_transport::{
    open_phone_token, Error, OpenPhoneToken, PhoneLink, PhoneToken,
};

const WAIT: Duration = Duration::from_secs(30);

/// The scripted platform as the app's phone-token opener (on a phone: the plugin).
struct Scripted(Platform);

impl OpenPhoneToken for Scripted {
    fn open_token(&self, link: &PhoneLink, wait: Duration) -> Result<PhoneToken, Error> {
        open_phone_token(self.0.clone(), link, wait)
    }
}

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "no sensor here".into(),
    })
}

/// The lab's card as the platform's card. `out` takes it out (the card answers nothing;
/// kill the card too, as a card out of the field or an unplugged token loses power, and
/// restart it to put it back: the card is reached afresh after a failure);
/// `signatures` counts the GENERAL AUTHENTICATE commands it got (the last command of a
/// chain), and the card leaves by itself once signature number `leave_after` was read
/// (at the next command that is not a GET RESPONSE of it).
fn lab_card(
    lab: &PivLab,
    out: Arc<AtomicBool>,
    signatures: Arc<AtomicUsize>,
    leave_after: usize,
) -> Card {
    let reader = lab.reader().to_owned();
    let mut pcsc: Option<PcscTransport> = None;
    let mut leaving = false;
    Box::new(move |apdu: &[u8]| {
        const GET_RESPONSE: u8 = 0xC0;
        if leaving && apdu[1] != GET_RESPONSE {
            leaving = false;
            out.store(true, Ordering::SeqCst);
        }
        if out.load(Ordering::SeqCst) {
            pcsc = None; // reached afresh when back
            return None;
        }
        // A handle from before the card was restarted fails once: reach the card afresh.
        let mut answer = pcsc.as_mut().map(|p| p.transmit(apdu));
        if !matches!(answer, Some(Ok(_))) {
            pcsc = PcscTransport::open(&reader).ok();
            answer = pcsc.as_mut().map(|p| p.transmit(apdu));
        }
        match answer? {
            Ok(response) => {
                let last_of_chain = apdu[0] & 0x10 == 0;
                if apdu[1] == 0x87 && last_of_chain {
                    let count = signatures.fetch_add(1, Ordering::SeqCst) + 1;
                    leaving = count == leave_after;
                }
                Some(response)
            }
            Err(TransportError::CardAbsent | TransportError::ReaderUnavailable(_)) => {
                pcsc = None;
                None
            }
            Err(e) => panic!("PC/SC: {e}"),
        }
    })
}

/// Puts the card back (a new card process) and waits until pcscd shows it.
fn put_back(lab: &PivLab) {
    lab.restart_card().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while PcscTransport::open(lab.reader()).is_err() {
        assert!(std::time::Instant::now() < deadline, "the card came back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn phone_settings(server: &Server, link: PhoneLink) -> Settings {
    Settings {
        api_base_url: server.base.clone(),
        token_source: TokenSource::Phone(link),
        signing_key: Some(format!("{:02x}", PivSlot::Sign9C.key_ref())),
        ..Settings::default()
    }
}

fn start(server: &Server, link: PhoneLink, platform: &Platform) -> TestApp {
    let app = TestApp::start(&phone_settings(server, link), desktop());
    app.app
        .state::<AppState>()
        .set_phone_tokens(Arc::new(Scripted(platform.clone())));
    app
}

fn request_id(link: &str) -> String {
    link.rsplit('=').next().unwrap().to_owned()
}

fn verify(app: &TestApp) {
    app.invoke(
        "verify_pin",
        json!({"pin": PIV_PIN, "confirmFinalTry": false}),
    )
    .unwrap();
}

/// `sessionEnded` reasons of the app's token events.
fn session_ends(app: &TestApp) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    app.app.listen_any("token-event", move |event| {
        let payload: Value = serde_json::from_str(event.payload()).unwrap();
        if payload["event"] == "sessionEnded" {
            let _ = tx.send(payload["reason"].as_str().unwrap_or_default().to_owned());
        }
    });
    rx
}

#[test]
fn a_usb_otg_token_signs_a_portal_request_and_its_unplugging_ends_the_session() {
    let lab = fresh_piv_card();
    let server = Server::start();
    let platform = Platform::usb(
        true,
        lab_card(&lab, Arc::default(), Arc::default(), usize::MAX),
    );
    let app = start(&server, PhoneLink::Auto, &platform);

    let (status, session) = server.create_session(2, json!({}));
    assert_eq!(status, 201, "{session}");
    let link = session["deepLink"].as_str().unwrap().to_owned();
    app.invoke("open_request", json!({ "link": link })).unwrap();
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_ne!(
        status["pin"]["status"], "SESSION_ACTIVE",
        "PIN asked: {status}"
    );
    assert_eq!(status["pin"]["retries"]["remaining"], 3, "{status}");
    verify(&app);
    let done = app
        .invoke("sign_request", json!({ "requestId": request_id(&link) }))
        .unwrap();
    assert_eq!(done["signed"], 2, "{done}");
    assert_eq!(done["server"]["status"], "completed", "{done}");
    let (_, portal) = server.portal_session(session["sessionId"].as_str().unwrap());
    assert_eq!(portal["status"], "completed", "{portal}");
    assert!(
        platform.state().calls.iter().any(|c| c == "usbBulkIn"),
        "the token was reached through the raw USB transfers"
    );

    // The reader reports the slot empty on its interrupt endpoint: the PIN session ends
    // without a command and without a transfer to the token.
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "SESSION_ACTIVE", "{status}");
    let ends = session_ends(&app);
    let calls_before = platform.state().calls.len();
    {
        let mut s = platform.state();
        s.reader.as_mut().unwrap().present = false;
        s.interrupts.push_back(vec![0x50, 0b10]);
    }
    lab.kill_card().unwrap();
    assert_eq!(
        ends.recv_timeout(Duration::from_secs(5)).unwrap(),
        "removed"
    );
    let calls_since = platform.state().calls[calls_before..].to_vec();
    assert_eq!(
        calls_since.first().map(String::as_str),
        Some("usbInterruptIn"),
        "the interrupt endpoint told it: {calls_since:?}"
    );
    let err = app.invoke("pin_status", json!({})).unwrap_err();
    assert_eq!(code(&err), "SS_TOKEN_NOT_PRESENT", "{err}");

    // Back in: the token opens afresh and asks for the PIN again; no try was spent.
    put_back(&lab);
    platform.state().reader.as_mut().unwrap().present = true;
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_ne!(
        status["pin"]["status"], "SESSION_ACTIVE",
        "PIN asked: {status}"
    );
    assert_eq!(status["pin"]["retries"]["remaining"], 3, "{status}");

    // Unplugged and back between two looks, on a slow reader: the old token's close
    // (IccPowerOff, usbClose) is over before the token is opened again, so it cannot
    // close the new connection under it.
    let link = server.create_request(1);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    verify(&app);
    platform.state().power_off_delay = Duration::from_millis(400);
    let ends = session_ends(&app);
    platform.state().interrupts.push_back(vec![0x50, 0b10]);
    ends.recv_timeout(Duration::from_secs(5)).unwrap();
    for _ in 0..2 {
        let status = app.invoke("pin_status", json!({})).unwrap();
        assert_eq!(status["pin"]["retries"]["remaining"], 3, "{status}");
        std::thread::sleep(Duration::from_millis(600));
    }
}

#[test]
fn an_nfc_card_leaving_the_field_mid_batch_keeps_what_was_signed() {
    let lab = fresh_piv_card();
    let server = Server::start();
    let out = Arc::new(AtomicBool::new(false));
    let signatures = Arc::new(AtomicUsize::new(0));
    // The card leaves the field right after its second signature.
    let platform = Platform::nfc(lab_card(&lab, out.clone(), signatures.clone(), 2));
    let app = start(&server, PhoneLink::Nfc, &platform);

    let (status, session) = server.create_session(3, json!({}));
    assert_eq!(status, 201, "{session}");
    let session_id = session["sessionId"].as_str().unwrap().to_owned();
    let link = session["deepLink"].as_str().unwrap().to_owned();
    let id = request_id(&link);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    verify(&app);

    let err = app
        .invoke("sign_request", json!({ "requestId": id }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_TOKEN_NOT_PRESENT", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("2 of 3 documents are signed and kept"),
        "{err}"
    );
    assert_eq!(signatures.load(Ordering::SeqCst), 2);
    let progress = app
        .invoke("signing_progress", json!({ "requestId": id }))
        .unwrap();
    assert_eq!(progress["signed"], 2, "{progress}");
    let (_, portal) = server.portal_session(&session_id);
    assert_ne!(portal["status"], "completed", "no partial result: {portal}");

    // Tapped again: the PIN is asked again (the card lost power), only the rest is signed.
    lab.kill_card().unwrap();
    put_back(&lab);
    out.store(false, Ordering::SeqCst);
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_ne!(
        status["pin"]["status"], "SESSION_ACTIVE",
        "PIN asked: {status}"
    );
    assert_eq!(
        status["pin"]["retries"]["remaining"], 3,
        "no try spent: {status}"
    );
    verify(&app);
    let done = app
        .invoke("sign_request", json!({ "requestId": id }))
        .unwrap();
    assert_eq!(done["signed"], 3, "{done}");
    assert_eq!(done["server"]["status"], "completed", "{done}");
    assert_eq!(signatures.load(Ordering::SeqCst), 3, "document 3 only");
    let (_, portal) = server.portal_session(&session_id);
    assert_eq!(portal["status"], "completed", "{portal}");
}

#[test]
fn without_the_phone_platform_a_phone_source_is_a_config_error() {
    let server = Server::start();
    let app = TestApp::start(&phone_settings(&server, PhoneLink::Auto), desktop());
    let err = app.invoke("pin_status", json!({})).unwrap_err();
    assert_eq!(code(&err), "SS_CONFIG", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("phones only"),
        "{err}"
    );
}
