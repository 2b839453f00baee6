#![allow(clippy::unwrap_used)]
//! Which link a phone token setting reaches, and how its removal is seen: on the scripted
//! platform (the USB side is the core's simulated CCID reader, the card a scripted PIV
//! applet). The lab's real card over these paths is in the app's `tests/phone_token.rs`.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use securesign_core::ErrorCode;
use support::{scripted_piv, Platform, SIM_DEVICE};
use tauri_plugin_securesign_transport::token::Look;
use tauri_plugin_securesign_transport::{
    open_phone_token, Error, PhoneLink, PresenceWatcher, UsbDevice,
};

const WAIT: Duration = Duration::from_secs(5);

fn code(e: Error) -> ErrorCode {
    securesign_core::Error::from(e).code()
}

fn count(p: &Platform, call: &str) -> usize {
    p.state().calls.iter().filter(|c| *c == call).count()
}

fn other_device(name: &str) -> UsbDevice {
    UsbDevice {
        name: name.into(),
        vendor_id: 0x096e,
        product_id: 0x0807,
        product: Some("ePass2003".into()),
    }
}

#[test]
fn auto_uses_the_usb_token_plugged_in() {
    let p = Platform::usb(false, scripted_piv());
    let token = open_phone_token(p.clone(), &PhoneLink::Auto, WAIT).unwrap();
    assert!(token.reader.contains(SIM_DEVICE), "{}", token.reader);
    assert_eq!(count(&p, "usbOpen"), 1);
    assert_eq!(
        count(&p, "apduConnect"),
        0,
        "no NFC wait with a USB token there"
    );
}

#[test]
fn auto_without_a_usb_token_waits_for_an_nfc_tap() {
    let p = Platform::nfc(scripted_piv());
    let token = open_phone_token(p.clone(), &PhoneLink::Auto, WAIT).unwrap();
    assert_eq!(token.reader, "NFC");
    assert_eq!(count(&p, "usbOpen"), 0);
    let connects = p.state().connect_args.clone();
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0].1, WAIT, "the wait given reaches the platform");
}

#[test]
fn auto_on_a_phone_without_usb_host_uses_nfc() {
    let p = Platform::nfc(scripted_piv());
    p.state().no_usb_host = true;
    let token = open_phone_token(p.clone(), &PhoneLink::Auto, WAIT).unwrap();
    assert_eq!(token.reader, "NFC");
}

#[test]
fn several_usb_tokens_and_no_choice_is_a_setting_to_make() {
    for link in [PhoneLink::Auto, PhoneLink::Usb { device: None }] {
        let p = Platform::usb(false, scripted_piv());
        p.state()
            .other_devices
            .push(other_device("/dev/bus/usb/001/007"));
        let err = open_phone_token(p.clone(), &link, WAIT).unwrap_err();
        assert!(err.to_string().contains("ePass2003"), "{err}");
        assert_eq!(code(err), ErrorCode::Config);
        assert_eq!(count(&p, "usbOpen"), 0, "nothing opened");
    }
}

#[test]
fn a_named_usb_device_is_opened_even_beside_others() {
    let p = Platform::usb(false, scripted_piv());
    p.state()
        .other_devices
        .push(other_device("/dev/bus/usb/001/007"));
    let link = PhoneLink::Usb {
        device: Some(SIM_DEVICE.into()),
    };
    let token = open_phone_token(p.clone(), &link, WAIT).unwrap();
    assert!(token.reader.contains(SIM_DEVICE));
}

#[test]
fn usb_chosen_with_nothing_plugged_in_is_token_not_present() {
    let p = Platform::nfc(scripted_piv());
    let err = open_phone_token(p.clone(), &PhoneLink::Usb { device: None }, WAIT).unwrap_err();
    assert_eq!(code(err), ErrorCode::TokenNotPresent);
    assert_eq!(
        count(&p, "apduConnect"),
        0,
        "no fallback to NFC when USB was chosen"
    );
}

