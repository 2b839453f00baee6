//! PIN hygiene of the `securesign` process: after a PIN change, a batch and the logout, a
//! core dump (`gcore`) of the live process holds no copy of the PIN in any form it took —
//! ASCII, the PIV-padded form (PIN bytes then `0xFF` up to 8 bytes), UTF-16LE.
//!
//! The process is caught honestly, with no test-only code path: a long batch's JSON report
//! is larger than a pipe's buffer, so after the logout the CLI blocks writing its report
//! to a stdout nobody reads yet. The test dumps it there, then reads the report and checks
//! that the batch completed.
//!
//! Needs `gcore` (package `gdb`, installed by tests/app/install.sh) and ptrace rights over a
//! child process (root, or `kernel.yama.ptrace_scope` ≤ 1).

#![allow(clippy::unwrap_used)]

mod common;

use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json, securesign};
use securesign_testlab::{LabToken, PivLab, PivSlot, PIV_PIN, PIV_READER, USER_PIN};

/// Documents in the batch: their report (~450 bytes each) must exceed a 64 KiB pipe.
const DOCUMENTS: usize = 400;

/// Six distinct digits chosen at run time, so they are nowhere in the binary or the
/// environment, and the test's own process is not the one dumped.
fn unusual_pin() -> String {
    let mut digits: Vec<u8> = (b'0'..=b'9').collect();
    let mut seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut pin = String::new();
    while pin.len() < 6 {
        let i = (seed % digits.len() as u64) as usize;
        seed = seed.rotate_left(13) ^ 0x9E37_79B9_7F4A_7C15;
        pin.push(char::from(digits.remove(i)));
    }
    assert!(!USER_PIN.contains(&pin) && !PIV_PIN.contains(&pin));
    pin
}

/// Every form the PIN took: ASCII, PIV-padded to 8 bytes with `0xFF`, UTF-16LE.
pub fn pin_forms(pin: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut padded = pin.as_bytes().to_vec();
    padded.resize(8, 0xFF);
    let utf16: Vec<u8> = pin.encode_utf16().flat_map(u16::to_le_bytes).collect();
    vec![
        ("ascii", pin.as_bytes().to_vec()),
        ("piv-padded", padded),
        ("utf-16le", utf16),
    ]
}

/// Offsets of every form of `pin` in `dump`.
fn find_pin(dump: &[u8], pin: &str) -> Vec<(&'static str, usize)> {
    let mut hits = Vec::new();
    for (form, needle) in pin_forms(pin) {
        let mut start = 0;
        while let Some(at) = dump[start..]
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
        {
            hits.push((form, start + at));
            start += at + 1;
        }
    }
    hits
}

/// Whether `pid` is blocked in `write(1, …)` (x86_64: syscall 1; aarch64: 64).
fn blocked_writing_stdout(pid: u32) -> bool {
    let Ok(syscall) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return false;
    };
    let mut fields = syscall.split_whitespace();
    let number = fields.next().unwrap_or("");
    let fd = fields.next().unwrap_or("");
    let write = if cfg!(target_arch = "aarch64") {
        "64"
    } else {
        "1"
    };
    number == write && fd == "0x1"
}

/// `gcore` of `pid` into `dir`; the dump's bytes.
fn core_dump(pid: u32, dir: &Path) -> Vec<u8> {
    let prefix = dir.join("core");
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .expect("gcore (package gdb) is needed: tests/app/install.sh installs it");
    assert!(out.status.success(), "gcore failed: {out:?}");
    std::fs::read(dir.join(format!("core.{pid}"))).unwrap()
}

/// Changes the PIN from `old` to a fresh unusual one, signs `documents` digests with `key`,
/// dumps the CLI once it blocks on its report (after the logout), lets it finish, and
/// asserts that the dump holds the fresh PIN in no form. `target` selects the token
/// (`--module …` or `--reader …`).
fn assert_no_pin_after_change_batch_and_logout(
    target: &[String],
    env: &[(String, String)],
    old: &str,
    key: &str,
    documents: usize,
) {
    let pin = unusual_pin();
    let mut change: Vec<&str> = target.iter().map(String::as_str).collect();
    change.extend(["pin", "change", "--pin-stdin", "--json"]);
    let out = securesign(&change, env.to_vec(), &format!("{old}\n{pin}\n"));
    assert!(out.status.success(), "pin change: {out:?}");

    // A batch long enough that its report fills the stdout pipe after the logout.
    let mut args: Vec<String> = target.to_vec();
    args.extend(["sign", "--key", key, "--pin-stdin", "--json"].map(String::from));
    for i in 0..documents {
        args.extend([
            "--digest-sha256".to_owned(),
            format!("{:064x}", i as u128 + 1),
        ]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign"))
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("SECURESIGN_PKCS11_MODULE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{pin}\n").as_bytes()).unwrap();
    // Standard input stays open: nothing but the CLI's own reading decides what it keeps.

    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !blocked_writing_stdout(pid) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the CLI ended before blocking on its report"
        );
        assert!(Instant::now() < deadline, "the CLI never blocked on stdout");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let dump = core_dump(pid, dir.path());
    assert!(dump.len() > 1 << 20, "the dump is too small to be real");

    // Let the CLI finish: the batch really completed and logged out.
    let mut report = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut report)
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "sign: {output:?}");
    let out = std::process::Output {
        stdout: report,
        ..output
    };
    let v = json(&out);
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["signatures"].as_array().unwrap().len(), documents);
    assert!(out.stdout.len() > 1 << 16, "the report must exceed a pipe");

    let hits = find_pin(&dump, &pin);
    assert!(
        hits.is_empty(),
        "the CLI's core dump holds the PIN {} time(s): {hits:?}",
        hits.len()
    );
}

#[test]
fn no_pin_copy_in_the_cli_after_a_pin_change_a_batch_and_the_logout() {
    let tok = LabToken::softhsm().unwrap_or_else(|e| panic!("token lab: {e}"));
    let target = [
        "--module".to_owned(),
        tok.module_path().display().to_string(),
    ];
    assert_no_pin_after_change_batch_and_logout(&target, &tok.env(), USER_PIN, "01", DOCUMENTS);
}

/// The virtual PIV card: the PIN is sent padded with `0xFF` to 8 bytes, and slot 9C's kept
/// PIN is re-sent in a VERIFY before every signature.
#[test]
fn no_pin_copy_in_the_cli_after_a_piv_pin_change_a_9c_batch_and_the_logout() {
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    let target = ["--reader".to_owned(), PIV_READER.to_owned()];
    let key = format!("{:02x}", PivSlot::Sign9C.key_ref());
    // RSA-2048: about 450 bytes of report per document.
    assert_no_pin_after_change_batch_and_logout(&target, lab.env(), PIV_PIN, &key, 200);
}
