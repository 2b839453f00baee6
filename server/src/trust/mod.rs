//! Signer trust: whether a posted signer certificate is a DSC from a trusted CA.
//!
//! Path building, signatures along the path, validity, basic constraints and path
//! length, critical extensions, name constraints and CRL checking are done by
//! `rustls-webpki` (the validator rustls uses; well kept, no C, no path building of our
//! own). Around it this module adds what a document signature needs and a TLS
//! validator does not: the signer's key usage (digitalSignature or nonRepudiation),
//! India PKI certificate policies through the path, validity at the signing time,
//! fetching CRLs from the certificates' distribution points, and the evidence the portal
//! gets.

pub mod crl;
pub mod evidence;
pub mod fetch;
pub mod ocsp;
mod policy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use securesign_core::cert::{CertificateInfo, IndiaPkiClass};
use securesign_core::signer::SignerRequirement;
use webpki::{
    EndEntityCert, ExpirationPolicy, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy,
};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::clock::format_rfc3339;
use crl::{CrlEntry, CrlError, CrlSet, CrlStore};
use evidence::{RevocationEvidence, RevocationSource, RevocationStatus, SignerEvidence};
use fetch::RevocationFetcher;
use ocsp::OcspAnswer;

/// Whether a result may complete when a certificate's revocation status is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationPolicy {
    /// Refused (fail closed): the default.
    #[default]
    Required,
    /// Accepted, with `revocation.status` `unknown` in the evidence. A certificate known
    /// to be revoked is refused either way.
    BestEffort,
}

/// Where the server's trust comes from (`serve` options).
#[derive(Debug, Clone, Default)]
pub struct TrustSettings {
    /// PEM bundle of trust anchors (root certificates).
    pub anchors: Option<PathBuf>,
    /// PEM bundle of CA certificates used to build paths, trusted for nothing by
    /// themselves (e.g. the licensed CAs under the CCA root).
    pub intermediates: Option<PathBuf>,
    /// Directory of CRLs (DER or PEM) loaded at start.
    pub crl_dir: Option<PathBuf>,
    /// What an unknown revocation status means.
    pub revocation: RevocationPolicy,
    /// Lets CRL fetches reach loopback and private addresses (tests, labs).
    pub allow_private_fetches: bool,
}

/// Why the trust configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A bundle holds no certificate.
    #[error("{0} holds no PEM certificate")]
    Empty(PathBuf),
    /// A certificate of a bundle is unusable.
    #[error("{path}: certificate {index}: {reason}")]
    Certificate {
        /// The bundle.
        path: PathBuf,
        /// Its position, from 1.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A CRL of the CRL directory is unusable.
    #[error(transparent)]
    Crl(#[from] CrlError),
    /// The HTTP client could not be built.
    #[error("HTTP client for revocation data: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why a signer is not trusted; the message says which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Untrusted(pub String);

/// A signer certificate to judge, with what came with it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The signer certificate, DER.
    pub signer: &'a [u8],
    /// Certificates posted with it (the result's `chain`, the CMS `certificates`).
    pub chain: &'a [Vec<u8>],
    /// The signing times the signatures claim, Unix seconds (CMS; none for raw).
    pub signing_times: &'a [i64],
    /// India PKI classes the session accepts (any of them; empty: any class).
    pub policy_classes: &'a [IndiaPkiClass],
}

struct Anchor {
    anchor: TrustAnchor<'static>,
    der: Vec<u8>,
}

/// The server's trust anchors, known intermediates and revocation sources.
pub struct SignerTrust {
    anchors: Vec<TrustAnchor<'static>>,
    anchor_certs: Vec<Anchor>,
    intermediates: Vec<CertificateDer<'static>>,
    revocation: RevocationPolicy,
    crls: CrlStore,
    fetcher: Option<RevocationFetcher>,
}

impl std::fmt::Debug for SignerTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerTrust")
            .field("anchors", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("revocation", &self.revocation)
            .finish_non_exhaustive()
    }
}

