//! Sign-in, sign-out, and the console's front door.

use super::*;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    error: Option<String>,
}

/// `GET /admin`: the keys page (or sign-in).
pub(crate) async fn home() -> Redirect {
    Redirect::to("/admin/keys")
}

fn login_page(
    headers: &HeaderMap,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let csrf = random_token();
    let page = LoginPage {
        nav: None,
        csrf: csrf.clone(),
        email,
        error,
    };
    let mut response = html(&page, status)?;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &csrf, None),
    );
    Ok(response)
}

/// `GET /admin/login`.
pub(crate) async fn login_form(headers: HeaderMap) -> PageResult {
    login_page(&headers, String::new(), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

/// `POST /admin/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(console): Extension<std::sync::Arc<Console>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let password = Zeroizing::new(form.password);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_match(&form.csrf, expected) {
        return Err(ConsoleError::Forbidden(
            "The sign-in form has expired; reload the page and sign in again.",
        ));
    }
    if let Some(Extension(ConnectInfo(peer))) = connect {
        if let Decision::Limited { .. } = console.login_limit.check(peer.ip()) {
            return login_page(
                &headers,
                form.email,
                Some(
                    "Too many sign-in attempts from your address; wait a minute and try again."
                        .to_owned(),
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
    }
    let accounts = Accounts::new(&state.store, state.clock.as_ref());
    match accounts.sign_in(&form.email, password).await? {
        SignIn::Accepted { account_id, .. } => {
            let value =
                login_sessions::start(&state.store, state.clock.as_ref(), &account_id).await?;
            tracing::info!(%account_id, "admin console sign-in");
            let mut response = Redirect::to("/admin/keys").into_response();
            let out = response.headers_mut();
            out.append(
                header::SET_COOKIE,
                set_cookie(&headers, SESSION_COOKIE, &value, None),
            );
            out.append(
                header::SET_COOKIE,
                set_cookie(&headers, LOGIN_COOKIE, "", Some(0)),
            );
            Ok(response)
        }
        SignIn::Refused => login_page(
            &headers,
            form.email,
            Some("Wrong e-mail address or password.".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
        SignIn::Locked { until } => login_page(
            &headers,
            form.email,
            Some(format!(
                "Too many failed sign-ins: this account is locked until {}.",
                when(until)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
    }
}

/// `POST /admin/logout`.
pub(crate) async fn logout(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        login_sessions::end(&state.store, value).await?;
    }
    let mut response = Redirect::to(crate::console::LOGIN_PATH).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", Some(0)),
    );
    Ok(response)
}
