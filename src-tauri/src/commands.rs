//! The commands the UI may invoke. Each one is a thin call into the core or the API
//! client; no signing or PIN policy lives here.
//!
//! PINs and PUKs arrive as raw IPC bodies (never JSON, see [`crate::pin_ipc`]), become
//! zeroizing [`Pin`]s at once and go to the token worker; they are never stored, logged or
//! emitted.
//!
//! One request is open at a time: while it is (request screen, PIN entry, signing, kept
//! signatures), another link is refused here (`SS_CONFLICT`) and waits in the state's queue
//! until the user finishes or declines the open one; every flow command names the request
//! id the screen showed and is refused for any other.

use securesign_core::biometric::{Availability, BiometricGate, GateStep, PromptRequest};
use securesign_core::cert::{CertificateInfo, Validity};
use securesign_core::deeplink::{RequestId, SignLink};
use securesign_core::status::{PinState, PinStatus};
use securesign_core::token::{select_certificate, FinalTry};
use securesign_core::{Error, ErrorBody, ErrorCode, PinPolicy};
use serde::Serialize;
use tauri::ipc::Request;
use tauri::State;
use time::OffsetDateTime;

use crate::api::{ApiClient, Document, FinishResponse, SignatureFormat, Tenant};
use crate::error::{CommandError, CommandResult};
use crate::pin_ipc::{self, PinChannel};
use crate::settings::Settings;
use crate::signer_gate::{self, SignerDecision, SignerRefusal};
use crate::signing::{sign_pending, PassResult, Pending};
use crate::state::{AppState, Current};

/// The signer certificate as the request screen shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// Parsed certificate.
    pub info: CertificateInfo,
    /// Valid, expiring soon, expired or not yet valid, now.
    pub validity: Validity,
}

/// The token side of a request screen.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    /// Token label.
    pub label: String,
    /// PIN status and tries left (no try spent to read it).
    pub pin: PinState,
    /// Length and characters the PIN must have.
    pub pin_policy: PinPolicy,
}

/// Everything the request screen shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request id.
    pub request_id: RequestId,
    /// Who asks.
    pub tenant: Tenant,
    /// Verified portal origin.
    pub origin: String,
    /// When the request expires (RFC 3339).
    pub expires_at: String,
    /// Documents to sign.
    pub documents: Vec<Document>,
    /// The signer certificate, when the token could be read.
    pub certificate: Option<CertificateView>,
    /// The token, when it could be opened.
    pub token: Option<TokenView>,
    /// Why signing is impossible (no token, expired certificate, …).
    pub blocker: Option<ErrorBody>,
    /// The signer the portal expects, in words, when it named one.
    pub expected_signer: Option<String>,
    /// The token's certificate may not sign this request (someone else's certificate,
    /// or one whose key usage forbids signing): the UI shows this instead of a PIN field.
    /// `blocker` then carries the same error.
    pub refusal: Option<SignerRefusal>,
    /// A verified PIN session is active: signing needs no PIN.
    pub session_active: bool,
    /// The biometric gate's first step.
    pub gate: GateStep,
    /// Raw signatures or detached CMS, as the portal asked.
    pub signature_format: SignatureFormat,
}

/// How far the open request's signing got (kept across a stopped batch).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningProgressView {
    /// Documents signed and kept.
    pub signed: usize,
    /// Documents in the request.
    pub total: usize,
}

/// What a finished signing reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignOutcomeView {
    /// Documents signed.
    pub signed: usize,
    /// The server's answer.
    pub server: FinishResponse,
}

/// PIN management screen.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PinStatusView {
    /// Token label.
    pub label: String,
    /// Status and tries left.
    pub pin: PinState,
    /// PIN rules.
    pub pin_policy: PinPolicy,
    /// PUK rules.
    pub puk_policy: PinPolicy,
    /// Milliseconds to auto logout while a session is active.
    pub session_remaining_ms: Option<u64>,
}

/// Settings screen.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// Stored settings.
    pub settings: Settings,
    /// Whether biometrics can be used on this device.
    pub biometric_availability: Availability,
    /// Whether this is a phone (its token source reaches USB OTG and NFC tokens).
    pub phone: bool,
}

