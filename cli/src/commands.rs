//! The commands, each a thin use of the core.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use securesign_core::backend::pkcs11::{Pkcs11Module, TokenSelector};
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::batch::{BatchOutcome, BatchProgress, CancelFlag};
use securesign_core::cert::{CertificateInfo, Validity};
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::{Error, ErrorBody, FinalTry, KeySelector, Result, SignerKey, Token};
use serde::Serialize;

use crate::args::{Cli, Command, Global, PinCommand, SignArgs, SignatureFormat};
use crate::output::{describe_pin_state, Printer};
use crate::pin_input::PinSource;

type AnyToken = Token<Box<dyn TokenBackend>>;

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
                &serde_json::json!({ "verified": true, "pin": state }),
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
        Command::Sign(args) => sign(&cli.global, args, &pins, printer),
    }
}

fn final_try(confirmed: bool) -> FinalTry {
    if confirmed {
        FinalTry::Confirmed
    } else {
        FinalTry::NotConfirmed
    }
}

fn module(global: &Global) -> Result<Pkcs11Module> {
    Pkcs11Module::discover(global.module.as_deref())
}

fn open(global: &Global) -> Result<AnyToken> {
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
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

fn sign(global: &Global, args: &SignArgs, pins: &PinSource, printer: Printer) -> Result<Done> {
    let items = items(args)?;
    if let Some(out) = &args.out {
        fs::create_dir_all(out)
            .map_err(|e| Error::BadRequest(format!("{}: {e}", out.display())))?;
    }
    let mut token = open(global)?;
    let selector = args
        .key
        .clone()
        .map_or(KeySelector::Only, KeySelector::IdOrLabel);
    // Check the certificate before asking for the PIN: an expired one never costs a try.
    let key = token.signer(&selector, SystemClock.wall())?;
    let pin = pins.read("PIN: ")?;
    token.verify_pin(pin, final_try(args.confirm_final_try), SystemClock.now())?;

    // CMS: the token signs the signed attributes, which carry the document digest.
    let prepared = match args.format {
        SignatureFormat::Raw => Vec::new(),
        SignatureFormat::Cms => items
            .iter()
            .map(|i| cms::prepare(&i.digest, SystemClock.wall()))
            .collect::<Result<Vec<_>>>()?,
    };
    let digests: Vec<Sha256Digest> = match args.format {
        SignatureFormat::Raw => items.iter().map(|i| i.digest).collect(),
        SignatureFormat::Cms => prepared.iter().map(|p| p.to_sign).collect(),
    };
    let show_progress = !printer.json() && std::io::stderr().is_terminal();
    let mut progress = |p: BatchProgress| {
        if show_progress {
            eprint!("\rSigning {}/{}", p.done, p.total);
            let _ = std::io::stderr().flush();
        }
    };
    let mut outcome = token.sign_batch(
        &key,
        &digests,
        &SystemClock,
        &CancelFlag::new(),
        &mut progress,
    );
    if show_progress {
        eprintln!();
    }
    let _ = token.logout();
    let mut error = outcome.error.take();
    if args.format == SignatureFormat::Cms {
        if let Err(e) = wrap_cms(&mut outcome, &prepared, &items, &key) {
            outcome.signed.clear();
            error = Some(e);
        }
    }
    let report = report(
        &key.certificate_der,
        &items,
        args.out.as_deref(),
        args.format,
        &outcome,
        error.as_ref(),
    )?;
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

/// Replaces each token signature by its CMS SignedData, reporting the document's digest.
fn wrap_cms(
    outcome: &mut BatchOutcome,
    prepared: &[cms::PreparedSignature],
    items: &[Item],
    key: &SignerKey,
) -> Result<()> {
    for signed in &mut outcome.signed {
        let (Some(prepared), Some(item)) = (prepared.get(signed.index), items.get(signed.index))
        else {
            return Err(Error::Internal("batch index out of range".into()));
        };
        signed.signature = cms::assemble(
            prepared,
            &key.certificate_der,
            key.scheme,
            &signed.signature,
        )?;
        signed.digest = item.digest;
    }
    Ok(())
}

/// Turns the outcome into a report, writing signature files for completed items.
fn report(
    cert_der: &[u8],
    items: &[Item],
    out: Option<&Path>,
    format: SignatureFormat,
    outcome: &BatchOutcome,
    error: Option<&Error>,
) -> Result<SignReport> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut signatures = Vec::with_capacity(outcome.signed.len());
    for signed in &outcome.signed {
        let file = items.get(signed.index).and_then(|i| i.file.clone());
        let signature_file = match (out, &file) {
            (Some(dir), Some(file)) => Some(write_signature(
                dir,
                file,
                format.extension(),
                &signed.signature,
            )?),
            _ => None,
        };
        signatures.push(SignedEntry {
            index: signed.index,
            digest: signed.digest,
            file,
            signature_file,
            signature: b64.encode(&signed.signature),
        });
    }
    Ok(SignReport {
        format,
        key: outcome.key.clone(),
        scheme: outcome.scheme,
        certificate: b64.encode(cert_der),
        total: outcome.total,
        complete: error.is_none() && outcome.signed.len() == outcome.total,
        signatures,
        error: error.map(Error::body),
    })
}

/// Writes `<dir>/<file name>.<extension>` atomically: a temporary file renamed into place.
fn write_signature(dir: &Path, file: &Path, extension: &str, signature: &[u8]) -> Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| Error::BadRequest(format!("{} has no file name", file.display())))?;
    let mut target_name = name.to_os_string();
    target_name.push(".");
    target_name.push(extension);
    let target = dir.join(&target_name);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(&target_name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(signature)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::Internal(format!("cannot write {}: {e}", target.display()))
    })?;
    Ok(target)
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
    lines.push(format!(
        "Signed {}/{} with key {} ({:?}).",
        report.signatures.len(),
        report.total,
        report.key,
        report.scheme
    ));
    lines.join("\n")
}
