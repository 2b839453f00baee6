//! cargo-fuzz entry of the `apdu_chain` target; the body and its properties are in
//! `fuzz/targets/src/apdu_chain.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| securesign_fuzz_targets::apdu_chain::run(data));
