//! The two signing identities every lab token holds.

/// A key pair + certificate on a lab token. The private key, public key and
/// certificate objects all carry the same `CKA_ID` and `CKA_LABEL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabKey {
    /// RSA-2048, `CKA_ID` `01`, label `signer-rsa`, policy `2.16.356.100.2.3` (CCA Class 3).
    Rsa,
    /// EC P-256, `CKA_ID` `02`, label `signer-ec`, policy `2.16.356.100.2.2` (CCA Class 2).
    Ec,
}

impl LabKey {
    /// Both identities, RSA first.
    pub const ALL: [LabKey; 2] = [LabKey::Rsa, LabKey::Ec];

    /// The `CKA_ID` shared by the key pair and its certificate.
    pub const fn id(self) -> &'static [u8] {
        match self {
            LabKey::Rsa => &[0x01],
            LabKey::Ec => &[0x02],
        }
    }

    /// The `CKA_LABEL` shared by the key pair and its certificate.
    pub const fn label(self) -> &'static str {
        match self {
            LabKey::Rsa => "signer-rsa",
            LabKey::Ec => "signer-ec",
        }
    }

    /// The India PKI (CCA) certificate policy OID in the certificate.
    pub const fn policy_oid(self) -> &'static str {
        match self {
            LabKey::Rsa => "2.16.356.100.2.3",
            LabKey::Ec => "2.16.356.100.2.2",
        }
    }

    /// `openssl genpkey` arguments producing this key type.
    pub(crate) const fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            LabKey::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            LabKey::Ec => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        }
    }

    /// Short name used for file names and openssl config sections.
    pub(crate) const fn file_stem(self) -> &'static str {
        match self {
            LabKey::Rsa => "signer_rsa",
            LabKey::Ec => "signer_ec",
        }
    }
}
