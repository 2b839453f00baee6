//! A two-level lab PKI shaped like India's CCA hierarchy, made with the `openssl` CLI:
//!
//! ```text
//! CN=CCA India Lab Root, O=India PKI Lab, C=IN           RSA-2048, self-signed (trust anchor)
//! └── CN=SecureSign Lab Licensed CA, O=SecureSign Lab, C=IN   RSA-2048, CA:true pathlen:0
//!     ├── end-entity DSCs (issue)                        RSA-2048 or EC P-256
//!     └── CN=SecureSign Lab OCSP Responder               EC P-256, EKU OCSPSigning (delegated)
//! ```
//!
//! Both CAs are `openssl ca` databases (`index.txt`) in the PKI directory, so revocation
//! (`openssl ca -revoke`), CRLs (`openssl ca -gencrl`) and the OCSP responder
//! (`openssl ocsp -index`) all read the same state.
//!
//! Layout of the PKI directory:
//!
//! | Path | What |
//! |---|---|
//! | `root.pem`, `root.der` | the root certificate (trust anchor) |
//! | `ca.pem`, `ca.der` | the licensed CA certificate (intermediate) |
//! | `root/`, `ca/` | each CA's key, `openssl.cnf`, `index.txt`, `crlnumber`, issued copies |
//! | `issued/NNN-name/` | one issued certificate: `key.pem`, `key.der` (PKCS#8), `pub.der`, `cert.pem`, `cert.der`, `ext.cnf` |
//! | `crl/ca.crl`, `crl/root.crl` | DER CRLs written by [`LabPki::publish_crls`] |
//! | `ocsp/responder.pem`, `ocsp/responder.key.pem` | the delegated OCSP responder's certificate and key |
//! | `urls.txt` | the [`PkiUrls`], so [`LabPki::open`] can reload the PKI |

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration as StdDuration, Instant};

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::certs::openssl_time;
use crate::tool::Tool;
use crate::{CertValidity, LabError, LabKey, Result};

/// CCA India certificate policy OID of a Class 2 DSC.
pub const POLICY_CLASS2: &str = "2.16.356.100.2.2";
/// CCA India certificate policy OID of a Class 3 DSC.
pub const POLICY_CLASS3: &str = "2.16.356.100.2.3";
/// CCA India certificate policy OID of a document signer certificate.
pub const POLICY_DOCUMENT_SIGNER: &str = "2.16.356.100.10.1";

/// Subject of the lab root (the stand-in for "CCA India").
const ROOT_SUBJECT: &str = "/CN=CCA India Lab Root/O=India PKI Lab/C=IN";
/// Subject of the licensed CA under the root.
const CA_SUBJECT: &str = "/CN=SecureSign Lab Licensed CA/O=SecureSign Lab/C=IN";
/// Subject of the delegated OCSP responder.
const OCSP_SUBJECT: &str = "/CN=SecureSign Lab OCSP Responder/O=SecureSign Lab/C=IN";
/// Subject of the extra (path-too-long) CA under the licensed CA.
const EXTRA_CA_SUBJECT: &str = "/CN=SecureSign Lab Sub-CA (path too long)/O=SecureSign Lab/C=IN";

/// Both CAs are valid from 5 years ago to 10 years from now (covering every
/// [`CertValidity`] preset).
const CA_VALIDITY: CertValidity = CertValidity::DaysFromNow {
    not_before: -5 * 365,
    not_after: 10 * 365,
};

/// What `openssl ocsp` prints once it listens.
const OCSP_READY: &str = "waiting for OCSP client connections";

/// How long [`LabPki::start_ocsp_responder`] waits for the responder to accept connections.
const OCSP_START_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// Where the PKI's certificates point relying parties. `None` leaves the extension out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiUrls {
    /// Base URL of the CRLs, e.g. `http://127.0.0.1:41234`: end-entity certificates get the
    /// CRL distribution point `<crl_base>/ca.crl`, the licensed CA certificate `<crl_base>/root.crl`
    /// (the files [`LabPki::publish_crls`] writes, to be served from its directory).
    pub crl_base: Option<String>,
    /// URL of the OCSP responder, e.g. `http://127.0.0.1:41235`, put in the authority
    /// information access (OCSP) of end-entity certificates.
    pub ocsp: Option<String>,
}

/// The freshness of the CRLs [`LabPki::publish_crls`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlFreshness {
    /// `lastUpdate` one hour ago, `nextUpdate` 7 days from now.
    Current,
    /// `lastUpdate` 8 days ago, `nextUpdate` 1 day ago: a relying party must refuse it as expired.
    Expired,
}

/// The key usage of an end-entity DSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DscKeyUsage {
    /// critical digitalSignature, nonRepudiation: a signing DSC.
    Signing,
    /// critical keyEncipherment, dataEncipherment: an encryption certificate, which forbids
    /// signatures.
    EncipherOnly,
}

