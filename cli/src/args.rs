//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sign documents with a DSC token: tokens, certificates, PIN management, batch signing.
#[derive(Debug, Parser)]
#[command(name = "securesign", version, about)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// PKCS#11 module (default: $SECURESIGN_PKCS11_MODULE, then p11-kit's registry).
    #[arg(long, global = true, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// Token label (when the module has several tokens).
    #[arg(long, global = true, value_name = "LABEL", conflicts_with = "slot")]
    pub token: Option<String>,
    /// Slot id (alternative to --token).
    #[arg(long, global = true, value_name = "ID")]
    pub slot: Option<u64>,
    /// PC/SC reader of a PIV smart card (see `securesign readers`): talk to the card's PIV
    /// application directly instead of through a PKCS#11 module; exact PIN tries left.
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["module", "token", "slot"])]
    pub reader: Option<String>,
    /// Machine-readable output with stable field names; errors carry their `code`.
    #[arg(long, global = true)]
    pub json: bool,
    /// Read PINs from standard input, one per line (change/unblock: old or PUK first, then new).
    #[arg(long, global = true)]
    pub pin_stdin: bool,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the tokens the module sees.
    Tokens,
    /// List smart-card readers (PC/SC) and whether each holds a card.
    Readers,
    /// List the certificates on the token.
    Certs,
    /// PIN management.
    #[command(subcommand)]
    Pin(PinCommand),
    /// Sign SHA-256 digests or files as one batch with one PIN entry.
    Sign(SignArgs),
}

/// PIN commands.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// PIN status and tries left, without logging in.
    Status,
    /// Verify the PIN (spends a try when wrong).
    Verify(ConfirmArgs),
    /// Change the PIN (asks for the old PIN, then the new one twice unless --pin-stdin).
    Change(ConfirmArgs),
    /// Unblock the PIN with the PUK / SO PIN and set a new PIN.
    Unblock,
}

/// Confirmation for the final try.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Confirm using the last PIN try (required when only one is left).
    #[arg(long)]
    pub confirm_final_try: bool,
}

/// `sign` arguments.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Key id (hex CKA_ID) or label; optional when the token holds one certificate.
    #[arg(long, value_name = "ID|LABEL")]
    pub key: Option<String>,
    /// A SHA-256 digest to sign, hex (repeatable).
    #[arg(
        long = "digest-sha256",
        value_name = "HEX",
        required_unless_present = "input",
        conflicts_with = "input"
    )]
    pub digests: Vec<String>,
    /// Files to sign (their SHA-256 is signed).
    #[arg(long = "in", value_name = "FILE", num_args = 1.., requires = "out")]
    pub input: Vec<PathBuf>,
    /// Directory for the signature files (`<file>.sig`, or `<file>.p7s` with `--format cms`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Signature format: the raw signature, or a detached CMS / PKCS#7 SignedData.
    #[arg(long, value_enum, default_value_t = SignatureFormat::Raw)]
    pub format: SignatureFormat,
    /// Confirm using the last PIN try.
    #[arg(long)]
    pub confirm_final_try: bool,
}

/// What `sign` produces per document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// RSA PKCS#1 v1.5 / DER ECDSA signature over the document's SHA-256.
    Raw,
    /// Detached CMS SignedData (DER, `.p7s`) with signed attributes and the certificate.
    Cms,
}

impl SignatureFormat {
    /// File extension of the signature files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Raw => "sig",
            Self::Cms => "p7s",
        }
    }
}
