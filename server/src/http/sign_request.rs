//! App-side endpoints. No API key: the unguessable `requestId` from the deep link is
//! the capability. The app reads the request, then posts the signer certificate and
//! one signature per document (raw, or detached CMS, as the session asks), which are
//! verified before the session completes. Completing or cancelling queues the portal's
//! callback event in the same transaction.

use std::collections::HashMap;

use std::time::Duration;

use axum::extract::{Request, State};
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use securesign_core::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorDetail, ErrorEnvelope};
use super::json::{discard_body, read_json_capped};
use super::path::ApiPath;
use super::verification::{verify_all, SignatureCheck, SigningWindow, VerifiedSignatures};
use super::{AppState, SessionState};
use crate::api_key::KeyMode;
use crate::clock::format_rfc3339;
use crate::signature_format::SignatureFormat;
use crate::store::{FinishOutcome, SessionRecord};
use crate::trust::evidence::SignerEvidence;
use crate::trust::{Candidate, SignerTrust};
use crate::webhook::event::{outbox_entry, WebhookDocument, WebhookEventData};
use crate::webhook::outbox::{EventType, NewEvent};
use securesign_core::cert::CertificateInfo;
use securesign_core::signer::SignerRequirement;

/// Largest accepted signer certificate (DER bytes).
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;
/// Largest accepted raw signature (bytes; RSA-8192 is 1024).
pub const MAX_SIGNATURE_BYTES: usize = 1024;
/// Largest accepted CMS signature (DER bytes): the certificate, the signature and
/// some room for attributes and structure.
pub const MAX_CMS_BYTES: usize = MAX_CERTIFICATE_BYTES + 4 * 1024;
/// Most CA certificates a result may post in `chain`.
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Characters of base64 for `bytes` bytes.
const fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// The part of a result body that does not grow with the documents: the certificate
/// and a full chain in base64 (9 × 21,848 characters), and 4 KiB for field names,
/// punctuation and whitespace. 200,755 bytes.
pub const RESULT_BODY_FIXED_BYTES: usize =
    (1 + MAX_CHAIN_CERTIFICATES) * (base64_len(MAX_CERTIFICATE_BYTES) + 3) + 4 * 1024;

/// What one document adds to a result body: its signature in base64 (the format's
/// largest), its id as a JSON string (a portal's ids are at most 128 characters, at most
/// 4 UTF-8 bytes each: 512 bytes), and 128 bytes for field names, punctuation and
/// whitespace. Raw: 2,008 bytes; CMS: 27,948 bytes.
pub const fn result_body_bytes_per_document(format: SignatureFormat) -> usize {
    base64_len(max_signature_bytes(format)) + 4 * 128 + 128
}

/// The largest signature (decoded) accepted in `format`.
const fn max_signature_bytes(format: SignatureFormat) -> usize {
    match format {
        SignatureFormat::Raw => MAX_SIGNATURE_BYTES,
        SignatureFormat::Cms => MAX_CMS_BYTES,
    }
}

/// The largest result body accepted for a request of `documents` documents in `format`:
/// [`RESULT_BODY_FIXED_BYTES`] plus [`result_body_bytes_per_document`] for each.
/// One raw document: 202,763 bytes; 500 CMS documents: 14,174,755 bytes.
pub const fn max_result_body_bytes(format: SignatureFormat, documents: usize) -> usize {
    RESULT_BODY_FIXED_BYTES + documents * result_body_bytes_per_document(format)
}

/// Largest result body of any request: 500 documents of the largest CMS signatures.
pub const MAX_RESULT_BODY_BYTES: usize =
    max_result_body_bytes(SignatureFormat::Cms, super::portal::MAX_DOCUMENTS);

/// Body read (and dropped) at most before answering that a result's request cannot be
/// signed (unknown, finished, expired), and how long for: enough for a one- or
/// two-document result already on its way, so its client reads the answer on a clean
/// connection; a larger body is not read at all.
const DISCARD_BYTES: usize = 64 * 1024;
const DISCARD_WAIT: Duration = Duration::from_secs(1);

