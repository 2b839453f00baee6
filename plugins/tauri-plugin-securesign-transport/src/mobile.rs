//! Android/iOS: the native plugin registered with Tauri, and [`PluginCall`] as
//! `run_mobile_plugin`. Nothing else lives here: this file compiles only for phones (no
//! Android/iOS toolchain on the Linux CI), the logic is in `bridge.rs` and above.
// `ios_plugin_binding!` declares the Swift plugin's `extern "C"` init function (FFI).
#![cfg_attr(target_os = "ios", allow(unsafe_code))]

use serde::de::DeserializeOwned;
use serde_json::Value;
use tauri::plugin::mobile::PluginInvokeError;
use tauri::plugin::{PluginApi, PluginHandle};
use tauri::{AppHandle, Runtime};

use crate::bridge::PluginCall;
use crate::raw::RawError;

#[cfg(target_os = "android")]
const PLUGIN_IDENTIFIER: &str = "in.securesign.transport";

#[cfg(target_os = "ios")]
tauri::ios_plugin_binding!(init_plugin_securesign_transport);

/// The registered native plugin (`TransportPlugin.kt` / `TransportPlugin.swift`).
pub struct MobilePlugin<R: Runtime>(PluginHandle<R>);

impl<R: Runtime> Clone for MobilePlugin<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Registers the native plugin.
pub fn init<R: Runtime, C: DeserializeOwned>(
    _app: &AppHandle<R>,
    api: PluginApi<R, C>,
) -> Result<MobilePlugin<R>, crate::Error> {
    #[cfg(target_os = "android")]
    let handle = api.register_android_plugin(PLUGIN_IDENTIFIER, "TransportPlugin")?;
    #[cfg(target_os = "ios")]
    let handle = api.register_ios_plugin(init_plugin_securesign_transport)?;
    Ok(MobilePlugin(handle))
}

impl<R: Runtime> PluginCall for MobilePlugin<R> {
    fn call(&self, command: &str, args: Value) -> Result<Value, RawError> {
        self.0
            .run_mobile_plugin::<Value>(command, args)
            .map_err(|e| match e {
                PluginInvokeError::InvokeRejected(r) => RawError::from_rejection(
                    r.code.as_deref(),
                    r.message.as_deref().unwrap_or_default(),
                ),
                other => RawError::Bridge(other.to_string()),
            })
    }
}
