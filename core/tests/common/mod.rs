//! Shared helpers: open a fresh lab token through the core's PKCS#11 backend.

#![allow(dead_code)]

use securesign_core::backend::pkcs11::{Pkcs11Backend, Pkcs11Module, TokenSelector};
use securesign_core::backend::TokenBackend;
use securesign_core::session::SessionPolicy;
use securesign_core::{Pin, Token};
use securesign_testlab::{LabToken, Module};

/// A fresh lab token on `module`, its environment applied to this process (nextest runs
/// one test per process, so the module is initialised with this token's configuration).
pub fn lab(module: Module) -> LabToken {
    let tok = match module {
        Module::SoftHsm2 => LabToken::softhsm(),
        Module::Kryoptic => LabToken::kryoptic(),
    }
    .unwrap_or_else(|e| panic!("token lab: {e}"));
    tok.apply_env();
    tok
}

/// The core's backend on the lab token.
pub fn backend(tok: &LabToken) -> Pkcs11Backend {
    Pkcs11Module::load(tok.module_path())
        .expect("load module")
        .open(&TokenSelector::Label(tok.label().to_owned()))
        .expect("open token")
}

/// The token behind the core's policy, with `policy`.
pub fn token(tok: &LabToken, policy: SessionPolicy) -> Token<Box<dyn TokenBackend>> {
    let boxed: Box<dyn TokenBackend> = Box::new(backend(tok));
    Token::new(boxed, policy).expect("token info")
}

/// A PIN from a literal.
pub fn pin(s: &str) -> Pin {
    Pin::new(s.to_owned())
}
