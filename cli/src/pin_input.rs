//! Reading PINs: a no-echo prompt, or lines on standard input. Never argv, never env.
//!
//! `--pin-stdin` reads standard input **unbuffered**, one byte at a time, from a duplicate
//! of descriptor 0 into a zeroizing buffer sized once (it never reallocates): Rust's
//! `std::io::stdin()` keeps an 8 KiB buffer for the life of the process, which would hold
//! every PIN line (and whatever followed it) until exit. Nothing after the PIN's line
//! ending is read. The terminal prompt is `rpassword`'s, which reads `/dev/tty` unbuffered
//! in raw mode into a zeroizing string.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;

use securesign_core::{Error, Pin, PinPolicy, Result};
use zeroize::Zeroizing;

/// Longest line accepted as a PIN (the longest PIN any token takes, plus CR LF).
const MAX_LINE: usize = PinPolicy::ABSOLUTE_MAX + 2;

/// Where PINs come from.
pub struct PinSource {
    stdin: bool,
}

impl PinSource {
    /// `--pin-stdin` reads lines; otherwise the terminal is asked without echo.
    pub fn new(stdin: bool) -> Self {
        Self { stdin }
    }

    /// Reads one PIN, prompting with `prompt` on a terminal.
    pub fn read(&self, prompt: &str) -> Result<Pin> {
        if self.stdin {
            return read_stdin_line(prompt.trim_end_matches(": "));
        }
        rpassword::prompt_password(prompt)
            .map(Pin::new)
            .map_err(|e| Error::BadRequest(format!("cannot read the PIN from the terminal: {e}")))
    }

    /// Reads a new PIN; on a terminal it is asked twice and must match.
    pub fn read_new(&self, prompt: &str) -> Result<Pin> {
        let first = self.read(prompt)?;
        if self.stdin {
            return Ok(first);
        }
        let again = self.read("Repeat the new PIN: ")?;
        if first.expose() != again.expose() {
            return Err(Error::BadRequest("the two new PINs differ".into()));
        }
        Ok(first)
    }
}

/// Reads one line from descriptor 0 without a user-space buffer: a `File` over a duplicate
/// of the descriptor, one `read(2)` of one byte at a time, into a buffer allocated once.
fn read_stdin_line(what: &str) -> Result<Pin> {
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::BadRequest(format!("cannot read the PIN from stdin: {e}")))?;
    read_line_from(File::from(fd), what)
}

/// Reads bytes up to `\n` (dropping a `\r` before it) into a zeroizing buffer of fixed
/// capacity; the allocation is handed to the [`Pin`] as is.
fn read_line_from(mut input: impl Read, what: &str) -> Result<Pin> {
    let mut line = Zeroizing::new(Vec::<u8>::with_capacity(MAX_LINE));
    let mut byte = Zeroizing::new([0u8; 1]);
    loop {
        match input.read(&mut byte[..]) {
            Ok(0) if line.is_empty() => {
                return Err(Error::BadRequest(format!(
                    "standard input ended before the {what}"
                )))
            }
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                if line.len() == MAX_LINE {
                    return Err(Error::BadRequest(format!(
                        "the {what} line on standard input is longer than {} characters",
                        PinPolicy::ABSOLUTE_MAX
                    )));
                }
                line.push(byte[0]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::BadRequest(format!(
                    "cannot read the {what} from stdin: {e}"
                )))
            }
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    // Move the allocation out (no copy); the emptied wrapper has nothing left to wipe.
    let bytes = std::mem::take(&mut *line);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Pin::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(Error::BadRequest(format!(
                "the {what} on standard input is not UTF-8 text"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_up_to_its_end_and_no_further() {
        let mut input: &[u8] = b"123456\r\nnext line\n";
        let pin = read_line_from(&mut input, "PIN").unwrap();
        assert_eq!(pin.expose(), "123456");
        assert_eq!(
            input, b"next line\n",
            "nothing after the PIN line is consumed"
        );
    }

    #[test]
    fn the_last_line_needs_no_newline_but_empty_input_is_an_error() {
        let pin = read_line_from(&b"2468"[..], "PIN").unwrap();
        assert_eq!(pin.expose(), "2468");
        let err = read_line_from(&b""[..], "PUK").err().unwrap();
        assert!(err.to_string().contains("ended before the PUK"), "{err}");
    }

    #[test]
    fn an_overlong_line_is_refused_without_growing_the_buffer() {
        let long = [b'1'; MAX_LINE + 1];
        let err = read_line_from(&long[..], "PIN").err().unwrap();
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
