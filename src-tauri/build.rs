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
    // The app's test binaries link the server (a dev-dependency) and with it sqlx's bundled
    // SQLite, and GTK's link flags add `--export-dynamic`: exported, those `sqlite3_*`
    // symbols would take the place of the system libsqlite3's own inside it when a PKCS#11
    // module loads that library (kryoptic: `C_Initialize` jumped to address 0). Symbols of
    // static archives (every rlib) stay inside the test binaries. The app has no SQLite.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-tests=-Wl,--exclude-libs,ALL");
    }
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build failed: {err:#}");
        std::process::exit(1);
    }
}