impl SignerTrust {
    /// Loads the anchors, intermediates and CRLs `settings` name.
    pub fn load(settings: &TrustSettings) -> Result<Self, TrustConfigError> {
        let anchor_certs = match &settings.anchors {
            Some(path) => read_bundle(path)?
                .into_iter()
                .enumerate()
                .map(|(index, der)| {
                    let anchor =
                        webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                            .map_err(|e| TrustConfigError::Certificate {
                                path: path.clone(),
                                index: index + 1,
                                reason: format!("not a usable trust anchor ({e})"),
                            })?
                            .to_owned();
                    Ok(Anchor { anchor, der })
                })
                .collect::<Result<Vec<_>, TrustConfigError>>()?,
            None => Vec::new(),
        };
        let intermediates = match &settings.intermediates {
            Some(path) => read_bundle(path)?
                .into_iter()
                .map(CertificateDer::from)
                .collect(),
            None => Vec::new(),
        };
        let fixed = match &settings.crl_dir {
            Some(dir) => crl::load_dir(dir)?,
            None => Vec::new(),
        };
        let fetcher = RevocationFetcher::new(settings.allow_private_fetches)?;
        Ok(Self {
            anchors: anchor_certs.iter().map(|a| a.anchor.clone()).collect(),
            anchor_certs,
            intermediates,
            revocation: settings.revocation,
            crls: CrlStore::new(fixed, Some(fetcher.clone())),
            fetcher: Some(fetcher),
        })
    }

    /// No anchors: every signer is untrusted (live keys cannot complete).
    pub fn none() -> Self {
        Self {
            anchors: Vec::new(),
            anchor_certs: Vec::new(),
            intermediates: Vec::new(),
            revocation: RevocationPolicy::Required,
            crls: CrlStore::new(Vec::new(), None),
            fetcher: None,
        }
    }

    /// How many trust anchors are configured.
    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    /// Judges `candidate` at `now` (Unix seconds): `Ok` with the evidence for the portal,
    /// or why it is not trusted. May fetch CRLs and ask OCSP responders (bounded; see
    /// [`crl`], [`ocsp`]) for the certificates of a path that reaches an anchor, never for
    /// others.
    pub async fn evaluate(
        &self,
        candidate: Candidate<'_>,
        now: i64,
    ) -> Result<SignerEvidence, Untrusted> {
        let info = CertificateInfo::from_der(candidate.signer)
            .map_err(|e| Untrusted(format!("the signer certificate is unreadable: {e}")))?;
        if self.anchors.is_empty() {
            return Err(Untrusted(
                "this server has no trust anchors configured (serve --trust-anchors), so no signer can be trusted"
                    .into(),
            ));
        }
        if info.subject == info.issuer {
            return Err(Untrusted(
                "the signer certificate is self-signed, so it does not chain to a trusted CA"
                    .into(),
            ));
        }
        info.ensure_may_sign().map_err(|e| {
            Untrusted(format!(
                "the signer certificate's key usage forbids signing: {e}"
            ))
        })?;
        let (path, crls) = self.path_with_crls(&info, candidate, now).await?;
        for &signed_at in candidate.signing_times {
            valid_at_signing_time(&path, signed_at)?;
        }
        policy::check(&path[..path.len() - 1], candidate.policy_classes)?;
        let revocation = self.revocation_evidence(&path, &crls, now).await?;
        Ok(SignerEvidence {
            trusted: true,
            untrusted_reason: None,
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            serial: info.serial.clone(),
            sha256: info.sha256_thumbprint.clone(),
            policy_classes: policy_class_names(&info),
            chain_sha256: path.iter().map(|der| sha256_hex(der)).collect(),
            validated_at: format_rfc3339(now),
            revocation: Some(revocation),
        })
    }

    /// The validated path (signer first, anchor last) with its CRLs checked. With every
    /// CRL the candidate certificates name already at hand, one path validation does it.
    /// Otherwise the path is built first without revocation and only the distribution
    /// points of its certificates are fetched (a certificate's URLs are its maker's
    /// choice: a chain that reaches no anchor gets no request sent on its behalf), then
    /// it is validated again with the lists.
    async fn path_with_crls(
        &self,
        info: &CertificateInfo,
        candidate: Candidate<'_>,
        now: i64,
    ) -> Result<(Vec<Vec<u8>>, CrlSet), Untrusted> {
        let candidates = std::iter::once(candidate.signer)
            .chain(candidate.chain.iter().map(Vec::as_slice))
            .chain(self.intermediates.iter().map(|c| c.as_ref()));
        if let Some(crls) = self.crls.gather_cached(&crl_urls_of(candidates), now) {
            let path = self.validate_path(info, candidate, &crls, now)?;
            return Ok((path, crls));
        }
        let unchecked = self.validate_path(info, candidate, &CrlSet::default(), now)?;
        let below_anchor = unchecked[..unchecked.len() - 1].iter().map(Vec::as_slice);
        let crls = self.crls.gather(&crl_urls_of(below_anchor), now).await;
        if crls.entries.is_empty() {
            return Ok((unchecked, crls));
        }
        let path = self.validate_path(info, candidate, &crls, now)?;
        Ok((path, crls))
    }

