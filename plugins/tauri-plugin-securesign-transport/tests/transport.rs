#![allow(clippy::unwrap_used)]
//! The plugin's Rust side over a scripted platform: the NFC/APDU link, the USB CCID path
//! over raw bulk transfers, the JSON/base64 bridge, errors, and desktop's "not available".

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use securesign_core::apdu::{ApduTransport, Command, TransportError};
use securesign_core::ccid::CcidError;
use serde_json::{json, Value};
use support::{raw_descriptors, scripted_piv, scripted_piv_template, select_piv, Platform};
use tauri_plugin_securesign_transport::usb::{open_usb_reader, poll_slot_change};
use tauri_plugin_securesign_transport::{
    ApduLinkKind, Bridge, Error, PlatformApduTransport, PluginCall, RawError, RawTransfers,
    TokenTransport,
};

fn nfc(p: &Platform) -> PlatformApduTransport<Platform> {
    PlatformApduTransport::open(p.clone(), ApduLinkKind::Nfc, Duration::from_secs(30)).unwrap()
}

fn count(p: &Platform, call: &str) -> usize {
    p.state().calls.iter().filter(|c| *c == call).count()
}

#[test]
fn piv_select_over_the_nfc_link_leaves_61xx_chaining_to_the_core() {
    let p = Platform::nfc(scripted_piv());
    let mut t = nfc(&p);
    let answer = t.exchange(&select_piv()).unwrap();
    assert!(answer.sw.is_ok());
    assert_eq!(answer.data, scripted_piv_template());
    let s = p.state();
    // The link carried exactly two single APDUs: SELECT, then the core's GET RESPONSE.
    assert_eq!(s.apdus.len(), 2, "{:02X?}", s.apdus);
    assert_eq!(&s.apdus[0][..5], &[0x00, 0xA4, 0x04, 0x00, 0x09]);
    let second_part = (scripted_piv_template().len() - 8) as u8;
    assert_eq!(s.apdus[1], vec![0x00, 0xC0, 0x00, 0x00, second_part]);
    // The transceive timeout asked of the platform is at least 5 s.
    let (kind, wait, timeout) = s.connect_args[0];
    assert_eq!(kind, ApduLinkKind::Nfc);
    assert_eq!(wait, Duration::from_secs(30));
    assert!(timeout >= Duration::from_secs(5), "{timeout:?}");
}

#[test]
fn the_tag_leaving_the_field_is_card_absent_and_the_next_apdu_connects_again() {
    let p = Platform::nfc(scripted_piv());
    let mut t = nfc(&p);
    {
        let mut s = p.state();
        s.fail_next_transmit = Some(RawError::CardAbsent);
        s.in_field = false;
    }
    assert_eq!(
        t.exchange(&select_piv()).unwrap_err(),
        TransportError::CardAbsent
    );
    assert!(!t.card_present().unwrap());
    // Still out of the field: connecting again fails with card absent, nothing is sent.
    assert_eq!(
        t.exchange(&select_piv()).unwrap_err(),
        TransportError::CardAbsent
    );
    assert!(p.state().apdus.is_empty());
    // Tapped again: the next command connects first, then goes through.
    p.state().in_field = true;
    assert!(t.exchange(&select_piv()).unwrap().sw.is_ok());
    assert_eq!(count(&p, "apduConnect"), 3);
    assert!(t.card_present().unwrap());
}

#[test]
fn an_apdu_longer_than_the_link_carries_is_refused_before_the_card() {
    let p = Platform::nfc(scripted_piv());
    let mut t = nfc(&p);
    let long = [
        vec![0x00, 0xDB, 0x3F, 0xFF, 0x00, 0x01, 0x2C],
        vec![0u8; 300],
    ]
    .concat();
    let err = t.transmit(&long).unwrap_err();
    assert!(
        matches!(err, TransportError::Other(ref m) if m.contains("307 bytes")),
        "{err:?}"
    );
    assert_eq!(count(&p, "apduTransmit"), 0);
    // The link stays up: the next APDU needs no new connection.
    assert!(t.exchange(&select_piv()).unwrap().sw.is_ok());
    assert_eq!(count(&p, "apduConnect"), 1);
}

