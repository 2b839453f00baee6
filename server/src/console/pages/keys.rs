//! The API keys page: list, create (shown once), revoke, roll with a grace period.

use super::*;

struct KeyView {
    id: String,
    mode: String,
    shown: String,
    rpm: i64,
    created: String,
    last_used: String,
    status: String,
    active: bool,
}

struct NewSecret {
    key_id: String,
    secret: String,
    rolled_from: Option<String>,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    nav: Option<Nav>,
    csrf: String,
    keys: Vec<KeyView>,
    new_secret: Option<NewSecret>,
    notice: Option<&'static str>,
    error: Option<String>,
    default_rpm: u32,
}

fn key_status(key: &KeyRecord, now: i64) -> (String, bool) {
    if let Some(at) = key.revoked_at {
        (format!("revoked {}", when(at)), false)
    } else if let Some(end) = key.expires_at {
        if now < end {
            (format!("rolled; works until {}", when(end)), false)
        } else {
            ("expired".to_owned(), false)
        }
    } else {
        ("active".to_owned(), true)
    }
}

async fn keys_page(
    state: &AppState,
    admin: &CurrentAdmin,
    new_secret: Option<NewSecret>,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let now = state.clock.now_unix();
    // This process's counts first, so that a use seconds ago is not "never".
    state
        .usage
        .flush(&state.store, state.clock.as_ref())
        .await?;
    let last_used = usage::last_used(&state.store, admin.tenant()).await?;
    let keys = Admin::new(&state.store, state.clock.as_ref())
        .keys(Some(admin.tenant()))
        .await?
        .into_iter()
        .rev()
        .map(|key| {
            let (status, active) = key_status(&key, now);
            KeyView {
                shown: format!("ss_{}_…{}", key.mode, key.last4),
                last_used: last_used
                    .get(&key.id)
                    .map_or_else(|| "never".to_owned(), |minute| when(minute * 60)),
                created: when(key.created_at),
                rpm: key.rpm,
                mode: key.mode,
                id: key.id,
                status,
                active,
            }
        })
        .collect();
    let mut response = html(
        &KeysPage {
            nav: admin.nav("keys"),
            csrf: admin.0.csrf_token.clone(),
            keys,
            new_secret,
            notice,
            error,
            default_rpm: DEFAULT_RPM,
        },
        status,
    )?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /admin/keys`.
pub(crate) async fn keys(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(done): Query<Done>,
) -> PageResult {
    keys_page(&state, &admin, None, done.notice(), None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct CreateKeyForm {
    csrf: String,
    mode: String,
    rpm: String,
}

/// `POST /admin/keys`: a new key, shown once on the answer page.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Form(form): Form<CreateKeyForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let Some(mode) = KeyMode::parse(&form.mode) else {
        return keys_page(
            &state,
            &admin,
            None,
            None,
            Some("Choose live or test.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let rpm = form.rpm.trim().parse::<u32>().unwrap_or(0);
    let created = Admin::new(&state.store, state.clock.as_ref())
        .create_key(admin.tenant(), mode, rpm)
        .await;
    match created {
        Ok(issued) => {
            tracing::info!(key_id = %issued.record.id, tenant = %admin.tenant(), "key created in the admin console");
            keys_page(
                &state,
                &admin,
                Some(shown_once(issued, None)),
                None,
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(AdminError::Invalid(why)) => {
            keys_page(
                &state,
                &admin,
                None,
                None,
                Some(why),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

fn shown_once(issued: IssuedKey, rolled_from: Option<String>) -> NewSecret {
    NewSecret {
        key_id: issued.record.id,
        secret: issued.secret.expose().to_owned(),
        rolled_from,
    }
}

/// The admin's tenant's key `key_id`; another tenant's is "no such key".
async fn own_key(
    state: &AppState,
    admin: &CurrentAdmin,
    key_id: &str,
) -> Result<KeyRecord, ConsoleError> {
    match state.store.key(key_id).await? {
        Some(key) if key.tenant_id == admin.tenant() => Ok(key),
        _ => Err(ConsoleError::NotFound("No such API key.")),
    }
}

/// `POST /admin/keys/{key_id}/revoke`.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Path(key_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let key = own_key(&state, &admin, &key_id).await?;
    match Admin::new(&state.store, state.clock.as_ref())
        .revoke_key(&key.id)
        .await
    {
        Ok(()) => {
            tracing::info!(key_id = %key.id, "key revoked in the admin console");
            Ok(Redirect::to("/admin/keys?done=revoked").into_response())
        }
        Err(AdminError::KeyRevoked(_)) => {
            keys_page(
                &state,
                &admin,
                None,
                None,
                Some("That key was revoked already.".to_owned()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct RollForm {
    csrf: String,
    grace: String,
}

/// The grace periods the roll form offers, in seconds.
const GRACE_CHOICES: [u64; 4] = [0, 3600, 86_400, 7 * 86_400];

/// `POST /admin/keys/{key_id}/roll`: a replacement key, shown once; the old one works
/// for the chosen grace period.
pub(crate) async fn roll_key(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Path(key_id): Path<String>,
    Form(form): Form<RollForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let key = own_key(&state, &admin, &key_id).await?;
    let Some(grace) = form
        .grace
        .parse::<u64>()
        .ok()
        .filter(|g| GRACE_CHOICES.contains(g))
    else {
        return keys_page(
            &state,
            &admin,
            None,
            None,
            Some("Choose a grace period from the list.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if key.revoked_at.is_some() || key.expires_at.is_some() {
        return keys_page(
            &state,
            &admin,
            None,
            None,
            Some("Only an active key can be rolled.".to_owned()),
            StatusCode::CONFLICT,
        )
        .await;
    }
    let issued = Admin::new(&state.store, state.clock.as_ref())
        .roll_key(&key.id, Duration::from_secs(grace))
        .await?;
    tracing::info!(old = %key.id, new = %issued.record.id, grace, "key rolled in the admin console");
    keys_page(
        &state,
        &admin,
        Some(shown_once(issued, Some(key.id))),
        None,
        None,
        StatusCode::CREATED,
    )
    .await
}