    /// The evidence of a signer that is not trusted (test keys only).
    pub fn untrusted_evidence(signer: &[u8], reason: &Untrusted, now: i64) -> SignerEvidence {
        let info = CertificateInfo::from_der(signer).ok();
        let field = |f: fn(&CertificateInfo) -> String| info.as_ref().map(f).unwrap_or_default();
        SignerEvidence {
            trusted: false,
            untrusted_reason: Some(reason.0.clone()),
            subject: field(|i| i.subject.clone()),
            issuer: field(|i| i.issuer.clone()),
            serial: field(|i| i.serial.clone()),
            sha256: sha256_hex(signer),
            policy_classes: info.as_ref().map(policy_class_names).unwrap_or_default(),
            chain_sha256: Vec::new(),
            validated_at: format_rfc3339(now),
            revocation: None,
        }
    }

    /// Builds and checks a path with webpki; returns it as DER, signer first, anchor last.
    fn validate_path(
        &self,
        info: &CertificateInfo,
        candidate: Candidate<'_>,
        crls: &CrlSet,
        now: i64,
    ) -> Result<Vec<Vec<u8>>, Untrusted> {
        let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        let signer_der = CertificateDer::from(candidate.signer);
        let signer = EndEntityCert::try_from(&signer_der)
            .map_err(|e| Untrusted(format!("the signer certificate cannot be validated: {e}")))?;
        let mut pool: Vec<CertificateDer<'_>> = candidate
            .chain
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        pool.extend(self.intermediates.iter().cloned());
        let crl_refs: Vec<_> = crls.entries.iter().map(|e| &e.crl).collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs)
            .ok()
            .map(|options| {
                options
                    .with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Allow)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build()
            });
        let verified = signer
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &pool,
                at,
                policy::DocumentSigningEku,
                revocation,
                None,
            )
            .map_err(|err| Untrusted(describe_path_error(&err, info, candidate, crls, now)))?;
        let mut path = vec![candidate.signer.to_vec()];
        path.extend(
            verified
                .intermediate_certificates()
                .map(|cert| cert.der().as_ref().to_vec()),
        );
        let anchor = verified.anchor();
        let anchor_der = self
            .anchor_certs
            .iter()
            .find(|a| {
                a.anchor.subject == anchor.subject
                    && a.anchor.subject_public_key_info == anchor.subject_public_key_info
            })
            .map(|a| a.der.clone())
            .ok_or_else(|| Untrusted("internal: the validated anchor is not configured".into()))?;
        path.push(anchor_der);
        Ok(path)
    }

    /// Which source proved each certificate below the anchor unrevoked: a CRL (webpki
    /// has already refused a listed certificate or an expired list), else the OCSP
    /// responder the certificate names. `path` runs from the signer to the anchor.
    async fn revocation_evidence(
        &self,
        path: &[Vec<u8>],
        crls: &CrlSet,
        now: i64,
    ) -> Result<RevocationEvidence, Untrusted> {
        let mut checks = Vec::with_capacity(path.len() - 1);
        let mut sources = Vec::with_capacity(path.len() - 1);
        let mut unknown = Vec::new();
        for (der, issuer_der) in path.iter().zip(&path[1..]) {
            let Ok((_, cert)) = X509Certificate::from_der(der) else {
                return Err(Untrusted("a certificate of the path is unreadable".into()));
            };
            if let Some(entry) = crls
                .for_issuer(cert.issuer().as_raw())
                .filter(|e| !e.partitioned)
            {
                checks.push(format!("crl {}", entry.source));
                sources.push(RevocationSource::Crl);
                continue;
            }
            let why = match (ocsp_urls(&cert).first(), &self.fetcher) {
                (Some(url), Some(fetcher)) => {
                    match ocsp::query(fetcher, url, der, issuer_der, now).await {
                        Ok(OcspAnswer::Good) => {
                            checks.push(format!("ocsp {url}"));
                            sources.push(RevocationSource::Ocsp);
                            continue;
                        }
                        Ok(OcspAnswer::Revoked(at)) => {
                            return Err(Untrusted(format!(
                                "the certificate {} is revoked: the OCSP responder {url} says so since {}",
                                cert.subject(),
                                format_rfc3339(at)
                            )));
                        }
                        Ok(OcspAnswer::Unknown) => {
                            format!("the OCSP responder {url} does not know it")
                        }
                        Err(why) => format!("OCSP {url}: {why}"),
                    }
                }
                _ if !crls.failures.is_empty() => crls.failures.join("; "),
                _ => "no CRL for its issuer and no OCSP responder".to_owned(),
            };
            unknown.push(format!("{}: {why}", cert.subject()));
            checks.push(format!("unknown: {why}"));
            sources.push(RevocationSource::None);
        }
        if !unknown.is_empty() && self.revocation == RevocationPolicy::Required {
            return Err(Untrusted(format!(
                "the revocation status is unknown for {}",
                unknown.join("; ")
            )));
        }
        Ok(RevocationEvidence {
            status: if unknown.is_empty() {
                RevocationStatus::Good
            } else {
                RevocationStatus::Unknown
            },
            source: sources.first().copied().unwrap_or(RevocationSource::None),
            checks,
        })
    }
}

