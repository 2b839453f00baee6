//! Desktop specifics: one instance (a second launch hands its link over), no biometrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use tauri::{Manager, Runtime};

use crate::MAIN_WINDOW;

/// Environment for the webview, set before anything starts (single-threaded).
///
/// Linux: see [`webview_env_defaults`]. Measured by `tests/app/rss.sh` (release build
/// under Xvfb with Mesa's software GL, idle on the home screen), app process RSS:
/// 151 MB with WebKit's defaults, 83 MB with these.
pub fn prepare_environment() {
    #[cfg(target_os = "linux")]
    for (name, value) in webview_env_defaults(|name| std::env::var_os(name)) {
        std::env::set_var(name, value);
    }
}

/// The variables to set for WebKitGTK, given the current environment (`get`).
///
/// This small static UI needs no GPU, and loading an OpenGL driver is expensive: Mesa's
/// driver brings in `libLLVM`, ~45 MB of resident (relocated) pages in every process that
/// loads it. Unless the user asked to keep the GPU paths (`SECURESIGN_GPU_COMPOSITING=1`),
/// and never overriding a variable the user set:
/// - `WEBKIT_DISABLE_COMPOSITING_MODE=1`: the web process paints with the CPU;
/// - `GDK_GL=disable`: GDK does not probe GLX when it opens the X display (it does so to
///   pick visuals for GL areas; this app has none);
/// - the app process opens no EGL display. WebKit opens one on the first page load for
///   two things: to check that frames can travel from the web process as DMA-BUFs
///   (`WEBKIT_DISABLE_DMABUF_RENDERER=1`: without compositing they are CPU-painted
///   shared-memory frames anyway), and to find the GPU's render node to hand to the web
///   process (`WEBKIT_WEB_RENDER_DEVICE_FILE=/dev/null` names it instead: no render
///   node, so the web process gets no GBM device, which only accelerated compositing and
///   WebGL — neither used here — need). The web process still opens its own EGL display
///   (WebKit aborts without one there).
pub fn webview_env_defaults(
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, &'static str)> {
    if get("SECURESIGN_GPU_COMPOSITING").is_some_and(|v| v == "1") {
        return Vec::new();
    }
    [
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ("GDK_GL", "disable"),
        ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
        ("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/null"),
    ]
    .into_iter()
    .filter(|(name, _)| get(name).is_none())
    .collect()
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
    exit_on_termination_signals(app.handle().clone())?;
    Ok(())
}

/// SIGTERM, SIGINT and SIGHUP (a session ending, a service manager, a terminal closing)
/// end the app through its orderly exit, so the token is logged out
/// ([`crate::state::AppState::close_for_exit`]) instead of the process just ending with
/// a verified PIN left on the card. A second signal while exiting takes the default action.
fn exit_on_termination_signals<R: Runtime>(
    handle: tauri::AppHandle<R>,
) -> Result<(), Box<dyn std::error::Error>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    const SIGNALS: [i32; 3] = [SIGTERM, SIGINT, SIGHUP];
    let exiting = Arc::new(AtomicBool::new(false));
    for signal in SIGNALS {
        // Registered first: a signal arriving once `exiting` is set ends the process.
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&exiting))?;
    }
    let mut signals = signal_hook::iterator::Signals::new(SIGNALS)?;
    std::thread::Builder::new()
        .name("securesign-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                exiting.store(true, Ordering::SeqCst);
                handle.exit(0);
            }
        })?;
    Ok(())
}

/// Brings the main window forward for a link that arrived.
pub fn bring_forward<R: tauri::Runtime>(window: &tauri::WebviewWindow<R>) {
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
}

#[cfg(test)]
mod tests {
    use super::webview_env_defaults;
    use std::ffi::OsString;

    fn defaults(env: &[(&str, &str)]) -> Vec<(&'static str, &'static str)> {
        webview_env_defaults(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn gpu_paths_are_off_by_default() {
        assert_eq!(
            defaults(&[]),
            [
                ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
                ("GDK_GL", "disable"),
                ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
                ("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/null"),
            ]
        );
    }

    #[test]
    fn a_variable_the_user_set_is_kept() {
        let set = defaults(&[("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/dri/renderD129")]);
        assert!(set
            .iter()
            .all(|(k, _)| *k != "WEBKIT_WEB_RENDER_DEVICE_FILE"));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn the_user_can_keep_the_gpu_paths() {
        assert!(defaults(&[("SECURESIGN_GPU_COMPOSITING", "1")]).is_empty());
        assert_eq!(defaults(&[("SECURESIGN_GPU_COMPOSITING", "0")]).len(), 4);
    }
}
