//! Request bodies (and the request id and `Origin` header) through the server's real
//! router, in process, over a real SQLite file: validate, session creation, results
//! (raw and CMS, for a fresh session each), sign-request reads and cancels.
//!
//! Input: a selector byte (bits 0-2: the route; bit 4: the live key instead of the test
//! key), then the body (or the path id / the `Origin` header value).
//!
//! Properties beyond "no panic": no `5xx`; every answer is JSON, errors in the API's
//! envelope with an `SS_*` code and the status that belongs to it; validate accepts only
//! whitelisted origins (and live keys only https ones); a created session's deep link
//! parses and opens a pending request with as many documents as were posted; a result
//! either completes the session with every document signed, or is refused and leaves
//! the session pending (nothing lost, nothing half-stored).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http_body_util::BodyExt;
use securesign_core::deeplink::SignLink;
use securesign_core::ErrorCode;
use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;
use securesign_server::http::error::status_of;
use securesign_server::origin::Origin;
use securesign_server::{router, AppState, ManualClock, RouterOptions, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::cert_cms;

/// The server's clock (the same instant the certificate target judges at).
pub const NOW: i64 = cert_cms::NOW;
/// The whitelisted https origin.
pub const PORTAL: &str = "https://portal.example.gov.in";
/// The whitelisted loopback origin (test keys only).
pub const LOCAL: &str = "http://localhost:3000";
/// The documents of the sessions results are posted to: id and SHA-256 digest.
pub const DOCUMENTS: [(&str, [u8; 32]); 2] = [("doc-1", [0x11; 32]), ("doc-2", [0x22; 32])];

/// Inputs run on one database before a fresh one is made (sessions pile up).
const INPUTS_PER_DATABASE: usize = 20_000;

struct Env {
    runtime: tokio::runtime::Runtime,
    store: Store,
    live_key: String,
    test_key: String,
    inputs: usize,
    _dir: tempfile::TempDir,
}

impl Env {
    fn open() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, live_key, test_key) = runtime.block_on(async {
            let store = Store::open(&dir.path().join("fuzz.db"))
                .await
                .expect("store");
            let clock = ManualClock::starting_at(NOW - 3600);
            let admin = Admin::new(&store, &clock);
            let tenant = admin.create_tenant("Fuzz Portal").await.expect("tenant");
            admin.add_domain(&tenant.id, PORTAL).await.expect("domain");
            admin.add_domain(&tenant.id, LOCAL).await.expect("domain");
            let live = admin
                .create_key(&tenant.id, KeyMode::Live, 120)
                .await
                .expect("live key");
            let test = admin
                .create_key(&tenant.id, KeyMode::Test, 120)
                .await
                .expect("test key");
            (
                store,
                live.secret.expose().to_owned(),
                test.secret.expose().to_owned(),
            )
        });
        Self {
            runtime,
            store,
            live_key,
            test_key,
            inputs: 0,
            _dir: dir,
        }
    }
}

/// Whether to print every call (`SECURESIGN_FUZZ_TRACE=1`), to see what an input does.
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SECURESIGN_FUZZ_TRACE").is_some())
}

thread_local! {
    static ENV: RefCell<Option<Env>> = const { RefCell::new(None) };
}

/// Runs one input.
pub fn run(data: &[u8]) {
    ENV.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot
            .as_ref()
            .is_some_and(|env| env.inputs >= INPUTS_PER_DATABASE)
        {
            if let Some(old) = slot.take() {
                old.runtime.block_on(old.store.close());
            }
        }
        let env = slot.get_or_insert_with(Env::open);
        env.inputs += 1;
        let key = if data.first().is_some_and(|b| b & 0x10 != 0) {
            env.live_key.clone()
        } else {
            env.test_key.clone()
        };
        let live = key == env.live_key;
        // A fresh state per input: the rate limiter, key cache and clock start over, so
        // an input means the same whatever ran before it.
        let state = AppState::with_trust(
            env.store.clone(),
            Arc::new(ManualClock::starting_at(NOW)),
            cert_cms::signer_trust(),
        );
        let app = router(state, RouterOptions::default());
        let case = Case { app, key, live };
        env.runtime.block_on(case.run(data));
    });
}

