//! Test fixture: the real REST API on loopback, a fresh SoftHSM2 token, app settings
//! in a temp dir, and the app on Tauri's mock runtime with the real generated context
//! (so the capability file is enforced on every call).

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use securesign_app::settings::{Settings, TokenSource};
use securesign_core::biometric::BiometricAuthenticator;
use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;
use securesign_testlab::LabToken;
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow};

pub const PORTAL: &str = "https://portal.example.gov.in";

/// The REST API, served by its own runtime on 127.0.0.1.
pub struct Server {
    _dir: tempfile::TempDir,
    pub base: String,
    key: String,
    rt: tokio::runtime::Runtime,
}

impl Server {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db = dir.path().join("securesign.db");
        let (base, key) = rt.block_on(async move {
            let store = securesign_server::Store::open(&db).await.unwrap();
            let clock: Arc<dyn securesign_server::Clock> =
                Arc::new(securesign_server::SystemClock::new());
            let admin = Admin::new(&store, clock.as_ref());
            let tenant = admin.create_tenant("Example Portal").await.unwrap();
            admin.add_domain(&tenant.id, PORTAL).await.unwrap();
            // A test key: its results complete without a signer chain to a trust anchor
            // (`"trusted": false`); this server has none, and live keys' results would be
            // refused (SS_SIGNER_UNTRUSTED). Signer trust is the server's own tests' subject.
            let key = admin
                .create_key(&tenant.id, KeyMode::Test, 1000)
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = securesign_server::router(
                securesign_server::AppState::new(store, clock),
                securesign_server::RouterOptions::default(),
            );
            tokio::spawn(securesign_server::serve(
                listener,
                app,
                std::future::pending(),
            ));
            (format!("http://{addr}"), key.secret.expose().to_owned())
        });
        Self {
            _dir: dir,
            base,
            key,
            rt,
        }
    }

    /// Creates a signing request for `n` documents; returns its deep link.
    pub fn create_request(&self, n: usize) -> String {
        let documents: Vec<Value> = (0..n)
            .map(|i| {
                let digest = [(i % 250) as u8 + 1; 32];
                json!({
                    "id": format!("doc-{i}"),
                    "name": format!("Contract {i}.pdf"),
                    "digestAlgorithm": "SHA-256",
                    "digest": base64::engine::general_purpose::STANDARD.encode(digest),
                })
            })
            .collect();
        let (base, key) = (self.base.clone(), self.key.clone());
        self.rt.block_on(async move {
            let reply = reqwest::Client::new()
                .post(format!("{base}/v1/auth/session"))
                .bearer_auth(key)
                .json(&json!({"origin": PORTAL, "documents": documents}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status().as_u16(), 201);
            let body: Value = reply.json().await.unwrap();
            body["deepLink"].as_str().unwrap().to_owned()
        })
    }

    /// `POST /v1/auth/session` for `n` documents with `extra` fields merged into the body;
    /// returns the HTTP status and the answer.
    pub fn create_session(&self, n: usize, extra: Value) -> (u16, Value) {
        let documents: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "id": format!("doc-{i}"),
                    "name": format!("Contract {i}.pdf"),
                    "digestAlgorithm": "SHA-256",
                    "digest": base64::engine::general_purpose::STANDARD.encode([(i % 250) as u8 + 1; 32]),
                })
            })
            .collect();
        let mut body = json!({"origin": PORTAL, "documents": documents});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (base, key) = (self.base.clone(), self.key.clone());
        self.rt.block_on(async move {
            let reply = reqwest::Client::new()
                .post(format!("{base}/v1/auth/session"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            (status, reply.json().await.unwrap_or(Value::Null))
        })
    }

    /// The portal's view: `GET /v1/auth/session/{sessionId}` with the API key.
    pub fn portal_session(&self, session_id: &str) -> (u16, Value) {
        let (base, key, id) = (self.base.clone(), self.key.clone(), session_id.to_owned());
        self.rt.block_on(async move {
            let reply = reqwest::Client::new()
                .get(format!("{base}/v1/auth/session/{id}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            (status, reply.json().await.unwrap_or(Value::Null))
        })
    }

    /// The portal's view of a session (`GET /v1/auth/session/{id}` needs the id, so we
    /// read the request through the app endpoint instead).
    pub fn request_status(&self, link: &str) -> (u16, Value) {
        let id = link.rsplit('=').next().unwrap().to_owned();
        let base = self.base.clone();
        self.rt.block_on(async move {
            let reply = reqwest::get(format!("{base}/v1/sign-requests/{id}"))
                .await
                .unwrap();
            (reply.status().as_u16(), reply.json().await.unwrap())
        })
    }
}

/// The app under test.
pub struct TestApp {
    pub app: App<MockRuntime>,
    pub config: tempfile::TempDir,
    /// The request id of the last request opened (the UI's `view.requestId`).
    pub shown: std::sync::Mutex<Option<String>>,
}

pub fn settings_for(server_base: &str, token: &LabToken) -> Settings {
    Settings {
        api_base_url: server_base.to_owned(),
        token_source: TokenSource::Pkcs11 {
            module_path: Some(PathBuf::from(token.module_path())),
            token_label: None,
        },
        signing_key: Some("01".into()),
        ..Settings::default()
    }
}

impl TestApp {
    /// Starts the app with `settings` and `biometrics`. Sets process env (one test per
    /// process under nextest).
    pub fn start(settings: &Settings, biometrics: Arc<dyn BiometricAuthenticator>) -> Self {
        let config = tempfile::tempdir().unwrap();
        settings.save(config.path()).unwrap();
        std::env::set_var("SECURESIGN_CONFIG_DIR", config.path());
        let app = securesign_app::with_commands(tauri::test::mock_builder())
            .build(tauri::generate_context!())
            .unwrap();
        securesign_app::install(app.handle(), biometrics).unwrap();
        // The mock runtime does not open the configured windows itself.
        let main = app.config().app.windows[0].clone();
        tauri::WebviewWindowBuilder::from_config(app.handle(), &main)
            .unwrap()
            .build()
            .unwrap();
        Self {
            app,
            config,
            shown: std::sync::Mutex::new(None),
        }
    }

    pub fn main(&self) -> WebviewWindow<MockRuntime> {
        self.app.get_webview_window("main").unwrap()
    }

    /// Invokes `cmd` from the main window's local content. The PIN commands are sent the
    /// way ui/app.js sends them: secrets as a raw NUL-separated body, the rest as headers
    /// (`requestId` defaults to the last request opened, as the UI's screen shows it).
    pub fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let secrets: &[&str] = match cmd {
            "verify_pin" => &["pin"],
            "change_pin" => &["oldPin", "newPin"],
            "unblock_pin" => &["puk", "newPin"],
            _ => &[],
        };
        if secrets.is_empty() {
            let answer = invoke_from(&self.main(), "tauri://localhost", cmd, args);
            if cmd == "open_request" {
                if let Ok(view) = &answer {
                    *self.shown.lock().unwrap() = view["requestId"].as_str().map(str::to_owned);
                }
            }
            return answer;
        }
        let body = secrets
            .iter()
            .map(|k| {
                args[*k]
                    .as_str()
                    .unwrap_or_else(|| panic!("{cmd}: {k} missing"))
            })
            .collect::<Vec<_>>()
            .join("\0");
        let mut headers = tauri::http::HeaderMap::new();
        if args["confirmFinalTry"] == true {
            headers.insert("ss-confirm-final-try", "1".parse().unwrap());
        }
        if cmd == "verify_pin" {
            let shown = args["requestId"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| self.shown.lock().unwrap().clone());
            if let Some(id) = shown {
                headers.insert("ss-request-id", id.parse().unwrap());
            }
        }
        let body = self.seal(cmd, body.as_bytes());
        invoke_raw(&self.main(), cmd, body, headers)
    }

    /// What ui/app.js `invokeSecrets` does: the app's one-use key (`pin_key`), an ephemeral
    /// P-256 key of ours, HKDF-SHA-256 → AES-256-GCM (aad = the command); the body is our
    /// public key ‖ nonce ‖ ciphertext.
    pub fn seal(&self, cmd: &str, plain: &[u8]) -> Vec<u8> {
        let app_key: Vec<u8> =
            serde_json::from_value(self.invoke("pin_key", json!({})).unwrap()).unwrap();
        seal_for(&app_key, cmd, plain)
    }
}

/// Encrypts `plain` for the app's public key `app_key` as ui/app.js does.
pub fn seal_for(app_key: &[u8], cmd: &str, plain: &[u8]) -> Vec<u8> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let ours = p256::ecdh::EphemeralSecret::random(&mut rand_core::OsRng);
    let shared = ours.diffie_hellman(&p256::PublicKey::from_sec1_bytes(app_key).unwrap());
    let mut key = [0u8; 32];
    shared
        .extract::<sha2::Sha256>(None)
        .expand(securesign_app::pin_ipc::HKDF_INFO, &mut key)
        .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let nonce: [u8; 12] = std::array::from_fn(|i| i as u8 ^ 0x5a);
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(cmd.as_bytes()),
        &mut sealed,
    )
    .unwrap();
    let mut body = ours.public_key().to_sec1_bytes().to_vec();
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&sealed);
    body
}