/// What to issue with [`LabPki::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DscSpec {
    /// The key type (a new key is generated per issuance).
    pub key: LabKey,
    /// The subject common name.
    pub common_name: String,
    /// The subject `serialNumber` attribute (Indian DSCs carry a hex hash derived from the PAN).
    pub serial_number: Option<String>,
    /// The certificate policy OID, e.g. [`POLICY_CLASS3`].
    pub policy: &'static str,
    /// The validity window.
    pub validity: CertValidity,
    /// The key usage.
    pub key_usage: DscKeyUsage,
    /// Whether to add the CRL distribution point (only when the PKI has [`PkiUrls::crl_base`]).
    pub crl_dp: bool,
    /// Whether to add the OCSP URL (only when the PKI has [`PkiUrls::ocsp`]).
    pub ocsp: bool,
}

impl DscSpec {
    /// A valid class-3 signing DSC with an RSA-2048 key and subject
    /// `CN=<common_name>, serialNumber=<SHA-256 hex of a made-up PAN>, O=Personal, ST=Karnataka, C=IN`;
    /// the CRL distribution point and OCSP URL are included when the PKI has the URLs.
    pub fn class3(common_name: &str) -> Self {
        Self {
            key: LabKey::Rsa,
            common_name: common_name.to_owned(),
            serial_number: Some(pan_hash(common_name)),
            policy: POLICY_CLASS3,
            validity: CertValidity::Valid,
            key_usage: DscKeyUsage::Signing,
            crl_dp: true,
            ocsp: true,
        }
    }

    /// The `-subj` argument: `CN`, `serialNumber`, `O=Personal`, `ST=Karnataka`, `C=IN`, in
    /// this order in the DER (as Indian DSCs print, common name first).
    fn subject(&self) -> String {
        let mut subject = format!("/CN={}", escape_subject(&self.common_name));
        if let Some(serial) = &self.serial_number {
            let _ = write!(subject, "/serialNumber={}", escape_subject(serial));
        }
        subject.push_str("/O=Personal/ST=Karnataka/C=IN");
        subject
    }
}

/// A 64-hex-digit SHA-256 of a made-up PAN derived from `name`, like the subject
/// `serialNumber` of an Indian DSC.
fn pan_hash(name: &str) -> String {
    let digest = Sha256::digest(format!("PAN:{name}").as_bytes());
    hex(&digest)
}

/// Escapes `/` and `\` for `openssl req -subj`.
fn escape_subject(value: &str) -> String {
    value.replace('\\', "\\\\").replace('/', "\\/")
}

/// One issued certificate and its key, as files (and the certificate's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedDsc {
    /// The key type.
    pub key: LabKey,
    /// The private key, PEM (PKCS#8).
    pub key_pem: PathBuf,
    /// The private key, DER PKCS#8.
    pub private_key_der: PathBuf,
    /// The public key, DER SubjectPublicKeyInfo.
    pub public_key_der: PathBuf,
    /// The certificate, PEM.
    pub cert_pem: PathBuf,
    /// The certificate, DER file.
    pub cert_der_path: PathBuf,
    /// The certificate bytes (DER).
    pub cert_der: Vec<u8>,
}

/// One CA of the PKI: an `openssl ca` directory.
#[derive(Debug)]
struct CaFiles {
    config: PathBuf,
    key: PathBuf,
    cert_pem: PathBuf,
    cert_der: Vec<u8>,
}

/// The lab PKI: a root and a licensed CA, living in one directory (see the module docs).
#[derive(Debug)]
pub struct LabPki {
    dir: PathBuf,
    urls: PkiUrls,
    root: CaFiles,
    ca: CaFiles,
    /// Serialises `openssl ca` runs on the databases; numbers the `issued/` directories.
    state: Mutex<DbState>,
    /// The OCSP responders started from this PKI and still alive, restarted when the
    /// licensed CA's database changes (OpenSSL 3.0's responder reads it only at start).
    responders: Mutex<Vec<Weak<Mutex<ResponderProcess>>>>,
}

