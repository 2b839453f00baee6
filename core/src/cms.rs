//! Detached CMS / PKCS#7 `SignedData` (RFC 5652), the format Indian portal integrations
//! (emSigner-style) expect, with the signature made on the token.
//!
//! Sans-IO in two steps around the token: [`prepare`] builds the signed attributes (content
//! type, message digest = the document digest, signing time) and says which digest the token
//! must sign (SHA-256 of their DER `SET`); [`assemble`] wraps the token's signature, the
//! signer certificate and the attributes into a `ContentInfo`. [`verify_detached`] checks one.
//! Built on RustCrypto's `cms`, `x509-cert` and `der` crates.

use std::time::Duration;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
    SignerInfo, SignerInfos,
};
use const_oid::db::rfc5911::{
    ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME,
};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_SHA_256, RSA_ENCRYPTION};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, GeneralizedTime, Null, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::backend::SignatureScheme;
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::verify::VerifyingKey;

/// Signed attributes for one document, waiting for the token's signature.
#[derive(Debug, Clone)]
pub struct PreparedSignature {
    signed_attrs: SignedAttributes,
    /// What the token must sign: SHA-256 of the DER-encoded signed attributes.
    pub to_sign: Sha256Digest,
}

/// Builds the signed attributes for a document with SHA-256 `document_digest`, signed at `signing_time`.
pub fn prepare(
    document_digest: &Sha256Digest,
    signing_time: OffsetDateTime,
) -> Result<PreparedSignature> {
    let seconds = u64::try_from(signing_time.unix_timestamp())
        .map_err(|_| Error::BadRequest("signing time before 1970".into()))?;
    let utc = UtcTime::from_unix_duration(Duration::from_secs(seconds))
        .map_err(|e| Error::BadRequest(format!("signing time: {e}")))?;
    let digest = OctetString::new(document_digest.0.to_vec()).map_err(der_error)?;
    let attrs = [
        attribute(
            ID_CONTENT_TYPE,
            Any::encode_from(&ID_DATA).map_err(der_error)?,
        )?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&digest).map_err(der_error)?,
        )?,
        attribute(ID_SIGNING_TIME, Any::encode_from(&utc).map_err(der_error)?)?,
    ];
    let signed_attrs = SetOfVec::try_from(attrs.to_vec()).map_err(der_error)?;
    // RFC 5652 §5.4: the signature covers the DER of the attributes as an explicit SET OF.
    let to_sign = Sha256Digest::of(&signed_attrs.to_der().map_err(der_error)?);
    Ok(PreparedSignature {
        signed_attrs,
        to_sign,
    })
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(der_error)?,
    })
}

fn der_error(e: der::Error) -> Error {
    Error::Internal(format!("DER encoding: {e}"))
}

fn signature_algorithm(scheme: SignatureScheme) -> Result<AlgorithmIdentifierOwned> {
    Ok(match scheme {
        SignatureScheme::RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::encode_from(&Null).map_err(der_error)?),
        },
        SignatureScheme::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_256,
            parameters: None,
        },
    })
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA_256,
        parameters: None,
    }
}

/// Wraps the token's `signature` (RSA PKCS#1 v1.5, or DER ECDSA) over `prepared.to_sign`
/// into a detached CMS `ContentInfo`, DER-encoded, with the signer certificate included.
pub fn assemble(
    prepared: &PreparedSignature,
    cert_der: &[u8],
    scheme: SignatureScheme,
    signature: &[u8],
) -> Result<Vec<u8>> {
    let cert = Certificate::from_der(cert_der)
        .map_err(|e| Error::CertInvalid(format!("signer certificate: {e}")))?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid,
        digest_alg: sha256_algorithm(),
        signed_attrs: Some(prepared.signed_attrs.clone()),
        signature_algorithm: signature_algorithm(scheme)?,
        signature: OctetString::new(signature.to_vec()).map_err(der_error)?,
        unsigned_attrs: None,
    };
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256_algorithm()]).map_err(der_error)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![CertificateChoices::Certificate(cert)]).map_err(der_error)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(der_error)?),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(der_error)?,
    }
    .to_der()
    .map_err(der_error)
}

