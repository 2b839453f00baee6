//! cargo-fuzz entry of the `origin_url` target; the body and its properties are in
//! `fuzz/targets/src/origin_url.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| securesign_fuzz_targets::origin_url::run(data));
