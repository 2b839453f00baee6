//! The PIV card application (NIST SP 800-73-4) over any [`ApduTransport`]: PC/SC on
//! desktops, USB-CCID / NFC adapters on phones.
//!
//! Unlike PKCS#11, PIV reports the **exact** number of PIN tries left (`63Cx`), read
//! without spending a try by a VERIFY with an empty body. Key ids are slot bytes
//! (`9A`, `9C`). Policy — PIN rules, final-try confirmation, the cached session — stays in
//! [`crate::token::Token`], as for every backend.
//!
//! The Digital Signature key (9C) needs the PIN *immediately* before every signature
//! (SP 800-73-4 "PIN always"). To sign a batch with one PIN entry, the backend keeps the
//! verified PIN (padded, zeroized on drop) while logged in and sends VERIFY with it right
//! before each 9C signature. Before that it reads the try counter with an empty VERIFY
//! (spends nothing): with one try left (or none) the kept PIN is not sent — it is dropped
//! and the signature refused with [`Error::PinRequired`] ([`Error::PinBlocked`] when
//! blocked), as the PKCS#11 backend does, so the final try stays the user's to confirm.
//! The PIN is put back only after the card answered `9000` to both the VERIFY and the
//! signature; it is dropped on logout, removal and any failure, so a re-sent PIN that went
//! stale can fail at most once.
//!
//! Every buffer that holds the PIN or PUK here is zeroizing: the padded form
//! ([`PaddedPin`], on the heap, never copied on the stack), the command data
//! ([`Command::data`]) and each short APDU built from it by the chaining layer.

mod objects;
mod pkcs1;
mod status;
mod tlv;

use zeroize::Zeroizing;

pub use objects::{slot, Slot, SIGNING_SLOTS, SLOT_9A, SLOT_9C};

use super::{KeyId, SignatureScheme, TokenBackend, TokenCertificate, TokenInfo};
use crate::apdu::{ApduTransport, Command, Response, StatusWord, TransportError};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::pin::{Pin, PinCharset, PinPolicy};
use crate::status::{PinState, PinStatus, Retries, RetryIndicator};

/// The PIV application identifier (full form; some cards refuse the 5-byte prefix).
pub const PIV_AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// Key reference of the PIV Card Application PIN.
const PIN_REF: u8 = 0x80;
/// PIN and PUK are padded with `FF` to this length.
const PIN_LEN: usize = 8;
/// Shortest PIV PIN (SP 800-73-4 part 2, §2.4.3).
const PIN_MIN: usize = 6;

const INS_SELECT: u8 = 0xA4;
const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_GET_DATA: u8 = 0xCB;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;

/// Algorithm identifiers (SP 800-78-4, table 6-2).
const ALG_RSA_2048: u8 = 0x07;
const ALG_ECC_P256: u8 = 0x11;
/// RSA-2048 modulus length in bytes.
const RSA_2048_LEN: usize = 256;

/// A PIN or PUK padded to 8 bytes with `FF`, on the heap (moves copy the pointer, not
/// the PIN); wiped when dropped.
type PaddedPin = Zeroizing<Vec<u8>>;

/// One PIV card reached through `T`. Owned by one thread (see [`crate::worker`]).
pub struct PivBackend<T: ApduTransport> {
    transport: T,
    /// The PIV application is selected on the current connection.
    selected: bool,
    /// VERIFY succeeded on the current connection and no logout happened since.
    verified: bool,
    /// The verified PIN, kept only for PIN-always keys while logged in.
    pin_always: Option<PaddedPin>,
    /// Highest try count seen; a lower count means failures happened since.
    max_tries_seen: u8,
}

impl<T: ApduTransport> std::fmt::Debug for PivBackend<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PivBackend")
            .field("reader", &self.transport.reader_name())
            .field("selected", &self.selected)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

impl<T: ApduTransport> PivBackend<T> {
    /// Selects the PIV application on the card behind `transport`.
    ///
    /// Fails with [`Error::NotSupported`] when the card has no PIV application and
    /// [`Error::TokenNotPresent`] when there is no card.
    pub fn open(transport: T) -> Result<Self> {
        let mut backend = Self {
            transport,
            selected: false,
            verified: false,
            pin_always: None,
            max_tries_seen: 0,
        };
        backend.ensure_selected()?;
        Ok(backend)
    }

    /// The transport (e.g. for its reader name).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends one logical command; a transport failure means the card is gone for us.
    fn send(&mut self, command: &Command) -> Result<Response> {
        let result = self.transport.exchange(command);
        result.map_err(|e| self.failed(&e))
    }

