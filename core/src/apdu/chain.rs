//! ISO/IEC 7816-4 chaining over a transport of single short APDUs.
//!
//! * Command chaining (§5.3.3): data longer than [`MAX_SHORT_DATA`] goes out in 255-byte
//!   parts, every part but the last with the chaining bit `0x10` in CLA; each intermediate
//!   part must be answered `9000`.
//! * `61xx`: more response data waits; fetched with GET RESPONSE (`Le = xx`).
//! * `6Cxx`: wrong `Le`; the same command is sent once more with `Le = xx`. Only for
//!   commands that expect a response body — PIN commands (sent without `Le`) are never
//!   sent twice.

use zeroize::Zeroizing;

use super::{ApduTransport, Command, Response, TransportError};

/// Longest command data of one short APDU.
pub const MAX_SHORT_DATA: usize = 255;

/// Largest complete response we accept (a certificate object is a few KiB).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// Most GET RESPONSE rounds one command may take: [`MAX_RESPONSE`] in answers of 128
/// bytes. A card that keeps answering `61xx` (with or without data) past this is broken
/// or hostile; the exchange ends as [`TransportError::Malformed`] instead of looping.
pub const MAX_GET_RESPONSE_ROUNDS: usize = MAX_RESPONSE / 128;

/// GET RESPONSE instruction.
const INS_GET_RESPONSE: u8 = 0xC0;

/// Sends one short APDU and returns the raw answer (`data || SW1 SW2`).
pub(crate) type SendApdu<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, TransportError> + 'a;

/// Sends `command` over `transport` with command and response chaining.
///
/// A status word other than `9000` on the final part is returned in the [`Response`]
/// (it is the card's answer); an intermediate part of a chained command answered with
/// anything but `9000` ends the exchange with that status word.
pub fn exchange<T: ApduTransport + ?Sized>(
    transport: &mut T,
    command: &Command,
) -> Result<Response, TransportError> {
    exchange_with(&mut |apdu| transport.transmit(apdu), command)
}

/// [`exchange`] over any "send one short APDU" function (used inside PC/SC transactions).
pub(crate) fn exchange_with(
    send: &mut SendApdu<'_>,
    command: &Command,
) -> Result<Response, TransportError> {
    let mut parts = command.data.chunks(MAX_SHORT_DATA).peekable();
    if command.data.is_empty() {
        let apdu = short_apdu(
            command,
            command.cla,
            &[],
            command.expect_response.then_some(0),
        );
        return collect_response(send, command, apdu);
    }
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if last {
            let le = command.expect_response.then_some(0);
            let apdu = short_apdu(command, command.cla, part, le);
            return collect_response(send, command, apdu);
        }
        let apdu = short_apdu(command, command.cla | 0x10, part, None);
        let reply = Response::from_raw(send(&apdu)?)?;
        if !reply.sw.is_ok() {
            return Ok(reply);
        }
    }
    Err(TransportError::Malformed("empty command chain".into()))
}

/// Sends the final (or only) APDU and follows `61xx` (at most
/// [`MAX_GET_RESPONSE_ROUNDS`] times, at most [`MAX_RESPONSE`] bytes) / `6Cxx` (once).
fn collect_response(
    send: &mut SendApdu<'_>,
    command: &Command,
    mut apdu: Zeroizing<Vec<u8>>,
) -> Result<Response, TransportError> {
    let mut reply = Response::from_raw(send(&apdu)?)?;
    if reply.sw.sw1() == 0x6C && command.expect_response {
        // Wrong Le: the card tells the right one. Resend once with it.
        if let Some(le) = apdu.last_mut() {
            *le = reply.sw.sw2();
        }
        reply = Response::from_raw(send(&apdu)?)?;
    }
    let mut data = std::mem::take(&mut reply.data);
    let mut sw = reply.sw;
    let mut rounds = 0usize;
    while sw.sw1() == 0x61 {
        rounds += 1;
        if rounds > MAX_GET_RESPONSE_ROUNDS {
            return Err(TransportError::Malformed(format!(
                "the card still had more data after {MAX_GET_RESPONSE_ROUNDS} GET RESPONSE rounds"
            )));
        }
        let get_response = [command.cla & 0x03, INS_GET_RESPONSE, 0, 0, sw.sw2()];
        let more = Response::from_raw(send(&get_response)?)?;
        data.extend_from_slice(&more.data);
        if data.len() > MAX_RESPONSE {
            return Err(TransportError::Malformed(format!(
                "response longer than {MAX_RESPONSE} bytes"
            )));
        }
        sw = more.sw;
    }
    Ok(Response { data, sw })
}