fn api(state: &AppState) -> CommandResult<ApiClient> {
    ApiClient::new(state.settings().api_url()?)
}

fn confirm(final_try: bool) -> FinalTry {
    if final_try {
        FinalTry::Confirmed
    } else {
        FinalTry::NotConfirmed
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The link the page should open now: the open request's own link when one is open (the
/// page was reloaded mid-flow and forgot it; reopening it keeps its signatures, and it
/// stays the only request that can be signed), otherwise the oldest link that waited (the
/// one the app was started with, or one that arrived while another request was open).
#[tauri::command]
pub fn startup_link(state: State<'_, AppState>) -> Option<String> {
    if let Some(open) = state.current().as_ref() {
        return Some(
            SignLink {
                request_id: open.request.request_id.clone(),
            }
            .to_link(),
        );
    }
    state.take_pending_link()
}

/// Opens a `securesign://sign` link: loads the request, reads the token and the signer
/// certificate (no PIN, no login), refuses a certificate that is not the portal's expected
/// signer or may not sign, and starts the biometric gate. `change_token`: the user says
/// they changed the token; when the open token is gone (its worker closes), the token is
/// opened afresh once instead of reporting it missing.
#[tauri::command]
pub async fn open_request(
    state: State<'_, AppState>,
    link: String,
    change_token: Option<bool>,
) -> CommandResult<RequestView> {
    let link = SignLink::parse(&link)?;
    refuse_while_another_is_open(&state, &link.request_id)?;
    let request = api(&state)?.sign_request(&link.request_id).await?;
    let selector = state.key_selector();
    let mut token = state.with_token(read_signer(selector.clone())).await;
    if change_token == Some(true)
        && matches!(&token, Err(e) if matches!(e.code(), ErrorCode::TokenNotPresent | ErrorCode::TokenError))
    {
        token = state.with_token(read_signer(selector)).await;
    }
    let now = OffsetDateTime::now_utc();
    let (token, certificate, signer, blocker, refusal) = match token {
        Ok((info, pin, signer, shown)) => {
            let view = TokenView {
                label: info.label,
                pin,
                pin_policy: info.pin_policy,
            };
            let decision = signer_gate::decide(
                &request.tenant.display_name,
                request.expected_signer.as_ref(),
                signer,
                shown.as_ref(),
            );
            let certificate = shown.map(|info| CertificateView {
                validity: info.validity_at(now),
                info,
            });
            match decision {
                SignerDecision::Proceed(key) => (Some(view), certificate, Some(*key), None, None),
                SignerDecision::Refuse(refusal) => (
                    Some(view),
                    certificate,
                    None,
                    Some(refusal.error.clone()),
                    Some(*refusal),
                ),
                SignerDecision::Block(err) => {
                    (Some(view), certificate, None, Some(err.body()), None)
                }
            }
        }
        Err(err) => (None, None, None, Some(err.0), None),
    };
    let session_active = token
        .as_ref()
        .is_some_and(|t| t.pin.status == PinStatus::SessionActive);
    let mut gate = BiometricGate::new(
        state.settings().biometric,
        &state.biometrics().availability(),
    );
    let step = gate.start(session_active);
    let view = RequestView {
        request_id: request.request_id.clone(),
        tenant: request.tenant.clone(),
        origin: request.origin.clone(),
        expires_at: request.expires_at.clone(),
        documents: request.documents.clone(),
        certificate,
        token,
        blocker,
        expected_signer: request
            .expected_signer
            .as_ref()
            .map(|expected| expected.describe()),
        refusal,
        session_active,
        gate: step.clone(),
        signature_format: request.signature_format,
    };
    let mut current = Current::new(request, signer, gate, step);
    current.refused = view.refusal.as_ref().map(|r| r.error.clone());
    let mut slot = state.current();
    match slot.as_mut() {
        // Reopened (e.g. after changing the token): the kept signatures stay with it.
        Some(open) if open.request.request_id == current.request.request_id => {
            current.done = std::mem::take(&mut open.done);
            current.done_with = open.done_with.take();
        }
        // Another request was opened while this one loaded: it wins, this one waits.
        Some(open) => return Err(another_is_open(&open.request.request_id)),
        None => {}
    }
    *slot = Some(current);
    Ok(view)
}

/// `SS_CONFLICT` when a request other than `id` is open: a link that arrives mid-flow never
/// replaces the request whose PIN is being typed or whose documents are being signed.
fn refuse_while_another_is_open(state: &AppState, id: &RequestId) -> CommandResult<()> {
    match state.current().as_ref() {
        Some(open) if open.request.request_id != *id => {
            Err(another_is_open(&open.request.request_id))
        }
        _ => Ok(()),
    }
}

fn another_is_open(open: &RequestId) -> CommandError {
    let mut err = CommandError::new(
        ErrorCode::Conflict,
        format!(
            "another signing request ({}) is open: finish or cancel it first",
            open.as_str()
        ),
    );
    err.0.resolution = "Finish or cancel the open request; the new one waits".into();
    err
}

type SignerRead = (
    securesign_core::backend::TokenInfo,
    PinState,
    securesign_core::Result<securesign_core::SignerKey>,
    Option<CertificateInfo>,
);

/// Reads the token, its PIN state and the signer certificate: no PIN, no login.
fn read_signer(
    selector: securesign_core::KeySelector,
) -> impl FnOnce(&securesign_core::worker::TokenWorker) -> securesign_core::Result<SignerRead> {
    move |worker| {
        let info = worker.info()?;
        let pin = worker.status()?;
        let signer = worker.signer(selector.clone());
        let shown = match &signer {
            Ok(key) => Some(key.certificate.clone()),
            // Show the refused certificate too, so the user sees why.
            Err(
                Error::CertExpired { .. } | Error::CertNotYetValid { .. } | Error::CertKeyUsage(_),
            ) => {
                let cert = select_certificate(worker.certificates()?, &selector)?;
                Some(CertificateInfo::from_der(&cert.der)?)
            }
            Err(_) => None,
        };
        Ok((info, pin, signer, shown))
    }
}

/// The prompt's text when the page sends none (or one that is not a short line of text).
const DEFAULT_PROMPT_REASON: &str = "Confirm it is you to sign";
/// Longest prompt text the page may set (platform prompts show a line or two).
const MAX_PROMPT_REASON_CHARS: usize = 120;

/// The page's text for the platform prompt, in the user's language: one short line of
/// printable text, else the default.
fn prompt_reason(reason: Option<String>) -> String {
    reason
        .map(|r| r.trim().to_owned())
        .filter(|r| {
            !r.is_empty()
                && r.chars().count() <= MAX_PROMPT_REASON_CHARS
                && !r.chars().any(char::is_control)
        })
        .unwrap_or_else(|| DEFAULT_PROMPT_REASON.to_owned())
}

/// Shows the platform's biometric prompt for the request on screen (after a failure:
/// prompts again), with `reason` (the page's text in the user's language) as its text.
/// Never touches the token, except to end the PIN session when a lockout falls back to
/// the PIN.
#[tauri::command]
pub async fn biometric_prompt(
    state: State<'_, AppState>,
    request_id: String,
    reason: Option<String>,
) -> CommandResult<GateStep> {
    let reason = prompt_reason(reason);
    let (mut gate, mut step) = {
        let current = state.current();
        let current = current_for(&current, &request_id)?;
        (current.gate.clone(), current.step.clone())
    };
    if let GateStep::RetryOrCancel { .. } = step {
        step = gate.retry();
    }
    let session_active = match state.open_worker() {
        Some(_) => {
            state
                .with_token(|w| Ok(w.status()?.status == PinStatus::SessionActive))
                .await?
        }
        None => false,
    };
    let auth = state.biometrics();
    let (gate, step) = tauri::async_runtime::spawn_blocking(move || {
        while let GateStep::Prompt {
            allow_device_credential,
        } = step
        {
            let outcome = auth.authenticate(&PromptRequest {
                reason: reason.clone(),
                allow_device_credential,
            });
            step = gate.on_outcome(outcome, session_active);
        }
        (gate, step)
    })
    .await
    .map_err(|e| CommandError::new(ErrorCode::Internal, format!("biometric task: {e}")))?;
    if let GateStep::AskPin { end_session: true } = step {
        state.with_token(|w| w.logout()).await?;
    }
    let mut current = state.current();
    if let Some(current) = current.as_mut() {
        current.gate = gate;
        current.step = step.clone();
    }
    Ok(step)
}

fn current_for<'a>(current: &'a Option<Current>, request_id: &str) -> CommandResult<&'a Current> {
    current
        .as_ref()
        .filter(|c| c.request.request_id.as_str() == request_id)
        .ok_or_else(|| CommandError::new(ErrorCode::NotFound, "that signing request is not open"))
}