#[test]
fn a_response_without_a_status_word_is_malformed_and_breaks_the_link() {
    let p = Platform::nfc(scripted_piv());
    let mut t = nfc(&p);
    p.state().answer_next_transmit = Some(vec![0x90]);
    let err = t.transmit(&[0x00, 0xA4, 0x04, 0x00]).unwrap_err();
    assert!(matches!(err, TransportError::Malformed(_)), "{err:?}");
    assert!(t.exchange(&select_piv()).unwrap().sw.is_ok());
    assert_eq!(count(&p, "apduConnect"), 2);
}

#[test]
fn dropping_the_apdu_transport_ends_the_platform_link() {
    let p = Platform::nfc(scripted_piv());
    drop(nfc(&p));
    assert_eq!(count(&p, "apduDisconnect"), 1);
}

#[test]
fn piv_select_over_usb_ccid_through_the_raw_bulk_transfers() {
    for extended in [false, true] {
        let p = Platform::usb(extended, scripted_piv());
        let mut t = open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap();
        assert_eq!(t.reader_name(), "USB CCID 1050:0407 /dev/bus/usb/001/002");
        assert!(t.atr().is_some());
        let answer = t.exchange(&select_piv()).unwrap();
        assert!(answer.sw.is_ok());
        assert_eq!(answer.data, scripted_piv_template());
        assert!(t.card_present().unwrap());
        let s = p.state();
        let reader = s.reader.as_ref().unwrap();
        assert_eq!(&reader.apdus[0][..5], &[0x00, 0xA4, 0x04, 0x00, 0x09]);
        assert_eq!(s.calls[0], "usbOpen");
        assert!(s.calls.iter().any(|c| c == "usbBulkOut"));
        assert!(s.calls.iter().any(|c| c == "usbBulkIn"));
    }
}

#[test]
fn a_device_without_a_ccid_interface_is_not_supported_and_closed() {
    let p = Platform::usb(false, scripted_piv());
    {
        let mut s = p.state();
        let mut raw = s.raw_descriptors.clone();
        raw[18 + 9 + 5] = 0x03; // bInterfaceClass HID instead of CCID
        s.raw_descriptors = raw;
    }
    let err = open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap_err();
    assert!(
        matches!(err, Error::Ccid(CcidError::Unsupported(_))),
        "{err:?}"
    );
    assert!(matches!(
        securesign_core::Error::from(err),
        securesign_core::Error::NotSupported(_)
    ));
    assert_eq!(count(&p, "usbClose"), 1);
    assert_eq!(count(&p, "usbBulkOut"), 0);
}

#[test]
fn raw_descriptors_of_the_test_reader_parse_as_ccid() {
    // The helper's layout is what find_in_configuration walks (guards the test above).
    let d = raw_descriptors(&support::ccid_support::descriptor_bytes(
        support::ccid_support::SHORT_FEATURES,
        271,
    ));
    assert!(securesign_core::ccid::CcidDescriptor::find_in_configuration(&d).is_ok());
}

#[test]
fn usb_detach_is_the_reader_gone_never_a_pin_error() {
    let p = Platform::usb(false, scripted_piv());
    let mut t = open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap();
    p.state().detached = true;
    let err = t.exchange(&select_piv()).unwrap_err();
    assert!(
        matches!(err, TransportError::ReaderUnavailable(_)),
        "{err:?}"
    );
    // Opening a detached device: token not present.
    let err = open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap_err();
    assert!(matches!(
        securesign_core::Error::from(err),
        securesign_core::Error::TokenNotPresent
    ));
}

