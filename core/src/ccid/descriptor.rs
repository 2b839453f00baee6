//! The CCID class descriptor (USB CCID 1.1, §5.1, Table 5.1-1): what the reader can do and
//! at which level it exchanges with the host.

use super::message::{PowerSelect, HEADER_LEN, MAX_DATA_LEN};
use super::CcidError;

/// `bLength` of the CCID class descriptor.
pub const DESCRIPTOR_LEN: usize = 0x36;
/// `bDescriptorType` of the CCID class descriptor ("functional", §5.1).
pub const DESCRIPTOR_TYPE: u8 = 0x21;
/// USB interface class of smart-card readers (§4.3, `bInterfaceClass`).
pub const INTERFACE_CLASS: u8 = 0x0B;

/// Smallest `dwMaxCCIDMessageLength` that carries any short APDU: 261 + 10 (§5.1).
pub const MIN_MESSAGE_LEN: usize = 261 + HEADER_LEN;

/// `dwFeatures` bits (§5.1).
pub mod features {
    /// Automatic parameter configuration based on ATR data.
    pub const AUTO_PARAMETERS_FROM_ATR: u32 = 0x0000_0002;
    /// Automatic activation of ICC on inserting.
    pub const AUTO_ACTIVATION: u32 = 0x0000_0004;
    /// Automatic ICC voltage selection.
    pub const AUTO_VOLTAGE: u32 = 0x0000_0008;
    /// Automatic ICC clock frequency change.
    pub const AUTO_CLOCK: u32 = 0x0000_0010;
    /// Automatic baud rate change.
    pub const AUTO_BAUD: u32 = 0x0000_0020;
    /// Automatic parameters negotiation.
    pub const AUTO_NEGOTIATION: u32 = 0x0000_0040;
    /// Automatic PPS made by the CCID.
    pub const AUTO_PPS: u32 = 0x0000_0080;
    /// TPDU level exchanges.
    pub const LEVEL_TPDU: u32 = 0x0001_0000;
    /// Short APDU level exchanges.
    pub const LEVEL_SHORT_APDU: u32 = 0x0002_0000;
    /// Short and extended APDU level exchanges.
    pub const LEVEL_EXTENDED_APDU: u32 = 0x0004_0000;
    /// The three exchange-level bits.
    pub const LEVEL_MASK: u32 = 0x0007_0000;
}

/// The exchange level announced in `dwFeatures` (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeLevel {
    /// Character level: the host drives ISO 7816-3 itself (not supported here).
    Character,
    /// TPDU level: the host runs T=0/T=1 (not supported here).
    Tpdu,
    /// Short APDU level: one short APDU per `PC_to_RDR_XfrBlock`.
    ShortApdu,
    /// Short and extended APDU level: APDUs are chained over `wLevelParameter`.
    ExtendedApdu,
}

/// Card supply voltages the reader offers (`bVoltageSupport`, §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Voltages {
    /// 5.0 V.
    pub v5: bool,
    /// 3.0 V.
    pub v3: bool,
    /// 1.8 V.
    pub v1_8: bool,
}

impl Voltages {
    /// The voltages to try at power-on, lowest class first (ISO/IEC 7816-3 activation
    /// starts with the lowest class the interface supports).
    pub fn power_on_order(self) -> Vec<PowerSelect> {
        let mut order = Vec::new();
        if self.v1_8 {
            order.push(PowerSelect::V1_8);
        }
        if self.v3 {
            order.push(PowerSelect::V3);
        }
        if self.v5 {
            order.push(PowerSelect::V5);
        }
        order
    }
}

/// The parts of a CCID class descriptor this module uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcidDescriptor {
    /// `bcdCCID` (e.g. `0x0110`).
    pub bcd_ccid: u16,
    /// `bMaxSlotIndex`: highest slot number.
    pub max_slot_index: u8,
    /// `bVoltageSupport`.
    pub voltages: Voltages,
    /// `dwProtocols`: bit 0 T=0, bit 1 T=1.
    pub protocols: u32,
    /// `dwFeatures`.
    pub features: u32,
    /// The exchange level from `dwFeatures`.
    pub level: ExchangeLevel,
    /// `dwMaxCCIDMessageLength`: longest message in either direction, header included.
    pub max_message_len: usize,
    /// `bMaxCCIDBusySlots`.
    pub max_busy_slots: u8,
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut le = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        le.copy_from_slice(src);
    }
    u32::from_le_bytes(le)
}