#[test]
fn no_nfc_tap_within_the_wait_is_token_not_present() {
    let p = Platform::nfc(scripted_piv());
    p.state().in_field = false;
    let err = open_phone_token(p, &PhoneLink::Nfc, WAIT).unwrap_err();
    assert_eq!(code(err), ErrorCode::TokenNotPresent);
}

#[test]
fn a_card_without_piv_is_not_supported() {
    let p = Platform::nfc(Box::new(|_: &[u8]| Some(vec![0x6A, 0x82])));
    let err = open_phone_token(p, &PhoneLink::Nfc, WAIT).unwrap_err();
    assert_eq!(code(err), ErrorCode::NotSupported);
}

#[test]
fn usb_presence_reads_slot_changes_from_the_interrupt_endpoint() {
    let p = Platform::usb(false, scripted_piv());
    let mut presence = open_phone_token(p.clone(), &PhoneLink::Auto, WAIT)
        .unwrap()
        .presence;
    assert!(presence.paces_itself());
    // Nothing came: still there.
    assert_eq!(presence.look(Duration::from_millis(10)), Look::Present);
    // A card inserted (slot 0 present, changed): still there.
    p.state().interrupts.push_back(vec![0x50, 0b11]);
    assert_eq!(presence.look(Duration::from_millis(10)), Look::Present);
    // A hardware error or an unreadable message is no proof of removal.
    p.state().interrupts.push_back(vec![0x51, 0, 7, 1]);
    p.state().interrupts.push_back(vec![0x50]);
    assert_eq!(presence.look(Duration::from_millis(10)), Look::Present);
    assert_eq!(presence.look(Duration::from_millis(10)), Look::Present);
    // Slot 0 empty, changed: gone.
    p.state().interrupts.push_back(vec![0x50, 0b10]);
    assert_eq!(presence.look(Duration::from_millis(10)), Look::Gone);
    // The reader unplugged: gone.
    p.state().detached = true;
    assert_eq!(presence.look(Duration::from_millis(10)), Look::Gone);
}

#[test]
fn apdu_presence_asks_the_platform() {
    let p = Platform::nfc(scripted_piv());
    let mut presence = open_phone_token(p.clone(), &PhoneLink::Nfc, WAIT)
        .unwrap()
        .presence;
    assert!(!presence.paces_itself());
    assert_eq!(presence.look(Duration::ZERO), Look::Present);
    p.state().in_field = false;
    assert_eq!(presence.look(Duration::ZERO), Look::Gone);
}

#[test]
fn the_watcher_reports_removal_once_and_stops_when_dropped() {
    let p = Platform::nfc(scripted_piv());
    let presence = open_phone_token(p.clone(), &PhoneLink::Nfc, WAIT)
        .unwrap()
        .presence;
    let (tx, gone) = mpsc::channel();
    let watcher = PresenceWatcher::spawn(presence, Duration::from_millis(20), move || {
        tx.send(()).unwrap()
    })
    .unwrap();
    assert!(
        gone.recv_timeout(Duration::from_millis(200)).is_err(),
        "card still there"
    );
    p.state().in_field = false;
    gone.recv_timeout(Duration::from_secs(10)).unwrap();
    drop(watcher);
    // The thread ended after reporting: the sender went with it.
    assert!(matches!(
        gone.recv_timeout(Duration::from_secs(1)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));

    // A watcher dropped while the card is there stops and never reports.
    let p = Platform::usb(false, scripted_piv());
    let presence = open_phone_token(p.clone(), &PhoneLink::Auto, WAIT)
        .unwrap()
        .presence;
    let (tx, gone) = mpsc::channel::<()>();
    let watcher = PresenceWatcher::spawn(presence, Duration::from_millis(20), move || {
        tx.send(()).unwrap()
    })
    .unwrap();
    drop(watcher);
    assert!(matches!(
        gone.recv_timeout(Duration::from_secs(1)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
}