#[test]
fn an_interrupt_slot_change_reports_the_card_removed() {
    let p = Platform::usb(false, scripted_piv());
    let mut t = open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap();
    assert_eq!(
        poll_slot_change(&mut t, Duration::from_millis(10)).unwrap(),
        None
    );
    // RDR_to_PC_NotifySlotChange, slot 0: changed, not present (CCID 1.1 §6.3.1).
    p.state().interrupts.push_back(vec![0x50, 0b10]);
    assert_eq!(
        poll_slot_change(&mut t, Duration::from_millis(10)).unwrap(),
        Some(false)
    );
    assert!(t.atr().is_none());
}

#[test]
fn dropping_the_usb_transport_closes_the_device() {
    let p = Platform::usb(false, scripted_piv());
    drop(open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap());
    assert_eq!(count(&p, "usbClose"), 1);
}

/// A native plugin that records each call and answers from a function.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
struct ScriptedNative {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    answer: Arc<dyn Fn(&str, &Value) -> Result<Value, RawError> + Send + Sync>,
}

impl ScriptedNative {
    fn new(
        answer: impl Fn(&str, &Value) -> Result<Value, RawError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            seen: Arc::default(),
            answer: Arc::new(answer),
        }
    }
}

impl PluginCall for ScriptedNative {
    fn call(&self, command: &str, args: Value) -> Result<Value, RawError> {
        self.seen
            .lock()
            .unwrap()
            .push((command.to_owned(), args.clone()));
        (self.answer)(command, &args)
    }
}

