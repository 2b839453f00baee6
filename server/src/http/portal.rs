//! Portal-side endpoints (API key required): validate, create a signing session, and
//! read its status and results.

use std::borrow::Cow;
use std::collections::HashSet;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use securesign_core::deeplink::{APP_LINK_HOST, APP_LINK_PATH};
use securesign_core::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::AuthedKey;
use super::error::{ApiError, ErrorDetail, ErrorEnvelope};
use super::json::{ApiJson, JsonBody};
use super::path::ApiPath;
use super::{AppState, SessionState};
use crate::clock::format_rfc3339;
use crate::ids;
use crate::origin::Origin;
use crate::signature_format::SignatureFormat;
use crate::store::{DocumentRecord, SessionRecord};
use crate::trust::evidence::SignerEvidence;
use crate::trust::{tenant_classes, with_tenant_classes};
use securesign_core::signer::SignerRequirement;

use super::sign_request::{stored_evidence, stored_format};

/// Most documents in one session.
pub const MAX_DOCUMENTS: usize = 500;
/// Session lifetime unless asked otherwise.
pub const DEFAULT_TTL_SECONDS: u32 = 600;
/// Longest session lifetime.
pub const MAX_TTL_SECONDS: u32 = 3600;
const MAX_DOCUMENT_ID_CHARS: usize = 128;
const MAX_DOCUMENT_NAME_CHARS: usize = 256;

/// Where the call comes from.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A web portal.
    Web,
    /// A desktop application.
    Desktop,
    /// An Android app.
    Android,
    /// An iOS app.
    Ios,
    /// A backend service.
    Server,
}

/// `POST /v1/auth/validate` body, borrowing the origin from the request body when it
/// has no escapes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidateRequest<'a> {
    /// The portal's origin, e.g. `https://portal.example.gov.in`.
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub origin: Cow<'a, str>,
    /// Where the call comes from.
    pub platform: Platform,
}

/// `POST /v1/auth/validate` answer (borrowing the tenant id from the cached key: it
/// is serialised before the handler returns).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResponse<'a> {
    /// Always `true`.
    pub success: bool,
    /// The key's tenant.
    #[schema(example = "org_9f2a")]
    pub tenant_id: &'a str,
    /// Always `true` (a refused origin is an error).
    pub allowed: bool,
    /// The key's limit.
    pub rate_limit: RateLimitInfo,
}

/// A key's rate limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitInfo {
    /// Requests per minute.
    pub rpm: u32,
}

/// One document to sign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocumentInput {
    /// The portal's id (unique in the session).
    pub id: String,
    /// Name shown to the signer.
    pub name: String,
    /// Must be `SHA-256`.
    #[schema(example = "SHA-256")]
    pub digest_algorithm: String,
    /// Base64 of the 32-byte digest.
    pub digest: String,
}

/// `POST /v1/auth/session` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// The portal's origin (whitelisted).
    pub origin: String,
    /// 1 to 500 documents.
    pub documents: Vec<DocumentInput>,
    /// Lifetime in seconds (default 600, at most 3600).
    pub ttl_seconds: Option<u32>,
    /// Where the server POSTs `session.completed` / `session.cancelled` events (see
    /// `WebhookEvent`); must be on a whitelisted origin.
    pub callback_url: Option<String>,
    /// `raw` (default) or `cms` (detached CMS `SignedData` per document).
    pub signature_format: Option<SignatureFormat>,
    /// The signer you expect; every criterion given must hold, any entry of a list may
    /// match: `{"certificateSha256": ["<64 hex>", …], "subject": {"serialNumber": "…",
    /// "commonName": "…"}, "policyClasses": ["class3", …]}`. The app refuses another
    /// token before any PIN is asked; the server refuses another signer's result with
    /// `SS_SIGNER_MISMATCH` (a policy class the path does not allow:
    /// `SS_SIGNER_UNTRUSTED`).
    #[schema(value_type = Option<Object>)]
    pub signer: Option<SignerRequirement>,
}

