//! A throw-away demo CA that issues DSC-like certificates with `openssl ca`
//! (which, unlike `openssl x509` in OpenSSL 3.0, can back-date certificates
//! via `-startdate` / `-enddate`).

use std::fs;
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::keys::LabKey;
use crate::tool::Tool;
use crate::{LabError, Result};

/// Subject of every lab signing certificate.
pub(crate) const SIGNER_SUBJECT: &str = "/CN=Demo Signer/O=SecureSign Demo/C=IN";

/// Subject of the demo CA that issues them.
pub(crate) const CA_SUBJECT: &str = "/CN=SecureSign Demo CA/O=SecureSign Demo/C=IN";

/// Validity window of a lab certificate, relative to the moment it is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertValidity {
    /// From 1 day ago until 2 years (730 days) from now.
    #[default]
    Valid,
    /// From 2 years ago until 1 day ago: `notAfter` is in the past.
    Expired,
    /// From 1 day ago until 10 days from now: expiring within 30 days.
    ExpiringSoon,
    /// Any other window, in whole days relative to now (negative = past).
    DaysFromNow {
        /// Start of validity.
        not_before: i64,
        /// End of validity; must be after `not_before`.
        not_after: i64,
    },
}

impl CertValidity {
    /// The window as `(not_before, not_after)` days relative to now.
    pub const fn days_from_now(self) -> (i64, i64) {
        match self {
            CertValidity::Valid => (-1, 730),
            CertValidity::Expired => (-730, -1),
            CertValidity::ExpiringSoon => (-1, 10),
            CertValidity::DaysFromNow {
                not_before,
                not_after,
            } => (not_before, not_after),
        }
    }

    /// The window as absolute times, anchored at `now` (whole seconds).
    pub(crate) fn window(self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let (not_before, not_after) = self.days_from_now();
        if not_before >= not_after {
            return Err(LabError::InvalidValidity {
                not_before,
                not_after,
            });
        }
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let shift = |days: i64| {
            days.checked_mul(86_400)
                .and_then(|seconds| now.checked_add(Duration::seconds(seconds)))
                .ok_or(LabError::InvalidValidity {
                    not_before,
                    not_after,
                })
        };
        Ok((shift(not_before)?, shift(not_after)?))
    }
}

/// Formats a time the way `openssl ca -startdate/-enddate` accepts it
/// (`YYYYMMDDHHMMSSZ`; OpenSSL encodes it as UTCTime up to 2049).
fn openssl_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A private key, its public key and its certificate, as DER files.
#[derive(Debug)]
pub(crate) struct IssuedKey {
    /// PKCS#8 private key.
    pub(crate) private_key_der: PathBuf,
    /// SubjectPublicKeyInfo.
    pub(crate) public_key_der: PathBuf,
    /// X.509 certificate.
    pub(crate) cert_der_path: PathBuf,
    /// The certificate bytes.
    pub(crate) cert_der: Vec<u8>,
}

/// A demo CA living in one directory.
#[derive(Debug)]
pub(crate) struct DemoCa {
    dir: PathBuf,
    config: PathBuf,
    key: PathBuf,
    cert_pem: PathBuf,
    /// The CA certificate bytes.
    pub(crate) cert_der: Vec<u8>,
}

impl DemoCa {
    /// Creates a self-signed EC P-256 CA in `dir`, valid from 5 years ago to
    /// 10 years from now (so it covers every [`CertValidity`] preset).
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        let index = dir.join("index.txt");
        fs::write(&index, "").map_err(LabError::io(format!("write {}", index.display())))?;
        let config = dir.join("openssl-ca.cnf");
        fs::write(&config, ca_config(dir))
            .map_err(LabError::io(format!("write {}", config.display())))?;

