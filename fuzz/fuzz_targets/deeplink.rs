//! cargo-fuzz entry of the `deeplink` target; the body and its properties are in
//! `fuzz/targets/src/deeplink.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| securesign_fuzz_targets::deeplink::run(data));
