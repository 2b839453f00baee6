//! The SecureSign PKCS#11 token lab.
//!
//! Provisions a **fresh, real PKCS#11 token per test** in a private temporary
//! directory, on either of two software modules:
//!
//! * [`Module::SoftHsm2`] — Debian's SoftHSM2 (`/usr/lib/softhsm/libsofthsm2.so`),
//!   which never locks the user PIN;
//! * [`Module::Kryoptic`] — the kryoptic module built by
//!   `tests/lab/build-kryoptic.sh`, which locks the user PIN after 10 failures
//!   and reports `CKF_USER_PIN_COUNT_LOW` / `FINAL_TRY` / `LOCKED` on the way.
//!
//! Every token is labelled [`TOKEN_LABEL`] (unless overridden), has user PIN
//! [`USER_PIN`] and SO PIN [`SO_PIN`], and holds two signing identities that
//! look like an Indian DSC, each as a private key, public key and X.509
//! certificate sharing one `CKA_ID` and `CKA_LABEL` (see [`LabKey`]), issued by the
//! licensed CA of the token's own two-level [`LabPki`] (a lab stand-in for India's CCA
//! hierarchy: root → licensed CA → DSC), which also serves revocation tests (CRLs, an
//! `openssl ocsp` responder) and the server's trust tests.
//!
//! ```no_run
//! # fn main() -> Result<(), securesign_testlab::LabError> {
//! let tok = securesign_testlab::LabToken::softhsm()?;
//! tok.apply_env(); // before C_Initialize; nextest runs one test per process
//! let _module = tok.module_path();
//! let _cert = tok.rsa_cert_der();
//! # Ok(()) }
//! ```
//!
//! Provisioning shells out to the real tools (`openssl`, `pkcs11-tool`) in
//! child processes, so the calling test process never loads or initialises
//! the module before the test itself does.

mod certs;
mod error;
mod keys;
mod module;
mod piv;
mod pki;
mod token;
mod tool;

pub use certs::CertValidity;
pub use error::LabError;
pub use keys::LabKey;
pub use module::Module;
pub use piv::{opensc_version, PivLab, PivSlot, OPENSC_PKCS11, PIV_PIN, PIV_PUK, PIV_READER};
pub use pki::{
    CrlFreshness, DscKeyUsage, DscSpec, IssuedDsc, LabPki, OcspResponder, PkiUrls, POLICY_CLASS2,
    POLICY_CLASS3, POLICY_DOCUMENT_SIGNER,
};
pub use token::{LabToken, LabTokenBuilder};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, LabError>;

/// Default label of every lab token (`CKA_LABEL` of the token, 32 bytes max).
pub const TOKEN_LABEL: &str = "SecureSign Demo";

/// User PIN of every lab token. A well-known test value, not a secret.
pub const USER_PIN: &str = "123456";

/// User PIN of kryoptic lab tokens. kryoptic declares a minimum PIN length of 8 (while
/// accepting shorter ones), and the core validates PINs against the declared length, so
/// its tokens get an 8-digit PIN. A well-known test value, not a secret.
pub const KRYOPTIC_USER_PIN: &str = "24682468";

/// Security Officer PIN of every lab token. A well-known test value, not a secret.
pub const SO_PIN: &str = "12345678";