/// What a verified CMS signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCms {
    /// The signer certificate carried in the CMS, DER.
    pub signer_cert_der: Vec<u8>,
    /// The scheme the signature was verified with.
    pub scheme: SignatureScheme,
    /// The signing time attribute, Unix seconds.
    pub signing_time: Option<u64>,
    /// The other certificates the CMS carries (DER), e.g. the issuing CA: candidates for
    /// the signer's chain, trusted for nothing by themselves.
    pub other_certs_der: Vec<Vec<u8>>,
}

fn invalid(msg: &str) -> Error {
    Error::SignatureInvalid(format!("CMS: {msg}"))
}

/// Verifies a detached CMS signature over a document whose SHA-256 is `document_digest`:
/// one signer, content type `id-data`, message digest equal to the document digest, and the
/// signature over the signed attributes valid for the included signer certificate.
/// Certificate validity and chains are not checked here.
pub fn verify_detached(cms_der: &[u8], document_digest: &Sha256Digest) -> Result<VerifiedCms> {
    let info = ContentInfo::from_der(cms_der).map_err(|_| invalid("not a DER ContentInfo"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(invalid("not SignedData"));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|_| invalid("malformed SignedData"))?;
    if signed.encap_content_info.econtent.is_some() {
        return Err(invalid("expected a detached signature"));
    }
    let [signer] = signed.signer_infos.0.as_slice() else {
        return Err(invalid("expected exactly one signer"));
    };
    if signer.digest_alg.oid != ID_SHA_256 {
        return Err(invalid("digest algorithm is not SHA-256"));
    }
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| invalid("no signed attributes"))?;
    let content_type: ObjectIdentifier = single_value(attrs, ID_CONTENT_TYPE)?
        .decode_as()
        .map_err(|_| invalid("malformed content type"))?;
    if content_type != ID_DATA {
        return Err(invalid("content type is not id-data"));
    }
    let message_digest: OctetString = single_value(attrs, ID_MESSAGE_DIGEST)?
        .decode_as()
        .map_err(|_| invalid("malformed message digest"))?;
    if message_digest.as_bytes() != document_digest.0 {
        return Err(invalid("message digest does not match the document"));
    }
    let signing_time = single_value(attrs, ID_SIGNING_TIME)
        .ok()
        .and_then(|v| {
            v.decode_as::<UtcTime>()
                .map(|t| t.to_unix_duration())
                .or_else(|_| {
                    v.decode_as::<GeneralizedTime>()
                        .map(|t| t.to_unix_duration())
                })
                .ok()
        })
        .map(|d| d.as_secs());

    let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer.sid else {
        return Err(invalid(
            "signer identified by key id, not issuer and serial",
        ));
    };
    let cert = signed
        .certificates
        .as_ref()
        .and_then(|set| {
            set.0.iter().find_map(|choice| match choice {
                CertificateChoices::Certificate(c)
                    if c.tbs_certificate.issuer == sid.issuer
                        && c.tbs_certificate.serial_number == sid.serial_number =>
                {
                    Some(c)
                }
                _ => None,
            })
        })
        .ok_or_else(|| invalid("signer certificate not included"))?;
    let cert_der = cert.to_der().map_err(der_error)?;
    let other_certs_der = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(c) if !std::ptr::eq(c, cert) => Some(c.to_der()),
            _ => None,
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(der_error)?;
    let key = VerifyingKey::from_certificate_der(&cert_der)?;
    let scheme = key.algorithm();
    let expected_alg = signature_algorithm(scheme)?.oid;
    let alg = signer.signature_algorithm.oid;
    let rsa_alt = scheme == SignatureScheme::RsaPkcs1Sha256
        && alg == const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
    if alg != expected_alg && !rsa_alt {
        return Err(invalid(
            "signature algorithm does not match the certificate key",
        ));
    }
    let signed_digest = Sha256Digest::of(&attrs.to_der().map_err(der_error)?);
    key.verify_digest(&signed_digest.0, signer.signature.as_bytes())?;
    Ok(VerifiedCms {
        signer_cert_der: cert_der,
        scheme,
        signing_time,
        other_certs_der,
    })
}

fn single_value(attrs: &SignedAttributes, oid: ObjectIdentifier) -> Result<&Any> {
    let mut matching = attrs.iter().filter(|a| a.oid == oid);
    let (Some(attr), None) = (matching.next(), matching.next()) else {
        return Err(invalid("missing or repeated signed attribute"));
    };
    let [value] = attr.values.as_slice() else {
        return Err(invalid("attribute must have exactly one value"));
    };
    Ok(value)
}
