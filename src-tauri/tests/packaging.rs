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

fn mobile_file(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mobile")
            .join(path),
    )
    .unwrap()
}

/// `(scheme, host, appLink)` of every `plugins.deep-link.mobile` entry.
fn mobile_links() -> Vec<(String, String, bool)> {
    let conf = conf();
    conf["plugins"]["deep-link"]["mobile"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|entry| {
            let host = entry["host"].as_str().unwrap().to_owned();
            let app_link = entry["appLink"].as_bool().unwrap();
            entry["scheme"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |s| (s.as_str().unwrap().to_owned(), host.clone(), app_link))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn mobile_config_has_the_custom_scheme_and_a_verified_https_host() {
    let links = mobile_links();
    assert!(
        links.contains(&("securesign".into(), "sign".into(), false)),
        "{links:?}"
    );
    let app_links: Vec<_> = links.iter().filter(|l| l.2).collect();
    assert_eq!(app_links.len(), 1, "{links:?}");
    assert_eq!(app_links[0].0, "https", "App Links must be https");
    assert!(!app_links[0].1.is_empty() && !app_links[0].1.contains('/'));
}

/// Every link form the phone is configured to hand the app is one the core's parser
/// accepts (and the path prefix is the parser's exact path).
#[test]
fn the_core_parser_accepts_every_configured_link_form() {
    use securesign_core::deeplink::{SignLink, APP_LINK_HOST, APP_LINK_PATH};
    let id = "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV";
    for (scheme, host, app_link) in mobile_links() {
        let link = if app_link {
            assert_eq!(host, APP_LINK_HOST);
            format!("{scheme}://{host}{APP_LINK_PATH}?requestId={id}")
        } else {
            format!("{scheme}://{host}?requestId={id}")
        };
        let parsed = SignLink::parse(&link).unwrap_or_else(|e| panic!("{link}: {e}"));
        assert_eq!(parsed.request_id.as_str(), id);
    }
    let prefixes = &conf()["plugins"]["deep-link"]["mobile"][1]["pathPrefix"];
    assert_eq!(prefixes, &serde_json::json!([APP_LINK_PATH]));
}

const ANDROID: &str = "http://schemas.android.com/apk/res/android";

#[test]
fn android_intent_filters_match_the_config() {
    let text = mobile_file("android/deep-link-activity.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let activity = doc.root_element();
    assert_eq!(activity.tag_name().name(), "activity");
    assert_eq!(
        activity.attribute((ANDROID, "launchMode")),
        Some("singleTask"),
        "a link must reach the running activity"
    );
    let filters: Vec<_> = activity
        .children()
        .filter(|n| n.has_tag_name("intent-filter"))
        .collect();
    for (scheme, host, app_link) in mobile_links() {
        let found = filters.iter().find(|f| {
            let data = |attr: &str| {
                f.children()
                    .filter(|n| n.has_tag_name("data"))
                    .filter_map(|n| n.attribute((ANDROID, attr)).map(str::to_owned))
                    .collect::<Vec<_>>()
            };
            data("scheme").contains(&scheme) && data("host").contains(&host)
        });
        let filter = found.unwrap_or_else(|| panic!("no intent filter for {scheme}://{host}"));
        let names = |tag: &str| {
            filter
                .children()
                .filter(|n| n.has_tag_name(tag))
                .filter_map(|n| n.attribute((ANDROID, "name")))
                .collect::<Vec<_>>()
        };
        assert!(names("action").contains(&"android.intent.action.VIEW"));
        assert!(names("category").contains(&"android.intent.category.BROWSABLE"));
        assert_eq!(
            filter.attribute((ANDROID, "autoVerify")) == Some("true"),
            app_link,
            "{scheme}://{host}: autoVerify only for verified App Links"
        );
    }
    assert_eq!(filters.len(), mobile_links().len(), "no extra filters");
}

#[test]
fn ios_url_types_and_associated_domains_match_the_config() {
    let info =
        plist::Value::from_reader_xml(mobile_file("ios/Info.deep-link.plist").as_bytes()).unwrap();
    let schemes: Vec<String> = info.as_dictionary().unwrap()["CFBundleURLTypes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t.as_dictionary().unwrap()["CFBundleURLSchemes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_string().unwrap().to_owned())
        })
        .collect();
    let custom: Vec<String> = mobile_links()
        .into_iter()
        .filter(|l| !l.2)
        .map(|l| l.0)
        .collect();
    assert_eq!(schemes, custom, "iOS registers the custom schemes only");

    let entitlements =
        plist::Value::from_reader_xml(mobile_file("ios/securesign_iOS.entitlements").as_bytes())
            .unwrap();
    let domains: Vec<&str> = entitlements.as_dictionary().unwrap()
        ["com.apple.developer.associated-domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_string().unwrap())
        .collect();
    let expected: Vec<String> = mobile_links()
        .into_iter()
        .filter(|l| l.2)
        .map(|l| format!("applinks:{}", l.1))
        .collect();
    assert_eq!(domains, expected);
}

/// Runs scripts/apply-mobile-config.py with `args`.
fn apply_mobile_config(args: &[&std::path::Path]) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/apply-mobile-config.py");
    let status = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .status()
        .expect("python3 runs (tests/app/install.sh installs it)");
    assert!(status.success());
}

/// The shape of the manifest `tauri android init` generates (activity with the launcher
/// filter), with the deep-link plugin's block in it.
const GENERATED_MANIFEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android">
    <uses-permission android:name="android.permission.INTERNET" />
    <application android:label="SecureSign">
        <activity
            android:configChanges="orientation|keyboardHidden|keyboard|screenSize|locale|smallestScreenSize|screenLayout|uiMode"
            android:launchMode="singleTask"
            android:label="SecureSign"
            android:name=".MainActivity"
            android:exported="true">
            <intent-filter>
                <action android:name="android.intent.action.MAIN" />
                <category android:name="android.intent.category.LAUNCHER" />
            </intent-filter>
            <!-- DEEP LINK PLUGIN. AUTO-GENERATED. DO NOT REMOVE. -->
            <intent-filter>
                <action android:name="android.intent.action.VIEW" />
                <data android:scheme="securesign" />
            </intent-filter>
            <!-- DEEP LINK PLUGIN. AUTO-GENERATED. DO NOT REMOVE. -->
        </activity>
        <provider android:name="androidx.core.content.FileProvider" android:authorities="x" />
    </application>
</manifest>
"#;

#[test]
fn a_plugged_in_usb_token_reaches_the_main_activity_on_android() {
    const ANDROID: &str = "http://schemas.android.com/apk/res/android";
    const ATTACHED: &str = "android.hardware.usb.action.USB_DEVICE_ATTACHED";
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("AndroidManifest.xml");
    std::fs::write(&manifest, GENERATED_MANIFEST).unwrap();
    // Every build applies it again: the second run changes nothing.
    apply_mobile_config(&[std::path::Path::new("android"), &manifest]);
    let once = std::fs::read_to_string(&manifest).unwrap();
    apply_mobile_config(&[std::path::Path::new("android"), &manifest]);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(text, once, "idempotent");

    let doc = roxmltree::Document::parse(&text).unwrap();
    let main = doc
        .descendants()
        .find(|n| n.has_tag_name("activity"))
        .unwrap();
    assert_eq!(main.attribute((ANDROID, "name")), Some(".MainActivity"));
    let filters: Vec<_> = main
        .children()
        .filter(|n| n.has_tag_name("intent-filter"))
        .collect();
    assert_eq!(filters.len(), 3, "launcher, deep link, USB: {text}");
    assert!(filters.iter().any(|f| f
        .children()
        .any(|a| a.has_tag_name("action") && a.attribute((ANDROID, "name")) == Some(ATTACHED))));
    let meta = main
        .children()
        .find(|n| n.has_tag_name("meta-data"))
        .unwrap();
    assert_eq!(meta.attribute((ANDROID, "name")), Some(ATTACHED));
    let resource = meta.attribute((ANDROID, "resource")).unwrap();
    assert_eq!(resource, "@xml/securesign_ccid_device_filter");

    // The filter it names ships in the transport plugin's resources: any CCID-class device.
    let filter = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../plugins/tauri-plugin-securesign-transport/android/src/main/res/xml/securesign_ccid_device_filter.xml",
        ),
    )
    .unwrap();
    let filter = roxmltree::Document::parse(&filter).unwrap();
    let classes: Vec<&str> = filter
        .descendants()
        .filter(|n| n.has_tag_name("usb-device"))
        .filter_map(|n| n.attribute("class"))
        .collect();
    assert_eq!(classes, ["11"], "USB class 0x0B, smart card (CCID)");
}

