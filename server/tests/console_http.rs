//! The Admin Console over plain HTTP against an in-process server on a real database:
//! sign-in, cookie flags, CSRF, throttling, idle expiry, the pages' actions and what
//! the API then answers, and tenant isolation (URL guessing included).

#![allow(clippy::unwrap_used)]

mod common;
mod console_support;

use std::time::Duration;

use common::database::count;
use common::receiver::Receiver;
use common::{b64, documents_json, session_ids, sha256, Fixture, Signer, LOCAL, PORTAL};
use console_support::{account, sha256_hex, ConsoleUser, PASSWORD};
use securesign_server::api_key::KeyMode;
use serde_json::json;

const ADMIN_A: &str = "ops@portal-a.example.in";

async fn fixture_with_admin() -> Fixture {
    let f = Fixture::start().await;
    account(&f.store, f.clock.as_ref(), &f.tenant_id, ADMIN_A).await;
    f
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_sign_in_sets_a_strict_http_only_cookie_stored_hashed() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::new(&f.base);

    // Not signed in: every page sends to the sign-in form.
    let keys = user.get("/admin/keys").await;
    assert_eq!((keys.status, keys.location()), (303, Some("/admin/login")));

    let wrong = user.sign_in(ADMIN_A, "not the password at all").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("Wrong e-mail address or password."));
    assert!(wrong.set_cookie("ss_console").is_none());
    let unknown = user.sign_in("nobody@portal-a.example.in", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("Wrong e-mail address or password."));

    let right = user.sign_in(ADMIN_A, PASSWORD).await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.location(), Some("/admin/keys"));
    let cookie = right.set_cookie("ss_console").unwrap();
    let value = user.session.clone().unwrap();
    assert!(value.len() >= 43, "{cookie}");
    // Loopback http: no `Secure` (the browser would drop the cookie), all else strict.
    assert_eq!(
        cookie,
        format!("ss_console={value}; Path=/admin; HttpOnly; SameSite=Strict")
    );
    // The database holds the id's hash only.
    assert_eq!(
        count(
            &f.db_path,
            "SELECT COUNT(*) FROM console_sessions WHERE id_hash = $1",
            &sha256_hex(&value)
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &f.db_path,
            "SELECT COUNT(*) FROM console_sessions WHERE id_hash = $1",
            &value
        )
        .await,
        0
    );

    let page = user.get("/admin/keys").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>API keys</h1>"));
    assert!(page.body.contains(ADMIN_A));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    for path in [
        "/admin/keys",
        "/admin/origins",
        "/admin/sessions",
        "/admin/callbacks",
        "/admin/usage",
    ] {
        let page = user.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("<script"), "{path} has a script");
        assert!(!page.body.contains("src="), "{path} loads something");
        assert!(
            !page.body.contains("href=\"http") && !page.body.contains("href=\"//"),
            "{path} links off the console"
        );
        assert_eq!(page.body.matches("<link ").count(), 1);
        assert!(page
            .body
            .contains("<link rel=\"stylesheet\" href=\"/admin/static/console.css\">"));
    }

    // Reached by a public name (through a TLS proxy), the cookie is `Secure`.
    let form = reqwest::Client::new()
        .get(format!("{}/admin/login", f.base))
        .header("host", "console.portal-a.example.in")
        .send()
        .await
        .unwrap();
    let login_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        login_cookie.ends_with("; Path=/admin; HttpOnly; SameSite=Strict; Secure"),
        "{login_cookie}"
    );
    f.stop().await;
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_or_from_another_site_change_nothing() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let keys_before = f.admin().keys(Some(&f.tenant_id)).await.unwrap().len();

    for csrf in ["", "forged-token", &"A".repeat(43)] {
        let answer = user
            .post_raw(
                "/admin/keys",
                &[("csrf", csrf), ("mode", "test"), ("rpm", "60")],
                &[],
            )
            .await;
        assert_eq!(answer.status, 403, "{csrf:?}: {}", answer.body);
    }
    let revoke = user
        .post_raw(
            &format!("/admin/keys/{}/revoke", f.live_key_id),
            &[("csrf", "nope")],
            &[],
        )
        .await;
    assert_eq!(revoke.status, 403);
    // The right token, but posted from another site's page.
    let csrf = user.csrf.clone().unwrap();
    let cross = user
        .post_raw(
            "/admin/keys",
            &[("csrf", &csrf), ("mode", "test"), ("rpm", "60")],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403);
    let cross = user
        .post_raw(
            "/admin/keys",
            &[("csrf", &csrf), ("mode", "test"), ("rpm", "60")],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, 403);
    assert_eq!(
        f.admin().keys(Some(&f.tenant_id)).await.unwrap().len(),
        keys_before
    );
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);

    // The same form with the token works.
    let created = user
        .post("/admin/keys", &[("mode", "test"), ("rpm", "60")])
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        f.admin().keys(Some(&f.tenant_id)).await.unwrap().len(),
        keys_before + 1
    );

    // The sign-in form has its own token (a cookie set with the form).
    let mut stranger = ConsoleUser::new(&f.base);
    let no_cookie = stranger
        .post_raw(
            "/admin/login",
            &[("csrf", "x"), ("email", ADMIN_A), ("password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(no_cookie.status, 403);
    assert!(no_cookie.set_cookie("ss_console").is_none());
    f.stop().await;
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_per_client_address() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::new(&f.base);
    for attempt in 1..=4 {
        let answer = user.sign_in(ADMIN_A, "wrong password here").await;
        assert_eq!(answer.status, 401, "attempt {attempt}");
    }
    // The fifth failure locks the account for a minute...
    let fifth = user.sign_in(ADMIN_A, "wrong password here").await;
    assert_eq!(fifth.status, 429, "{}", fifth.body);
    assert!(fifth.body.contains("this account is locked until"));
    // ...in which even the right password is not checked.
    let locked = user.sign_in(ADMIN_A, PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(locked.set_cookie("ss_console").is_none());
    f.clock.advance(Duration::from_secs(61));
    let after = user.sign_in(ADMIN_A, PASSWORD).await;
    assert_eq!(after.status, 303, "{}", after.body);
    // Success reset the count: one more failure does not lock.
    let mut other = ConsoleUser::new(&f.base);
    assert_eq!(
        other.sign_in(ADMIN_A, "wrong password here").await.status,
        401
    );

    // Per client: 10 attempts a minute from one address, whatever the accounts.
    // (8 made above; 2 more pass, the next is refused before any password check.)
    f.clock.advance(Duration::from_secs(60));
    let mut throttled = None;
    for n in 0..12 {
        let answer = other
            .sign_in(
                &format!("guess{n}@portal-a.example.in"),
                "wrong password here",
            )
            .await;
        if answer.status == 429 {
            assert!(answer
                .body
                .contains("Too many sign-in attempts from your address"));
            throttled = Some(n);
            break;
        }
        assert_eq!(answer.status, 401);
    }
    assert_eq!(
        throttled,
        Some(10),
        "the 11th attempt within a minute is refused"
    );
    f.stop().await;
}

#[tokio::test]
async fn idle_sessions_expire_and_sign_out_ends_the_session() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    f.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        user.get("/admin/keys").await.status,
        200,
        "used within 30 minutes"
    );
    f.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        user.get("/admin/keys").await.status,
        200,
        "the idle timer restarted"
    );
    f.clock.advance(Duration::from_secs(30 * 60 + 1));
    let idle = user.get("/admin/keys").await;
    assert_eq!((idle.status, idle.location()), (303, Some("/admin/login")));

    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let cookie = user.session.clone().unwrap();
    let out = user.post("/admin/logout", &[]).await;
    assert_eq!((out.status, out.location()), (303, Some("/admin/login")));
    assert!(out.set_cookie("ss_console").unwrap().contains("Max-Age=0"));
    // The old cookie, replayed, is no session any more.
    user.session = Some(cookie);
    assert_eq!(user.get("/admin/keys").await.status, 303);
    f.stop().await;
}

