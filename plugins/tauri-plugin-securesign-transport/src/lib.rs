//! SecureSign's token transport for phones, a Tauri v2 plugin.
//!
//! The native side (`android/` Kotlin, `ios/` Swift — never compiled on this project's CI)
//! does raw transfers only: USB bulk/interrupt transfers on Android, one APDU per call over
//! NFC (Android IsoDep, iOS CoreNFC) and iOS CryptoTokenKit. Everything above them is
//! platform-neutral Rust, tested on desktop:
//!
//! * [`raw::RawTransfers`]: the native commands as typed calls, and their errors;
//! * [`bridge::Bridge`]: those calls as JSON/base64 over one [`bridge::PluginCall`]
//!   (`run_mobile_plugin` in `mobile.rs`, "not available" in `desktop.rs`);
//! * [`usb`]: the core's `CcidTransport` over the raw bulk transfers (Android USB host);
//! * [`apdu_link`]: an `ApduTransport` that forwards one APDU to the platform (NFC,
//!   TKSmartCard); chaining and PIV stay in the core;
//! * [`token`]: which link reaches the token ([`PhoneLink`]), its PIV backend over it, and
//!   its presence; [`presence_watch`] reports its removal from a thread.
//!
//! The webview gets no command of this plugin (the default permission set is empty): only
//! the app's Rust calls it.

use std::time::Duration;

use tauri::plugin::{Builder, TauriPlugin};
use tauri::{Manager, Runtime};

pub mod apdu_link;
pub mod bridge;
#[cfg(desktop)]
pub mod desktop;
mod error;
#[cfg(mobile)]
pub mod mobile;
pub mod models;
pub mod presence_watch;
pub mod raw;
pub mod token;
pub mod usb;

pub use apdu_link::PlatformApduTransport;
pub use bridge::{Bridge, PluginCall};
pub use error::Error;
pub use models::{ApduLinkInfo, ApduLinkKind, UsbDevice};
pub use presence_watch::PresenceWatcher;
pub use raw::{RawError, RawTransfers};
pub use token::{open_phone_token, OpenPhoneToken, PhoneLink, PhoneToken, Presence};
pub use usb::{PluginBulkPipe, UsbCcidTransport};

/// The platform behind the plugin on this target.
#[cfg(desktop)]
pub type Platform<R> = desktop::Unavailable<R>;
/// The platform behind the plugin on this target.
#[cfg(mobile)]
pub type Platform<R> = mobile::MobilePlugin<R>;

/// The plugin's name (`links` in Cargo.toml without `tauri-plugin-`).
pub const PLUGIN_NAME: &str = "securesign-transport";

/// Reaches tokens through the platform: USB CCID readers and APDU links.
#[derive(Debug, Clone)]
pub struct TokenTransport<C: PluginCall> {
    plugin: C,
}

impl<C: PluginCall> TokenTransport<C> {
    /// Over one platform.
    pub fn new(plugin: C) -> Self {
        Self { plugin }
    }

    /// The raw commands (each transport gets its own copy).
    pub fn raw(&self) -> Bridge<C> {
        Bridge::new(self.plugin.clone())
    }

    /// USB devices with a CCID-class interface.
    pub fn usb_devices(&self) -> Result<Vec<UsbDevice>, Error> {
        Ok(self.raw().usb_devices()?)
    }

    /// Opens a USB CCID reader (permission prompt, claim) and powers its card on.
    pub fn open_usb(&self, device_name: &str) -> Result<UsbCcidTransport<Bridge<C>>, Error> {
        usb::open_usb_reader(self.raw(), device_name)
    }

    /// Waits up to `wait` for a card on an APDU link (NFC tap, a card in the USB-C reader).
    pub fn open_apdu(
        &self,
        kind: ApduLinkKind,
        wait: Duration,
    ) -> Result<PlatformApduTransport<Bridge<C>>, Error> {
        Ok(PlatformApduTransport::open(self.raw(), kind, wait)?)
    }
}

impl<C: PluginCall> OpenPhoneToken for TokenTransport<C> {
    fn open_token(&self, link: &PhoneLink, wait: Duration) -> Result<PhoneToken, Error> {
        open_phone_token(self.raw(), link, wait)
    }
}

/// Access to the plugin from the app, its handles and windows.
pub trait TokenTransportExt<R: Runtime> {
    /// The plugin's [`TokenTransport`].
    fn token_transport(&self) -> &TokenTransport<Platform<R>>;
}

impl<R: Runtime, T: Manager<R>> TokenTransportExt<R> for T {
    fn token_transport(&self) -> &TokenTransport<Platform<R>> {
        self.state::<TokenTransport<Platform<R>>>().inner()
    }
}

/// Initializes the plugin. No invoke handler: the webview cannot call it.
pub fn init<R: Runtime>() -> TauriPlugin<R> {
    Builder::new(PLUGIN_NAME)
        .setup(|app, api| {
            #[cfg(mobile)]
            let platform = mobile::init(app, api)?;
            #[cfg(desktop)]
            let platform = desktop::init(app, api)?;
            app.manage(TokenTransport::new(platform));
            Ok(())
        })
        .build()
}
