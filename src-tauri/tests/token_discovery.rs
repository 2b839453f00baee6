//! Settings' token discovery through real IPC on the mock runtime: the lab's SoftHSM2
//! token is found (by the vendor table / p11-kit, named), its certificates are listed to
//! pick from, and nothing logs in or spends a try.
//! PIN change at the final try and PUK unblock on OpenSC over the virtual PIV card, and the
//! PIN change at kryoptic's final try. One test per process (nextest).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{code, fresh_piv_card, settings_for, Server, TestApp};
use securesign_app::settings::{Settings, TokenSource};
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_testlab::{LabToken, Module, PivLab, OPENSC_PKCS11, PIV_PIN, PIV_PUK};
use serde_json::{json, Value};

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "desktop".into(),
    })
}

fn lab(module: Module) -> LabToken {
    let token = match module {
        Module::SoftHsm2 => LabToken::softhsm(),
        Module::Kryoptic => LabToken::kryoptic(),
    }
    .unwrap();
    token.apply_env();
    token
}

#[test]
fn discovery_lists_the_token_then_its_certificates_to_pick_from() {
    let token = lab(Module::SoftHsm2);
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());

    let found = app.invoke("discover_tokens", json!({})).unwrap();
    let modules = found["modules"].as_array().unwrap();
    let with_token: Vec<&Value> = modules
        .iter()
        .filter(|m| {
            m["tokens"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["label"] == token.label()))
        })
        .collect();
    assert_eq!(with_token.len(), 1, "found once: {found:#}");
    let module = with_token[0];
    assert_eq!(module["vendor"], "SoftHSM2", "{module:#}");
    // The descriptor travels as a key the UI words in the user's language.
    assert_eq!(module["kind"], "softwareToken", "{module:#}");
    let listed = module["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == token.label())
        .unwrap();
    assert_eq!(listed["pin"]["status"], "NOT_VERIFIED");
    assert_eq!(listed["pin"]["retries"]["indicator"], "more_than_one");
    assert!(found["readers"].is_array());

    let certs = app
        .invoke(
            "token_certificates",
            json!({ "modulePath": module["path"], "slot": listed["slot"] }),
        )
        .unwrap();
    let certs = certs.as_array().unwrap();
    assert_eq!(certs.len(), 2, "{certs:#?}");
    let rsa = certs.iter().find(|c| c["id"] == "01").unwrap();
    assert_eq!(rsa["info"]["commonName"], "Demo Signer");
    assert!(rsa["info"]["issuer"].as_str().unwrap().contains("CN="));
    assert_eq!(rsa["info"]["indiaPki"][0], "class3");
    assert_eq!(rsa["validity"]["state"], "valid");
    assert!(rsa["info"]["notAfter"].is_string());

    // Neither call logged in nor spent a try.
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "NOT_VERIFIED", "{status}");
    assert_eq!(status["pin"]["retries"]["indicator"], "more_than_one");

    // A half-named token is a clear SS_BAD_REQUEST.
    let err = app
        .invoke("token_certificates", json!({ "slot": 1 }))
        .unwrap_err();
    assert_eq!(code(&err), "SS_BAD_REQUEST", "{err}");
}

/// kryoptic loads the system libsqlite3 while this binary links the server's bundled
/// SQLite: its `C_Initialize` jumped to address 0 (SIGSEGV) until build.rs kept the app's
/// test binaries from exporting their archives' symbols (see `opensc_app`).
#[test]
fn kryoptic_opens_in_the_app_test_binary() {
    let token = lab(Module::Kryoptic);
    let app = TestApp::start(&settings_for("http://127.0.0.1:9", &token), desktop());
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["label"], token.label(), "{status}");
    assert_eq!(
        status["pin"]["retries"]["indicator"], "more_than_one",
        "{status}"
    );
}

