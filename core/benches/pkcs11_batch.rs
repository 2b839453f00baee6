//! Batch signing overhead: 1,000 SHA-256 digests signed with RSA-2048 on one SoftHSM2
//! token through the core's batch API, and in the same run through a bare `cryptoki`
//! `C_Sign` loop with the same mechanism and input. Prints both rates and the ratio
//! (target ≥ 0.95). Rounds alternate between the two so machine noise hits both.
//!
//! Run: `cargo bench -p securesign-core --bench pkcs11_batch` (after `tests/lab/install.sh`).

use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use securesign_core::backend::pkcs11::{Pkcs11Module, TokenSelector};
use securesign_core::backend::TokenBackend;
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::{FinalTry, KeySelector, Pin, Token};
use securesign_testlab::LabToken;

const DIGESTS: usize = 1_000;
const ROUNDS: usize = 5;

fn main() {
    let tok = LabToken::softhsm().unwrap_or_else(|e| panic!("token lab: {e}"));
    tok.apply_env();
    let digests: Vec<Sha256Digest> = (0..DIGESTS)
        .map(|i| Sha256Digest::of(format!("document {i}").as_bytes()))
        .collect();

    // Baseline: bare cryptoki, initialised first (the core then finds it initialised).
    let ctx = Pkcs11::new(tok.module_path()).expect("load module");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = ctx
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .next()
        .expect("a token");
    let session = ctx.open_ro_session(slot).expect("session");
    session
        .login(UserType::User, Some(&AuthPin::from(tok.user_pin())))
        .expect("login");
    let infos: Vec<Vec<u8>> = digests.iter().map(Sha256Digest::rsa_digest_info).collect();
    let bare = || {
        // Found per round, untimed: the core's login (logout + login, as PKCS#11 logins are
        // per application) invalidates earlier private-object handles.
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![0x01]),
        ];
        let key = session.find_objects(&template).expect("find key")[0];
        let start = Instant::now();
        for info in &infos {
            let sig = session
                .sign(&Mechanism::RsaPkcs, key, info)
                .expect("C_Sign");
            std::hint::black_box(sig);
        }
        start.elapsed()
    };

    // The core: batch API, one login.
    let backend = Pkcs11Module::load(tok.module_path())
        .expect("core module")
        .open(&TokenSelector::Only)
        .expect("core token");
    let boxed: Box<dyn TokenBackend> = Box::new(backend);
    let mut token = Token::new(boxed, SessionPolicy::default()).expect("token");
    token
        .verify_pin(
            Pin::new(tok.user_pin().to_owned()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .expect("verify");
    let signer = token
        .signer(&KeySelector::IdOrLabel("01".into()), SystemClock.wall())
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

    // Warm-up, then alternating rounds.
    bare();
    core();
    let mut bare_times = Vec::new();
    let mut core_times = Vec::new();
    for _ in 0..ROUNDS {
        bare_times.push(bare());
        core_times.push(core());
    }
    let bare_rate = rate(median(&mut bare_times));
    let core_rate = rate(median(&mut core_times));
    println!("pkcs11_batch: {DIGESTS} RSA-2048 signatures on SoftHSM2, median of {ROUNDS} alternating rounds");
    println!("  bare cryptoki C_Sign loop : {bare_rate:8.1} signatures/s");
    println!("  core batch API            : {core_rate:8.1} signatures/s");
    println!(
        "  ratio core/bare           : {:8.3}  (target >= 0.95)",
        core_rate / bare_rate
    );
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn rate(d: Duration) -> f64 {
    DIGESTS as f64 / d.as_secs_f64()
}
