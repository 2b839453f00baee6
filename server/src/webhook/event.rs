//! The JSON body of a callback event.

use serde::Serialize;
use utoipa::ToSchema;

use super::outbox::{EventType, NewEvent};
use crate::clock::format_rfc3339;
use crate::http::error::ErrorDetail;
use crate::http::SessionState;
use crate::ids;
use crate::signature_format::SignatureFormat;
use crate::store::SessionRecord;
use crate::trust::evidence::SignerEvidence;

/// A callback event, as POSTed to the session's `callbackUrl`.
///
/// Headers: `X-SecureSign-Event-Id` (= `eventId`), `X-SecureSign-Timestamp` (Unix
/// seconds at sending) and `X-SecureSign-Signature: v1=<hex HMAC-SHA256 over
/// "<timestamp>.<raw body>" keyed with the tenant's webhook secret>`. The same event may
/// arrive again only if no 2xx answer was recorded for it: deduplicate by `eventId`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// `evt_…`, unique per event.
    pub event_id: String,
    /// `session.completed` or `session.cancelled`.
    #[serde(rename = "type")]
    #[schema(example = "session.completed")]
    pub event_type: String,
    /// `sess_…`.
    pub session_id: String,
    /// When the session finished, RFC 3339 UTC.
    pub occurred_at: String,
    /// The session's outcome.
    pub data: WebhookEventData,
}

/// What a callback event reports.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventData {
    /// `completed` or `cancelled`.
    pub status: SessionState,
    /// The session's signature format.
    pub signature_format: SignatureFormat,
    /// Base64 DER signer certificate (completed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_certificate: Option<String>,
    /// The verification algorithm (completed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    /// How the signer was validated (completed only): as `signer` of the session status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerEvidence>,
    /// The signatures as posted by the app (completed only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<WebhookDocument>,
    /// `SS_SIGN_CANCELLED` (cancelled only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// A signed document in a `session.completed` event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDocument {
    /// The portal's id.
    pub id: String,
    /// Base64 SHA-256 digest.
    pub digest: String,
    /// Base64 signature (raw) or base64 DER detached CMS `SignedData` (cms).
    pub signature: String,
}

/// Builds the outbox row for `event` about `session`, if the session has a callback URL.
pub fn outbox_entry(
    session: &SessionRecord,
    event_type: EventType,
    occurred_at_ms: i64,
    data: WebhookEventData,
) -> Result<Option<NewEvent>, serde_json::Error> {
    let Some(url) = &session.callback_url else {
        return Ok(None);
    };
    let event = WebhookEvent {
        event_id: ids::event_id(),
        event_type: event_type.as_str().to_owned(),
        session_id: session.id.clone(),
        occurred_at: format_rfc3339(occurred_at_ms.div_euclid(1000)),
        data,
    };
    Ok(Some(NewEvent {
        payload: serde_json::to_string(&event)?,
        id: event.event_id,
        session_id: session.id.clone(),
        tenant_id: session.tenant_id.clone(),
        event_type,
        url: url.clone(),
        created_at_ms: occurred_at_ms,
    }))
}
