//! Packaging facts that break deep links silently when wrong.

#![allow(clippy::unwrap_used, missing_docs)]

use serde_json::Value;

fn conf() -> Value {
    serde_json::from_str(include_str!("../tauri.conf.json")).unwrap()
}

#[test]
fn deb_desktop_entry_passes_the_url_and_claims_the_scheme() {
    let conf = conf();
    let template = conf["bundle"]["linux"]["deb"]["desktopTemplate"]
        .as_str()
        .unwrap();
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(template))
            .unwrap();
    let exec = text.lines().find(|l| l.starts_with("Exec=")).unwrap();
    assert!(exec.ends_with(" %u"), "the URL must reach argv: {exec}");
    let mime = text.lines().find(|l| l.starts_with("MimeType=")).unwrap();
    assert!(mime
        .split(['=', ';'])
        .any(|m| m == "x-scheme-handler/securesign"));
}

#[test]
fn deep_link_scheme_is_configured_for_desktop_and_mobile() {
    let conf = conf();
    let deep_link = &conf["plugins"]["deep-link"];
    assert_eq!(deep_link["desktop"]["schemes"][0], "securesign");
    assert_eq!(deep_link["mobile"][0]["scheme"][0], "securesign");
}

#[test]
fn csp_allows_no_remote_content() {
    let conf = conf();
    let csp = conf["app"]["security"]["csp"].as_str().unwrap();
    assert!(csp.contains("default-src 'self'"));
    assert!(csp.contains("script-src 'self'"));
    assert!(csp.contains("object-src 'none'"));
    for bad in ["unsafe-inline", "unsafe-eval", "http:", "https:", "*"] {
        let directives_with_bad = csp
            .split(';')
            .filter(|d| !d.trim_start().starts_with("connect-src"))
            .any(|d| d.contains(bad));
        assert!(!directives_with_bad, "CSP must not allow {bad}: {csp}");
    }
    assert_eq!(conf["build"]["frontendDist"], "../ui");
    assert!(
        conf["build"].get("devUrl").is_none(),
        "no remote dev server"
    );
}

#[test]
fn capability_grants_commands_to_the_main_window_only() {
    let cap: Value = serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
    assert_eq!(cap["windows"], serde_json::json!(["main"]));
    assert_eq!(cap["local"], true);
    assert!(cap.get("remote").is_none());
}