struct Case {
    app: Router,
    key: String,
    live: bool,
}

/// An answer: status and JSON body.
struct Reply {
    status: StatusCode,
    json: Value,
}

impl Case {
    async fn run(&self, data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else {
            return;
        };
        match selector & 0x07 {
            0 => self.validate(body).await,
            1 => self.create_session(body).await,
            2 => self.result("raw", body).await,
            3 => self.result("cms", body).await,
            4 => self.sign_request(body).await,
            _ => self.origin_header(body).await,
        }
    }

    /// `GET uri` with no body (with the portal key when `authed`).
    async fn get(&self, uri: &str, authed: bool) -> Reply {
        self.call(Method::GET, uri, authed, None, Vec::new()).await
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        authed: bool,
        origin: Option<HeaderValue>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if authed {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let mut request = request.body(Body::from(body)).expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40_000))));
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        assert!(
            !status.is_server_error(),
            "{uri} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        if trace() {
            eprintln!("{uri} -> {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{uri} answered {status} with a non-JSON body ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        if status.is_success() {
            assert_ne!(json["success"], json!(false), "{uri}: {json}");
        } else {
            assert_eq!(json["success"], json!(false), "{uri}: {json}");
            let code: ErrorCode = serde_json::from_value(json["error"]["code"].clone())
                .unwrap_or_else(|e| panic!("{uri}: no SS_* code ({e}): {json}"));
            assert_eq!(status_of(code), status, "{uri}: {code:?} with {status}");
        }
        Reply { status, json }
    }

    async fn validate(&self, body: &[u8]) {
        let reply = self
            .call(Method::POST, "/v1/auth/validate", true, None, body.to_vec())
            .await;
        if reply.status == StatusCode::OK {
            self.check_accepted_origin(body);
        }
    }

    /// The origin a successful validate or session creation was asked for is one of the
    /// whitelist's, and https for live keys.
    fn check_accepted_origin(&self, body: &[u8]) {
        let sent: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
        let origin = sent["origin"]
            .as_str()
            .expect("an accepted body has an origin");
        let origin = Origin::parse(origin).expect("an accepted origin parses");
        let allowed: &[&str] = if self.live {
            &[PORTAL]
        } else {
            &[PORTAL, LOCAL]
        };
        assert!(
            allowed.contains(&origin.as_str()),
            "accepted origin {origin} (live: {})",
            self.live
        );
    }

    async fn origin_header(&self, value: &[u8]) {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        let body = json!({"origin": PORTAL, "platform": "web"}).to_string();
        let reply = self
            .call(
                Method::POST,
                "/v1/auth/validate",
                true,
                Some(value.clone()),
                body.into_bytes(),
            )
            .await;
        if reply.status == StatusCode::OK {
            let header = value.to_str().expect("an accepted Origin header is text");
            let origin = Origin::parse(header).expect("an accepted Origin header parses");
            assert_eq!(origin.as_str(), PORTAL, "Origin header {header:?} accepted");
        }
    }

    async fn create_session(&self, body: &[u8]) {
        let reply = self
            .call(Method::POST, "/v1/auth/session", true, None, body.to_vec())
            .await;
        if reply.status != StatusCode::CREATED {
            return;
        }
        self.check_accepted_origin(body);
        let sent: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
        let posted = sent["documents"].as_array().map_or(0, Vec::len);
        let (session_id, request_id) = Self::created(&reply);
        let request = self
            .get(&format!("/v1/sign-requests/{request_id}"), false)
            .await;
        assert_eq!(request.status, StatusCode::OK, "{}", request.json);
        assert_eq!(request.json["status"], "pending");
        let documents = request.json["documents"].as_array().map_or(0, Vec::len);
        assert_eq!(documents, posted, "documents posted and stored differ");
        let status = self
            .get(&format!("/v1/auth/session/{session_id}"), true)
            .await;
        assert_eq!(status.status, StatusCode::OK);
        assert_eq!(status.json["status"], "pending");
    }

    /// The session id and the request id (from the deep link) of a created session.
    fn created(reply: &Reply) -> (String, String) {
        let link = reply.json["deepLink"].as_str().expect("deepLink");
        let link = SignLink::parse(link).expect("the server's deep link parses");
        let session_id = reply.json["sessionId"].as_str().expect("sessionId");
        (session_id.to_owned(), link.request_id.as_str().to_owned())
    }

    async fn result(&self, format: &str, body: &[u8]) {
        let documents: Vec<Value> = DOCUMENTS
            .iter()
            .map(|(id, digest)| {
                json!({"id": id, "name": format!("{id}.pdf"), "digestAlgorithm": "SHA-256",
                       "digest": BASE64.encode(digest)})
            })
            .collect();
        let session = json!({"origin": PORTAL, "documents": documents, "signatureFormat": format});
        let created = self
            .call(
                Method::POST,
                "/v1/auth/session",
                true,
                None,
                session.to_string().into_bytes(),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
        let (session_id, request_id) = Self::created(&created);
        let reply = self
            .call(
                Method::POST,
                &format!("/v1/sign-requests/{request_id}/result"),
                false,
                None,
                body.to_vec(),
            )
            .await;
        let request = self
            .get(&format!("/v1/sign-requests/{request_id}"), false)
            .await;
        let status = self
            .get(&format!("/v1/auth/session/{session_id}"), true)
            .await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.json["status"], "completed");
            assert_eq!(request.status, StatusCode::CONFLICT, "{}", request.json);
            assert_eq!(status.json["status"], "completed");
            assert!(status.json["signerCertificate"].is_string());
            let trusted = status.json["signer"]["trusted"].as_bool();
            assert!(trusted.is_some(), "no signer evidence: {}", status.json);
            if self.live {
                assert_eq!(trusted, Some(true), "a live session completed untrusted");
            }
            let sent: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
            for document in status.json["documents"].as_array().expect("documents") {
                let stored = document["signature"]
                    .as_str()
                    .expect("every document signed");
                let posted = sent["signatures"]
                    .as_array()
                    .and_then(|all| {
                        all.iter()
                            .find(|s| s["documentId"] == document["id"])
                            .and_then(|s| s["signature"].as_str())
                    })
                    .expect("a stored signature was posted");
                assert_eq!(
                    BASE64.decode(stored).ok(),
                    BASE64.decode(posted).ok(),
                    "the stored signature is not the posted one"
                );
            }
        } else {
            assert_eq!(
                request.status,
                StatusCode::OK,
                "refused result: {}",
                request.json
            );
            assert_eq!(request.json["status"], "pending");
            assert_eq!(status.json["status"], "pending");
            assert!(status.json.get("signerCertificate").is_none());
            for document in status.json["documents"].as_array().expect("documents") {
                assert!(
                    document.get("signature").is_none(),
                    "half-stored: {document}"
                );
            }
        }
    }

    async fn sign_request(&self, id: &[u8]) {
        let mut path = String::new();
        for &b in id {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
        let read = self.get(&format!("/v1/sign-requests/{path}"), false).await;
        assert_ne!(
            read.status,
            StatusCode::OK,
            "a made-up request id was found"
        );
        let cancel = self
            .call(
                Method::POST,
                &format!("/v1/sign-requests/{path}/cancel"),
                false,
                None,
                Vec::new(),
            )
            .await;
        assert_ne!(
            cancel.status,
            StatusCode::OK,
            "a made-up request id was cancelled"
        );
    }
}
