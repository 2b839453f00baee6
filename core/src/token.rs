//! One token with the core's policy on top: PIN rules, the final-try confirmation, the
//! cached PIN session, and batch signing. Identical for every backend.

use std::time::Instant;

use time::OffsetDateTime;

use crate::backend::{KeyId, SignatureScheme, TokenBackend, TokenCertificate, TokenInfo};
use crate::batch::{BatchOutcome, BatchProgress, CancelFlag, SignedDigest};
use crate::cert::CertificateInfo;
use crate::clock::Clock;
use crate::digest::Sha256Digest;
use crate::error::{Error, Result, SessionEndReason};
use crate::pin::Pin;
use crate::session::{PinSession, SessionPolicy};
use crate::status::{PinState, PinStatus};

/// Whether the user confirmed spending the last PIN try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalTry {
    /// Not confirmed: at the final try the call is refused with `SS_PIN_FINAL_TRY`.
    #[default]
    NotConfirmed,
    /// The user said "yes, use my last try".
    Confirmed,
}

/// How the user names the signing key: by id (hex `CKA_ID`) or by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelector {
    /// The only certificate with a key on the token.
    Only,
    /// Hex id, or failing that, a label.
    IdOrLabel(String),
}

/// The signing key chosen for a batch, with its certificate already checked.
#[derive(Debug, Clone)]
pub struct SignerKey {
    /// Key pair id.
    pub id: KeyId,
    /// Scheme its key signs with.
    pub scheme: SignatureScheme,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The parsed certificate.
    pub certificate: CertificateInfo,
}

/// A token behind the core's policy.
pub struct Token<B: TokenBackend> {
    backend: B,
    info: TokenInfo,
    session: PinSession,
}

impl<B: TokenBackend> Token<B> {
    /// Wraps a backend, reading its description once.
    pub fn new(mut backend: B, policy: SessionPolicy) -> Result<Self> {
        let info = backend.info()?;
        Ok(Self {
            backend,
            info,
            session: PinSession::new(policy),
        })
    }

    /// What the token said about itself when opened.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// The session policy in force.
    pub fn session_policy(&self) -> SessionPolicy {
        self.session.policy()
    }

    /// Changes the idle timeout / lifetime (product settings).
    pub fn set_session_policy(&mut self, policy: SessionPolicy) {
        self.session.set_policy(policy);
    }

    /// When the cached PIN session ends unless there is activity; `None` when logged out.
    pub fn deadline(&self) -> Option<Instant> {
        self.session.deadline()
    }

    /// The backend, for backend-specific calls.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Ends the cached session if it ran out by `now`, logging the token out. The driver
    /// calls this when its timer fires.
    pub fn poll(&mut self, now: Instant) -> Option<SessionEndReason> {
        let reason = self.session.poll(now)?;
        // Best effort: the session is over for us whatever the token answers.
        let _ = self.backend.logout();
        Some(reason)
    }

    /// PIN status without logging in or spending a try; `SESSION_ACTIVE` while cached.
    pub fn status(&mut self, now: Instant) -> Result<PinState> {
        self.poll(now);
        let state = self.backend.pin_state()?;
        if self.session.is_active(now) {
            return Ok(PinState {
                status: PinStatus::SessionActive,
                ..state
            });
        }
        Ok(state)
    }

    /// Refuses before touching the token when only the final try is left and the user did
    /// not confirm spending it.
    ///
    /// A blocked PIN is left to the token to refuse (`CKR_PIN_LOCKED` / `6983` cost no
    /// try): some modules keep reporting LOCKED in-process after a PUK reset until the next
    /// login, and refusing on that stale flag would lock the user out of their new PIN.
    fn guard_try(&mut self, confirm: FinalTry) -> Result<()> {
        let state = self.backend.pin_state()?;
        if state.retries.is_final_try() && confirm == FinalTry::NotConfirmed {
            return Err(Error::PinFinalTry);
        }
        Ok(())
    }

