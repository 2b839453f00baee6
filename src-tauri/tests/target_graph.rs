//! The phone builds' dependency graphs hold no desktop-only native library.
//!
//! `cargo tree --target` resolves the graph for a target without its toolchain, so this
//! runs on the Linux CI. A crate on the deny list would either fail the Android/iOS link
//! (no libpcsclite, GTK, X11 or D-Bus there) or drag a desktop feature onto the phone.
//!
//! Crates for a foreign target may be missing from the registry cache after a host build
//! (cargo downloads only what the host needs): each check runs `cargo fetch --locked
//! --target …` first, which is a no-op once they are cached, then reads the graph offline
//! against the checked-in `Cargo.lock`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// Desktop-only crates, and why each must stay off the phones.
const DENIED: &[(&str, &str)] = &[
    // PC/SC: links libpcsclite (Linux), WinSCard (Windows), PCSC.framework (macOS).
    // Android has no PC/SC service and iOS only CryptoTokenKit: phones reach tokens
    // through the token-transport plugin (USB CCID / NFC) instead.
    (
        "pcsc",
        "PC/SC client (libpcsclite / WinSCard), absent on phones",
    ),
    ("pcsc-sys", "PC/SC FFI bindings, link libpcsclite"),
    // One instance per desktop session, handing a second launch's link over D-Bus
    // (Linux) or window messages (Windows); the phone OS routes links to the one app.
    (
        "tauri-plugin-single-instance",
        "desktop single-instance hand-over (D-Bus / window messages)",
    ),
    // The Linux webview stack wry uses (WebKitGTK on GTK 3): system libraries that
    // exist on no phone; Android uses the system WebView, iOS WKWebView.
    ("gtk", "GTK 3 bindings (Linux webview host window)"),
    ("gtk-sys", "GTK 3 FFI, links libgtk-3"),
    ("gdk", "GDK bindings (GTK's windowing layer)"),
    ("gdk-sys", "GDK FFI, links libgdk-3"),
    ("gdkx11", "GDK X11 backend bindings"),
    ("gdkx11-sys", "GDK X11 FFI"),
    ("gdkwayland-sys", "GDK Wayland FFI"),
    ("atk-sys", "ATK accessibility FFI (GTK dependency)"),
    ("cairo-sys-rs", "cairo FFI (GTK drawing)"),
    ("pango-sys", "Pango FFI (GTK text)"),
    ("glib-sys", "GLib FFI (GTK/WebKitGTK base)"),
    ("gio-sys", "GIO FFI (GTK/WebKitGTK base)"),
    ("webkit2gtk", "WebKitGTK bindings (the Linux webview)"),
    ("webkit2gtk-sys", "WebKitGTK FFI, links libwebkit2gtk-4.1"),
    (
        "javascriptcore-rs",
        "JavaScriptCore-GTK bindings (WebKitGTK)",
    ),
    ("javascriptcore-rs-sys", "JavaScriptCore-GTK FFI"),
    ("soup3", "libsoup 3 bindings (WebKitGTK networking)"),
    ("soup3-sys", "libsoup 3 FFI"),
    // X11 client libraries (tao/wry on Linux).
    ("x11", "Xlib bindings"),
    ("x11-dl", "Xlib loaded at run time"),
    // D-Bus: the Linux session bus (single-instance, tao's desktop integration); phones
    // have none reachable by apps.
    ("zbus", "D-Bus client (single-instance on Linux)"),
    ("dbus", "libdbus bindings (tao on Linux)"),
    ("libdbus-sys", "libdbus FFI, links libdbus-1"),
    // Desktop menu bar; on Linux it builds on GTK.
    ("muda", "desktop menus (GTK on Linux)"),
];

/// The phone targets the app ships for.
const PHONE_TARGETS: &[&str] = &[
    "aarch64-linux-android",
    "x86_64-linux-android",
    "aarch64-apple-ios",
];

/// `cargo <subcommand>` on the app's manifest, against the workspace's `Cargo.lock` as is.
fn cargo(subcommand: &str) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    cmd.arg(subcommand)
        .arg("--locked")
        .arg("--manifest-path")
        .arg(manifest);
    cmd
}

/// Names of the crates in the app's normal (non-dev, non-build) graph for `target`.
fn graph(target: &str) -> BTreeSet<String> {
    let fetch = cargo("fetch")
        .args(["--quiet", "--target", target])
        .output()
        .unwrap();
    assert!(
        fetch.status.success(),
        "cargo fetch --target {target} (needs the network once per fresh cache):\n{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let tree = cargo("tree")
        .args([
            "--offline",
            "-p",
            "securesign-app",
            "--target",
            target,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .unwrap();
    assert!(
        tree.status.success(),
        "cargo tree --target {target}:\n{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    String::from_utf8(tree.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn denied_in(crates: &BTreeSet<String>) -> Vec<String> {
    DENIED
        .iter()
        .filter(|(name, _)| crates.contains(*name))
        .map(|(name, why)| format!("{name} ({why})"))
        .collect()
}

fn assert_phone_graph(target: &str) {
    let crates = graph(target);
    // A real graph, not an empty or failed listing; and the phones' token transport plugin
    // is in it, so its dependencies are checked too.
    for expected in [
        "securesign-app",
        "securesign-core",
        "tauri",
        "tauri-plugin-securesign-transport",
    ] {
        assert!(
            crates.contains(expected),
            "{target}: {expected} missing from the graph ({} crates)",
            crates.len()
        );
    }
    let denied = denied_in(&crates);
    assert!(
        denied.is_empty(),
        "{target} pulls desktop-only crates:\n  {}",
        denied.join("\n  ")
    );
}

#[test]
fn android_arm64_graph_has_no_desktop_only_crate() {
    assert_phone_graph(PHONE_TARGETS[0]);
}

#[test]
fn android_x86_64_graph_has_no_desktop_only_crate() {
    assert_phone_graph(PHONE_TARGETS[1]);
}

#[test]
fn ios_arm64_graph_has_no_desktop_only_crate() {
    assert_phone_graph(PHONE_TARGETS[2]);
}

/// The deny list names crates as cargo spells them: the Linux desktop graph holds the
/// PC/SC backend, the WebKitGTK stack and single-instance, so a misspelt entry (which would
/// never match on a phone either) shows here.
#[test]
fn deny_list_names_crates_of_the_linux_desktop_graph() {
    let crates = graph("x86_64-unknown-linux-gnu");
    let missing: Vec<&str> = DENIED
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !crates.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "deny-list entries absent from the Linux desktop graph (misspelt or gone): {missing:?}"
    );
}