    /// A failed exchange: the connection's selection and PIN state are gone with it. A
    /// card that broke the protocol (endless `61xx`, a response without status word) is a
    /// token error; anything else means the card is unreachable.
    fn failed(&mut self, err: &TransportError) -> Error {
        self.lost();
        match err {
            TransportError::Malformed(detail) => {
                Error::Token(format!("the card broke the APDU protocol: {detail}"))
            }
            _ => Error::TokenNotPresent,
        }
    }

    /// GENERAL AUTHENTICATE, preceded for a PIN-always key by VERIFY with the kept PIN in
    /// the same atomic sequence (nothing may come between them), and before that by an
    /// empty VERIFY that reads the try counter.
    ///
    /// Returns the answer and, for a PIN-always key whose VERIFY the card accepted, the
    /// kept PIN for the caller to put back once the signature succeeded. The PIN is taken
    /// out of the backend first, so every early return drops (wipes) it.
    fn authenticate(
        &mut self,
        slot: Slot,
        command: Command,
    ) -> Result<(Response, Option<PaddedPin>)> {
        if !slot.pin_always {
            return Ok((self.send(&command)?, None));
        }
        let Some(pin) = self.pin_always.take() else {
            return Err(Error::PinRequired);
        };
        let status = Command::new(0x00, INS_VERIFY, 0x00, PIN_REF, Vec::new()).without_response();
        let verify = verify_command(&pin);
        // `9000`: still verified. SP 800-73-4 part 2 §3.2.1/§3.2.2: a failed VERIFY or
        // CHANGE REFERENCE DATA sets the security status to FALSE, and a successful one
        // resets the retry counter, so a verified card has all its tries. Then status,
        // VERIFY and the signature go in one transaction (PC/SC), nothing in between.
        let sequence = self
            .transport
            .exchange_sequence(&[status, verify.clone(), command.clone()]);
        let answers = sequence.map_err(|e| self.failed(&e))?;
        let mut answers = answers.into_iter();
        let counter = answers
            .next()
            .ok_or_else(|| Error::Internal("no answer to VERIFY (status)".into()))?;
        let mut answers: Vec<Response> = if counter.sw.is_ok() {
            answers.collect()
        } else {
            // Not verified: the card told the tries left. Failures happened elsewhere (or
            // the card was reset); the final try is the user's, never ours.
            match (counter.sw, status::tries_left(counter.sw)) {
                (_, Some(0)) | (status::BLOCKED, _) => {
                    self.verified = false;
                    return Err(Error::PinBlocked);
                }
                (_, Some(1)) => {
                    self.verified = false;
                    return Err(Error::PinRequired);
                }
                (_, Some(_)) => {}
                (sw, None) => return Err(status::unexpected("VERIFY (status)", sw)),
            }
            let sequence = self.transport.exchange_sequence(&[verify, command]);
            sequence.map_err(|e| self.failed(&e))?
        };
        answers.reverse();
        let verified = answers
            .pop()
            .ok_or_else(|| Error::Internal("no answer to VERIFY".into()))?;
        if let Err(e) = status::pin_result(verified.sw, "VERIFY") {
            // The PIN was changed elsewhere: this try is spent once, never again.
            self.verified = false;
            return Err(self.with_count(e));
        }
        let answer = answers
            .pop()
            .ok_or_else(|| Error::Internal("no answer to GENERAL AUTHENTICATE".into()))?;
        Ok((answer, Some(pin)))
    }

    /// The connection broke: selection and PIN state are gone with it.
    fn lost(&mut self) {
        self.selected = false;
        self.verified = false;
        self.pin_always = None;
    }

    fn ensure_selected(&mut self) -> Result<()> {
        if self.selected {
            return Ok(());
        }
        let select = Command::new(0x00, INS_SELECT, 0x04, 0x00, PIV_AID.to_vec());
        let reply = self.send(&select)?;
        match reply.sw {
            StatusWord::OK => {
                self.selected = true;
                self.verified = false;
                Ok(())
            }
            status::NOT_FOUND => Err(Error::NotSupported(
                "the card has no PIV application".into(),
            )),
            sw => Err(status::unexpected("SELECT PIV", sw)),
        }
    }

    /// VERIFY with `pin` (padded); never resent.
    fn verify(&mut self, pin: &PaddedPin) -> Result<StatusWord> {
        self.ensure_selected()?;
        Ok(self.send(&verify_command(pin))?.sw)
    }

