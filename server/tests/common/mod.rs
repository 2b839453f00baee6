//! Test harness: real servers on 127.0.0.1 (in-process with an injectable clock, or the
//! real binary as a subprocess), real SQLite files in temp dirs, real keys from openssl.
//!
//! The database engine comes from the environment (see [`database`]): SQLite by default;
//! with `SECURESIGN_TEST_DATABASE=postgres` (set by `server/tests/with-postgres.sh`, which
//! runs a private cluster) every database path a test names stands for its own
//! PostgreSQL database, so the same tests run on both engines.

#![allow(dead_code)]

pub mod database;
pub mod receiver;

#[allow(unused_imports)]
pub use database::{database_args, execute_sql, is_postgres, open_store, skip_on_postgres};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;
use securesign_server::key_cache::KeyCache;
use securesign_server::trust::{RevocationPolicy, SignerTrust, TrustSettings};
use securesign_server::webhook::DeliveryPolicy;
use securesign_server::{
    router, serve, spawn_webhook_worker, AppState, ManualClock, RouterOptions, Store,
};
use securesign_testlab::{CertValidity, CrlFreshness, DscSpec, IssuedDsc, LabKey, LabPki, PkiUrls};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The seed's portal origin.
pub const PORTAL: &str = "https://portal.example.gov.in";
/// A local development origin for test keys.
pub const LOCAL: &str = "http://localhost:3000";
/// 2026-06-22T10:00:00Z.
pub const T0: i64 = 1_782_122_400;

/// An in-process server over a real SQLite file, driven by a manual clock.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub base: String,
    pub http: reqwest::Client,
    pub tenant_id: String,
    pub live_key: String,
    pub live_key_id: String,
    pub test_key: String,
    /// The tenant's webhook secret, as `tenant create` shows it.
    pub webhook_secret: String,
    /// The server's key cache (for its hit/miss counters).
    pub keys: Arc<KeyCache>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stop_worker: Option<tokio::sync::oneshot::Sender<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

/// Callback policy for in-process tests: 3 attempts, 1 s then 2 s (on the manual
/// clock), a 20 ms look at the outbox so advancing the clock takes effect at once, and
/// loopback destinations allowed.
pub fn test_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(20),
        concurrency: 4,
        // The receivers listen on 127.0.0.1.
        allow_private_destinations: true,
    }
}

impl Fixture {
    /// A tenant "Example Portal" with the seed's origin and http://localhost:3000
    /// whitelisted, one live and one test key (120 rpm), and a running server.
    pub async fn start() -> Self {
        Self::start_with(test_policy()).await
    }

    /// [`Fixture::start`] with this callback delivery policy.
    pub async fn start_with(policy: DeliveryPolicy) -> Self {
        Self::start_with_at(policy, T0).await
    }

    /// [`Fixture::start`] with the server's clock at the real time: for signatures made
    /// by `openssl cms`, which stamps them with the real time.
    pub async fn start_now() -> Self {
        Self::start_with_at(test_policy(), now_unix()).await
    }

    /// A server at the real time that validates signers with `trust`.
    pub async fn start_with_trust(trust: SignerTrust) -> Self {
        Self::start_full(test_policy(), now_unix(), trust).await
    }

    async fn start_with_at(policy: DeliveryPolicy, start_unix: i64) -> Self {
        Self::start_full(policy, start_unix, lab_trust()).await
    }

