//! Shared helpers for the PIV tests: a fresh virtual card per test, the core's PIV backend
//! on it over PC/SC, and a transport decorator that freezes the card just before a chosen
//! command so a test can pull the card while that command is in flight.

#![allow(dead_code)]

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::apdu::{ApduTransport, Command, Response, TransportError};
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::TokenBackend;
use securesign_core::batch::{BatchOutcome, CancelFlag};
use securesign_core::clock::SystemClock;
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::worker::{TokenEvent, TokenWorker};
use securesign_core::{FinalTry, KeySelector, Pin, SessionEndReason, SignerKey, Token};
use securesign_testlab::{PivLab, PivSlot, PIV_PIN};

/// A fresh card (no keys), its environment applied to this process.
pub fn lab() -> PivLab {
    let lab = PivLab::start().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    lab.apply_env();
    lab
}

/// A fresh card with keys and certificates in 9A and 9C.
pub fn provisioned_lab() -> PivLab {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    lab.apply_env();
    lab
}

/// The PIV backend on the lab's card.
pub fn backend(lab: &PivLab) -> PivBackend<PcscTransport> {
    let transport = PcscTransport::open(lab.reader()).expect("open reader");
    PivBackend::open(transport).expect("select PIV")
}

/// The card behind the core's policy.
pub fn token(lab: &PivLab) -> Token<Box<dyn TokenBackend>> {
    let boxed: Box<dyn TokenBackend> = Box::new(backend(lab));
    Token::new(boxed, SessionPolicy::default()).expect("token info")
}

/// A PIN from a literal.
pub fn pin(s: &str) -> Pin {
    Pin::new(s.to_owned())
}

/// The selector of a PIV slot's key (its key reference, in hex).
pub fn piv_key(slot: PivSlot) -> KeySelector {
    KeySelector::IdOrLabel(format!("{:02x}", slot.key_ref()))
}

/// Signs `digests` with `signer` in one batch on the system clock: not cancelled, no
/// progress callback.
pub fn sign_all<B: TokenBackend>(
    t: &mut Token<B>,
    signer: &SignerKey,
    digests: &[Sha256Digest],
) -> BatchOutcome {
    t.sign_batch(
        signer,
        digests,
        &SystemClock,
        &CancelFlag::new(),
        &mut |_| {},
    )
}

/// A token worker on `backend` (default policy, system clock) whose PIN session was
/// opened with the lab's PIN, and its events.
pub fn signed_in_worker(
    backend: Box<dyn TokenBackend>,
) -> (TokenWorker, crossbeam_channel::Receiver<TokenEvent>) {
    let (worker, events) =
        TokenWorker::spawn(backend, SessionPolicy::default(), Arc::new(SystemClock))
            .expect("token worker");
    worker
        .verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed)
        .expect("the lab's PIN");
    (worker, events)
}

/// The reason of the next `SessionEnded` event (other events are passed over); panics
/// when none comes `within`.
pub fn next_session_end(
    events: &crossbeam_channel::Receiver<TokenEvent>,
    within: Duration,
) -> SessionEndReason {
    loop {
        match events.recv_timeout(within) {
            Ok(TokenEvent::SessionEnded { reason }) => return reason,
            Ok(_) => continue,
            Err(e) => panic!("no SessionEnded event within {within:?}: {e}"),
        }
    }
}

/// Tries left as the card reports them, read with a fresh connection and an empty
/// VERIFY (spends no try).
pub fn card_tries(lab: &PivLab) -> Option<u8> {
    backend(lab)
        .pin_state()
        .expect("pin state")
        .retries
        .remaining
}

/// Wraps the real PC/SC transport; when the `nth` command with instruction `ins` (and
/// command data, so never a status query) is about to go out, it freezes the card process
/// (SIGSTOP), tells the test, and then sends the command, which waits unanswered until the
/// test kills the card.
pub struct FreezeBefore<'a> {
    inner: PcscTransport,
    lab: &'a PivLab,
    ins: u8,
    remaining: usize,
    frozen: Sender<()>,
}

impl<'a> FreezeBefore<'a> {
    /// The decorator and the receiver that hears "frozen, command going out now".
    pub fn new(lab: &'a PivLab, ins: u8, nth: usize) -> (Self, Receiver<()>) {
        let (frozen, rx) = mpsc::channel();
        let inner = PcscTransport::open(lab.reader()).expect("open reader");
        (
            Self {
                inner,
                lab,
                ins,
                remaining: nth,
                frozen,
            },
            rx,
        )
    }
}

impl ApduTransport for FreezeBefore<'_> {
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
    fn card_present(&mut self) -> Result<bool, TransportError> {
        self.inner.card_present()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.inner.transmit(apdu)
    }
    fn exchange(&mut self, command: &Command) -> Result<Response, TransportError> {
        if command.ins == self.ins && !command.data.is_empty() && self.remaining > 0 {
            self.remaining -= 1;
            if self.remaining == 0 {
                self.lab.freeze_card().expect("freeze card");
                let _ = self.frozen.send(());
            }
        }
        self.inner.exchange(command)
    }
}
