//! The PIV backend over a scripted card: SELECT, VERIFY, GET DATA (certificate objects,
//! BER-TLV, gzip-compressed certificates), GENERAL AUTHENTICATE templates and status
//! words, whatever the card answers.
//!
//! Input: a chunk of operations (one byte each: info, PIN state, login, logout, change
//! PIN, unblock, certificates, four signatures), a flags byte (bit 1: a stuck card
//! repeats its last answer once the script is used up), then the card's answers (chunks).
//!
//! Properties, per operation: no panic and no endless exchange; a PIN or PUK goes to
//! the card at most once (no retry the user did not ask for), only in the operations
//! that take one, and the kept PIN of a 9C signature only after an empty VERIFY showed
//! the PIN verified or more than one try left; a login succeeds only on
//! the card's `9000` to that VERIFY; a 9C (PIN always) signature is preceded by a
//! successful VERIFY; a signature returned has the scheme's shape (256 bytes for RSA-2048,
//! a valid DER ECDSA signature); a PIN or PUK error is reported only when the card said
//! `63xx` or `6983`, never for a lost card or another answer; the certificates read
//! parse or are refused without a panic.

use std::sync::PoisonError;

use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::cert::CertificateInfo;
use securesign_core::digest::Sha256Digest;
use securesign_core::{ErrorCode, Pin};

use crate::apdu_chain::ScriptedCard;
use crate::input::Input;

const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_GET_RESPONSE: u8 = 0xC0;

/// One operation on the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Info,
    PinState,
    Login,
    Logout,
    ChangePin,
    Unblock,
    Certificates,
    Sign(u8, SignatureScheme),
}

impl Op {
    fn of(byte: u8) -> Self {
        match byte % 11 {
            0 => Self::Info,
            1 => Self::PinState,
            2 => Self::Login,
            3 => Self::Logout,
            4 => Self::ChangePin,
            5 => Self::Unblock,
            6 => Self::Certificates,
            7 => Self::Sign(0x9A, SignatureScheme::EcdsaP256Sha256),
            8 => Self::Sign(0x9C, SignatureScheme::EcdsaP256Sha256),
            9 => Self::Sign(0x9A, SignatureScheme::RsaPkcs1Sha256),
            _ => Self::Sign(0x9C, SignatureScheme::RsaPkcs1Sha256),
        }
    }
}

/// Whether an APDU carries a PIN or PUK.
fn carries_secret(apdu: &[u8]) -> bool {
    match apdu.get(1) {
        Some(&INS_VERIFY) => apdu.get(2) == Some(&0x00) && apdu.len() > 5,
        Some(&INS_CHANGE_REFERENCE) | Some(&INS_RESET_RETRY) => true,
        _ => false,
    }
}

/// Whether an APDU is the empty VERIFY that reads the PIN status (spends nothing).
fn is_status_verify(apdu: &[u8]) -> bool {
    apdu.len() == 4 && apdu[1] == INS_VERIFY && apdu[2] == 0x00
}

/// The final status word of the exchange that starts at `log[start]` (its answer and
/// the GET RESPONSE answers after it), if the card answered.
fn final_sw(log: &[(Vec<u8>, Vec<u8>)], start: usize) -> Option<[u8; 2]> {
    let mut last = &log[start].1;
    for (apdu, answer) in &log[start + 1..] {
        if apdu.get(1) != Some(&INS_GET_RESPONSE) || apdu.len() != 5 {
            break;
        }
        last = answer;
    }
    (last.len() >= 2).then(|| [last[last.len() - 2], last[last.len() - 1]])
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let ops: Vec<Op> = input.chunk().iter().take(16).map(|&b| Op::of(b)).collect();
    let flags = input.byte();
    let mut answers = Vec::new();
    while !input.is_empty() {
        answers.push(input.chunk());
    }
    let card = ScriptedCard::new(answers, flags & 2 != 0);
    let log = card.log.clone();
    let Ok(mut backend) = PivBackend::open(card) else {
        return;
    };
    log.lock().unwrap_or_else(PoisonError::into_inner).clear();
    for op in ops {
        let outcome = apply(&mut backend, op);
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        check(op, &outcome, &log);
        log.clear();
    }
    drop(backend);
}

/// What an operation returned, reduced to what the checks need.
enum Outcome {
    Done,
    Signature(SignatureScheme, Vec<u8>),
    Failed(ErrorCode),
}

