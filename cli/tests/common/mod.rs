//! Running the built `securesign` binary in tests and reading its JSON.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

/// Runs `securesign ARGS` with `env` added and `stdin` written to its standard input.
pub fn securesign<K: AsRef<str>, V: AsRef<str>>(
    args: &[&str],
    env: impl IntoIterator<Item = (K, V)>,
    stdin: &str,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign"))
        .args(args)
        .envs(
            env.into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        )
        .env_remove("SECURESIGN_PKCS11_MODULE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn securesign");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// The command's stdout as JSON (panics with both streams when it is not).
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Decodes a base64 JSON string.
pub fn b64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().expect("base64 string"))
        .expect("valid base64")
}