#[tokio::test]
async fn keys_created_rolled_and_revoked_in_the_console_are_what_validate_answers() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let created = user
        .post("/admin/keys", &[("mode", "test"), ("rpm", "60")])
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.new_secret().unwrap();
    assert!(key.starts_with("ss_test_"), "{key}");
    assert_eq!(created.headers["cache-control"], "no-store");
    assert_eq!(f.validate(&key, LOCAL).await.status, 200);
    // Shown once: the list shows prefix and last four only.
    let list = user.get("/admin/keys").await;
    assert!(!list.body.contains(&key));
    assert!(list
        .body
        .contains(&format!("ss_test_…{}", &key[key.len() - 4..])));
    let key_id = f
        .admin()
        .keys(Some(&f.tenant_id))
        .await
        .unwrap()
        .into_iter()
        .find(|k| key.ends_with(&k.last4) && k.rpm == 60)
        .unwrap()
        .id;

    let rolled = user
        .post(&format!("/admin/keys/{key_id}/roll"), &[("grace", "3600")])
        .await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_key = rolled.new_secret().unwrap();
    assert_ne!(new_key, key);
    assert_eq!(f.validate(&new_key, LOCAL).await.status, 200);
    assert_eq!(
        f.validate(&key, LOCAL).await.status,
        200,
        "the old key works in its grace period"
    );
    assert!(user
        .get("/admin/keys")
        .await
        .body
        .contains("rolled; works until"));
    f.clock.advance(Duration::from_secs(3601));
    let old = f.validate(&key, LOCAL).await;
    old.assert_error(401, "SS_API_KEY_INVALID");
    assert_eq!(
        old.body["error"]["resolution"],
        "Check Admin Console key status"
    );

    let new_id = f
        .admin()
        .keys(Some(&f.tenant_id))
        .await
        .unwrap()
        .into_iter()
        .find(|k| new_key.ends_with(&k.last4) && k.revoked_at.is_none() && k.expires_at.is_none())
        .unwrap()
        .id;
    // (An hour without a request: the console session is over.)
    assert_eq!(user.get("/admin/keys").await.status, 303);
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let revoked = user
        .post(&format!("/admin/keys/{new_id}/revoke"), &[])
        .await;
    assert_eq!(
        (revoked.status, revoked.location()),
        (303, Some("/admin/keys?done=revoked"))
    );
    f.validate(&new_key, LOCAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    let list = user.get("/admin/keys?done=revoked").await;
    assert!(list.body.contains("The key was revoked"));
    assert!(list.body.contains("revoked 2026-"));

    // Bad input: a clear message, nothing created.
    let before = f.admin().keys(Some(&f.tenant_id)).await.unwrap().len();
    let bad = user
        .post("/admin/keys", &[("mode", "test"), ("rpm", "0")])
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("rpm must be between 1 and 1000000"));
    let bad = user
        .post(
            &format!("/admin/keys/{}/roll", f.live_key_id),
            &[("grace", "5")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        f.admin().keys(Some(&f.tenant_id)).await.unwrap().len(),
        before
    );
    f.stop().await;
}

