//! [`CcidTransport`]: the core's [`ApduTransport`] over a CCID reader reached through two
//! raw bulk transfers ([`BulkPipe`]), which is all a platform adapter implements.

use std::time::Duration;

use zeroize::Zeroizing;

use super::descriptor::CcidDescriptor;
use super::interrupt::{parse_interrupt, Interrupt};
use super::machine::{Ccid, Outcome, Step};
use super::message::{Frame, IccStatus, PowerSelect};
use super::CcidError;
use crate::apdu::{ApduTransport, TransportError};

/// Why a bulk transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipeError {
    /// Nothing arrived within the timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// The device is gone (detached, permission revoked).
    #[error("the device was disconnected")]
    Disconnected,
    /// Any other transfer failure.
    #[error("{0}")]
    Io(String),
}

/// The bulk endpoints of one CCID interface, as the platform offers them (Android
/// `UsbDeviceConnection.bulkTransfer`, libusb, a simulated reader in tests).
pub trait BulkPipe: Send {
    /// Writes one message to the bulk-OUT endpoint.
    fn bulk_out(&mut self, data: &[u8]) -> Result<(), PipeError>;
    /// Reads one transfer from the bulk-IN endpoint (a buffer of `dwMaxCCIDMessageLength`
    /// bytes is enough), waiting at most `timeout`.
    fn bulk_in(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError>;
}

/// Default wait for one bulk-IN transfer. A slow card asks for time extensions well
/// within it (each one restarts the wait).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most consecutive empty bulk-IN transfers (zero-length packets) tolerated while waiting.
const MAX_EMPTY_TRANSFERS: u32 = 64;

/// One slot of a CCID reader as an [`ApduTransport`].
///
/// Opening powers the card on (its ATR is kept). Any failure marks the link broken: the
/// next APDU powers the card on again (a reset: the card application must be selected
/// again, as the trait says). Nothing is ever sent twice.
pub struct CcidTransport<B: BulkPipe> {
    pipe: B,
    ccid: Ccid,
    descriptor: CcidDescriptor,
    slot: u8,
    name: String,
    timeout: Duration,
    atr: Option<Vec<u8>>,
}

impl<B: BulkPipe> std::fmt::Debug for CcidTransport<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CcidTransport")
            .field("name", &self.name)
            .field("slot", &self.slot)
            .field("powered", &self.atr.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: BulkPipe> CcidTransport<B> {
    /// Connects to `slot` of the reader behind `pipe` and powers its card on.
    ///
    /// Fails with [`CcidError::CardAbsent`] for an empty slot.
    pub fn open(
        pipe: B,
        descriptor: CcidDescriptor,
        slot: u8,
        name: impl Into<String>,
    ) -> Result<Self, CcidError> {
        Self::open_with_timeout(pipe, descriptor, slot, name, DEFAULT_TIMEOUT)
    }

    /// [`Self::open`] with another wait per bulk-IN transfer.
    pub fn open_with_timeout(
        pipe: B,
        descriptor: CcidDescriptor,
        slot: u8,
        name: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, CcidError> {
        let ccid = Ccid::new(&descriptor, slot)?;
        let mut transport = Self {
            pipe,
            ccid,
            descriptor,
            slot,
            name: name.into(),
            timeout,
            atr: None,
        };
        transport.power_on()?;
        Ok(transport)
    }

    /// The card's ATR, while it is powered.
    pub fn atr(&self) -> Option<&[u8]> {
        self.atr.as_deref()
    }

    /// The reader's class descriptor.
    pub fn descriptor(&self) -> &CcidDescriptor {
        &self.descriptor
    }

    /// The pipe (e.g. for a test to inspect its simulated reader).
    pub fn pipe_mut(&mut self) -> &mut B {
        &mut self.pipe
    }

    /// Powers the card on (again) and returns its ATR: automatic voltage when the reader
    /// selects it, otherwise each offered voltage from the lowest class up, with a
    /// power-off between tries, until the card answers.
    pub fn power_on(&mut self) -> Result<Vec<u8>, CcidError> {
        self.atr = None;
        let mut order = if self.descriptor.auto_voltage() {
            Vec::new()
        } else {
            self.descriptor.voltages.power_on_order()
        };
        if order.is_empty() {
            order.push(PowerSelect::Automatic);
        }
        let last = order.len() - 1;
        for (i, power) in order.into_iter().enumerate() {
            let frame = self.ccid.power_on(power)?;
            match self.run(frame) {
                Ok(Outcome::Atr(atr)) => {
                    self.atr = Some(atr.clone());
                    return Ok(atr);
                }
                Ok(other) => {
                    return Err(CcidError::Malformed(format!(
                        "power-on finished with {other:?}"
                    )))
                }
                Err(CcidError::CardInactive { .. }) if i < last => {
                    let frame = self.ccid.power_off()?;
                    self.run(frame)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(CcidError::CardAbsent)
    }

    /// Powers the card off (its state, a verified PIN included, is gone).
    pub fn power_off(&mut self) -> Result<IccStatus, CcidError> {
        self.atr = None;
        let frame = self.ccid.power_off()?;
        match self.run(frame)? {
            Outcome::Slot(status) => Ok(status),
            other => Err(CcidError::Malformed(format!(
                "power-off finished with {other:?}"
            ))),
        }
    }

    /// Asks the reader for the slot's state (`GetSlotStatus`). A card found inactive
    /// while we held it powered was reset or swapped: the link is marked broken.
    pub fn slot_status(&mut self) -> Result<IccStatus, CcidError> {
        let frame = self.ccid.slot_status()?;
        let status = match self.run(frame) {
            Ok(Outcome::Slot(status)) => status,
            Ok(other) => {
                return Err(CcidError::Malformed(format!(
                    "GetSlotStatus finished with {other:?}"
                )))
            }
            // A failed GetSlotStatus still tells the slot's state (§6.2.6).
            Err(CcidError::CardAbsent) => IccStatus::Absent,
            Err(CcidError::CardInactive { .. }) => IccStatus::Inactive,
            Err(e) => return Err(e),
        };
        if status != IccStatus::Active {
            self.atr = None;
        }
        Ok(status)
    }

    /// Digests one interrupt-IN transfer. Returns the slot's presence when the message
    /// concerns it; a removal, a change or a hardware error marks the link broken.
    pub fn on_interrupt(&mut self, bytes: &[u8]) -> Result<Option<bool>, CcidError> {
        match parse_interrupt(bytes, self.descriptor.max_slot_index)? {
            Interrupt::SlotChange(changes) => {
                let Some(ours) = changes.iter().find(|c| c.slot == self.slot) else {
                    return Ok(None);
                };
                if ours.changed || !ours.present {
                    self.atr = None;
                }
                Ok(Some(ours.present))
            }
            Interrupt::HardwareError { slot, .. } => {
                if slot == self.slot {
                    self.atr = None;
                }
                Ok(None)
            }
        }
    }

    /// Sends one command APDU (short, or extended at extended APDU level) and returns the
    /// whole response (`data || SW1 SW2`). Powers the card on first if the link broke.
    pub fn transmit_apdu(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, CcidError> {
        if self.atr.is_none() {
            self.power_on()?;
        }
        let frame = self.ccid.transmit(apdu)?;
        match self.run(frame) {
            Ok(Outcome::Response(response)) => Ok(response),
            Ok(other) => {
                self.atr = None;
                Err(CcidError::Malformed(format!(
                    "XfrBlock finished with {other:?}"
                )))
            }
            Err(e) => {
                self.atr = None;
                Err(e)
            }
        }
    }

    /// Drives one operation to its end over the pipe.
    fn run(&mut self, first: Frame) -> Result<Outcome, CcidError> {
        let result = self.drive(first);
        if result.is_err() {
            self.ccid.abandon();
        }
        result
    }

    fn drive(&mut self, first: Frame) -> Result<Outcome, CcidError> {
        self.pipe.bulk_out(&first)?;
        drop(first);
        let mut empty = 0;
        loop {
            let bytes = match self.pipe.bulk_in(self.timeout) {
                Ok(bytes) => bytes,
                Err(PipeError::Timeout) => {
                    return Err(CcidError::Timeout(format!(
                        "the reader did not answer within {:?}",
                        self.timeout
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            if bytes.is_empty() {
                empty += 1;
                if empty > MAX_EMPTY_TRANSFERS {
                    return Err(CcidError::Timeout(
                        "the reader keeps sending empty transfers".into(),
                    ));
                }
                continue;
            }
            empty = 0;
            match self.ccid.receive(&bytes)? {
                Step::Wait => {}
                Step::Send(frame) => self.pipe.bulk_out(&frame)?,
                Step::Done(outcome) => return Ok(outcome),
            }
        }
    }
}

impl<B: BulkPipe> ApduTransport for CcidTransport<B> {
    fn reader_name(&self) -> &str {
        &self.name
    }

    fn card_present(&mut self) -> Result<bool, TransportError> {
        Ok(self.slot_status()?.present())
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.transmit_apdu(apdu)?.to_vec())
    }
}
