//! The card as vpcd sees it: ISO 7816-4 transport around the PIV application.
//!
//! `piv-authenticator` handles one complete command at a time and writes its whole answer into a
//! buffer; on a real token the APDU dispatcher of the firmware does the rest. This module does
//! that part for the virtual card:
//!
//! * command chaining (CLA bit `0x10`): parts are collected until the last one arrives;
//! * response chaining: an answer longer than the reader asked for (`Le`, 256 for short APDUs)
//!   is split, the card answers `61xx` and hands out the rest through GET RESPONSE (`INS C0`);
//! * reset and power-off drop the PIN verification (VERIFY with `P1=FF`), as a real card's volatile
//!   security status is lost when it loses power. The application does not do this on its own.

use heapless::Vec as HeaplessVec;
use iso7816::{command::CommandView, Status};
use piv_authenticator::{Authenticator, Client};

/// Largest answer the PIV application can produce (a 4 KiB certificate object plus framing).
const REPLY_CAPACITY: usize = 8192;

/// Largest command body accepted through command chaining (PUT DATA of a large certificate).
const MAX_CHAINED_DATA: usize = 8192;

/// Instruction byte of GET RESPONSE.
const INS_GET_RESPONSE: u8 = 0xC0;

/// VERIFY with `P1=FF`, `P2=80`: "reset the security status of the PIV card application PIN".
const LOGOUT_APDU: [u8; 4] = [0x00, 0x20, 0xFF, 0x80];

/// Answer-to-reset: T=1, historical bytes naming no particular vendor.
///
/// Kept equal to the `vpicc` default so that OpenSC picks its PIV driver by probing the AID.
const ATR: &[u8] = vpicc::DEFAULT_ATR;

/// Status words the transport layer itself produces.
mod sw {
    pub const OK: [u8; 2] = [0x90, 0x00];
    pub const WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
    pub const CLASS_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];
    pub const CONDITIONS_NOT_SATISFIED: [u8; 2] = [0x69, 0x85];
    pub const LAST_COMMAND_OF_CHAIN_EXPECTED: [u8; 2] = [0x68, 0x83];
}

/// A command chain being collected.
struct PendingChain {
    /// CLA (without the chaining bit), INS, P1, P2 of the first part; later parts must match.
    header: [u8; 4],
    data: Vec<u8>,
}

/// The virtual PIV card: the application plus the transport state between APDUs.
pub struct VirtualPivCard<C: Client> {
    app: Authenticator<C>,
    chain: Option<PendingChain>,
    /// Answer bytes not yet fetched with GET RESPONSE.
    unread: Vec<u8>,
}

impl<C: Client> VirtualPivCard<C> {
    /// Wraps a PIV application.
    pub fn new(app: Authenticator<C>) -> Self {
        Self {
            app,
            chain: None,
            unread: Vec::new(),
        }
    }

    /// Handles one command APDU and returns the response APDU (data followed by SW1 SW2).
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let command = match CommandView::try_from(apdu) {
            Ok(command) => command,
            Err(iso7816::command::FromSliceError::InvalidClass) => {
                return sw::CLASS_NOT_SUPPORTED.to_vec()
            }
            Err(_) => return sw::WRONG_LENGTH.to_vec(),
        };
        let limit = response_limit(&command);
        let cla = command.class().into_inner();
        let ins: u8 = command.instruction().into();

        if ins == INS_GET_RESPONSE && cla & 0x10 == 0 {
            return self.get_response(limit);
        }
        // Any other command abandons an answer that was not fully read.
        self.unread.clear();

