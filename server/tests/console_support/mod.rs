//! A console user over plain HTTP: cookies kept by hand (so their flags can be checked),
//! redirects not followed, the CSRF token read from each page's forms.

#![allow(dead_code)]

use std::path::Path;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use securesign_server::console::accounts::Accounts;
use securesign_server::{Clock, Store};
use zeroize::Zeroizing;

/// The password test accounts get.
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates an admin account of `tenant` through the library (the CLI is tested apart).
pub async fn account(store: &Store, clock: &dyn Clock, tenant: &str, email: &str) {
    Accounts::new(store, clock)
        .create(tenant, email, Zeroizing::new(PASSWORD.to_owned()))
        .await
        .unwrap();
}

/// An answer: status, headers, body text.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The `Set-Cookie` lines.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The first hidden `csrf` field's value.
    pub fn csrf(&self) -> Option<String> {
        value_after(&self.body, "name=\"csrf\" value=\"")
    }

    /// The key shown once after a create or a roll.
    pub fn new_secret(&self) -> Option<String> {
        value_after(&self.body, "<output id=\"new-secret\">")
            .map(|s| s.split('<').next().unwrap().to_owned())
    }
}

fn value_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    Some(rest[..rest.find(['"', '<'])?].to_owned())
}

/// One browser-like user of the console.
pub struct ConsoleUser {
    pub base: String,
    http: reqwest::Client,
    /// The session cookie's value, once signed in.
    pub session: Option<String>,
    login_cookie: Option<String>,
    /// The CSRF token of the last page that had one.
    pub csrf: Option<String>,
}

impl ConsoleUser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session: None,
            login_cookie: None,
            csrf: None,
        }
    }

    fn cookie_header(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.session {
            parts.push(format!("ss_console={s}"));
        }
        if let Some(l) = &self.login_cookie {
            parts.push(format!("ss_console_login={l}"));
        }
        parts.join("; ")
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        };
        if let Some(c) = page.set_cookie("ss_console") {
            let value = c["ss_console=".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            self.session = (!value.is_empty()).then_some(value);
        }
        if let Some(c) = page.set_cookie("ss_console_login") {
            let value = c["ss_console_login=".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            self.login_cookie = (!value.is_empty()).then_some(value);
        }
        if let Some(csrf) = page.csrf() {
            self.csrf = Some(csrf);
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.page(response).await
    }

    /// POSTs a form with the current CSRF token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form, &[]).await
    }

    /// POSTs exactly these fields, with extra headers.
    pub async fn post_raw(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.page(response).await
    }

    /// Loads the sign-in form and posts it.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf().unwrap();
        self.post_raw(
            "/admin/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
            &[],
        )
        .await
    }

    /// Signs in and loads the keys page (for its CSRF token); panics unless it worked.
    pub async fn signed_in(base: &str, email: &str) -> Self {
        let mut user = Self::new(base);
        let answer = user.sign_in(email, PASSWORD).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert_eq!(answer.location(), Some("/admin/keys"));
        let keys = user.get("/admin/keys").await;
        assert_eq!(keys.status, 200, "{}", keys.body);
        user
    }
}

/// The hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Whether `path` names a file.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
