//! A freshly provisioned lab token and its builder.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::pki::generate_key;
use crate::tool::Tool;
use crate::{
    CertValidity, DscKeyUsage, DscSpec, IssuedDsc, LabError, LabKey, LabPki, Module, PkiUrls,
    Result, KRYOPTIC_USER_PIN, SO_PIN, TOKEN_LABEL, USER_PIN,
};

/// Subject common name of both lab token certificates.
const SIGNER_NAME: &str = "Demo Signer";

/// Longest token label PKCS#11 can hold (`CK_TOKEN_INFO.label` is 32 bytes).
const MAX_LABEL_LEN: usize = 32;

/// Options for provisioning a [`LabToken`]; start with [`LabToken::builder`].
#[derive(Debug, Clone)]
pub struct LabTokenBuilder {
    module: Module,
    label: String,
    rsa_validity: CertValidity,
    ec_validity: CertValidity,
    ec_key_usage: DscKeyUsage,
    pki_urls: PkiUrls,
    shared_pki: Option<PathBuf>,
}

impl LabTokenBuilder {
    /// Sets the CRL / OCSP URLs the token's new PKI puts in its certificates (default: none).
    /// Ignored with [`LabTokenBuilder::shared_pki`] when that PKI already exists.
    pub fn pki_urls(mut self, urls: PkiUrls) -> Self {
        self.pki_urls = urls;
        self
    }

    /// Issues the certificates from the [`LabPki`] in `dir` ([`LabPki::open`]), creating it
    /// there first (with [`LabTokenBuilder::pki_urls`]) when `dir` holds none — so several
    /// tokens (e.g. the demo's) chain to one root. The caller removes `dir` when done; by
    /// default every token has its own PKI inside its directory.
    pub fn shared_pki(mut self, dir: impl Into<PathBuf>) -> Self {
        self.shared_pki = Some(dir.into());
        self
    }

    /// Sets the token label (default [`TOKEN_LABEL`]; 1..=32 bytes).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the validity window of the RSA certificate (default [`CertValidity::Valid`]).
    pub fn rsa_cert(mut self, validity: CertValidity) -> Self {
        self.rsa_validity = validity;
        self
    }

    /// Sets the validity window of the EC certificate (default [`CertValidity::Valid`]).
    pub fn ec_cert(mut self, validity: CertValidity) -> Self {
        self.ec_validity = validity;
        self
    }

    /// Sets the key usage of the EC certificate (default [`DscKeyUsage::Signing`];
    /// [`DscKeyUsage::EncipherOnly`] makes a certificate that may not sign).
    pub fn ec_key_usage(mut self, key_usage: DscKeyUsage) -> Self {
        self.ec_key_usage = key_usage;
        self
    }

