//! A simulated CCID reader (device side) for the CCID tests, written from the USB CCID 1.1
//! specification's field tables with plain byte handling — none of the core's `ccid`
//! encoders or decoders — so it checks the host side instead of mirroring it.
//!
//! It answers PC_to_RDR_IccPowerOn / IccPowerOff / GetSlotStatus / XfrBlock (§6.1),
//! reassembles chained commands (`wLevelParameter`, §6.1.4), chains long responses
//! (`bChainParameter`, §6.2.1), and can add time extensions (§6.2.6), stale answers and
//! split transfers. Its "card" is any function from a command APDU to a response.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use securesign_core::ccid::{BulkPipe, CcidDescriptor, PipeError};

/// The card behind the simulated reader: a command APDU in, the response out, or `None`
/// when the card went away during the command (the reader then answers ICC_MUTE with
/// no ICC present, as a reader whose card was pulled does).
pub type Card = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>> + Send>;

/// A CCID class descriptor (§5.1, Table 5.1-1) with the given `dwFeatures` and
/// `dwMaxCCIDMessageLength`: one slot, 5 V / 3 V / 1.8 V, T=0 and T=1.
pub fn descriptor_bytes(features: u32, max_message_len: u32) -> Vec<u8> {
    let mut d = vec![0x36, 0x21, 0x10, 0x01]; // bLength, bDescriptorType, bcdCCID 1.10
    d.push(0x00); // bMaxSlotIndex
    d.push(0x07); // bVoltageSupport: 5 V | 3 V | 1.8 V
    d.extend_from_slice(&3u32.to_le_bytes()); // dwProtocols: T=0 | T=1
    d.extend_from_slice(&4000u32.to_le_bytes()); // dwDefaultClock (kHz)
    d.extend_from_slice(&4000u32.to_le_bytes()); // dwMaximumClock
    d.push(0); // bNumClockSupported
    d.extend_from_slice(&9600u32.to_le_bytes()); // dwDataRate (bps)
    d.extend_from_slice(&9600u32.to_le_bytes()); // dwMaxDataRate
    d.push(0); // bNumDataRatesSupported
    d.extend_from_slice(&254u32.to_le_bytes()); // dwMaxIFSD
    d.extend_from_slice(&0u32.to_le_bytes()); // dwSynchProtocols
    d.extend_from_slice(&0u32.to_le_bytes()); // dwMechanical
    d.extend_from_slice(&features.to_le_bytes()); // dwFeatures
    d.extend_from_slice(&max_message_len.to_le_bytes()); // dwMaxCCIDMessageLength
    d.push(0xFF); // bClassGetResponse
    d.push(0xFF); // bClassEnvelope
    d.extend_from_slice(&0u16.to_le_bytes()); // wLcdLayout
    d.push(0); // bPINSupport
    d.push(1); // bMaxCCIDBusySlots
    assert_eq!(d.len(), 0x36);
    d
}

/// Extended APDU level with the automatic features an APDU-level reader has.
pub const EXTENDED_FEATURES: u32 = 0x0004_00BA;
/// Short APDU level with the same automatic features.
pub const SHORT_FEATURES: u32 = 0x0002_00BA;

/// A parsed descriptor for the simulator's settings.
pub fn descriptor(extended: bool, max_message_len: u32) -> CcidDescriptor {
    let features = if extended {
        EXTENDED_FEATURES
    } else {
        SHORT_FEATURES
    };
    CcidDescriptor::parse(&descriptor_bytes(features, max_message_len)).unwrap()
}

/// An ATR (ISO/IEC 7816-3 §8.2: TS = 3B, T0 = 8x with TD1 for T=1, historical bytes).
pub const ATR: [u8; 8] = [0x3B, 0x81, 0x80, 0x01, 0x80, 0x80, 0x01, 0x81];

