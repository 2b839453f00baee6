//! A scripted platform for the plugin's tests: [`RawTransfers`] whose USB side is the
//! core's simulated CCID reader (written from the CCID 1.1 tables, reused from
//! `core/tests/ccid_support`) and whose APDU side is any card function (a scripted PIV
//! applet, or the lab's virtual PIV card through PC/SC). Its state is shared, so a test
//! can look at it after the platform moved into a transport.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use securesign_core::ccid::BulkPipe;
use tauri_plugin_securesign_transport::models::{UsbOpened, SHORT_APDU_MAX};
use tauri_plugin_securesign_transport::{
    ApduLinkInfo, ApduLinkKind, RawError, RawTransfers, UsbDevice,
};

#[path = "../../../../core/tests/ccid_support/mod.rs"]
pub mod ccid_support;

pub use ccid_support::{Card, SimReader};

/// What the platform holds and saw.
#[derive(Default)]
pub struct State {
    /// Every call, by command name.
    pub calls: Vec<String>,
    /// The USB reader behind the bulk endpoints (after `usbOpen`).
    pub reader: Option<SimReader>,
    /// The raw descriptors `usbOpen` answers.
    pub raw_descriptors: Vec<u8>,
    /// The USB device was unplugged: every USB call fails.
    pub detached: bool,
    /// Interrupt-IN transfers still to deliver.
    pub interrupts: VecDeque<Vec<u8>>,
    /// The card on the APDU link.
    pub card: Option<Card>,
    /// The card is in the field.
    pub in_field: bool,
    /// `apduConnect` answers.
    pub link: Option<ApduLinkInfo>,
    /// The waits and timeouts `apduConnect` got.
    pub connect_args: Vec<(ApduLinkKind, Duration, Duration)>,
    /// The next `apduTransmit` fails with this (after sending nothing).
    pub fail_next_transmit: Option<RawError>,
    /// The next `apduTransmit` answers this instead of asking the card.
    pub answer_next_transmit: Option<Vec<u8>>,
    /// Every APDU the APDU link carried to the card.
    pub apdus: Vec<Vec<u8>>,
    /// More CCID devices `usbDevices` lists (beside the simulated reader).
    pub other_devices: Vec<UsbDevice>,
    /// No USB host here: `usbDevices` is `notAvailable` (iOS, a phone without OTG).
    pub no_usb_host: bool,
    /// The platform holds one USB connection (as the Android plugin does): `usbOpen`
    /// opens it, `usbClose` closes it, whoever opened it; bulk transfers need it open.
    pub usb_connected: bool,
    /// How long an `IccPowerOff` takes (a slow reader), so that a close overlaps what follows.
    pub power_off_delay: Duration,
}

/// The simulated reader's device name.
pub const SIM_DEVICE: &str = "/dev/bus/usb/001/002";

/// The scripted platform (cheap to clone: shared state).
#[derive(Clone, Default)]
pub struct Platform(pub Arc<Mutex<State>>);

impl Platform {
    /// The shared state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        // A failed assertion poisons the lock; the transport's Drop still logs its close.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An NFC card answering with `card` (short APDUs only, as a card without extended length).
    pub fn nfc(card: Card) -> Self {
        let p = Self::default();
        {
            let mut s = p.state();
            s.card = Some(card);
            s.in_field = true;
            s.link = Some(ApduLinkInfo {
                name: "NFC".into(),
                max_apdu_len: SHORT_APDU_MAX,
                extended_length: false,
            });
        }
        p
    }

    /// A USB CCID reader (short or extended APDU level) whose card answers with `card`.
    pub fn usb(extended: bool, card: Card) -> Self {
        let p = Self::default();
        {
            let mut s = p.state();
            let mut reader = SimReader::new(extended, 271, card);
            reader.time_extensions = 1;
            reader.transfer_size = 64;
            s.reader = Some(reader);
            let features = if extended {
                ccid_support::EXTENDED_FEATURES
            } else {
                ccid_support::SHORT_FEATURES
            };
            s.raw_descriptors = raw_descriptors(&ccid_support::descriptor_bytes(features, 271));
        }
        p
    }

    fn log(&self, call: &str) {
        self.state().calls.push(call.to_owned());
    }
}

/// What Android's `getRawDescriptors()` returns for a one-interface CCID reader: device,
/// configuration, interface (class 0x0B), the CCID class descriptor, three endpoints.
pub fn raw_descriptors(ccid_class_descriptor: &[u8]) -> Vec<u8> {
    let mut d = vec![
        18, 0x01, 0x00, 0x02, 0, 0, 0, 64, 0x50, 0x10, 0x07, 0x04, 0, 1, 1, 2, 3, 1,
    ];
    let total = 9 + 9 + ccid_class_descriptor.len() + 3 * 7;
    d.extend_from_slice(&[9, 0x02, total as u8, 0, 1, 1, 0, 0x80, 50]);
    d.extend_from_slice(&[9, 0x04, 0, 0, 3, 0x0B, 0, 0, 0]);
    d.extend_from_slice(ccid_class_descriptor);
    d.extend_from_slice(&[7, 0x05, 0x01, 0x02, 64, 0, 0]); // bulk OUT
    d.extend_from_slice(&[7, 0x05, 0x82, 0x02, 64, 0, 0]); // bulk IN
    d.extend_from_slice(&[7, 0x05, 0x83, 0x03, 8, 0, 10]); // interrupt IN
    d
}

