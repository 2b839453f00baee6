//! CCID bulk messages (USB CCID 1.1, §6): the 10-byte header and the commands and answers
//! this module uses.
//!
//! Every bulk message is `bMessageType | dwLength (LE) | bSlot | bSeq | 3 message-specific
//! bytes | abData[dwLength]` (§6.1, §6.2).

use zeroize::Zeroizing;

use super::CcidError;

/// Length of every bulk message header (§6.1).
pub const HEADER_LEN: usize = 10;

/// Largest `dwLength` any CCID message can carry: an extended APDU of 65,544 bytes (§5.1,
/// `dwMaxCCIDMessageLength` is at most 65,544 + 10).
pub const MAX_DATA_LEN: usize = 65_544;

/// `PC_to_RDR_IccPowerOn` (§6.1.1).
pub const PC_TO_RDR_ICC_POWER_ON: u8 = 0x62;
/// `PC_to_RDR_IccPowerOff` (§6.1.2).
pub const PC_TO_RDR_ICC_POWER_OFF: u8 = 0x63;
/// `PC_to_RDR_GetSlotStatus` (§6.1.3).
pub const PC_TO_RDR_GET_SLOT_STATUS: u8 = 0x65;
/// `PC_to_RDR_XfrBlock` (§6.1.4).
pub const PC_TO_RDR_XFR_BLOCK: u8 = 0x6F;
/// `RDR_to_PC_DataBlock` (§6.2.1).
pub const RDR_TO_PC_DATA_BLOCK: u8 = 0x80;
/// `RDR_to_PC_SlotStatus` (§6.2.2).
pub const RDR_TO_PC_SLOT_STATUS: u8 = 0x81;

/// `wLevelParameter` of `PC_to_RDR_XfrBlock` at extended APDU level (§6.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum LevelParameter {
    /// The command APDU begins and ends with this message.
    Whole = 0x0000,
    /// The command APDU begins with this message and continues in the next one.
    Begins = 0x0001,
    /// This message continues the command APDU and ends it.
    Ends = 0x0002,
    /// This message continues the command APDU and another one follows.
    Continues = 0x0003,
    /// Empty `abData`: the next part of the response APDU is expected.
    MoreResponse = 0x0010,
}

/// `bChainParameter` of `RDR_to_PC_DataBlock` (§6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainParameter {
    /// The response APDU begins and ends in this message.
    Whole,
    /// The response APDU begins here and continues.
    Begins,
    /// This message continues the response APDU and ends it.
    Ends,
    /// This message continues the response APDU and another one follows.
    Continues,
    /// Empty `abData`: the reader expects the next part of the command APDU.
    MoreCommand,
}

impl ChainParameter {
    fn from_byte(b: u8) -> Result<Self, CcidError> {
        Ok(match b {
            0x00 => Self::Whole,
            0x01 => Self::Begins,
            0x02 => Self::Ends,
            0x03 => Self::Continues,
            0x10 => Self::MoreCommand,
            other => {
                return Err(CcidError::Malformed(format!(
                    "bChainParameter {other:#04x} is not defined"
                )))
            }
        })
    }
}

/// `bmICCStatus`, bits 0–1 of `bStatus` (§6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IccStatus {
    /// An ICC is present and active (powered on).
    Active,
    /// An ICC is present and inactive (not activated or shut down by hardware error).
    Inactive,
    /// No ICC is present.
    Absent,
}

impl IccStatus {
    /// Whether a card is in the slot (active or not).
    pub fn present(self) -> bool {
        self != Self::Absent
    }
}

/// `bmCommandStatus`, bits 6–7 of `bStatus` (§6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStatus {
    /// Processed without error.
    Ok,
    /// Failed; `bError` says why.
    Failed,
    /// Time extension requested: the real answer follows; `bError` is the BWT multiplier.
    TimeExtension,
}