/// `POST /v1/auth/session` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionResponse {
    /// `sess_…`, for the portal's status calls.
    pub session_id: String,
    /// RFC 3339 UTC.
    #[schema(example = "2026-06-22T11:00:00Z")]
    pub expires_at: String,
    /// `securesign://sign?requestId=…` for the app (the spec's link; any Android app
    /// may claim the scheme).
    pub deep_link: String,
    /// `https://securesign.toolsbots.com/sign?requestId=…`, the same request as a
    /// verified App Link / Universal Link: the phone hands it only to the app that the
    /// host's `/.well-known/` files name (or opens it in the browser). Prefer it on phones.
    #[schema(
        example = "https://securesign.toolsbots.com/sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"
    )]
    pub app_link: String,
}

/// A document with its signature once completed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDocument {
    /// The portal's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `SHA-256`.
    pub digest_algorithm: String,
    /// Base64 digest.
    pub digest: String,
    /// When completed, as the app posted it: base64 signature (`raw`) or base64 DER
    /// detached CMS `SignedData` (`cms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `GET /v1/auth/session/{sessionId}` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatusResponse {
    /// Always `true`.
    pub success: bool,
    /// `sess_…`.
    pub session_id: String,
    /// `pending`, `completed`, `cancelled` or `expired`.
    pub status: SessionState,
    /// The origin it was created for.
    pub origin: String,
    /// `raw` or `cms`.
    pub signature_format: SignatureFormat,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
    /// When it completed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Callback URL given at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Base64 DER signer certificate, when completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_certificate: Option<String>,
    /// `RSA-PKCS1-SHA256` or `ECDSA-P256-SHA256`, when completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    /// How the signer was validated, when completed: `trusted` (always `true` for live
    /// keys), subject, issuer, serial, SHA-256 thumbprint, policy classes, the path's
    /// thumbprints, the validation time and the revocation status with its source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerEvidence>,
    /// Documents (with signatures when completed).
    pub documents: Vec<SessionDocument>,
    /// Why it ended without signatures (`SS_SIGN_CANCELLED`, `SS_SESSION_EXPIRED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The request's `Origin` header, if it has one; more than one is refused. Only this
/// header is copied out of the request (extracting the whole `HeaderMap` clones it).
#[derive(Debug, Clone, Default)]
pub struct OriginHeader(Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for OriginHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(header::ORIGIN).iter();
        let first = values.next().cloned();
        if values.next().is_some() {
            return Err(ApiError::domain_not_allowed("more than one Origin header"));
        }
        Ok(Self(first))
    }
}

/// Checks the body's origin, the `Origin` header (must agree when present), the
/// key's scheme rule and the tenant's whitelist (read with the key, current as of
/// this request).
fn allowed_origin<'k>(
    key: &'k AuthedKey,
    raw: &str,
    origin_header: &OriginHeader,
) -> Result<Cow<'k, Origin>, ApiError> {
    let whitelist = key.whitelist();
    let origin = whitelist
        .parse(raw)
        .map_err(|e| ApiError::bad_request(format!("origin: {e}")))?;
    if let Some(value) = &origin_header.0 {
        let from_header = value.to_str().ok().and_then(|s| whitelist.parse(s).ok());
        if from_header.as_deref() != Some(&*origin) {
            return Err(ApiError::domain_not_allowed(
                "the Origin header does not match the request's origin",
            ));
        }
    }
    if !origin.allowed_for(key.mode()) {
        return Err(ApiError::domain_not_allowed(format!(
            "{} keys need an https origin",
            key.mode()
        )));
    }
    // A borrowed origin was found in the whitelist itself.
    let whitelisted = matches!(origin, Cow::Borrowed(_)) || whitelist.contains(&origin);
    if !whitelisted {
        return Err(ApiError::domain_not_allowed(format!(
            "origin {origin} is not whitelisted for this tenant"
        )));
    }
    Ok(origin)
}

/// Verify the API key and a whitelisted origin.
#[utoipa::path(
    post, path = "/v1/auth/validate", tag = "portal",
    request_body = ValidateRequest,
    security(("bearer" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "Key and origin accepted", body = ValidateResponse),
        (status = 400, description = "SS_BAD_REQUEST", body = ErrorEnvelope),
        (status = 401, description = "SS_API_KEY_INVALID", body = ErrorEnvelope),
        (status = 403, description = "SS_DOMAIN_NOT_ALLOWED", body = ErrorEnvelope),
        (status = 429, description = "SS_RATE_LIMITED", body = ErrorEnvelope),
    )
)]
pub async fn validate(
    key: AuthedKey,
    origin_header: OriginHeader,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body: ValidateRequest<'_> = body.parse()?;
    allowed_origin(&key, &body.origin, &origin_header)?;
    let answer = key.validate_answer(validate_answer).map_err(|err| {
        tracing::error!(error = %err, "cannot serialise the validate answer");
        ApiError::new(ErrorCode::Internal, "internal error")
    })?;
    // The response built directly: `(headers, Bytes).into_response()` would first set
    // `Content-Type: application/octet-stream` for the `Bytes`, then replace it.
    let mut response = Response::new(Body::from(answer));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    Ok(response)
}

