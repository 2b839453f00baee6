//! What crosses the bridge to the native plugin (JSON, camelCase): arguments and answers of
//! each command. Byte strings travel as standard base64.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::raw::RawError;

/// Shortest transceive timeout given to an NFC link: an RSA-2048 signature on a slow card
/// takes seconds, and Android's IsoDep default (about 1 s) would cut it off.
pub const NFC_MIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest short command APDU (`CLA INS P1 P2 Lc 255 bytes Le`).
pub const SHORT_APDU_MAX: usize = 261;

/// One USB device that has a CCID-class interface (`bInterfaceClass` 0x0B).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsbDevice {
    /// The platform's device name (Android `UsbDevice.getDeviceName()`, e.g. `/dev/bus/usb/001/002`).
    pub name: String,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// The product string, when the device has one.
    #[serde(default)]
    pub product: Option<String>,
}

/// A USB device opened by the platform: permission granted, CCID interface claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbOpened {
    /// A name for the reader ("USB CCID 1050:0407 YubiKey").
    pub reader_name: String,
    /// The raw descriptors (`UsbDeviceConnection.getRawDescriptors()`): the device
    /// descriptor followed by the active configuration's descriptors.
    pub raw_descriptors: Vec<u8>,
}

/// Which platform link carries single APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApduLinkKind {
    /// An NFC card: Android `IsoDep`, iOS CoreNFC `NFCISO7816Tag`.
    Nfc,
    /// A USB-C reader on iOS: CryptoTokenKit `TKSmartCard` (Android reaches USB readers
    /// through the raw transfers and the core's CCID instead).
    SmartCard,
}

/// What the platform says about an APDU link once a card is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApduLinkInfo {
    /// A name for the link ("NFC", the TKSmartCard slot name).
    pub name: String,
    /// Longest command APDU the link carries (Android `IsoDep.getMaxTransceiveLength()`).
    pub max_apdu_len: usize,
    /// Whether the link carries extended-length APDUs (`isExtendedLengthApduSupported`).
    #[serde(default)]
    pub extended_length: bool,
}

/// Arguments of `usbOpen`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsbOpenArgs<'a> {
    pub device_name: &'a str,
}

/// Answer of `usbOpen`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsbOpenAnswer {
    pub reader_name: String,
    pub raw_descriptors: String,
}

/// Answer of `usbDevices`.
#[derive(Debug, Deserialize)]
pub(crate) struct UsbDevicesAnswer {
    pub devices: Vec<UsbDevice>,
}

/// Arguments carrying bytes (`usbBulkOut`, `apduTransmit`). The base64 text may hold a
/// PIN (a VERIFY APDU): it zeroizes.
#[derive(Debug, Serialize)]
pub(crate) struct DataArgs {
    pub data: Zeroizing<String>,
}

impl DataArgs {
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            data: Zeroizing::new(STANDARD.encode(bytes)),
        }
    }
}

/// Arguments of a read (`usbBulkIn`, `usbInterruptIn`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadArgs {
    pub timeout_ms: u64,
}

/// Answer carrying bytes.
#[derive(Debug, Deserialize)]
pub(crate) struct DataAnswer {
    pub data: Zeroizing<String>,
}

impl DataAnswer {
    pub fn bytes(&self) -> Result<Vec<u8>, RawError> {
        decode(&self.data)
    }
}

/// Arguments of `apduConnect`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApduConnectArgs {
    pub kind: ApduLinkKind,
    /// How long to wait for a card (the NFC tag tapped, a card in the USB-C reader).
    pub wait_ms: u64,
    /// Transceive timeout, never below [`NFC_MIN_TIMEOUT`].
    pub timeout_ms: u64,
}

/// Answer of `apduPresent`.
#[derive(Debug, Deserialize)]
pub(crate) struct PresentAnswer {
    pub present: bool,
}

/// Decodes base64 from the platform.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, RawError> {
    STANDARD
        .decode(text)
        .map_err(|e| RawError::Bridge(format!("bad base64 from the platform: {e}")))
}

/// Milliseconds for the bridge (saturating).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
