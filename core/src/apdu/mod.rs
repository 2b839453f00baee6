//! Smart-card commands (ISO/IEC 7816-4 APDUs) and the transport that carries them.
//!
//! One trait, [`ApduTransport`], is all a card application such as PIV needs: PC/SC on
//! desktops ([`pcsc::PcscTransport`], feature `pcsc`), and on phones thin adapters over
//! Android's USB-CCID bulk transfers or NFC `IsoDep` (written outside this crate). The
//! transport moves single short APDUs; [`exchange`] adds the chaining rules on top
//! (`61xx` → GET RESPONSE, `6Cxx` → resend with the right `Le`, command chaining for data
//! longer than 255 bytes), so every adapter behaves the same.

mod chain;
#[cfg(feature = "pcsc")]
pub mod pcsc;

use std::fmt;

use zeroize::Zeroizing;

pub use chain::{exchange, MAX_GET_RESPONSE_ROUNDS, MAX_RESPONSE, MAX_SHORT_DATA};

/// A command APDU before it is cut into short APDUs (see [`exchange`]).
///
/// Its data may be a PIN or PUK (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER), so
/// it lives in a [`Zeroizing`] buffer, wiped when the command drops; [`exchange`] builds
/// every short APDU from it in zeroizing buffers too.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte (the chaining bit `0x10` is set by [`exchange`], not here).
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (may be longer than 255 bytes: it is chained); wiped on drop.
    pub data: Zeroizing<Vec<u8>>,
    /// Whether a response body is expected (`Le = 00`, i.e. up to 256 bytes per response).
    pub expect_response: bool,
}

impl Command {
    /// A command with `data` that expects a response body. The vector is moved (not
    /// copied) into the zeroizing buffer.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Self {
        Self::secret(cla, ins, p1, p2, Zeroizing::new(data))
    }

    /// A command whose data is already in a zeroizing buffer (a PIN or PUK), taken over
    /// without a copy.
    pub fn secret(cla: u8, ins: u8, p1: u8, p2: u8, data: Zeroizing<Vec<u8>>) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data,
            expect_response: true,
        }
    }

    /// The same command without `Le` (the card answers with a status word only).
    pub fn without_response(mut self) -> Self {
        self.expect_response = false;
        self
    }
}

/// Command data may be a PIN: `Debug` shows its length only.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, {} data bytes)",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len()
        )
    }
}

/// A status word (`SW1 SW2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: success.
    pub const OK: Self = Self(0x9000);

    /// From the two trailing bytes of a response.
    pub fn new(sw1: u8, sw2: u8) -> Self {
        Self(u16::from_be_bytes([sw1, sw2]))
    }

    /// `SW1`.
    pub fn sw1(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// `SW2`.
    pub fn sw2(self) -> u8 {
        self.0.to_be_bytes()[1]
    }

    /// True for `9000`.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A complete response: every chained part's data, and the final status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data.
    pub data: Vec<u8>,
    /// Final status word.
    pub sw: StatusWord,
}

impl Response {
    /// Splits a raw response (`data || SW1 SW2`).
    ///
    /// An empty answer is no answer: the card went away during the exchange (PC/SC
    /// returns success with zero bytes when the card dies mid-APDU), so it is
    /// [`TransportError::CardAbsent`]; one byte is a broken response.
    pub fn from_raw(mut raw: Vec<u8>) -> Result<Self, TransportError> {
        if raw.is_empty() {
            return Err(TransportError::CardAbsent);
        }
        if raw.len() < 2 {
            return Err(TransportError::Malformed(format!(
                "response of {} bytes has no status word",
                raw.len()
            )));
        }
        let sw2 = raw.pop().unwrap_or_default();
        let sw1 = raw.pop().unwrap_or_default();
        Ok(Self {
            data: raw,
            sw: StatusWord::new(sw1, sw2),
        })
    }
}

/// Response data may be secret-adjacent (signatures are not, but keep logs small).
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response({} data bytes, SW {})",
            self.data.len(),
            self.sw
        )
    }
}

/// Why an APDU could not be exchanged. None of these is an answer from the card
/// application, so none can ever mean "wrong PIN".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No card in the reader, or it was removed (or the NFC tag left the field).
    #[error("no card in the reader (removed?)")]
    CardAbsent,
    /// The reader is gone or unusable (unplugged, daemon stopped).
    #[error("reader unavailable: {0}")]
    ReaderUnavailable(String),
    /// The card was reset by someone else: its application and PIN state are lost.
    #[error("the card was reset")]
    CardReset,
    /// A response that breaks ISO 7816-4 framing.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Any other failure of the transport or its driver.
    #[error("transport failure: {0}")]
    Other(String),
}

/// A link to one card in one reader, carrying single **short** APDUs.
///
/// Implemented by [`pcsc::PcscTransport`] here and by the mobile USB-CCID / NFC adapters.
/// An implementation does no chaining and no retries of its own: [`exchange`] does the
/// chaining, and a PIN command is never sent twice.
pub trait ApduTransport: Send {
    /// Human-readable name of the reader (PC/SC reader name, "USB CCID 1050:0407", "NFC").
    fn reader_name(&self) -> &str;

    /// Whether a card is in the reader (or in the NFC field) right now.
    fn card_present(&mut self) -> Result<bool, TransportError>;

    /// Sends one short command APDU (`CLA INS P1 P2 [Lc data] [Le]`, at most 261 bytes)
    /// and returns the raw response (`data || SW1 SW2`).
    ///
    /// After an error the link is considered broken; the next call reconnects if it can,
    /// and the card application must be selected again (its state is gone).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Sends one logical command with chaining (see [`exchange`]). Transports that can
    /// make the sequence atomic (PC/SC transactions) override this; the result must be
    /// what [`exchange`] returns.
    fn exchange(&mut self, command: &Command) -> Result<Response, TransportError> {
        exchange(self, command)
    }

    /// Sends `commands` in order as one unit, stopping after the first answer that is not
    /// `9000`; returns the answers received. For commands that must follow each other
    /// with nothing in between (VERIFY right before a "PIN always" signature). Transports
    /// that can make it atomic (PC/SC transactions) override this.
    fn exchange_sequence(&mut self, commands: &[Command]) -> Result<Vec<Response>, TransportError> {
        let mut answers = Vec::with_capacity(commands.len());
        for command in commands {
            let answer = self.exchange(command)?;
            let ok = answer.sw.is_ok();
            answers.push(answer);
            if !ok {
                break;
            }
        }
        Ok(answers)
    }
}

impl<T: ApduTransport + ?Sized> ApduTransport for Box<T> {
    fn reader_name(&self) -> &str {
        (**self).reader_name()
    }
    fn card_present(&mut self) -> Result<bool, TransportError> {
        (**self).card_present()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn exchange(&mut self, command: &Command) -> Result<Response, TransportError> {
        (**self).exchange(command)
    }
    fn exchange_sequence(&mut self, commands: &[Command]) -> Result<Vec<Response>, TransportError> {
        (**self).exchange_sequence(commands)
    }
}
