//! Three real `securesign-server` processes on one PostgreSQL database behind a real
//! HAProxy (Debian's `haproxy`, installed by `server/install-test-deps.sh`) on loopback
//! ([`balancer_support::Haproxy`]).
//!
//! * the portal's and the app's whole flow through the balancer (create, read, result,
//!   status, callback);
//! * the real `securesign` CLI (`sign --request … --api <balancer>`) signing a portal's
//!   session on a SoftHSM2 token after the instance that created the session was killed,
//!   the result read through every other instance and judged by `openssl cms -verify`;
//! * a fault test: for a fixed time, clients create and complete sessions through the
//!   balancer while one instance after the other is killed with SIGKILL (and started
//!   again) every few seconds; afterwards, everything clients were told (each `201`
//!   session, each `200` result) is in the database, and each completed session's
//!   callback was answered 2xx by the portal: nothing lost.
//!
//! PostgreSQL only (run through `server/tests/with-postgres.sh`): SQLite is one process
//! by design; the tests say so and return. `SECURESIGN_FAULT_SECONDS` sets the fault
//! test's load duration (default 30).

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod balancer_support;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use balancer_support::{free_port, Haproxy, BACKEND_HEADER};
use common::database::postgres_url;
use common::receiver::Receiver;
use common::{
    b64, cli_key, cli_tenant, database_args, lab_pki, lab_trust_args, session_ids, session_status,
    sha256, Signer, LOCAL, PORTAL,
};
use securesign_testlab::{LabToken, Module};
use serde_json::{json, Value};

fn skip_on_sqlite() -> bool {
    let skip = !common::is_postgres();
    if skip {
        eprintln!("skipped on SQLite (one process by design: several instances need PostgreSQL)");
    }
    skip
}

/// One server instance on a fixed port (the balancer's configuration names it).
struct Instance {
    port: u16,
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Instance {
    fn new(port: u16, log: PathBuf, args: &[&str]) -> Self {
        Self {
            port,
            log,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        }
    }

    /// Starts the binary on `db` and waits for its "listening on" line.
    fn start(&mut self, db: &Path) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
            .args(database_args(db))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .args(lab_trust_args())
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("listening on"),
            "instance did not start: {line:?}"
        );
        self.child = Some(child);
    }

    /// SIGKILL: no graceful shutdown.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database with a tenant (origins: LOCAL and the receiver's) and a test key, three
/// instances on it and the balancer in front.
struct Setup {
    _dir: tempfile::TempDir,
    db: PathBuf,
    key: String,
    instances: Vec<Instance>,
    balancer: Haproxy,
}

fn setup(receiver: &Receiver, args: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let tenant = cli_tenant(&db, &[LOCAL, &receiver.origin()]);
    let key = cli_key(&db, &tenant, "test", &["--rpm", "1000000"]);
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| {
            Instance::new(
                free_port(),
                dir.path().join(format!("server-{i}.log")),
                args,
            )
        })
        .collect();
    for instance in &mut instances {
        instance.start(&db);
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
    let balancer = Haproxy::start(dir.path(), &ports);
    Setup {
        _dir: dir,
        db,
        key,
        instances,
        balancer,
    }
}

const SERVE_ARGS: &[&str] = &[
    "--allow-private-callbacks",
    "--webhook-backoff",
    "200ms",
    "--webhook-max-attempts",
    "30",
    "--webhook-timeout",
    "2s",
];

fn session_body(receiver: &Receiver, document: &[u8]) -> Value {
    json!({"origin": LOCAL, "callbackUrl": receiver.url(), "signatureFormat": "cms",
        "documents": [{"id": "c", "name": "c.pdf", "digestAlgorithm": "SHA-256",
            "digest": b64(&sha256(document))}]})
}