impl LabPki {
    /// Creates the root "CCA India Lab Root" (RSA-2048, self-signed, CA:true critical,
    /// keyCertSign+cRLSign critical, valid 5 years ago..+10 years) and the licensed CA
    /// "SecureSign Lab Licensed CA" under it (RSA-2048, basicConstraints critical CA:true
    /// pathlen:0, certificatePolicies the three CCA OIDs, CRL distribution point
    /// `<crl_base>/root.crl` when `urls.crl_base` is set) in `dir` (created if needed).
    pub fn create(dir: &Path, urls: PkiUrls) -> Result<LabPki> {
        create_dir(dir)?;
        write_file(&dir.join("urls.txt"), &urls_file(&urls))?;
        let root_dir = dir.join("root");
        let ca_dir = dir.join("ca");
        for ca in [&root_dir, &ca_dir] {
            create_dir(&ca.join("issued"))?;
            write_file(&ca.join("index.txt"), "")?;
            write_file(&ca.join("crlnumber"), "1000\n")?;
            write_file(&ca.join("openssl.cnf"), &ca_config(ca))?;
        }
        let root_key = root_dir.join("key.pem");
        let ca_key = ca_dir.join("key.pem");
        // The two RSA keys are the slow part: generate them side by side.
        std::thread::scope(|scope| {
            let root = scope.spawn(|| genpkey(LabKey::Rsa, &root_key));
            let ca = genpkey(LabKey::Rsa, &ca_key);
            let root = root.join().unwrap_or_else(|_| {
                Err(LabError::Io {
                    context: "generate the root key".to_owned(),
                    source: std::io::Error::other("key generation thread panicked"),
                })
            });
            root.and(ca)
        })?;

        // The root: self-signed with `openssl ca -selfsign`, so it is in its own database.
        let root_config = root_dir.join("openssl.cnf");
        let root_ext = root_dir.join("root-ext.cnf");
        write_file(
            &root_ext,
            "[ ext ]\n\
             basicConstraints     = critical, CA:true\n\
             keyUsage             = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n",
        )?;
        let root_csr = root_dir.join("root.csr.pem");
        new_csr(&root_config, &root_key, ROOT_SUBJECT, &root_csr)?;
        let root_pem = dir.join("root.pem");
        let (start, end) = CA_VALIDITY.window(OffsetDateTime::now_utc())?;
        ca_sign(
            &root_config,
            None,
            &root_key,
            &root_csr,
            &root_ext,
            start,
            end,
            &root_pem,
        )?;
        let root = CaFiles {
            config: root_config,
            key: root_key,
            cert_der: pem_to_der(&root_pem, &dir.join("root.der"))?,
            cert_pem: root_pem,
        };

        // The licensed CA, issued by the root.
        let ca_config_path = ca_dir.join("openssl.cnf");
        let ca_ext = ca_dir.join("ca-ext.cnf");
        let mut ext = format!(
            "[ ext ]\n\
             basicConstraints       = critical, CA:true, pathlen:0\n\
             keyUsage               = critical, keyCertSign, cRLSign\n\
             certificatePolicies    = {POLICY_CLASS2}, {POLICY_CLASS3}, {POLICY_DOCUMENT_SIGNER}\n\
             subjectKeyIdentifier   = hash\n\
             authorityKeyIdentifier = keyid\n"
        );
        if let Some(base) = &urls.crl_base {
            let _ = writeln!(
                ext,
                "crlDistributionPoints  = URI:{}",
                crl_url(base, "root")
            );
        }
        write_file(&ca_ext, &ext)?;
        let ca_csr = ca_dir.join("ca.csr.pem");
        new_csr(&ca_config_path, &ca_key, CA_SUBJECT, &ca_csr)?;
        let ca_pem = dir.join("ca.pem");
        ca_sign(
            &root.config,
            Some(&root.cert_pem),
            &root.key,
            &ca_csr,
            &ca_ext,
            start,
            end,
            &ca_pem,
        )?;
        let ca = CaFiles {
            config: ca_config_path,
            key: ca_key,
            cert_der: pem_to_der(&ca_pem, &dir.join("ca.der"))?,
            cert_pem: ca_pem,
        };
        Ok(LabPki {
            dir: dir.to_owned(),
            urls,
            root,
            ca,
            state: Mutex::new(DbState::new(1)),
            responders: Mutex::new(Vec::new()),
        })
    }

