//! The platform's biometric prompt shows the page's text in the user's language (a short
//! line of printable text), else the default. Real IPC on the mock runtime, the real API
//! on loopback, a fresh SoftHSM2 token. One test per process (nextest).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};

use common::{settings_for, Server, TestApp};
use securesign_core::biometric::{
    Availability, BiometricAuthenticator, BiometricOutcome, BiometricSetting, PromptRequest,
};
use securesign_testlab::LabToken;
use serde_json::json;

/// Always fails (so the gate prompts again); records each prompt's text.
#[derive(Default)]
struct Recording {
    reasons: Mutex<Vec<String>>,
}

impl BiometricAuthenticator for Recording {
    fn availability(&self) -> Availability {
        Availability::Available
    }
    fn authenticate(&self, request: &PromptRequest) -> BiometricOutcome {
        self.reasons.lock().unwrap().push(request.reason.clone());
        BiometricOutcome::Failed
    }
}

#[test]
fn the_prompt_text_is_the_pages_localised_line_or_the_default() {
    let token = LabToken::softhsm().unwrap();
    token.apply_env();
    let server = Server::start();
    let mut settings = settings_for(&server.base, &token);
    settings.biometric = BiometricSetting {
        enabled: true,
        ..Default::default()
    };
    let auth = Arc::new(Recording::default());
    let app = TestApp::start(&settings, auth.clone());
    let link = server.create_request(1);
    let id = link.rsplit('=').next().unwrap().to_owned();
    assert_eq!(
        app.invoke("open_request", json!({ "link": link })).unwrap()["gate"]["next"],
        "prompt"
    );
    let hindi = "हस्ताक्षर के लिए पुष्टि करें कि यह आप हैं";
    let too_long = "x".repeat(121);
    for reason in [
        json!(hindi),
        json!("two\nlines"),
        json!(too_long),
        json!(null),
    ] {
        app.invoke(
            "biometric_prompt",
            json!({ "requestId": id, "reason": reason }),
        )
        .unwrap();
    }
    let default = "Confirm it is you to sign";
    assert_eq!(
        *auth.reasons.lock().unwrap(),
        vec![hindi, default, default, default]
    );
}
