//! Reading PINs: a no-echo prompt, or lines on standard input. Never argv, never env.

use std::io::BufRead;

use securesign_core::{Error, Pin, Result};

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
            let mut line = String::new();
            let read = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::BadRequest(format!("cannot read the PIN from stdin: {e}")));
            let pin = Pin::from_line(line);
            return match read {
                Ok(0) => Err(Error::BadRequest(format!(
                    "standard input ended before the {}",
                    prompt.trim_end_matches(": ")
                ))),
                Ok(_) => Ok(pin),
                Err(e) => Err(e),
            };
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