    /// Reopens a PKI that [`LabPki::create`] made in `dir` (e.g. by another process: the
    /// demo scripts share one PKI between tokens), with the URLs it was created with.
    pub fn open(dir: &Path) -> Result<LabPki> {
        let urls_path = dir.join("urls.txt");
        let urls = fs::read_to_string(&urls_path).map_err(LabError::io(format!(
            "read {} (not a lab PKI?)",
            urls_path.display()
        )))?;
        let field = |name: &str| {
            urls.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let urls = PkiUrls {
            crl_base: field("crl_base="),
            ocsp: field("ocsp="),
        };
        let load = |name: &str| -> Result<CaFiles> {
            let ca_dir = dir.join(name);
            let der_path = dir.join(format!("{name}.der"));
            Ok(CaFiles {
                config: ca_dir.join("openssl.cnf"),
                key: ca_dir.join("key.pem"),
                cert_pem: dir.join(format!("{name}.pem")),
                cert_der: fs::read(&der_path)
                    .map_err(LabError::io(format!("read {}", der_path.display())))?,
            })
        };
        let issued = dir.join("issued");
        let next = match fs::read_dir(&issued) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.split('-').next()?.parse::<u32>().ok()
                })
                .max()
                .map_or(1, |n| n.saturating_add(1)),
            Err(err) if err.kind() == ErrorKind::NotFound => 1,
            Err(err) => {
                return Err(LabError::Io {
                    context: format!("read {}", issued.display()),
                    source: err,
                })
            }
        };
        Ok(LabPki {
            dir: dir.to_owned(),
            urls,
            root: load("root")?,
            ca: load("ca")?,
            state: Mutex::new(DbState::new(next)),
            responders: Mutex::new(Vec::new()),
        })
    }

    /// The PKI's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URLs the PKI puts in certificates.
    pub fn urls(&self) -> &PkiUrls {
        &self.urls
    }

    /// The root certificate, PEM (the trust anchor).
    pub fn root_pem(&self) -> &Path {
        &self.root.cert_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root.cert_der
    }

    /// The licensed CA certificate, PEM (the intermediate for path building).
    pub fn ca_pem(&self) -> &Path {
        &self.ca.cert_pem
    }

    /// The licensed CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca.cert_der
    }

    /// The directory [`LabPki::publish_crls`] writes to (`<dir>/crl`).
    pub fn crl_dir(&self) -> PathBuf {
        self.dir.join("crl")
    }

    /// The delegated OCSP responder's certificate (PEM; issued by the licensed CA, EKU
    /// OCSPSigning, id-pkix-ocsp-nocheck), at `<dir>/ocsp/responder.pem`. It exists once
    /// [`LabPki::start_ocsp_responder`] has been called.
    pub fn ocsp_signer_pem(&self) -> PathBuf {
        self.dir.join("ocsp").join("responder.pem")
    }

    /// A new key ([`LabKey::Rsa`] or [`LabKey::Ec`]) and its end-entity DSC issued by the
    /// licensed CA, in a new `issued/NNN-name/` directory.
    pub fn issue(&self, spec: &DscSpec) -> Result<IssuedDsc> {
        self.issue_with_key(spec, None)
    }

    /// [`LabPki::issue`], with a key already generated (e.g. by `openssl genpkey`; any
    /// size the lab's [`LabKey`]s do not offer, such as RSA-4096) when `key_pem` is given.
    pub fn issue_with_key(&self, spec: &DscSpec, key_pem: Option<&Path>) -> Result<IssuedDsc> {
        let ext = self.ee_ext(spec);
        let ca = (&self.ca.config, &self.ca.cert_pem, &self.ca.key);
        self.issue_from(
            ca,
            spec.key,
            &spec.subject(),
            &ext,
            spec.validity,
            key_pem,
            &spec.common_name,
        )
    }

    /// Marks `dsc` revoked (reason keyCompromise) in the licensed CA's database: the next CRL
    /// ([`LabPki::publish_crls`]) lists it and the OCSP responder answers `revoked`.
    pub fn revoke(&self, dsc: &IssuedDsc) -> Result<()> {
        let db = self.lock();
        Tool::new("openssl")
            .args(["ca", "-batch", "-config"])
            .arg(&self.ca.config)
            .arg("-cert")
            .arg(&self.ca.cert_pem)
            .arg("-keyfile")
            .arg(&self.ca.key)
            .arg("-revoke")
            .arg(&dsc.cert_pem)
            .args(["-crl_reason", "keyCompromise"])
            .run()?;
        drop(db);
        self.restart_responders()
    }

    /// Writes the licensed CA's CRL to `<dir>/crl/ca.crl` and the root's CRL to
    /// `<dir>/crl/root.crl` (both DER; the directory is created), with the freshness asked
    /// for, and returns the CRL directory.
    pub fn publish_crls(&self, freshness: CrlFreshness) -> Result<PathBuf> {
        let now = OffsetDateTime::now_utc();
        let (last, next) = match freshness {
            CrlFreshness::Current => (now - Duration::hours(1), now + Duration::days(7)),
            CrlFreshness::Expired => (now - Duration::days(8), now - Duration::days(1)),
        };
        let crl_dir = self.crl_dir();
        create_dir(&crl_dir)?;
        let _db = self.lock();
        for (name, ca) in [("ca", &self.ca), ("root", &self.root)] {
            let pem = crl_dir.join(format!(".{name}.pem.tmp"));
            Tool::new("openssl")
                .args(["ca", "-batch", "-gencrl", "-config"])
                .arg(&ca.config)
                .arg("-cert")
                .arg(&ca.cert_pem)
                .arg("-keyfile")
                .arg(&ca.key)
                .args([
                    "-crl_lastupdate",
                    &openssl_time(last),
                    "-crl_nextupdate",
                    &openssl_time(next),
                ])
                .arg("-out")
                .arg(&pem)
                .run()?;
            // Written next to the target, then renamed: a reader never sees half a CRL (and
            // the temporary names do not end in .crl/.der/.pem, which a CRL loader may read).
            let tmp = crl_dir.join(format!(".{name}.der.tmp"));
            Tool::new("openssl")
                .args(["crl", "-outform", "DER", "-in"])
                .arg(&pem)
                .arg("-out")
                .arg(&tmp)
                .run()?;
            let target = crl_dir.join(format!("{name}.crl"));
            fs::rename(&tmp, &target)
                .map_err(LabError::io(format!("write {}", target.display())))?;
            fs::remove_file(&pem).map_err(LabError::io(format!("remove {}", pem.display())))?;
        }
        Ok(crl_dir)
    }

    /// An intermediate CA (EC P-256, CA:true, anyPolicy) *under the licensed CA* — which has
    /// pathlen:0, so any path through it is too long — and an end-entity DSC it issues.
    /// Returns `(the extra CA, the end entity)`.
    pub fn issue_under_extra_ca(&self, spec: &DscSpec) -> Result<(IssuedDsc, IssuedDsc)> {
        let ext = "[ ext ]\n\
                   basicConstraints       = critical, CA:true\n\
                   keyUsage               = critical, keyCertSign, cRLSign\n\
                   certificatePolicies    = 2.5.29.32.0\n\
                   subjectKeyIdentifier   = hash\n\
                   authorityKeyIdentifier = keyid\n";
        let validity = CA_VALIDITY;
        let ca = (&self.ca.config, &self.ca.cert_pem, &self.ca.key);
        let extra = self.issue_from(
            ca,
            LabKey::Ec,
            EXTRA_CA_SUBJECT,
            ext,
            validity,
            None,
            "extra-ca",
        )?;

        // The extra CA gets its own `openssl ca` directory next to its certificate.
        let extra_dir = parent(&extra.cert_pem)?;
        create_dir(&extra_dir.join("issued"))?;
        write_file(&extra_dir.join("index.txt"), "")?;
        write_file(&extra_dir.join("crlnumber"), "1000\n")?;
        let config = extra_dir.join("openssl.cnf");
        write_file(&config, &ca_config(&extra_dir))?;
        let ee_ext = self.ee_ext(spec);
        let sub = (&config, &extra.cert_pem, &extra.key_pem);
        let ee = self.issue_from(
            sub,
            spec.key,
            &spec.subject(),
            &ee_ext,
            spec.validity,
            None,
            &spec.common_name,
        )?;
        Ok((extra, ee))
    }

    /// A self-signed certificate with the same subject and extensions as `spec` would get
    /// from [`LabPki::issue`] (a look-alike that chains to nothing). It is recorded in a
    /// scratch database, not the licensed CA's.
    pub fn self_signed_look_alike(&self, spec: &DscSpec) -> Result<IssuedDsc> {
        let dir = self.new_issued_dir(&format!("look-alike-{}", spec.common_name))?;
        create_dir(&dir.join("issued"))?;
        write_file(&dir.join("index.txt"), "")?;
        let config = dir.join("openssl.cnf");
        write_file(&config, &ca_config(&dir))?;
        let ext = self.ee_ext(spec);
        let files = IssuedFiles::new(&dir, spec.key);
        genpkey(spec.key, &files.key_pem)?;
        files.key_forms()?;
        let ext_path = dir.join("ext.cnf");
        write_file(&ext_path, &ext)?;
        let csr = dir.join("csr.pem");
        new_csr(&config, &files.key_pem, &spec.subject(), &csr)?;
        let (start, end) = spec.validity.window(OffsetDateTime::now_utc())?;
        ca_sign(
            &config,
            None,
            &files.key_pem,
            &csr,
            &ext_path,
            start,
            end,
            &files.cert_pem,
        )?;
        files.finish()
    }

    /// Starts `openssl ocsp` as a responder for the licensed CA's database (`ca/index.txt`;
    /// restarted by [`LabPki::revoke`] and [`LabPki::issue`], so later changes show) on port `port` (OpenSSL 3.0's
    /// `-port` takes no address; the responder listens on all interfaces), answering with
    /// `-ndays 1` and echoing request nonces. It signs with a **delegated responder
    /// certificate** (EC P-256, issued by the licensed CA, EKU OCSPSigning, id-pkix-ocsp-nocheck),
    /// at [`LabPki::ocsp_signer_pem`], which it includes in every response: a verifier finds
    /// it in the response's `certs` and chains it to the licensed CA (which issued the
    /// certificate asked about).
    ///
    /// Waits until the responder listens (it prints so; a bare TCP connect is not used as
    /// a probe because OpenSSL 3.0's responder stops answering after a connection that closes
    /// without a request — do not health-check it that way). Its output goes to
    /// `<dir>/ocsp/responder-<port>.log`. Dropping the [`OcspResponder`] kills and reaps it
    /// (by its PID).
    pub fn start_ocsp_responder(&self, port: u16) -> Result<OcspResponder> {
        let (signer_pem, signer_key) = self.ocsp_signer()?;
        let index = parent(&self.ca.config)?.join("index.txt");
        let mut args: Vec<OsString> = vec!["ocsp".into(), "-index".into(), index.into()];
        args.extend(["-port".into(), port.to_string().into(), "-rsigner".into()]);
        args.extend([signer_pem.clone().into(), "-rkey".into(), signer_key.into()]);
        args.extend(["-CA".into(), self.ca.cert_pem.clone().into()]);
        args.extend(["-ndays", "1", "-rmd", "sha256", "-ignore_err"].map(OsString::from));
        let mut process = ResponderProcess {
            args,
            port,
            log: self.dir.join("ocsp").join(format!("responder-{port}.log")),
            child: None,
        };
        process.start()?;
        let process = Arc::new(Mutex::new(process));
        let mut responders = self
            .responders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        responders.retain(|weak| weak.strong_count() > 0);
        responders.push(Arc::downgrade(&process));
        Ok(OcspResponder {
            process,
            port,
            signer_pem,
        })
    }

    /// Restarts the live OCSP responders so they answer from the current database.
    fn restart_responders(&self) -> Result<()> {
        let live: Vec<_> = self
            .responders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for process in live {
            let mut process = process.lock().unwrap_or_else(PoisonError::into_inner);
            process.stop();
            process.start()?;
        }
        Ok(())
    }

    /// The delegated OCSP responder certificate and key (PEM), issued on first use.
    fn ocsp_signer(&self) -> Result<(PathBuf, PathBuf)> {
        let dir = self.dir.join("ocsp");
        let cert_pem = self.ocsp_signer_pem();
        let key_pem = dir.join("responder.key.pem");
        if cert_pem.exists() && key_pem.exists() {
            return Ok((cert_pem, key_pem));
        }
        let ext = "[ ext ]\n\
                   basicConstraints       = critical, CA:false\n\
                   keyUsage               = critical, digitalSignature\n\
                   extendedKeyUsage       = critical, OCSPSigning\n\
                   noCheck                = ignored\n\
                   subjectKeyIdentifier   = hash\n\
                   authorityKeyIdentifier = keyid\n";
        let ca = (&self.ca.config, &self.ca.cert_pem, &self.ca.key);
        let issued = self.issue_from(
            ca,
            LabKey::Ec,
            OCSP_SUBJECT,
            ext,
            CA_VALIDITY,
            None,
            "ocsp-responder",
        )?;
        create_dir(&dir)?;
        for (from, to) in [(&issued.key_pem, &key_pem), (&issued.cert_pem, &cert_pem)] {
            fs::copy(from, to).map_err(LabError::io(format!("write {}", to.display())))?;
        }
        Ok((cert_pem, key_pem))
    }

    /// The `[ ext ]` section of an end-entity DSC for `spec`.
    fn ee_ext(&self, spec: &DscSpec) -> String {
        let mut ext = format!(
            "[ ext ]\n\
             basicConstraints       = critical, CA:false\n\
             keyUsage               = critical, {}\n\
             certificatePolicies    = {}\n\
             subjectKeyIdentifier   = hash\n\
             authorityKeyIdentifier = keyid\n",
            key_usage_value(spec.key_usage),
            spec.policy,
        );
        self.add_urls(&mut ext, spec.crl_dp, spec.ocsp);
        ext
    }

    /// Appends the CRL distribution point / OCSP URL lines the PKI can give.
    fn add_urls(&self, ext: &mut String, crl_dp: bool, ocsp: bool) {
        if let (true, Some(base)) = (crl_dp, &self.urls.crl_base) {
            let _ = writeln!(ext, "crlDistributionPoints  = URI:{}", crl_url(base, "ca"));
        }
        if let (true, Some(url)) = (ocsp, &self.urls.ocsp) {
            let _ = writeln!(ext, "authorityInfoAccess    = OCSP;URI:{url}");
        }
    }

    /// Generates (unless given) a key and issues its certificate with `ca` = (config,
    /// certificate, key) and the extensions `ext` (an `[ ext ]` section).
    #[allow(clippy::too_many_arguments)]
    fn issue_from(
        &self,
        ca: (&PathBuf, &PathBuf, &PathBuf),
        key: LabKey,
        subject: &str,
        ext: &str,
        validity: CertValidity,
        key_pem: Option<&Path>,
        name: &str,
    ) -> Result<IssuedDsc> {
        let (start, end) = validity.window(OffsetDateTime::now_utc())?;
        let dir = self.new_issued_dir(name)?;
        let files = IssuedFiles::new(&dir, key);
        match key_pem {
            Some(existing) => {
                fs::copy(existing, &files.key_pem)
                    .map_err(LabError::io(format!("write {}", files.key_pem.display())))?;
            }
            None => genpkey(key, &files.key_pem)?,
        }
        files.key_forms()?;
        let ext_path = dir.join("ext.cnf");
        write_file(&ext_path, ext)?;
        let csr = dir.join("csr.pem");
        let (config, cert, ca_key) = ca;
        new_csr(config, &files.key_pem, subject, &csr)?;
        {
            let _db = self.lock();
            ca_sign(
                config,
                Some(cert),
                ca_key,
                &csr,
                &ext_path,
                start,
                end,
                &files.cert_pem,
            )?;
        }
        let issued = files.finish()?;
        if config == &self.ca.config {
            self.restart_responders()?;
        }
        Ok(issued)
    }

    /// A new, numbered `issued/NNN-name` directory.
    fn new_issued_dir(&self, name: &str) -> Result<PathBuf> {
        let n = {
            let mut db = self.lock();
            let n = db.next_dir;
            db.next_dir = n.saturating_add(1);
            n
        };
        let slug: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let dir = self.dir.join("issued").join(format!("{n:03}-{slug}"));
        create_dir(&dir)?;
        Ok(dir)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DbState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the [`LabPki`] tracks about its databases.
#[derive(Debug)]
struct DbState {
    /// The number of the next `issued/NNN-…` directory.
    next_dir: u32,
}

impl DbState {
    fn new(next_dir: u32) -> Self {
        Self { next_dir }
    }
}

/// `openssl ocsp` serving the licensed CA's database; killed (by its PID) and reaped on drop.
///
/// OpenSSL 3.0's responder reads the database only when it starts, so the [`LabPki`]
/// restarts it on the same port after every [`LabPki::revoke`] and [`LabPki::issue`]
/// (the PID changes; a request arriving during the restart, ~50 ms, may be refused).
#[derive(Debug)]
pub struct OcspResponder {
    process: Arc<Mutex<ResponderProcess>>,
    port: u16,
    signer_pem: PathBuf,
}

impl OcspResponder {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The certificate it signs responses with (PEM; also included in every response), the
    /// same as [`LabPki::ocsp_signer_pem`].
    pub fn signer_cert_pem(&self) -> &Path {
        &self.signer_pem
    }

    /// The process id of the running `openssl ocsp`, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let process = self.process.lock().unwrap_or_else(PoisonError::into_inner);
        process.child.as_ref().map(Child::id)
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        self.process
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop();
    }
}