    async fn start_full(policy: DeliveryPolicy, start_unix: i64, trust: SignerTrust) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("securesign.db");
        let store = open_store(&db_path).await;
        let clock = Arc::new(ManualClock::starting_at(start_unix));
        let admin = Admin::new(&store, clock.as_ref());
        let created = admin
            .create_tenant_with_secret("Example Portal")
            .await
            .unwrap();
        let tenant = created.tenant;
        admin.add_domain(&tenant.id, PORTAL).await.unwrap();
        admin.add_domain(&tenant.id, LOCAL).await.unwrap();
        let live = admin
            .create_key(&tenant.id, KeyMode::Live, 120)
            .await
            .unwrap();
        let test = admin
            .create_key(&tenant.id, KeyMode::Test, 120)
            .await
            .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::with_trust(store.clone(), clock.clone(), Arc::new(trust));
        let keys = state.keys.clone();
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = spawn_webhook_worker(&state, policy, async {
            let _ = worker_stopped.await;
        })
        .unwrap();
        let app = router(state, RouterOptions::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, async {
            let _ = rx.await;
        }));
        Self {
            dir,
            db_path,
            store,
            clock,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            tenant_id: tenant.id,
            live_key: live.secret.expose().to_owned(),
            live_key_id: live.record.id,
            test_key: test.secret.expose().to_owned(),
            webhook_secret: created.webhook_secret.expose().to_owned(),
            keys,
            shutdown: Some(tx),
            server: Some(server),
            stop_worker: Some(stop_worker),
            worker: Some(worker),
        }
    }

    pub fn admin(&self) -> Admin<'_> {
        Admin::new(&self.store, self.clock.as_ref())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON with a Bearer key; returns status, headers and JSON body.
    pub async fn post_bearer(&self, path: &str, key: &str, body: &Value) -> Reply {
        Reply::from(
            self.http
                .post(self.url(path))
                .bearer_auth(key)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get_bearer(&self, path: &str, key: &str) -> Reply {
        Reply::from(
            self.http
                .get(self.url(path))
                .bearer_auth(key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn validate(&self, key: &str, origin: &str) -> Reply {
        self.post_bearer(
            "/v1/auth/validate",
            key,
            &json!({"origin": origin, "platform": "web"}),
        )
        .await
    }

    /// Creates a session for `digests` with the live key; returns (sessionId, requestId).
    pub async fn create_session(&self, digests: &[[u8; 32]], ttl: Option<u32>) -> (String, String) {
        let mut body = json!({"origin": PORTAL, "documents": documents_json(digests)});
        if let Some(ttl) = ttl {
            body["ttlSeconds"] = json!(ttl);
        }
        let reply = self
            .post_bearer("/v1/auth/session", &self.live_key, &body)
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        session_ids(&reply.body)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        if let Some(tx) = self.stop_worker.take() {
            let _ = tx.send(());
        }
        if let Some(worker) = self.worker.take() {
            worker.await.unwrap();
        }
        self.store.close().await;
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(tx) = self.stop_worker.take() {
            let _ = tx.send(());
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts an error answer with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["success"], false, "{}", self.body);
        assert_eq!(self.body["error"]["code"], code, "{}", self.body);
        assert!(self.body["error"]["message"].is_string(), "{}", self.body);
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The real time, in Unix seconds.
/// The `requestId` of a created session's `deepLink` (`securesign://sign?requestId=…`).
pub fn request_id_of(created: &Value) -> String {
    created["deepLink"]
        .as_str()
        .unwrap()
        .strip_prefix("securesign://sign?requestId=")
        .unwrap_or_else(|| panic!("not a deep link: {created}"))
        .to_owned()
}

/// (sessionId, requestId) of a created session's answer.
pub fn session_ids(created: &Value) -> (String, String) {
    (
        created["sessionId"].as_str().unwrap().to_owned(),
        request_id_of(created),
    )
}

/// `POST /v1/auth/validate` for the seed's portal with the real curl, in the seed's exact
/// shape: (body, HTTP status).
pub fn curl_validate(base: &str, key: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            &format!("{base}/v1/auth/validate"),
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"origin":"https://portal.example.gov.in","platform":"web"}"#,
        ])
        .output()
        .expect("curl must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), status.to_owned())
}

/// How long a change committed by another process (the admin CLI) may take to reach a
/// running server: on SQLite none (its change detector sees the commit on the very next
/// request); on PostgreSQL the change arrives as a notification, milliseconds later.
pub fn propagation_allowance() -> Duration {
    if is_postgres() {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    }
}

/// [`curl_validate`] after a change by another process, until it answers `status`
/// (within [`propagation_allowance`]: on SQLite the very first request must). The
/// answer's body and how long after the call the server answered `status`.
pub fn curl_validate_after_change(base: &str, key: &str, status: &str) -> (String, Duration) {
    let start = std::time::Instant::now();
    loop {
        let (body, got) = curl_validate(base, key);
        if got == status {
            let took = start.elapsed();
            if is_postgres() {
                eprintln!("change seen by the server after {took:?}");
            }
            return (body, took);
        }
        assert!(
            start.elapsed() < propagation_allowance(),
            "answered {got}, not {status}, after {:?}: {body}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn documents_json(digests: &[[u8; 32]]) -> Value {
    Value::Array(
        digests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({"id": format!("doc-{i}"), "name": format!("Document {i}.pdf"),
                       "digestAlgorithm": "SHA-256", "digest": b64(d)})
            })
            .collect(),
    )
}

/// The lab PKI of this test process (root → licensed CA, as in India's CCA hierarchy),
/// made once by the token lab with the openssl CLI under cargo's scratch directory for
/// integration tests, with current CRLs published. nextest runs each test in its own
/// process, so each test gets a fresh one.
pub fn lab_pki() -> &'static LabPki {
    static PKI: OnceLock<LabPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("server-pki-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let pki = LabPki::create(&dir, PkiUrls::default()).unwrap();
        pki.publish_crls(CrlFreshness::Current).unwrap();
        pki
    })
}

/// Trust as `serve --trust-anchors <lab root> --intermediates <lab CA> --crl-dir <lab
/// CRLs>` sets it up, loopback fetches allowed.
pub fn lab_trust_settings() -> TrustSettings {
    let pki = lab_pki();
    TrustSettings {
        anchors: Some(pki.root_pem().to_owned()),
        intermediates: Some(pki.ca_pem().to_owned()),
        crl_dir: Some(pki.crl_dir()),
        revocation: RevocationPolicy::Required,
        allow_private_fetches: true,
    }
}

/// [`lab_trust_settings`], loaded.
pub fn lab_trust() -> SignerTrust {
    SignerTrust::load(&lab_trust_settings()).unwrap()
}

/// The `serve` arguments of [`lab_trust_settings`] for the real binary.
pub fn lab_trust_args() -> Vec<String> {
    let pki = lab_pki();
    vec![
        "--trust-anchors".into(),
        pki.root_pem().display().to_string(),
        "--intermediates".into(),
        pki.ca_pem().display().to_string(),
        "--crl-dir".into(),
        pki.crl_dir().display().to_string(),
    ]
}

/// A validity window from before [`T0`] (the manual clock's start) to two years from now,
/// so a certificate is valid both on the manual clock and in real time.
pub fn validity_since_t0() -> CertValidity {
    CertValidity::DaysFromNow {
        not_before: -((now_unix() - T0) / 86_400 + 2),
        not_after: 730,
    }
}

/// A key pair and its class 3 DSC from the lab's licensed CA (subject CN "Test Signer"),
/// made by the openssl CLI; no CRL distribution point (the trust settings load the CRLs).
pub struct Signer {
    dir: tempfile::TempDir,
    key: PathBuf,
    cert_pem: PathBuf,
    pub cert_der: Vec<u8>,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The spec of the signers [`Signer::new`] makes.
pub fn signer_spec(key: LabKey) -> DscSpec {
    DscSpec {
        key,
        validity: validity_since_t0(),
        crl_dp: false,
        ocsp: false,
        ..DscSpec::class3("Test Signer")
    }
}

impl Signer {
    /// `rsa` (RSA-2048), `rsa4096` or `ec` (P-256).
    pub fn new(kind: &str) -> Self {
        let pki = lab_pki();
        let issued = match kind {
            "rsa" => pki.issue(&signer_spec(LabKey::Rsa)),
            "ec" => pki.issue(&signer_spec(LabKey::Ec)),
            "rsa4096" => {
                let dir = tempfile::tempdir_in(pki.dir()).unwrap().keep();
                let key = dir.join("key.pem");
                openssl(&[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:4096",
                    "-out",
                    key.to_str().unwrap(),
                ]);
                pki.issue_with_key(&signer_spec(LabKey::Rsa), Some(&key))
            }
            other => panic!("unknown kind {other}"),
        };
        Self::issued(issued.unwrap())
    }

    /// A signer over a certificate the lab issued.
    pub fn issued(dsc: IssuedDsc) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            key: dsc.key_pem,
            cert_pem: dsc.cert_pem,
            cert_der: dsc.cert_der,
        }
    }

    /// A detached CMS `SignedData` (DER) over `document`, made by `openssl cms -sign`
    /// (SHA-256, signed attributes, signer certificate included).
    pub fn cms_sign_with_openssl(&self, document: &[u8]) -> Vec<u8> {
        let input = self.dir.path().join("document.bin");
        std::fs::write(&input, document).unwrap();
        openssl(&[
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-in",
            input.to_str().unwrap(),
            "-signer",
            self.cert_pem.to_str().unwrap(),
            "-inkey",
            self.key.to_str().unwrap(),
        ])
    }

    /// A detached CMS over a document digest, built the way the app builds it: the
    /// core prepares the signed attributes (signing time `signed_at`, Unix seconds),
    /// the key (openssl, standing in for the token) signs their digest, the core
    /// assembles the `SignedData`.
    pub fn cms_sign_with_core(&self, document_digest: &[u8; 32], signed_at: i64) -> Vec<u8> {
        use securesign_core::backend::SignatureScheme;
        use securesign_core::digest::Sha256Digest;
        use securesign_core::verify::VerifyingKey;
        let prepared = securesign_core::cms::prepare(
            &Sha256Digest(*document_digest),
            time::OffsetDateTime::from_unix_timestamp(signed_at).unwrap(),
        )
        .unwrap();
        let signature = self.sign(&prepared.to_sign.0);
        let scheme: SignatureScheme = VerifyingKey::from_certificate_der(&self.cert_der)
            .unwrap()
            .algorithm();
        securesign_core::cms::assemble(&prepared, &self.cert_der, scheme, &signature).unwrap()
    }

    /// Signs a prehashed SHA-256 digest with `openssl pkeyutl` (as a token would).
    pub fn sign(&self, digest: &[u8; 32]) -> Vec<u8> {
        let input = self.dir.path().join("digest.bin");
        std::fs::write(&input, digest).unwrap();
        openssl(&[
            "pkeyutl",
            "-sign",
            "-inkey",
            self.key.to_str().unwrap(),
            "-pkeyopt",
            "digest:sha256",
            "-in",
            input.to_str().unwrap(),
        ])
    }
}

/// Runs the real binary's admin command; returns stdout and stderr (asserts success).
pub fn cli_full(db: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(database_args(db))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "securesign-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// With the admin CLI: a tenant "Example Portal" with `origins` as its domains; its id.
pub fn cli_tenant(db: &Path, origins: &[&str]) -> String {
    let tenant = cli(db, &["tenant", "create", "--name", "Example Portal"])
        .trim()
        .to_owned();
    for origin in origins {
        cli(db, &["domain", "add", "--tenant", &tenant, origin]);
    }
    tenant
}

/// With the admin CLI: a new `mode` key of `tenant` (`extra`: more `key create`
/// arguments); the key.
pub fn cli_key(db: &Path, tenant: &str, mode: &str, extra: &[&str]) -> String {
    let mut args = vec!["key", "create", "--tenant", tenant, "--mode", mode];
    args.extend_from_slice(extra);
    cli(db, &args).trim().to_owned()
}

/// Runs the real binary's admin command; returns stdout (asserts success).
pub fn cli(db: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(database_args(db))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "securesign-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `GET {base}/v1/auth/session/{session}` with `key` (a portal reading a session through
/// the server or balancer at `base`): the answer's body.
pub async fn session_status(http: &reqwest::Client, base: &str, key: &str, session: &str) -> Value {
    http.get(format!("{base}/v1/auth/session/{session}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The real binary serving on an ephemeral loopback port; stopped (by PID) on drop.
pub struct BinaryServer {
    child: Child,
    pub addr: SocketAddr,
    pub stderr_path: PathBuf,
}

impl BinaryServer {
    /// Starts `securesign-server serve` on `db`, logging at debug level into `log`.
    pub fn spawn(db: &Path, log: &Path) -> Self {
        Self::spawn_with(db, log, &[])
    }

    /// [`BinaryServer::spawn`] with extra `serve` arguments (after the lab's trust
    /// arguments, [`lab_trust_args`]); the log is appended to.
    pub fn spawn_with(db: &Path, log: &Path, extra: &[&str]) -> Self {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
            .args(database_args(db))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(lab_trust_args())
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            stderr_path: log.to_owned(),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /v1/auth/session/{session}` with `key`: the answer's body.
    pub async fn session_status(&self, http: &reqwest::Client, key: &str, session: &str) -> Value {
        session_status(http, &self.base(), key, session).await
    }

    /// The server process's id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for a graceful exit (SIGKILL after 10 s).
    pub fn stop(mut self) {
        self.terminate();
    }

    /// SIGKILL, as a crash: no graceful shutdown, nothing flushed by the server.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
