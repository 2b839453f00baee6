//! Desktop specifics: one instance (a second launch hands its link over), no biometrics.

use std::sync::Arc;

use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use tauri::{Manager, Runtime};

use crate::MAIN_WINDOW;

/// Environment for the webview, set before anything starts (single-threaded).
///
/// Linux: WebKitGTK's accelerated compositing costs ~60 MB of memory (measured by
/// `tests/app/rss.sh`, release build under Xvfb: PSS of the app and its WebKit processes
/// 260 → 202 MB, their RSS 440 → 377 MB)
/// and buys nothing for this small static UI. It is turned off unless the user set
/// `WEBKIT_DISABLE_COMPOSITING_MODE` themselves, or asked to keep it with
/// `SECURESIGN_GPU_COMPOSITING=1`.
pub fn prepare_environment() {
    #[cfg(target_os = "linux")]
    {
        let keep = std::env::var_os("SECURESIGN_GPU_COMPOSITING").is_some_and(|v| v == "1");
        if !keep && std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
            std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
        }
    }
}

/// Plugins, single-instance first so that a second launch exits before doing anything.
pub fn plugins<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // The `deep-link` feature has already passed the argv to `on_open_url`.
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
}

/// Desktop has no biometric prompt; settings show it as unavailable.
pub fn authenticator() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "Biometric unlock is available in the phone app only".into(),
    })
}

/// After setup: in development and tests (`SECURESIGN_REGISTER_SCHEME=1`) register the
/// `securesign:` scheme for this executable; installed packages register it with their
/// desktop entry instead.
pub fn ready<R: Runtime>(app: &tauri::App<R>) -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("SECURESIGN_REGISTER_SCHEME").is_some_and(|v| v == "1") {
        use tauri_plugin_deep_link::DeepLinkExt;
        // Not fatal: the app works without it; only `gio open` / browsers cannot reach it.
        if let Err(err) = app.deep_link().register_all() {
            eprintln!("securesign: cannot register the securesign: scheme: {err}");
        }
    }
    let _ = app;
    Ok(())
}