/// The classes a tenant accepts, from their stored JSON (unreadable or absent: any).
pub fn tenant_classes(stored: Option<&str>) -> Vec<IndiaPkiClass> {
    stored
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Applies a tenant's accepted classes to a session's expected signer: a session that
/// names none requires the tenant's; one that names classes may name only those.
pub fn with_tenant_classes(
    requirement: Option<SignerRequirement>,
    tenant: &[IndiaPkiClass],
) -> Result<Option<SignerRequirement>, securesign_core::Error> {
    if tenant.is_empty() {
        return Ok(requirement);
    }
    let mut requirement = requirement.unwrap_or_default();
    if requirement.policy_classes.is_empty() {
        requirement.policy_classes = tenant.to_vec();
    } else if let Some(other) = requirement
        .policy_classes
        .iter()
        .find(|class| !tenant.contains(class))
    {
        let accepted: Vec<&str> = tenant.iter().map(|c| c.label()).collect();
        return Err(securesign_core::Error::BadRequest(format!(
            "signer.policyClasses names {}, which this tenant does not accept (it accepts {})",
            other.label(),
            accepted.join(", ")
        )));
    }
    Ok(Some(requirement))
}

/// Reads every certificate of a PEM bundle.
fn read_bundle(path: &Path) -> Result<Vec<Vec<u8>>, TrustConfigError> {
    let bytes = std::fs::read(path).map_err(|e| TrustConfigError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .enumerate()
        .map(|(index, cert)| {
            let der = cert
                .map_err(|e| TrustConfigError::Certificate {
                    path: path.to_owned(),
                    index: index + 1,
                    reason: e.to_string(),
                })?
                .as_ref()
                .to_vec();
            CertificateInfo::from_der(&der).map_err(|e| TrustConfigError::Certificate {
                path: path.to_owned(),
                index: index + 1,
                reason: e.to_string(),
            })?;
            Ok(der)
        })
        .collect::<Result<Vec<_>, TrustConfigError>>()?;
    if certs.is_empty() {
        return Err(TrustConfigError::Empty(path.to_owned()));
    }
    Ok(certs)
}

/// The distinct http(s) CRL distribution points of `certs`.
fn crl_urls_of<'a>(certs: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut urls = Vec::new();
    for der in certs {
        for url in crl_urls(der) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

/// The http(s) CRL distribution points of a certificate.
fn crl_urls(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            if uri.starts_with("http://") || uri.starts_with("https://") {
                                urls.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    urls
}

/// The http(s) OCSP responders of a certificate (authority information access).
fn ocsp_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for access in &aia.accessdescs {
                if access.access_method
                    == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                {
                    if let GeneralName::URI(uri) = &access.access_location {
                        if uri.starts_with("http://") || uri.starts_with("https://") {
                            urls.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    urls
}

/// Every certificate of the path must have been valid when the signatures say they were
/// made (webpki checked `now`).
fn valid_at_signing_time(path: &[Vec<u8>], signed_at: i64) -> Result<(), Untrusted> {
    for der in path {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return Err(Untrusted("a certificate of the path is unreadable".into()));
        };
        let validity = cert.validity();
        if signed_at < validity.not_before.timestamp() || signed_at > validity.not_after.timestamp()
        {
            return Err(Untrusted(format!(
                "the certificate {} was not valid at the signing time {} (valid {} to {})",
                cert.subject(),
                format_rfc3339(signed_at),
                format_rfc3339(validity.not_before.timestamp()),
                format_rfc3339(validity.not_after.timestamp()),
            )));
        }
    }
    Ok(())
}

fn policy_class_names(info: &CertificateInfo) -> Vec<String> {
    info.india_pki
        .iter()
        .filter_map(|class| {
            serde_json::to_value(class)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        })
        .collect()
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(der))
}

/// webpki's verdict in words, naming the certificate or list where we can tell.
fn describe_path_error(
    err: &webpki::Error,
    info: &CertificateInfo,
    candidate: Candidate<'_>,
    crls: &CrlSet,
    now: i64,
) -> String {
    use webpki::Error as E;
    match err {
        E::UnknownIssuer => format!(
            "the certificate does not chain to a trusted CA: no path from its issuer \"{}\" to a configured trust anchor through the posted or known intermediate certificates",
            info.issuer
        ),
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
            match info.ensure_usable_at(time_of(now)) {
                Err(e) => format!("the signer certificate is not valid now: {e}"),
                Ok(()) => "a CA certificate of the chain is outside its validity period".into(),
            }
        }
        E::CertRevoked => revoked_detail(candidate.signer, crls).unwrap_or_else(|| {
            "a CA certificate of the chain is revoked (listed on its issuer's CRL)".into()
        }),
        E::CrlExpired { .. } => {
            let stale: Vec<String> = crls
                .entries
                .iter()
                .filter(|e| e.is_stale(now))
                .map(|e| {
                    format!(
                        "{} (nextUpdate {})",
                        e.source,
                        e.next_update.map(format_rfc3339).unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "the CRL that covers the chain has expired, so its revocation status is not current: {}",
                stale.join(", ")
            )
        }
        E::PathLenConstraintViolated => {
            "the chain is too long: a CA's path length constraint does not allow it".into()
        }
        E::CaUsedAsEndEntity => "the signer certificate is a CA certificate".into(),
        E::EndEntityUsedAsCa => "a certificate that is not a CA issued another certificate".into(),
        E::UnsupportedCriticalExtension => {
            "a certificate of the chain has a critical extension this server does not process"
                .into()
        }
        E::InvalidSignatureForPublicKey => {
            "the certificate does not chain to a trusted CA: a certificate of its chain names a trusted CA as its issuer, but its signature does not verify with that CA's key (a forgery, or another CA with the same name)".into()
        }
        E::InvalidCrlSignatureForPublicKey | E::IssuerNotCrlSigner => {
            "a CRL for the chain is not signed by the certificate's issuer".into()
        }
        E::RequiredEkuNotFoundContext(_) => {
            "the certificate's extended key usage does not include document signing, e-mail protection or client authentication".into()
        }
        other => format!("the certificate chain is not valid ({other})"),
    }
}

fn time_of(now: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// "the signer certificate is revoked …" when the signer's own issuer's CRL lists it.
fn revoked_detail(signer: &[u8], crls: &CrlSet) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(signer).ok()?;
    let entry: &Arc<CrlEntry> = crls.for_issuer(cert.issuer().as_raw())?;
    let revoked = entry.crl.find_serial(cert.raw_serial()).ok()??;
    Some(format!(
        "the signer certificate is revoked: listed on {} since {}",
        entry.source,
        format_rfc3339(i64::try_from(revoked.revocation_date.as_secs()).unwrap_or(i64::MAX))
    ))
}