    /// Verifies the user PIN once and starts the cached session.
    ///
    /// The PIN is checked against the token's length rules first (a malformed PIN never
    /// reaches the token), and dropped — zeroized — when this returns.
    pub fn verify_pin(&mut self, pin: Pin, confirm: FinalTry, now: Instant) -> Result<PinState> {
        pin.validate(&self.info.pin_policy)?;
        self.poll(now);
        self.guard_try(confirm)?;
        match self.backend.login(&pin) {
            Ok(()) => {
                self.session.verified(now);
                self.status(now)
            }
            Err(err) => {
                self.session.end(match err {
                    Error::TokenNotPresent => SessionEndReason::Removed,
                    _ => SessionEndReason::Explicit,
                });
                Err(err)
            }
        }
    }

    /// Changes the user PIN (the old PIN is verified by the token: one try).
    pub fn change_pin(&mut self, old: Pin, new: Pin, confirm: FinalTry) -> Result<()> {
        old.validate(&self.info.pin_policy)?;
        new.validate(&self.info.pin_policy)?;
        self.guard_try(confirm)?;
        self.backend.change_pin(&old, &new)
    }

    /// Unblocks the user PIN with the PUK / SO PIN, setting `new`.
    pub fn unblock_pin(&mut self, puk: Pin, new: Pin) -> Result<()> {
        puk.validate(&self.info.puk_policy)?;
        new.validate(&self.info.pin_policy)?;
        self.session.end(SessionEndReason::Explicit);
        self.backend.unblock_pin(&puk, &new)
    }

    /// Logs out now ("Log out now" button). Returns whether a session was active.
    pub fn logout(&mut self) -> Result<bool> {
        let was_active = self.session.end(SessionEndReason::Explicit);
        self.backend.logout()?;
        Ok(was_active)
    }

    /// The token was removed: the session ends, secrets are dropped.
    pub fn removed(&mut self) -> bool {
        let was_active = self.session.end(SessionEndReason::Removed);
        let _ = self.backend.logout();
        was_active
    }

    /// Certificates on the token.
    pub fn certificates(&mut self) -> Result<Vec<TokenCertificate>> {
        self.backend.certificates()
    }

    /// Picks the signing key and checks its certificate at wall-clock `now`: an expired
    /// or not-yet-valid certificate is refused, and so is one whose key usage forbids
    /// signatures (`SS_CERT_KEY_USAGE`), all before any PIN is asked.
    pub fn signer(&mut self, selector: &KeySelector, now: OffsetDateTime) -> Result<SignerKey> {
        let certs = self.backend.certificates()?;
        let cert = select_certificate(certs, selector)?;
        let info = CertificateInfo::from_der(&cert.der)?;
        info.ensure_usable_at(now)?;
        info.ensure_may_sign()?;
        Ok(SignerKey {
            id: cert.id,
            scheme: info.require_scheme()?,
            certificate_der: cert.der,
            certificate: info,
        })
    }

    /// Signs `digests` with one PIN session, item by item.
    ///
    /// Stops at the first failure, at cancellation, or when the session ends, and returns
    /// every signature completed before that with the reason. Each item counts as activity
    /// for the idle timeout.
    pub fn sign_batch(
        &mut self,
        key: &SignerKey,
        digests: &[Sha256Digest],
        clock: &dyn Clock,
        cancel: &CancelFlag,
        progress: &mut dyn FnMut(BatchProgress),
    ) -> BatchOutcome {
        let mut outcome = BatchOutcome {
            key: key.id.clone(),
            scheme: key.scheme,
            total: digests.len(),
            signed: Vec::with_capacity(digests.len()),
            error: None,
        };
        if let Err(e) = key
            .certificate
            .ensure_usable_at(clock.wall())
            .and_then(|()| key.certificate.ensure_may_sign())
        {
            outcome.error = Some(e);
            return outcome;
        }
        for (index, digest) in digests.iter().enumerate() {
            if cancel.is_cancelled() {
                outcome.error = Some(Error::Cancelled);
                break;
            }
            if let Err(e) = self.use_session(clock.now()) {
                outcome.error = Some(e);
                break;
            }
            match self.backend.sign_digest(&key.id, key.scheme, digest) {
                Ok(signature) => outcome.signed.push(SignedDigest {
                    index,
                    digest: *digest,
                    signature,
                }),
                Err(e) => {
                    match e {
                        Error::TokenNotPresent => {
                            self.session.end(SessionEndReason::Removed);
                        }
                        Error::PinRequired => {
                            // The token forgot the login (reset, another app logged out).
                            self.session.end(SessionEndReason::Explicit);
                        }
                        _ => {}
                    }
                    outcome.error = Some(e);
                    break;
                }
            }
            progress(BatchProgress {
                done: outcome.signed.len(),
                total: outcome.total,
            });
        }
        outcome
    }