#[tokio::test]
async fn origins_are_added_with_the_clis_validation_and_removed() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let new_origin = "https://forms.portal-a.example.in";
    let refused = f.validate(&f.live_key, new_origin).await;
    refused.assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    assert_eq!(
        refused.body["error"]["resolution"],
        "Add domain in Admin Console"
    );

    for (bad, why) in [
        ("http://forms.portal-a.example.in", "must be https"),
        ("https://forms.portal-a.example.in/path", "invalid origin"),
        ("not an origin", "invalid origin"),
    ] {
        let answer = user.post("/admin/origins", &[("origin", bad)]).await;
        assert_eq!(answer.status, 422, "{bad}");
        assert!(answer.body.contains(why), "{bad}: {}", answer.body);
    }
    let added = user
        .post(
            "/admin/origins",
            &[("origin", "HTTPS://Forms.Portal-A.example.in:443")],
        )
        .await;
    assert_eq!(
        (added.status, added.location()),
        (303, Some("/admin/origins?done=added"))
    );
    let page = user.get("/admin/origins?done=added").await;
    assert!(page.body.contains(new_origin), "normalised as the CLI does");
    assert_eq!(f.validate(&f.live_key, new_origin).await.status, 200);

    let removed = user
        .post("/admin/origins/remove", &[("origin", new_origin)])
        .await;
    assert_eq!(removed.status, 303);
    f.validate(&f.live_key, new_origin)
        .await
        .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    let again = user
        .post("/admin/origins/remove", &[("origin", new_origin)])
        .await;
    assert_eq!(again.status, 404);
    f.stop().await;
}