/// The tenant as shown to the signer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    /// `org_…`.
    pub id: String,
    /// Name to show.
    pub display_name: String,
}

/// A document to sign.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestDocument {
    /// The portal's id.
    pub id: String,
    /// Name to show.
    pub name: String,
    /// `SHA-256`.
    pub digest_algorithm: String,
    /// Base64 digest to sign.
    pub digest: String,
}

/// `GET /v1/sign-requests/{requestId}` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignRequestView {
    /// Always `true`.
    pub success: bool,
    /// The request id.
    pub request_id: String,
    /// Always `pending` (finished or expired requests answer an error).
    pub status: SessionState,
    /// Who asks for the signature.
    pub tenant: TenantView,
    /// The portal's origin.
    pub origin: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
    /// What to post back for each document: `raw` or `cms`.
    pub signature_format: SignatureFormat,
    /// The signer the portal expects, when it named one (the `signer` of the session):
    /// the app refuses another token's certificate before asking for the PIN.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub expected_signer: Option<SignerRequirement>,
    /// Documents to sign.
    pub documents: Vec<RequestDocument>,
}

/// One signature in a result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignatureInput {
    /// The document's id.
    pub document_id: String,
    /// `raw` sessions: base64 signature over the document's digest, RSA PKCS#1 v1.5
    /// (SHA-256 DigestInfo) or ECDSA P-256 (DER or raw `r||s`). `cms` sessions: base64
    /// DER detached CMS `SignedData` whose message digest is the document's digest and
    /// whose signer certificate is `certificate`.
    pub signature: String,
}

/// `POST /v1/sign-requests/{requestId}/result` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmitResultRequest {
    /// Base64 DER X.509 signer certificate (for `cms`, the one inside every CMS).
    pub certificate: String,
    /// Base64 DER certificates of the signer's issuing CAs, to build its path to a
    /// trust anchor (optional: the server also knows some intermediates, and takes the
    /// other certificates of CMS signatures). At most 8.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Exactly one signature per document.
    pub signatures: Vec<SignatureInput>,
}

/// Answer of result and cancel calls.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinishResponse {
    /// Always `true`.
    pub success: bool,
    /// `completed` or `cancelled`.
    pub status: SessionState,
    /// `SS_SIGN_CANCELLED` for a cancel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The verification algorithm, for a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    /// How the signer was validated, for a result (as the portal sees it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerEvidence>,
}

/// The error for a request that is not pending any more.
fn finished_error(session: &SessionRecord, now: i64) -> Option<ApiError> {
    match SessionState::of(session, now) {
        SessionState::Pending => None,
        SessionState::Expired => Some(ApiError::new(
            ErrorCode::SessionExpired,
            "the signing session timed out",
        )),
        _ if now >= session.expires_at => Some(ApiError::new(
            ErrorCode::SessionExpired,
            "the signing session timed out",
        )),
        SessionState::Cancelled => Some(ApiError::new(
            ErrorCode::SignCancelled,
            "the signing request was cancelled",
        )),
        SessionState::Completed => Some(ApiError::new(
            ErrorCode::Conflict,
            "the signing request is already completed",
        )),
    }
}

/// Loads a request that can still be signed or cancelled.
async fn pending_request(state: &AppState, request_id: &str) -> Result<SessionRecord, ApiError> {
    let not_found = || ApiError::not_found("no such signing request");
    if request_id.len() != 32 || !request_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found());
    }
    let session = state
        .store
        .session_by_request(request_id)
        .await?
        .ok_or_else(not_found)?;
    match finished_error(&session, state.clock.now_unix()) {
        Some(err) => Err(err),
        None => Ok(session),
    }
}

/// The session's signature format (a stored value the schema allows but this build
/// does not know is a server fault, not the client's).
pub fn stored_format(session: &SessionRecord) -> Result<SignatureFormat, ApiError> {
    SignatureFormat::parse(&session.signature_format).ok_or_else(|| {
        tracing::error!(session_id = %session.id, "unknown stored signature format");
        ApiError::new(ErrorCode::Internal, "internal error")
    })
}

