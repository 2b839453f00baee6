//! Desktop: the plugin is not available (desktop reaches readers through the core's PC/SC).

use std::marker::PhantomData;

use serde_json::Value;
use tauri::plugin::PluginApi;
use tauri::{AppHandle, Runtime};

use crate::bridge::PluginCall;
use crate::raw::RawError;

/// What every call answers on desktop.
pub const UNAVAILABLE: &str =
    "the token-transport plugin works on Android and iOS; desktop uses PC/SC";

/// The desktop "platform": every call is [`RawError::NotAvailable`].
#[derive(Debug)]
pub struct Unavailable<R>(PhantomData<fn() -> R>);

impl<R> Clone for Unavailable<R> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<R> Default for Unavailable<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: 'static> PluginCall for Unavailable<R> {
    fn call(&self, _command: &str, _args: Value) -> Result<Value, RawError> {
        Err(RawError::NotAvailable(UNAVAILABLE.into()))
    }
}

/// The desktop side of the plugin.
pub fn init<R: Runtime, C: serde::de::DeserializeOwned>(
    _app: &AppHandle<R>,
    _api: PluginApi<R, C>,
) -> Result<Unavailable<R>, crate::Error> {
    Ok(Unavailable::default())
}
