//! `securesign-lab softhsm|kryoptic`: provisions one lab token that outlives the command and
//! prints shell `export` lines for it (module path, module configuration, token directory).
//! Used by the README's demo; tests use the library directly.

use std::process::ExitCode;

use securesign_testlab::{LabToken, Module};

fn main() -> ExitCode {
    let module = match std::env::args().nth(1).as_deref() {
        Some("softhsm") => Module::SoftHsm2,
        Some("kryoptic") => Module::Kryoptic,
        _ => {
            eprintln!("usage: securesign-lab softhsm|kryoptic");
            return ExitCode::from(2);
        }
    };
    let token = match LabToken::builder(module).build() {
        Ok(token) => token,
        Err(e) => {
            eprintln!("securesign-lab: {e}");
            return ExitCode::FAILURE;
        }
    };
    let module_path = token.module_path().display().to_string();
    let env = token.env();
    let user_pin = token.user_pin();
    let dir = token.keep();
    for (key, value) in env {
        println!("export {key}='{value}'");
    }
    println!("export SECURESIGN_PKCS11_MODULE='{module_path}'");
    println!("export SECURESIGN_LAB_DIR='{}'", dir.display());
    println!("export SECURESIGN_LAB_USER_PIN='{user_pin}'");
    ExitCode::SUCCESS
}