/// A one-use key for the next PIN command: the app's ephemeral P-256 public key (SEC1
/// uncompressed), for the page to encrypt the PIN to (see [`crate::pin_ipc`]).
#[tauri::command]
pub fn pin_key(channel: State<'_, PinChannel>) -> Vec<u8> {
    channel.new_key()
}

/// Verifies the PIN once (the token counts a wrong PIN) and starts the PIN session.
///
/// The PIN is the encrypted raw body (see [`crate::pin_ipc`]); headers: `ss-request-id` (the request
/// on screen: refused when another is open, and required while one is) and
/// `ss-confirm-final-try: 1`. While a request is open whose signer was refused, no PIN goes
/// to the token; when the portal named a signer, the token's certificate is read again (no
/// PIN) and must still be that signer (the token may have been changed since the request
/// screen). A verified PIN passes the open request's biometric gate once a prompt was
/// answered (failed, cancelled, locked out): the PIN screen is the biometric's fallback.
#[tauri::command]
pub async fn verify_pin(
    state: State<'_, AppState>,
    channel: State<'_, PinChannel>,
    request: Request<'_>,
) -> CommandResult<PinState> {
    let [pin] = channel.secrets::<1>("verify_pin", &request)?;
    let confirm_final_try = pin_ipc::flag(&request, pin_ipc::CONFIRM_FINAL_TRY);
    let shown = pin_ipc::header(&request, pin_ipc::REQUEST_ID).map(str::to_owned);
    let expected = match state.current().as_ref() {
        Some(current) => {
            if shown.as_deref() != Some(current.request.request_id.as_str()) {
                return Err(CommandError::new(
                    ErrorCode::Conflict,
                    "the PIN was typed for another signing request than the open one",
                ));
            }
            if let Some(refused) = &current.refused {
                return Err(CommandError(refused.clone()));
            }
            current.request.expected_signer.clone()
        }
        None if shown.is_some() => {
            return Err(CommandError::new(
                ErrorCode::NotFound,
                "that signing request is not open",
            ))
        }
        None => None,
    };
    let selector = state.key_selector();
    let verified = state
        .with_token(move |w| {
            if expected.is_some() {
                signer_gate::admit(expected.as_ref(), &w.signer(selector)?)?;
            }
            w.verify_pin(pin, confirm(confirm_final_try))
        })
        .await?;
    // The PIN screen after a failed or cancelled biometric is its fallback: the verified
    // PIN passes the request's gate (else signing asks for the PIN again, endlessly).
    if let Some(shown) = shown.as_deref() {
        let mut current = state.current();
        if let Some(current) = current
            .as_mut()
            .filter(|c| c.request.request_id.as_str() == shown)
        {
            if let Some(step) = current.gate.pin_verified() {
                current.step = step;
            }
        }
    }
    Ok(verified)
}

