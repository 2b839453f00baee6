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
#[command(after_long_help = SIGN_HELP)]
pub struct SignArgs {
    /// Key id (hex CKA_ID) or label; optional when the token holds one certificate.
    #[arg(long, value_name = "ID|LABEL")]
    pub key: Option<String>,
    /// A SHA-256 digest to sign, hex (repeatable).
    #[arg(
        long = "digest-sha256",
        value_name = "HEX",
        required_unless_present_any = ["input", "request"],
        conflicts_with_all = ["input", "request"]
    )]
    pub digests: Vec<String>,
    /// Files to sign (their SHA-256 is signed). Each signature file is written as soon as
    /// it is made; files already signed are skipped (see below).
    #[arg(long = "in", value_name = "FILE", num_args = 1.., requires = "out", conflicts_with = "request")]
    pub input: Vec<PathBuf>,
    /// Directory for the signature files (`<file>.sig`, or `<file>.p7s` with `--format cms`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Signature format: the raw signature, or a detached CMS / PKCS#7 SignedData (a portal
    /// request names its own format).
    #[arg(long, value_enum, default_value_t = SignatureFormat::Raw, conflicts_with = "request")]
    pub format: SignatureFormat,
    /// Sign a portal's signing request: its link (`securesign://sign?requestId=…` or
    /// `https://securesign.toolsbots.com/sign?requestId=…`) or its request id.
    #[arg(long, value_name = "LINK|ID", requires = "api")]
    pub request: Option<String>,
    /// The SecureSign API base URL the request is fetched from and the result posted to
    /// (`https://…`, or `http://` on this computer only).
    #[arg(long, value_name = "URL", requires = "request")]
    pub api: Option<String>,
    /// Sign the request without asking for confirmation on the terminal.
    #[arg(long, requires = "request")]
    pub yes: bool,
    /// Confirm using the last PIN try.
    #[arg(long)]
    pub confirm_final_try: bool,
}

/// `sign --help`'s closing text: resuming file batches, Ctrl-C, portal requests.
const SIGN_HELP: &str = "\
Files (--in … --out DIR):
  Every signature file is written as soon as its document is signed: a temporary file in
  DIR, flushed to disk, then renamed into place. Ctrl-C stops the batch after the document
  being signed (its file is completed), keeps every file already written and leaves no
  temporary file; a second Ctrl-C ends the program at once.
  Run the same command again to finish the batch: a document whose signature file already
  exists is skipped when that file verifies against the document's current content and the
  chosen certificate (raw: the signature over the file's SHA-256 with the certificate's key;
  cms: the detached CMS verifies and carries this certificate). If such a file does not
  verify, nothing is signed and the run stops with SS_BAD_REQUEST (move the file away).
  When every document is signed already, no PIN is asked.

Portal requests (--request LINK|ID --api URL):
  The request is fetched from the API, then shown (portal, origin, documents, expiry, the
  signer it expects) with the token's certificate. A certificate that is not the expected
  signer, or may not sign, is refused before any PIN is asked. Unless --yes is given, you
  confirm on the terminal (without a terminal and without --yes: SS_BAD_REQUEST). One PIN
  entry signs every document in the format the portal asked for; the result is posted and
  the server's answer printed. Ctrl-C while signing posts nothing: the request stays open.
";

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