const JSON_CONTENT_TYPE: &str = "application/json";

/// The answer to every successful validate with `key` (constant for a cached key, so
/// it is serialised once and kept with it).
fn validate_answer(key: &AuthedKey) -> Result<Bytes, serde_json::Error> {
    let answer = ValidateResponse {
        success: true,
        tenant_id: key.tenant_id(),
        allowed: true,
        rate_limit: RateLimitInfo { rpm: key.rpm() },
    };
    serde_json::to_vec(&answer).map(Bytes::from)
}

fn checked_documents(documents: &[DocumentInput]) -> Result<Vec<DocumentRecord>, ApiError> {
    if documents.is_empty() || documents.len() > MAX_DOCUMENTS {
        return Err(ApiError::bad_request(format!(
            "documents: 1 to {MAX_DOCUMENTS} documents are required"
        )));
    }
    let mut seen = HashSet::new();
    documents
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let id_len = doc.id.chars().count();
            if id_len == 0 || id_len > MAX_DOCUMENT_ID_CHARS || doc.id.chars().any(char::is_control) {
                return Err(ApiError::bad_request(format!(
                    "documents[{i}].id must be 1 to {MAX_DOCUMENT_ID_CHARS} printable characters"
                )));
            }
            if !seen.insert(doc.id.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "documents[{i}].id {:?} is repeated",
                    doc.id
                )));
            }
            let name_len = doc.name.chars().count();
            if name_len == 0 || name_len > MAX_DOCUMENT_NAME_CHARS || doc.name.chars().any(char::is_control) {
                return Err(ApiError::bad_request(format!(
                    "documents[{i}].name must be 1 to {MAX_DOCUMENT_NAME_CHARS} printable characters"
                )));
            }
            if doc.digest_algorithm != "SHA-256" {
                return Err(ApiError::bad_request(format!(
                    "documents[{i}].digestAlgorithm must be SHA-256"
                )));
            }
            let digest = BASE64.decode(&doc.digest).ok().filter(|d| d.len() == 32).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "documents[{i}].digest must be the base64 of a 32-byte SHA-256 digest"
                ))
            })?;
            Ok(DocumentRecord {
                position: i64::try_from(i).unwrap_or(i64::MAX),
                document_id: doc.id.clone(),
                name: doc.name.clone(),
                digest: BASE64.encode(digest),
                signature: None,
            })
        })
        .collect()
}