/// The `openssl ocsp` process behind an [`OcspResponder`], restartable.
#[derive(Debug)]
struct ResponderProcess {
    args: Vec<OsString>,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl ResponderProcess {
    /// Spawns the responder and waits until it says it is waiting for connections (it prints
    /// that after binding); fails if it exits first or is not ready within 10 s (the error
    /// includes its output). The port is not probed with a bare connection: OpenSSL 3.0's
    /// responder stops answering after a connection that closes without a request.
    fn start(&mut self) -> Result<()> {
        let log = fs::File::create(&self.log)
            .map_err(LabError::io(format!("create {}", self.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(LabError::io(format!("open {}", self.log.display())))?;
        let child = Command::new("openssl")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|err| match err.kind() {
                ErrorKind::NotFound => LabError::ToolMissing { tool: "openssl" },
                _ => LabError::Io {
                    context: "start `openssl ocsp`".to_owned(),
                    source: err,
                },
            })?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + OCSP_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(self.failed(format!("exited with {status}")));
            }
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(OCSP_READY) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(self.failed(format!(
                    "did not report {OCSP_READY:?} within {} s",
                    OCSP_START_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(StdDuration::from_millis(20));
        }
    }

    /// Kills the process by its PID and reaps it, so the port is free when this returns.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn failed(&self, what: String) -> LabError {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        LabError::Io {
            context: format!("`openssl ocsp` responder on port {}", self.port),
            source: std::io::Error::other(format!("{what}; its output: {}", log.trim())),
        }
    }
}

/// The file names of one issued certificate in its directory.
struct IssuedFiles {
    key: LabKey,
    key_pem: PathBuf,
    private_key_der: PathBuf,
    public_key_der: PathBuf,
    cert_pem: PathBuf,
    cert_der_path: PathBuf,
}

impl IssuedFiles {
    fn new(dir: &Path, key: LabKey) -> Self {
        Self {
            key,
            key_pem: dir.join("key.pem"),
            private_key_der: dir.join("key.der"),
            public_key_der: dir.join("pub.der"),
            cert_pem: dir.join("cert.pem"),
            cert_der_path: dir.join("cert.der"),
        }
    }

    /// Writes the PKCS#8 DER private key and the DER public key from `key.pem`.
    fn key_forms(&self) -> Result<()> {
        Tool::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&self.key_pem)
            .arg("-out")
            .arg(&self.private_key_der)
            .run()?;
        Tool::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&self.key_pem)
            .arg("-out")
            .arg(&self.public_key_der)
            .run()
            .map(drop)
    }

