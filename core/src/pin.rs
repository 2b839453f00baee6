//! PINs and PUKs: secret, zeroized on drop, validated before any token sees them.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A PIN (or PUK / SO PIN) typed by the user.
///
/// The bytes live in a [`Zeroizing`] buffer that is wiped when the value drops; there is
/// no `Clone`, and `Debug` never shows the value. Only backends read it, through
/// [`Pin::expose`], to hand it to the token.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Takes ownership of a typed PIN. The `String` is moved, not copied.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// Reads one PIN from a line of text, dropping the line ending; the original
    /// buffer is zeroized.
    pub fn from_line(mut line: String) -> Self {
        let trimmed_len = line.trim_end_matches(['\r', '\n']).len();
        // Truncating keeps the same allocation, which the Zeroizing wrapper then owns.
        line.truncate(trimmed_len);
        Self::new(line)
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// True when nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret value, for a backend to pass to the token. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the PIN against the token's policy without touching the token.
    pub fn validate(&self, policy: &PinPolicy) -> Result<()> {
        policy.check(self)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Which characters a token accepts in a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinCharset {
    /// Digits `0`–`9` only (PIV card application PIN).
    Digits,
    /// Printable ASCII (most PKCS#11 DSC tokens).
    PrintableAscii,
}

/// Length and charset rules of a token's PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinPolicy {
    /// Shortest PIN the token accepts.
    pub min_len: usize,
    /// Longest PIN the token accepts.
    pub max_len: usize,
    /// Allowed characters.
    pub charset: PinCharset,
}

impl PinPolicy {
    /// Upper bound on any PIN we pass on, whatever a module reports (some report `ULONG_MAX`).
    pub const ABSOLUTE_MAX: usize = 64;

    /// A policy from a token's reported min/max, sanitised: a reported 0 or absurd value is
    /// replaced by sensible bounds (min at least 1, max at most [`Self::ABSOLUTE_MAX`]).
    pub fn from_token(min_len: usize, max_len: usize, charset: PinCharset) -> Self {
        let min_len = min_len.clamp(1, Self::ABSOLUTE_MAX);
        let max_len = if max_len == 0 {
            Self::ABSOLUTE_MAX
        } else {
            max_len.clamp(min_len, Self::ABSOLUTE_MAX)
        };
        Self {
            min_len,
            max_len,
            charset,
        }
    }

    fn check(&self, pin: &Pin) -> Result<()> {
        let len = pin.len();
        let charset_ok = pin.expose().chars().all(|c| match self.charset {
            PinCharset::Digits => c.is_ascii_digit(),
            PinCharset::PrintableAscii => c.is_ascii_graphic() || c == ' ',
        });
        if len < self.min_len || len > self.max_len || !charset_ok {
            return Err(Error::PinFormat {
                min: self.min_len,
                max: self.max_len,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: usize, max: usize) -> PinPolicy {
        PinPolicy::from_token(min, max, PinCharset::PrintableAscii)
    }

    #[test]
    fn debug_never_shows_the_value() {
        let pin = Pin::new("123456".to_owned());
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn from_line_strips_line_endings_only() {
        assert_eq!(Pin::from_line("12 34\r\n".to_owned()).expose(), "12 34");
        assert_eq!(Pin::from_line("1234".to_owned()).expose(), "1234");
    }

    #[test]
    fn length_is_checked_against_the_token_policy() {
        let p = policy(4, 8);
        assert!(Pin::new("1234".into()).validate(&p).is_ok());
        assert!(Pin::new("12345678".into()).validate(&p).is_ok());
        let short = Pin::new("123".into()).validate(&p).unwrap_err();
        assert_eq!(short.code(), crate::ErrorCode::PinFormat);
        assert!(Pin::new("123456789".into()).validate(&p).is_err());
        assert!(Pin::new(String::new()).validate(&p).is_err());
    }

    #[test]
    fn charset_rules_apply() {
        let digits = PinPolicy::from_token(6, 8, PinCharset::Digits);
        assert!(Pin::new("123456".into()).validate(&digits).is_ok());
        assert!(Pin::new("12345a".into()).validate(&digits).is_err());
        let ascii = policy(4, 16);
        assert!(Pin::new("pass word".into()).validate(&ascii).is_ok());
        assert!(Pin::new("pass\u{0}word".into()).validate(&ascii).is_err());
        assert!(Pin::new("pässword".into()).validate(&ascii).is_err());
    }

    #[test]
    fn absurd_token_bounds_are_sanitised() {
        let p = PinPolicy::from_token(0, usize::MAX, PinCharset::PrintableAscii);
        assert_eq!(p.min_len, 1);
        assert_eq!(p.max_len, PinPolicy::ABSOLUTE_MAX);
        let p = PinPolicy::from_token(4, 0, PinCharset::PrintableAscii);
        assert_eq!(p.max_len, PinPolicy::ABSOLUTE_MAX);
    }
}
