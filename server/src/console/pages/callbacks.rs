//! The callback deliveries page: events, their attempts and errors; redeliver.

use super::*;

struct EventView {
    id: String,
    session_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    last_status: String,
    last_error: String,
    created: String,
    settled: String,
    can_redeliver: bool,
}

#[derive(Template)]
#[template(path = "console/callbacks.html")]
struct CallbacksPage {
    nav: Option<Nav>,
    csrf: String,
    events: Vec<EventView>,
    notice: Option<&'static str>,
}

/// `GET /admin/callbacks`.
pub(crate) async fn callbacks(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(done): Query<Done>,
) -> PageResult {
    let events = tenant_data::events(&state.store, admin.tenant())
        .await?
        .into_iter()
        .map(|e| EventView {
            settled: match (e.status.as_str(), e.delivered_at) {
                (_, Some(at)) => format!("delivered {}", when_ms(at)),
                ("pending", None) => format!("next attempt {}", when_ms(e.next_attempt_at)),
                _ => String::new(),
            },
            can_redeliver: matches!(e.status.as_str(), "failed" | "delivered"),
            last_status: e.last_status.map_or_else(String::new, |s| s.to_string()),
            last_error: e.last_error.unwrap_or_default(),
            created: when_ms(e.created_at),
            attempts: e.attempts,
            id: e.id,
            session_id: e.session_id,
            event_type: e.event_type,
            status: e.status,
        })
        .collect();
    html(
        &CallbacksPage {
            nav: admin.nav("callbacks"),
            csrf: admin.0.csrf_token.clone(),
            events,
            notice: done.notice(),
        },
        StatusCode::OK,
    )
}

/// `POST /admin/callbacks/{event_id}/redeliver`.
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Path(event_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let now_ms = state.clock.now_unix_millis();
    if !tenant_data::redeliver(&state.store, admin.tenant(), &event_id, now_ms).await? {
        return Err(ConsoleError::NotFound(
            "No such event, or it is still being delivered.",
        ));
    }
    state.webhook_wake.notify_one();
    Ok(Redirect::to("/admin/callbacks?done=redelivered").into_response())
}
