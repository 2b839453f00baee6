//! The seeds reach the deep paths they were made for (signatures that verify, a signer
//! the fuzz anchor trusts), so the fuzzers start past the parsers' first refusals; if
//! the seeds or the anchor go stale, this says so.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::VerifyingKey;
use securesign_fuzz_targets::cert_cms::{signer_trust, NOW};
use securesign_fuzz_targets::input::Input;
use securesign_server::trust::Candidate;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../seeds")
        .join(target)
        .join(format!("seed-{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn raw_and_cms_seeds_verify() {
    for key in ["ec", "rsa"] {
        let data = seed("cert_cms", &format!("raw-{key}"));
        let mut input = Input::new(&data[1..]);
        let cert = input.chunk();
        let digest: [u8; 32] = input.take(32).try_into().unwrap();
        let key_ = VerifyingKey::from_certificate_der(cert).unwrap();
        key_.verify_digest(&digest, input.rest()).unwrap();

        let data = seed("cert_cms", &format!("cms-{key}"));
        let digest: [u8; 32] = data[1..33].try_into().unwrap();
        let verified = cms::verify_detached(&data[33..], &Sha256Digest(digest)).unwrap();
        assert_eq!(
            verified.signing_time,
            Some(u64::try_from(NOW - 60).unwrap())
        );
    }
}

#[test]
fn trust_seeds_chain_to_the_fuzz_anchor() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for key in ["ec", "rsa"] {
        let data = seed("cert_cms", &format!("trust-{key}"));
        let mut input = Input::new(&data[1..]);
        let signer = input.chunk().to_vec();
        let chain = vec![input.chunk().to_vec()];
        let evidence = runtime
            .block_on(signer_trust().evaluate(
                Candidate {
                    signer: &signer,
                    chain: &chain,
                    signing_times: &[NOW - 60],
                    policy_classes: &[],
                },
                NOW,
            ))
            .unwrap();
        assert!(evidence.trusted);
    }
}