#[tokio::test]
async fn the_usage_chart_counts_each_keys_requests_and_429s() {
    let f = fixture_with_admin().await;
    let limited = f
        .admin()
        .create_key(&f.tenant_id, KeyMode::Test, 2)
        .await
        .unwrap();
    let limited_key = limited.secret.expose().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(f.validate(&limited_key, LOCAL).await.status);
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    for _ in 0..3 {
        assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    }
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    // The keys page names the last use at once (this process's counts are written
    // before it is drawn, not only every few seconds).
    let keys = user.get("/admin/keys").await;
    let row = &keys.body[keys
        .body
        .find(&format!("id=\"key-{}\"", limited.record.id))
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(!row.contains("never"), "{row}");
    let usage = user.get("/admin/usage").await;
    assert_eq!(usage.status, 200);
    let section = |id: &str| {
        let start = usage.body.find(&format!("id=\"usage-{id}\"")).unwrap();
        usage.body[start..start + usage.body[start..].find("</section>").unwrap()].to_owned()
    };
    let chart = section(&limited.record.id);
    assert!(chart.contains("5 requests"), "{chart}");
    assert!(chart.contains("3 answered 429"), "{chart}");
    assert!(
        chart.contains("<svg") && chart.contains("class=\"bar-limited\""),
        "{chart}"
    );
    let chart = section(&f.live_key_id);
    assert!(
        chart.contains("3 requests") && chart.contains("0 answered 429"),
        "{chart}"
    );
    assert!(!chart.contains("class=\"bar-limited\""));
    // Counted rows are in the database (other instances see them too) and name the
    // last use on the keys page.
    assert_eq!(
        count(
            &f.db_path,
            "SELECT COALESCE(SUM(requests), 0) FROM key_usage WHERE key_id = $1",
            &limited.record.id
        )
        .await,
        5
    );
    let keys = user.get("/admin/keys").await;
    let row = &keys.body[keys
        .body
        .find(&format!("id=\"key-{}\"", limited.record.id))
        .unwrap()..];
    assert!(!row[..row.find("</tr>").unwrap()].contains("never"));
    f.stop().await;
}

#[tokio::test]
async fn failed_callbacks_are_listed_and_redelivered() {
    let f = fixture_with_admin().await;
    // Refused three times (the fixture's 3 attempts), then accepted.
    let receiver = Receiver::start(|n| if n <= 3 { 500 } else { 204 }).await;
    f.admin()
        .add_domain(&f.tenant_id, &receiver.origin())
        .await
        .unwrap();
    let digests = [sha256(b"one")];
    let reply = f
        .post_bearer(
            "/v1/auth/session",
            &f.test_key,
            &json!({"origin": LOCAL, "documents": documents_json(&digests), "callbackUrl": receiver.url()}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let (session_id, request_id) = session_ids(&reply.body);
    let signer = Signer::new("rsa");
    let result = json!({"certificate": b64(&signer.cert_der), "signatures": [
        {"documentId": "doc-0", "signature": b64(&signer.sign(&digests[0]))}]});
    assert_eq!(
        f.post(&format!("/v1/sign-requests/{request_id}/result"), &result)
            .await
            .status,
        200
    );
    receiver.wait_for_hits(1).await;
    f.clock.advance(Duration::from_secs(1));
    receiver.wait_for_hits(2).await;
    f.clock.advance(Duration::from_secs(2));
    receiver.wait_for_hits(3).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.admin().deliveries(&session_id).await.unwrap()[0].status != "failed" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let page = user.get("/admin/callbacks").await;
    let event_id = f.admin().deliveries(&session_id).await.unwrap()[0]
        .id
        .clone();
    let row = &page.body[page.body.find(&format!("id=\"event-{event_id}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(&session_id)
            && row.contains(">failed<")
            && row.contains("<td>3</td>")
            && row.contains("<td>500</td>"),
        "{row}"
    );
    assert!(row.contains("Redeliver"));

    let answer = user
        .post(&format!("/admin/callbacks/{event_id}/redeliver"), &[])
        .await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, Some("/admin/callbacks?done=redelivered"))
    );
    receiver.wait_for_hits(4).await;
    while f.admin().deliveries(&session_id).await.unwrap()[0].status != "delivered" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = user.get("/admin/callbacks").await;
    assert!(page.body.contains(">delivered<"));
    // Still being delivered or pending: not queued twice.
    let session = user.get("/admin/sessions?status=completed").await;
    assert!(session.body.contains(&session_id) && session.body.contains(">completed<"));
    f.stop().await;
}

#[tokio::test]
async fn an_admin_neither_sees_nor_changes_another_tenants_anything() {
    let f = fixture_with_admin().await;
    // Tenant B with its own admin, key, origin, session and callback event.
    let admin = f.admin();
    let b = admin.create_tenant("Tenant B").await.unwrap();
    admin
        .add_domain(&b.id, "https://b.example.in")
        .await
        .unwrap();
    let b_key = admin.create_key(&b.id, KeyMode::Test, 120).await.unwrap();
    let b_secret = b_key.secret.expose().to_owned();
    account(&f.store, f.clock.as_ref(), &b.id, "ops@b.example.in").await;
    let digests = [sha256(b"b-doc")];
    let reply = f
        .post_bearer(
            "/v1/auth/session",
            &b_secret,
            &json!({"origin": "https://b.example.in", "documents": documents_json(&digests),
                    "callbackUrl": "https://b.example.in/hook"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let (b_session, b_request) = session_ids(&reply.body);
    let signer = Signer::new("ec");
    let result = json!({"certificate": b64(&signer.cert_der), "signatures": [
        {"documentId": "doc-0", "signature": b64(&signer.sign(&digests[0]))}]});
    let _ = f
        .post(&format!("/v1/sign-requests/{b_request}/result"), &result)
        .await;
    let b_event = f
        .admin()
        .deliveries(&b_session)
        .await
        .unwrap()
        .first()
        .map(|d| d.id.clone())
        .unwrap_or_else(|| "evt_none".to_owned());
    // Let B's event fail at once, so that it could be redelivered by its own admin.
    common::execute_sql(
        &f.db_path,
        &format!("UPDATE webhook_events SET status = 'failed' WHERE id = '{b_event}'"),
    )
    .await
    .unwrap();

    let mut a = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    for path in [
        "/admin/keys",
        "/admin/origins",
        "/admin/sessions",
        "/admin/callbacks",
        "/admin/usage",
    ] {
        let page = a.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        for b_thing in [
            &b.id,
            &b_key.record.id,
            "https://b.example.in",
            &b_session,
            &b_event,
            "Tenant B",
        ] {
            assert!(
                !page.body.contains(b_thing),
                "{path} shows tenant B's {b_thing}"
            );
        }
    }
    // URL guessing: B's ids in A's forms are answered as unknown, and nothing changes.
    let revoke = a
        .post(&format!("/admin/keys/{}/revoke", b_key.record.id), &[])
        .await;
    assert_eq!(revoke.status, 404, "{}", revoke.body);
    let roll = a
        .post(
            &format!("/admin/keys/{}/roll", b_key.record.id),
            &[("grace", "0")],
        )
        .await;
    assert_eq!(roll.status, 404);
    assert!(roll.new_secret().is_none());
    let remove = a
        .post(
            "/admin/origins/remove",
            &[("origin", "https://b.example.in")],
        )
        .await;
    assert_eq!(remove.status, 404);
    let redeliver = a
        .post(&format!("/admin/callbacks/{b_event}/redeliver"), &[])
        .await;
    assert_eq!(redeliver.status, 404);
    // Adding an origin adds it to A only.
    let added = a
        .post("/admin/origins", &[("origin", "https://only-a.example.in")])
        .await;
    assert_eq!(added.status, 303);
    assert!(f
        .admin()
        .domains(&b.id)
        .await
        .unwrap()
        .iter()
        .all(|d| d.origin != "https://only-a.example.in"));

    assert_eq!(
        f.validate(&b_secret, "https://b.example.in").await.status,
        200,
        "B's key still works"
    );
    assert_eq!(
        f.admin().keys(Some(&b.id)).await.unwrap().len(),
        1,
        "nothing rolled"
    );
    assert_eq!(f.admin().domains(&b.id).await.unwrap().len(), 1);
    assert_eq!(
        f.admin().deliveries(&b_session).await.unwrap()[0].status,
        "failed"
    );

    // B's admin sees B's, and none of A's.
    let mut b_user = ConsoleUser::signed_in(&f.base, "ops@b.example.in").await;
    let keys = b_user.get("/admin/keys").await;
    assert!(keys.body.contains(&b_key.record.id) && !keys.body.contains(&f.live_key_id));
    let sessions = b_user.get("/admin/sessions").await;
    assert!(sessions.body.contains(&b_session));
    let redeliver = b_user
        .post(&format!("/admin/callbacks/{b_event}/redeliver"), &[])
        .await;
    assert_eq!(redeliver.status, 303, "{}", redeliver.body);
    f.stop().await;
}

#[tokio::test]
async fn a_disabled_tenants_admins_are_told_on_every_page_until_it_is_enabled() {
    let f = fixture_with_admin().await;
    let mut user = ConsoleUser::signed_in(&f.base, ADMIN_A).await;
    let pages = [
        "/admin/keys",
        "/admin/origins",
        "/admin/sessions",
        "/admin/callbacks",
        "/admin/usage",
    ];
    for page in pages {
        let shown = user.get(page).await;
        assert_eq!(shown.status, 200, "{page}");
        assert!(!shown.body.contains("tenant-disabled"), "{page}");
    }

    f.admin().disable_tenant(&f.tenant_id).await.unwrap();
    for page in pages {
        let shown = user.get(page).await;
        assert_eq!(shown.status, 200, "{page}");
        assert!(
            shown.body.contains("This tenant is disabled since"),
            "{page}: {}",
            shown.body
        );
    }

    f.admin().enable_tenant(&f.tenant_id).await.unwrap();
    assert!(!user
        .get("/admin/keys")
        .await
        .body
        .contains("tenant-disabled"));
}
