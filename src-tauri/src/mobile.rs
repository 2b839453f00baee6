//! Mobile specifics: the biometric prompt through `tauri-plugin-biometric`, and phone
//! tokens through the transport plugin.
//!
//! Thin adapters: the gate's logic is `securesign_core::biometric`, and opening and
//! watching a phone token is the transport plugin's platform-neutral Rust
//! (`OpenPhoneToken`), both tested on every platform. This file compiles only for
//! Android/iOS (type-checked by scripts/check-mobile-rust.sh, not on the Linux CI).

use std::sync::{Arc, OnceLock};

use securesign_core::biometric::{
    Availability, BiometricAuthenticator, BiometricOutcome, PromptRequest,
};
use tauri::{AppHandle, Manager, Runtime, Wry};
use tauri_plugin_biometric::{AuthOptions, BiometricExt};
use tauri_plugin_securesign_transport::TokenTransportExt;

use crate::state::AppState;

/// Nothing to prepare on phones.
pub fn prepare_environment() {}

/// Nothing to do on phones: the system brings the app's activity forward with the link
/// (and windows have no minimise, show or focus there).
pub fn bring_forward<R: Runtime>(_window: &tauri::WebviewWindow<R>) {}

/// Plugins of the mobile app.
pub fn plugins(builder: tauri::Builder<Wry>) -> tauri::Builder<Wry> {
    builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_biometric::init())
        .plugin(tauri_plugin_securesign_transport::init())
}

static HANDLE: OnceLock<AppHandle<Wry>> = OnceLock::new();

/// The plugin-backed authenticator (bound to the app handle in [`ready`]).
pub fn authenticator() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(PluginBiometrics)
}

/// Keeps the app handle for the authenticator, and gives the token worker the transport
/// plugin (registered in [`plugins`], so its state exists by now).
pub fn ready<R: Runtime>(app: &tauri::App<R>) -> Result<(), Box<dyn std::error::Error>> {
    app.state::<AppState>()
        .set_phone_tokens(Arc::new(app.token_transport().clone()));
    let any: &dyn std::any::Any = app.handle();
    if let Some(handle) = any.downcast_ref::<AppHandle<Wry>>() {
        let _ = HANDLE.set(handle.clone());
    }
    Ok(())
}

struct PluginBiometrics;

impl BiometricAuthenticator for PluginBiometrics {
    fn availability(&self) -> Availability {
        let status = HANDLE.get().map(|h| h.biometric().status());
        match status {
            Some(Ok(status)) if status.is_available => Availability::Available,
            Some(Ok(status)) => Availability::Unavailable {
                reason: status.error.unwrap_or_else(|| "not enrolled".into()),
            },
            _ => Availability::Unavailable {
                reason: "biometrics cannot be queried".into(),
            },
        }
    }

    fn authenticate(&self, request: &PromptRequest) -> BiometricOutcome {
        let Some(handle) = HANDLE.get() else {
            return BiometricOutcome::Unavailable;
        };
        let options = AuthOptions {
            allow_device_credential: request.allow_device_credential,
            ..Default::default()
        };
        match handle
            .biometric()
            .authenticate(request.reason.clone(), options)
        {
            Ok(()) => BiometricOutcome::Success,
            Err(err) => classify(&err.to_string()),
        }
    }
}

/// The plugin reports outcomes as error codes in the message
/// (`userCancel`, `biometryLockout`, `biometryNotAvailable`, …).
fn classify(message: &str) -> BiometricOutcome {
    let m = message.to_ascii_lowercase();
    if m.contains("cancel") {
        BiometricOutcome::Cancelled
    } else if m.contains("lockout") {
        BiometricOutcome::LockedOut
    } else if m.contains("notavailable") || m.contains("notenrolled") {
        BiometricOutcome::Unavailable
    } else {
        BiometricOutcome::Failed
    }
}