    /// Records activity, or says why no verified PIN is available.
    fn use_session(&mut self, now: Instant) -> Result<()> {
        match self.session.touch(now) {
            Ok(()) => Ok(()),
            Err(Some(reason)) => {
                let _ = self.backend.logout();
                Err(Error::SessionEnded(reason))
            }
            Err(None) => match self.session.last_end() {
                Some(reason @ (SessionEndReason::Idle | SessionEndReason::Expired)) => {
                    Err(Error::SessionEnded(reason))
                }
                _ => Err(Error::PinRequired),
            },
        }
    }
}

/// Chooses a certificate by hex id, then by label, or the only one.
pub fn select_certificate(
    certs: Vec<TokenCertificate>,
    selector: &KeySelector,
) -> Result<TokenCertificate> {
    match selector {
        KeySelector::Only => {
            let count = certs.len();
            let mut iter = certs.into_iter();
            match (iter.next(), count) {
                (Some(cert), 1) => Ok(cert),
                (None, _) => Err(Error::KeyNotFound("any certificate on the token".into())),
                _ => Err(Error::BadRequest(format!(
                    "{count} certificates on the token; choose one with --key ID|LABEL"
                ))),
            }
        }
        KeySelector::IdOrLabel(wanted) => {
            let by_id = hex::decode(wanted).ok();
            let position = certs
                .iter()
                .position(|c| by_id.as_deref() == Some(c.id.0.as_slice()))
                .or_else(|| certs.iter().position(|c| &c.label == wanted));
            position
                .and_then(|i| certs.into_iter().nth(i))
                .ok_or_else(|| Error::KeyNotFound(wanted.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(id: &[u8], label: &str) -> TokenCertificate {
        TokenCertificate {
            id: KeyId(id.to_vec()),
            label: label.into(),
            der: vec![],
        }
    }

    #[test]
    fn selects_by_id_before_label() {
        let certs = vec![cert(&[1], "02"), cert(&[2], "signer-ec")];
        let by_id = select_certificate(certs.clone(), &KeySelector::IdOrLabel("02".into()));
        assert_eq!(by_id.unwrap().id, KeyId(vec![2]));
        let by_label =
            select_certificate(certs.clone(), &KeySelector::IdOrLabel("signer-ec".into()));
        assert_eq!(by_label.unwrap().id, KeyId(vec![2]));
        let missing = select_certificate(certs.clone(), &KeySelector::IdOrLabel("zz".into()));
        assert_eq!(missing.unwrap_err().code(), crate::ErrorCode::KeyNotFound);
        let ambiguous = select_certificate(certs, &KeySelector::Only);
        assert_eq!(ambiguous.unwrap_err().code(), crate::ErrorCode::BadRequest);
    }

    #[test]
    fn only_needs_exactly_one() {
        let one = select_certificate(vec![cert(&[7], "a")], &KeySelector::Only).unwrap();
        assert_eq!(one.id, KeyId(vec![7]));
        let none = select_certificate(vec![], &KeySelector::Only).unwrap_err();
        assert_eq!(none.code(), crate::ErrorCode::KeyNotFound);
    }
}