/// Signs the documents of the open request that are not signed yet (all of them the
/// first time; after a cancel or a removed token only the rest), in the format the portal
/// asked for, then posts the result. Nothing is posted until every document is signed.
#[tauri::command]
pub async fn sign_request(
    state: State<'_, AppState>,
    request_id: String,
) -> CommandResult<SignOutcomeView> {
    let pending = {
        let current = state.current();
        let current = current_for(&current, &request_id)?;
        if let Some(refused) = &current.refused {
            return Err(CommandError(refused.clone()));
        }
        if !current.gate_passed() {
            return Err(CommandError::new(
                ErrorCode::PinRequired,
                "confirm with biometrics first",
            ));
        }
        if current.signer.is_none() {
            return Err(CommandError::new(
                ErrorCode::KeyNotFound,
                "no usable signing certificate",
            ));
        }
        Pending::of(current)
    };
    if pending.request.expired_at(OffsetDateTime::now_utc()) {
        return Err(CommandError::new(
            ErrorCode::SessionExpired,
            "the signing request expired before it was signed",
        ));
    }
    let request = pending.request.clone();
    let total = request.documents.len();
    let selector = state.key_selector();
    let cancel = state.new_cancel_flag();
    let batch = match pending.kept_certificate.clone() {
        // Everything is signed (an earlier post failed): post again, no token needed.
        Some(certificate_der) if pending.indices.is_empty() => Ok(PassResult {
            certificate_der,
            signed: Vec::new(),
            error: None,
        }),
        _ => {
            state
                .with_token(move |w| sign_pending(w, selector, pending, cancel))
                .await
        }
    };
    state.batch_ended();
    let batch = batch?;
    if let Some(Error::TokenNotPresent | Error::Token(_)) = &batch.error {
        state.forget_token();
    }
    // Keep what was signed, whatever stopped the batch.
    let (signed, certificate) = {
        let mut current = state.current();
        let current = current
            .as_mut()
            .filter(|c| c.request.request_id == request.request_id)
            .ok_or_else(|| {
                CommandError::new(ErrorCode::NotFound, "that signing request is not open")
            })?;
        if current.done_with.as_deref() != Some(batch.certificate_der.as_slice()) {
            // Another certificate than the kept signatures': they cannot go together.
            current.done = vec![None; total];
            current.done_with = Some(batch.certificate_der.clone());
        }
        for (index, signature) in batch.signed {
            if let Some(slot) = current.done.get_mut(index) {
                *slot = Some(signature);
            }
        }
        (current.signed_count(), batch.certificate_der)
    };
    if let Some(err) = batch.error {
        let mut err = CommandError::from(stopped(err));
        if signed > 0 {
            err.0.message = format!(
                "{}; {signed} of {total} documents are signed and kept",
                err.0.message
            );
        }
        return Err(err);
    }
    let signatures = {
        let current = state.current();
        let current = current_for(&current, request.request_id.as_str())?;
        request
            .documents
            .iter()
            .zip(&current.done)
            .map(|(doc, sig)| sig.clone().map(|s| (doc.id.clone(), s)))
            .collect::<Option<Vec<_>>>()
    }
    .ok_or_else(|| CommandError::new(ErrorCode::Internal, "a document is not signed"))?;
    let server = api(&state)?
        .submit_result(&request.request_id, &certificate, signatures)
        .await?;
    *state.current() = None;
    Ok(SignOutcomeView {
        signed: total,
        server,
    })
}

