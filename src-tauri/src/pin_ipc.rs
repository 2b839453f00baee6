//! PINs and PUKs over IPC: never JSON, never in the clear.
//!
//! On WebKitGTK the webview's UI-process side lives in the app's own process: the IPC
//! request body passes through WebKit's buffers (its own allocator, freed unwiped), wry's
//! 1 KiB read buffer and the `Vec` Tauri owns and frees after the command. None of these
//! are ours to wipe. So the PIN never crosses in the clear:
//!
//! 1. `pin_key` makes an ephemeral P-256 key (zeroized on drop), keeps it for one use and
//!    returns its public key.
//! 2. The page makes its own ephemeral key (WebCrypto), derives the shared secret, then
//!    HKDF-SHA-256 (no salt, info [`HKDF_INFO`]) → an AES-256-GCM key, and sends
//!    `its public key (65 bytes) ‖ nonce (12) ‖ AES-GCM(secrets, aad = command name)` as a
//!    raw `Uint8Array` body (`application/octet-stream`: Tauri keeps it as
//!    [`InvokeBody::Raw`], no JSON string, no `serde_json::Value`), the other arguments as
//!    headers. The secrets are NUL-separated.
//! 3. The command takes the key (one use), decrypts in place into a zeroizing buffer and
//!    copies each secret once into a zeroizing [`Pin`] of exact capacity.
//!
//! What the process still holds after a PIN command: the public keys, nonce and ciphertext
//! in WebKit/wry/Tauri buffers (useless without the private key, which is wiped). Not
//! wiped: the HKDF state and the AES key schedule (`hkdf`, `ring`), briefly on a worker
//! thread's stack.

use std::sync::Mutex;

use p256::ecdh::EphemeralSecret;
use p256::PublicKey;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use securesign_core::{ErrorCode, Pin};
use tauri::ipc::{InvokeBody, Request};
use zeroize::Zeroizing;

use crate::error::{CommandError, CommandResult};

/// Header: `1` confirms the PIN's final try.
pub const CONFIRM_FINAL_TRY: &str = "ss-confirm-final-try";
/// Header: the request id on screen when the PIN was typed.
pub const REQUEST_ID: &str = "ss-request-id";
/// HKDF `info` of the PIN key.
pub const HKDF_INFO: &[u8] = b"securesign pin v1";
/// Length of an uncompressed SEC1 P-256 public key.
pub const PUBLIC_KEY_LEN: usize = 65;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;

/// The app's ephemeral key for the next PIN command (one use).
#[derive(Default)]
pub struct PinChannel {
    key: Mutex<Option<Box<EphemeralSecret>>>,
}

impl PinChannel {
    /// A fresh key for the next PIN command (replacing an unused one); its public key,
    /// SEC1 uncompressed.
    pub fn new_key(&self) -> Vec<u8> {
        let secret = Box::new(EphemeralSecret::random(&mut rand_core::OsRng));
        let public = secret.public_key().to_sec1_bytes().to_vec();
        *crate::state::lock(&self.key) = Some(secret);
        public
    }

    fn take(&self) -> Option<Box<EphemeralSecret>> {
        crate::state::lock(&self.key).take()
    }

    /// Decrypts exactly `N` secrets from the raw body of `request` (command `cmd`). A JSON
    /// body is refused, so that a front end sending PINs as JSON fails loudly.
    pub fn secrets<const N: usize>(
        &self,
        cmd: &str,
        request: &Request<'_>,
    ) -> CommandResult<[Pin; N]> {
        let InvokeBody::Raw(body) = request.body() else {
            return Err(bad("PINs are sent encrypted as raw bytes, never as JSON"));
        };
        if body.len() < PUBLIC_KEY_LEN + NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(bad("the PIN message is too short"));
        }
        let (peer, rest) = body.split_at(PUBLIC_KEY_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let secret = self
            .take()
            .ok_or_else(|| bad("no PIN key: ask for one (pin_key) before each PIN command"))?;
        let peer = PublicKey::from_sec1_bytes(peer).map_err(|_| bad("bad public key"))?;
        let shared = secret.diffie_hellman(&peer);
        drop(secret);
        let mut key = Zeroizing::new([0u8; 32]);
        shared
            .extract::<sha2::Sha256>(None)
            .expand(HKDF_INFO, &mut key[..])
            .map_err(|_| bad("key derivation failed"))?;
        drop(shared);
        let key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key[..]).map_err(|_| bad("bad key"))?);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("bad nonce"))?;
        let mut buffer = Zeroizing::new(Vec::with_capacity(sealed.len()));
        buffer.extend_from_slice(sealed);
        let plain = key
            .open_in_place(nonce, Aad::from(cmd.as_bytes()), &mut buffer[..])
            .map_err(|_| bad("the PIN message does not decrypt (wrong key or command)"))?;
        split(plain)
    }
}

fn bad(message: &str) -> CommandError {
    CommandError::new(ErrorCode::BadRequest, message)
}

/// `N` NUL-separated secrets, each copied once into a [`Pin`] of exact capacity.
fn split<const N: usize>(plain: &[u8]) -> CommandResult<[Pin; N]> {
    let mut pins = Vec::with_capacity(N);
    for part in plain.split(|&b| b == 0) {
        let text = std::str::from_utf8(part)
            .map_err(|_| CommandError::new(ErrorCode::PinFormat, "a PIN must be text (UTF-8)"))?;
        let mut owned = String::with_capacity(text.len());
        owned.push_str(text);
        pins.push(Pin::new(owned));
    }
    <[Pin; N]>::try_from(pins).map_err(|_| bad("wrong number of secrets"))
}

/// A header's value as text, when present and valid.
pub fn header<'a>(request: &'a Request<'_>, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// True when the header is `1` or `true`.
pub fn flag(request: &Request<'_>, name: &str) -> bool {
    matches!(header(request, name), Some("1" | "true"))
}
