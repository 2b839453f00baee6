//! cargo-fuzz entry of the `cert_cms` target; the body and its properties are in
//! `fuzz/targets/src/cert_cms.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| securesign_fuzz_targets::cert_cms::run(data));