        let header = [cla & !0x10, ins, command.p1, command.p2];
        if command.class().chain().not_the_last() {
            return self.collect_chain_part(header, command.data());
        }
        match self.chain.take() {
            None => self.run(command, limit),
            Some(mut chain) => {
                if chain.header != header {
                    return sw::LAST_COMMAND_OF_CHAIN_EXPECTED.to_vec();
                }
                chain.data.extend_from_slice(command.data());
                let joined = extended_apdu(header, &chain.data);
                match CommandView::try_from(joined.as_slice()) {
                    Ok(joined_command) => self.run(joined_command, limit),
                    Err(_) => sw::WRONG_LENGTH.to_vec(),
                }
            }
        }
    }

    /// Drops transport state and the PIN verification, as a card losing power would.
    pub fn reset(&mut self) {
        self.chain = None;
        self.unread.clear();
        let mut reply = HeaplessVec::<u8, 16>::new();
        // Logout cannot fail for a well-formed command; log if the application disagrees.
        match CommandView::try_from(LOGOUT_APDU.as_slice()) {
            Ok(logout) => {
                if let Err(status) = self.app.respond(logout, reply.as_mut_view()) {
                    log::warn!("logout on reset answered {:04X}", u16::from(status));
                }
            }
            Err(err) => log::error!("logout APDU does not parse: {err:?}"),
        }
        log::debug!("card reset: PIN verification dropped");
    }

    fn collect_chain_part(&mut self, header: [u8; 4], data: &[u8]) -> Vec<u8> {
        let chain = self.chain.get_or_insert_with(|| PendingChain {
            header,
            data: Vec::new(),
        });
        if chain.header != header {
            self.chain = None;
            return sw::LAST_COMMAND_OF_CHAIN_EXPECTED.to_vec();
        }
        if chain.data.len() + data.len() > MAX_CHAINED_DATA {
            self.chain = None;
            return sw::WRONG_LENGTH.to_vec();
        }
        chain.data.extend_from_slice(data);
        sw::OK.to_vec()
    }

    fn run(&mut self, command: CommandView<'_>, limit: usize) -> Vec<u8> {
        let mut reply = Box::new(HeaplessVec::<u8, REPLY_CAPACITY>::new());
        match self.app.respond(command, reply.as_mut_view()) {
            Ok(()) if reply.is_empty() => sw::OK.to_vec(),
            Ok(()) => {
                self.unread = reply.to_vec();
                self.get_response(limit)
            }
            Err(status) => status_bytes(status).to_vec(),
        }
    }

    /// Hands out up to `limit` unread answer bytes, with `61xx` while more remain.
    fn get_response(&mut self, limit: usize) -> Vec<u8> {
        if self.unread.is_empty() {
            return sw::CONDITIONS_NOT_SATISFIED.to_vec();
        }
        let take = limit.min(self.unread.len());
        let mut response: Vec<u8> = self.unread.drain(..take).collect();
        let remaining = self.unread.len();
        if remaining == 0 {
            response.extend_from_slice(&sw::OK);
        } else {
            // 61 00 means "256 or more bytes remain".
            let announced = u8::try_from(remaining).unwrap_or(0);
            response.extend_from_slice(&[0x61, announced]);
        }
        response
    }

    /// The answer-to-reset of this card.
    pub fn atr(&self) -> &'static [u8] {
        ATR
    }
}

/// How many answer bytes may go out in one response to `command`.
///
/// A short APDU gets at most 256 bytes (or its `Le`); an extended one gets at most its `Le`.
/// Without `Le` the card still sends data it has (as the PIV application expects readers to
/// read certificates with `Le` absent), capped at 256 bytes.
fn response_limit(command: &CommandView<'_>) -> usize {
    match command.expected() {
        0 => 256,
        le => le,
    }
}

/// Serialises an (already unchained) command as one extended-length APDU.
fn extended_apdu(header: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut apdu = Vec::with_capacity(data.len() + 9);
    apdu.extend_from_slice(&header);
    if data.is_empty() {
        apdu.extend_from_slice(&[0x00, 0x00, 0x00]);
        return apdu;
    }
    let lc = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes();
    apdu.push(0x00);
    apdu.extend_from_slice(&lc);
    apdu.extend_from_slice(data);
    // Le = 65536 (any length).
    apdu.extend_from_slice(&[0x00, 0x00]);
    apdu
}

fn status_bytes(status: Status) -> [u8; 2] {
    status.into()
}

impl<C: Client> vpicc::VSmartCard for VirtualPivCard<C> {
    fn atr(&self) -> &[u8] {
        VirtualPivCard::atr(self)
    }

    fn power_on(&mut self) {
        log::debug!("power on");
    }

    fn power_off(&mut self) {
        log::debug!("power off");
        self.reset();
    }

    fn reset(&mut self) {
        VirtualPivCard::reset(self);
    }

    fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.transmit(apdu)
    }
}