/// A PIN session that ended (idle, logout, removal) before signing means "ask the PIN";
/// `SS_SESSION_EXPIRED` is kept for the signing request itself.
fn stopped(err: Error) -> Error {
    match err {
        Error::SessionEnded(_) => Error::PinRequired,
        other => other,
    }
}

/// How many documents of the open request are signed and kept.
#[tauri::command]
pub fn signing_progress(
    state: State<'_, AppState>,
    request_id: String,
) -> CommandResult<SigningProgressView> {
    let current = state.current();
    let current = current_for(&current, &request_id)?;
    Ok(SigningProgressView {
        signed: current.signed_count(),
        total: current.done.len(),
    })
}

/// Stops the running batch after the current document; `false` when none runs.
#[tauri::command]
pub fn cancel_signing(state: State<'_, AppState>) -> bool {
    state.cancel_batch()
}

/// Declines the open request: tells the server, which tells the portal.
#[tauri::command]
pub async fn decline_request(
    state: State<'_, AppState>,
    request_id: String,
) -> CommandResult<FinishResponse> {
    let id = {
        let current = state.current();
        current_for(&current, &request_id)?
            .request
            .request_id
            .clone()
    };
    let answer = api(&state)?.cancel(&id).await;
    // The server answered (declined, or the request is gone/expired/finished): the request
    // is closed here too and a waiting link may open. Only an unreachable server keeps it.
    if !matches!(&answer, Err(e) if e.code() == ErrorCode::Network) {
        let mut current = state.current();
        if current.as_ref().is_some_and(|c| c.request.request_id == id) {
            *current = None;
        }
    }
    answer
}