fn result_body(signer: &Signer, document: &[u8]) -> Value {
    json!({"certificate": b64(&signer.cert_der),
        "signatures": [{"documentId": "c", "signature": b64(&signer.cms_sign_with_openssl(document))}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_and_app_flow_runs_through_haproxy_over_three_instances() {
    if skip_on_sqlite() {
        return;
    }
    let receiver = Receiver::start(|_| 200).await;
    let s = setup(&receiver, SERVE_ARGS);
    let lb = s.balancer.base();
    let http = reqwest::Client::new();
    let signer = Signer::new("rsa");

    for round in 0..3 {
        let document = format!("contract {round}");
        let created = http
            .post(format!("{lb}/v1/auth/session"))
            .bearer_auth(&s.key)
            .json(&session_body(&receiver, document.as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let (session, request_id) = session_ids(&created.json().await.unwrap());
        // The app: the request, then the result (each may land on another instance).
        let request = http
            .get(format!("{lb}/v1/sign-requests/{request_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(request.status(), 200);
        let result = http
            .post(format!("{lb}/v1/sign-requests/{request_id}/result"))
            .json(&result_body(&signer, document.as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(result.status(), 200, "{}", result.text().await.unwrap());
        let status = session_status(&http, &lb, &s.key, &session).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
    let hits = receiver.wait_for_hits(3).await;
    let ids: BTreeSet<&str> = hits
        .iter()
        .map(|h| h.header("x-securesign-event-id"))
        .collect();
    assert_eq!(ids.len(), 3);
    drop(s);
}

/// What the clients were told during the fault test.
#[derive(Default)]
struct Told {
    /// `201` answers: session id → request id.
    created: BTreeMap<String, String>,
    /// Sessions whose result was answered `200`.
    completed: BTreeSet<String>,
    /// Answers that were neither (balancer 502/503, connection errors), by kind.
    failures: BTreeMap<String, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_instances_under_load_loses_no_session_result_or_callback() {
    if skip_on_sqlite() {
        return;
    }
    let seconds: u64 = std::env::var("SECURESIGN_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let receiver = Receiver::start(|_| 200).await;
    let mut s = setup(&receiver, SERVE_ARGS);
    let lb = s.balancer.base();
    let told = Arc::new(Mutex::new(Told::default()));
    let running = Arc::new(AtomicBool::new(true));
    let signer = Arc::new(Signer::new("rsa"));
    // Signatures are made once (openssl per request would dominate the load).
    let document = b"contract".to_vec();
    let result = result_body(&signer, &document);
    let create = session_body(&receiver, &document);

    // Bounded load: 4 clients, one request at a time each.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (told, running, lb, key) =
                (told.clone(), running.clone(), lb.clone(), s.key.clone());
            let (create, result) = (create.clone(), result.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let failed = |kind: String| {
                    *told.lock().unwrap().failures.entry(kind).or_default() += 1;
                };
                while running.load(Ordering::Relaxed) {
                    let created = http
                        .post(format!("{lb}/v1/auth/session"))
                        .bearer_auth(&key)
                        .json(&create)
                        .send()
                        .await;
                    let (session, request_id) = match created {
                        Ok(r) if r.status() == 201 => match r.json::<Value>().await {
                            Ok(body) => session_ids(&body),
                            Err(e) => {
                                failed(format!("create body: {e}"));
                                continue;
                            }
                        },
                        Ok(r) => {
                            failed(format!("create {}", r.status()));
                            continue;
                        }
                        Err(_) => {
                            failed("create: connection".into());
                            continue;
                        }
                    };
                    told.lock()
                        .unwrap()
                        .created
                        .insert(session.clone(), request_id.clone());
                    // The result, retried (as the app does) until an answer says what
                    // happened: 200, or 409 when an earlier try was applied unheard.
                    for _ in 0..20 {
                        match http
                            .post(format!("{lb}/v1/sign-requests/{request_id}/result"))
                            .json(&result)
                            .send()
                            .await
                        {
                            Ok(r) if r.status() == 200 => {
                                told.lock().unwrap().completed.insert(session.clone());
                                break;
                            }
                            Ok(r) if r.status() == 409 => break,
                            Ok(r) => failed(format!("result {}", r.status())),
                            Err(_) => failed("result: connection".into()),
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();

    // The killer: every 3 s one instance (in turn) gets SIGKILL and is started again.
    let start = Instant::now();
    let mut kills = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let instance = &mut s.instances[kills % 3];
        instance.kill();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let db = s.db.clone();
        instance.start(&db);
    }
    running.store(false, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let told = std::mem::take(&mut *told.lock().unwrap());
    eprintln!(
        "fault test: {seconds} s, {kills} SIGKILLs, {} sessions created, {} completed, failures told: {:?}",
        told.created.len(),
        told.completed.len(),
        told.failures
    );
    assert!(
        kills >= 3 && told.completed.len() >= 20,
        "too little load to mean anything"
    );

    // What the database holds.
    let pool = sqlx::PgPool::connect(&postgres_url(&s.db)).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    let stored: BTreeMap<String, String> = rows.into_iter().collect();
    for session in told.created.keys() {
        assert!(
            stored.contains_key(session),
            "session {session} was told 201 but is lost"
        );
    }
    for session in &told.completed {
        assert_eq!(
            stored[session], "completed",
            "session {session} was told its result was taken"
        );
    }
    // Every completed session's callback is delivered (a claim held by a killed
    // instance is taken over once its lease lapses: up to the lease, ~35 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    let events: Vec<(String, String, String)> = loop {
        let events: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, session_id, status FROM webhook_events")
                .fetch_all(&pool)
                .await
                .unwrap();
        if events.iter().all(|(_, _, status)| status == "delivered") {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "callbacks not delivered: {:?}",
            events
                .iter()
                .filter(|e| e.2 != "delivered")
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let completed_in_db: BTreeSet<&String> = stored
        .iter()
        .filter(|(_, st)| *st == "completed")
        .map(|(id, _)| id)
        .collect();
    let with_event: BTreeSet<&String> = events.iter().map(|(_, session, _)| session).collect();
    assert_eq!(
        completed_in_db, with_event,
        "a completed session without its callback event"
    );
    let hits = receiver.hits();
    let heard: BTreeMap<String, usize> = hits.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.header("x-securesign-event-id").to_owned())
            .or_default() += 1;
        m
    });
    for (event, _, _) in &events {
        assert!(
            heard.contains_key(event),
            "callback {event} marked delivered, never received"
        );
    }
    let duplicates = heard.values().filter(|n| **n > 1).count();
    // Only events in flight in a killed instance may come twice: at most the worker's
    // concurrency (8 attempts at once) per kill.
    assert!(
        duplicates <= kills * 8,
        "{duplicates} duplicates for {kills} kills"
    );
    eprintln!(
        "fault test: {} callbacks delivered, {} received twice or more (allowed by WEBHOOKS.md: \
         an instance killed after the portal answered, before it recorded the answer)",
        events.len(),
        duplicates
    );
    pool.close().await;
}

/// The `securesign` CLI binary (package `securesign-cli`) beside this package's
/// binary: `cargo nextest run --workspace` builds it; a run of this package alone builds
/// it here once.
fn cli_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_securesign-server"))
        .parent()
        .unwrap();
    let bin = dir.join(format!("securesign{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "securesign-cli", "--bin", "securesign"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the securesign CLI");
    }
    bin
}

/// `securesign --module <token's module> sign --request <link> --api <api> --key
/// signer-ec --yes --pin-stdin --json`, the PIN written to its standard input (never on
/// the command line); its exit status and JSON output.
fn cli_sign(token: &LabToken, link: &str, api: &str) -> (std::process::ExitStatus, Value) {
    use std::io::Write as _;
    let mut child = Command::new(cli_binary())
        .arg("--module")
        .arg(token.module_path())
        .args(["sign", "--request", link, "--api", api])
        .args(["--key", "signer-ec", "--yes", "--pin-stdin", "--json"])
        .envs(token.env())
        .env_remove("SECURESIGN_PKCS11_MODULE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", token.user_pin()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "securesign printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_securesign_cli_signs_through_haproxy_after_the_creating_instance_is_killed() {
    if skip_on_sqlite() {
        return;
    }
    // A live key (its sessions complete only with a trusted signer) and a SoftHSM2 token
    // whose certificates the lab PKI issued: the instances' trust anchor.
    let pki = lab_pki();
    let token = LabToken::builder(Module::SoftHsm2)
        .shared_pki(pki.dir())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let key = cli_key(&db, &tenant, "live", &[]);
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| Instance::new(free_port(), dir.path().join(format!("server-{i}.log")), &[]))
        .collect();
    for instance in &mut instances {
        instance.start(&db);
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
    let balancer = Haproxy::start(dir.path(), &ports);
    balancer.wait_until_serving();
    let lb = balancer.base();
    let http = reqwest::Client::new();

    // The portal creates a session through the balancer, naming the token's EC
    // certificate as the expected signer.
    let document = b"%PDF-1.7 tender through the balancer".to_vec();
    let document_path = dir.path().join("tender.pdf");
    std::fs::write(&document_path, &document).unwrap();
    let thumbprint = hex::encode(sha256(token.ec_cert_der()));
    let created = http
        .post(format!("{lb}/v1/auth/session"))
        .bearer_auth(&key)
        .json(&json!({"origin": PORTAL, "signatureFormat": "cms",
            "signer": {"certificateSha256": [thumbprint]},
            "documents": [{"id": "t", "name": "tender.pdf", "digestAlgorithm": "SHA-256",
                "digest": b64(&sha256(&document))}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let creator = created.headers()[BACKEND_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let created: Value = created.json().await.unwrap();
    let session = created["sessionId"].as_str().unwrap().to_owned();
    let link = created["deepLink"].as_str().unwrap().to_owned();

    // The instance that created it dies (SIGKILL, no shutdown).
    let killed: usize = creator.strip_prefix('s').unwrap().parse().unwrap();
    instances[killed].kill();

    // The real CLI, as a signer runs it: the request through the balancer, the PIN from
    // stdin, the CMS signature made on the token, the result posted through the balancer.
    let api = lb.clone();
    let (status, out) = tokio::task::spawn_blocking(move || {
        let result = cli_sign(&token, &link, &api);
        drop(token);
        result
    })
    .await
    .unwrap();
    assert!(status.success(), "{out}");
    assert_eq!(out["request"]["tenant"]["displayName"], "Example Portal");
    assert_eq!(out["result"]["signed"], 1, "{out}");
    assert_eq!(out["result"]["status"], "completed", "{out}");

    // The portal reads the result through each surviving instance directly, and through
    // the killed one once it is back: one truth, completed by a trusted signer.
    instances[killed].start(&db);
    let mut signatures = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let base = format!("http://127.0.0.1:{}", instance.port);
        let status = session_status(&http, &base, &key, &session).await;
        assert_eq!(status["status"], "completed", "instance {i}: {status}");
        assert_eq!(status["signer"]["trusted"], true, "instance {i}: {status}");
        signatures.push(
            status["documents"][0]["signature"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(signatures.windows(2).all(|w| w[0] == w[1]));

    // openssl judges the CMS signature: over the document, by the token's certificate,
    // which chains through the lab's licensed CA to its root.
    use base64::Engine as _;
    let chain = dir.path().join("lab-chain.pem");
    let mut pem = std::fs::read(pki.root_pem()).unwrap();
    pem.extend(std::fs::read(pki.ca_pem()).unwrap());
    std::fs::write(&chain, pem).unwrap();
    let p7s = dir.path().join("tender.p7s");
    std::fs::write(
        &p7s,
        base64::engine::general_purpose::STANDARD
            .decode(&signatures[0])
            .unwrap(),
    )
    .unwrap();
    let verified = Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(&p7s)
        .arg("-content")
        .arg(&document_path)
        .arg("-CAfile")
        .arg(&chain)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    drop(balancer);
}
