//! SecureSign app shell (Tauri v2).
//!
//! A thin shell: commands ([`commands`]) call the core (`securesign-core`) and the REST
//! client ([`api`]). Platform differences live in [`platform`] (`desktop.rs` /
//! `mobile.rs`). The mobile entry point is [`run`].

// On iOS, `tauri::mobile_entry_point` adds an undocumented `start_app` beside `run`.
#![cfg_attr(target_os = "ios", allow(missing_docs))]

pub mod api;
pub mod commands;
pub mod error;
pub mod links;
pub mod pin_ipc;
pub mod settings;
pub mod signer_gate;
pub mod signing;
pub mod state;

#[cfg(desktop)]
#[path = "desktop.rs"]
pub mod platform;
#[cfg(mobile)]
#[path = "mobile.rs"]
pub mod platform;

use std::sync::Arc;

use securesign_core::biometric::BiometricAuthenticator;
use tauri::{Emitter, Manager, Runtime};

use crate::state::AppState;

/// Label of the one window every command is granted to.
pub const MAIN_WINDOW: &str = "main";
/// Event telling the main window that a deep link waits ([`commands::startup_link`] takes it).
pub const LINK_EVENT: &str = "link-waiting";
/// Event carrying [`securesign_core::worker::TokenEvent`]s to the main window.
pub const TOKEN_EVENT: &str = "token-event";

/// Adds the commands to a builder. Shared by [`run`] and the mock-runtime tests, so that
/// tests exercise the same IPC surface.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::startup_link,
        commands::open_request,
        commands::biometric_prompt,
        commands::pin_key,
        commands::verify_pin,
        commands::sign_request,
        commands::signing_progress,
        commands::cancel_signing,
        commands::decline_request,
        commands::pin_status,
        commands::change_pin,
        commands::unblock_pin,
        commands::logout,
        commands::session_remaining,
        commands::get_settings,
        commands::save_settings,
        commands::discover_tokens,
        commands::token_certificates,
    ])
}

/// Loads the settings and puts the [`AppState`] under management, with token events
/// wired to the main window. Called from `setup` (and directly by tests).
pub fn install<R: Runtime>(
    app: &tauri::AppHandle<R>,
    biometrics: Arc<dyn BiometricAuthenticator>,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = settings::config_dir(app.path().app_config_dir().ok())?;
    let state = AppState::new(dir, biometrics)?;
    let handle = app.clone();
    state.set_event_sink(Arc::new(move |event| {
        let _ = handle.emit_to(MAIN_WINDOW, TOKEN_EVENT, event);
    }));
    app.manage(state);
    app.manage(pin_ipc::PinChannel::default());
    Ok(())
}

/// Starts the app (desktop `main`, and the mobile entry point).
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    platform::prepare_environment();
    let builder = platform::plugins(tauri::Builder::default());
    let app = with_commands(builder)
        .setup(|app| {
            install(app.handle(), platform::authenticator())?;
            links::listen(app)?;
            platform::ready(app)
        })
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|handle, event| {
            // Never leave a verified PIN on the token behind the app.
            if let tauri::RunEvent::Exit = event {
                if let Some(state) = handle.try_state::<AppState>() {
                    if !state.close_for_exit() {
                        eprintln!("securesign: the token did not log out in time at exit");
                    }
                }
            }
        }),
        Err(err) => {
            eprintln!("securesign: cannot start: {err}");
            std::process::exit(1);
        }
    }
}
