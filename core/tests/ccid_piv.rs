#![allow(clippy::unwrap_used)]
//! End to end: the PIV backend and the token policy over [`CcidTransport`], over the
//! simulated CCID reader (ccid_support, written from the CCID 1.1 tables), whose card is
//! the real virtual PIV card (piv-authenticator behind pcscd/vpcd), reached through the
//! core's PC/SC transport. So VERIFY, GET DATA and GENERAL AUTHENTICATE run over real CCID
//! framing (with time extensions, stale answers and split transfers) against a real card
//! implementation.

mod ccid_support;

use std::sync::{Arc, Mutex};

use ccid_support::{descriptor, SimReader};
use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::apdu::{ApduTransport, TransportError};
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::batch::CancelFlag;
use securesign_core::ccid::CcidTransport;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{Error, ErrorCode, FinalTry, KeySelector, Pin, Retries, Token};
use securesign_testlab::{PivLab, PivSlot, PIV_PIN};

/// Instruction bytes the card received through the simulated reader.
type InsLog = Arc<Mutex<Vec<u8>>>;

/// The lab's card behind a simulated CCID reader, and the log of what reached the card.
fn ccid_on_lab(lab: &PivLab, extended: bool) -> (CcidTransport<SimReader>, InsLog) {
    let mut pcsc = PcscTransport::open(lab.reader()).unwrap();
    let log = InsLog::default();
    let seen = log.clone();
    let card = Box::new(move |apdu: &[u8]| {
        seen.lock().unwrap().push(apdu[1]);
        match pcsc.transmit(apdu) {
            Ok(response) => Some(response),
            Err(TransportError::CardAbsent | TransportError::ReaderUnavailable(_)) => None,
            Err(e) => panic!("PC/SC: {e}"),
        }
    });
    let mut reader = SimReader::new(extended, 271, card);
    reader.time_extensions = 2;
    reader.stale = true;
    reader.transfer_size = 64;
    let transport =
        CcidTransport::open(reader, descriptor(extended, 271), 0, "USB CCID (simulated)").unwrap();
    (transport, log)
}

fn token(transport: CcidTransport<SimReader>) -> Token<Box<dyn TokenBackend>> {
    let backend: Box<dyn TokenBackend> = Box::new(PivBackend::open(transport).unwrap());
    Token::new(backend, SessionPolicy::default()).unwrap()
}

fn lab() -> PivLab {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    lab.apply_env();
    lab
}

#[test]
fn piv_verify_and_signatures_over_ccid_framing_on_the_virtual_card() {
    let lab = lab();
    for extended in [false, true] {
        let (transport, log) = ccid_on_lab(&lab, extended);
        let mut t = token(transport);
        // Certificates (GET DATA, ISO 61xx chaining inside CCID XfrBlocks), no PIN.
        let certs = t.certificates().unwrap();
        assert_eq!(certs.len(), 2);
        // The empty VERIFY (tries left, spends none) over CCID. (The provisioned card may
        // still be verified from provisioning: the simulated power-on cannot reset it.)
        t.status(SystemClock.now()).unwrap();
        t.verify_pin(
            Pin::new(PIV_PIN.into()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .unwrap();
        for (slot, scheme) in [
            (PivSlot::Auth9A, SignatureScheme::EcdsaP256Sha256),
            (PivSlot::Sign9C, SignatureScheme::RsaPkcs1Sha256),
        ] {
            let cert = lab.cert_der(slot).unwrap();
            let key = KeySelector::IdOrLabel(format!("{:02x}", slot.key_ref()));
            let signer = t.signer(&key, SystemClock.wall()).unwrap();
            assert_eq!(signer.scheme, scheme);
            let digests: Vec<_> = (0..3)
                .map(|i| Sha256Digest::of(format!("ccid document {i}").as_bytes()))
                .collect();
            let outcome = t.sign_batch(
                &signer,
                &digests,
                &SystemClock,
                &CancelFlag::new(),
                &mut |_| {},
            );
            assert!(outcome.is_complete(), "{slot:?}: {:?}", outcome.error);
            for signed in &outcome.signed {
                verify_digest_signature(&cert, &signed.digest.0, &signed.signature).unwrap();
            }
        }
        t.logout().unwrap();
        // SELECT, GET DATA, VERIFY and GENERAL AUTHENTICATE all went through the reader.
        let log = log.lock().unwrap();
        for ins in [0xA4, 0xCB, 0x20, 0x87] {
            assert!(log.contains(&ins), "INS {ins:02X} never reached the card");
        }
    }
}

#[test]
fn a_wrong_pin_over_ccid_counts_exactly_one_try() {
    let lab = lab();
    let mut t = token(ccid_on_lab(&lab, true).0);
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
    assert_eq!(
        t.status(SystemClock.now()).unwrap().retries,
        Retries::exact(2)
    );
}

#[test]
fn the_card_pulled_from_the_ccid_reader_is_token_not_present() {
    let lab = lab();
    let mut t = token(ccid_on_lab(&lab, false).0);
    t.verify_pin(
        Pin::new(PIV_PIN.into()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    lab.kill_card().unwrap();
    // The reader answers ICC_MUTE / no ICC: the core sees the token gone.
    let err = t
        .backend_mut()
        .sign_digest(
            &KeyId(vec![0x9A]),
            SignatureScheme::EcdsaP256Sha256,
            &Sha256Digest::of(b"after removal"),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenNotPresent, "{err:?}");
}
