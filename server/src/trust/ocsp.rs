//! OCSP (RFC 6960): asks a certificate's responder whether it is revoked.
//!
//! The request carries a fresh nonce; the answer counts only when it is signed by the
//! certificate's issuer or by a responder certificate the issuer made for OCSP signing
//! (id-kp-OCSPSigning), names exactly the certificate asked about, echoes the nonce when
//! it carries one (responders that pre-produce answers omit it; their answers are held
//! to the time window instead), and is current: `thisUpdate` not in the future and
//! `nextUpdate` not past (an answer without `nextUpdate` must be less than
//! [`MAX_AGE_WITHOUT_NEXT_UPDATE_SECS`] old), each within [`CLOCK_SKEW_SECS`].
//! Structures from RustCrypto's `x509-ocsp`; signatures checked with the core's
//! verifier (RSA PKCS#1 v1.5 and ECDSA P-256, SHA-256).

use der::{Decode, Encode};
use securesign_core::verify::VerifyingKey;
use sha2::Digest as _;
use x509_cert::Certificate;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspResponse, OcspResponseStatus, Request, ResponderId,
};

use super::fetch::RevocationFetcher;

/// Largest OCSP answer read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Clock difference tolerated between us and the responder.
pub const CLOCK_SKEW_SECS: i64 = 5 * 60;
/// Oldest accepted answer that gives no `nextUpdate`.
pub const MAX_AGE_WITHOUT_NEXT_UPDATE_SECS: i64 = 60 * 60;

/// id-kp-OCSPSigning.
const OCSP_SIGNING: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// sha256WithRSAEncryption.
const SHA256_WITH_RSA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// ecdsa-with-SHA256.
const ECDSA_WITH_SHA256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// What a responder said about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspAnswer {
    /// Not revoked.
    Good,
    /// Revoked at this time (Unix seconds).
    Revoked(i64),
    /// The responder does not know the certificate.
    Unknown,
}