    /// Converts the issued PEM certificate to DER and returns the whole set.
    fn finish(self) -> Result<IssuedDsc> {
        let der = pem_to_der(&self.cert_pem, &self.cert_der_path)?;
        Ok(self.into_dsc(der))
    }

    fn into_dsc(self, cert_der: Vec<u8>) -> IssuedDsc {
        IssuedDsc {
            key: self.key,
            key_pem: self.key_pem,
            private_key_der: self.private_key_der,
            public_key_der: self.public_key_der,
            cert_pem: self.cert_pem,
            cert_der_path: self.cert_der_path,
            cert_der,
        }
    }
}

/// Generates a new private key of type `key` (PEM, PKCS#8) at `out`; the token lab uses it
/// to generate keys while the PKI is being created.
pub(crate) fn generate_key(key: LabKey, out: &Path) -> Result<()> {
    genpkey(key, out)
}

fn genpkey(key: LabKey, out: &Path) -> Result<()> {
    Tool::new("openssl")
        .arg("genpkey")
        .args(key.genpkey_args())
        .arg("-out")
        .arg(out)
        .run()
        .map(drop)
}

fn new_csr(config: &Path, key: &Path, subject: &str, out: &Path) -> Result<()> {
    Tool::new("openssl")
        .args(["req", "-new", "-config"])
        .arg(config)
        .arg("-key")
        .arg(key)
        .args(["-subj", subject, "-out"])
        .arg(out)
        .run()
        .map(drop)
}

