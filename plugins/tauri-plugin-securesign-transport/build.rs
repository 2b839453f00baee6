//! Generates the plugin's permissions (one allow/deny pair per command) and wires the
//! Android library and the iOS Swift package into `tauri android|ios build`.

/// The native commands, as `run_mobile_plugin` names them in snake case.
const COMMANDS: &[&str] = &[
    "usb_devices",
    "usb_open",
    "usb_bulk_out",
    "usb_bulk_in",
    "usb_interrupt_in",
    "usb_close",
    "apdu_connect",
    "apdu_present",
    "apdu_transmit",
    "apdu_disconnect",
];

fn main() {
    tauri_plugin::Builder::new(COMMANDS)
        .android_path("android")
        .ios_path("ios")
        .build();
}
