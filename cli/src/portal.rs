//! `securesign sign --request LINK|ID --api URL`: a portal's signing request signed from the
//! command line with the app's checks (`securesign-client`): the request is fetched and
//! checked, shown with the token's certificate, refused before any PIN when the certificate
//! is not the expected signer or may not sign, confirmed (`--yes` or the terminal), signed
//! with one PIN entry in the portal's format, and the result posted.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use securesign_client::api::ApiClient;
use securesign_client::request::{request_id_of, SignRequest};
use securesign_client::signer_gate::{self, HeldCertificate, SignerDecision, SignerRefusal};
use securesign_client::{base_url, ClientError};
use securesign_core::cert::CertificateInfo;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::token::select_certificate;
use securesign_core::{Error, ErrorBody, ErrorCode, KeySelector, SignerKey};
use serde::Serialize;

use crate::args::{Global, SignArgs, SignatureFormat};
use crate::batch::sign_each;
use crate::commands::{final_try, open, AnyToken, Done};
use crate::interrupt::Interrupt;
use crate::output::Printer;
use crate::pin_input::PinSource;

type ClientResult<T> = Result<T, ClientError>;

/// The request as shown before signing (`--json`: the `request` object).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestView {
    request_id: String,
    tenant: securesign_client::api::Tenant,
    origin: String,
    expires_at: String,
    signature_format: SignatureFormat,
    /// The signer the portal expects, in words; `null` when it named none.
    expected_signer: Option<String>,
    documents: Vec<DocumentView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentView {
    id: String,
    name: String,
    /// Hex SHA-256 of the document, as the portal sent it.
    digest_sha256: String,
}

/// What the server said to the posted result.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultView {
    signed: usize,
    status: String,
    signature_algorithm: Option<String>,
}

/// `sign --request`'s report: always the request once it was fetched, the token's
/// certificate once read, then the result or the error (and a refusal's details).
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<RequestView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<HeldCertificate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<SignerRefusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ResultView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

/// Runs `sign --request`; prints the report (JSON) or text, errors included.
pub fn sign(global: &Global, args: &SignArgs, pins: &PinSource, printer: Printer) -> Done {
    let mut report = Report::default();
    match run(global, args, pins, printer, &mut report) {
        Ok(()) => {
            printer.print(&report, || describe_result(&report));
            Done::Success
        }
        Err(err) => {
            if printer.json() {
                report.error = Some(err.0);
                printer.print(&report, String::new);
            } else {
                if let Some(refusal) = &report.refusal {
                    eprintln!("{}", describe_refusal(refusal));
                }
                printer.error_body(&err.0);
            }
            Done::FailureReported
        }
    }
}

fn run(
    global: &Global,
    args: &SignArgs,
    pins: &PinSource,
    printer: Printer,
    report: &mut Report,
) -> ClientResult<()> {
    let id = request_id_of(args.request.as_deref().unwrap_or_default())?;
    let base = base_url::parse(args.api.as_deref().unwrap_or_default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::new(ErrorCode::Internal, format!("async runtime: {e}")))?;
    let api = ApiClient::new(base, concat!("SecureSign-CLI/", env!("CARGO_PKG_VERSION")))?;
    let request = runtime.block_on(api.sign_request(&id))?;
    report.request = Some(view(&request));
    if request.expired_at(SystemClock.wall()) {
        return Err(ClientError::new(
            ErrorCode::SessionExpired,
            format!("the signing request expired at {}", request.expires_at),
        ));
    }

    // The token's certificate, read without a PIN, decides whether a PIN is asked at all.
    let mut token = open(global)?;
    let selector = args
        .key
        .clone()
        .map_or(KeySelector::Only, KeySelector::IdOrLabel);
    let (signer, shown) = read_signer(&mut token, &selector)?;
    report.certificate = shown.as_ref().map(HeldCertificate::of);
    let key = match signer_gate::decide(
        &request.tenant.display_name,
        request.expected_signer.as_ref(),
        signer,
        shown.as_ref(),
    ) {
        SignerDecision::Proceed(key) => *key,
        SignerDecision::Refuse(refusal) => {
            let err = ClientError(refusal.error.clone());
            report.refusal = Some(*refusal);
            return Err(err);
        }
        SignerDecision::Block(err) => return Err(err.into()),
    };
    if !printer.json() {
        println!("{}", describe_request(report));
    }
    if !args.yes {
        confirm(report, &request, printer)?;
    }

    let pin = pins.read("PIN: ")?;
    token.verify_pin(pin, final_try(args.confirm_final_try), SystemClock.now())?;
    let signatures = sign_documents(&mut token, &key, &request, printer);
    let _ = token.logout();
    let signatures = signatures?;
    let signed = signatures.len();
    let answer = runtime.block_on(api.submit_result(
        &request.request_id,
        &key.certificate_der,
        signatures,
    ))?;
    report.result = Some(ResultView {
        signed,
        status: answer.status,
        signature_algorithm: answer.signature_algorithm,
    });
    Ok(())
}

