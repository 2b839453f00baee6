//! The commands, each a thin use of the core.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use securesign_core::backend::pkcs11::{Pkcs11Module, TokenSelector};
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::cert::{CertificateInfo, Validity};
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::{Error, ErrorBody, FinalTry, KeySelector, Result, Token};
use serde::Serialize;

use crate::args::{Cli, Command, Global, PinCommand, SignArgs, SignatureFormat};
use crate::batch::sign_each;
use crate::interrupt::Interrupt;
use crate::output::{describe_pin_state, Printer};
use crate::pin_input::PinSource;
use crate::signature_files::SignatureFile;

/// A token behind any backend (PKCS#11 module or PIV card).
pub type AnyToken = Token<Box<dyn TokenBackend>>;

/// How a command ended when it did not return an error.
pub enum Done {
    /// Everything worked.
    Success,
    /// It failed and already printed why (a partial batch prints its report).
    FailureReported,
}

/// Runs one command.
pub fn run(cli: Cli, printer: Printer) -> Result<Done> {
    let pins = PinSource::new(cli.global.pin_stdin);
    match &cli.command {
        Command::Tokens => tokens(&cli.global, printer).map(|()| Done::Success),
        Command::Readers => crate::piv::readers(printer).map(|()| Done::Success),
        Command::Certs => certs(&mut open(&cli.global)?, printer).map(|()| Done::Success),
        Command::Pin(PinCommand::Status) => {
            let mut token = open(&cli.global)?;
            let state = token.status(SystemClock.now())?;
            let info = token.info().clone();
            printer.print(&serde_json::json!({ "token": info, "pin": state }), || {
                format!(
                    "{} ({})\n{}",
                    info.label,
                    info.serial,
                    describe_pin_state(&state)
                )
            });
            Ok(Done::Success)
        }
        Command::Pin(PinCommand::Verify(confirm)) => {
            let mut token = open(&cli.global)?;
            let pin = pins.read("PIN: ")?;
            let state =
                token.verify_pin(pin, final_try(confirm.confirm_final_try), SystemClock.now())?;
            let _ = token.logout();
            printer.print(
                // Logged out again at once: nothing is cached, so the spec's ACTIVE.
                &serde_json::json!({ "verified": true, "pin": state.uncached() }),
                || "PIN verified.".into(),
            );
            Ok(Done::Success)
        }
        Command::Pin(PinCommand::Change(confirm)) => {
            let mut token = open(&cli.global)?;
            let old = pins.read("Current PIN: ")?;
            let new = pins.read_new("New PIN: ")?;
            token.change_pin(old, new, final_try(confirm.confirm_final_try))?;
            printer.print(&serde_json::json!({ "changed": true }), || {
                "PIN changed.".into()
            });
            Ok(Done::Success)
        }
        Command::Pin(PinCommand::Unblock) => {
            let mut token = open(&cli.global)?;
            let puk = pins.read("PUK / SO PIN: ")?;
            let new = pins.read_new("New PIN: ")?;
            token.unblock_pin(puk, new)?;
            printer.print(&serde_json::json!({ "unblocked": true }), || {
                "PIN unblocked; the new PIN is set.".into()
            });
            Ok(Done::Success)
        }
        Command::Sign(args) if args.request.is_some() => {
            Ok(crate::portal::sign(&cli.global, args, &pins, printer))
        }
        Command::Sign(args) => sign(&cli.global, args, &pins, printer),
    }
}

pub(crate) fn final_try(confirmed: bool) -> FinalTry {
    if confirmed {
        FinalTry::Confirmed
    } else {
        FinalTry::NotConfirmed
    }
}

fn module(global: &Global) -> Result<Pkcs11Module> {
    Pkcs11Module::discover(global.module.as_deref())
}

pub(crate) fn open(global: &Global) -> Result<AnyToken> {
    if let Some(reader) = &global.reader {
        return crate::piv::open(reader);
    }
    let selector = match (&global.token, global.slot) {
        (Some(label), _) => TokenSelector::Label(label.clone()),
        (None, Some(slot)) => TokenSelector::Slot(slot),
        (None, None) => TokenSelector::Only,
    };
    let backend = module(global)?.open(&selector)?;
    Token::new(Box::new(backend), SessionPolicy::default())
}