/// The signer the session's portal expects, if it named one.
pub fn stored_requirement(session: &SessionRecord) -> Result<Option<SignerRequirement>, ApiError> {
    stored_json(
        session,
        session.signer_requirement.as_deref(),
        "signer requirement",
    )
}

/// How a completed session's signer was validated.
pub fn stored_evidence(session: &SessionRecord) -> Result<Option<SignerEvidence>, ApiError> {
    stored_json(
        session,
        session.signer_evidence.as_deref(),
        "signer evidence",
    )
}

fn stored_json<T: serde::de::DeserializeOwned>(
    session: &SessionRecord,
    json: Option<&str>,
    what: &str,
) -> Result<Option<T>, ApiError> {
    json.map(serde_json::from_str).transpose().map_err(|err| {
        tracing::error!(session_id = %session.id, error = %err, "unreadable stored {what}");
        ApiError::new(ErrorCode::Internal, "internal error")
    })
}

/// The outbox row for a finished session's callback (none without a callback URL).
fn callback_event(
    session: &SessionRecord,
    event_type: EventType,
    now_ms: i64,
    data: WebhookEventData,
) -> Result<Option<NewEvent>, ApiError> {
    outbox_entry(session, event_type, now_ms, data).map_err(|err| {
        tracing::error!(error = %err, "cannot encode a callback event");
        ApiError::new(ErrorCode::Internal, "internal error")
    })
}

/// The error to answer when a conditional finish found the session no longer pending.
async fn lost_race(state: &AppState, request_id: &str) -> ApiError {
    match state.store.session_by_request(request_id).await {
        Ok(Some(session)) => {
            finished_error(&session, state.clock.now_unix()).unwrap_or_else(|| {
                ApiError::new(
                    ErrorCode::Conflict,
                    "the signing request changed; try again",
                )
            })
        }
        Ok(None) => ApiError::not_found("no such signing request"),
        Err(err) => err.into(),
    }
}

/// Read a signing request (the app, after opening the deep link).
#[utoipa::path(
    get, path = "/v1/sign-requests/{requestId}", tag = "app",
    params(("requestId" = String, Path, description = "From the deep link")),
    responses(
        (status = 200, description = "Pending request", body = SignRequestView),
        (status = 404, description = "SS_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SS_CONFLICT (completed) or SS_SIGN_CANCELLED", body = ErrorEnvelope),
        (status = 410, description = "SS_SESSION_EXPIRED", body = ErrorEnvelope),
        (status = 429, description = "SS_RATE_LIMITED: too many requests from this client address (`serve --app-rpm-per-ip`); `Retry-After` says when to try again", body = ErrorEnvelope),
    )
)]
pub async fn get_sign_request(
    State(state): State<AppState>,
    ApiPath(request_id): ApiPath<String>,
) -> Result<Json<SignRequestView>, ApiError> {
    let session = pending_request(&state, &request_id).await?;
    let signature_format = stored_format(&session)?;
    let expected_signer = stored_requirement(&session)?;
    let tenant = state
        .store
        .tenant(&session.tenant_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "internal error"))?;
    let documents = state.store.documents(&session.id).await?;
    Ok(Json(SignRequestView {
        success: true,
        request_id: session.request_id,
        status: SessionState::Pending,
        tenant: TenantView {
            id: tenant.id,
            display_name: tenant.display_name,
        },
        origin: session.origin,
        expires_at: format_rfc3339(session.expires_at),
        signature_format,
        expected_signer,
        documents: documents
            .into_iter()
            .map(|d| RequestDocument {
                id: d.document_id,
                name: d.name,
                digest_algorithm: "SHA-256".to_owned(),
                digest: d.digest,
            })
            .collect(),
    }))
}

fn decode_b64(value: &str, max: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    if value.len() > max.div_ceil(3) * 4 {
        return Err(ApiError::bad_request(format!("{what} is too long")));
    }
    BASE64
        .decode(value)
        .map_err(|_| ApiError::bad_request(format!("{what} is not valid base64")))
}

