//! USB CCID (Chip/Smart Card Interface Devices, class specification 1.1) host side, sans
//! I/O: what an Android USB-host adapter needs to reach a token through a CCID reader with
//! nothing but raw bulk and interrupt transfers.
//!
//! * [`descriptor`]: the class descriptor — exchange level, `dwMaxCCIDMessageLength`,
//!   automatic features, voltages; TPDU- and character-level readers are refused.
//! * [`message`]: the bulk messages (power on/off, slot status, XfrBlock, DataBlock,
//!   SlotStatus) byte for byte.
//! * [`machine`]: [`Ccid`], the state machine — bytes in, frames out, never I/O:
//!   sequence numbers, time extensions, command and response chaining, slot errors.
//! * [`interrupt`]: `NotifySlotChange` / `HardwareError` from the interrupt endpoint.
//! * [`transport`]: [`CcidTransport`], an [`crate::apdu::ApduTransport`] over a
//!   [`BulkPipe`] (the two calls a platform adapter implements).
//!
//! Platform-neutral: no PC/SC, compiled on every target.

pub mod descriptor;
pub mod interrupt;
pub mod machine;
pub mod message;
pub mod transport;

pub use descriptor::{CcidDescriptor, ExchangeLevel, Voltages};
pub use interrupt::{parse_interrupt, Interrupt, SlotChange};
pub use machine::{Ccid, Outcome, Step};
pub use message::IccStatus;
pub use transport::{BulkPipe, CcidTransport, PipeError};

use crate::apdu::TransportError;

/// What went wrong between the host and a CCID reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CcidError {
    /// The class descriptor is broken.
    #[error("bad CCID class descriptor: {0}")]
    Descriptor(String),
    /// The reader works in a way this module does not support (TPDU or character level,
    /// messages too short for an APDU, no such slot).
    #[error("unsupported CCID reader: {0}")]
    Unsupported(String),
    /// No card in the slot.
    #[error("no card in the reader")]
    CardAbsent,
    /// A card is in the slot but not active (it was not powered, was reset, or did not
    /// answer the power-on).
    #[error("the card in the reader is not active ({name})")]
    CardInactive {
        /// `bError`.
        code: u8,
        /// Its name in §6.2.6.
        name: String,
    },
    /// The reader reported a slot error (`bError`, §6.2.6) with the card active.
    #[error("the reader reported {name}")]
    Slot {
        /// `bError`.
        code: u8,
        /// Its name in §6.2.6.
        name: String,
    },
    /// A message that breaks the CCID protocol.
    #[error("malformed CCID message: {0}")]
    Malformed(String),
    /// The reader or the card did not answer in time.
    #[error("CCID timeout: {0}")]
    Timeout(String),
    /// An operation was started while another one was in progress.
    #[error("a CCID operation is already in progress")]
    Busy,
    /// The command APDU cannot be sent (too short, too long for the reader).
    #[error("invalid command APDU: {0}")]
    InvalidCommand(String),
    /// The USB transfer failed.
    #[error("USB transfer failed: {0}")]
    Pipe(#[from] PipeError),
}

impl CcidError {
    /// Whether the card is gone (absent or inactive) rather than broken.
    pub fn card_gone(&self) -> bool {
        matches!(
            self,
            Self::CardAbsent | Self::CardInactive { .. } | Self::Pipe(PipeError::Disconnected)
        )
    }
}

impl From<CcidError> for TransportError {
    fn from(e: CcidError) -> Self {
        match e {
            CcidError::CardAbsent | CcidError::CardInactive { .. } => Self::CardAbsent,
            CcidError::Pipe(PipeError::Disconnected) => {
                Self::ReaderUnavailable("the USB reader was disconnected".into())
            }
            CcidError::Malformed(detail) => Self::Malformed(format!("CCID: {detail}")),
            other => Self::Other(other.to_string()),
        }
    }
}

/// Into the core's one error: a missing card or reader is `SS_TOKEN_NOT_PRESENT`, a reader
/// this module cannot drive is `SS_NOT_SUPPORTED`, anything else `SS_TOKEN_ERROR`.
impl From<CcidError> for crate::Error {
    fn from(e: CcidError) -> Self {
        if e.card_gone() {
            return Self::TokenNotPresent;
        }
        match e {
            CcidError::Unsupported(detail) => Self::NotSupported(detail),
            other => Self::Token(other.to_string()),
        }
    }
}
