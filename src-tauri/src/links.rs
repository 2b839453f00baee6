//! Deep-link delivery: cold start (argv / `get_current`) and warm (`on_open_url`, fed on
//! desktop by the single-instance plugin when a second launch hands over its argv).
//!
//! The link is kept in the state and the main window is only told that one waits; the
//! window takes it with `startup_link` and passes it to `open_request`, which parses it
//! strictly. A link therefore never travels in an event, and a reload cannot replay it.

use tauri::{Emitter, Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::state::AppState;
use crate::{LINK_EVENT, MAIN_WINDOW};

/// Hands `link` to the main window and brings the window forward.
pub fn deliver<R: Runtime>(app: &tauri::AppHandle<R>, link: String) {
    if let Some(state) = app.try_state::<AppState>() {
        state.set_pending_link(link);
    }
    let _ = app.emit_to(MAIN_WINDOW, LINK_EVENT, ());
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        crate::platform::bring_forward(&window);
    }
}

/// Picks up the cold-start link and listens for warm ones.
pub fn listen<R: Runtime>(app: &tauri::App<R>) -> Result<(), Box<dyn std::error::Error>> {
    let deep_link = app.deep_link();
    let cold = deep_link
        .get_current()?
        .and_then(|urls| urls.into_iter().next().map(|u| u.to_string()))
        .or_else(|| securesign_core::deeplink::link_in_args(std::env::args().skip(1)));
    if let Some(link) = cold {
        deliver(app.handle(), link);
    }
    let handle = app.handle().clone();
    deep_link.on_open_url(move |event| {
        if let Some(url) = event.urls().into_iter().next() {
            deliver(&handle, url.to_string());
        }
    });
    Ok(())
}