/// The signer key (or why it may not sign) and the certificate to show: the refused one
/// too, when it is expired, not yet valid or may not sign, so the user sees why.
fn read_signer(
    token: &mut AnyToken,
    selector: &KeySelector,
) -> ClientResult<(Result<SignerKey, Error>, Option<CertificateInfo>)> {
    let signer = token.signer(selector, SystemClock.wall());
    let shown = match &signer {
        Ok(key) => Some(key.certificate.clone()),
        Err(Error::CertExpired { .. } | Error::CertNotYetValid { .. } | Error::CertKeyUsage(_)) => {
            let cert = select_certificate(token.certificates()?, selector)?;
            Some(CertificateInfo::from_der(&cert.der)?)
        }
        Err(_) => None,
    };
    Ok((signer, shown))
}

/// Signs every document in the portal's format; Ctrl-C or a token error posts nothing.
fn sign_documents(
    token: &mut AnyToken,
    key: &SignerKey,
    request: &SignRequest,
    printer: Printer,
) -> ClientResult<Vec<(String, Vec<u8>)>> {
    let format = format_of(request);
    let items: Vec<_> = request
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| (i, d.digest))
        .collect();
    let interrupt = Interrupt::install()?;
    let mut signatures = Vec::with_capacity(items.len());
    let stopped = sign_each(
        token,
        key,
        format,
        &items,
        &interrupt,
        !printer.json(),
        |index, signature| {
            let document = request
                .documents
                .get(index)
                .ok_or_else(|| Error::Internal("batch index out of range".into()))?;
            signatures.push((document.id.clone(), signature));
            Ok(())
        },
    );
    match stopped {
        None => Ok(signatures),
        Some(err) => {
            let mut err = ClientError::from(err);
            err.0.message.push_str(&format!(
                " ({} of {} documents were signed; nothing was sent, the request stays open)",
                signatures.len(),
                items.len()
            ));
            Err(err)
        }
    }
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(report: &Report, request: &SignRequest, printer: Printer) -> ClientResult<()> {
    let no_terminal = || {
        ClientError::new(
            ErrorCode::BadRequest,
            "no terminal to confirm the signing on: pass --yes to sign without asking",
        )
    };
    let (input, mut output) = terminal().ok_or_else(no_terminal)?;
    let question = format!(
        "Sign {} document(s) for {}? [y/N] ",
        request.documents.len(),
        request.tenant.display_name
    );
    let summary = if printer.json() {
        // stdout carries only the JSON; the person confirming still sees what they sign.
        format!("{}\n", describe_request(report))
    } else {
        String::new()
    };
    output
        .write_all(format!("{summary}{question}").as_bytes())
        .and_then(|()| output.flush())
        .map_err(|_| no_terminal())?;
    let mut answer = String::new();
    BufReader::new(input)
        .read_line(&mut answer)
        .map_err(|_| no_terminal())?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(ClientError::new(
            ErrorCode::SignCancelled,
            "not confirmed: nothing was signed, the request stays open",
        ))
    }
}

