//! The signing sessions page, filtered by status.

use super::*;

struct SessionView {
    id: String,
    status: &'static str,
    key_id: String,
    mode: String,
    origin: String,
    format: String,
    documents: i64,
    first_document: String,
    signer: Option<SignerView>,
    created: String,
    expires: String,
    finished: String,
}

struct SignerView {
    name: String,
    issuer: String,
    serial: String,
    thumbprint: String,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    nav: Option<Nav>,
    sessions: Vec<SessionView>,
    filter: &'static str,
    filters: [(&'static str, &'static str); 5],
}

fn signer_view(certificate_b64: &str) -> Option<SignerView> {
    let der = STANDARD.decode(certificate_b64).ok()?;
    let info = securesign_core::cert::CertificateInfo::from_der(&der).ok()?;
    Some(SignerView {
        name: info
            .common_name
            .clone()
            .unwrap_or_else(|| info.subject.clone()),
        issuer: info.issuer,
        serial: info.serial,
        thumbprint: info.sha256_thumbprint,
    })
}

#[derive(Deserialize)]
pub(crate) struct SessionsQuery {
    status: Option<String>,
}

/// `GET /admin/sessions?status=…`.
pub(crate) async fn sessions(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(query): Query<SessionsQuery>,
) -> PageResult {
    let now = state.clock.now_unix();
    let filter = StatusFilter::parse(query.status.as_deref());
    let sessions = tenant_data::sessions(&state.store, admin.tenant(), filter, now)
        .await?
        .into_iter()
        .map(|s| {
            let status = match s.status.as_str() {
                "completed" => "completed",
                "cancelled" => "cancelled",
                _ if now >= s.expires_at => "expired",
                _ => "pending",
            };
            SessionView {
                signer: s.signer_certificate.as_deref().and_then(signer_view),
                status,
                created: when(s.created_at),
                expires: when(s.expires_at),
                finished: s.finished_at.map_or_else(String::new, when),
                first_document: s.first_document.unwrap_or_default(),
                documents: s.documents,
                id: s.id,
                key_id: s.key_id,
                mode: s.key_mode,
                origin: s.origin,
                format: s.signature_format,
            }
        })
        .collect();
    html(
        &SessionsPage {
            nav: admin.nav("sessions"),
            sessions,
            filter: filter.as_str(),
            filters: [
                ("", "All"),
                ("pending", "Pending"),
                ("completed", "Completed"),
                ("cancelled", "Cancelled"),
                ("expired", "Expired"),
            ],
        },
        StatusCode::OK,
    )
}