/// The simulated reader.
pub struct SimReader {
    /// `dwMaxCCIDMessageLength`.
    pub max_message_len: usize,
    /// Extended APDU level (else short APDU level).
    pub extended: bool,
    card: Card,
    /// A card is in the slot.
    pub present: bool,
    /// The card is powered.
    pub powered: bool,
    outbox: VecDeque<Vec<u8>>,
    command: Vec<u8>,
    response: VecDeque<u8>,
    /// Time extensions sent before every answer.
    pub time_extensions: usize,
    /// A stale answer (previous `bSeq`) sent before every answer.
    pub stale: bool,
    /// Each message goes out in bulk-IN transfers of at most this many bytes.
    pub transfer_size: usize,
    /// Every complete command APDU the card received.
    pub apdus: Vec<Vec<u8>>,
    /// Every message the host sent.
    pub frames: Vec<Vec<u8>>,
    last_seq: Option<u8>,
}

impl SimReader {
    /// A reader with a card that answers with `card`.
    pub fn new(extended: bool, max_message_len: usize, card: Card) -> Self {
        Self {
            max_message_len,
            extended,
            card,
            present: true,
            powered: false,
            outbox: VecDeque::new(),
            command: Vec::new(),
            response: VecDeque::new(),
            time_extensions: 0,
            stale: false,
            transfer_size: usize::MAX,
            apdus: Vec::new(),
            frames: Vec::new(),
            last_seq: None,
        }
    }

    /// The host opened the device afresh (a new USB session): its `bSeq` starts anew and
    /// the card is unpowered.
    pub fn reconnect(&mut self) {
        self.last_seq = None;
        self.powered = false;
    }

    fn max_data(&self) -> usize {
        self.max_message_len - 10
    }

    /// Queues one reader-to-host message (§6.2: type, dwLength, bSlot, bSeq, bStatus,
    /// bError, third byte, data), after the configured stale answer and time extensions.
    fn answer(&mut self, kind: u8, seq: u8, status: u8, error: u8, third: u8, data: &[u8]) {
        if self.stale {
            self.push(raw(kind, seq.wrapping_sub(1), 0x00, 0x00, 0x00, b"stale"));
        }
        for _ in 0..self.time_extensions {
            // §6.2.6: bmCommandStatus = 2 (time extension), bError = BWT multiplier.
            self.push(raw(kind, seq, 0x80 | (status & 0x03), 0x01, 0x00, &[]));
        }
        self.push(raw(kind, seq, status, error, third, data));
    }

    fn push(&mut self, msg: Vec<u8>) {
        for part in msg.chunks(self.transfer_size.max(1)) {
            self.outbox.push_back(part.to_vec());
        }
    }

    fn icc_status(&self) -> u8 {
        match (self.present, self.powered) {
            (false, _) => 0x02,
            (true, false) => 0x01,
            (true, true) => 0x00,
        }
    }

    /// Sends the next part of the pending response as a DataBlock.
    fn send_response_part(&mut self, seq: u8, first: bool) {
        let n = self.response.len().min(self.max_data());
        let part: Vec<u8> = self.response.drain(..n).collect();
        let last = self.response.is_empty();
        let chain = match (first, last) {
            (true, true) => 0x00,
            (true, false) => 0x01,
            (false, true) => 0x02,
            (false, false) => 0x03,
        };
        self.answer(0x80, seq, 0x00, 0x00, chain, &part);
    }

    fn handle(&mut self, frame: &[u8]) {
        assert!(
            frame.len() >= 10,
            "host sent a {}-byte message",
            frame.len()
        );
        let len = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        assert_eq!(frame.len(), 10 + len, "dwLength does not match the message");
        assert!(
            frame.len() <= self.max_message_len,
            "message of {} bytes over dwMaxCCIDMessageLength {}",
            frame.len(),
            self.max_message_len
        );
        assert_eq!(frame[5], 0, "bSlot");
        let seq = frame[6];
        if let Some(last) = self.last_seq {
            assert_eq!(seq, last.wrapping_add(1), "bSeq must count up");
        }
        self.last_seq = Some(seq);
        let data = &frame[10..];
        match frame[0] {
            0x62 => {
                // §6.1.1 IccPowerOn → §6.2.1 DataBlock with the ATR.
                assert!(frame[7] <= 3, "bPowerSelect");
                if self.present {
                    self.powered = true;
                    self.answer(0x80, seq, 0x00, 0x00, 0x00, &ATR);
                } else {
                    // bmCommandStatus 1, no ICC, ICC_MUTE.
                    self.answer(0x80, seq, 0x42, 0xFE, 0x00, &[]);
                }
            }
            0x63 => {
                // §6.1.2 IccPowerOff → §6.2.2 SlotStatus.
                self.powered = false;
                let status = self.icc_status();
                self.answer(0x81, seq, status, 0x00, 0x00, &[]);
            }
            0x65 => {
                // §6.1.3 GetSlotStatus → §6.2.2 SlotStatus.
                let status = self.icc_status();
                self.answer(0x81, seq, status, 0x00, 0x00, &[]);
            }
            0x6F => self.xfr_block(seq, u16::from_le_bytes([frame[8], frame[9]]), data),
            other => panic!("the host sent message type {other:#04x}"),
        }
    }

