//! App Links / Universal Links over HTTP against the real binary on loopback: the
//! session answer's `appLink` (the core's parser accepts it, same request as
//! `deepLink`), the two `/.well-known/` files exactly as configured, 404 in the error
//! envelope when not configured, and a refused configuration stopping the binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cli_key, cli_tenant, documents_json, sha256, BinaryServer, PORTAL};
use securesign_core::deeplink::{SignLink, APP_LINK_HOST, APP_LINK_PATH};
use securesign_server::http::well_known::APP_IDENTIFIER;
use serde_json::{json, Value};

const FP1: &str = "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5";
/// Given as `apksigner` prints it (64 lower-case hex digits); served as `AA:BB:…`.
const FP2_PLAIN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const FP2: &str = "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

struct Served {
    _dir: tempfile::TempDir,
    server: BinaryServer,
    http: reqwest::Client,
}

/// The real binary with `extra` serve arguments.
fn serve(extra: &[&str]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let server = BinaryServer::spawn_with(&db, &dir.path().join("server.log"), extra);
    Served {
        _dir: dir,
        server,
        // A redirect must not be followed: the phones do not follow one either.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Served {
    /// GET `path`: status, Content-Type and the body's text.
    async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.server.base()))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, content_type, response.text().await.unwrap())
    }
}

fn assert_not_found_envelope(status: u16, body: &str) {
    assert_eq!(status, 404, "{body}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "SS_NOT_FOUND", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("configured"),
        "{body}"
    );
}

#[tokio::test]
async fn the_session_answer_has_an_app_link_for_the_same_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let key = cli_key(&db, &tenant, "live", &[]);
    let server = BinaryServer::spawn(&db, &dir.path().join("server.log"));
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/v1/auth/session", server.base()))
        .bearer_auth(&key)
        .json(&json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"deed")])}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    // The spec's three fields, in its order, and `appLink` after them.
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{text}");
    let positions: Vec<usize> = [
        "\"sessionId\"",
        "\"expiresAt\"",
        "\"deepLink\"",
        "\"appLink\"",
    ]
    .iter()
    .map(|k| {
        text.find(k)
            .unwrap_or_else(|| panic!("{k} missing: {text}"))
    })
    .collect();
    assert!(positions.is_sorted(), "{text}");

    let deep = SignLink::parse(body["deepLink"].as_str().unwrap()).unwrap();
    let app_link = body["appLink"].as_str().unwrap();
    let app = SignLink::parse(app_link).unwrap();
    assert_eq!(app.request_id, deep.request_id);
    assert_eq!(
        app_link,
        format!(
            "https://{APP_LINK_HOST}{APP_LINK_PATH}?requestId={}",
            deep.request_id
        )
    );
    // It names a real request: the app's route finds it.
    let opened = http
        .get(format!(
            "{}/v1/sign-requests/{}",
            server.base(),
            app.request_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status().as_u16(), 200);
    server.stop();
}

#[tokio::test]
async fn the_well_known_files_are_served_exactly_as_configured() {
    let served = serve(&[
        "--android-cert-fingerprint",
        FP1,
        "--android-cert-fingerprint",
        FP2_PLAIN,
        "--apple-team-id",
        "ABCDE12345",
    ]);
    let (status, content_type, body) = served.get("/.well-known/assetlinks.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(
        body,
        format!(
            r#"[{{"relation":["delegate_permission/common.handle_all_urls"],"target":{{"namespace":"android_app","package_name":"in.securesign.app","sha256_cert_fingerprints":["{FP1}","{FP2}"]}}}}]"#
        )
    );
    let (status, content_type, body) = served.get("/.well-known/apple-app-site-association").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(
        body,
        r#"{"applinks":{"details":[{"appIDs":["ABCDE12345.in.securesign.app"],"components":[{"/":"/sign","?":{"requestId":"?*"},"comment":"SecureSign signing requests (https://securesign.toolsbots.com/sign?requestId=...)"}]}]}}"#
    );
    // No extension: the `.json` spelling is not the file.
    let (status, _, body) = served
        .get("/.well-known/apple-app-site-association.json")
        .await;
    assert_eq!(status, 404, "{body}");
    served.server.stop();
}

#[tokio::test]
async fn other_package_and_bundle_ids_are_served_when_configured() {
    let served = serve(&[
        "--android-package",
        "in.securesign.app.dev",
        "--android-cert-fingerprint",
        FP1,
        "--apple-team-id",
        "Z9Y8X7W6V5",
        "--apple-bundle-id",
        "in.securesign.app-dev",
    ]);
    let (_, _, body) = served.get("/.well-known/assetlinks.json").await;
    let statements: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        statements[0]["target"]["package_name"],
        "in.securesign.app.dev"
    );
    assert_eq!(
        statements[0]["target"]["sha256_cert_fingerprints"],
        json!([FP1])
    );
    let (_, _, body) = served.get("/.well-known/apple-app-site-association").await;
    let aasa: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        aasa["applinks"]["details"][0]["appIDs"],
        json!(["Z9Y8X7W6V5.in.securesign.app-dev"])
    );
    served.server.stop();
}

