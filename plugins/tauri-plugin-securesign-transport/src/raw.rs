//! The raw transfers the native plugin offers, as a platform-neutral trait, and their
//! errors. Everything above them (CCID framing, APDU chaining, PIV) is the core's.

use std::time::Duration;

use securesign_core::apdu::TransportError;
use securesign_core::ccid::PipeError;

use crate::models::{ApduLinkInfo, ApduLinkKind, UsbDevice, UsbOpened};

/// Why a raw transfer failed. The native plugin rejects with one of the codes of
/// [`RawError::from_rejection`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    /// No such hardware or service here (desktop, no USB host, NFC off or absent).
    #[error("not available: {0}")]
    NotAvailable(String),
    /// The user refused the USB permission prompt.
    #[error("the USB permission was refused")]
    PermissionDenied,
    /// The user closed the NFC prompt (iOS reader session sheet).
    #[error("cancelled by the user")]
    Cancelled,
    /// The device is gone (USB detached, interface lost).
    #[error("the device was disconnected")]
    Disconnected,
    /// No card: the NFC tag left the field (`TagLostException`), the reader slot is empty.
    #[error("no card (removed or out of the NFC field)")]
    CardAbsent,
    /// Nothing arrived within the timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// The bridge itself returned something unreadable (bad JSON or base64).
    #[error("bridge: {0}")]
    Bridge(String),
    /// Any other platform failure.
    #[error("platform error {code}: {message}")]
    Platform {
        /// The platform's code (`ioError`, or an unknown one).
        code: String,
        /// Its message.
        message: String,
    },
}

impl RawError {
    /// The error for a rejection by the native plugin (`invoke.reject(message, code)`).
    pub fn from_rejection(code: Option<&str>, message: &str) -> Self {
        match code {
            Some("notAvailable") => Self::NotAvailable(message.to_owned()),
            Some("permissionDenied") => Self::PermissionDenied,
            Some("cancelled") => Self::Cancelled,
            Some("disconnected") => Self::Disconnected,
            Some("cardAbsent") => Self::CardAbsent,
            Some("timeout") => Self::Timeout,
            other => Self::Platform {
                code: other.unwrap_or("unknown").to_owned(),
                message: message.to_owned(),
            },
        }
    }
}

impl From<RawError> for PipeError {
    fn from(e: RawError) -> Self {
        match e {
            RawError::Timeout => Self::Timeout,
            RawError::Disconnected
            | RawError::NotAvailable(_)
            | RawError::PermissionDenied
            | RawError::CardAbsent => Self::Disconnected,
            other => Self::Io(other.to_string()),
        }
    }
}

impl From<RawError> for TransportError {
    fn from(e: RawError) -> Self {
        match e {
            RawError::CardAbsent => Self::CardAbsent,
            RawError::Bridge(detail) => Self::Malformed(detail),
            RawError::Disconnected
            | RawError::NotAvailable(_)
            | RawError::PermissionDenied
            | RawError::Cancelled => Self::ReaderUnavailable(e.to_string()),
            other => Self::Other(other.to_string()),
        }
    }
}

/// The native plugin's commands as typed calls. Implemented over the bridge
/// ([`crate::bridge::Bridge`]) and by scripted peers in tests.
pub trait RawTransfers: Send {
    /// USB devices with a CCID-class interface.
    fn usb_devices(&mut self) -> Result<Vec<UsbDevice>, RawError>;
    /// Asks for the USB permission if needed, opens the device and claims its CCID interface.
    fn usb_open(&mut self, device_name: &str) -> Result<UsbOpened, RawError>;
    /// One bulk-OUT transfer.
    fn usb_bulk_out(&mut self, data: &[u8]) -> Result<(), RawError>;
    /// One bulk-IN transfer (empty for a zero-length packet).
    fn usb_bulk_in(&mut self, timeout: Duration) -> Result<Vec<u8>, RawError>;
    /// One interrupt-IN transfer ([`RawError::Timeout`] when nothing came).
    fn usb_interrupt_in(&mut self, timeout: Duration) -> Result<Vec<u8>, RawError>;
    /// Releases the interface and closes the device.
    fn usb_close(&mut self) -> Result<(), RawError>;
    /// Waits up to `wait` for a card on an APDU link and connects to it.
    fn apdu_connect(
        &mut self,
        kind: ApduLinkKind,
        wait: Duration,
        timeout: Duration,
    ) -> Result<ApduLinkInfo, RawError>;
    /// Whether the connected card is still there.
    fn apdu_present(&mut self) -> Result<bool, RawError>;
    /// Sends one command APDU and returns `data || SW1 SW2`.
    fn apdu_transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, RawError>;
    /// Ends the APDU link (NFC reader mode off, session invalidated).
    fn apdu_disconnect(&mut self) -> Result<(), RawError>;
}