/// PIN status, rules and session time left (never logs in).
#[tauri::command]
pub async fn pin_status(state: State<'_, AppState>) -> CommandResult<PinStatusView> {
    state
        .with_token(|w| {
            let info = w.info()?;
            Ok(PinStatusView {
                label: info.label,
                pin: w.status()?,
                pin_policy: info.pin_policy,
                puk_policy: info.puk_policy,
                session_remaining_ms: w.remaining()?.map(ms),
            })
        })
        .await
}

/// Changes the PIN (the old PIN costs a try when wrong). Encrypted body: old PIN, NUL, new PIN
/// (see [`crate::pin_ipc`]); header `ss-confirm-final-try: 1` confirms the final try.
#[tauri::command]
pub async fn change_pin(
    state: State<'_, AppState>,
    channel: State<'_, PinChannel>,
    request: Request<'_>,
) -> CommandResult<()> {
    let [old, new] = channel.secrets::<2>("change_pin", &request)?;
    let confirm_final_try = pin_ipc::flag(&request, pin_ipc::CONFIRM_FINAL_TRY);
    state
        .with_token(move |w| w.change_pin(old, new, confirm(confirm_final_try)))
        .await
}

/// Unblocks the PIN with the PUK and sets a new PIN (where the token supports it). Body:
/// encrypted PUK, NUL, new PIN (see [`crate::pin_ipc`]).
#[tauri::command]
pub async fn unblock_pin(
    state: State<'_, AppState>,
    channel: State<'_, PinChannel>,
    request: Request<'_>,
) -> CommandResult<()> {
    let [puk, new] = channel.secrets::<2>("unblock_pin", &request)?;
    state.with_token(move |w| w.unblock_pin(puk, new)).await
}

/// Ends the PIN session now; `true` when one was active.
#[tauri::command]
pub async fn logout(state: State<'_, AppState>) -> CommandResult<bool> {
    if state.open_worker().is_none() {
        return Ok(false);
    }
    state.with_token(|w| w.logout()).await
}

/// Milliseconds until auto logout, or `None` without a session (banner countdown).
#[tauri::command]
pub async fn session_remaining(state: State<'_, AppState>) -> CommandResult<Option<u64>> {
    if state.open_worker().is_none() {
        return Ok(None);
    }
    state.with_token(|w| Ok(w.remaining()?.map(ms))).await
}

/// The settings and whether biometrics are possible here.
#[tauri::command]
pub fn get_settings(state: State<'_, AppState>) -> SettingsView {
    SettingsView {
        settings: state.settings(),
        biometric_availability: state.biometrics().availability(),
        phone: cfg!(mobile),
    }
}

/// Validates, saves and applies settings.
#[tauri::command]
pub fn save_settings(state: State<'_, AppState>, settings: Settings) -> CommandResult<()> {
    state.replace_settings(settings)
}

/// A PC/SC reader as the settings screen lists it (desktop only).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderView {
    /// PC/SC reader name.
    pub name: String,
    /// Whether a card is inserted.
    pub card_present: bool,
}

/// What the settings screen shows under "Tokens found".
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryView {
    /// Every PKCS#11 module found (settings path, environment, p11-kit, the DSC vendors'
    /// known paths) with its tokens, or why it could not be read.
    pub modules: Vec<securesign_core::backend::pkcs11::ModuleTokens>,
    /// PC/SC readers (empty on phones).
    pub readers: Vec<ReaderView>,
    /// Why the readers could not be listed (no PC/SC service), when they could not.
    pub readers_error: Option<ErrorBody>,
}

/// A certificate on a token, to pick the signing key from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateChoice {
    /// The key pair's id, hex: what the settings store as the signing key.
    pub id: String,
    /// The object's label.
    pub label: String,
    /// Subject, issuer, India PKI class, validity, key usage.
    pub info: CertificateInfo,
    /// Valid, expiring soon, expired or not yet valid, now.
    pub validity: Validity,
}

