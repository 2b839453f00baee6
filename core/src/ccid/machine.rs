//! The sans-IO CCID host: it builds the bytes to write to the bulk-OUT endpoint and digests
//! the bytes read from bulk-IN; it never does I/O itself.
//!
//! One operation at a time: [`Ccid::power_on`], [`Ccid::power_off`],
//! [`Ccid::slot_status`] or [`Ccid::transmit`] returns the first frame to send; then every
//! bulk-IN transfer goes to [`Ccid::receive`], which answers [`Step::Wait`] (read again),
//! [`Step::Send`] (write this frame, then read again) or [`Step::Done`].
//!
//! * Sequence numbers (§6.1): every message carries a new `bSeq`; an answer with another
//!   `bSeq` or slot is a stale answer to an earlier, abandoned exchange and is discarded.
//! * Time extensions (§6.2.6, `bmCommandStatus = 2`): the reader says the card is still
//!   working; the real answer follows.
//! * Command chaining at extended APDU level (§6.1.4, `wLevelParameter` 1/3/2) and response
//!   chaining (§6.2.1, `bChainParameter` 1/3/2, asked for with `wLevelParameter = 0x10`).

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::descriptor::{CcidDescriptor, ExchangeLevel};
use super::message::{
    self, Answer, ChainParameter, CommandStatus, Frame, IccStatus, LevelParameter, PowerSelect,
    RDR_TO_PC_DATA_BLOCK, RDR_TO_PC_SLOT_STATUS,
};
use super::CcidError;

/// Longest command APDU: `CLA INS P1 P2 00 Lc(2) data(65,535) Le(2)` (ISO/IEC 7816-4).
pub const MAX_COMMAND_APDU: usize = 65_544;
/// Longest response APDU: 65,536 data bytes and the status word.
pub const MAX_RESPONSE_APDU: usize = 65_538;
/// Longest short command APDU: `CLA INS P1 P2 Lc data(255) Le`.
pub const MAX_SHORT_COMMAND_APDU: usize = 261;
/// Most time extensions one message may get before the exchange is given up (a reader
/// sends one about every block waiting time, about a second: several minutes in all).
pub const MAX_TIME_EXTENSIONS: u32 = 1_024;
/// Most stale answers (another `bSeq` or slot) discarded while waiting for one answer.
pub const MAX_STALE_ANSWERS: u32 = 64;
/// Most messages one response may be chained over.
pub const MAX_RESPONSE_BLOCKS: u32 = 4_096;

/// What the host should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Read bulk-IN again: the answer is not complete (partial message, stale answer, time
    /// extension).
    Wait,
    /// Write this frame to bulk-OUT, then read bulk-IN again.
    Send(Frame),
    /// The operation is over.
    Done(Outcome),
}

/// The result of a finished operation.
#[derive(PartialEq, Eq)]
pub enum Outcome {
    /// The card's answer-to-reset after a power-on.
    Atr(Vec<u8>),
    /// A complete response APDU (`data || SW1 SW2`), reassembled from its chained parts.
    Response(Zeroizing<Vec<u8>>),
    /// The slot's state (after GetSlotStatus or a power-off).
    Slot(IccStatus),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Atr(atr) => write!(f, "Atr({})", hex::encode(atr)),
            Self::Response(r) => write!(f, "Response({} bytes)", r.len()),
            Self::Slot(s) => write!(f, "Slot({s:?})"),
        }
    }
}

/// The operation in progress.
enum Pending {
    None,
    PowerOn,
    PowerOff,
    SlotStatus,
    Xfr(Xfr),
}

/// A command APDU on its way out and its response on its way in.
struct Xfr {
    /// Command parts not yet sent, each with its `wLevelParameter`.
    parts: VecDeque<(LevelParameter, Zeroizing<Vec<u8>>)>,
    /// Response parts received so far.
    response: Zeroizing<Vec<u8>>,
    /// Whether a chained response has begun (`bChainParameter` 1 seen).
    chained: bool,
    /// Response messages received.
    blocks: u32,
}

/// The CCID host state for one slot of one reader.
pub struct Ccid {
    slot: u8,
    level: ExchangeLevel,
    max_data: usize,
    seq: u8,
    /// `bSeq` of the last message sent.
    expected_seq: u8,
    pending: Pending,
    inbox: Vec<u8>,
    time_extensions: u32,
    stale: u32,
}

