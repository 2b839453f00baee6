//! Shared helpers: open a fresh lab token through the core's PKCS#11 backend.

#![allow(dead_code)]

use securesign_core::backend::pkcs11::{Pkcs11Backend, Pkcs11Module, TokenSelector};
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend, TokenCertificate, TokenInfo};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::status::PinState;
use securesign_core::{Pin, Result, Token};
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

/// The real SoftHSM2/kryoptic backend with `before` run ahead of each signature (the
/// 1-based count of signatures asked for so far): a token that goes away (`before`
/// fails, as a pulled USB token fails the next `C_Sign`), is slow, or stops answering.
pub struct BeforeEachSignature<F> {
    /// The lab token's backend, which does the work.
    pub inner: Pkcs11Backend,
    /// Runs before each signature; an error is the signature's.
    pub before: F,
    asked: usize,
}

impl<F: FnMut(usize) -> Result<()>> BeforeEachSignature<F> {
    /// `inner` with `before` ahead of each of its signatures.
    pub fn new(inner: Pkcs11Backend, before: F) -> Self {
        Self {
            inner,
            before,
            asked: 0,
        }
    }
}

impl<F: FnMut(usize) -> Result<()> + Send> TokenBackend for BeforeEachSignature<F> {
    fn info(&mut self) -> Result<TokenInfo> {
        self.inner.info()
    }
    fn pin_state(&mut self) -> Result<PinState> {
        self.inner.pin_state()
    }
    fn login(&mut self, pin: &Pin) -> Result<()> {
        self.inner.login(pin)
    }
    fn logout(&mut self) -> Result<()> {
        self.inner.logout()
    }
    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<()> {
        self.inner.change_pin(old, new)
    }
    fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<()> {
        self.inner.unblock_pin(puk, new)
    }
    fn certificates(&mut self) -> Result<Vec<TokenCertificate>> {
        self.inner.certificates()
    }
    fn sign_digest(
        &mut self,
        key: &KeyId,
        scheme: SignatureScheme,
        digest: &Sha256Digest,
    ) -> Result<Vec<u8>> {
        self.asked += 1;
        (self.before)(self.asked)?;
        self.inner.sign_digest(key, scheme, digest)
    }
}
