//! A portal's callback endpoint for tests: a real axum server on 127.0.0.1 that records
//! every request and answers each with the status a script picks by its number.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub answered: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The `v1=` entries of `X-SecureSign-Signature` (two during a secret roll's grace).
    pub fn signature_entries(&self) -> Vec<&str> {
        self.header("x-securesign-signature").split(", ").collect()
    }

    /// Whether `X-SecureSign-Signature` checks out the way a portal checks it:
    /// HMAC-SHA256 with the webhook secret over `"<X-SecureSign-Timestamp>.<raw body>"`
    /// equals one of its `v1=` entries.
    pub fn is_signed_with(&self, secret: &str) -> bool {
        let timestamp = self.header("x-securesign-timestamp");
        assert!(timestamp.parse::<i64>().is_ok(), "timestamp {timestamp:?}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        self.signature_entries().contains(&expected.as_str())
    }

    pub fn assert_signed_with(&self, secret: &str) {
        assert!(
            self.is_signed_with(secret),
            "bad signature {:?}",
            self.header("x-securesign-signature")
        );
    }
}

type Script = dyn Fn(usize) -> u16 + Send + Sync;

struct Shared {
    hits: Mutex<Vec<Hit>>,
    script: Box<Script>,
}

/// The receiving server; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn record(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut hits = shared.hits.lock().unwrap();
    let answered = (shared.script)(hits.len() + 1);
    hits.push(Hit {
        path: uri.path().to_owned(),
        headers,
        body,
        answered,
    });
    let status = StatusCode::from_u16(answered).unwrap();
    if status.is_redirection() {
        (status, [(header::LOCATION, "/elsewhere")]).into_response()
    } else {
        status.into_response()
    }
}

impl Receiver {
    /// Starts a receiver; `script(n)` is the HTTP status for the n-th request (1-based).
    pub async fn start(script: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            hits: Mutex::new(Vec::new()),
            script: Box::new(script),
        });
        let app = Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>`: the origin to whitelist.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The callback URL (with a path and a query, as portals use them).
    pub fn url(&self) -> String {
        format!("{}/securesign/events?portal=1", self.origin())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Waits (polling, at most 15 s) until `n` requests arrived; returns them.
    pub async fn wait_for_hits(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} callback requests arrived",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