        let key = dir.join("ca.key.pem");
        let csr = dir.join("ca.csr.pem");
        let cert_pem = dir.join("ca.cert.pem");
        let cert_der = dir.join("ca.cert.der");
        genpkey(LabKey::Ec.genpkey_args(), &key)?;
        new_csr(&config, &key, CA_SUBJECT, &csr)?;
        let now = OffsetDateTime::now_utc();
        let validity = CertValidity::DaysFromNow {
            not_before: -5 * 365,
            not_after: 10 * 365,
        };
        let (start, end) = validity.window(now)?;
        Tool::new("openssl")
            .args(["ca", "-batch", "-notext", "-selfsign", "-config"])
            .arg(&config)
            .arg("-keyfile")
            .arg(&key)
            .arg("-in")
            .arg(&csr)
            .arg("-out")
            .arg(&cert_pem)
            .args([
                "-extensions",
                "ca_ext",
                "-startdate",
                &openssl_time(start),
                "-enddate",
                &openssl_time(end),
            ])
            .run()?;
        let cert_der = pem_to_der(&cert_pem, &cert_der)?;
        Ok(Self {
            dir: dir.to_owned(),
            config,
            key,
            cert_pem,
            cert_der,
        })
    }

    /// Generates a fresh key of `kind` and issues its signing certificate.
    pub(crate) fn issue(&self, kind: LabKey, validity: CertValidity) -> Result<IssuedKey> {
        let (start, end) = validity.window(OffsetDateTime::now_utc())?;
        let stem = kind.file_stem();
        let key_pem = self.dir.join(format!("{stem}.key.pem"));
        let private_key_der = self.dir.join(format!("{stem}.key.der"));
        let public_key_der = self.dir.join(format!("{stem}.pub.der"));
        let csr = self.dir.join(format!("{stem}.csr.pem"));
        let cert_pem = self.dir.join(format!("{stem}.cert.pem"));
        let cert_der_path = self.dir.join(format!("{stem}.cert.der"));

        genpkey(kind.genpkey_args(), &key_pem)?;
        Tool::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&private_key_der)
            .run()?;
        Tool::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&public_key_der)
            .run()?;
        new_csr(&self.config, &key_pem, SIGNER_SUBJECT, &csr)?;
        Tool::new("openssl")
            .args(["ca", "-batch", "-notext", "-config"])
            .arg(&self.config)
            .arg("-cert")
            .arg(&self.cert_pem)
            .arg("-keyfile")
            .arg(&self.key)
            .arg("-in")
            .arg(&csr)
            .arg("-out")
            .arg(&cert_pem)
            .args(["-extensions", &format!("{stem}_ext")])
            .args([
                "-startdate",
                &openssl_time(start),
                "-enddate",
                &openssl_time(end),
            ])
            .run()?;
        let cert_der = pem_to_der(&cert_pem, &cert_der_path)?;
        Ok(IssuedKey {
            private_key_der,
            public_key_der,
            cert_der_path,
            cert_der,
        })
    }
}

fn genpkey(args: &[&str], out: &Path) -> Result<()> {
    Tool::new("openssl")
        .arg("genpkey")
        .args(args)
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

fn pem_to_der(pem: &Path, der: &Path) -> Result<Vec<u8>> {
    Tool::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem)
        .arg("-out")
        .arg(der)
        .run()?;
    fs::read(der).map_err(LabError::io(format!("read {}", der.display())))
}

/// The `openssl ca` / `openssl req` configuration of the demo CA.
fn ca_config(dir: &Path) -> String {
    let rsa = LabKey::Rsa;
    let ec = LabKey::Ec;
    format!(
        r#"# SecureSign token lab demo CA (generated)
[ ca ]
default_ca = lab_ca

[ lab_ca ]
dir            = {dir}
database       = $dir/index.txt
new_certs_dir  = $dir
rand_serial    = yes
default_md     = sha256
policy         = policy_lab
unique_subject = no
copy_extensions = none
email_in_dn    = no

[ policy_lab ]
commonName       = supplied
organizationName = optional
countryName      = optional

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = placeholder (replaced by -subj)

[ ca_ext ]
basicConstraints     = critical, CA:true
keyUsage             = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ {rsa_stem}_ext ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation
certificatePolicies    = {rsa_oid}
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ {ec_stem}_ext ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation
certificatePolicies    = {ec_oid}
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
"#,
        dir = dir.display(),
        rsa_stem = rsa.file_stem(),
        rsa_oid = rsa.policy_oid(),
        ec_stem = ec.file_stem(),
        ec_oid = ec.policy_oid(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn openssl_time_is_generalized_style_utc() {
        assert_eq!(
            openssl_time(datetime!(2026-03-09 07:05:04 UTC)),
            "20260309070504Z"
        );
        assert_eq!(
            openssl_time(datetime!(2026-03-09 12:35:04 +05:30)),
            "20260309070504Z"
        );
    }

    #[test]
    fn presets_have_the_documented_windows() {
        let now = datetime!(2026-01-15 10:00:00.75 UTC);
        let (start, end) = CertValidity::Valid.window(now).unwrap();
        assert_eq!(start, datetime!(2026-01-14 10:00:00 UTC));
        assert_eq!(end, datetime!(2028-01-15 10:00:00 UTC));
        let (_, end) = CertValidity::Expired.window(now).unwrap();
        assert!(end < now);
        let (start, end) = CertValidity::ExpiringSoon.window(now).unwrap();
        assert!(start < now && end > now && end - now < Duration::days(30));
    }

    #[test]
    fn unrepresentable_window_is_rejected() {
        let huge = CertValidity::DaysFromNow {
            not_before: 0,
            not_after: i64::MAX,
        };
        let result = huge.window(OffsetDateTime::now_utc());
        assert!(matches!(result, Err(LabError::InvalidValidity { .. })));
    }

    #[test]
    fn empty_window_is_rejected() {
        let err = CertValidity::DaysFromNow {
            not_before: 3,
            not_after: 3,
        }
        .window(OffsetDateTime::now_utc());
        assert!(matches!(
            err,
            Err(LabError::InvalidValidity {
                not_before: 3,
                not_after: 3
            })
        ));
    }
}