#[test]
fn ios_nfc_reads_piv_cards_with_a_reason_and_the_entitlement() {
    let dir = tempfile::tempdir().unwrap();
    let info = dir.path().join("Info.plist");
    let entitlements = dir.path().join("securesign_iOS.entitlements");
    std::fs::write(
        &info,
        mobile_file("ios/Info.deep-link.plist").replace(
            "<dict>",
            "<dict>\n\t<key>CFBundleName</key>\n\t<string>SecureSign</string>",
        ),
    )
    .unwrap();
    std::fs::write(
        &entitlements,
        mobile_file("ios/securesign_iOS.entitlements"),
    )
    .unwrap();
    for _ in 0..2 {
        apply_mobile_config(&[std::path::Path::new("ios"), &info, &entitlements]);
    }

    let info = plist::Value::from_file(&info).unwrap();
    let info = info.as_dictionary().unwrap();
    assert_eq!(info["CFBundleName"].as_string(), Some("SecureSign"), "kept");
    assert!(info.contains_key("CFBundleURLTypes"), "kept");
    let reason = info["NFCReaderUsageDescription"].as_string().unwrap();
    assert!(reason.contains("sign"), "{reason}");
    let aids: Vec<&str> = info["com.apple.developer.nfc.readersession.iso7816.select-identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    let piv: String = securesign_core::backend::piv::PIV_AID
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(aids, [piv.as_str()], "the AID the core selects, once");

    let entitlements = plist::Value::from_file(&entitlements).unwrap();
    let entitlements = entitlements.as_dictionary().unwrap();
    let formats: Vec<&str> = entitlements["com.apple.developer.nfc.readersession.formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(formats, ["TAG"]);
    assert!(
        entitlements.contains_key("com.apple.developer.associated-domains"),
        "the App Link domain is kept"
    );
}