/// Finds the tokens this machine offers: every PKCS#11 module (loaded, its tokens listed,
/// nothing logged in) and the PC/SC readers. Never touches a PIN.
#[tauri::command]
pub async fn discover_tokens(state: State<'_, AppState>) -> CommandResult<DiscoveryView> {
    let configured = match state.settings().token_source {
        crate::settings::TokenSource::Pkcs11 { module_path, .. } => module_path,
        _ => None,
    };
    let limit = state.worker_options().stall_limit;
    bounded_look(limit, "discovery", move || {
        let modules = securesign_core::backend::pkcs11::find_tokens(configured.as_deref());
        let (readers, readers_error) = list_pcsc_readers();
        Ok(DiscoveryView {
            modules,
            readers,
            readers_error,
        })
    })
    .await
}

/// Runs a look at tokens that loads drivers of its own (discovery, certificates before
/// any PIN) on a blocking thread, waiting for it at most `limit` (the stall limit): a
/// driver that stopped answering (OpenSC 0.23 after a card pulled mid-APDU, a frozen
/// reader) fails the command with core's stalled error (`SS_TOKEN_ERROR`) instead of
/// leaving Settings waiting for good. The thread is left behind to end on its own.
async fn bounded_look<T: Send + 'static>(
    limit: std::time::Duration,
    what: &str,
    look: impl FnOnce() -> securesign_core::Result<T> + Send + 'static,
) -> CommandResult<T> {
    let task = tauri::async_runtime::spawn_blocking(look);
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(result)) => Ok(result?),
        Ok(Err(e)) => Err(CommandError::new(
            ErrorCode::Internal,
            format!("{what} task: {e}"),
        )),
        Err(_elapsed) => Err(securesign_core::worker::stalled().into()),
    }
}

#[cfg(desktop)]
fn list_pcsc_readers() -> (Vec<ReaderView>, Option<ErrorBody>) {
    match securesign_core::apdu::pcsc::list_readers() {
        Ok(readers) => (
            readers
                .into_iter()
                .map(|r| ReaderView {
                    name: r.name,
                    card_present: r.card_present,
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(Error::Token(e.to_string()).body())),
    }
}

#[cfg(mobile)]
fn list_pcsc_readers() -> (Vec<ReaderView>, Option<ErrorBody>) {
    (Vec::new(), None)
}

/// The certificates on one token, read without a PIN: a PKCS#11 token (`modulePath` and
/// `slot`, as [`discover_tokens`] listed them) or the card in a PC/SC reader (`reader`).
#[tauri::command]
pub async fn token_certificates(
    state: State<'_, AppState>,
    module_path: Option<String>,
    slot: Option<u64>,
    reader: Option<String>,
) -> CommandResult<Vec<CertificateChoice>> {
    let limit = state.worker_options().stall_limit;
    let found = bounded_look(limit, "certificate", move || {
        match (module_path, slot, reader) {
            (Some(path), Some(slot), None) => {
                securesign_core::backend::pkcs11::Pkcs11Module::load(std::path::Path::new(&path))?
                    .slot_certificates(slot)
            }
            (None, None, Some(reader)) => reader_certificates(&reader),
            _ => Err(Error::BadRequest(
                "name a PKCS#11 module and slot, or a reader".into(),
            )),
        }
    })
    .await?;
    let now = OffsetDateTime::now_utc();
    found
        .into_iter()
        .map(|cert| {
            let info = CertificateInfo::from_der(&cert.der)?;
            Ok(CertificateChoice {
                id: cert.id.to_hex(),
                label: cert.label,
                validity: info.validity_at(now),
                info,
            })
        })
        .collect()
}

#[cfg(desktop)]
fn reader_certificates(
    reader: &str,
) -> securesign_core::Result<Vec<securesign_core::backend::TokenCertificate>> {
    use securesign_core::backend::TokenBackend;
    securesign_core::backend::piv::PivBackend::open_reader(reader)?.certificates()
}

#[cfg(mobile)]
fn reader_certificates(
    _reader: &str,
) -> securesign_core::Result<Vec<securesign_core::backend::TokenCertificate>> {
    Err(Error::Config(
        "PC/SC readers exist on desktop only: choose another token source".into(),
    ))
}
