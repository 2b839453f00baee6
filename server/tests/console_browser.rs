//! The Admin Console in a real browser: Debian's chromium, headless, driven over
//! WebDriver (chromedriver) against the real server binary on loopback. Accounts are
//! made with the binary's `admin create`; what the pages do is checked against what the
//! API answers. A screenshot of each page is saved into the directory the test prints.
//!
//! Needs `chromium` and `chromium-driver` (server/install-test-deps.sh). Without them
//! the test says so and passes only outside CI; under CI it fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    b64, cli, cli_key, cli_tenant, database_args, documents_json, sha256, BinaryServer, Signer,
    PORTAL,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free loopback port; killed (by PID) on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `securesign-server admin create` with the password on stdin; the account id.
fn admin_create(db: &Path, tenant: &str, email: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(database_args(db))
        .args([
            "admin",
            "create",
            "--tenant",
            tenant,
            "--email",
            email,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn text(&self, css: &str) -> String {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(found) => found.text().await.unwrap(),
            Err(err) => panic!(
                "{css} not found ({err}) on {}:\n{}",
                self.path().await,
                self.source().await
            ),
        }
    }

    /// Clicks, and when the click submits a form, waits for the next page.
    async fn click(&self, css: &str) {
        let body = self.client.find(Locator::Css("body")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The old page's body goes stale once the next page has loaded.
        while body.tag_name().await.is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot {}", path.display());
    }

    async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/admin/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#sign-in").await;
    }
}

async fn validate(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    origin: &str,
) -> (u16, serde_json::Value) {
    let response = http
        .post(format!("{base}/v1/auth/validate"))
        .bearer_auth(key)
        .json(&json!({"origin": origin, "platform": "web"}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn browser_missing() -> bool {
    let missing = !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists();
    if missing {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromium-driver are required in CI: run server/install-test-deps.sh"
        );
        eprintln!("skipped: no {CHROMIUM} / {CHROMEDRIVER} (install them with server/install-test-deps.sh)");
    }
    missing
}

#[tokio::test]
async fn the_console_in_chromium_signs_in_manages_keys_and_origins_and_shows_each_tenant_only_its_own(
) {
    if browser_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let tenant_a = cli_tenant(&db, &[PORTAL]);
    let live_a = cli_key(&db, &tenant_a, "live", &[]);
    let tenant_b = cli(&db, &["tenant", "create", "--name", "Tenant B"])
        .trim()
        .to_owned();
    cli(
        &db,
        &[
            "domain",
            "add",
            "--tenant",
            &tenant_b,
            "https://b.example.in",
        ],
    );
    let key_b = cli_key(&db, &tenant_b, "test", &[]);
    admin_create(&db, &tenant_a, "ops@portal-a.example.in");
    admin_create(&db, &tenant_b, "ops@b.example.in");
    let listed = cli(&db, &["admin", "list"]);
    assert!(
        listed.contains("ops@portal-a.example.in") && listed.contains("ops@b.example.in"),
        "{listed}"
    );

    // One attempt per callback: the portal's hook does not resolve, so it fails at once.
    let server = BinaryServer::spawn_with(
        &db,
        &dir.path().join("server.log"),
        &["--webhook-max-attempts", "1"],
    );
    let base = server.base();
    let http = reqwest::Client::new();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    eprintln!("screenshots in {}", shots.display());

    let driver = Driver::start();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--window-size=1400,1000", "--no-first-run"]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap();
    let b = Browser {
        client,
        base: base.clone(),
        shots,
    };

    // Sign-in: a wrong password is refused, the right one opens the keys page.
    b.sign_in("ops@portal-a.example.in", "not the password at all")
        .await;
    assert_eq!(
        b.text("#login-error").await,
        "Wrong e-mail address or password."
    );
    assert_eq!(b.path().await, "/admin/login");
    b.screenshot("01-sign-in-refused").await;
    b.sign_in("ops@portal-a.example.in", PASSWORD).await;
    assert_eq!(b.path().await, "/admin/keys");
    assert_eq!(b.text("h1").await, "API keys");
    // The session cookie is HttpOnly: the page's script world cannot read it.
    let cookies: serde_json::Value = b
        .client
        .execute("return document.cookie;", vec![])
        .await
        .unwrap();
    assert_eq!(
        cookies,
        json!(""),
        "no console cookie is visible to scripts"
    );

    // Create a test key: shown once, and validate accepts it.
    b.select("#new-mode", "test").await;
    b.fill("#new-rpm", "30").await;
    b.click("#create-key").await;
    let key = b.text("#new-secret").await;
    assert!(key.starts_with("ss_test_"), "{key}");
    let key_id = b.text("#secret-title code").await;
    b.screenshot("02-keys-created").await;
    assert_eq!(validate(&http, &base, &key, PORTAL).await.0, 200);

    // Roll it with no grace: the replacement works, the old key is refused at once.
    b.goto("/admin/keys").await;
    b.select(&format!("#key-{key_id} select[name=grace]"), "0")
        .await;
    b.click(&format!("#key-{key_id} form[action$='/roll'] button"))
        .await;
    let rolled = b.text("#new-secret").await;
    let rolled_id = b.text("#secret-title code:last-of-type").await;
    assert_ne!(rolled, key);
    assert_eq!(validate(&http, &base, &rolled, PORTAL).await.0, 200);
    let (status, body) = validate(&http, &base, &key, PORTAL).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "SS_API_KEY_INVALID");
    assert_eq!(
        body["error"]["resolution"],
        "Check Admin Console key status"
    );

    // Revoke the replacement.
    b.goto("/admin/keys").await;
    b.click(&format!("#key-{rolled_id} form[action$='/revoke'] button"))
        .await;
    assert_eq!(b.path().await, "/admin/keys?done=revoked");
    assert!(b
        .text(&format!("#key-{rolled_id} .status"))
        .await
        .starts_with("revoked"));
    assert_eq!(validate(&http, &base, &rolled, PORTAL).await.0, 401);
    b.screenshot("03-keys").await;

    // Origins: a refused one, then add and remove.
    let origin = "https://forms.portal-a.example.in";
    let (status, body) = validate(&http, &base, &live_a, origin).await;
    assert_eq!(
        (status, body["error"]["resolution"].as_str()),
        (403, Some("Add domain in Admin Console"))
    );
    b.click("nav a[href='/admin/origins']").await;
    assert_eq!(b.text("h1").await, "Whitelisted origins");
    b.fill("#new-origin", "http://forms.portal-a.example.in")
        .await;
    b.click("#add-origin").await;
    assert!(b.text("#error").await.contains("must be https"));
    b.fill("#new-origin", origin).await;
    b.click("#add-origin").await;
    assert_eq!(b.text("#notice").await, "The origin was added.");
    assert_eq!(validate(&http, &base, &live_a, origin).await.0, 200);
    b.screenshot("04-origins").await;
    b.click(&format!("button[aria-label='Remove {origin}']"))
        .await;
    assert_eq!(b.text("#notice").await, "The origin was removed.");
    assert_eq!(validate(&http, &base, &live_a, origin).await.0, 403);

    // A session completes (the app's result posted as the app would): the sessions
    // page shows it with its signer.
    let digests = [sha256(b"tender-2026-17.pdf")];
    let created: serde_json::Value = http
        .post(format!("{base}/v1/auth/session"))
        .bearer_auth(&live_a)
        .json(
            &json!({"origin": PORTAL, "documents": documents_json(&digests),
                      "callbackUrl": format!("{PORTAL}/securesign/hook")}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (session_id, request_id) = common::session_ids(&created);
    b.goto("/admin/sessions?status=pending").await;
    assert_eq!(
        b.text(&format!("#session-{session_id} .status")).await,
        "pending"
    );
    let signer = Signer::new("rsa");
    let result = json!({"certificate": b64(&signer.cert_der), "signatures": [
        {"documentId": "doc-0", "signature": b64(&signer.sign(&digests[0]))}]});
    let posted = http
        .post(format!("{base}/v1/sign-requests/{request_id}/result"))
        .json(&result)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200, "{}", posted.text().await.unwrap());
    b.select("#status-filter", "completed").await;
    b.click("#filter").await;
    assert_eq!(b.path().await, "/admin/sessions?status=completed");
    assert_eq!(
        b.text(&format!("#session-{session_id} .status")).await,
        "completed"
    );
    assert!(!b
        .text(&format!("#session-{session_id} .signer"))
        .await
        .is_empty());
    b.screenshot("05-sessions").await;

    // Its callback failed (the hook's host does not resolve): listed, redelivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.goto("/admin/callbacks").await;
        if b.source().await.contains(">failed<") {
            break;
        }
        assert!(Instant::now() < deadline, "the callback never failed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(b.text("h1").await, "Callback deliveries");
    b.screenshot("06-callbacks").await;
    b.click("form[action$='/redeliver'] button").await;
    assert_eq!(
        b.text("#notice").await,
        "The event was queued for delivery again."
    );

    // Usage: the validate calls above, per key, as a chart.
    b.click("nav a[href='/admin/usage']").await;
    let usage = b.source().await;
    assert!(
        usage.contains(&format!("id=\"usage-{key_id}\"")),
        "the created key's requests are charted"
    );
    assert!(usage.contains("<svg"));
    b.screenshot("07-usage").await;

    // Sign out; tenant B's admin sees B's things and none of A's.
    b.click("#sign-out").await;
    assert_eq!(b.path().await, "/admin/login");
    b.goto("/admin/keys").await;
    assert_eq!(b.path().await, "/admin/login", "signed out");
    b.sign_in("ops@b.example.in", PASSWORD).await;
    let keys = b.source().await;
    assert!(keys.contains("Tenant B"));
    for a_thing in [tenant_a.as_str(), &key_id, &rolled_id, "Example Portal"] {
        assert!(!keys.contains(a_thing), "B's keys page shows A's {a_thing}");
    }
    for path in [
        "/admin/origins",
        "/admin/sessions",
        "/admin/callbacks",
        "/admin/usage",
    ] {
        b.goto(path).await;
        let page = b.source().await;
        for a_thing in [tenant_a.as_str(), &session_id, PORTAL, &key_id] {
            assert!(!page.contains(a_thing), "B's {path} shows A's {a_thing}");
        }
    }
    b.goto("/admin/sessions").await;
    b.screenshot("08-tenant-b-sessions").await;
    assert_eq!(
        validate(&http, &base, &key_b, "https://b.example.in")
            .await
            .0,
        200
    );

    b.client.close().await.unwrap();
    drop(driver);
    server.stop();
}
