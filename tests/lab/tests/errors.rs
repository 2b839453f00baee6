//! The lab fails loudly and clearly, never leaking PINs, and cleans up.

use securesign_testlab::{LabError, LabToken, Module, SO_PIN, USER_PIN};

/// These tests change process-wide environment variables, which is only
/// safe when every test has its own process.
fn require_process_per_test() {
    assert_eq!(
        std::env::var("NEXTEST_EXECUTION_MODE").as_deref(),
        Ok("process-per-test"),
        "run these tests with `cargo nextest run -p securesign-testlab` (one process per test)"
    );
}

#[test]
fn missing_kryoptic_names_the_build_script() {
    require_process_per_test();
    std::env::set_var(
        Module::Kryoptic.path_override_env_var(),
        "/nonexistent/libkryoptic_pkcs11.so",
    );
    let err = LabToken::kryoptic().expect_err("no module there");
    assert!(matches!(err, LabError::KryopticNotBuilt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("tests/lab/build-kryoptic.sh"), "{message}");
    assert!(
        message.contains("/nonexistent/libkryoptic_pkcs11.so"),
        "{message}"
    );
    assert_eq!(format!("{err:?}"), message, "Debug is the readable message");
}

#[test]
fn missing_tool_names_the_install_script() {
    require_process_per_test();
    let empty = tempfile::tempdir().expect("temp dir");
    std::env::set_var("PATH", empty.path());
    let err = LabToken::softhsm().expect_err("no openssl on PATH");
    assert!(
        matches!(err, LabError::ToolMissing { tool: "openssl" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("tests/lab/install.sh"), "{err}");
}

#[test]
fn failed_tool_error_redacts_pins() {
    require_process_per_test();
    // A regular file that is not a PKCS#11 module: pkcs11-tool fails to load it.
    let bogus = tempfile::NamedTempFile::new().expect("temp file");
    std::env::set_var(Module::SoftHsm2.path_override_env_var(), bogus.path());
    let err = LabToken::softhsm().expect_err("bogus module");
    let LabError::ToolFailed { command, .. } = &err else {
        panic!("expected ToolFailed, got {err:?}")
    };
    assert!(command.starts_with("pkcs11-tool --module"), "{command}");
    assert!(command.contains("--so-pin <redacted>"), "{command}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(SO_PIN) && !shown.contains(USER_PIN),
        "PINs leaked: {shown}"
    );
}

#[test]
fn overlong_label_is_rejected() {
    let err = LabToken::builder(Module::SoftHsm2)
        .label("x".repeat(33))
        .build()
        .expect_err("33 bytes");
    assert!(matches!(err, LabError::InvalidLabel(_)), "{err:?}");
}

#[test]
fn custom_label_is_used() {
    let tok = LabToken::builder(Module::SoftHsm2)
        .label("Lab Token 2")
        .build()
        .expect("provision");
    assert_eq!(tok.label(), "Lab Token 2");
    let listing = std::process::Command::new("pkcs11-tool")
        .envs(tok.env())
        .arg("--module")
        .arg(tok.module_path())
        .arg("--list-token-slots")
        .output()
        .expect("run pkcs11-tool");
    assert!(String::from_utf8_lossy(&listing.stdout).contains("token label        : Lab Token 2"));
}

#[test]
fn env_points_at_the_token_config_and_drop_removes_everything() {
    let tok = LabToken::softhsm().expect("provision");
    let dir = tok.dir().to_owned();
    assert_eq!(
        tok.env(),
        vec![(
            "SOFTHSM2_CONF".to_owned(),
            tok.config_path().display().to_string()
        )]
    );
    assert!(tok.config_path().starts_with(&dir) && tok.config_path().is_file());
    assert_eq!((tok.user_pin(), tok.so_pin()), ("123456", "12345678"));
    drop(tok);
    assert!(!dir.exists(), "temp dir removed on drop");
}
