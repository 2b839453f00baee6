//! The whitelisted origins page: add (validated as the CLI does), remove.

use super::*;

struct OriginView {
    origin: String,
    added: String,
}

#[derive(Template)]
#[template(path = "console/origins.html")]
struct OriginsPage {
    nav: Option<Nav>,
    csrf: String,
    origins: Vec<OriginView>,
    notice: Option<&'static str>,
    error: Option<String>,
    value: String,
}

async fn origins_page(
    state: &AppState,
    admin: &CurrentAdmin,
    notice: Option<&'static str>,
    error: Option<String>,
    value: String,
    status: StatusCode,
) -> PageResult {
    let origins = Admin::new(&state.store, state.clock.as_ref())
        .domains(admin.tenant())
        .await?
        .into_iter()
        .map(|d| OriginView {
            added: when(d.created_at),
            origin: d.origin,
        })
        .collect();
    html(
        &OriginsPage {
            nav: admin.nav("origins"),
            csrf: admin.0.csrf_token.clone(),
            origins,
            notice,
            error,
            value,
        },
        status,
    )
}

/// `GET /admin/origins`.
pub(crate) async fn origins(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(done): Query<Done>,
) -> PageResult {
    origins_page(
        &state,
        &admin,
        done.notice(),
        None,
        String::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct OriginForm {
    csrf: String,
    origin: String,
}

/// `POST /admin/origins`: whitelists an origin, validated as the CLI's `domain add`.
pub(crate) async fn add_origin(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Form(form): Form<OriginForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    match Admin::new(&state.store, state.clock.as_ref())
        .add_domain(admin.tenant(), &form.origin)
        .await
    {
        Ok(origin) => {
            tracing::info!(%origin, tenant = %admin.tenant(), "origin added in the admin console");
            Ok(Redirect::to("/admin/origins?done=added").into_response())
        }
        Err(err @ (AdminError::InvalidOrigin(_) | AdminError::UnusableOrigin(_))) => {
            origins_page(
                &state,
                &admin,
                None,
                Some(err.to_string()),
                form.origin,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /admin/origins/remove`.
pub(crate) async fn remove_origin(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Form(form): Form<OriginForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    match Admin::new(&state.store, state.clock.as_ref())
        .remove_domain(admin.tenant(), &form.origin)
        .await
    {
        Ok(true) => Ok(Redirect::to("/admin/origins?done=removed").into_response()),
        Ok(false) | Err(AdminError::InvalidOrigin(_)) => {
            Err(ConsoleError::NotFound("That origin is not whitelisted."))
        }
        Err(err) => Err(err.into()),
    }
}