/// `openssl ca` issuing `csr` with the `[ ext ]` section of `ext_file`; self-signed with
/// `key` when `ca_cert` is `None`.
#[allow(clippy::too_many_arguments)]
fn ca_sign(
    config: &Path,
    ca_cert: Option<&Path>,
    key: &Path,
    csr: &Path,
    ext_file: &Path,
    start: OffsetDateTime,
    end: OffsetDateTime,
    out: &Path,
) -> Result<()> {
    let mut tool = Tool::new("openssl")
        .args(["ca", "-batch", "-notext", "-config"])
        .arg(config);
    tool = match ca_cert {
        Some(cert) => tool.arg("-cert").arg(cert),
        None => tool.arg("-selfsign"),
    };
    tool.arg("-keyfile")
        .arg(key)
        .arg("-in")
        .arg(csr)
        .arg("-out")
        .arg(out)
        .arg("-extfile")
        .arg(ext_file)
        .args([
            "-extensions",
            "ext",
            "-startdate",
            &openssl_time(start),
            "-enddate",
            &openssl_time(end),
        ])
        .run()
        .map(drop)
}

fn pem_to_der(pem: &Path, der: &Path) -> Result<Vec<u8>> {
    Tool::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem)
        .arg("-out")
        .arg(der)
        .run()?;
    fs::read(der).map_err(LabError::io(format!("read {}", der.display())))
}