    /// The empty VERIFY: `9000` when verified, `63Cx` with the tries left otherwise.
    fn pin_status_word(&mut self) -> Result<StatusWord> {
        self.ensure_selected()?;
        let command = Command::new(0x00, INS_VERIFY, 0x00, PIN_REF, Vec::new()).without_response();
        Ok(self.send(&command)?.sw)
    }

    fn read_certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>> {
        self.ensure_selected()?;
        let tag = tlv::encode(0x5C, &slot.object.to_be_bytes()[1..]);
        let reply = self.send(&Command::new(0x00, INS_GET_DATA, 0x3F, 0xFF, tag))?;
        match reply.sw {
            StatusWord::OK => objects::certificate_from_object(&reply.data).map(Some),
            status::NOT_FOUND => Ok(None),
            sw => Err(status::unexpected("GET DATA", sw)),
        }
    }

    /// A wrong PIN the card answered without a count (`6300`): read the count with an
    /// empty VERIFY (spends nothing). Other errors pass through.
    fn with_count(&mut self, err: Error) -> Error {
        let Error::PinInvalid { retries } = err else {
            return err;
        };
        if retries.remaining.is_some() {
            return err;
        }
        match self.pin_state() {
            Ok(state) if state.status == PinStatus::Blocked => Error::PinBlocked,
            Ok(state) if state.retries.remaining.is_some() => Error::PinInvalid {
                retries: state.retries,
            },
            // The card went away after saying "wrong PIN": still a wrong PIN, count unknown.
            _ => Error::PinInvalid { retries },
        }
    }
}