/// Asks `url` about `cert_der`, issued by `issuer_der`, at `now` (Unix seconds). An
/// error says why no answer counts (unreachable, unsigned, stale, …).
pub async fn query(
    fetcher: &RevocationFetcher,
    url: &str,
    cert_der: &[u8],
    issuer_der: &[u8],
    now: i64,
) -> Result<OcspAnswer, String> {
    let cert = Certificate::from_der(cert_der).map_err(|e| format!("certificate: {e}"))?;
    let issuer = Certificate::from_der(issuer_der).map_err(|e| format!("issuer: {e}"))?;
    let cert_id = CertId::from_cert::<sha1::Sha1>(&issuer, &cert).map_err(|e| e.to_string())?;
    let nonce_bytes: [u8; 16] = rand::random();
    let request = OcspRequestBuilder::default()
        .with_request(Request::new(cert_id.clone()))
        .with_extension(Nonce::new(nonce_bytes.to_vec()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?
        .build()
        .to_der()
        .map_err(|e| e.to_string())?;
    let body = fetcher
        .post(url, "application/ocsp-request", request, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    judge(&body, &cert_id, &nonce_bytes, &issuer, issuer_der, now)
}

fn judge(
    body: &[u8],
    cert_id: &CertId,
    nonce: &[u8],
    issuer: &Certificate,
    issuer_der: &[u8],
    now: i64,
) -> Result<OcspAnswer, String> {
    let response = OcspResponse::from_der(body).map_err(|e| format!("malformed answer: {e}"))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(format!(
            "the responder answered {:?}",
            response.response_status
        ));
    }
    let bytes = response
        .response_bytes
        .ok_or("a successful answer without a response")?;
    if bytes.response_type != const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC {
        return Err("not a basic OCSP response".into());
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| format!("malformed basic response: {e}"))?;
    verify_signature(&basic, issuer, issuer_der, now)?;
    if let Some(echoed) = basic.nonce() {
        if echoed.0.as_bytes() != nonce {
            return Err("the answer's nonce is not the request's (a replayed answer)".into());
        }
    }
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|single| same_cert_id(&single.cert_id, cert_id))
        .ok_or("the answer is about another certificate")?;
    let this_update = unix(&single.this_update.0);
    if this_update > now + CLOCK_SKEW_SECS {
        return Err("the answer's thisUpdate is in the future".into());
    }
    match &single.next_update {
        Some(next) if unix(&next.0) < now - CLOCK_SKEW_SECS => {
            return Err("the answer has expired (nextUpdate passed)".into());
        }
        None if this_update < now - MAX_AGE_WITHOUT_NEXT_UPDATE_SECS => {
            return Err("the answer is too old (no nextUpdate)".into());
        }
        _ => {}
    }
    Ok(match &single.cert_status {
        CertStatus::Good(_) => OcspAnswer::Good,
        CertStatus::Revoked(info) => OcspAnswer::Revoked(unix(&info.revocation_time.0)),
        CertStatus::Unknown(_) => OcspAnswer::Unknown,
    })
}

fn same_cert_id(a: &CertId, b: &CertId) -> bool {
    a.hash_algorithm.oid == b.hash_algorithm.oid
        && a.issuer_name_hash == b.issuer_name_hash
        && a.issuer_key_hash == b.issuer_key_hash
        && a.serial_number == b.serial_number
}

fn unix(time: &der::asn1::GeneralizedTime) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The answer must be signed by the issuer, or by a certificate in the answer that the
/// issuer signed for OCSP signing and that is valid now.
fn verify_signature(
    basic: &BasicOcspResponse,
    issuer: &Certificate,
    issuer_der: &[u8],
    now: i64,
) -> Result<(), String> {
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(|e| e.to_string())?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or("the answer's signature is not whole bytes")?;
    let responder_is_issuer = match &basic.tbs_response_data.responder_id {
        ResponderId::ByName(name) => *name == issuer.tbs_certificate.subject,
        ResponderId::ByKey(hash) => hash.as_bytes() == key_sha1(issuer).as_slice(),
    };
    if responder_is_issuer {
        return verify_signed(issuer_der, &basic.signature_algorithm.oid, &tbs, signature)
            .map_err(|e| format!("the issuer's signature on the answer does not verify: {e}"));
    }
    let responder = basic
        .certs
        .iter()
        .flatten()
        .find(|cert| match &basic.tbs_response_data.responder_id {
            ResponderId::ByName(name) => cert.tbs_certificate.subject == *name,
            ResponderId::ByKey(hash) => hash.as_bytes() == key_sha1(cert).as_slice(),
        })
        .ok_or(
            "the answer is signed by a responder that is neither the issuer nor in the answer",
        )?;
    if responder.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err("the responder certificate was not issued by the certificate's issuer".into());
    }
    let responder_tbs = responder
        .tbs_certificate
        .to_der()
        .map_err(|e| e.to_string())?;
    let responder_sig = responder
        .signature
        .as_bytes()
        .ok_or("the responder certificate's signature is not whole bytes")?;
    verify_signed(
        issuer_der,
        &responder.signature_algorithm.oid,
        &responder_tbs,
        responder_sig,
    )
    .map_err(|e| format!("the responder certificate is not signed by the issuer: {e}"))?;
    let validity = &responder.tbs_certificate.validity;
    let not_before = i64::try_from(validity.not_before.to_unix_duration().as_secs()).unwrap_or(0);
    let not_after =
        i64::try_from(validity.not_after.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    if now < not_before - CLOCK_SKEW_SECS || now > not_after + CLOCK_SKEW_SECS {
        return Err("the responder certificate is outside its validity period".into());
    }
    let ocsp_signing = responder
        .tbs_certificate
        .get::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .ok()
        .flatten()
        .is_some_and(|(_, eku)| eku.0.contains(&OCSP_SIGNING));
    if !ocsp_signing {
        return Err(
            "the responder certificate is not for OCSP signing (no id-kp-OCSPSigning)".into(),
        );
    }
    let responder_der = responder.to_der().map_err(|e| e.to_string())?;
    verify_signed(
        &responder_der,
        &basic.signature_algorithm.oid,
        &tbs,
        signature,
    )
    .map_err(|e| format!("the responder's signature on the answer does not verify: {e}"))
}

/// SHA-1 of the subject public key bits (the OCSP `KeyHash`).
fn key_sha1(cert: &Certificate) -> Vec<u8> {
    sha1::Sha1::digest(
        cert.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .to_vec()
}

/// Verifies `signature` over `data` with the key of `signer_der`; SHA-256 algorithms only.
fn verify_signed(
    signer_der: &[u8],
    algorithm: &der::oid::ObjectIdentifier,
    data: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    if *algorithm != SHA256_WITH_RSA && *algorithm != ECDSA_WITH_SHA256 {
        return Err(format!("unsupported signature algorithm {algorithm}"));
    }
    let key = VerifyingKey::from_certificate_der(signer_der).map_err(|e| e.to_string())?;
    let digest: [u8; 32] = sha2::Sha256::digest(data).into();
    key.verify_digest(&digest, signature)
        .map_err(|e| e.to_string())
}