/// `bError` values of §6.2.6, Table 6.2-2, that have a name.
pub mod slot_error {
    /// CMD_ABORTED.
    pub const CMD_ABORTED: u8 = 0xFF;
    /// ICC_MUTE.
    pub const ICC_MUTE: u8 = 0xFE;
    /// XFR_PARITY_ERROR.
    pub const XFR_PARITY_ERROR: u8 = 0xFD;
    /// XFR_OVERRUN.
    pub const XFR_OVERRUN: u8 = 0xFC;
    /// HW_ERROR.
    pub const HW_ERROR: u8 = 0xFB;
    /// BAD_ATR_TS.
    pub const BAD_ATR_TS: u8 = 0xF8;
    /// BAD_ATR_TCK.
    pub const BAD_ATR_TCK: u8 = 0xF7;
    /// ICC_PROTOCOL_NOT_SUPPORTED.
    pub const ICC_PROTOCOL_NOT_SUPPORTED: u8 = 0xF6;
    /// ICC_CLASS_NOT_SUPPORTED.
    pub const ICC_CLASS_NOT_SUPPORTED: u8 = 0xF5;
    /// PROCEDURE_BYTE_CONFLICT.
    pub const PROCEDURE_BYTE_CONFLICT: u8 = 0xF4;
    /// DEACTIVATED_PROTOCOL.
    pub const DEACTIVATED_PROTOCOL: u8 = 0xF3;
    /// BUSY_WITH_AUTO_SEQUENCE.
    pub const BUSY_WITH_AUTO_SEQUENCE: u8 = 0xF2;
    /// PIN_TIMEOUT.
    pub const PIN_TIMEOUT: u8 = 0xF0;
    /// PIN_CANCELLED.
    pub const PIN_CANCELLED: u8 = 0xEF;
    /// CMD_SLOT_BUSY.
    pub const CMD_SLOT_BUSY: u8 = 0xE0;
    /// Command not supported.
    pub const CMD_NOT_SUPPORTED: u8 = 0x00;

    /// The name of a slot error code (`bError`), or "bad parameter at offset n".
    pub fn name(code: u8) -> String {
        let known = match code {
            CMD_ABORTED => "CMD_ABORTED",
            ICC_MUTE => "ICC_MUTE",
            XFR_PARITY_ERROR => "XFR_PARITY_ERROR",
            XFR_OVERRUN => "XFR_OVERRUN",
            HW_ERROR => "HW_ERROR",
            BAD_ATR_TS => "BAD_ATR_TS",
            BAD_ATR_TCK => "BAD_ATR_TCK",
            ICC_PROTOCOL_NOT_SUPPORTED => "ICC_PROTOCOL_NOT_SUPPORTED",
            ICC_CLASS_NOT_SUPPORTED => "ICC_CLASS_NOT_SUPPORTED",
            PROCEDURE_BYTE_CONFLICT => "PROCEDURE_BYTE_CONFLICT",
            DEACTIVATED_PROTOCOL => "DEACTIVATED_PROTOCOL",
            BUSY_WITH_AUTO_SEQUENCE => "BUSY_WITH_AUTO_SEQUENCE",
            PIN_TIMEOUT => "PIN_TIMEOUT",
            PIN_CANCELLED => "PIN_CANCELLED",
            CMD_SLOT_BUSY => "CMD_SLOT_BUSY",
            CMD_NOT_SUPPORTED => "command not supported",
            _ => return format!("bad parameter at offset {code} ({code:#04x})"),
        };
        known.to_owned()
    }
}

/// `bPowerSelect` of `PC_to_RDR_IccPowerOn` (§6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PowerSelect {
    /// Automatic voltage selection.
    Automatic = 0x00,
    /// 5.0 V.
    V5 = 0x01,
    /// 3.0 V.
    V3 = 0x02,
    /// 1.8 V.
    V1_8 = 0x03,
}

/// Builds one host-to-reader message: header + data, in a zeroizing buffer (the data of
/// an XfrBlock may be a PIN).
pub fn encode(message_type: u8, slot: u8, seq: u8, specific: [u8; 3], data: &[u8]) -> Frame {
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + data.len()));
    out.push(message_type);
    // `data` is at most one dwMaxCCIDMessageLength (checked by the callers), far below 4 GiB.
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.push(slot);
    out.push(seq);
    out.extend_from_slice(&specific);
    out.extend_from_slice(data);
    out
}

/// A message ready for the bulk-OUT endpoint (wiped on drop).
pub type Frame = Zeroizing<Vec<u8>>;