    /// §6.1.4 XfrBlock → §6.2.1 DataBlock.
    fn xfr_block(&mut self, seq: u8, level: u16, data: &[u8]) {
        if !self.present || !self.powered {
            let status = 0x40 | self.icc_status();
            self.answer(0x80, seq, status, 0xFE, 0x00, &[]);
            return;
        }
        if !self.extended {
            assert_eq!(level, 0, "wLevelParameter is RFU at short APDU level");
            assert!(data.len() <= 261, "short APDU of {} bytes", data.len());
        }
        match level {
            0x0000 | 0x0001 => self.command = data.to_vec(),
            0x0002 | 0x0003 => self.command.extend_from_slice(data),
            0x0010 => {
                assert!(data.is_empty(), "0x10 carries no data");
                assert!(!self.response.is_empty(), "no response part is pending");
                self.send_response_part(seq, false);
                return;
            }
            other => panic!("wLevelParameter {other:#06x}"),
        }
        if level == 0x0001 || level == 0x0003 {
            // More command data expected: empty DataBlock, bChainParameter 0x10.
            self.answer(0x80, seq, 0x00, 0x00, 0x10, &[]);
            return;
        }
        let apdu = std::mem::take(&mut self.command);
        let response = (self.card)(&apdu);
        self.apdus.push(apdu);
        let Some(response) = response else {
            self.present = false;
            self.powered = false;
            // bmCommandStatus 1, bmICCStatus 2, bError ICC_MUTE (§6.2.6).
            self.answer(0x80, seq, 0x42, 0xFE, 0x00, &[]);
            return;
        };
        self.response = response.into();
        self.send_response_part(seq, true);
    }
}

/// One reader-to-host message (§6.2).
pub fn raw(kind: u8, seq: u8, status: u8, error: u8, third: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(&[0x00, seq, status, error, third]);
    m.extend_from_slice(data);
    m
}

impl BulkPipe for SimReader {
    fn bulk_out(&mut self, data: &[u8]) -> Result<(), PipeError> {
        self.frames.push(data.to_vec());
        self.handle(data);
        Ok(())
    }

    fn bulk_in(&mut self, _timeout: Duration) -> Result<Vec<u8>, PipeError> {
        self.outbox.pop_front().ok_or(PipeError::Timeout)
    }
}

/// A pipe that answers with a fixed script of bulk-IN transfers, then times out; it
/// accepts whatever the host writes.
pub struct ScriptedPipe {
    /// Transfers still to deliver.
    pub script: VecDeque<Vec<u8>>,
    /// What the host wrote.
    pub written: Vec<Vec<u8>>,
}

impl ScriptedPipe {
    /// A pipe that delivers `script` in order.
    pub fn new(script: Vec<Vec<u8>>) -> Self {
        Self {
            script: script.into(),
            written: Vec::new(),
        }
    }
}

impl BulkPipe for ScriptedPipe {
    fn bulk_out(&mut self, data: &[u8]) -> Result<(), PipeError> {
        self.written.push(data.to_vec());
        Ok(())
    }

    fn bulk_in(&mut self, _timeout: Duration) -> Result<Vec<u8>, PipeError> {
        self.script.pop_front().ok_or(PipeError::Timeout)
    }
}