fn apply(backend: &mut PivBackend<ScriptedCard<'_>>, op: Op) -> Outcome {
    let pin = || Pin::new("123456".to_owned());
    let result = match op {
        Op::Info => backend.info().map(|_| Outcome::Done),
        Op::PinState => backend.pin_state().map(|state| {
            if let Some(n) = state.retries.remaining {
                assert!(n <= 15, "{n} tries left from a 4-bit count");
            }
            Outcome::Done
        }),
        Op::Login => backend.login(&pin()).map(|()| Outcome::Done),
        Op::Logout => backend.logout().map(|()| Outcome::Done),
        Op::ChangePin => backend
            .change_pin(&pin(), &Pin::new("654321".to_owned()))
            .map(|()| Outcome::Done),
        Op::Unblock => backend
            .unblock_pin(&Pin::new("12345678".to_owned()), &pin())
            .map(|()| Outcome::Done),
        Op::Certificates => backend.certificates().map(|certs| {
            for cert in certs {
                assert!(
                    cert.der.len() <= 64 * 1024 + 256,
                    "a certificate of {} bytes",
                    cert.der.len()
                );
                let _ = CertificateInfo::from_der(&cert.der);
            }
            Outcome::Done
        }),
        Op::Sign(slot, scheme) => backend
            .sign_digest(&KeyId(vec![slot]), scheme, &Sha256Digest([0x5A; 32]))
            .map(|signature| Outcome::Signature(scheme, signature)),
    };
    result.unwrap_or_else(|err| Outcome::Failed(err.code()))
}

fn check(op: Op, outcome: &Outcome, log: &[(Vec<u8>, Vec<u8>)]) {
    let secrets: Vec<usize> = (0..log.len())
        .filter(|&i| carries_secret(&log[i].0))
        .collect();
    assert!(
        secrets.len() <= 1,
        "{op:?} sent a PIN or PUK {} times",
        secrets.len()
    );
    match op {
        Op::Login | Op::ChangePin | Op::Unblock => {}
        Op::Sign(0x9C, _) => {
            // The kept PIN goes only after an empty VERIFY showed the PIN verified, or
            // more than one try left: the final try is the user's, never ours.
            if let Some(&at) = secrets.first() {
                let status = (0..at)
                    .rev()
                    .find(|&i| is_status_verify(&log[i].0))
                    .unwrap_or_else(|| panic!("{op:?}: the kept PIN without a status VERIFY"));
                let sw = final_sw(log, status);
                let more_than_one =
                    matches!(sw, Some([0x63, x]) if x & 0xF0 == 0xC0 && x & 0x0F >= 2);
                assert!(
                    sw == Some([0x90, 0x00]) || more_than_one,
                    "{op:?}: the kept PIN sent after the card said {sw:02X?}"
                );
            }
        }
        _ => assert!(secrets.is_empty(), "{op:?} sent a PIN or PUK"),
    }
    match (op, outcome) {
        (Op::Login, Outcome::Done) => {
            let &[at] = secrets.as_slice() else {
                panic!("login succeeded without sending the PIN");
            };
            assert_eq!(final_sw(log, at), Some([0x90, 0x00]), "login without 9000");
        }
        (Op::Sign(slot, _), Outcome::Signature(scheme, signature)) => {
            if slot == 0x9C {
                let &[at] = secrets.as_slice() else {
                    panic!("a 9C signature without VERIFY right before it");
                };
                assert_eq!(
                    final_sw(log, at),
                    Some([0x90, 0x00]),
                    "9C after a failed VERIFY"
                );
            }
            let general_authenticate = log
                .iter()
                .position(|(apdu, _)| apdu.get(1) == Some(&INS_GENERAL_AUTHENTICATE))
                .expect("a signature without GENERAL AUTHENTICATE");
            if let Some(&at) = secrets.first() {
                assert!(at < general_authenticate, "VERIFY after the signature");
            }
            match scheme {
                SignatureScheme::RsaPkcs1Sha256 => assert_eq!(signature.len(), 256),
                SignatureScheme::EcdsaP256Sha256 => {
                    // A DER SEQUENCE of two INTEGERs, at most 72 bytes for P-256.
                    assert!(
                        signature.len() <= 72
                            && signature.first() == Some(&0x30)
                            && usize::from(signature[1]) + 2 == signature.len(),
                        "not a DER ECDSA signature: {signature:02X?}"
                    );
                }
            }
        }
        (_, Outcome::Failed(code)) => {
            let pin_error = matches!(
                code,
                ErrorCode::PinInvalid
                    | ErrorCode::PinBlocked
                    | ErrorCode::PukInvalid
                    | ErrorCode::PukBlocked
            );
            if pin_error {
                let said_so = log.iter().any(|(_, answer)| {
                    answer.len() >= 2 && {
                        let sw = &answer[answer.len() - 2..];
                        sw[0] == 0x63 || sw == [0x69, 0x83]
                    }
                });
                assert!(
                    said_so,
                    "{op:?}: {code:?} without a 63xx/6983 from the card"
                );
            }
        }
        _ => {}
    }
}