impl std::fmt::Debug for Ccid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ccid")
            .field("slot", &self.slot)
            .field("level", &self.level)
            .field("max_data", &self.max_data)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Ccid {
    /// The host side for `slot` of the reader described by `descriptor` (already checked
    /// to be APDU level by [`CcidDescriptor::parse`]).
    pub fn new(descriptor: &CcidDescriptor, slot: u8) -> Result<Self, CcidError> {
        if slot > descriptor.max_slot_index {
            return Err(CcidError::Unsupported(format!(
                "slot {slot} does not exist (bMaxSlotIndex {})",
                descriptor.max_slot_index
            )));
        }
        if !matches!(
            descriptor.level,
            ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu
        ) {
            return Err(CcidError::Unsupported(format!(
                "{:?}-level readers are not supported",
                descriptor.level
            )));
        }
        Ok(Self {
            slot,
            level: descriptor.level,
            max_data: descriptor.max_data_len(),
            seq: 0,
            expected_seq: 0,
            pending: Pending::None,
            inbox: Vec::new(),
            time_extensions: 0,
            stale: 0,
        })
    }

    /// Whether an operation is in progress.
    pub fn busy(&self) -> bool {
        !matches!(self.pending, Pending::None)
    }

    /// Forgets the operation in progress (after a timeout or a pipe error); its late
    /// answers will be discarded by their `bSeq`.
    pub fn abandon(&mut self) {
        self.pending = Pending::None;
        self.inbox.clear();
    }

    fn next_seq(&mut self) -> u8 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.expected_seq = seq;
        self.time_extensions = 0;
        self.stale = 0;
        seq
    }

    fn start(&mut self, pending: Pending) -> Result<(), CcidError> {
        if self.busy() {
            return Err(CcidError::Busy);
        }
        self.pending = pending;
        self.inbox.clear();
        Ok(())
    }

    /// Starts `PC_to_RDR_IccPowerOn`; finishes with [`Outcome::Atr`].
    pub fn power_on(&mut self, power: PowerSelect) -> Result<Frame, CcidError> {
        self.start(Pending::PowerOn)?;
        let seq = self.next_seq();
        Ok(message::power_on(self.slot, seq, power))
    }

    /// Starts `PC_to_RDR_IccPowerOff`; finishes with [`Outcome::Slot`].
    pub fn power_off(&mut self) -> Result<Frame, CcidError> {
        self.start(Pending::PowerOff)?;
        let seq = self.next_seq();
        Ok(message::power_off(self.slot, seq))
    }

    /// Starts `PC_to_RDR_GetSlotStatus`; finishes with [`Outcome::Slot`].
    pub fn slot_status(&mut self) -> Result<Frame, CcidError> {
        self.start(Pending::SlotStatus)?;
        let seq = self.next_seq();
        Ok(message::get_slot_status(self.slot, seq))
    }

    /// Starts sending one command APDU (short, or extended at extended APDU level);
    /// finishes with [`Outcome::Response`].
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<Frame, CcidError> {
        if apdu.len() < 4 {
            return Err(CcidError::InvalidCommand(format!(
                "a command APDU has at least 4 bytes, not {}",
                apdu.len()
            )));
        }
        let parts = match self.level {
            ExchangeLevel::ExtendedApdu => {
                if apdu.len() > MAX_COMMAND_APDU {
                    return Err(CcidError::InvalidCommand(format!(
                        "a command APDU of {} bytes is longer than {MAX_COMMAND_APDU}",
                        apdu.len()
                    )));
                }
                split(apdu, self.max_data)
            }
            _ => {
                if apdu.len() > MAX_SHORT_COMMAND_APDU || apdu.len() > self.max_data {
                    return Err(CcidError::InvalidCommand(format!(
                        "a command APDU of {} bytes does not fit a short-APDU-level reader \
                         (at most {} bytes)",
                        apdu.len(),
                        MAX_SHORT_COMMAND_APDU.min(self.max_data)
                    )));
                }
                VecDeque::from([(LevelParameter::Whole, Zeroizing::new(apdu.to_vec()))])
            }
        };
        self.start(Pending::Xfr(Xfr {
            parts,
            response: Zeroizing::new(Vec::new()),
            chained: false,
            blocks: 0,
        }))?;
        self.next_part()
    }

    /// The next command part of the transfer in progress as an XfrBlock.
    fn next_part(&mut self) -> Result<Frame, CcidError> {
        let Pending::Xfr(xfr) = &mut self.pending else {
            return Err(CcidError::Malformed("no command is in progress".into()));
        };
        let Some((level, data)) = xfr.parts.pop_front() else {
            return Err(CcidError::Malformed("the command was already sent".into()));
        };
        let seq = self.next_seq();
        Ok(message::xfr_block(self.slot, seq, level, &data))
    }

    /// Digests one bulk-IN transfer (a whole message, part of one, or more than one).
    ///
    /// Any error ends the operation: the caller should treat the link as broken (its
    /// late answers are discarded by `bSeq` next time).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Step, CcidError> {
        if !self.busy() {
            // Nothing asked: a late answer to an abandoned exchange.
            return Ok(Step::Wait);
        }
        self.inbox.extend_from_slice(bytes);
        let result = self.drain();
        if !matches!(result, Ok(Step::Wait)) {
            self.inbox.clear();
        }
        if matches!(result, Err(_) | Ok(Step::Done(_))) {
            self.pending = Pending::None;
        }
        result
    }

    fn drain(&mut self) -> Result<Step, CcidError> {
        loop {
            let Some(total) = message::message_len(&self.inbox)? else {
                return Ok(Step::Wait);
            };
            if self.inbox.len() < total {
                return Ok(Step::Wait);
            }
            let rest = self.inbox.split_off(total);
            let msg = std::mem::replace(&mut self.inbox, rest);
            let answer = message::decode(&msg)?;
            match self.on_answer(answer)? {
                Step::Wait => continue,
                step => return Ok(step),
            }
        }
    }

    fn on_answer(&mut self, answer: Answer) -> Result<Step, CcidError> {
        if answer.seq != self.expected_seq || answer.slot != self.slot {
            self.stale += 1;
            if self.stale > MAX_STALE_ANSWERS {
                return Err(CcidError::Malformed(format!(
                    "more than {MAX_STALE_ANSWERS} answers with a wrong bSeq or slot"
                )));
            }
            return Ok(Step::Wait);
        }
        let expected_type = match self.pending {
            Pending::PowerOn | Pending::Xfr(_) => RDR_TO_PC_DATA_BLOCK,
            _ => RDR_TO_PC_SLOT_STATUS,
        };
        if answer.message_type != expected_type {
            return Err(CcidError::Malformed(format!(
                "message type {:#04x} answers a command that expects {expected_type:#04x}",
                answer.message_type
            )));
        }
        match answer.command {
            CommandStatus::TimeExtension => {
                self.time_extensions += 1;
                if self.time_extensions > MAX_TIME_EXTENSIONS {
                    return Err(CcidError::Timeout(format!(
                        "the card asked for more than {MAX_TIME_EXTENSIONS} time extensions"
                    )));
                }
                return Ok(Step::Wait);
            }
            CommandStatus::Failed => return Err(slot_failure(&answer)),
            CommandStatus::Ok => {}
        }
        match &mut self.pending {
            Pending::None => Ok(Step::Wait),
            Pending::PowerOn => {
                if answer.data.is_empty() {
                    return Err(CcidError::Malformed(
                        "power-on answered without an ATR".into(),
                    ));
                }
                Ok(Step::Done(Outcome::Atr(answer.data.to_vec())))
            }
            Pending::PowerOff | Pending::SlotStatus => Ok(Step::Done(Outcome::Slot(answer.icc))),
            Pending::Xfr(xfr) => {
                if !xfr.parts.is_empty() {
                    // A part of the command went out; the reader must ask for the next.
                    if answer.chain()? != ChainParameter::MoreCommand || !answer.data.is_empty() {
                        return Err(CcidError::Malformed(format!(
                            "the reader answered bChainParameter {:#04x} with {} bytes in the \
                             middle of a chained command (expected an empty 0x10)",
                            answer.specific,
                            answer.data.len()
                        )));
                    }
                    return self.next_part().map(Step::Send);
                }
                xfr.blocks += 1;
                if xfr.blocks > MAX_RESPONSE_BLOCKS {
                    return Err(CcidError::Malformed(format!(
                        "a response chained over more than {MAX_RESPONSE_BLOCKS} messages"
                    )));
                }
                let chain = answer.chain()?;
                let (first, last) = match chain {
                    ChainParameter::Whole => (true, true),
                    ChainParameter::Begins => (true, false),
                    ChainParameter::Ends => (false, true),
                    ChainParameter::Continues => (false, false),
                    ChainParameter::MoreCommand => {
                        return Err(CcidError::Malformed(
                            "the reader asked for more command data after the last part".into(),
                        ))
                    }
                };
                if first == xfr.chained {
                    return Err(CcidError::Malformed(format!(
                        "bChainParameter {:#04x} out of order",
                        answer.specific
                    )));
                }
                if xfr.response.len() + answer.data.len() > MAX_RESPONSE_APDU {
                    return Err(CcidError::Malformed(format!(
                        "a response APDU longer than {MAX_RESPONSE_APDU} bytes"
                    )));
                }
                xfr.response.extend_from_slice(&answer.data);
                if last {
                    let response = std::mem::take(&mut xfr.response);
                    return Ok(Step::Done(Outcome::Response(response)));
                }
                xfr.chained = true;
                let seq = self.next_seq();
                Ok(Step::Send(message::xfr_block(
                    self.slot,
                    seq,
                    LevelParameter::MoreResponse,
                    &[],
                )))
            }
        }
    }
}

/// Cuts an APDU into `wLevelParameter` parts of at most `max` bytes (§6.1.4).
fn split(apdu: &[u8], max: usize) -> VecDeque<(LevelParameter, Zeroizing<Vec<u8>>)> {
    let chunks: Vec<&[u8]> = apdu.chunks(max.max(1)).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let level = match (i == 0, i + 1 == n) {
                (true, true) => LevelParameter::Whole,
                (true, false) => LevelParameter::Begins,
                (false, true) => LevelParameter::Ends,
                (false, false) => LevelParameter::Continues,
            };
            (level, Zeroizing::new(chunk.to_vec()))
        })
        .collect()
}

/// A failed command (`bmCommandStatus = 1`): no card or an inactive one means the card is
/// gone for us; anything else is the reader's or the card's fault.
fn slot_failure(answer: &Answer) -> CcidError {
    match answer.icc {
        IccStatus::Absent => CcidError::CardAbsent,
        IccStatus::Inactive => CcidError::CardInactive {
            code: answer.error,
            name: message::slot_error::name(answer.error),
        },
        IccStatus::Active => CcidError::Slot {
            code: answer.error,
            name: message::slot_error::name(answer.error),
        },
    }
}