/// `PC_to_RDR_IccPowerOn` (§6.1.1).
pub fn power_on(slot: u8, seq: u8, power: PowerSelect) -> Frame {
    encode(PC_TO_RDR_ICC_POWER_ON, slot, seq, [power as u8, 0, 0], &[])
}

/// `PC_to_RDR_IccPowerOff` (§6.1.2).
pub fn power_off(slot: u8, seq: u8) -> Frame {
    encode(PC_TO_RDR_ICC_POWER_OFF, slot, seq, [0; 3], &[])
}

/// `PC_to_RDR_GetSlotStatus` (§6.1.3).
pub fn get_slot_status(slot: u8, seq: u8) -> Frame {
    encode(PC_TO_RDR_GET_SLOT_STATUS, slot, seq, [0; 3], &[])
}

/// `PC_to_RDR_XfrBlock` (§6.1.4) with `bBWI = 0` (the reader's default block waiting
/// time) and the given `wLevelParameter`.
pub fn xfr_block(slot: u8, seq: u8, level: LevelParameter, data: &[u8]) -> Frame {
    let [lo, hi] = (level as u16).to_le_bytes();
    encode(PC_TO_RDR_XFR_BLOCK, slot, seq, [0, lo, hi], data)
}

/// A reader-to-host bulk message, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    /// `bMessageType`.
    pub message_type: u8,
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq`.
    pub seq: u8,
    /// `bmICCStatus`.
    pub icc: IccStatus,
    /// `bmCommandStatus`.
    pub command: CommandStatus,
    /// `bError`.
    pub error: u8,
    /// The third specific byte: `bChainParameter` (DataBlock) or `bClockStatus` (SlotStatus).
    pub specific: u8,
    /// `abData` (the ATR, or a response APDU or part of one); wiped on drop.
    pub data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Answer({:#04x} slot {} seq {} {:?} {:?} error {:#04x} specific {:#04x}, {} data bytes)",
            self.message_type,
            self.slot,
            self.seq,
            self.icc,
            self.command,
            self.error,
            self.specific,
            self.data.len()
        )
    }
}

impl Answer {
    /// The `bChainParameter` of a DataBlock.
    pub fn chain(&self) -> Result<ChainParameter, CcidError> {
        ChainParameter::from_byte(self.specific)
    }
}

/// How long the message at the start of `buf` is, once its header is in: `None` while
/// fewer than 10 bytes are buffered. Fails for a length no reader may send.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, CcidError> {
    let Some(len_bytes) = buf.get(1..5) else {
        return Ok(None);
    };
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut le = [0u8; 4];
    le.copy_from_slice(len_bytes);
    let len = u32::from_le_bytes(le);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_DATA_LEN {
        return Err(CcidError::Malformed(format!(
            "the reader announced a message of {len} data bytes (at most {MAX_DATA_LEN})"
        )));
    }
    Ok(Some(HEADER_LEN + len))
}

/// Decodes one complete bulk-IN message (header + exactly `dwLength` data bytes).
pub fn decode(msg: &[u8]) -> Result<Answer, CcidError> {
    let Some(total) = message_len(msg)? else {
        return Err(CcidError::Malformed(format!(
            "a bulk-IN message of {} bytes is shorter than its 10-byte header",
            msg.len()
        )));
    };
    if msg.len() != total {
        return Err(CcidError::Malformed(format!(
            "bulk-IN message of {} bytes, its header says {total}",
            msg.len()
        )));
    }
    let (header, data) = msg.split_at(HEADER_LEN);
    let status = header[7];
    let icc = match status & 0x03 {
        0 => IccStatus::Active,
        1 => IccStatus::Inactive,
        2 => IccStatus::Absent,
        _ => {
            return Err(CcidError::Malformed(
                "bmICCStatus 3 is reserved (§6.2.6)".into(),
            ))
        }
    };
    let command = match status >> 6 {
        0 => CommandStatus::Ok,
        1 => CommandStatus::Failed,
        2 => CommandStatus::TimeExtension,
        _ => {
            return Err(CcidError::Malformed(
                "bmCommandStatus 3 is reserved (§6.2.6)".into(),
            ))
        }
    };
    Ok(Answer {
        message_type: header[0],
        slot: header[5],
        seq: header[6],
        icc,
        command,
        error: header[8],
        specific: header[9],
        data: Zeroizing::new(data.to_vec()),
    })
}
