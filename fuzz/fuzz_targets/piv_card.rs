//! cargo-fuzz entry of the `piv_card` target; the body and its properties are in
//! `fuzz/targets/src/piv_card.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| securesign_fuzz_targets::piv_card::run(data));