/// The controlling terminal (input, output), opened directly: standard input may carry
/// the PIN, standard output the JSON. `None` without one.
fn terminal() -> Option<(File, File)> {
    #[cfg(unix)]
    let (input, output) = ("/dev/tty", "/dev/tty");
    #[cfg(not(unix))]
    let (input, output) = ("CONIN$", "CONOUT$");
    Some((
        OpenOptions::new().read(true).open(input).ok()?,
        OpenOptions::new().write(true).open(output).ok()?,
    ))
}

fn format_of(request: &SignRequest) -> SignatureFormat {
    match request.signature_format {
        securesign_client::api::SignatureFormat::Raw => SignatureFormat::Raw,
        securesign_client::api::SignatureFormat::Cms => SignatureFormat::Cms,
    }
}

fn view(request: &SignRequest) -> RequestView {
    RequestView {
        request_id: request.request_id.to_string(),
        tenant: request.tenant.clone(),
        origin: request.origin.clone(),
        expires_at: request.expires_at.clone(),
        signature_format: format_of(request),
        expected_signer: request.expected_signer.as_ref().map(|e| e.describe()),
        documents: request
            .documents
            .iter()
            .map(|d| DocumentView {
                id: d.id.clone(),
                name: d.name.clone(),
                digest_sha256: d.digest.to_hex(),
            })
            .collect(),
    }
}

fn describe_certificate(cert: &HeldCertificate) -> String {
    let mut parts = vec![cert
        .common_name
        .clone()
        .unwrap_or_else(|| "(no name)".into())];
    if let Some(serial) = &cert.subject_serial_number {
        parts.push(format!("serialNumber {serial}"));
    }
    parts.extend(cert.classes.iter().cloned());
    format!("{}, sha256 {}", parts.join(", "), cert.sha256_thumbprint)
}

fn describe_request(report: &Report) -> String {
    let Some(request) = &report.request else {
        return String::new();
    };
    let mut lines = vec![
        format!("Signing request {}", request.request_id),
        format!(
            "  Portal:          {} ({})",
            request.tenant.display_name, request.tenant.id
        ),
        format!("  Origin:          {}", request.origin),
        format!("  Expires:         {}", request.expires_at),
        format!(
            "  Expected signer: {}",
            request.expected_signer.as_deref().unwrap_or("anyone")
        ),
        format!(
            "  Format:          {}",
            match request.signature_format {
                SignatureFormat::Raw => "raw (a signature over each document's SHA-256)",
                SignatureFormat::Cms => "cms (a detached CMS SignedData per document)",
            }
        ),
    ];
    if let Some(cert) = &report.certificate {
        lines.push(format!("  Token holds:     {}", describe_certificate(cert)));
    }
    lines.push(format!("  Documents ({}):", request.documents.len()));
    lines.extend(
        request
            .documents
            .iter()
            .enumerate()
            .map(|(i, d)| format!("    {:>3}. {}  (sha256 {})", i + 1, d.name, d.digest_sha256)),
    );
    lines.join("\n")
}

fn describe_refusal(refusal: &SignerRefusal) -> String {
    format!(
        "{} expects {}; the token holds {}. No PIN was asked.",
        refusal.portal,
        refusal
            .expected
            .as_deref()
            .unwrap_or("a signing certificate"),
        describe_certificate(&refusal.holds)
    )
}

fn describe_result(report: &Report) -> String {
    let (Some(result), Some(request)) = (&report.result, &report.request) else {
        return String::new();
    };
    format!(
        "Signed {} document(s) for {}; the server answered: {}{}.",
        result.signed,
        request.tenant.display_name,
        result.status,
        result
            .signature_algorithm
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default()
    )
}
