//! Cost of `CKA_ALWAYS_AUTHENTICATE`: EC P-256 signatures on one kryoptic token through the
//! core's PKCS#11 backend with an always-authenticate key (`C_GetTokenInfo`, `C_SignInit`,
//! `C_Login(CKU_CONTEXT_SPECIFIC)`, `C_Sign` ×2 per signature) against an ordinary key of the
//! same kind (`C_SignInit`, `C_Sign` ×2) in the same run. Rounds alternate between the two so
//! machine noise hits both. Prints both rates and the ratio; no target: the extra cost is the
//! module's PIN check, which a real card pays in its own time.
//!
//! Run: `cargo bench -p securesign-core --bench pkcs11_always_auth` (after
//! `tests/lab/install.sh` and `tests/lab/build-kryoptic.sh`).

use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use securesign_core::backend::pkcs11::{Pkcs11Module, TokenSelector};
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::digest::Sha256Digest;
use securesign_core::Pin;
use securesign_testlab::LabToken;

const DIGESTS: usize = 200;
const ROUNDS: usize = 5;
const ORDINARY: u8 = 0x51;
const ALWAYS_AUTH: u8 = 0x5a;
/// DER of the prime256v1 OID.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn main() {
    let tok = LabToken::kryoptic().unwrap_or_else(|e| panic!("token lab: {e}"));
    tok.apply_env();
    let digests: Vec<Sha256Digest> = (0..DIGESTS)
        .map(|i| Sha256Digest::of(format!("document {i}").as_bytes()))
        .collect();

    let mut backend = Pkcs11Module::load(tok.module_path())
        .expect("core module")
        .open(&TokenSelector::Label(tok.label().to_owned()))
        .expect("core token");
    backend
        .login(&Pin::new(tok.user_pin().to_owned()))
        .expect("login");

    // Two key pairs that differ only in CKA_ALWAYS_AUTHENTICATE, made by a second client.
    let ctx = Pkcs11::new(tok.module_path()).expect("load module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).expect("info").label().trim_end() == tok.label())
        .expect("the lab token");
    let session = ctx.open_rw_session(slot).expect("session");
    for (id, always) in [(ORDINARY, false), (ALWAYS_AUTH, true)] {
        let public = [
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Id(vec![id]),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Id(vec![id]),
            Attribute::AlwaysAuthenticate(always),
        ];
        session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .expect("generate key pair");
    }

    let mut run = |id: u8| {
        let key = KeyId(vec![id]);
        let start = Instant::now();
        for digest in &digests {
            let sig = backend
                .sign_digest(&key, SignatureScheme::EcdsaP256Sha256, digest)
                .expect("signature");
            std::hint::black_box(sig);
        }
        start.elapsed()
    };

    // Warm-up (also resolves both keys), then alternating rounds.
    run(ORDINARY);
    run(ALWAYS_AUTH);
    let mut ordinary = Vec::new();
    let mut always = Vec::new();
    for _ in 0..ROUNDS {
        ordinary.push(run(ORDINARY));
        always.push(run(ALWAYS_AUTH));
    }
    let ordinary_rate = rate(median(&mut ordinary));
    let always_rate = rate(median(&mut always));
    println!(
        "pkcs11_always_auth: {DIGESTS} ECDSA P-256 signatures on kryoptic, median of {ROUNDS} alternating rounds"
    );
    println!("  ordinary key               : {ordinary_rate:8.1} signatures/s");
    println!("  always-authenticate key    : {always_rate:8.1} signatures/s");
    println!(
        "  ratio always-auth/ordinary : {:8.3}",
        always_rate / ordinary_rate
    );
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn rate(d: Duration) -> f64 {
    DIGESTS as f64 / d.as_secs_f64()
}