    /// Provisions the token: a new temporary directory holding the module
    /// configuration, token storage and lab PKI; `C_InitToken` with the SO
    /// PIN; `C_InitPIN` with the user PIN; then both keys and their certificates,
    /// issued by the PKI's licensed CA with [`LabKey::policy_oid`] and subject
    /// `CN=Demo Signer, serialNumber=<hex>, O=Personal, ST=Karnataka, C=IN`.
    pub fn build(self) -> Result<LabToken> {
        if self.label.is_empty() || self.label.len() > MAX_LABEL_LEN {
            return Err(LabError::InvalidLabel(self.label));
        }
        let module_path = self.module.library_path()?;
        let dir = tempfile::Builder::new()
            .prefix("securesign-lab-")
            .tempdir()
            .map_err(LabError::io("create the token's temporary directory"))?;
        let config_path = self.module.write_config(dir.path())?;

        // The RSA keys (two CAs, one signer) are the slow part: the signer's keys are
        // generated while the PKI is being created.
        let key_path = |key: LabKey| dir.path().join(format!("{}.key.pem", key.file_stem()));
        let (rsa_key, ec_key) = (key_path(LabKey::Rsa), key_path(LabKey::Ec));
        let pki = std::thread::scope(|scope| {
            let keys = scope.spawn(|| {
                generate_key(LabKey::Rsa, &rsa_key)?;
                generate_key(LabKey::Ec, &ec_key)
            });
            let pki = match &self.shared_pki {
                Some(shared) if shared.join("urls.txt").exists() => LabPki::open(shared),
                Some(shared) => LabPki::create(shared, self.pki_urls.clone()),
                None => LabPki::create(&dir.path().join("pki"), self.pki_urls.clone()),
            };
            let keys = keys.join().unwrap_or_else(|_| {
                Err(LabError::Io {
                    context: "generate the token's keys".to_owned(),
                    source: std::io::Error::other("key generation thread panicked"),
                })
            });
            keys.and(pki)
        })?;
        let spec = |key: LabKey, validity: CertValidity, key_usage: DscKeyUsage| DscSpec {
            key,
            policy: key.policy_oid(),
            validity,
            key_usage,
            ..DscSpec::class3(SIGNER_NAME)
        };
        let rsa = pki.issue_with_key(
            &spec(LabKey::Rsa, self.rsa_validity, DscKeyUsage::Signing),
            Some(&rsa_key),
        )?;
        let ec = pki.issue_with_key(
            &spec(LabKey::Ec, self.ec_validity, self.ec_key_usage),
            Some(&ec_key),
        )?;

        let token = LabToken {
            module: self.module,
            module_path,
            config_path,
            label: self.label,
            rsa_cert_der: rsa.cert_der.clone(),
            ec_cert_der: ec.cert_der.clone(),
            pki,
            dir,
        };
        token.initialise()?;
        token.import(LabKey::Rsa, &rsa)?;
        token.import(LabKey::Ec, &ec)?;
        Ok(token)
    }
}

/// A real PKCS#11 token, provisioned fresh, that lives as long as this value.
///
/// Dropping it deletes its temporary directory (configuration, token storage
/// and key material). It holds no secrets beyond the well-known test PINs.
#[derive(Debug)]
pub struct LabToken {
    module: Module,
    module_path: PathBuf,
    config_path: PathBuf,
    label: String,
    rsa_cert_der: Vec<u8>,
    ec_cert_der: Vec<u8>,
    pki: LabPki,
    dir: TempDir,
}

impl LabToken {
    /// A fresh SoftHSM2 token with the default label and valid certificates.
    pub fn softhsm() -> Result<Self> {
        Self::builder(Module::SoftHsm2).build()
    }

    /// A fresh kryoptic token with the default label and valid certificates.
    ///
    /// Fails with [`LabError::KryopticNotBuilt`] (naming the script to run)
    /// when the module has not been built.
    pub fn kryoptic() -> Result<Self> {
        Self::builder(Module::Kryoptic).build()
    }

    /// A builder for a token on `module`, for non-default options.
    pub fn builder(module: Module) -> LabTokenBuilder {
        LabTokenBuilder {
            module,
            label: TOKEN_LABEL.to_owned(),
            rsa_validity: CertValidity::Valid,
            ec_validity: CertValidity::Valid,
            ec_key_usage: DscKeyUsage::Signing,
            pki_urls: PkiUrls::default(),
            shared_pki: None,
        }
    }

    /// Keeps the token's directory after this value drops (for the demo), returning its path.
    /// The caller removes it when done.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    /// Which module the token lives on.
    pub fn module(&self) -> Module {
        self.module
    }

    /// The module's shared library, to load with `C_GetFunctionList`.
    pub fn module_path(&self) -> &Path {
        &self.module_path
    }