#[tokio::test]
async fn unconfigured_well_known_files_are_404_in_the_error_envelope() {
    let served = serve(&[]);
    for path in [
        "/.well-known/assetlinks.json",
        "/.well-known/apple-app-site-association",
    ] {
        let (status, content_type, body) = served.get(path).await;
        assert_not_found_envelope(status, &body);
        assert_eq!(content_type.as_deref(), Some("application/json"), "{path}");
    }
    // Only the configured platform is served.
    let android_only = serve(&["--android-cert-fingerprint", FP1]);
    let (status, _, _) = android_only.get("/.well-known/assetlinks.json").await;
    assert_eq!(status, 200);
    let (status, _, body) = android_only
        .get("/.well-known/apple-app-site-association")
        .await;
    assert_not_found_envelope(status, &body);
    android_only.server.stop();
    served.server.stop();
}

#[tokio::test]
async fn the_openapi_document_has_the_app_link_and_the_well_known_routes() {
    let served = serve(&[]);
    let (status, _, body) = served.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    for path in [
        "/.well-known/assetlinks.json",
        "/.well-known/apple-app-site-association",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
    let session = &doc["components"]["schemas"]["CreateSessionResponse"];
    assert!(session["properties"]["appLink"].is_object(), "{session}");
    assert!(
        session["required"]
            .as_array()
            .unwrap()
            .contains(&json!("appLink")),
        "{session}"
    );
    served.server.stop();
}

/// Runs `serve` with `extra` and expects it to exit at once, failing; its stderr.
fn refused(db: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(common::database_args(db))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {extra:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    assert!(!status.success(), "serve {extra:?} succeeded");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("listening on"), "{stdout}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_bad_app_links_configuration_stops_the_binary_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let short = &FP1[3..];
    let cases: [(&[&str], &str); 6] = [
        (
            &["--android-cert-fingerprint", short],
            "Android signing-certificate fingerprint",
        ),
        (
            &["--android-cert-fingerprint", &FP1.replace(':', "-")],
            "32 hex byte pairs",
        ),
        (
            &[
                "--android-package",
                "securesign",
                "--android-cert-fingerprint",
                FP1,
            ],
            "Android package name \"securesign\"",
        ),
        (
            &["--android-package", "in.securesign.app"],
            "no --android-cert-fingerprint",
        ),
        (
            &["--apple-team-id", "ABCDE1234"],
            "exactly 10 uppercase letters or digits",
        ),
        (
            &["--apple-bundle-id", "in.securesign.app"],
            "--apple-team-id is not",
        ),
    ];
    for (args, expected) in cases {
        let stderr = refused(&db, args);
        assert!(
            stderr.contains("error: app links configuration: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}

/// The default package name / bundle id is the app's identifier, and the verified host
/// in the app's deep-link config is the host of `appLink`.
#[test]
fn the_defaults_match_the_apps_checked_in_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let conf: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("src-tauri/tauri.conf.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(conf["identifier"], APP_IDENTIFIER);
    let verified: Vec<&Value> = conf["plugins"]["deep-link"]["mobile"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["appLink"] == true)
        .collect();
    assert_eq!(verified.len(), 1, "{conf}");
    assert_eq!(verified[0]["host"], APP_LINK_HOST);
    assert_eq!(verified[0]["pathPrefix"], json!([APP_LINK_PATH]));
    let entitlements =
        std::fs::read_to_string(root.join("src-tauri/mobile/ios/securesign_iOS.entitlements"))
            .unwrap();
    assert!(
        entitlements.contains(&format!("<string>applinks:{APP_LINK_HOST}</string>")),
        "{entitlements}"
    );
}

/// The environment configures the same as the flags (fingerprints comma-separated),
/// as a container deployment sets it.
#[tokio::test]
async fn the_environment_configures_the_files() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    /// Kills the server (by its PID) however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(common::database_args(&dir.path().join("securesign.db")))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "SECURESIGN_ANDROID_CERT_FINGERPRINTS",
            format!("{FP1},{FP2_PLAIN}"),
        )
        .env("SECURESIGN_APPLE_TEAM_ID", "ABCDE12345")
        .env("SECURESIGN_APPLE_BUNDLE_ID", "in.securesign.app-dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Killed)
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = format!(
        "http://{}",
        line.trim().strip_prefix("listening on ").unwrap()
    );
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let body = reqwest::get(url).await.unwrap().text().await.unwrap();
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let assetlinks = get("/.well-known/assetlinks.json").await;
    let aasa = get("/.well-known/apple-app-site-association").await;
    drop(child);
    assert_eq!(
        assetlinks[0]["target"]["sha256_cert_fingerprints"],
        json!([FP1, FP2])
    );
    assert_eq!(assetlinks[0]["target"]["package_name"], APP_IDENTIFIER);
    assert_eq!(
        aasa["applinks"]["details"][0]["appIDs"],
        json!(["ABCDE12345.in.securesign.app-dev"])
    );
}
