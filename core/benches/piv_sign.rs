//! PIV signing overhead: 300 SHA-256 digests signed on the virtual PIV card through the
//! core (`Token::sign_batch` → `PivBackend` → `PcscTransport`), and in the same run through
//! a bare `pcsc` loop sending the same APDUs on its own connection. Prints both rates and
//! the ratio (target ≥ 0.95). Rounds alternate between the two so machine noise hits both;
//! the ratio is given for the best round of each (least disturbed by other load on a shared
//! machine) and for the median round.
//!
//! * 9A, ECDSA P-256: one GENERAL AUTHENTICATE per signature.
//! * 9C, RSA-2048 ("PIN always"): an empty VERIFY (the try counter: the kept PIN is never
//!   sent at the final try), VERIFY, then GENERAL AUTHENTICATE (command-chained, with
//!   GET RESPONSE) per signature.
//!
//! Run: `cargo bench -p securesign-core --bench piv_sign` (after `tests/lab/piv/install.sh`
//! and `tests/lab/piv/build.sh`).

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Protocols, Scope, ShareMode};
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::TokenBackend;
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::{FinalTry, KeySelector, Pin, Token};
use securesign_testlab::{PivLab, PIV_PIN};

const DIGESTS: usize = 300;

/// The APDUs of one signature, as the core sends them.
fn apdus(slot: u8, digest: &Sha256Digest) -> Vec<Vec<u8>> {
    match slot {
        0x9A => {
            let mut apdu = vec![
                0x00, 0x87, 0x11, 0x9A, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20,
            ];
            apdu.extend_from_slice(&digest.0);
            apdu.push(0x00);
            vec![apdu]
        }
        _ => {
            let info = digest.rsa_digest_info();
            let mut block = vec![0x00, 0x01];
            block.resize(256 - info.len() - 1, 0xFF);
            block.push(0x00);
            block.extend_from_slice(&info);
            // 7C 82 01 06 { 82 00, 81 82 01 00 <256> }
            let mut body = vec![0x7C, 0x82, 0x01, 0x06, 0x82, 0x00, 0x81, 0x82, 0x01, 0x00];
            body.extend_from_slice(&block);
            let status = vec![0x00, 0x20, 0x00, 0x80];
            let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
            verify.extend_from_slice(PIV_PIN.as_bytes());
            verify.resize(13, 0xFF);
            let mut first = vec![0x10, 0x87, 0x07, 0x9C, 0xFF];
            first.extend_from_slice(&body[..255]);
            let rest = &body[255..];
            let mut last = vec![0x00, 0x87, 0x07, 0x9C, rest.len() as u8];
            last.extend_from_slice(rest);
            last.push(0x00);
            vec![status, verify, first, last]
        }
    }
}

/// Sends `apdus` and follows 61xx with GET RESPONSE; panics unless everything ends 9000.
fn send(card: &Card, apdus: &[Vec<u8>], buffer: &mut [u8]) {
    for apdu in apdus {
        let mut reply = card.transmit(apdu, buffer).expect("transmit").to_vec();
        while reply.len() >= 2 && reply[reply.len() - 2] == 0x61 {
            let le = reply[reply.len() - 1];
            reply = card
                .transmit(&[0x00, 0xC0, 0x00, 0x00, le], buffer)
                .expect("GET RESPONSE")
                .to_vec();
        }
        assert_eq!(
            &reply[reply.len() - 2..],
            &[0x90, 0x00],
            "card refused {apdu:02X?}"
        );
        std::hint::black_box(&reply);
    }
}

fn main() {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    lab.apply_env();
    let digests: Vec<Sha256Digest> = (0..DIGESTS)
        .map(|i| Sha256Digest::of(format!("document {i}").as_bytes()))
        .collect();

    let transport =
        securesign_core::apdu::pcsc::PcscTransport::open(lab.reader()).expect("open reader");
    let boxed: Box<dyn TokenBackend> = Box::new(PivBackend::open(transport).expect("PIV"));
    let mut token = Token::new(boxed, SessionPolicy::default()).expect("token");
    token
        .verify_pin(
            Pin::new(PIV_PIN.to_owned()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .expect("verify");

    // Baseline: its own shared connection to the same card (the PIN verified above is
    // card state, so 9A signs here too); the PIV application is already selected.
    let context = Context::establish(Scope::User).expect("PC/SC context");
    let reader = CString::new(lab.reader()).expect("reader name");
    let card = context
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .expect("connect");
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];
    send(&card, &[select.to_vec()], &mut buffer);

    println!(
        "piv_sign: {DIGESTS} signatures on the virtual PIV card over pcscd, alternating rounds"
    );
    for (slot, label, rounds) in [
        (0x9Au8, "9A ECDSA P-256", 7),
        (0x9C, "9C RSA-2048 (VERIFY status + VERIFY + sign)", 5),
    ] {
        let batches: Vec<Vec<Vec<u8>>> = digests.iter().map(|d| apdus(slot, d)).collect();
        let mut bare = || {
            let start = Instant::now();
            for apdus in &batches {
                send(&card, apdus, &mut buffer);
            }
            start.elapsed()
        };
        let signer = token
            .signer(
                &KeySelector::IdOrLabel(format!("{slot:02x}")),
                SystemClock.wall(),
            )
            .expect("signer");
        let mut core = || {
            let start = Instant::now();
            let outcome = token.sign_batch(
                &signer,
                &digests,
                &SystemClock,
                &CancelFlag::new(),
                &mut |_| {},
            );
            let elapsed = start.elapsed();
            assert!(outcome.is_complete(), "{:?}", outcome.error);
            elapsed
        };
        bare();
        core();
        let mut bare_times = Vec::new();
        let mut core_times = Vec::new();
        for _ in 0..rounds {
            bare_times.push(bare());
            core_times.push(core());
        }
        bare_times.sort();
        core_times.sort();
        let (bare_best, core_best) = (rate(bare_times[0]), rate(core_times[0]));
        let (bare_median, core_median) = (rate(median(&bare_times)), rate(median(&core_times)));
        println!("  {label} ({rounds} rounds; best / median)");
        println!("    bare pcsc APDU loop : {bare_best:8.1} / {bare_median:8.1} signatures/s");
        println!("    core batch API      : {core_best:8.1} / {core_median:8.1} signatures/s");
        println!(
            "    ratio core/bare     : {:8.3} / {:8.3}  (target >= 0.95)",
            core_best / bare_best,
            core_median / bare_median
        );
    }
}

/// Median of sorted `times`.
fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

fn rate(d: Duration) -> f64 {
    DIGESTS as f64 / d.as_secs_f64()
}