/// Post the signer certificate and signatures; the request is looked up before its body
/// is read, and the body may be at most [`max_result_body_bytes`] for its documents
/// (`SS_BAD_REQUEST` "length limit exceeded" beyond). Every signature is verified (a CMS one
/// also for its signing time, when it has one: within the session, ±5 minutes), and so
/// is the signer: its path to a trusted CA (validity now and at the signing time, key
/// usage, policies, revocation) and, when the portal named one, that it is the expected
/// signer.
#[utoipa::path(
    post, path = "/v1/sign-requests/{requestId}/result", tag = "app",
    params(("requestId" = String, Path, description = "From the deep link")),
    request_body = SubmitResultRequest,
    responses(
        (status = 200, description = "Verified and completed", body = FinishResponse),
        (status = 400, description = "SS_BAD_REQUEST", body = ErrorEnvelope),
        (status = 404, description = "SS_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SS_CONFLICT (completed) or SS_SIGN_CANCELLED", body = ErrorEnvelope),
        (status = 410, description = "SS_SESSION_EXPIRED", body = ErrorEnvelope),
        (status = 429, description = "SS_RATE_LIMITED: too many requests from this client address (`serve --app-rpm-per-ip`); `Retry-After` says when to try again", body = ErrorEnvelope),
        (status = 422, description = "SS_CERT_INVALID, SS_SIGNATURE_INVALID, SS_SIGNER_UNTRUSTED (the message says which check failed: chain, validity, key usage, policy, revocation) or SS_SIGNER_MISMATCH (not the signer the portal named); the session stays pending", body = ErrorEnvelope),
    )
)]
pub async fn submit_result(
    State(state): State<AppState>,
    ApiPath(request_id): ApiPath<String>,
    request: Request,
) -> Result<Json<FinishResponse>, ApiError> {
    let session = match pending_request(&state, &request_id).await {
        Ok(session) => session,
        Err(err) => {
            discard_body(request, DISCARD_BYTES, DISCARD_WAIT).await;
            return Err(err);
        }
    };
    let format = stored_format(&session)?;
    let documents = state.store.documents(&session.id).await?;
    let body: SubmitResultRequest =
        read_json_capped(request, max_result_body_bytes(format, documents.len())).await?;
    if body.signatures.len() != documents.len() {
        return Err(ApiError::bad_request(format!(
            "expected {} signatures, one per document, got {}",
            documents.len(),
            body.signatures.len()
        )));
    }
    let mut by_document: HashMap<&str, &str> = HashMap::new();
    for sig in &body.signatures {
        if by_document
            .insert(sig.document_id.as_str(), sig.signature.as_str())
            .is_some()
        {
            return Err(ApiError::bad_request(format!(
                "two signatures for document {:?}",
                sig.document_id
            )));
        }
    }
    let max_signature = max_signature_bytes(format);
    let certificate = decode_b64(&body.certificate, MAX_CERTIFICATE_BYTES, "certificate")?;
    let mut checks = Vec::with_capacity(documents.len());
    for doc in &documents {
        let signature_b64 = by_document.get(doc.document_id.as_str()).ok_or_else(|| {
            ApiError::bad_request(format!("no signature for document {:?}", doc.document_id))
        })?;
        let signature = decode_b64(signature_b64, max_signature, "signature")?;
        let digest: [u8; 32] = BASE64
            .decode(&doc.digest)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "stored digest unreadable"))?;
        checks.push(SignatureCheck {
            document_id: doc.document_id.clone(),
            digest,
            signature,
        });
    }
    if body.chain.len() > MAX_CHAIN_CERTIFICATES {
        return Err(ApiError::bad_request(format!(
            "chain holds at most {MAX_CHAIN_CERTIFICATES} certificates"
        )));
    }
    let chain = body
        .chain
        .iter()
        .map(|cert| decode_b64(cert, MAX_CERTIFICATE_BYTES, "chain certificate"))
        .collect::<Result<Vec<_>, _>>()?;
    let window = SigningWindow::for_session(session.created_at, state.clock.now_unix());
    let (verified, certificate, checks) =
        tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            let verified = verify_all(format, &certificate, &checks, window)?;
            Ok((verified, certificate, checks))
        })
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "internal error"))??;
    let evidence = judge_signer(&state, &session, &certificate, chain, &verified).await?;
    let algorithm_name = serde_json::to_value(verified.scheme)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let certificate_b64 = BASE64.encode(&certificate);
    let signed: Vec<WebhookDocument> = checks
        .into_iter()
        .map(|check| WebhookDocument {
            id: check.document_id,
            digest: BASE64.encode(check.digest),
            signature: BASE64.encode(check.signature),
        })
        .collect();
    let signatures: Vec<(String, String)> = signed
        .iter()
        .map(|doc| (doc.id.clone(), doc.signature.clone()))
        .collect();
    let evidence_json = serde_json::to_string(&evidence)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "internal error"))?;
    let now_ms = state.clock.now_unix_millis();
    let event = callback_event(
        &session,
        EventType::SessionCompleted,
        now_ms,
        WebhookEventData {
            status: SessionState::Completed,
            signature_format: format,
            signer_certificate: Some(certificate_b64.clone()),
            signature_algorithm: Some(algorithm_name.clone()),
            signer: Some(evidence.clone()),
            documents: signed,
            error: None,
        },
    )?;
    let outcome = state
        .store
        .complete_session(
            &session.id,
            now_ms.div_euclid(1000),
            &certificate_b64,
            &algorithm_name,
            &evidence_json,
            &signatures,
            event.as_ref(),
        )
        .await?;
    if outcome == FinishOutcome::NotPending {
        return Err(lost_race(&state, &request_id).await);
    }
    if let Some(event) = &event {
        state.webhook_wake.notify_one();
        tracing::info!(session_id = %session.id, event_id = %event.id, "callback event queued");
    }
    tracing::info!(
        session_id = %session.id,
        format = format.as_str(),
        trusted = evidence.trusted,
        "signing session completed"
    );
    Ok(Json(FinishResponse {
        success: true,
        status: SessionState::Completed,
        code: None,
        signature_algorithm: Some(algorithm_name),
        signer: Some(evidence),
    }))
}