fn tokens(global: &Global, printer: Printer) -> Result<()> {
    let module = module(global)?;
    let tokens = module.tokens()?;
    printer.print(
        &serde_json::json!({ "module": module.path(), "tokens": tokens }),
        || {
            if tokens.is_empty() {
                return format!("No token in {}", module.path().display());
            }
            tokens
                .iter()
                .map(|t| {
                    format!(
                        "slot {}: {} — {} {} (serial {}), PIN {}–{} chars, {}",
                        t.slot,
                        t.info.label,
                        t.info.manufacturer,
                        t.info.model,
                        t.info.serial,
                        t.info.pin_policy.min_len,
                        t.info.pin_policy.max_len,
                        describe_pin_state(&t.pin)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertEntry {
    id: KeyId,
    label: String,
    validity: Option<Validity>,
    certificate: Option<CertificateInfo>,
    error: Option<ErrorBody>,
}

fn certs(token: &mut AnyToken, printer: Printer) -> Result<()> {
    let now = SystemClock.wall();
    let entries: Vec<CertEntry> = token
        .certificates()?
        .into_iter()
        .map(|c| match CertificateInfo::from_der(&c.der) {
            Ok(info) => CertEntry {
                id: c.id,
                label: c.label,
                validity: Some(info.validity_at(now)),
                certificate: Some(info),
                error: None,
            },
            Err(e) => CertEntry {
                id: c.id,
                label: c.label,
                validity: None,
                certificate: None,
                error: Some(e.body()),
            },
        })
        .collect();
    printer.print(&serde_json::json!({ "certificates": entries }), || {
        entries
            .iter()
            .map(describe_cert)
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn describe_cert(entry: &CertEntry) -> String {
    let (Some(info), Some(validity)) = (&entry.certificate, &entry.validity) else {
        return format!("[{}] {}: unreadable certificate", entry.id, entry.label);
    };
    let validity = match validity {
        Validity::Valid => format!("valid until {}", info.not_after),
        Validity::ExpiringSoon { days_left } => {
            format!("EXPIRES in {days_left} days ({})", info.not_after)
        }
        Validity::Expired => format!("EXPIRED on {}", info.not_after),
        Validity::NotYetValid => format!("not valid before {}", info.not_before),
    };
    let class = info
        .highest_india_class()
        .map(|c| format!(", India PKI {}", c.label()))
        .unwrap_or_default();
    format!(
        "[{}] {}: {}\n    issuer {}\n    {validity}{class}\n    sha256 {}",
        entry.id, entry.label, info.subject, info.issuer, info.sha256_thumbprint
    )
}

/// One input of a batch: a digest given on the command line, or a file.
struct Item {
    digest: Sha256Digest,
    file: Option<PathBuf>,
}

fn items(args: &SignArgs) -> Result<Vec<Item>> {
    if !args.input.is_empty() {
        return args
            .input
            .iter()
            .map(|path| {
                let file = fs::File::open(path)
                    .map_err(|e| Error::BadRequest(format!("{}: {e}", path.display())))?;
                let digest = Sha256Digest::of_reader(std::io::BufReader::new(file))
                    .map_err(|e| Error::BadRequest(format!("{}: {e}", path.display())))?;
                Ok(Item {
                    digest,
                    file: Some(path.clone()),
                })
            })
            .collect();
    }
    args.digests
        .iter()
        .map(|hex| {
            Ok(Item {
                digest: Sha256Digest::from_hex(hex)?,
                file: None,
            })
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedEntry {
    index: usize,
    digest: Sha256Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_file: Option<PathBuf>,
    signature: String,
}

/// A document whose signature file was there already and verified.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SkippedEntry {
    index: usize,
    file: PathBuf,
    signature_file: PathBuf,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignReport {
    format: SignatureFormat,
    key: KeyId,
    scheme: SignatureScheme,
    certificate: String,
    total: usize,
    complete: bool,
    signatures: Vec<SignedEntry>,
    /// Documents signed by an earlier run (their signature files verified).
    skipped: Vec<SkippedEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

fn sign(global: &Global, args: &SignArgs, pins: &PinSource, printer: Printer) -> Result<Done> {
    let items = items(args)?;
    if let Some(out) = &args.out {
        fs::create_dir_all(out)
            .map_err(|e| Error::BadRequest(format!("{}: {e}", out.display())))?;
    }
    let files = signature_files(&items, args.out.as_deref(), args.format)?;
    let mut token = open(global)?;
    let selector = args
        .key
        .clone()
        .map_or(KeySelector::Only, KeySelector::IdOrLabel);
    // Check the certificate before asking for the PIN: an expired one never costs a try.
    let key = token.signer(&selector, SystemClock.wall())?;
    // Documents an earlier run signed are skipped; a signature file that does not verify
    // stops everything before the PIN.
    let mut skipped = Vec::new();
    let mut to_sign = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match (files.get(index).and_then(Option::as_ref), &item.file) {
            (Some(target), Some(file))
                if target.already_signed(&item.digest, args.format, &key.certificate_der)? =>
            {
                skipped.push(SkippedEntry {
                    index,
                    file: file.clone(),
                    signature_file: target.path.clone(),
                });
            }
            _ => to_sign.push((index, item.digest)),
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut signatures = Vec::with_capacity(to_sign.len());
    let error = if to_sign.is_empty() {
        None
    } else {
        let pin = pins.read("PIN: ")?;
        token.verify_pin(pin, final_try(args.confirm_final_try), SystemClock.now())?;
        let interrupt = Interrupt::install()?;
        let error = sign_each(
            &mut token,
            &key,
            args.format,
            &to_sign,
            &interrupt,
            !printer.json(),
            |index, signature| {
                let item = items
                    .get(index)
                    .ok_or_else(|| Error::Internal("batch index out of range".into()))?;
                let target = files.get(index).and_then(Option::as_ref);
                if let Some(target) = target {
                    target.write(&signature)?;
                }
                signatures.push(SignedEntry {
                    index,
                    digest: item.digest,
                    file: item.file.clone(),
                    signature_file: target.map(|t| t.path.clone()),
                    signature: b64.encode(&signature),
                });
                Ok(())
            },
        );
        let _ = token.logout();
        error
    };
    let report = SignReport {
        format: args.format,
        key: key.id.clone(),
        scheme: key.scheme,
        certificate: b64.encode(&key.certificate_der),
        total: items.len(),
        complete: error.is_none() && signatures.len() + skipped.len() == items.len(),
        signatures,
        skipped,
        error: error.as_ref().map(Error::body),
    };
    printer.print(&report, || describe_report(&report));
    match error {
        None => Ok(Done::Success),
        Some(err) => {
            // The JSON report already carries the error; people get it on stderr too.
            if !printer.json() {
                printer.error(&err);
            }
            Ok(Done::FailureReported)
        }
    }
}

/// The signature file of each file item (`None` for digests); two inputs with one file
/// name would write one file, and are refused.
fn signature_files(
    items: &[Item],
    out: Option<&Path>,
    format: SignatureFormat,
) -> Result<Vec<Option<SignatureFile>>> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .map(|item| match (out, &item.file) {
            (Some(dir), Some(file)) => {
                let target = SignatureFile::of(dir, file, format)?;
                if !seen.insert(target.path.clone()) {
                    return Err(Error::BadRequest(format!(
                        "two documents would be signed into {}",
                        target.path.display()
                    )));
                }
                Ok(Some(target))
            }
            _ => Ok(None),
        })
        .collect()
}

fn describe_report(report: &SignReport) -> String {
    let mut lines: Vec<String> = report
        .signatures
        .iter()
        .map(|s| match (&s.file, &s.signature_file) {
            (Some(file), Some(sig)) => format!("{} -> {}", file.display(), sig.display()),
            _ => format!("{}  {}", s.digest.to_hex(), s.signature),
        })
        .collect();
    if !report.skipped.is_empty() {
        lines.push(format!(
            "Skipped {} already signed (their signature files verify).",
            report.skipped.len()
        ));
    }
    lines.push(format!(
        "Signed {}/{} with key {} ({:?}).",
        report.signatures.len() + report.skipped.len(),
        report.total,
        report.key,
        report.scheme
    ));
    lines.join("\n")
}
