//! ISO 7816-4 chaining (`securesign_core::apdu::exchange`) against a scripted card.
//!
//! Input: `CLA INS P1 P2`, a flags byte (bit 0: the command expects a response body;
//! bit 1: once the script is used up the card repeats its last answer forever, as a
//! stuck card does, instead of leaving), the command data (a chunk), then the card's
//! answers (chunks).
//!
//! Properties: no panic and no endless exchange (a bounded number of APDUs, whatever
//! the card answers); every APDU sent is a well-formed short APDU; command data goes
//! out in order, each part once, with the chaining bit on all parts but the last; a
//! command without `Le` (a PIN command) is never sent twice; only GET RESPONSE follows
//! the final part, except one resend after `6Cxx` for commands with `Le`; the complete
//! response is at most 64 KiB plus one short answer.

use std::sync::{Arc, Mutex, PoisonError};

use securesign_core::apdu::{exchange, ApduTransport, Command, TransportError, MAX_SHORT_DATA};

use crate::input::Input;

/// More APDUs than any bounded exchange of one command needs (64 KiB of response in
/// one-byte GET RESPONSE answers, plus the command parts): past this the exchange is
/// looping on the card's answers.
pub const MAX_APDUS: usize = 64 * 1024 + 300;

/// What a [`ScriptedCard`] was sent and answered, in order (shared with the test, as
/// the backend under test owns the card).
pub type Log = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// A card that answers from a script and records what it was sent.
pub struct ScriptedCard<'a> {
    answers: Vec<&'a [u8]>,
    next: usize,
    repeat_last: bool,
    /// Every APDU received, with the answer (empty when the card was gone).
    pub log: Log,
}

impl<'a> ScriptedCard<'a> {
    /// A card answering `answers` in order; afterwards it is gone, or (with
    /// `repeat_last`) repeats the last answer forever.
    pub fn new(answers: Vec<&'a [u8]>, repeat_last: bool) -> Self {
        Self {
            answers,
            next: 0,
            repeat_last,
            log: Log::default(),
        }
    }
}

impl ApduTransport for ScriptedCard<'_> {
    fn reader_name(&self) -> &str {
        "scripted card"
    }

    fn card_present(&mut self) -> Result<bool, TransportError> {
        Ok(self.next < self.answers.len() || self.repeat_last)
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            log.len() < MAX_APDUS,
            "more than {MAX_APDUS} APDUs for one command: the exchange does not end"
        );
        check_short_apdu(apdu);
        let answer = match self.answers.get(self.next) {
            Some(answer) => {
                self.next += 1;
                answer
            }
            None if self.repeat_last && !self.answers.is_empty() => {
                self.answers[self.answers.len() - 1]
            }
            None => {
                log.push((apdu.to_vec(), Vec::new()));
                return Err(TransportError::CardAbsent);
            }
        };
        log.push((apdu.to_vec(), answer.to_vec()));
        Ok(answer.to_vec())
    }
}

/// Asserts `apdu` is `CLA INS P1 P2 [Lc data] [Le]` with a consistent `Lc`.
pub fn check_short_apdu(apdu: &[u8]) {
    assert!(apdu.len() >= 4, "APDU of {} bytes", apdu.len());
    assert!(
        apdu.len() <= 4 + 1 + 255 + 1,
        "APDU of {} bytes",
        apdu.len()
    );
    let body = &apdu[4..];
    match body.len() {
        0 | 1 => {}
        n => {
            let lc = usize::from(body[0]);
            assert!(lc >= 1, "Lc of 0 with a body: {apdu:02X?}");
            assert!(
                n == 1 + lc || n == 2 + lc,
                "Lc {lc} does not match a body of {n} bytes: {apdu:02X?}"
            );
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let header = [input.byte(), input.byte(), input.byte(), input.byte()];
    let flags = input.byte();
    // CLA with the chaining bit or an INS of GET RESPONSE would confuse the checks
    // below; the core never builds such commands.
    let cla = header[0] & !0x10;
    let ins = if header[1] == 0xC0 { 0xCA } else { header[1] };
    let command_data = input.chunk().to_vec();
    let mut command = Command::new(cla, ins, header[2], header[3], command_data.clone());
    if flags & 1 == 0 {
        command = command.without_response();
    }
    let mut answers = Vec::new();
    while !input.is_empty() {
        answers.push(input.chunk());
    }
    let mut card = ScriptedCard::new(answers, flags & 2 != 0);
    let result = exchange(&mut card, &command);
    let log = card.log.lock().unwrap_or_else(PoisonError::into_inner);
    let sent: Vec<&Vec<u8>> = log.iter().map(|(apdu, _)| apdu).collect();

    // The command's parts: each once, in order, chaining bit on all but the last.
    let parts: Vec<&[u8]> = if command_data.is_empty() {
        vec![&[][..]]
    } else {
        command_data.chunks(MAX_SHORT_DATA).collect()
    };
    let mut sent = sent.into_iter();
    let mut parts_sent = 0;
    for (i, part) in parts.iter().enumerate() {
        let Some(apdu) = sent.next() else { break };
        let last = i + 1 == parts.len();
        assert_eq!(apdu[1], ins, "part {i} has another INS");
        assert_eq!(apdu[2..4], header[2..4], "part {i} has other P1 P2");
        assert_eq!(
            apdu[0],
            if last { cla } else { cla | 0x10 },
            "CLA of part {i}"
        );
        if !part.is_empty() {
            assert_eq!(usize::from(apdu[4]), part.len(), "Lc of part {i}");
            assert_eq!(&apdu[5..5 + part.len()], *part, "data of part {i}");
        }
        let has_le = apdu.len() > 4 + if part.is_empty() { 0 } else { 1 + part.len() };
        assert_eq!(has_le, last && command.expect_response, "Le on part {i}");
        parts_sent += 1;
        if last {
            break;
        }
    }
    // After the final part: GET RESPONSE only, or one resend for 6Cxx (with Le).
    let mut resends = 0;
    for apdu in sent {
        if apdu[1] == 0xC0 && apdu.len() == 5 {
            assert_eq!(apdu[0], cla & 0x03, "GET RESPONSE on another channel");
            continue;
        }
        assert!(
            command.expect_response,
            "a command without Le was sent again: {apdu:02X?}"
        );
        assert_eq!(parts_sent, parts.len(), "resend before the last part");
        resends += 1;
        assert!(resends <= 1, "the command was resent more than once");
    }
    if let Ok(response) = result {
        assert!(
            response.data.len() <= 64 * 1024 + 256,
            "{} bytes of response accepted",
            response.data.len()
        );
    }
}