#[test]
fn the_bridge_speaks_camel_case_json_and_base64_to_the_native_plugin() {
    let native = ScriptedNative::new(|command, _| {
        Ok(match command {
            "apduConnect" => json!({"name": "NFC", "maxApduLen": 261, "extendedLength": true}),
            "apduTransmit" | "usbBulkIn" => json!({"data": "kAA="}),
            "usbOpen" => json!({"readerName": "USB CCID 1050:0407", "rawDescriptors": "EgE="}),
            "usbDevices" => {
                json!({"devices": [{"name": "/dev/bus/usb/001/002", "vendorId": 4176, "productId": 1031}]})
            }
            _ => Value::Null,
        })
    });
    let mut b = Bridge::new(native.clone());
    let info = b
        .apdu_connect(
            ApduLinkKind::Nfc,
            Duration::from_secs(60),
            Duration::from_secs(1),
        )
        .unwrap();
    assert!(info.extended_length);
    assert_eq!(
        b.apdu_transmit(&[0x00, 0xA4, 0x04, 0x00]).unwrap(),
        vec![0x90, 0x00]
    );
    let opened = b.usb_open("/dev/bus/usb/001/002").unwrap();
    assert_eq!(opened.raw_descriptors, vec![0x12, 0x01]);
    assert_eq!(
        b.usb_bulk_in(Duration::from_secs(10)).unwrap(),
        vec![0x90, 0x00]
    );
    b.usb_bulk_out(&[0x62, 0, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
    assert_eq!(b.usb_devices().unwrap()[0].vendor_id, 0x1050);
    let seen = native.seen.lock().unwrap();
    let expected = [
        (
            "apduConnect",
            json!({"kind": "nfc", "waitMs": 60000, "timeoutMs": 5000}),
        ),
        ("apduTransmit", json!({"data": "AKQEAA=="})),
        ("usbOpen", json!({"deviceName": "/dev/bus/usb/001/002"})),
        ("usbBulkIn", json!({"timeoutMs": 10000})),
        ("usbBulkOut", json!({"data": "YgAAAAAAAAEAAA=="})),
        ("usbDevices", json!({})),
    ];
    assert_eq!(seen.len(), expected.len());
    for ((command, args), (want_command, want_args)) in seen.iter().zip(expected) {
        assert_eq!(command, want_command);
        assert_eq!(args, &want_args, "{command}");
    }
}

#[test]
fn native_rejections_map_to_transport_and_core_errors() {
    let cases = [
        ("cardAbsent", TransportError::CardAbsent),
        (
            "disconnected",
            TransportError::ReaderUnavailable("the device was disconnected".into()),
        ),
        (
            "timeout",
            TransportError::Other("no answer within the timeout".into()),
        ),
        (
            "ioError",
            TransportError::Other("platform error ioError: boom".into()),
        ),
    ];
    for (code, want) in cases {
        let native = ScriptedNative::new(move |command, _| match command {
            "apduConnect" => Ok(json!({"name": "NFC", "maxApduLen": 261})),
            _ => Err(RawError::from_rejection(Some(code), "boom")),
        });
        let mut t = PlatformApduTransport::open(
            Bridge::new(native),
            ApduLinkKind::Nfc,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            t.transmit(&[0x00, 0xA4, 0x04, 0x00]).unwrap_err(),
            want,
            "{code}"
        );
    }
    let core = |code: Option<&str>| {
        securesign_core::Error::from(Error::Raw(RawError::from_rejection(code, "m")))
    };
    assert!(matches!(
        core(Some("cardAbsent")),
        securesign_core::Error::TokenNotPresent
    ));
    assert!(matches!(
        core(Some("cancelled")),
        securesign_core::Error::TokenNotPresent
    ));
    assert!(matches!(
        core(Some("notAvailable")),
        securesign_core::Error::NotSupported(_)
    ));
    assert!(matches!(
        core(Some("permissionDenied")),
        securesign_core::Error::Token(_)
    ));
    assert!(matches!(core(None), securesign_core::Error::Token(_)));
}

#[test]
fn bad_base64_from_the_platform_is_a_malformed_response() {
    let native = ScriptedNative::new(|command, _| match command {
        "apduConnect" => Ok(json!({"name": "NFC", "maxApduLen": 261})),
        _ => Ok(json!({"data": "not base64!"})),
    });
    let mut t = PlatformApduTransport::open(
        Bridge::new(native),
        ApduLinkKind::Nfc,
        Duration::from_secs(1),
    )
    .unwrap();
    let err = t.transmit(&[0x00, 0xA4, 0x04, 0x00]).unwrap_err();
    assert!(
        matches!(err, TransportError::Malformed(ref m) if m.contains("base64")),
        "{err:?}"
    );
    // An answer of the wrong shape too.
    let native = ScriptedNative::new(|_, _| Ok(json!({"unexpected": 1})));
    let err = Bridge::new(native).apdu_present().unwrap_err();
    assert!(
        matches!(err, RawError::Bridge(ref m) if m.contains("apduPresent")),
        "{err:?}"
    );
}

#[test]
fn on_desktop_the_plugin_reports_not_available() {
    use tauri_plugin_securesign_transport::desktop::{Unavailable, UNAVAILABLE};
    let t = TokenTransport::new(Unavailable::<()>::default());
    let not_available =
        |e: Error| matches!(e, Error::Raw(RawError::NotAvailable(ref m)) if m == UNAVAILABLE);
    assert!(not_available(t.usb_devices().unwrap_err()));
    assert!(not_available(
        t.open_usb("/dev/bus/usb/001/002").unwrap_err()
    ));
    let err = t
        .open_apdu(ApduLinkKind::Nfc, Duration::from_secs(1))
        .unwrap_err();
    assert!(matches!(
        securesign_core::Error::from(err),
        securesign_core::Error::NotSupported(_)
    ));
}

#[test]
fn a_verify_apdu_crosses_the_bridge_once() {
    // The core never retries a PIN command: the link sends a VERIFY exactly once even when
    // the card is lost during it.
    let native = ScriptedNative::new(|command, _| match command {
        "apduConnect" => Ok(json!({"name": "NFC", "maxApduLen": 261})),
        _ => Err(RawError::from_rejection(Some("cardAbsent"), "tag lost")),
    });
    let mut t = PlatformApduTransport::open(
        Bridge::new(native.clone()),
        ApduLinkKind::Nfc,
        Duration::from_secs(1),
    )
    .unwrap();
    let verify =
        Command::new(0x00, 0x20, 0x00, 0x80, b"123456\xff\xff".to_vec()).without_response();
    assert_eq!(t.exchange(&verify).unwrap_err(), TransportError::CardAbsent);
    let seen = native.seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|(c, _)| c == "apduTransmit").count(), 1);
}
