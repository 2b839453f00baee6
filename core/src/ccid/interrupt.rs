//! The interrupt-IN endpoint (USB CCID 1.1, §6.3): slot changes and hardware errors.

use super::CcidError;

/// `RDR_to_PC_NotifySlotChange` (§6.3.1).
pub const RDR_TO_PC_NOTIFY_SLOT_CHANGE: u8 = 0x50;
/// `RDR_to_PC_HardwareError` (§6.3.2).
pub const RDR_TO_PC_HARDWARE_ERROR: u8 = 0x51;

/// One slot's state in a `NotifySlotChange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotChange {
    /// Slot number.
    pub slot: u8,
    /// A card is present now.
    pub present: bool,
    /// The state changed since the last notification.
    pub changed: bool,
}

/// A decoded interrupt-IN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// `bmSlotICCState`: every slot's presence and change bit (2 bits per slot, slot 0 in
    /// the low bits of the first byte).
    SlotChange(Vec<SlotChange>),
    /// A hardware error on `slot` during the exchange with `bSeq = seq`
    /// (`bHardwareErrorCode` 0x01 is an overcurrent).
    HardwareError {
        /// Slot number.
        slot: u8,
        /// `bSeq` of the command that was in progress.
        seq: u8,
        /// `bHardwareErrorCode`.
        code: u8,
    },
}

/// Decodes one interrupt-IN transfer of a reader whose highest slot is `max_slot_index`.
pub fn parse_interrupt(bytes: &[u8], max_slot_index: u8) -> Result<Interrupt, CcidError> {
    match bytes.first() {
        Some(&RDR_TO_PC_NOTIFY_SLOT_CHANGE) => {
            let slots = usize::from(max_slot_index) + 1;
            let needed = (slots * 2).div_ceil(8);
            let Some(state) = bytes.get(1..1 + needed) else {
                return Err(CcidError::Malformed(format!(
                    "NotifySlotChange of {} bytes for {slots} slots (needs {})",
                    bytes.len(),
                    1 + needed
                )));
            };
            let changes = (0..slots)
                .map(|i| {
                    let bits = state[i / 4] >> ((i % 4) * 2);
                    SlotChange {
                        slot: u8::try_from(i).unwrap_or(u8::MAX),
                        present: bits & 0x01 != 0,
                        changed: bits & 0x02 != 0,
                    }
                })
                .collect();
            Ok(Interrupt::SlotChange(changes))
        }
        Some(&RDR_TO_PC_HARDWARE_ERROR) => match bytes {
            [_, slot, seq, code, ..] => Ok(Interrupt::HardwareError {
                slot: *slot,
                seq: *seq,
                code: *code,
            }),
            _ => Err(CcidError::Malformed(format!(
                "HardwareError of {} bytes (needs 4)",
                bytes.len()
            ))),
        },
        Some(other) => Err(CcidError::Malformed(format!(
            "interrupt message type {other:#04x} is not defined"
        ))),
        None => Err(CcidError::Malformed("empty interrupt transfer".into())),
    }
}