impl CcidDescriptor {
    /// Parses the 54-byte class descriptor (`bLength = 0x36`, `bDescriptorType = 0x21`).
    ///
    /// Only APDU-level readers are usable: a TPDU- or character-level reader is refused
    /// with [`CcidError::Unsupported`] (the host would have to run T=0/T=1 itself), as is
    /// one whose `dwMaxCCIDMessageLength` cannot carry a short APDU.
    pub fn parse(bytes: &[u8]) -> Result<Self, CcidError> {
        if bytes.len() < DESCRIPTOR_LEN {
            return Err(CcidError::Descriptor(format!(
                "the CCID class descriptor has {} bytes, it needs {DESCRIPTOR_LEN}",
                bytes.len()
            )));
        }
        if bytes[0] as usize != DESCRIPTOR_LEN {
            return Err(CcidError::Descriptor(format!(
                "bLength is {:#04x}, a CCID class descriptor has 0x36",
                bytes[0]
            )));
        }
        if bytes[1] != DESCRIPTOR_TYPE {
            return Err(CcidError::Descriptor(format!(
                "bDescriptorType is {:#04x}, a CCID class descriptor has 0x21",
                bytes[1]
            )));
        }
        let bcd_ccid = u16::from_le_bytes([bytes[2], bytes[3]]);
        let max_slot_index = bytes[4];
        let v = bytes[5];
        let voltages = Voltages {
            v5: v & 0x01 != 0,
            v3: v & 0x02 != 0,
            v1_8: v & 0x04 != 0,
        };
        let protocols = u32_at(bytes, 6);
        let features = u32_at(bytes, 40);
        let max_message_len = usize::try_from(u32_at(bytes, 44)).unwrap_or(usize::MAX);
        let max_busy_slots = bytes[53];
        let level = match features & features::LEVEL_MASK {
            0 => ExchangeLevel::Character,
            features::LEVEL_TPDU => ExchangeLevel::Tpdu,
            features::LEVEL_SHORT_APDU => ExchangeLevel::ShortApdu,
            features::LEVEL_EXTENDED_APDU => ExchangeLevel::ExtendedApdu,
            other => {
                return Err(CcidError::Descriptor(format!(
                    "dwFeatures announces more than one exchange level ({other:#010x})"
                )))
            }
        };
        match level {
            ExchangeLevel::Character => {
                return Err(CcidError::Unsupported(
                    "this reader exchanges characters (no TPDU/APDU level in dwFeatures); \
                     only APDU-level CCID readers are supported"
                        .into(),
                ))
            }
            ExchangeLevel::Tpdu => {
                return Err(CcidError::Unsupported(
                    "this reader exchanges TPDUs (the host would run T=0/T=1 itself); \
                     only short or extended APDU-level CCID readers are supported"
                        .into(),
                ))
            }
            ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu => {}
        }
        if max_message_len < MIN_MESSAGE_LEN {
            return Err(CcidError::Unsupported(format!(
                "dwMaxCCIDMessageLength {max_message_len} cannot carry a short APDU \
                 (at least {MIN_MESSAGE_LEN})"
            )));
        }
        let max_message_len = max_message_len.min(MAX_DATA_LEN + HEADER_LEN);
        Ok(Self {
            bcd_ccid,
            max_slot_index,
            voltages,
            protocols,
            features,
            level,
            max_message_len,
            max_busy_slots,
        })
    }

    /// Finds and parses the CCID class descriptor in a whole configuration descriptor set
    /// (what Android's `UsbDeviceConnection.getRawDescriptors()` returns): the first
    /// `0x21` descriptor after an interface descriptor of class `0x0B`.
    pub fn find_in_configuration(raw: &[u8]) -> Result<Self, CcidError> {
        let mut rest = raw;
        let mut in_ccid_interface = false;
        while let [len, kind, ..] = *rest {
            let len = len as usize;
            if len < 2 || len > rest.len() {
                return Err(CcidError::Descriptor(format!(
                    "a descriptor of bLength {len} overruns the configuration ({} bytes left)",
                    rest.len()
                )));
            }
            let (this, next) = rest.split_at(len);
            match kind {
                // INTERFACE descriptor (USB 2.0 §9.6.5): bInterfaceClass at offset 5.
                0x04 => in_ccid_interface = this.get(5) == Some(&INTERFACE_CLASS),
                DESCRIPTOR_TYPE if in_ccid_interface => return Self::parse(this),
                _ => {}
            }
            rest = next;
        }
        Err(CcidError::Unsupported(
            "no CCID interface (class 0x0B with a 0x21 class descriptor) on this device".into(),
        ))
    }

    /// Whether the reader powers the card and sets its parameters itself (automatic
    /// voltage selection).
    pub fn auto_voltage(&self) -> bool {
        self.features & features::AUTO_VOLTAGE != 0
    }

    /// Whether the reader activates a card on insertion.
    pub fn auto_activation(&self) -> bool {
        self.features & features::AUTO_ACTIVATION != 0
    }

    /// Largest `abData` of one message (`dwMaxCCIDMessageLength - 10`).
    pub fn max_data_len(&self) -> usize {
        self.max_message_len - HEADER_LEN
    }
}