#[cfg(feature = "pcsc")]
impl PivBackend<crate::apdu::pcsc::PcscTransport> {
    /// Opens the PIV card in the PC/SC reader named `reader` (exact name, as
    /// [`crate::apdu::pcsc::list_readers`] reports it).
    ///
    /// An unknown reader is a configuration error ([`Error::Config`]); an empty reader, or
    /// a PC/SC service that is not running, is [`Error::TokenNotPresent`].
    pub fn open_reader(reader: &str) -> Result<Self> {
        use crate::apdu::pcsc::{list_readers, PcscTransport};
        use crate::apdu::TransportError;
        let known = list_readers().map_err(|_| Error::TokenNotPresent)?;
        if !known.iter().any(|r| r.name == reader) {
            let names: Vec<&str> = known.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::Config(format!(
                "no smart-card reader named {reader:?} (readers: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )));
        }
        let transport = PcscTransport::open(reader).map_err(|e| match e {
            TransportError::Other(detail) => Error::Token(format!("reader {reader:?}: {detail}")),
            _ => Error::TokenNotPresent,
        })?;
        Self::open(transport)
    }
}

/// Pads a PIN or PUK to 8 bytes with `FF`; longer values are refused before any APDU.
fn pad(secret: &Pin) -> Result<PaddedPin> {
    let mut padded = Zeroizing::new(Vec::with_capacity(PIN_LEN));
    append_padded(&mut padded, secret)?;
    Ok(padded)
}

/// Appends `secret` padded to 8 bytes; `body` must have the room (no reallocation, which
/// would free a copy unwiped).
fn append_padded(body: &mut Zeroizing<Vec<u8>>, secret: &Pin) -> Result<()> {
    let bytes = secret.expose().as_bytes();
    if bytes.is_empty() || bytes.len() > PIN_LEN || body.capacity() - body.len() < PIN_LEN {
        return Err(Error::PinFormat {
            min: PIN_MIN,
            max: PIN_LEN,
        });
    }
    let end = body.len() + PIN_LEN;
    body.extend_from_slice(bytes);
    body.resize(end, 0xFF);
    Ok(())
}

/// `old || new`, both padded: the body of CHANGE REFERENCE DATA / RESET RETRY COUNTER.
fn pin_pair(first: &Pin, second: &Pin) -> Result<Zeroizing<Vec<u8>>> {
    let mut body = Zeroizing::new(Vec::with_capacity(2 * PIN_LEN));
    append_padded(&mut body, first)?;
    append_padded(&mut body, second)?;
    Ok(body)
}

/// VERIFY with a padded PIN, its data in a zeroizing buffer of its own.
fn verify_command(pin: &PaddedPin) -> Command {
    let mut data = Zeroizing::new(Vec::with_capacity(PIN_LEN));
    data.extend_from_slice(pin);
    Command::secret(0x00, INS_VERIFY, 0x00, PIN_REF, data).without_response()
}

/// The signature in a GENERAL AUTHENTICATE answer `7C { 82 signature }`.
fn signature_from_template(data: &[u8]) -> Result<Vec<u8>> {
    let template = tlv::find(data, 0x7C)?
        .ok_or_else(|| Error::Token("GENERAL AUTHENTICATE answer has no 7C template".into()))?;
    let signature = tlv::find(template, 0x82)?
        .ok_or_else(|| Error::Token("GENERAL AUTHENTICATE answer has no 82 response".into()))?;
    Ok(signature.to_vec())
}

impl<T: ApduTransport> TokenBackend for PivBackend<T> {
    fn info(&mut self) -> Result<TokenInfo> {
        self.ensure_selected()?;
        let pin_policy = PinPolicy::from_token(PIN_MIN, PIN_LEN, PinCharset::Digits);
        Ok(TokenInfo {
            label: "PIV".into(),
            manufacturer: String::new(),
            model: format!("PIV card in {}", self.transport.reader_name()),
            serial: String::new(),
            pin_policy,
            // The PUK is 8 bytes of any value; cards in the field use digits, 6 to 8.
            puk_policy: PinPolicy::from_token(PIN_MIN, PIN_LEN, PinCharset::PrintableAscii),
            protected_auth_path: false,
            exact_retries: true,
        })
    }

    fn pin_state(&mut self) -> Result<PinState> {
        let sw = self.pin_status_word()?;
        if sw == StatusWord::OK {
            // Verified: the card does not tell the count in this state.
            return Ok(PinState {
                status: PinStatus::Active,
                retries: Retries::flagged(RetryIndicator::Unknown),
            });
        }
        let tries = match (sw, status::tries_left(sw)) {
            (_, Some(n)) => n,
            (status::BLOCKED, None) => 0,
            _ => return Err(status::unexpected("VERIFY (status)", sw)),
        };
        self.max_tries_seen = self.max_tries_seen.max(tries);
        let status = match tries {
            0 => PinStatus::Blocked,
            1 => PinStatus::Invalid,
            n if n < self.max_tries_seen => PinStatus::Invalid,
            _ => PinStatus::NotVerified,
        };
        Ok(PinState {
            status,
            retries: Retries::exact(tries),
        })
    }

    fn login(&mut self, pin: &Pin) -> Result<()> {
        let padded = pad(pin)?;
        self.verified = false;
        self.pin_always = None;
        let sw = self.verify(&padded)?;
        status::pin_result(sw, "VERIFY").map_err(|e| self.with_count(e))?;
        self.verified = true;
        self.pin_always = Some(padded);
        Ok(())
    }

    fn logout(&mut self) -> Result<()> {
        self.verified = false;
        self.pin_always = None;
        if !self.selected {
            // A new connection has no verified PIN of ours; nothing to drop.
            return Ok(());
        }
        let command = Command::new(0x00, INS_VERIFY, 0xFF, PIN_REF, Vec::new()).without_response();
        match self.send(&command) {
            Ok(reply) if reply.sw.is_ok() => Ok(()),
            Ok(reply) => Err(status::unexpected("VERIFY (logout)", reply.sw)),
            // Removed: the card's state went with it.
            Err(Error::TokenNotPresent) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<()> {
        let body = pin_pair(old, new)?;
        self.ensure_selected()?;
        self.pin_always = None;
        let command =
            Command::secret(0x00, INS_CHANGE_REFERENCE, 0x00, PIN_REF, body).without_response();
        let sw = self.send(&command)?.sw;
        status::pin_result(sw, "CHANGE REFERENCE DATA").map_err(|e| self.with_count(e))
    }

    fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<()> {
        let body = pin_pair(puk, new)?;
        self.ensure_selected()?;
        self.verified = false;
        self.pin_always = None;
        let command =
            Command::secret(0x00, INS_RESET_RETRY, 0x00, PIN_REF, body).without_response();
        let sw = self.send(&command)?.sw;
        status::puk_result(sw)
    }

    fn certificates(&mut self) -> Result<Vec<TokenCertificate>> {
        let mut certs = Vec::new();
        for slot in SIGNING_SLOTS {
            if let Some(der) = self.read_certificate(slot)? {
                certs.push(TokenCertificate {
                    id: KeyId(vec![slot.key_ref]),
                    label: slot.label.to_owned(),
                    der,
                });
            }
        }
        Ok(certs)
    }

    fn sign_digest(
        &mut self,
        key: &KeyId,
        scheme: SignatureScheme,
        digest: &Sha256Digest,
    ) -> Result<Vec<u8>> {
        let slot = match key.0.as_slice() {
            [key_ref] => slot(*key_ref),
            _ => None,
        }
        .ok_or_else(|| Error::KeyNotFound(key.to_hex()))?;
        if !self.verified {
            return Err(Error::PinRequired);
        }
        let (algorithm, challenge) = match scheme {
            SignatureScheme::EcdsaP256Sha256 => (ALG_ECC_P256, digest.0.to_vec()),
            SignatureScheme::RsaPkcs1Sha256 => (
                ALG_RSA_2048,
                pkcs1::pad_type1(&digest.rsa_digest_info(), RSA_2048_LEN)?,
            ),
        };
        let mut template = tlv::encode(0x82, &[]);
        template.extend(tlv::encode(0x81, &challenge));
        let body = tlv::encode(0x7C, &template);
        let command = Command::new(
            0x00,
            INS_GENERAL_AUTHENTICATE,
            algorithm,
            slot.key_ref,
            body,
        );
        let (reply, kept) = self.authenticate(slot, command)?;
        match reply.sw {
            StatusWord::OK => {}
            status::NOT_VERIFIED => {
                // The card forgot the PIN (reset by another application).
                self.verified = false;
                self.pin_always = None;
                return Err(Error::PinRequired);
            }
            status::REFERENCE_NOT_FOUND => return Err(Error::KeyNotFound(key.to_hex())),
            status::WRONG_DATA | StatusWord(0x6A86) => {
                return Err(Error::NotSupported(format!(
                    "slot {key} does not hold a key for {scheme:?}"
                )))
            }
            sw => return Err(status::unexpected("GENERAL AUTHENTICATE", sw)),
        }
        let signature = signature_from_template(&reply.data)?;
        let signature = match scheme {
            SignatureScheme::RsaPkcs1Sha256 if signature.len() == RSA_2048_LEN => Ok(signature),
            SignatureScheme::RsaPkcs1Sha256 => Err(Error::Token(format!(
                "RSA signature of {} bytes, expected {RSA_2048_LEN}",
                signature.len()
            ))),
            // The card answers DER; re-encode to reject anything malformed.
            SignatureScheme::EcdsaP256Sha256 => p256::ecdsa::Signature::from_der(&signature)
                .map(|s| s.to_der().as_bytes().to_vec())
                .map_err(|e| {
                    Error::Token(format!("card returned a malformed ECDSA signature: {e}"))
                }),
        }?;
        // Kept again only now: the card accepted the PIN and signed.
        if kept.is_some() {
            self.pin_always = kept;
        }
        Ok(signature)
    }
}

/// Leaves no verified PIN behind on the card (best effort: the card may be gone).
impl<T: ApduTransport> Drop for PivBackend<T> {
    fn drop(&mut self) {
        if self.verified {
            let _ = self.logout();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    /// A card that selects PIV and then answers every other APDU with `answer`, giving up
    /// after `limit` APDUs (so a missing cap fails instead of hanging).
    struct Stuck {
        answer: Vec<u8>,
        sent: usize,
        limit: usize,
    }

    impl ApduTransport for Stuck {
        fn reader_name(&self) -> &str {
            "stuck"
        }
        fn card_present(&mut self) -> std::result::Result<bool, TransportError> {
            Ok(true)
        }
        fn transmit(&mut self, apdu: &[u8]) -> std::result::Result<Vec<u8>, TransportError> {
            self.sent += 1;
            if apdu.get(1) == Some(&INS_SELECT) {
                return Ok(vec![0x90, 0x00]);
            }
            if self.sent > self.limit {
                return Err(TransportError::Other("the card never stopped".into()));
            }
            Ok(self.answer.clone())
        }
    }

    #[test]
    fn a_card_stuck_in_61xx_is_a_token_error_not_a_removal_and_not_a_hang() {
        let stuck = Stuck {
            answer: vec![0x61, 0x00],
            sent: 0,
            limit: 100_000,
        };
        let mut piv = PivBackend::open(stuck).unwrap();
        let err = piv.certificates().unwrap_err();
        assert_eq!(err.code(), ErrorCode::TokenError, "{err:?}");
        assert!(
            piv.transport().sent < 1_000,
            "{} APDUs",
            piv.transport().sent
        );
    }
}
