#![allow(clippy::unwrap_used)]
//! End to end over the plugin's Rust side: the core's PIV backend and token policy over
//! (a) the NFC/APDU link and (b) the USB CCID path through raw bulk transfers, both on the
//! scripted platform whose card is the lab's real virtual PIV card (piv-authenticator
//! behind pcscd/vpcd), reached through the core's PC/SC transport. Only the native
//! transfer itself is simulated.

mod support;

use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::apdu::{ApduTransport, TransportError};
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::TokenBackend;
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{Error, FinalTry, KeySelector, Pin, Retries, Token};
use securesign_testlab::{PivLab, PivSlot, PIV_PIN};
use std::time::Duration;
use support::{Card, Platform};
use tauri_plugin_securesign_transport::usb::open_usb_reader;
use tauri_plugin_securesign_transport::{ApduLinkKind, PlatformApduTransport};

fn lab() -> PivLab {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    lab.apply_env();
    lab
}

/// The lab's card as the platform's card: `None` when it is gone.
fn lab_card(lab: &PivLab) -> Card {
    let mut pcsc = PcscTransport::open(lab.reader()).unwrap();
    Box::new(move |apdu: &[u8]| match pcsc.transmit(apdu) {
        Ok(response) => Some(response),
        Err(TransportError::CardAbsent | TransportError::ReaderUnavailable(_)) => None,
        Err(e) => panic!("PC/SC: {e}"),
    })
}

fn token<T: ApduTransport + 'static>(transport: T) -> Token<Box<dyn TokenBackend>> {
    let backend: Box<dyn TokenBackend> = Box::new(PivBackend::open(transport).unwrap());
    Token::new(backend, SessionPolicy::default()).unwrap()
}

fn nfc_token(p: &Platform) -> Token<Box<dyn TokenBackend>> {
    token(
        PlatformApduTransport::open(p.clone(), ApduLinkKind::Nfc, Duration::from_secs(5)).unwrap(),
    )
}

fn usb_token(p: &Platform) -> Token<Box<dyn TokenBackend>> {
    token(open_usb_reader(p.clone(), "/dev/bus/usb/001/002").unwrap())
}

/// Certificates, the PIN, and a 9C signature verified against the card's certificate.
fn sign_on(mut t: Token<Box<dyn TokenBackend>>, lab: &PivLab) {
    assert_eq!(t.certificates().unwrap().len(), 2);
    t.verify_pin(
        Pin::new(PIV_PIN.into()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    let cert = lab.cert_der(PivSlot::Sign9C).unwrap();
    let key = KeySelector::IdOrLabel(format!("{:02x}", PivSlot::Sign9C.key_ref()));
    let signer = t.signer(&key, SystemClock.wall()).unwrap();
    let digests = [Sha256Digest::of(b"signed through the phone transport")];
    let outcome = t.sign_batch(
        &signer,
        &digests,
        &SystemClock,
        &CancelFlag::new(),
        &mut |_| {},
    );
    assert!(outcome.is_complete(), "{:?}", outcome.error);
    verify_digest_signature(
        &cert,
        &outcome.signed[0].digest.0,
        &outcome.signed[0].signature,
    )
    .unwrap();
    t.logout().unwrap();
}

#[test]
fn piv_signs_over_the_nfc_link_on_the_virtual_card() {
    let lab = lab();
    let p = Platform::nfc(lab_card(&lab));
    sign_on(nfc_token(&p), &lab);
    // SELECT, GET DATA, VERIFY and GENERAL AUTHENTICATE each crossed the link.
    let s = p.state();
    for ins in [0xA4, 0xCB, 0x20, 0x87] {
        assert!(s.apdus.iter().any(|a| a[1] == ins), "INS {ins:02X}");
    }
    assert!(s.apdus.iter().all(|a| a.len() <= 261));
}

#[test]
fn piv_signs_over_usb_ccid_raw_transfers_on_the_virtual_card() {
    let lab = lab();
    for extended in [false, true] {
        let p = Platform::usb(extended, lab_card(&lab));
        sign_on(usb_token(&p), &lab);
        assert!(p.state().calls.iter().any(|c| c == "usbBulkIn"));
    }
}

#[test]
fn a_wrong_pin_over_nfc_costs_exactly_one_try() {
    let lab = lab();
    let p = Platform::nfc(lab_card(&lab));
    let mut t = nfc_token(&p);
    let err = t
        .verify_pin(
            Pin::new("999999".into()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::PinInvalid { retries } if retries == Retries::exact(2)),
        "{err:?}"
    );
    let verifies_with_pin = p
        .state()
        .apdus
        .iter()
        .filter(|a| a[1] == 0x20 && a.len() > 5)
        .count();
    assert_eq!(verifies_with_pin, 1);
}

#[test]
fn the_card_leaving_the_nfc_field_is_token_not_present() {
    let lab = lab();
    let p = Platform::nfc(lab_card(&lab));
    let mut t = nfc_token(&p);
    t.verify_pin(
        Pin::new(PIV_PIN.into()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    p.state().in_field = false;
    let key = KeySelector::IdOrLabel(format!("{:02x}", PivSlot::Sign9C.key_ref()));
    let err = t.signer(&key, SystemClock.wall()).and_then(|signer| {
        let outcome = t.sign_batch(
            &signer,
            &[Sha256Digest::of(b"x")],
            &SystemClock,
            &CancelFlag::new(),
            &mut |_| {},
        );
        outcome.error.map_or(Ok(()), Err)
    });
    assert!(matches!(err, Err(Error::TokenNotPresent)), "{err:?}");
}