/// Create a signing session; the app opens its deep link.
#[utoipa::path(
    post, path = "/v1/auth/session", tag = "portal",
    request_body = CreateSessionRequest,
    security(("bearer" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 201, description = "Session created", body = CreateSessionResponse),
        (status = 400, description = "SS_BAD_REQUEST", body = ErrorEnvelope),
        (status = 401, description = "SS_API_KEY_INVALID", body = ErrorEnvelope),
        (status = 403, description = "SS_DOMAIN_NOT_ALLOWED", body = ErrorEnvelope),
        (status = 429, description = "SS_RATE_LIMITED", body = ErrorEnvelope),
    )
)]
pub async fn create_session(
    State(state): State<AppState>,
    key: AuthedKey,
    origin_header: OriginHeader,
    ApiJson(body): ApiJson<CreateSessionRequest>,
) -> Result<(StatusCode, Json<CreateSessionResponse>), ApiError> {
    let origin = allowed_origin(&key, &body.origin, &origin_header)?;
    let documents = checked_documents(&body.documents)?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if ttl == 0 || ttl > MAX_TTL_SECONDS {
        return Err(ApiError::bad_request(format!(
            "ttlSeconds must be between 1 and {MAX_TTL_SECONDS}"
        )));
    }
    if let Some(url) = &body.callback_url {
        let callback_origin = Origin::of_callback_url(url)
            .map_err(|e| ApiError::bad_request(format!("callbackUrl: {e}")))?;
        if !callback_origin.allowed_for(key.mode()) || !key.whitelist().contains(&callback_origin) {
            return Err(ApiError::domain_not_allowed(format!(
                "callbackUrl origin {callback_origin} is not whitelisted for this tenant"
            )));
        }
    }
    let tenant_classes = tenant_classes(
        state
            .store
            .tenant_policy_classes(key.tenant_id())
            .await?
            .as_deref(),
    );
    let requirement = body
        .signer
        .clone()
        .map(SignerRequirement::normalized)
        .transpose()?;
    let signer_requirement = match with_tenant_classes(requirement, &tenant_classes)? {
        Some(requirement) => Some(
            serde_json::to_string(&requirement)
                .map_err(|_| ApiError::new(ErrorCode::Internal, "internal error"))?,
        ),
        None => None,
    };
    let now = state.clock.now_unix();
    let session = SessionRecord {
        id: ids::session_id(),
        request_id: ids::request_id(),
        tenant_id: key.tenant_id().to_owned(),
        key_id: key.key_id().to_owned(),
        origin: origin.to_string(),
        callback_url: body.callback_url.clone(),
        status: "pending".to_owned(),
        created_at: now,
        expires_at: now + i64::from(ttl),
        finished_at: None,
        signer_certificate: None,
        signature_algorithm: None,
        signature_format: body
            .signature_format
            .unwrap_or_default()
            .as_str()
            .to_owned(),
        key_mode: key.mode().as_str().to_owned(),
        signer_requirement,
        signer_evidence: None,
    };
    state.store.insert_session(&session, &documents).await?;
    tracing::info!(session_id = %session.id, documents = documents.len(), "signing session created");
    Ok((
        StatusCode::CREATED,
        Json(CreateSessionResponse {
            deep_link: format!("securesign://sign?requestId={}", session.request_id),
            app_link: format!(
                "https://{APP_LINK_HOST}{APP_LINK_PATH}?requestId={}",
                session.request_id
            ),
            session_id: session.id,
            expires_at: format_rfc3339(session.expires_at),
        }),
    ))
}

/// Read a session's status and, once completed, its signatures.
#[utoipa::path(
    get, path = "/v1/auth/session/{sessionId}", tag = "portal",
    params(("sessionId" = String, Path, description = "sess_…")),
    security(("bearer" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "Session status", body = SessionStatusResponse),
        (status = 401, description = "SS_API_KEY_INVALID", body = ErrorEnvelope),
        (status = 404, description = "SS_NOT_FOUND (also for another tenant's session, and for a session of the other key mode: test keys see only test sessions)", body = ErrorEnvelope),
        (status = 429, description = "SS_RATE_LIMITED", body = ErrorEnvelope),
    )
)]
pub async fn session_status(
    State(state): State<AppState>,
    key: AuthedKey,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<SessionStatusResponse>, ApiError> {
    let session = state
        .store
        .session_of_key(&session_id, key.tenant_id(), key.mode())
        .await?
        .ok_or_else(|| ApiError::not_found("no such session"))?;
    let documents = state.store.documents(&session.id).await?;
    let status = SessionState::of(&session, state.clock.now_unix());
    let signature_format = stored_format(&session)?;
    let signer = stored_evidence(&session)?;
    let error = match status {
        SessionState::Cancelled => Some(ErrorDetail::of(
            ErrorCode::SignCancelled,
            "the signer cancelled the request",
        )),
        SessionState::Expired => Some(ErrorDetail::of(
            ErrorCode::SessionExpired,
            "the signing session timed out",
        )),
        SessionState::Pending | SessionState::Completed => None,
    };
    Ok(Json(SessionStatusResponse {
        success: true,
        session_id: session.id,
        status,
        origin: session.origin,
        signature_format,
        created_at: format_rfc3339(session.created_at),
        expires_at: format_rfc3339(session.expires_at),
        finished_at: session.finished_at.map(format_rfc3339),
        callback_url: session.callback_url,
        signer_certificate: session.signer_certificate,
        signature_algorithm: session.signature_algorithm,
        signer,
        documents: documents
            .into_iter()
            .map(|d| SessionDocument {
                id: d.document_id,
                name: d.name,
                digest_algorithm: "SHA-256".to_owned(),
                digest: d.digest,
                signature: d.signature,
            })
            .collect(),
        error,
    }))
}
