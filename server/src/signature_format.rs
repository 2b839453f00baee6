//! The two signature formats a session can ask for.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the app returns each document's signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// The bare signature over the document digest: RSA PKCS#1 v1.5 (SHA-256
    /// `DigestInfo`) or ECDSA P-256.
    #[default]
    Raw,
    /// A detached CMS / PKCS#7 `SignedData` (DER) with signed attributes (content type
    /// `id-data`, message digest = the document digest, signing time) and the signer
    /// certificate, as emSigner-style integrations expect.
    Cms,
}

impl SignatureFormat {
    /// `raw` or `cms`, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Cms => "cms",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "raw" => Some(Self::Raw),
            "cms" => Some(Self::Cms),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_stored_forms_agree() {
        for format in [SignatureFormat::Raw, SignatureFormat::Cms] {
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.as_str()));
            assert_eq!(SignatureFormat::parse(format.as_str()), Some(format));
        }
        assert!(serde_json::from_str::<SignatureFormat>("\"CMS\"").is_err());
        assert!(serde_json::from_str::<SignatureFormat>("\"pkcs7\"").is_err());
        assert_eq!(SignatureFormat::default(), SignatureFormat::Raw);
    }
}
