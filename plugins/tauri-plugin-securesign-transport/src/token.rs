//! A token on a phone: which link reaches it, its PIV backend over that link, and what
//! tells that it went away. Platform-neutral: it runs over any [`RawTransfers`] (the
//! native plugin through the bridge on phones, a scripted platform in tests).

use std::time::Duration;

use securesign_core::apdu::ApduTransport;
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::TokenBackend;
use securesign_core::ccid::{parse_interrupt, Interrupt};
use serde::{Deserialize, Serialize};

use crate::apdu_link::PlatformApduTransport;
use crate::models::{ApduLinkKind, UsbDevice};
use crate::raw::{RawError, RawTransfers};
use crate::usb::open_usb_reader;
use crate::Error;

/// How the phone reaches the token (a setting of the app).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "link", deny_unknown_fields)]
pub enum PhoneLink {
    /// A USB token or reader when one is plugged in (Android USB host), else a tap of an
    /// NFC card.
    #[default]
    Auto,
    /// A USB CCID token or reader (Android USB host, OTG).
    #[serde(rename_all = "camelCase")]
    Usb {
        /// The platform's device name; `None` uses the only CCID device plugged in.
        device: Option<String>,
    },
    /// An NFC card (Android IsoDep, iOS CoreNFC).
    Nfc,
    /// A card in a USB-C reader on iOS (CryptoTokenKit `TKSmartCard`).
    SmartCard,
}

/// The slot the app uses on a USB reader (tokens have one).
const USB_SLOT: u8 = 0;

/// A token reached through the platform, ready for the core's token worker.
pub struct PhoneToken {
    /// The PIV application over the link.
    pub backend: Box<dyn TokenBackend>,
    /// Tells when the token went away.
    pub presence: Presence,
    /// The reader or link's name ("USB CCID 1050:0407 …", "NFC").
    pub reader: String,
}

impl std::fmt::Debug for PhoneToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneToken")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

/// Opens the token `link` names: finds the USB device (or waits up to `wait` for a card on
/// an APDU link), selects the PIV application and prepares the presence check. `raw` is
/// cloned: one copy for the transport, one for the presence check (the native side serves
/// them on separate endpoints / calls).
pub fn open_phone_token<T>(raw: T, link: &PhoneLink, wait: Duration) -> Result<PhoneToken, Error>
where
    T: RawTransfers + Clone + 'static,
{
    match resolve(raw.clone(), link)? {
        Resolved::Usb(device) => piv_token(
            open_usb_reader(raw.clone(), &device)?,
            Presence::Usb(Box::new(raw)),
        ),
        Resolved::Apdu(kind) => piv_token(
            PlatformApduTransport::open(raw.clone(), kind, wait)?,
            Presence::Apdu(Box::new(raw)),
        ),
    }
}

/// The PIV application over `transport`, with the presence check of its link.
fn piv_token<A: ApduTransport + Send + 'static>(
    transport: A,
    presence: Presence,
) -> Result<PhoneToken, Error> {
    let reader = transport.reader_name().to_owned();
    let backend = PivBackend::open(transport).map_err(Error::Core)?;
    Ok(PhoneToken {
        backend: Box::new(backend),
        presence,
        reader,
    })
}

/// A link made concrete.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    Usb(String),
    Apdu(ApduLinkKind),
}

/// `Auto` and an unnamed USB device resolved against the devices plugged in.
fn resolve<T: RawTransfers>(mut raw: T, link: &PhoneLink) -> Result<Resolved, Error> {
    match link {
        PhoneLink::Usb {
            device: Some(device),
        } => Ok(Resolved::Usb(device.clone())),
        PhoneLink::Usb { device: None } => match raw.usb_devices()?.as_slice() {
            [] => Err(Error::Raw(RawError::Disconnected)),
            [only] => Ok(Resolved::Usb(only.name.clone())),
            many => Err(several(many)),
        },
        PhoneLink::Nfc => Ok(Resolved::Apdu(ApduLinkKind::Nfc)),
        PhoneLink::SmartCard => Ok(Resolved::Apdu(ApduLinkKind::SmartCard)),
        PhoneLink::Auto => match raw.usb_devices() {
            Ok(devices) => match devices.as_slice() {
                [] => Ok(Resolved::Apdu(ApduLinkKind::Nfc)),
                [only] => Ok(Resolved::Usb(only.name.clone())),
                many => Err(several(many)),
            },
            // No USB host here (iOS, a phone without OTG): NFC.
            Err(RawError::NotAvailable(_)) => Ok(Resolved::Apdu(ApduLinkKind::Nfc)),
            Err(e) => Err(e.into()),
        },
    }
}

