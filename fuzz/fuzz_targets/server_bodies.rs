//! cargo-fuzz entry of the `server_bodies` target; the body and its properties are in
//! `fuzz/targets/src/server_bodies.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| securesign_fuzz_targets::server_bodies::run(data));