/// `CLA INS P1 P2 [Lc data] [Le]` for one short APDU (`Le = 0` means 256), in a
/// zeroizing buffer sized up front (no reallocation leaves a copy of a PIN behind).
fn short_apdu(command: &Command, cla: u8, data: &[u8], le: Option<u8>) -> Zeroizing<Vec<u8>> {
    let mut apdu = Zeroizing::new(Vec::with_capacity(6 + data.len()));
    apdu.extend_from_slice(&[cla, command.ins, command.p1, command.p2]);
    if !data.is_empty() {
        // `data` comes from `chunks(MAX_SHORT_DATA)`, so its length fits in one byte.
        apdu.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        apdu.extend_from_slice(data);
    }
    if let Some(le) = le {
        apdu.push(le);
    }
    apdu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::StatusWord;
    use std::collections::VecDeque;

    /// Replays canned card answers and records what was sent: protocol framing only.
    /// The real card exercises the same paths in `core/tests/piv_*.rs`.
    struct Script {
        answers: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    impl Script {
        fn new(answers: &[&[u8]]) -> Self {
            Self {
                answers: answers.iter().map(|a| a.to_vec()).collect(),
                sent: Vec::new(),
            }
        }
        fn run(&mut self, command: &Command) -> Result<Response, TransportError> {
            let answers = &mut self.answers;
            let sent = &mut self.sent;
            exchange_with(
                &mut |apdu| {
                    sent.push(apdu.to_vec());
                    answers
                        .pop_front()
                        .ok_or_else(|| TransportError::Other("script exhausted".into()))
                },
                command,
            )
        }
    }

    #[test]
    fn response_chaining_follows_61xx_with_get_response() {
        let mut card = Script::new(&[&[1, 2, 0x61, 0x03], &[3, 4, 5, 0x90, 0x00]]);
        let reply = card
            .run(&Command::new(0, 0xCB, 0x3F, 0xFF, vec![0x5C]))
            .unwrap();
        assert_eq!(reply.data, vec![1, 2, 3, 4, 5]);
        assert!(reply.sw.is_ok());
        assert_eq!(card.sent[0], vec![0, 0xCB, 0x3F, 0xFF, 1, 0x5C, 0]);
        assert_eq!(card.sent[1], vec![0, 0xC0, 0, 0, 3]);
    }

    #[test]
    fn wrong_le_is_corrected_once() {
        let mut card = Script::new(&[&[0x6C, 0x10], &[7; 0x12]]);
        card.answers[1][0x10] = 0x90;
        card.answers[1][0x11] = 0x00;
        let reply = card.run(&Command::new(0, 0xCA, 0, 0, vec![])).unwrap();
        assert_eq!(reply.data, vec![7; 0x10]);
        assert_eq!(
            card.sent,
            vec![vec![0, 0xCA, 0, 0, 0], vec![0, 0xCA, 0, 0, 0x10]]
        );
    }

    #[test]
    fn a_command_without_le_is_never_resent() {
        let mut card = Script::new(&[&[0x6C, 0x10], &[0x90, 0x00]]);
        let verify = Command::new(0, 0x20, 0, 0x80, vec![0x31; 8]).without_response();
        let reply = card.run(&verify).unwrap();
        assert_eq!(reply.sw, StatusWord(0x6C10));
        assert_eq!(card.sent.len(), 1, "a PIN command goes out once");
        assert_eq!(card.sent[0].len(), 13, "no Le byte");
    }

    #[test]
    fn long_data_is_command_chained() {
        let data: Vec<u8> = (0..300u16).map(|i| (i % 251) as u8).collect();
        let mut card = Script::new(&[&[0x90, 0x00], &[9, 0x90, 0x00]]);
        let reply = card
            .run(&Command::new(0, 0x87, 0x07, 0x9C, data.clone()))
            .unwrap();
        assert_eq!(reply.data, vec![9]);
        assert_eq!(card.sent[0][0], 0x10, "chaining bit on the first part");
        assert_eq!(card.sent[0][4], 255);
        assert_eq!(&card.sent[0][5..], &data[..255]);
        assert_eq!(card.sent[1][0], 0x00, "no chaining bit on the last part");
        assert_eq!(card.sent[1][4], 45);
        assert_eq!(&card.sent[1][5..50], &data[255..]);
        assert_eq!(card.sent[1][50], 0, "Le on the last part only");
    }

    #[test]
    fn a_refused_intermediate_part_ends_the_chain() {
        let mut card = Script::new(&[&[0x6A, 0x80]]);
        let reply = card
            .run(&Command::new(0, 0x87, 7, 0x9C, vec![0; 400]))
            .unwrap();
        assert_eq!(reply.sw, StatusWord(0x6A80));
        assert_eq!(card.sent.len(), 1);
    }

    /// Runs `command` against a card that answers every APDU with `answer`, giving up
    /// (with a transport error) after `limit` APDUs so a missing cap fails, not hangs.
    fn endless(
        command: &Command,
        answer: &[u8],
        limit: usize,
    ) -> (Result<Response, TransportError>, usize) {
        let mut sent = 0usize;
        let result = exchange_with(
            &mut |_apdu| {
                sent += 1;
                if sent > limit {
                    return Err(TransportError::Other("the card never stopped".into()));
                }
                Ok(answer.to_vec())
            },
            command,
        );
        (result, sent)
    }

    #[test]
    fn a_card_answering_61xx_without_data_forever_is_malformed_after_a_bounded_number_of_rounds() {
        let command = Command::new(0, 0xCB, 0x3F, 0xFF, vec![0x5C, 0x03, 0x5F, 0xC1, 0x05]);
        for sw2 in [0x00, 0x01, 0x10] {
            let (result, sent) = endless(&command, &[0x61, sw2], 100_000);
            let err = result.unwrap_err();
            assert!(matches!(err, TransportError::Malformed(_)), "{err:?}");
            assert!(sent <= MAX_GET_RESPONSE_ROUNDS + 1, "{sent} APDUs");
        }
    }

    #[test]
    fn a_card_trickling_one_byte_per_61xx_round_is_capped() {
        let command = Command::new(0, 0xCB, 0x3F, 0xFF, vec![0x5C]);
        let (result, sent) = endless(&command, &[0xAA, 0x61, 0x01], 1_000_000);
        assert!(
            matches!(result, Err(TransportError::Malformed(_))),
            "{result:?}"
        );
        assert!(sent <= MAX_GET_RESPONSE_ROUNDS + 1, "{sent} APDUs");
    }

    #[test]
    fn a_card_answering_6cxx_forever_gets_one_resend_and_no_loop() {
        let command = Command::new(0, 0xCA, 0, 0, vec![]);
        let (result, sent) = endless(&command, &[0x6C, 0x10], 100);
        assert_eq!(result.unwrap().sw, StatusWord(0x6C10));
        assert_eq!(sent, 2, "the first APDU and one resend");
        // A command without Le is never resent, whatever the card says.
        let verify = Command::new(0, 0x20, 0, 0x80, vec![0x31; 8]).without_response();
        let (result, sent) = endless(&verify, &[0x6C, 0x10], 100);
        assert_eq!(result.unwrap().sw, StatusWord(0x6C10));
        assert_eq!(sent, 1);
    }

    #[test]
    fn an_empty_answer_is_a_card_that_went_away() {
        let mut card = Script::new(&[&[]]);
        let err = card.run(&Command::new(0, 0xCA, 0, 0, vec![])).unwrap_err();
        assert_eq!(err, TransportError::CardAbsent);
    }

    #[test]
    fn truncated_responses_are_malformed() {
        let mut card = Script::new(&[&[0x90]]);
        let err = card.run(&Command::new(0, 0xCA, 0, 0, vec![])).unwrap_err();
        assert!(matches!(err, TransportError::Malformed(_)));
    }
}
