//! Replays every committed fuzz input through its target: the seeds
//! (`fuzz/seeds/<target>/`), the minimised corpus the fuzzers grew (`fuzz/corpus/<target>/`)
//! and the reproducers of past findings (`fuzz/regressions/<target>/`). Seconds on the
//! stable toolchain, no cargo-fuzz.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use securesign_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let run = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .unwrap();
    let started = Instant::now();
    let mut count = 0;
    for kind in ["seeds", "corpus", "regressions"] {
        for file in inputs(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "{} fails (see the panic above)",
                file.display()
            );
            count += 1;
        }
    }
    assert!(count > 0, "no committed inputs for {target}");
    eprintln!("{target}: {count} inputs in {:?}", started.elapsed());
}

#[test]
fn deeplink() {
    replay("deeplink");
}

#[test]
fn origin_url() {
    replay("origin_url");
}

#[test]
fn apdu_chain() {
    replay("apdu_chain");
}

#[test]
fn piv_card() {
    replay("piv_card");
}

#[test]
fn cert_cms() {
    replay("cert_cms");
}

#[test]
fn server_bodies() {
    replay("server_bodies");
}

#[test]
fn every_target_has_a_fuzz_target_file_and_seeds() {
    for (name, _) in TARGETS {
        let file = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(file.is_file(), "{} is missing", file.display());
        assert!(
            !inputs(&fuzz_dir().join("seeds").join(name)).is_empty(),
            "{name}"
        );
    }
}