/// kryoptic's PIN change at the final try (FINAL_TRY after 9 failures): an unconfirmed
/// change with a wrong current PIN is refused before the token (had it been sent, the PIN
/// would be locked now), the confirmed one changes it, and kryoptic's own flags say more
/// than one try again.
#[test]
fn kryoptic_changes_the_pin_at_the_final_try_only_when_confirmed() {
    let token = lab(Module::Kryoptic);
    let app = TestApp::start(&settings_for("http://127.0.0.1:9", &token), desktop());
    let wrong = "1".repeat(token.user_pin().len());
    let indicator = |app: &TestApp| {
        let status = app.invoke("pin_status", json!({})).unwrap();
        status["pin"]["retries"]["indicator"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for _ in 0..9 {
        let err = app
            .invoke("verify_pin", json!({ "pin": wrong }))
            .unwrap_err();
        assert_eq!(code(&err), "SS_PIN_INVALID", "{err}");
    }
    assert_eq!(indicator(&app), "final_try");
    let err = app
        .invoke(
            "change_pin",
            json!({ "oldPin": wrong, "newPin": "13571357" }),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_FINAL_TRY", "{err}");
    assert_eq!(indicator(&app), "final_try", "nothing reached the token");
    app.invoke(
        "change_pin",
        json!({ "oldPin": token.user_pin(), "newPin": "13571357", "confirmFinalTry": true }),
    )
    .unwrap();
    assert_eq!(indicator(&app), "more_than_one");
    app.invoke("verify_pin", json!({ "pin": "13571357" }))
        .unwrap();
}

/// Tries left as the card itself reports them (a fresh PC/SC connection, an empty VERIFY:
/// no try spent); `u8::MAX` while the PIN is verified (the card gives no count then).
fn card_tries(lab: &PivLab) -> u8 {
    use securesign_core::apdu::pcsc::PcscTransport;
    use securesign_core::backend::piv::PivBackend;
    use securesign_core::backend::TokenBackend;
    let mut card = PivBackend::open(PcscTransport::open(lab.reader()).unwrap()).unwrap();
    card.pin_state()
        .unwrap()
        .retries
        .remaining
        .unwrap_or(u8::MAX)
}

/// OpenSC's PKCS#11 module over the virtual PIV card (FINAL_TRY after two failures, the
/// lab's OPENSC_CONF asks for `set_pin_in_unlogged_session`), as the product opens it.
///
/// (kryoptic, FINAL_TRY at the 9th failure, used to crash with SIGSEGV in this binary: it
/// links the server, whose sqlx carries a bundled SQLite, and GTK's link flags
/// (`-Wl,--export-dynamic`) exported its `sqlite3_*` symbols; kryoptic loads the system
/// libsqlite3, whose own internal calls (`sqlite3_initialize`) then bound to the bundled
/// copy, so the system library's mutex methods stayed NULL and `sqlite3_mutex_alloc`
/// jumped to 0 from rusqlite's `open_with_flags` in `C_Initialize`. build.rs now keeps the
/// test binaries' archive symbols unexported. The app binary has no SQLite.)
fn opensc_app(server: &Server) -> TestApp {
    let settings = Settings {
        api_base_url: server.base.clone(),
        token_source: TokenSource::Pkcs11 {
            module_path: Some(PathBuf::from(OPENSC_PKCS11)),
            token_label: None,
        },
        ..Settings::default()
    };
    TestApp::start(&settings, desktop())
}

#[test]
fn the_pin_changes_at_the_final_try_only_when_confirmed_and_the_puk_unblocks() {
    let lab = PivLab::start().unwrap();
    lab.apply_env();
    let server = Server::start();
    let app = opensc_app(&server);
    let wrong = "999999";
    for _ in 0..2 {
        let err = app
            .invoke("verify_pin", json!({ "pin": wrong }))
            .unwrap_err();
        assert_eq!(code(&err), "SS_PIN_INVALID", "{err}");
    }
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(
        status["pin"]["retries"]["indicator"], "final_try",
        "{status}"
    );

    // Unconfirmed: refused before the card (still one try).
    let err = app
        .invoke(
            "change_pin",
            json!({ "oldPin": PIV_PIN, "newPin": "24681357" }),
        )
        .unwrap_err();
    assert_eq!(code(&err), "SS_PIN_FINAL_TRY", "{err}");
    assert_eq!(card_tries(&lab), 1, "no try spent");

    // Confirmed: the change goes through and the new PIN works.
    app.invoke(
        "change_pin",
        json!({ "oldPin": PIV_PIN, "newPin": "24681357", "confirmFinalTry": true }),
    )
    .unwrap();
    app.invoke("logout", json!({})).unwrap();
    // OpenSC keeps reporting FINAL_TRY in this process after the successful change (its
    // PIV driver does not read the counter again while the card is verified); the core
    // knows the change reset the counter: more than one try, no confirmation asked.
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(
        status["pin"]["retries"]["indicator"], "more_than_one",
        "{status}"
    );
    app.invoke("verify_pin", json!({ "pin": "24681357" }))
        .unwrap();
    app.invoke("logout", json!({})).unwrap();

    // Blocked, then unblocked with the PUK in the style the product chose for OpenSC.
    for _ in 0..3 {
        let _ = app.invoke(
            "verify_pin",
            json!({ "pin": wrong, "confirmFinalTry": true }),
        );
    }
    assert_eq!(card_tries(&lab), 0);
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["pin"]["status"], "BLOCKED", "{status}");
    app.invoke("unblock_pin", json!({ "puk": PIV_PUK, "newPin": "135790" }))
        .unwrap();
    assert_eq!(card_tries(&lab), 3);
    app.invoke("verify_pin", json!({ "pin": "135790" }))
        .unwrap();
}

#[test]
fn a_pcsc_reader_is_listed_with_the_certificates_of_its_card() {
    let lab = fresh_piv_card();
    let server = Server::start();
    let app = opensc_app(&server);
    let found = app.invoke("discover_tokens", json!({})).unwrap();
    let reader = found["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == lab.reader())
        .unwrap_or_else(|| panic!("reader not listed: {found:#}"));
    assert_eq!(reader["cardPresent"], true);
    // OpenSC (configured and found by p11-kit / the table) sees the same card.
    let opensc = found["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["vendor"] == "OpenSC")
        .unwrap_or_else(|| panic!("OpenSC not listed: {found:#}"));
    assert!(
        !opensc["tokens"].as_array().unwrap().is_empty(),
        "{opensc:#}"
    );

    let certs = app
        .invoke("token_certificates", json!({ "reader": lab.reader() }))
        .unwrap();
    let certs = certs.as_array().unwrap();
    assert_eq!(certs.len(), 2, "9A and 9C: {certs:#?}");
    for cert in certs {
        assert!(cert["info"]["subject"].as_str().unwrap().contains("CN="));
        assert!(cert["info"]["notAfter"].is_string());
    }
    // Nothing was verified: the card still has its three tries.
    assert_eq!(card_tries(&lab), 3);
}

#[test]
fn a_module_with_two_tokens_opens_the_one_whose_label_settings_keep() {
    let token = lab(Module::SoftHsm2);
    // A second token in the same SoftHSM2 configuration (the lab's SOFTHSM2_CONF).
    let status = std::process::Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "Second Token"])
        .args(["--so-pin", "12345678", "--pin", "24681357"])
        .envs(token.env())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start();
    let app = TestApp::start(&settings_for(&server.base, &token), desktop());

    let found = app.invoke("discover_tokens", json!({})).unwrap();
    let labels: Vec<&str> = found["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == token.module_path().to_str().unwrap())
        .unwrap()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&token.label()) && labels.contains(&"Second Token"),
        "{labels:?}"
    );

    // Without a label the module's two tokens are a choice to make.
    let err = app.invoke("pin_status", json!({})).unwrap_err();
    assert_eq!(code(&err), "SS_CONFIG", "{err}");

    // With the label Settings keep, the lab token opens: its certificate signs a request.
    let mut settings = settings_for(&server.base, &token);
    settings.token_source = TokenSource::Pkcs11 {
        module_path: Some(token.module_path().to_owned()),
        token_label: Some(token.label().to_owned()),
    };
    app.invoke("save_settings", json!({ "settings": settings }))
        .unwrap();
    let status = app.invoke("pin_status", json!({})).unwrap();
    assert_eq!(status["label"], token.label(), "{status}");
    let link = server.create_request(1);
    app.invoke("open_request", json!({ "link": link })).unwrap();
    app.invoke(
        "verify_pin",
        json!({"pin": token.user_pin(), "confirmFinalTry": false}),
    )
    .unwrap();
    let id = link.rsplit('=').next().unwrap();
    let done = app
        .invoke("sign_request", json!({ "requestId": id }))
        .unwrap();
    assert_eq!(done["server"]["status"], "completed", "{done}");
}
