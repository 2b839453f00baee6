#![allow(clippy::unwrap_used)]
//! scripts/build-android.sh and scripts/build-ios.sh: they parse, and where a piece of the
//! toolchain is missing they build nothing, name each missing piece and exit 2. Run with
//! `--check` (they never start a build here) and with the environment under the test's
//! control (SDK variables removed or pointed at a faked SDK layout).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

fn run(name: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(script(name)).arg("--check");
    for var in [
        "ANDROID_HOME",
        "ANDROID_SDK_ROOT",
        "NDK_HOME",
        "ANDROID_TARGETS",
        "APPLE_DEVELOPMENT_TEAM",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output { status, stderr, .. } = cmd.output().unwrap();
    (status.code().unwrap(), String::from_utf8(stderr).unwrap())
}

fn rust_target_installed(triple: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == triple)
        })
        .unwrap_or(false)
}

#[test]
fn both_scripts_parse() {
    for name in ["build-android.sh", "build-ios.sh"] {
        let status = Command::new("bash")
            .arg("-n")
            .arg(script(name))
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
    }
}

#[test]
fn android_without_an_sdk_names_every_missing_piece_and_builds_nothing() {
    let (code, err) = run("build-android.sh", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ANDROID_HOME is not set"), "{err}");
    assert!(err.contains("NDK_HOME is not set"), "{err}");
    assert!(err.contains("Nothing was built."), "{err}");
    if !rust_target_installed("aarch64-linux-android") {
        assert!(
            err.contains("rustup target add aarch64-linux-android"),
            "{err}"
        );
    }
}

#[test]
fn android_with_an_empty_sdk_names_its_missing_parts() {
    let sdk = tempfile::tempdir().unwrap();
    let sdk_path = sdk.path().to_str().unwrap();
    let (code, err) = run(
        "build-android.sh",
        &[
            ("ANDROID_HOME", sdk_path),
            ("ANDROID_TARGETS", "aarch64 x86_64"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("platforms/android-* is absent"), "{err}");
    assert!(err.contains("build-tools/* is absent"), "{err}");
    assert!(err.contains("Android NDK"), "{err}");
    if !rust_target_installed("x86_64-linux-android") {
        assert!(
            err.contains("rustup target add x86_64-linux-android"),
            "{err}"
        );
    }
}

#[test]
fn android_with_a_complete_sdk_layout_asks_only_for_what_is_still_missing() {
    let sdk = tempfile::tempdir().unwrap();
    for dir in [
        "platforms/android-36",
        "build-tools/36.0.0",
        "ndk/27.0.12077973/toolchains/llvm",
    ] {
        std::fs::create_dir_all(sdk.path().join(dir)).unwrap();
    }
    let (code, err) = run(
        "build-android.sh",
        &[("ANDROID_HOME", sdk.path().to_str().unwrap())],
    );
    assert!(!err.contains("Android SDK"), "{err}");
    assert!(!err.contains("Android NDK"), "{err}");
    if rust_target_installed("aarch64-linux-android") {
        // Everything is there (this test cannot tell a fake tauri CLI or JDK from a real one).
        assert!(
            code == 0 || err.contains("tauri CLI") || err.contains("JDK"),
            "{err}"
        );
    } else {
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("rustup target add aarch64-linux-android"),
            "{err}"
        );
    }
}

#[test]
fn android_refuses_an_unknown_target_name() {
    let (code, err) = run("build-android.sh", &[("ANDROID_TARGETS", "mips")]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown target 'mips'"), "{err}");
}

#[test]
fn ios_off_macos_names_macos_xcode_and_the_signing_team() {
    let (code, err) = run("build-ios.sh", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("APPLE_DEVELOPMENT_TEAM: not set"), "{err}");
    assert!(err.contains("Nothing was built."), "{err}");
    if !cfg!(target_os = "macos") {
        assert!(err.contains("macOS: iOS apps are built on macOS"), "{err}");
        assert!(err.contains("Xcode: xcodebuild is not on PATH"), "{err}");
    }
}
