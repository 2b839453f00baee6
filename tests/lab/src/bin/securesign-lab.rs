//! `securesign-lab`: lab tokens and the lab PKI for the demo and the end-to-end scripts
//! (tests use the library directly). Prints shell `export` lines.
//!
//! ```text
//! securesign-lab softhsm|kryoptic [--pki DIR]   a token that outlives the command
//! securesign-lab pki DIR                         only the lab PKI (root -> licensed CA), in DIR
//! ```
//!
//! A token prints its module path, module configuration, token directory and user PIN; both
//! print the PKI the token's certificates chain to, with current CRLs published:
//! `SECURESIGN_LAB_TRUST_ANCHORS` (root PEM), `SECURESIGN_LAB_INTERMEDIATES` (licensed CA
//! PEM), `SECURESIGN_LAB_CRL_DIR` (`ca.crl`, `root.crl`, DER) and `SECURESIGN_LAB_PKI_DIR` —
//! the server's `--trust-anchors`, `--intermediates` and `--crl-dir`. With `--pki DIR` the
//! token's certificates are issued by the PKI in DIR (created there when missing), so several
//! tokens chain to one root; without it the PKI lives in the token directory.

use std::path::PathBuf;
use std::process::ExitCode;

use securesign_testlab::{CrlFreshness, LabError, LabPki, LabToken, Module, PkiUrls};

const USAGE: &str =
    "usage: securesign-lab softhsm|kryoptic [--pki DIR]\n       securesign-lab pki DIR";

/// What to provision.
enum Command {
    Token {
        module: Module,
        pki: Option<PathBuf>,
    },
    Pki(PathBuf),
}

fn parse(args: &[String]) -> Option<Command> {
    match args {
        [kind, rest @ ..] if kind == "softhsm" || kind == "kryoptic" => {
            let module = if kind == "softhsm" {
                Module::SoftHsm2
            } else {
                Module::Kryoptic
            };
            let pki = match rest {
                [] => None,
                [flag, dir] if flag == "--pki" => Some(PathBuf::from(dir)),
                _ => return None,
            };
            Some(Command::Token { module, pki })
        }
        [kind, dir] if kind == "pki" => Some(Command::Pki(PathBuf::from(dir))),
        _ => None,
    }
}

fn pki_exports(pki: &LabPki) -> Result<Vec<String>, LabError> {
    let crl_dir = pki.publish_crls(CrlFreshness::Current)?;
    Ok(vec![
        format!("export SECURESIGN_LAB_PKI_DIR='{}'", pki.dir().display()),
        format!(
            "export SECURESIGN_LAB_TRUST_ANCHORS='{}'",
            pki.root_pem().display()
        ),
        format!(
            "export SECURESIGN_LAB_INTERMEDIATES='{}'",
            pki.ca_pem().display()
        ),
        format!("export SECURESIGN_LAB_CRL_DIR='{}'", crl_dir.display()),
    ])
}

fn run(command: Command) -> Result<Vec<String>, LabError> {
    match command {
        Command::Pki(dir) => {
            let pki = if dir.join("urls.txt").exists() {
                LabPki::open(&dir)?
            } else {
                LabPki::create(&dir, PkiUrls::default())?
            };
            pki_exports(&pki)
        }
        Command::Token { module, pki } => {
            let mut builder = LabToken::builder(module);
            if let Some(dir) = pki {
                builder = builder.shared_pki(dir);
            }
            let token = builder.build()?;
            let mut lines: Vec<String> = token
                .env()
                .into_iter()
                .map(|(key, value)| format!("export {key}='{value}'"))
                .collect();
            lines.extend(pki_exports(token.pki())?);
            lines.push(format!(
                "export SECURESIGN_PKCS11_MODULE='{}'",
                token.module_path().display()
            ));
            lines.push(format!(
                "export SECURESIGN_LAB_USER_PIN='{}'",
                token.user_pin()
            ));
            let dir = token.keep();
            lines.push(format!("export SECURESIGN_LAB_DIR='{}'", dir.display()));
            Ok(lines)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(command) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("securesign-lab: {e}");
            ExitCode::FAILURE
        }
    }
}
