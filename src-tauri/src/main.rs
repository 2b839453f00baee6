//! Desktop entry point; everything lives in the library so mobile shares it.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    securesign_app::run();
}
