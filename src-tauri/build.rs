//! Generates the Tauri context and one permission per app command, so that the
//! capability file decides which window may call which command.

/// Every command of `src/commands.rs`; a command missing here cannot be granted.
const COMMANDS: &[&str] = &[
    "startup_link",
    "open_request",
    "biometric_prompt",
    "pin_key",
    "verify_pin",
    "sign_request",
    "signing_progress",
    "cancel_signing",
    "decline_request",
    "pin_status",
    "change_pin",
    "unblock_pin",
    "logout",
    "session_remaining",
    "get_settings",
    "save_settings",
    "discover_tokens",
    "token_certificates",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build failed: {err:#}");
        std::process::exit(1);
    }
}
