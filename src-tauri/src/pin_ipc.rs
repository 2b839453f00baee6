//! PINs and PUKs over IPC, never as JSON.
//!
//! The PIN commands take the raw [`tauri::ipc::Request`]: the front end invokes them with a
//! `Uint8Array` body (`application/octet-stream`, so Tauri keeps it as
//! [`InvokeBody::Raw`] and never builds a JSON string or `serde_json::Value` holding the
//! secret) and passes the other arguments as headers. The secrets, separated by one NUL
//! byte, are copied once into zeroizing [`Pin`]s of exact capacity (no reallocation leaves a
//! copy behind).
//!
//! What stays outside our reach: Tauri owns the body `Vec<u8>` (we only borrow it) and frees
//! it unwiped after the command; wry's WebKitGTK handler reads the request body through a
//! 1 KiB buffer that it frees unwiped; WebKit/GLib keep the request body in their own
//! buffers. None of these are ours to wipe without `unsafe`.

use securesign_core::{ErrorCode, Pin};
use tauri::ipc::{InvokeBody, Request};

use crate::error::{CommandError, CommandResult};

/// Header: `1` confirms the PIN's final try.
pub const CONFIRM_FINAL_TRY: &str = "ss-confirm-final-try";
/// Header: the request id on screen when the PIN was typed.
pub const REQUEST_ID: &str = "ss-request-id";

/// Reads exactly `N` secrets (NUL-separated) from a raw body. A JSON body is refused, so
/// that a front end sending PINs as JSON strings fails loudly instead of leaking quietly.
pub fn secrets<const N: usize>(request: &Request<'_>) -> CommandResult<[Pin; N]> {
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(CommandError::new(
            ErrorCode::BadRequest,
            "PINs are sent as raw bytes (a Uint8Array), never as JSON",
        ));
    };
    let mut pins = Vec::with_capacity(N);
    for part in bytes.split(|&b| b == 0) {
        let text = std::str::from_utf8(part)
            .map_err(|_| CommandError::new(ErrorCode::PinFormat, "a PIN must be text (UTF-8)"))?;
        let mut owned = String::with_capacity(text.len());
        owned.push_str(text);
        pins.push(Pin::new(owned));
    }
    <[Pin; N]>::try_from(pins).map_err(|_| {
        CommandError::new(
            ErrorCode::BadRequest,
            format!("expected {N} NUL-separated secrets"),
        )
    })
}

/// A header's value as text, when present and valid.
pub fn header<'a>(request: &'a Request<'_>, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// True when the header is `1` or `true`.
pub fn flag(request: &Request<'_>, name: &str) -> bool {
    matches!(header(request, name), Some("1" | "true"))
}
