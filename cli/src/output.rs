//! Printing results: short human text, or JSON with stable field names.

use std::io::Write;

use securesign_core::{Error, ErrorBody, PinState, RetryIndicator};
use serde::Serialize;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
}

impl Printer {
    /// JSON when `json`, human text otherwise.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether machine output was asked for.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or `human` as text.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        let mut out = std::io::stdout().lock();
        let text = if self.json {
            serde_json::to_string_pretty(value)
                .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise output: {e}\"}}"))
        } else {
            human()
        };
        let _ = writeln!(out, "{text}");
    }

    /// Prints an error: JSON on stdout (`{"error":{code,message,resolution,retries?}}`), or
    /// `error[SS_…]: message` and the resolution on stderr.
    pub fn error(&self, err: &Error) {
        self.error_body(&err.body());
    }

    /// [`Printer::error`] for an error known by its body (e.g. one the server reported).
    pub fn error_body(&self, body: &ErrorBody) {
        if self.json {
            self.print(&serde_json::json!({ "error": body }), String::new);
        } else {
            let mut line = format!("error[{}]: {}", body.code, body.message);
            if let Some(retries) = body.retries {
                line.push_str(&format!(" ({})", describe_retries(retries)));
            }
            eprintln!("{line}\n  {}", body.resolution);
        }
    }
}

/// "2 tries left", "final try", … for people.
pub fn describe_retries(retries: securesign_core::Retries) -> String {
    match (retries.indicator, retries.remaining) {
        (RetryIndicator::Locked, _) => "no tries left".into(),
        (_, Some(1)) | (RetryIndicator::FinalTry, _) => "final try left".into(),
        (_, Some(n)) => format!("{n} tries left"),
        (RetryIndicator::Low, None) => "tries left: low (a wrong PIN was entered)".into(),
        (RetryIndicator::MoreThanOne, None) => "more than one try left".into(),
        (_, None) => "tries left: not reported by this token".into(),
    }
}

/// One line for a PIN state.
pub fn describe_pin_state(state: &PinState) -> String {
    format!(
        "PIN status: {} — {}",
        state.status.as_str(),
        describe_retries(state.retries)
    )
}