/// Judges the signer of verified signatures: the path to a trust anchor (with
/// revocation), then the signer the portal asked for. Live keys' sessions complete only
/// with a trusted signer (`SS_SIGNER_UNTRUSTED` otherwise); test keys' sessions may
/// complete with an untrusted one, marked `trusted: false`. Another signer than the
/// expected one is `SS_SIGNER_MISMATCH` for both. Nothing is stored on a refusal: the
/// session stays pending.
async fn judge_signer(
    state: &AppState,
    session: &SessionRecord,
    certificate: &[u8],
    mut chain: Vec<Vec<u8>>,
    verified: &VerifiedSignatures,
) -> Result<SignerEvidence, ApiError> {
    let requirement = stored_requirement(session)?;
    let info = CertificateInfo::from_der(certificate)?;
    for cert in &verified.cms_certs {
        if !chain.contains(cert) {
            chain.push(cert.clone());
        }
    }
    let policy_classes = requirement
        .as_ref()
        .map(|r| r.policy_classes.clone())
        .unwrap_or_default();
    let now = state.clock.now_unix();
    let judged = state
        .trust
        .evaluate(
            Candidate {
                signer: certificate,
                chain: &chain,
                signing_times: &verified.signing_times,
                policy_classes: &policy_classes,
            },
            now,
        )
        .await;
    let evidence = match judged {
        Ok(evidence) => evidence,
        Err(untrusted) if session.key_mode == KeyMode::Test.as_str() => {
            tracing::info!(session_id = %session.id, reason = %untrusted, "test session: untrusted signer accepted");
            SignerTrust::untrusted_evidence(certificate, &untrusted, now)
        }
        Err(untrusted) => {
            tracing::info!(session_id = %session.id, reason = %untrusted, "signer refused");
            return Err(ApiError::new(ErrorCode::SignerUntrusted, untrusted.0));
        }
    };
    if let Some(requirement) = &requirement {
        requirement.check(&info)?;
    }
    Ok(evidence)
}