/// Invokes `cmd` with a raw (`application/octet-stream`) body and `headers`.
pub fn invoke_raw(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    body: Vec<u8>,
    headers: tauri::http::HeaderMap,
) -> Result<Value, Value> {
    invoke_with(
        window,
        "tauri://localhost",
        cmd,
        InvokeBody::Raw(body),
        headers,
    )
}

/// Invokes `cmd` with JSON `args` as a page at `url` would.
pub fn invoke_from(
    window: &WebviewWindow<MockRuntime>,
    url: &str,
    cmd: &str,
    args: Value,
) -> Result<Value, Value> {
    invoke_with(window, url, cmd, InvokeBody::Json(args), Default::default())
}

fn invoke_with(
    window: &WebviewWindow<MockRuntime>,
    url: &str,
    cmd: &str,
    body: InvokeBody,
    headers: tauri::http::HeaderMap,
) -> Result<Value, Value> {
    tauri::test::get_ipc_response(
        window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: url.parse().unwrap(),
            body,
            headers,
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

pub fn code(err: &Value) -> &str {
    err["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {err}"))
}

/// A provisioned virtual PIV card behind its own pcscd, taken out and put back once
/// (provisioning leaves the PIN verified in the card's volatile state, as a card fresh in
/// the reader never is), its environment applied.
pub fn fresh_piv_card() -> securesign_testlab::PivLab {
    let lab = securesign_testlab::PivLab::start_provisioned().unwrap();
    lab.apply_env();
    lab.kill_card().unwrap();
    lab.restart_card().unwrap();
    lab
}

/// Settings whose token source is `lab`'s reader.
pub fn reader_settings(lab: &securesign_testlab::PivLab) -> Settings {
    Settings {
        token_source: TokenSource::PcscReader {
            reader: Some(lab.reader().to_owned()),
        },
        ..Settings::default()
    }
}
