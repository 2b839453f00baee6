//! File batches of the real `securesign` binary on a fresh SoftHSM2 token: every signature
//! file is written as its document is signed, Ctrl-C (a real SIGINT to the process) keeps
//! the completed files and leaves no temporary file, and a second run signs only the rest.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{b64, json, securesign};
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::verify_digest_signature;
use securesign_testlab::LabToken;

const DOCUMENTS: usize = 300;

fn names_in(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sign_args(tok: &LabToken, files: &[PathBuf], out: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--module".into(),
        tok.module_path().display().to_string(),
        "sign".into(),
        "--key".into(),
        "signer-ec".into(),
        "--out".into(),
        out.display().to_string(),
        "--pin-stdin".into(),
        "--json".into(),
        "--in".into(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args
}

#[test]
fn ctrl_c_mid_batch_keeps_completed_files_and_a_second_run_signs_only_the_rest() {
    let tok = LabToken::softhsm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("signed");
    let files: Vec<PathBuf> = (0..DOCUMENTS)
        .map(|i| {
            let p = dir.path().join(format!("form-{i:04}.pdf"));
            std::fs::write(&p, format!("%PDF-1.7 field form {i}")).unwrap();
            p
        })
        .collect();
    let args = sign_args(&tok, &files, &out_dir);

    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign"))
        .args(&args)
        .envs(tok.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"123456\n").unwrap();
    // SIGINT once a few signature files exist: the batch is under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while names_in(&out_dir, ".sig").len() < 5 {
        assert!(Instant::now() < deadline, "no signature file appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_SIGN_CANCELLED", "{v}");
    assert_eq!(v["complete"], false);
    let reported = v["signatures"].as_array().unwrap();
    let kept = names_in(&out_dir, ".sig");
    assert!(
        !kept.is_empty() && kept.len() < DOCUMENTS,
        "{} of {DOCUMENTS} files: the batch should have been stopped mid-way",
        kept.len()
    );
    assert_eq!(
        reported.len(),
        kept.len(),
        "every reported signature is on disk"
    );
    assert_eq!(names_in(&out_dir, ".tmp"), Vec::<String>::new());
    // The completed files are the first documents, each a valid signature of its file.
    let cert = tok.ec_cert_der();
    let mut first_run = Vec::new();
    for (i, file) in files.iter().enumerate().take(kept.len()) {
        let sig_path = out_dir.join(format!(
            "{}.sig",
            file.file_name().unwrap().to_string_lossy()
        ));
        let sig = std::fs::read(&sig_path).unwrap();
        let digest = Sha256Digest::of(&std::fs::read(file).unwrap());
        verify_digest_signature(cert, &digest.0, &sig).unwrap();
        assert_eq!(b64(&reported[i]["signature"]), sig);
        first_run.push((sig_path, sig));
    }

    // The second run signs only the rest; the kept files are not signed again (ECDSA
    // signatures differ every time, so a re-signed file would have changed).
    let args: Vec<&str> = args.iter().map(String::as_str).skip(2).collect();
    let module = tok.module_path().display().to_string();
    let out = securesign(
        &[&["--module", module.as_str()][..], &args].concat(),
        tok.env(),
        "123456\n",
    );
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["complete"], true);
    assert_eq!(v["skipped"].as_array().unwrap().len(), kept.len());
    assert_eq!(
        v["signatures"].as_array().unwrap().len(),
        DOCUMENTS - kept.len()
    );
    for (path, sig) in &first_run {
        assert_eq!(&std::fs::read(path).unwrap(), sig, "{}", path.display());
    }
    for file in &files {
        let sig = std::fs::read(out_dir.join(format!(
            "{}.sig",
            file.file_name().unwrap().to_string_lossy()
        )))
        .unwrap();
        let digest = Sha256Digest::of(&std::fs::read(file).unwrap());
        verify_digest_signature(cert, &digest.0, &sig).unwrap();
    }
    assert_eq!(names_in(&out_dir, ".tmp"), Vec::<String>::new());

    // A third run has nothing to sign and asks no PIN (stdin is empty).
    let out = securesign(
        &[&["--module", module.as_str()][..], &args].concat(),
        tok.env(),
        "",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["skipped"].as_array().unwrap().len(), DOCUMENTS);

    // A signature file that does not verify (the document changed) stops the run before
    // the PIN and is kept as it is.
    std::fs::write(&files[0], "%PDF-1.7 changed").unwrap();
    let out = securesign(
        &[&["--module", module.as_str()][..], &args].concat(),
        tok.env(),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["code"], "SS_BAD_REQUEST");
    assert_eq!(std::fs::read(&first_run[0].0).unwrap(), first_run[0].1);
}

#[test]
fn a_cms_batch_resumes_and_another_certificate_s_files_are_never_replaced() {
    let tok = LabToken::softhsm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("signed");
    let files: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("deed-{i}.pdf"));
            std::fs::write(&p, format!("%PDF-1.7 deed {i}")).unwrap();
            p
        })
        .collect();
    let module = tok.module_path().display().to_string();
    let run = |key: &str, stdin: &str| {
        let mut args = vec![
            "--module",
            &module,
            "sign",
            "--format",
            "cms",
            "--key",
            key,
            "--pin-stdin",
            "--json",
            "--out",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        args.push(out_dir.display().to_string());
        args.push("--in".into());
        args.extend(files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        securesign(&args, tok.env(), stdin)
    };
    let out = run("signer-rsa", "123456\n");
    assert!(out.status.success(), "{out:?}");
    let p7s: Vec<Vec<u8>> = names_in(&out_dir, ".p7s")
        .iter()
        .map(|n| std::fs::read(out_dir.join(n)).unwrap())
        .collect();
    assert_eq!(p7s.len(), 2);
    // The same certificate again: both verify, nothing to sign, no PIN read.
    let out = run("signer-rsa", "");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(v["signatures"].as_array().unwrap().len(), 0);
    // Another certificate: refused before the PIN, the files stay as they are.
    let out = run("signer-ec", "123456\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(v["error"]["code"], "SS_BAD_REQUEST", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("move it away"));
    let after: Vec<Vec<u8>> = names_in(&out_dir, ".p7s")
        .iter()
        .map(|n| std::fs::read(out_dir.join(n)).unwrap())
        .collect();
    assert_eq!(after, p7s);
}