    /// The module configuration file (the value of [`Module::config_env_var`]).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The token's private temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The user PIN: [`USER_PIN`], or [`KRYOPTIC_USER_PIN`] on kryoptic.
    pub fn user_pin(&self) -> &'static str {
        match self.module {
            Module::SoftHsm2 => USER_PIN,
            Module::Kryoptic => KRYOPTIC_USER_PIN,
        }
    }

    /// The Security Officer PIN ([`SO_PIN`]).
    pub fn so_pin(&self) -> &'static str {
        SO_PIN
    }

    /// The environment a process needs so the module finds this token, e.g.
    /// `[("SOFTHSM2_CONF", "/tmp/securesign-lab-…/softhsm2.conf")]`.
    /// Pass it to child processes (CLI tests) with `Command::envs`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            self.module.config_env_var().to_owned(),
            self.config_path.display().to_string(),
        )]
    }

    /// Sets [`LabToken::env`] in this process. Call it before the module's
    /// `C_Initialize`, which is when the module reads it. The environment is
    /// process-wide: with nextest every test is its own process, so one
    /// token per module per test process is safe.
    pub fn apply_env(&self) {
        for (key, value) in self.env() {
            std::env::set_var(key, value);
        }
    }

    /// The DER certificate of `key`, byte-identical to the token's `CKA_VALUE`.
    pub fn cert_der(&self, key: LabKey) -> &[u8] {
        match key {
            LabKey::Rsa => &self.rsa_cert_der,
            LabKey::Ec => &self.ec_cert_der,
        }
    }

    /// The DER certificate of the RSA identity (`CKA_ID` `01`).
    pub fn rsa_cert_der(&self) -> &[u8] {
        &self.rsa_cert_der
    }

    /// The DER certificate of the EC identity (`CKA_ID` `02`).
    pub fn ec_cert_der(&self) -> &[u8] {
        &self.ec_cert_der
    }

    /// The DER certificate of the licensed CA that issued both (not on the token);
    /// the same as `pki().ca_der()`.
    pub fn ca_cert_der(&self) -> &[u8] {
        self.pki.ca_der()
    }

    /// The lab PKI that issued the token's certificates: its root ([`LabPki::root_pem`]) is
    /// the trust anchor, its licensed CA ([`LabPki::ca_pem`]) the intermediate.
    pub fn pki(&self) -> &LabPki {
        &self.pki
    }

    /// A `pkcs11-tool` invocation against this token's module and config.
    fn pkcs11_tool(&self) -> Tool {
        Tool::new("pkcs11-tool")
            .env(self.module.config_env_var(), &self.config_path)
            .arg("--module")
            .arg(&self.module_path)
    }

    /// `C_InitToken` on the module's first slot, then `C_InitPIN` as SO.
    fn initialise(&self) -> Result<()> {
        self.pkcs11_tool()
            .args([
                "--slot-index",
                "0",
                "--init-token",
                "--label",
                &self.label,
                "--so-pin",
            ])
            .secret_arg(SO_PIN)
            .run()?;
        self.pkcs11_tool()
            .args([
                "--token-label",
                &self.label,
                "--login",
                "--login-type",
                "so",
                "--so-pin",
            ])
            .secret_arg(SO_PIN)
            .args(["--init-pin", "--new-pin"])
            .secret_arg(self.user_pin())
            .run()?;
        Ok(())
    }

    /// Imports the private key, public key and certificate of `key`.
    fn import(&self, key: LabKey, issued: &IssuedDsc) -> Result<()> {
        let objects = [
            ("privkey", &issued.private_key_der),
            ("pubkey", &issued.public_key_der),
            ("cert", &issued.cert_der_path),
        ];
        let id = hex(key.id());
        for (object_type, file) in objects {
            let mut tool = self
                .pkcs11_tool()
                .args(["--token-label", &self.label, "--login", "--pin"])
                .secret_arg(self.user_pin())
                .arg("--write-object")
                .arg(file)
                .args(["--type", object_type, "--id", &id, "--label", key.label()]);
            if object_type != "cert" {
                tool = tool.arg("--usage-sign");
            }
            tool.run()?;
        }
        Ok(())
    }
}

/// Lower-case hex, as `pkcs11-tool --id` expects.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