impl RawTransfers for Platform {
    fn usb_devices(&mut self) -> Result<Vec<UsbDevice>, RawError> {
        self.log("usbDevices");
        let s = self.state();
        if s.no_usb_host {
            return Err(RawError::NotAvailable("no USB host".into()));
        }
        let mut devices = Vec::new();
        if s.reader.is_some() && !s.detached {
            devices.push(UsbDevice {
                name: SIM_DEVICE.into(),
                vendor_id: 0x1050,
                product_id: 0x0407,
                product: Some("simulated".into()),
            });
        }
        devices.extend(s.other_devices.iter().cloned());
        Ok(devices)
    }

    fn usb_open(&mut self, device_name: &str) -> Result<UsbOpened, RawError> {
        self.log("usbOpen");
        let mut s = self.state();
        if s.detached {
            return Err(RawError::Disconnected);
        }
        s.reader.as_mut().ok_or(RawError::Disconnected)?.reconnect();
        s.usb_connected = true;
        Ok(UsbOpened {
            reader_name: format!("USB CCID 1050:0407 {device_name}"),
            raw_descriptors: s.raw_descriptors.clone(),
        })
    }

    fn usb_bulk_out(&mut self, data: &[u8]) -> Result<(), RawError> {
        self.log("usbBulkOut");
        let mut s = self.state();
        if s.detached || !s.usb_connected {
            return Err(RawError::Disconnected);
        }
        let reader = s.reader.as_mut().ok_or(RawError::Disconnected)?;
        reader.bulk_out(data).map_err(|e| RawError::Platform {
            code: "ioError".into(),
            message: e.to_string(),
        })?;
        let delay = s.power_off_delay;
        drop(s);
        if data.first() == Some(&0x63) {
            std::thread::sleep(delay);
        }
        Ok(())
    }

    fn usb_bulk_in(&mut self, timeout: Duration) -> Result<Vec<u8>, RawError> {
        self.log("usbBulkIn");
        let mut s = self.state();
        if s.detached || !s.usb_connected {
            return Err(RawError::Disconnected);
        }
        let reader = s.reader.as_mut().ok_or(RawError::Disconnected)?;
        reader.bulk_in(timeout).map_err(|_| RawError::Timeout)
    }

    fn usb_interrupt_in(&mut self, timeout: Duration) -> Result<Vec<u8>, RawError> {
        self.log("usbInterruptIn");
        let queued = {
            let mut s = self.state();
            if s.detached {
                return Err(RawError::Disconnected);
            }
            s.interrupts.pop_front()
        };
        // As a real interrupt endpoint: nothing came, so the read waited its timeout.
        queued.ok_or_else(|| {
            std::thread::sleep(timeout);
            RawError::Timeout
        })
    }

    fn usb_close(&mut self) -> Result<(), RawError> {
        self.log("usbClose");
        self.state().usb_connected = false;
        Ok(())
    }

    fn apdu_connect(
        &mut self,
        kind: ApduLinkKind,
        wait: Duration,
        timeout: Duration,
    ) -> Result<ApduLinkInfo, RawError> {
        self.log("apduConnect");
        let mut s = self.state();
        s.connect_args.push((kind, wait, timeout));
        if !s.in_field {
            return Err(RawError::CardAbsent);
        }
        s.link
            .clone()
            .ok_or(RawError::NotAvailable("no link".into()))
    }

    fn apdu_present(&mut self) -> Result<bool, RawError> {
        self.log("apduPresent");
        Ok(self.state().in_field)
    }

    fn apdu_transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, RawError> {
        self.log("apduTransmit");
        let mut s = self.state();
        if let Some(e) = s.fail_next_transmit.take() {
            return Err(e);
        }
        if let Some(answer) = s.answer_next_transmit.take() {
            return Ok(answer);
        }
        if !s.in_field {
            return Err(RawError::CardAbsent);
        }
        s.apdus.push(apdu.to_vec());
        let card = s.card.as_mut().ok_or(RawError::CardAbsent)?;
        card(apdu).ok_or(RawError::CardAbsent)
    }

    fn apdu_disconnect(&mut self) -> Result<(), RawError> {
        self.log("apduDisconnect");
        Ok(())
    }
}

/// The PIV application identifier (NIST SP 800-73-4 Part 1 §2.2).
pub const PIV_AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// A scripted PIV applet: SELECT by the PIV AID answers the application property template
/// in two parts (`61xx` then GET RESPONSE), anything else `6D00`.
pub fn scripted_piv() -> Card {
    let template = scripted_piv_template();
    let mut rest: Vec<u8> = Vec::new();
    Box::new(move |apdu: &[u8]| {
        let answer = match apdu {
            [0x00, 0xA4, 0x04, 0x00, lc, data @ ..]
                if data.get(..usize::from(*lc)) == Some(&PIV_AID[..]) =>
            {
                let (first, second) = template.split_at(8);
                rest = second.to_vec();
                let mut r = first.to_vec();
                r.extend_from_slice(&[0x61, rest.len() as u8]);
                r
            }
            [0x00, 0xC0, 0x00, 0x00, ..] if !rest.is_empty() => {
                let mut r = std::mem::take(&mut rest);
                r.extend_from_slice(&[0x90, 0x00]);
                r
            }
            _ => vec![0x6D, 0x00],
        };
        Some(answer)
    })
}

/// The full template [`scripted_piv`] answers to SELECT.
pub fn scripted_piv_template() -> Vec<u8> {
    let mut t = vec![0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
    t.extend_from_slice(&[0x79, 0x07, 0x4F, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08]);
    t
}

/// SELECT PIV.
pub fn select_piv() -> securesign_core::apdu::Command {
    securesign_core::apdu::Command::new(0x00, 0xA4, 0x04, 0x00, PIV_AID.to_vec())
}