fn several(devices: &[UsbDevice]) -> Error {
    let names: Vec<String> = devices
        .iter()
        .map(|d| match &d.product {
            Some(product) => format!("{product} ({})", d.name),
            None => format!("{:04x}:{:04x} ({})", d.vendor_id, d.product_id, d.name),
        })
        .collect();
    Error::Choice(format!(
        "several USB tokens are plugged in ({}): choose one in Settings",
        names.join(", ")
    ))
}

/// Opens phone tokens; object-safe, so that the app keeps one without knowing the
/// platform's type (the plugin's [`crate::TokenTransport`] on phones, a scripted platform
/// in tests).
pub trait OpenPhoneToken: Send + Sync {
    /// Opens the token `link` names, waiting up to `wait` for a card on an APDU link.
    fn open_token(&self, link: &PhoneLink, wait: Duration) -> Result<PhoneToken, Error>;
}

/// Whether the token is still there, asked without disturbing the token's own transfers:
/// a USB reader's interrupt endpoint (slot changes), or the APDU link's presence.
pub enum Presence {
    /// The USB reader's interrupt-IN endpoint.
    Usb(Box<dyn RawTransfers>),
    /// The platform's presence check of the connected card.
    Apdu(Box<dyn RawTransfers>),
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Usb(_) => "Presence::Usb",
            Self::Apdu(_) => "Presence::Apdu",
        })
    }
}

/// What one look saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Still there (or nothing said otherwise).
    Present,
    /// Gone: the card left the slot or the field, or the device was unplugged.
    Gone,
}

impl Presence {
    /// Looks once. A USB look waits up to `timeout` for an interrupt message (so it paces
    /// itself); an APDU look answers at once and the caller waits between looks
    /// ([`Presence::paces_itself`]).
    pub fn look(&mut self, timeout: Duration) -> Look {
        match self {
            Self::Usb(raw) => match raw.usb_interrupt_in(timeout) {
                Ok(bytes) => match parse_interrupt(&bytes, USB_SLOT) {
                    Ok(Interrupt::SlotChange(slots)) => {
                        let ours = slots.iter().find(|s| s.slot == USB_SLOT);
                        if ours.is_some_and(|s| !s.present) {
                            Look::Gone
                        } else {
                            Look::Present
                        }
                    }
                    // A hardware error (overcurrent) ends the exchange: the token worker
                    // sees it on its own transfer; an unreadable message says nothing.
                    Ok(Interrupt::HardwareError { .. }) | Err(_) => Look::Present,
                },
                Err(RawError::Timeout) => Look::Present,
                Err(RawError::Disconnected | RawError::CardAbsent) => Look::Gone,
                // Anything else (a bridge hiccup) is not proof of removal; the token
                // worker's next transfer decides.
                Err(_) => Look::Present,
            },
            Self::Apdu(raw) => match raw.apdu_present() {
                Ok(true) => Look::Present,
                Ok(false) | Err(RawError::CardAbsent | RawError::Disconnected) => Look::Gone,
                Err(_) => Look::Present,
            },
        }
    }

    /// Whether [`Presence::look`] waits by itself (a USB interrupt read does).
    pub fn paces_itself(&self) -> bool {
        matches!(self, Self::Usb(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_read_and_write_as_tagged_json() {
        let cases = [
            (PhoneLink::Auto, r#"{"link":"auto"}"#),
            (
                PhoneLink::Usb {
                    device: Some("/dev/bus/usb/001/002".into()),
                },
                r#"{"link":"usb","device":"/dev/bus/usb/001/002"}"#,
            ),
            (
                PhoneLink::Usb { device: None },
                r#"{"link":"usb","device":null}"#,
            ),
            (PhoneLink::Nfc, r#"{"link":"nfc"}"#),
            (PhoneLink::SmartCard, r#"{"link":"smartCard"}"#),
        ];
        for (link, json) in cases {
            assert_eq!(serde_json::to_string(&link).unwrap(), json);
            let back: PhoneLink = serde_json::from_str(json).unwrap();
            assert_eq!(back, link);
        }
        assert!(serde_json::from_str::<PhoneLink>(r#"{"link":"bluetooth"}"#).is_err());
    }
}
