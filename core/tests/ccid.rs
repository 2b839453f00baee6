#![allow(clippy::unwrap_used)]
//! The sans-IO CCID host against frames derived from the USB CCID 1.1 specification's field
//! tables (section numbers in the comments), a simulated reader written independently
//! (ccid_support), and property tests: any APDU and any response survive framing and
//! chaining; garbage from a reader never panics and always becomes an SS_* error.

mod ccid_support;

use ccid_support::{descriptor, descriptor_bytes, raw, ScriptedPipe, SimReader, ATR};
use proptest::prelude::*;
use securesign_core::apdu::{exchange, ApduTransport, Command, TransportError};
use securesign_core::ccid::message::PowerSelect;
use securesign_core::ccid::{
    parse_interrupt, Ccid, CcidDescriptor, CcidError, CcidTransport, ExchangeLevel, IccStatus,
    Interrupt, Outcome, SlotChange, Step,
};
use securesign_core::{Error, ErrorCode};

/// SELECT the PIV application (SP 800-73-4 §3.1.1): `00 A4 04 00 09 A0000003080000100000`.
const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn machine(extended: bool, max: u32) -> Ccid {
    Ccid::new(&descriptor(extended, max), 0).unwrap()
}

fn done(step: Step) -> Outcome {
    match step {
        Step::Done(outcome) => outcome,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn sent(step: Step) -> Vec<u8> {
    match step {
        Step::Send(frame) => frame.to_vec(),
        other => panic!("expected Send, got {other:?}"),
    }
}

// ---------------------------------------------------------------- §5.1 class descriptor

#[test]
fn descriptor_fields_follow_table_5_1_1() {
    // Table 5.1-1, byte by byte: bLength 36, bDescriptorType 21, bcdCCID 0110,
    // bMaxSlotIndex 00, bVoltageSupport 07, dwProtocols 00000003, dwDefaultClock /
    // dwMaximumClock 4000 kHz, bNumClockSupported 0, dwDataRate / dwMaxDataRate 9600,
    // bNumDataRatesSupported 0, dwMaxIFSD 254, dwSynchProtocols 0, dwMechanical 0,
    // dwFeatures 000404BA (extended APDU level; auto ATR parameters, voltage, clock,
    // baud, PPS), dwMaxCCIDMessageLength 0000010F (271), bClassGetResponse FF,
    // bClassEnvelope FF, wLcdLayout 0000, bPINSupport 00, bMaxCCIDBusySlots 01.
    let bytes = h(
        "36 21 10 01 00 07 03000000 A00F0000 A00F0000 00 80250000 80250000 00 \
                   FE000000 00000000 00000000 BA040400 0F010000 FF FF 0000 00 01",
    );
    assert_eq!(bytes.len(), 0x36);
    let d = CcidDescriptor::parse(&bytes).unwrap();
    assert_eq!(d.bcd_ccid, 0x0110);
    assert_eq!(d.level, ExchangeLevel::ExtendedApdu);
    assert_eq!(d.max_message_len, 271);
    assert_eq!(d.max_data_len(), 261);
    assert!(d.voltages.v5 && d.voltages.v3 && d.voltages.v1_8);
    assert_eq!(d.protocols, 3);
    assert!(d.auto_voltage());
    assert!(!d.auto_activation());
    assert_eq!(d.max_busy_slots, 1);
    // The simulator's builder writes the same bytes.
    assert_eq!(descriptor_bytes(0x0004_04BA, 271), bytes);
}

#[test]
fn descriptor_exchange_levels() {
    let short = CcidDescriptor::parse(&descriptor_bytes(0x0002_00BA, 271)).unwrap();
    assert_eq!(short.level, ExchangeLevel::ShortApdu);
    // §5.1 dwFeatures 0x00010000: TPDU level — refused, not half-supported.
    let tpdu = CcidDescriptor::parse(&descriptor_bytes(0x0001_00BA, 271)).unwrap_err();
    assert!(
        matches!(tpdu, CcidError::Unsupported(ref m) if m.contains("TPDU")),
        "{tpdu}"
    );
    assert_eq!(Error::from(tpdu).code(), ErrorCode::NotSupported);
    // No level bit: character level.
    let chars = CcidDescriptor::parse(&descriptor_bytes(0x0000_00BA, 271)).unwrap_err();
    assert!(matches!(chars, CcidError::Unsupported(ref m) if m.contains("characters")));
    // "Only one of the following values may be present".
    let two = CcidDescriptor::parse(&descriptor_bytes(0x0006_0000, 271)).unwrap_err();
    assert!(matches!(two, CcidError::Descriptor(_)), "{two}");
    // dwMaxCCIDMessageLength below 261 + 10 cannot carry a short APDU.
    let small = CcidDescriptor::parse(&descriptor_bytes(0x0004_0000, 270)).unwrap_err();
    assert!(matches!(small, CcidError::Unsupported(_)), "{small}");
}

#[test]
fn descriptor_header_errors() {
    let good = descriptor_bytes(0x0004_0000, 271);
    let mut bad_len = good.clone();
    bad_len[0] = 0x35;
    assert!(matches!(
        CcidDescriptor::parse(&bad_len),
        Err(CcidError::Descriptor(_))
    ));
    let mut bad_type = good.clone();
    bad_type[1] = 0xFF; // some pre-1.0 readers: vendor type
    assert!(matches!(
        CcidDescriptor::parse(&bad_type),
        Err(CcidError::Descriptor(_))
    ));
    assert!(matches!(
        CcidDescriptor::parse(&good[..53]),
        Err(CcidError::Descriptor(_))
    ));
    assert_eq!(
        Error::from(CcidDescriptor::parse(&good[..10]).unwrap_err()).code(),
        ErrorCode::TokenError
    );
}

#[test]
fn descriptor_found_in_a_configuration() {
    // USB 2.0 §9.6.3 configuration, §9.6.5 interface (class 0B, §4.3 of CCID 1.1), the
    // CCID class descriptor, §9.6.6 endpoints (bulk OUT 01, bulk IN 82, interrupt IN 83).
    let mut config = h("09 02 5D00 01 01 00 80 32");
    config.extend(h("09 04 00 00 03 0B 00 00 00"));
    config.extend(descriptor_bytes(0x0002_0000, 271));
    config.extend(h("07 05 01 02 4000 00"));
    config.extend(h("07 05 82 02 4000 00"));
    config.extend(h("07 05 83 03 0800 18"));
    let d = CcidDescriptor::find_in_configuration(&config).unwrap();
    assert_eq!(d.level, ExchangeLevel::ShortApdu);
    // A HID interface's 0x21 descriptor is not a CCID one.
    let hid = h("09 02 2200 01 01 00 80 32 09 04 00 00 01 03 00 00 00 09 21 11 01 00 01 22 3F00");
    assert!(matches!(
        CcidDescriptor::find_in_configuration(&hid),
        Err(CcidError::Unsupported(_))
    ));
    // A descriptor that overruns the buffer.
    assert!(matches!(
        CcidDescriptor::find_in_configuration(&h("09 02 00")),
        Err(CcidError::Descriptor(_))
    ));
}

#[test]
fn qemu_usb_ccid_descriptors_are_refused_as_tpdu_level() {
    // The device + configuration descriptors of QEMU 7.2's emulated usb-ccid reader, as
    // its guest kernel exposes them (/sys/bus/usb/devices/1-1/descriptors, what Android's
    // getRawDescriptors() returns): an independent implementation's bytes, not ours.
    // dwFeatures 0x000104FE = TPDU level; dwProtocols 1 = T=0; dwMaxCCIDMessageLength 65554.
    let raw = h(concat!(
        "12 01 10 01 00 00 00 40 e6 08 33 44 00 00 01 02",
        "03 01 09 02 5d 00 01 01 00 e0 32 09 04 00 00 03",
        "0b 00 00 04 36 21 10 01 00 07 01 00 00 00 a0 0f",
        "00 00 00 00 01 00 00 80 25 00 00 00 c2 01 00 00",
        "fe 00 00 00 00 00 00 00 00 00 00 00 fe 04 01 00",
        "12 00 01 00 ff ff 00 00 01 01 07 05 81 03 40 00",
        "ff 07 05 82 02 40 00 00 07 05 03 02 40 00 00",
    ));
    assert_eq!(raw.len(), 0x6F);
    let err = CcidDescriptor::find_in_configuration(&raw).unwrap_err();
    assert!(
        matches!(err, CcidError::Unsupported(ref m) if m.contains("TPDU")),
        "{err}"
    );
    assert_eq!(Error::from(err).code(), ErrorCode::NotSupported);
    // Its class descriptor with the level bits set to short APDU level parses with the
    // values the table gives.
    let mut class = raw[0x24..0x24 + 0x36].to_vec();
    class[42] = 0x02;
    let d = CcidDescriptor::parse(&class).unwrap();
    assert_eq!(d.max_message_len, 65_554);
    assert_eq!(d.protocols, 1);
    assert!(d.auto_voltage());
}

// ------------------------------------------------------------ §6.1 / §6.2 bulk messages

#[test]
fn power_on_and_atr_frames() {
    let mut m = machine(true, 271);
    // §6.1.1: 62, dwLength 0, bSlot 0, bSeq 0, bPowerSelect 01 (5.0 V), abRFU 0000.
    assert_eq!(
        m.power_on(PowerSelect::V5).unwrap().to_vec(),
        h("62 00000000 00 00 01 0000")
    );
    // §6.2.1: 80, dwLength 8, bSlot 0, bSeq 0, bStatus 00, bError 00, bChainParameter 00, ATR.
    let answer = h("80 08000000 00 00 00 00 00 3B81800180800181");
    assert_eq!(
        done(m.receive(&answer).unwrap()),
        Outcome::Atr(ATR.to_vec())
    );
}

#[test]
fn power_off_and_slot_status_frames() {
    let mut m = machine(true, 271);
    m.power_on(PowerSelect::Automatic).unwrap();
    done(
        m.receive(&h("80 08000000 00 00 00 00 00 3B81800180800181"))
            .unwrap(),
    );
    // §6.1.2: 63, bSeq 1, abRFU.
    assert_eq!(
        m.power_off().unwrap().to_vec(),
        h("63 00000000 00 01 000000")
    );
    // §6.2.2: 81, bStatus 01 (present, inactive), bError 0, bClockStatus 0.
    assert_eq!(
        done(m.receive(&h("81 00000000 00 01 01 00 00")).unwrap()),
        Outcome::Slot(IccStatus::Inactive)
    );
    // §6.1.3: 65, bSeq 2.
    assert_eq!(
        m.slot_status().unwrap().to_vec(),
        h("65 00000000 00 02 000000")
    );
    // §6.2.2 bStatus 02: no ICC present, command processed.
    assert_eq!(
        done(m.receive(&h("81 00000000 00 02 02 00 00")).unwrap()),
        Outcome::Slot(IccStatus::Absent)
    );
    // bStatus 42: command failed, no ICC (bError FE ICC_MUTE) → card absent.
    m.slot_status().unwrap();
    assert_eq!(
        m.receive(&h("81 00000000 00 03 42 FE 00")).unwrap_err(),
        CcidError::CardAbsent
    );
}

#[test]
fn xfr_block_frame_and_data_block() {
    let mut m = machine(false, 271);
    // §6.1.4: 6F, dwLength 15, bSlot 0, bSeq 0, bBWI 00, wLevelParameter 0000, the APDU.
    let mut expected = h("6F 0F000000 00 00 00 0000");
    expected.extend_from_slice(&SELECT_PIV);
    assert_eq!(m.transmit(&SELECT_PIV).unwrap().to_vec(), expected);
    // §6.2.1: DataBlock with the response APDU 9000.
    match done(m.receive(&h("80 02000000 00 00 00 00 00 9000")).unwrap()) {
        Outcome::Response(r) => assert_eq!(r.to_vec(), h("9000")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn time_extension_then_the_real_answer() {
    let mut m = machine(false, 271);
    m.transmit(&SELECT_PIV).unwrap();
    // §6.2.6: bmCommandStatus 2 (bStatus 80), bError = BWT multiplier 01.
    for _ in 0..5 {
        assert_eq!(
            m.receive(&h("80 00000000 00 00 80 01 00")).unwrap(),
            Step::Wait
        );
    }
    assert!(matches!(
        done(m.receive(&h("80 02000000 00 00 00 00 00 6A82")).unwrap()),
        Outcome::Response(r) if r.to_vec() == h("6A82")
    ));
}

#[test]
fn stale_answers_are_discarded_by_sequence_number() {
    let mut m = machine(false, 271);
    // An abandoned exchange (bSeq 0) whose answer arrives late.
    m.transmit(&SELECT_PIV).unwrap();
    m.abandon();
    m.transmit(&SELECT_PIV).unwrap(); // bSeq 1
    assert_eq!(
        m.receive(&h("80 02000000 00 00 00 00 00 6D00")).unwrap(),
        Step::Wait
    );
    // Another slot's answer is not ours either.
    assert_eq!(
        m.receive(&h("80 02000000 01 01 00 00 00 6E00")).unwrap(),
        Step::Wait
    );
    assert!(matches!(
        done(m.receive(&h("80 02000000 00 01 00 00 00 9000")).unwrap()),
        Outcome::Response(r) if r.to_vec() == h("9000")
    ));
}

#[test]
fn a_message_split_over_transfers_and_two_messages_in_one() {
    let mut m = machine(false, 271);
    m.transmit(&SELECT_PIV).unwrap();
    assert_eq!(m.receive(&h("80 02000000 00")).unwrap(), Step::Wait);
    // The rest, preceded in the same transfer by nothing else; then a whole time
    // extension and the answer in one transfer.
    let mut both = h("00 80 01 00");
    both.truncate(0);
    both.extend(h("00 00 00 00 9000"));
    assert!(matches!(
        done(m.receive(&both).unwrap()),
        Outcome::Response(_)
    ));
    m.transmit(&SELECT_PIV).unwrap();
    let mut two = h("80 00000000 00 01 80 01 00");
    two.extend(h("80 02000000 00 01 00 00 00 9000"));
    assert!(matches!(
        done(m.receive(&two).unwrap()),
        Outcome::Response(_)
    ));
}

#[test]
fn slot_errors_map_to_card_absent_or_token_error() {
    // §6.2.6 Table 6.2-2. bStatus 40 | bmICCStatus.
    for (status, error, code) in [
        ("42", "FE", ErrorCode::TokenNotPresent), // no ICC, ICC_MUTE
        ("41", "FE", ErrorCode::TokenNotPresent), // present but inactive
        ("40", "FB", ErrorCode::TokenError),      // HW_ERROR
        ("40", "FD", ErrorCode::TokenError),      // XFR_PARITY_ERROR
        ("40", "FF", ErrorCode::TokenError),      // CMD_ABORTED
        ("40", "05", ErrorCode::TokenError),      // bad parameter at offset 5 (bSlot)
    ] {
        let mut m = machine(false, 271);
        m.transmit(&SELECT_PIV).unwrap();
        let err = m
            .receive(&h(&format!("80 00000000 00 00 {status} {error} 00")))
            .unwrap_err();
        assert_eq!(
            Error::from(err.clone()).code(),
            code,
            "{status} {error}: {err}"
        );
        // The machine is free again after an error.
        m.transmit(&SELECT_PIV).unwrap();
    }
    let mut m = machine(false, 271);
    m.transmit(&SELECT_PIV).unwrap();
    let err = m.receive(&h("80 00000000 00 00 40 FB 00")).unwrap_err();
    assert_eq!(err.to_string(), "the reader reported HW_ERROR");
    assert_eq!(
        TransportError::from(CcidError::CardAbsent),
        TransportError::CardAbsent
    );
}

#[test]
fn extended_command_and_response_chaining_frames() {
    // dwMaxCCIDMessageLength 271: 261 data bytes per message.
    let mut m = machine(true, 271);
    let mut apdu = h("00 DB 3F FF 00 0251");
    apdu.extend((0..0x251).map(|i| i as u8));
    assert_eq!(apdu.len(), 600);
    // §6.1.4 wLevelParameter 0001: the APDU begins here and continues.
    let f0 = m.transmit(&apdu).unwrap().to_vec();
    assert_eq!(&f0[..10], h("6F 05010000 00 00 00 0100").as_slice());
    assert_eq!(&f0[10..], &apdu[..261]);
    // §6.2.1 bChainParameter 10: empty, the reader expects more command data.
    let f1 = sent(m.receive(&h("80 00000000 00 00 00 00 10")).unwrap());
    // wLevelParameter 0003: continues, another block follows.
    assert_eq!(&f1[..10], h("6F 05010000 00 01 00 0300").as_slice());
    assert_eq!(&f1[10..], &apdu[261..522]);
    let f2 = sent(m.receive(&h("80 00000000 00 01 00 00 10")).unwrap());
    // wLevelParameter 0002: continues and ends (78 bytes).
    assert_eq!(&f2[..10], h("6F 4E000000 00 02 00 0200").as_slice());
    assert_eq!(&f2[10..], &apdu[522..]);
    // Response chaining: bChainParameter 01 (begins, continues) …
    let f3 = sent(m.receive(&h("80 03000000 00 02 00 00 01 AABBCC")).unwrap());
    // … the host asks with wLevelParameter 0010 and empty abData …
    assert_eq!(f3, h("6F 00000000 00 03 00 1000"));
    // … 03 (continues, more follows) …
    let f4 = sent(m.receive(&h("80 01000000 00 03 00 00 03 DD")).unwrap());
    assert_eq!(f4, h("6F 00000000 00 04 00 1000"));
    // … 02 (ends).
    let out = done(m.receive(&h("80 02000000 00 04 00 00 02 9000")).unwrap());
    assert!(matches!(out, Outcome::Response(r) if r.to_vec() == h("AABBCCDD9000")));
}

#[test]
fn chaining_out_of_order_is_malformed() {
    let mut m = machine(true, 271);
    m.transmit(&SELECT_PIV).unwrap();
    // 02 (ends) without a beginning.
    assert!(matches!(
        m.receive(&h("80 02000000 00 00 00 00 02 9000")),
        Err(CcidError::Malformed(_))
    ));
    let mut m = machine(true, 271);
    m.transmit(&vec![0u8; 300]).unwrap();
    // A final answer in the middle of a chained command.
    assert!(matches!(
        m.receive(&h("80 02000000 00 00 00 00 00 9000")),
        Err(CcidError::Malformed(_))
    ));
    // A short-APDU-level reader takes no APDU longer than 261 bytes.
    let mut m = machine(false, 1024);
    assert!(matches!(
        m.transmit(&[0u8; 262]),
        Err(CcidError::InvalidCommand(_))
    ));
}

// ---------------------------------------------------------------- §6.3 interrupt endpoint

#[test]
fn notify_slot_change_and_hardware_error() {
    // §6.3.1 bmSlotICCState: bit 0 present, bit 1 changed, two bits per slot.
    assert_eq!(
        parse_interrupt(&h("50 03"), 0).unwrap(),
        Interrupt::SlotChange(vec![SlotChange {
            slot: 0,
            present: true,
            changed: true
        }])
    );
    assert_eq!(
        parse_interrupt(&h("50 0B"), 1).unwrap(),
        Interrupt::SlotChange(vec![
            SlotChange {
                slot: 0,
                present: true,
                changed: true
            },
            SlotChange {
                slot: 1,
                present: false,
                changed: true
            },
        ])
    );
    // Five slots need two bytes.
    assert!(matches!(
        parse_interrupt(&h("50 FF"), 4),
        Err(CcidError::Malformed(_))
    ));
    // §6.3.2 HardwareError: bSlot 0, bSeq 5, overcurrent 01.
    assert_eq!(
        parse_interrupt(&h("51 00 05 01"), 0).unwrap(),
        Interrupt::HardwareError {
            slot: 0,
            seq: 5,
            code: 1
        }
    );
    assert!(parse_interrupt(&[], 0).is_err());
    assert!(parse_interrupt(&h("52 00"), 0).is_err());
}

// ------------------------------------------------------------ CcidTransport over a reader

fn echo_card() -> ccid_support::Card {
    // Answers with the command's bytes reversed and 9000.
    Box::new(|apdu: &[u8]| {
        let mut r: Vec<u8> = apdu.iter().rev().copied().collect();
        r.extend_from_slice(&[0x90, 0x00]);
        Some(r)
    })
}

#[test]
fn transport_powers_on_and_exchanges_through_time_extensions_and_stale_answers() {
    let mut reader = SimReader::new(true, 271, echo_card());
    reader.time_extensions = 3;
    reader.stale = true;
    reader.transfer_size = 7;
    let mut t = CcidTransport::open(reader, descriptor(true, 271), 0, "sim").unwrap();
    assert_eq!(t.atr(), Some(&ATR[..]));
    let response = t.transmit(&SELECT_PIV).unwrap();
    let mut expected: Vec<u8> = SELECT_PIV.iter().rev().copied().collect();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(response, expected);
    assert!(t.card_present().unwrap());
    assert_eq!(t.pipe_mut().apdus, vec![SELECT_PIV.to_vec()]);
    // The core's ISO 7816 chaining on top: a 600-byte command goes out as three short
    // APDUs (CLA 10), each one XfrBlock.
    let command = Command::new(0x00, 0xDB, 0x3F, 0xFF, vec![7; 600]).without_response();
    let answer = exchange(&mut t, &command).unwrap();
    assert!(answer.sw.is_ok());
    let apdus = &t.pipe_mut().apdus;
    assert_eq!(apdus.len(), 4);
    assert_eq!(apdus[1][0], 0x10);
    assert_eq!(apdus[3][0], 0x00);
}

#[test]
fn a_card_removed_is_card_absent_and_a_new_one_is_powered_on() {
    let reader = SimReader::new(false, 271, echo_card());
    let mut t = CcidTransport::open(reader, descriptor(false, 271), 0, "sim").unwrap();
    // The interrupt endpoint reports the removal (§6.3.1: changed, not present).
    assert_eq!(t.on_interrupt(&h("50 02")).unwrap(), Some(false));
    t.pipe_mut().present = false;
    t.pipe_mut().powered = false;
    assert!(!t.card_present().unwrap());
    assert_eq!(
        t.transmit(&SELECT_PIV).unwrap_err(),
        TransportError::CardAbsent
    );
    // Inserted again: the next APDU powers it on first.
    t.pipe_mut().present = true;
    assert_eq!(t.on_interrupt(&h("50 03")).unwrap(), Some(true));
    assert!(t.card_present().unwrap());
    t.transmit(&SELECT_PIV).unwrap();
    let powers = t.pipe_mut().frames.iter().filter(|f| f[0] == 0x62).count();
    assert!(powers >= 2, "powered on {powers} times");
}

#[test]
fn a_card_reset_behind_our_back_is_card_absent_once_then_powered_again() {
    let reader = SimReader::new(false, 271, echo_card());
    let mut t = CcidTransport::open(reader, descriptor(false, 271), 0, "sim").unwrap();
    t.pipe_mut().powered = false;
    // bmICCStatus 1 (inactive) on an XfrBlock: the card's state is gone.
    assert_eq!(
        t.transmit(&SELECT_PIV).unwrap_err(),
        TransportError::CardAbsent
    );
    assert!(t.atr().is_none());
    t.transmit(&SELECT_PIV).unwrap();
    assert_eq!(t.atr(), Some(&ATR[..]));
}

#[test]
fn an_empty_slot_at_open_is_token_not_present() {
    let mut reader = SimReader::new(true, 271, echo_card());
    reader.present = false;
    let err = CcidTransport::open(reader, descriptor(true, 271), 0, "sim").unwrap_err();
    assert_eq!(Error::from(err).code(), ErrorCode::TokenNotPresent);
}

#[test]
fn a_silent_reader_is_a_timeout_and_nothing_is_sent_twice() {
    let mut pipe = ScriptedPipe::new(vec![raw(0x80, 0, 0, 0, 0, &ATR)]);
    pipe.script.push_back(Vec::new()); // a zero-length packet
    let mut t = CcidTransport::open(pipe, descriptor(false, 271), 0, "sim").unwrap();
    let err = t.transmit_apdu(&SELECT_PIV).unwrap_err();
    assert!(matches!(err, CcidError::Timeout(_)), "{err}");
    assert_eq!(Error::from(err).code(), ErrorCode::TokenError);
    let xfrs = t.pipe_mut().written.iter().filter(|f| f[0] == 0x6F).count();
    assert_eq!(xfrs, 1);
}

#[test]
fn an_inactive_card_is_present_and_needs_a_power_on() {
    // §6.2.2 SlotStatus with bmCommandStatus 1, bmICCStatus 1 (present, inactive) and
    // bError ICC_MUTE: a card is there; the link is broken until the next power-on.
    let script = vec![
        raw(0x80, 0, 0x00, 0x00, 0, &ATR),
        raw(0x81, 1, 0x41, 0xFE, 0, &[]),
    ];
    let mut t =
        CcidTransport::open(ScriptedPipe::new(script), descriptor(false, 271), 0, "sim").unwrap();
    assert!(t.card_present().unwrap());
    assert!(t.atr().is_none());
}

#[test]
fn power_on_tries_voltages_from_the_lowest_class() {
    // No automatic voltage selection (dwFeatures without 0x08): 1.8 V, then 3 V, 5 V.
    let d = CcidDescriptor::parse(&descriptor_bytes(0x0002_0000, 271)).unwrap();
    let script = vec![
        raw(0x80, 0, 0x41, 0xFE, 0, &[]),  // 1.8 V: ICC_MUTE, card inactive
        raw(0x81, 1, 0x01, 0x00, 0, &[]),  // power off
        raw(0x80, 2, 0x00, 0x00, 0, &ATR), // 3 V: ATR
    ];
    let mut t = CcidTransport::open(ScriptedPipe::new(script), d, 0, "sim").unwrap();
    let written = &t.pipe_mut().written;
    assert_eq!(written[0], h("62 00000000 00 00 03 0000"));
    assert_eq!(written[1], h("63 00000000 00 01 000000"));
    assert_eq!(written[2], h("62 00000000 00 02 02 0000"));
    assert_eq!(t.atr(), Some(&ATR[..]));
}

#[test]
fn the_longest_apdu_and_response_survive_the_smallest_messages() {
    // 65,544 = CLA INS P1 P2 00 Lc(2) 65,535 data bytes Le(2); 65,538 = 65,536 + SW.
    let apdu: Vec<u8> = (0..65_544u32).map(|i| (i % 251) as u8).collect();
    let response: Vec<u8> = (0..65_538u32).map(|i| (i % 241) as u8).collect();
    let answer = response.clone();
    let card: ccid_support::Card = Box::new(move |_| Some(answer.clone()));
    let reader = SimReader::new(true, 271, card);
    let mut t = CcidTransport::open(reader, descriptor(true, 271), 0, "sim").unwrap();
    assert_eq!(
        t.transmit_apdu(&apdu).unwrap().as_slice(),
        response.as_slice()
    );
    assert_eq!(t.pipe_mut().apdus, vec![apdu.clone()]);
    // 252 command parts and 252 response parts, each in its own message.
    let xfrs = t.pipe_mut().frames.iter().filter(|f| f[0] == 0x6F).count();
    assert_eq!(xfrs, 252 + 251);
    let mut too_long = apdu;
    too_long.push(0);
    assert!(matches!(
        t.transmit_apdu(&too_long),
        Err(CcidError::InvalidCommand(_))
    ));
}

// ------------------------------------------------------------------------ properties

fn apdu_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 4..=300),
        proptest::collection::vec(any::<u8>(), 4..=65_544),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_apdu_and_response_survive_extended_chaining(
        apdu in apdu_strategy(),
        response_len in prop_oneof![2usize..=300, 2usize..=65_538],
        max_message_len in prop_oneof![271usize..=600, 271usize..=65_554],
        transfer_size in prop_oneof![Just(usize::MAX), 64usize..=512],
        time_extensions in 0usize..3,
        stale in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let response: Vec<u8> = (0..response_len).map(|i| (i as u8) ^ seed).collect();
        let answer = response.clone();
        let card: ccid_support::Card = Box::new(move |_| Some(answer.clone()));
        let mut reader = SimReader::new(true, max_message_len, card);
        reader.transfer_size = transfer_size;
        reader.time_extensions = time_extensions;
        reader.stale = stale;
        let d = descriptor(true, max_message_len as u32);
        let mut t = CcidTransport::open(reader, d, 0, "sim").unwrap();
        let got = t.transmit_apdu(&apdu).unwrap();
        prop_assert_eq!(got.as_slice(), response.as_slice());
        prop_assert_eq!(&t.pipe_mut().apdus, &vec![apdu]);
    }

    #[test]
    fn garbage_from_the_reader_never_panics_and_is_an_ss_error(
        transfers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..8),
    ) {
        let mut script = vec![raw(0x80, 0, 0, 0, 0, &ATR)];
        script.extend(transfers);
        let mut t = CcidTransport::open(ScriptedPipe::new(script), descriptor(true, 271), 0, "sim")
            .unwrap();
        // Garbage never looks like a whole answer to bSeq 1 with a valid status word…
        // unless it is one; either way nothing panics and errors carry an SS_* code.
        if let Err(e) = t.transmit_apdu(&SELECT_PIV) {
            let code = Error::from(e).code();
            prop_assert!(matches!(code, ErrorCode::TokenError | ErrorCode::TokenNotPresent));
        }
    }

    #[test]
    fn plausible_but_wrong_answers_never_panic(
        answers in proptest::collection::vec(
            (prop_oneof![Just(0x80u8), Just(0x81), any::<u8>()], 0u8..4, any::<u8>(), any::<u8>(),
             prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(0x10), any::<u8>()],
             proptest::collection::vec(any::<u8>(), 0..300)),
            0..12),
    ) {
        let mut script = vec![raw(0x80, 0, 0, 0, 0, &ATR)];
        for (kind, seq_offset, status, error, chain, data) in answers {
            // Mostly our bSeq (1, 2, … as the chain goes on), sometimes another.
            script.push(raw(kind, 1 + seq_offset, status, error, chain, &data));
        }
        let mut t = CcidTransport::open(ScriptedPipe::new(script), descriptor(true, 271), 0, "sim")
            .unwrap();
        if let Err(e) = t.transmit_apdu(&vec![0x5A; 600]) {
            let code = Error::from(e).code();
            prop_assert!(matches!(code, ErrorCode::TokenError | ErrorCode::TokenNotPresent));
        }
    }

    #[test]
    fn descriptors_and_interrupts_from_garbage_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        slots in any::<u8>(),
    ) {
        if let Err(e) = CcidDescriptor::parse(&bytes) {
            let code = Error::from(e).code();
            prop_assert!(matches!(code, ErrorCode::TokenError | ErrorCode::NotSupported));
        }
        let _ = CcidDescriptor::find_in_configuration(&bytes);
        let _ = parse_interrupt(&bytes, slots);
    }
}
