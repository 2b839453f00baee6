//! Crash safety of the real `securesign-server` binary: killed with SIGKILL under a
//! bounded loopback load (portals creating sessions, the app posting results and
//! cancels, callbacks queued), several times over the same database file. Afterwards
//! every session a portal was told exists (`201`), every result the app was told was
//! stored (`200`) is there with its signature, every cancel too, and every callback
//! those answers queued is in the outbox, exactly once; the file passes SQLite's
//! integrity check (on SQLite). Runs on both engines. The counts are printed (`--no-capture`).

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::database::count;
use common::receiver::Receiver;
use common::{b64, cli_key, cli_tenant, session_ids, sha256, BinaryServer, Signer, LOCAL};
use serde_json::{json, Value};

/// Rounds of load, each ended by a SIGKILL.
const ROUNDS: usize = 5;
/// Concurrent clients (each one request at a time): the load is bounded.
const CLIENTS: usize = 4;
/// How long each round's load runs before the kill, in milliseconds: varied so the
/// kill lands in different phases of the requests.
const KILL_AFTER_MS: [u64; ROUNDS] = [350, 600, 450, 800, 500];

/// What the server told the clients.
#[derive(Default)]
struct Ledger {
    /// Sessions answered `201`: (sessionId, requestId).
    created: Vec<(String, String)>,
    /// Sessions whose result was answered `200`.
    completed: Vec<String>,
    /// Sessions whose cancel was answered `200`.
    cancelled: Vec<String>,
    /// Requests that got no answer (the kill came first).
    unanswered: usize,
    /// Results and cancels refused by the per-address limit of the app routes.
    limited: usize,
}

struct Load {
    http: reqwest::Client,
    base: String,
    key: String,
    callback: String,
    digest: [u8; 32],
    certificate: String,
    signature: String,
}

impl Load {
    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Option<(u16, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let body = response.json().await.ok()?;
        Some((status, body))
    }

    /// One client: create a session, then post its result (or, every fourth, cancel
    /// it), until the server stops answering.
    async fn client(self: Arc<Self>, number: usize, ledger: Arc<Mutex<Ledger>>) {
        for round in 0usize.. {
            let body = json!({"origin": LOCAL, "callbackUrl": self.callback,
                "documents": [{"id": "d", "name": "d.pdf", "digestAlgorithm": "SHA-256",
                               "digest": b64(&self.digest)}]});
            let Some((status, created)) =
                self.post("/v1/auth/session", Some(&self.key), &body).await
            else {
                ledger.lock().unwrap().unanswered += 1;
                return;
            };
            assert_eq!(status, 201, "{created}");
            let (session, request) = session_ids(&created);
            ledger
                .lock()
                .unwrap()
                .created
                .push((session.clone(), request.clone()));
            let cancel = (round + number) % 4 == 3;
            let answer = if cancel {
                self.post(
                    &format!("/v1/sign-requests/{request}/cancel"),
                    None,
                    &json!({}),
                )
                .await
            } else {
                let result = json!({"certificate": self.certificate, "signatures": [
                    {"documentId": "d", "signature": self.signature}]});
                self.post(
                    &format!("/v1/sign-requests/{request}/result"),
                    None,
                    &result,
                )
                .await
            };
            let Some((status, answer)) = answer else {
                ledger.lock().unwrap().unanswered += 1;
                return;
            };
            if status == 429 {
                // The app routes' per-address limit: nothing was told, nothing to check.
                ledger.lock().unwrap().limited += 1;
                continue;
            }
            assert_eq!(status, 200, "{answer}");
            let mut ledger = ledger.lock().unwrap();
            if cancel {
                ledger.cancelled.push(session);
            } else {
                ledger.completed.push(session);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_session_result_or_callback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    let receiver = Receiver::start(|_| 200).await;
    let tenant = cli_tenant(&db, &[LOCAL, &receiver.origin()]);
    let key = cli_key(&db, &tenant, "test", &["--rpm", "100000"]);
    let signer = Signer::new("rsa");
    let digest = sha256(b"crash safety");
    // RSA PKCS#1 v1.5 is deterministic: one signature serves every session.
    let signature = b64(&signer.sign(&digest));
    let serve_args = ["--allow-private-callbacks", "--webhook-backoff", "200ms"];

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for kill_after in KILL_AFTER_MS {
        let server = BinaryServer::spawn_with(&db, &log, &serve_args);
        let load = Arc::new(Load {
            http: http.clone(),
            base: server.base(),
            key: key.clone(),
            callback: receiver.url(),
            digest,
            certificate: b64(&signer.cert_der),
            signature: signature.clone(),
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| tokio::spawn(Arc::clone(&load).client(n, Arc::clone(&ledger))))
            .collect();
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        server.crash();
        for client in clients {
            client.await.unwrap();
        }
    }

    // A last start on the same file: what the portals and the app were told is there.
    let server = BinaryServer::spawn_with(&db, &log, &serve_args);
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    for (session, _) in &ledger.created {
        let status = server.session_status(&http, &key, session).await;
        assert_eq!(status["success"], true, "{session} is lost: {status}");
        let expected = if ledger.completed.contains(session) {
            assert_eq!(status["documents"][0]["signature"], signature.as_str());
            "completed"
        } else if ledger.cancelled.contains(session) {
            "cancelled"
        } else {
            // Its result or cancel got no answer: either is allowed.
            continue;
        };
        assert_eq!(status["status"], expected, "{session}: {status}");
    }
    server.stop();

    if !common::is_postgres() {
        let files =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let check: String = files
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
    let mut callbacks = 0;
    for (sessions, event) in [
        (&ledger.completed, "session.completed"),
        (&ledger.cancelled, "session.cancelled"),
    ] {
        for session in sessions {
            let events = count(
                &db,
                &format!(
                    "SELECT count(*) FROM webhook_events WHERE session_id = $1 AND event_type = '{event}'"
                ),
                session,
            )
            .await;
            assert_eq!(events, 1, "{session}: {events} {event} callbacks queued");
            callbacks += 1;
        }
    }
    let stored_sessions = count(&db, "SELECT count(*) FROM sessions WHERE $1 = $1", "").await;
    let mut by_status = Vec::new();
    for status in ["delivered", "delivering", "failed", "pending"] {
        let n = count(
            &db,
            "SELECT count(*) FROM webhook_events WHERE status = $1",
            status,
        )
        .await;
        if n > 0 {
            by_status.push((status, n));
        }
    }
    println!(
        "{ROUNDS} SIGKILLs under {CLIENTS} clients: {} sessions acknowledged (201), {} stored \
         ({} committed whose answer the kill cut off), {} results and {} cancels \
         acknowledged (200), {callbacks} callbacks they queued all present; {} requests \
         unanswered, {} rate-limited; outbox by status {by_status:?}",
        ledger.created.len(),
        stored_sessions,
        stored_sessions - i64::try_from(ledger.created.len()).unwrap(),
        ledger.completed.len(),
        ledger.cancelled.len(),
        ledger.unanswered,
        ledger.limited,
    );
    assert!(
        ledger.completed.len() >= ROUNDS && !ledger.cancelled.is_empty(),
        "too little load to say anything: {} results, {} cancels",
        ledger.completed.len(),
        ledger.cancelled.len()
    );
    assert!(
        stored_sessions >= i64::try_from(ledger.created.len()).unwrap(),
        "sessions lost"
    );
}