/// The signer declines: the session ends as `cancelled` (`SS_SIGN_CANCELLED`).
#[utoipa::path(
    post, path = "/v1/sign-requests/{requestId}/cancel", tag = "app",
    params(("requestId" = String, Path, description = "From the deep link")),
    responses(
        (status = 200, description = "Cancelled", body = FinishResponse),
        (status = 404, description = "SS_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SS_CONFLICT or SS_SIGN_CANCELLED", body = ErrorEnvelope),
        (status = 410, description = "SS_SESSION_EXPIRED", body = ErrorEnvelope),
        (status = 429, description = "SS_RATE_LIMITED: too many requests from this client address (`serve --app-rpm-per-ip`); `Retry-After` says when to try again", body = ErrorEnvelope),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    ApiPath(request_id): ApiPath<String>,
) -> Result<Json<FinishResponse>, ApiError> {
    let session = pending_request(&state, &request_id).await?;
    let now_ms = state.clock.now_unix_millis();
    let event = callback_event(
        &session,
        EventType::SessionCancelled,
        now_ms,
        WebhookEventData {
            status: SessionState::Cancelled,
            signature_format: stored_format(&session)?,
            signer_certificate: None,
            signature_algorithm: None,
            signer: None,
            documents: Vec::new(),
            error: Some(ErrorDetail::of(
                ErrorCode::SignCancelled,
                "the signer cancelled the request",
            )),
        },
    )?;
    if state
        .store
        .cancel_session(&session.id, now_ms.div_euclid(1000), event.as_ref())
        .await?
        == FinishOutcome::NotPending
    {
        return Err(lost_race(&state, &request_id).await);
    }
    if let Some(event) = &event {
        state.webhook_wake.notify_one();
        tracing::info!(session_id = %session.id, event_id = %event.id, "callback event queued");
    }
    tracing::info!(session_id = %session.id, "signing session cancelled");
    Ok(Json(FinishResponse {
        success: true,
        status: SessionState::Cancelled,
        code: Some(ErrorCode::SignCancelled.as_str().to_owned()),
        signature_algorithm: None,
        signer: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_body_bounds_are_the_documented_numbers() {
        assert_eq!(RESULT_BODY_FIXED_BYTES, 200_755);
        assert_eq!(result_body_bytes_per_document(SignatureFormat::Raw), 2_008);
        assert_eq!(result_body_bytes_per_document(SignatureFormat::Cms), 27_948);
        assert_eq!(max_result_body_bytes(SignatureFormat::Raw, 1), 202_763);
        assert_eq!(MAX_RESULT_BODY_BYTES, 14_174_755);
    }

    /// The largest result a client may send (largest certificate, full chain, largest
    /// signatures, longest ids of 4-byte characters), pretty-printed, fits the bound.
    #[test]
    fn the_largest_valid_result_fits_its_bound() {
        let b64 = |n: usize| BASE64.encode(vec![0xA5; n]);
        for (format, documents) in [
            (SignatureFormat::Raw, 1),
            (SignatureFormat::Raw, 500),
            (SignatureFormat::Cms, 1),
            (SignatureFormat::Cms, 20),
        ] {
            let signature = max_signature_bytes(format);
            let body = serde_json::json!({
                "certificate": b64(MAX_CERTIFICATE_BYTES),
                "chain": vec![b64(MAX_CERTIFICATE_BYTES); MAX_CHAIN_CERTIFICATES],
                "signatures": (0..documents).map(|i| serde_json::json!({
                    "documentId": format!("{i:0>128}").replace('0', "\u{1F600}"),
                    "signature": b64(signature),
                })).collect::<Vec<_>>(),
            });
            let text = serde_json::to_string_pretty(&body).unwrap();
            assert!(
                text.len() <= max_result_body_bytes(format, documents),
                "{format:?} × {documents}: {} > {}",
                text.len(),
                max_result_body_bytes(format, documents)
            );
        }
    }
}