fn key_usage_value(usage: DscKeyUsage) -> &'static str {
    match usage {
        DscKeyUsage::Signing => "digitalSignature, nonRepudiation",
        DscKeyUsage::EncipherOnly => "keyEncipherment, dataEncipherment",
    }
}

fn crl_url(base: &str, name: &str) -> String {
    format!("{}/{name}.crl", base.trim_end_matches('/'))
}

fn urls_file(urls: &PkiUrls) -> String {
    format!(
        "crl_base={}\nocsp={}\n",
        urls.crl_base.as_deref().unwrap_or(""),
        urls.ocsp.as_deref().unwrap_or("")
    )
}

fn parent(path: &Path) -> Result<PathBuf> {
    path.parent()
        .map(Path::to_owned)
        .ok_or_else(|| LabError::Io {
            context: format!("the directory of {}", path.display()),
            source: std::io::Error::other("no parent directory"),
        })
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(LabError::io(format!("create {}", dir.display())))
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).map_err(LabError::io(format!("write {}", path.display())))
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The `openssl ca` / `openssl req` configuration of a CA living in `dir`.
fn ca_config(dir: &Path) -> String {
    format!(
        r#"# SecureSign lab PKI CA (generated)
[ ca ]
default_ca = lab_ca

[ lab_ca ]
dir             = {dir}
database        = $dir/index.txt
new_certs_dir   = $dir/issued
crlnumber       = $dir/crlnumber
rand_serial     = yes
default_md      = sha256
policy          = policy_lab
unique_subject  = no
copy_extensions = none
email_in_dn     = no
preserve        = yes
crl_extensions  = crl_ext
default_crl_days = 7

# Every attribute a DSC subject may carry; attributes not listed here would be dropped.
[ policy_lab ]
commonName             = supplied
serialNumber           = optional
pseudonym              = optional
title                  = optional
organizationalUnitName = optional
organizationName       = optional
localityName           = optional
postalCode             = optional
stateOrProvinceName    = optional
countryName            = optional

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = placeholder (replaced by -subj)
"#,
        dir = dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class3_subject_looks_like_an_indian_dsc() {
        let spec = DscSpec::class3("Asha Rao");
        let serial = spec.serial_number.clone().unwrap();
        assert_eq!(serial.len(), 64);
        assert!(serial.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            spec.subject(),
            format!("/CN=Asha Rao/serialNumber={serial}/O=Personal/ST=Karnataka/C=IN")
        );
        assert_eq!(spec.policy, POLICY_CLASS3);
    }

    #[test]
    fn subject_values_are_escaped() {
        let mut spec = DscSpec::class3("a/b");
        spec.serial_number = None;
        assert_eq!(spec.subject(), "/CN=a\\/b/O=Personal/ST=Karnataka/C=IN");
    }

    #[test]
    fn crl_urls_join_cleanly() {
        assert_eq!(crl_url("http://h:1/", "ca"), "http://h:1/ca.crl");
        assert_eq!(crl_url("http://h:1", "root"), "http://h:1/root.crl");
    }
}
