//! The biometric gate in front of the PIN (mobile only), as a state machine.
//!
//! The platform prompt sits behind [`BiometricAuthenticator`]; the gate decides what the
//! answer means. Rules:
//!
//! - The gate never sees or stores a PIN and never touches the token: a failure or
//!   cancel only changes what the UI shows next.
//! - Biometrics hold no secret (the Tauri plugin has no keystore-bound key), so a
//!   success alone never unlocks signing. It lets a repeat sign skip the PIN only while
//!   a verified PIN session is active ("faster repeat signing"); otherwise the PIN
//!   screen follows.
//! - A lockout offers the device credential (passcode) or falls back to the PIN, per
//!   the setting. Falling back to the PIN ends any cached PIN session, because the
//!   person at the device could not be confirmed.
//! - Disabled or unavailable biometrics: the gate is transparent.
//! - The PIN is the fallback of a biometric that was tried: once a prompt has been
//!   answered (failed, cancelled, locked out), a PIN verified for the request passes the
//!   gate ([`BiometricGate::pin_verified`]). Before any answer the prompt comes first.

use serde::{Deserialize, Serialize};

/// What to do when the platform reports a biometric lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LockoutFallback {
    /// Offer the device passcode / pattern instead.
    #[default]
    DeviceCredential,
    /// Ask for the token PIN instead.
    PinOnly,
}

/// The user's biometric setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BiometricSetting {
    /// Biometric check before signing.
    pub enabled: bool,
    /// What a lockout falls back to.
    pub on_lockout: LockoutFallback,
}

/// Whether the device can do biometrics at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Availability {
    /// Hardware present and enrolled.
    Available,
    /// No hardware, nothing enrolled, or not a mobile platform.
    Unavailable {
        /// Shown in settings, e.g. "Biometrics are available on phones only".
        reason: String,
    },
}

/// How one platform prompt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BiometricOutcome {
    /// Recognised (or the device credential was accepted).
    Success,
    /// Not recognised; the platform lets the user try again.
    Failed,
    /// The user dismissed the prompt.
    Cancelled,
    /// Too many failures: biometrics are locked for now.
    LockedOut,
    /// The platform could not prompt (no hardware, not enrolled, error).
    Unavailable,
}

/// The options of one prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRequest {
    /// Why we ask, shown by the platform.
    pub reason: String,
    /// Accept the device passcode instead of a biometric.
    pub allow_device_credential: bool,
}

/// The platform's biometric prompt (the mobile adapter wraps `tauri-plugin-biometric`).
pub trait BiometricAuthenticator: Send + Sync {
    /// Whether a prompt can be shown.
    fn availability(&self) -> Availability;
    /// Shows the prompt and waits for its outcome.
    fn authenticate(&self, request: &PromptRequest) -> BiometricOutcome;
}

/// The authenticator of platforms without biometrics (desktop).
#[derive(Debug, Clone, Default)]
pub struct NoBiometrics {
    /// Why none is available.
    pub reason: String,
}

impl BiometricAuthenticator for NoBiometrics {
    fn availability(&self) -> Availability {
        Availability::Unavailable {
            reason: self.reason.clone(),
        }
    }
    fn authenticate(&self, _request: &PromptRequest) -> BiometricOutcome {
        BiometricOutcome::Unavailable
    }
}

/// What the flow does next, as decided by the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "next", rename_all = "camelCase")]
pub enum GateStep {
    /// Show the platform prompt with these options.
    Prompt {
        /// Accept the device credential (after a lockout).
        allow_device_credential: bool,
    },
    /// Sign with the active PIN session; no PIN entry.
    SkipPin,
    /// Show the PIN screen.
    AskPin {
        /// Log the cached PIN session out first (lockout fell back to the PIN).
        end_session: bool,
    },
    /// The user may try the biometric again or cancel; the token was not touched.
    RetryOrCancel {
        /// Failed prompts so far in this gate.
        failures: u32,
    },
    /// The user cancelled signing at the gate (`SS_SIGN_CANCELLED`).
    Cancelled,
}

/// The gate for one signing request.
#[derive(Debug, Clone)]
pub struct BiometricGate {
    setting: BiometricSetting,
    available: bool,
    device_credential: bool,
    failures: u32,
    done: bool,
    /// A prompt was answered (or the user cancelled at the gate).
    answered: bool,
}

impl BiometricGate {
    /// A gate for one request.
    pub fn new(setting: BiometricSetting, availability: &Availability) -> Self {
        Self {
            setting,
            available: matches!(availability, Availability::Available),
            device_credential: false,
            failures: 0,
            done: false,
            answered: false,
        }
    }

    /// True when biometrics are both enabled and possible.
    pub fn is_active(&self) -> bool {
        self.setting.enabled && self.available
    }

    /// The first step, given whether a PIN session is active now.
    pub fn start(&mut self, pin_session_active: bool) -> GateStep {
        if !self.is_active() {
            self.done = true;
            return Self::pass(pin_session_active);
        }
        GateStep::Prompt {
            allow_device_credential: false,
        }
    }

    /// The step after a prompt ended with `outcome`.
    pub fn on_outcome(&mut self, outcome: BiometricOutcome, pin_session_active: bool) -> GateStep {
        if self.done {
            // A late or repeated answer changes nothing already decided.
            return GateStep::Cancelled;
        }
        self.answered = true;
        match outcome {
            BiometricOutcome::Success => {
                self.done = true;
                Self::pass(pin_session_active)
            }
            BiometricOutcome::Failed => {
                self.failures = self.failures.saturating_add(1);
                GateStep::RetryOrCancel {
                    failures: self.failures,
                }
            }
            BiometricOutcome::Cancelled => {
                self.done = true;
                GateStep::Cancelled
            }
            BiometricOutcome::LockedOut if self.device_credential => {
                // Even the device credential is locked: only the PIN is left.
                self.done = true;
                GateStep::AskPin {
                    end_session: pin_session_active,
                }
            }
            BiometricOutcome::LockedOut => match self.setting.on_lockout {
                LockoutFallback::DeviceCredential => {
                    self.device_credential = true;
                    GateStep::Prompt {
                        allow_device_credential: true,
                    }
                }
                LockoutFallback::PinOnly => {
                    self.done = true;
                    GateStep::AskPin {
                        end_session: pin_session_active,
                    }
                }
            },
            BiometricOutcome::Unavailable => {
                // Biometrics vanished (e.g. enrolment removed): the PIN decides, and a
                // cached session is not trusted without the check it was promised.
                self.done = true;
                GateStep::AskPin {
                    end_session: pin_session_active,
                }
            }
        }
    }

    /// The user chose "try again" after a failure.
    pub fn retry(&mut self) -> GateStep {
        if self.done {
            return GateStep::Cancelled;
        }
        GateStep::Prompt {
            allow_device_credential: self.device_credential,
        }
    }

    /// The user chose "cancel" at the gate.
    pub fn cancel(&mut self) -> GateStep {
        self.done = true;
        self.answered = true;
        GateStep::Cancelled
    }

    /// The user's PIN was just verified for this request (a fresh PIN session is active).
    ///
    /// The PIN screen shown after a failed, cancelled or locked-out prompt is the fallback,
    /// so the gate passes: [`GateStep::SkipPin`] (sign with that session). `None` while
    /// the gate is active and no prompt was answered yet: the prompt comes first, and the
    /// step stays as it is. Inactive gates pass.
    pub fn pin_verified(&mut self) -> Option<GateStep> {
        if self.is_active() && !self.answered {
            return None;
        }
        self.done = true;
        Some(GateStep::SkipPin)
    }

    /// Runs the whole gate against an authenticator until it reaches a decision.
    /// `retry` is asked after each failure whether to prompt again.
    pub fn run(
        &mut self,
        auth: &dyn BiometricAuthenticator,
        reason: &str,
        pin_session_active: bool,
        mut retry: impl FnMut(u32) -> bool,
    ) -> GateStep {
        let mut step = self.start(pin_session_active);
        loop {
            step = match step {
                GateStep::Prompt {
                    allow_device_credential,
                } => {
                    let outcome = auth.authenticate(&PromptRequest {
                        reason: reason.to_owned(),
                        allow_device_credential,
                    });
                    self.on_outcome(outcome, pin_session_active)
                }
                GateStep::RetryOrCancel { failures } => {
                    if retry(failures) {
                        self.retry()
                    } else {
                        self.cancel()
                    }
                }
                decided => return decided,
            }
        }
    }

    fn pass(pin_session_active: bool) -> GateStep {
        if pin_session_active {
            GateStep::SkipPin
        } else {
            GateStep::AskPin { end_session: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    const ON: BiometricSetting = BiometricSetting {
        enabled: true,
        on_lockout: LockoutFallback::DeviceCredential,
    };
    const ON_PIN_ONLY: BiometricSetting = BiometricSetting {
        enabled: true,
        on_lockout: LockoutFallback::PinOnly,
    };

    /// Replays scripted outcomes and records the prompts it was shown.
    struct Scripted {
        outcomes: Mutex<Vec<BiometricOutcome>>,
        prompts: Mutex<Vec<PromptRequest>>,
    }

    impl Scripted {
        fn new(mut outcomes: Vec<BiometricOutcome>) -> Self {
            outcomes.reverse();
            Self {
                outcomes: Mutex::new(outcomes),
                prompts: Mutex::new(Vec::new()),
            }
        }
        fn prompts(&self) -> Vec<PromptRequest> {
            self.prompts.lock().unwrap().clone()
        }
    }

    impl BiometricAuthenticator for Scripted {
        fn availability(&self) -> Availability {
            Availability::Available
        }
        fn authenticate(&self, request: &PromptRequest) -> BiometricOutcome {
            self.prompts.lock().unwrap().push(request.clone());
            self.outcomes
                .lock()
                .unwrap()
                .pop()
                .expect("the gate prompted more often than scripted")
        }
    }

    fn gate(setting: BiometricSetting) -> BiometricGate {
        BiometricGate::new(setting, &Availability::Available)
    }

    #[test]
    fn disabled_gate_is_transparent() {
        let mut g = gate(BiometricSetting::default());
        assert!(!g.is_active());
        assert_eq!(g.start(false), GateStep::AskPin { end_session: false });
        let mut g = gate(BiometricSetting::default());
        assert_eq!(g.start(true), GateStep::SkipPin);
    }

    #[test]
    fn unavailable_biometrics_are_transparent_even_when_enabled() {
        let unavailable = Availability::Unavailable {
            reason: "desktop".into(),
        };
        let mut g = BiometricGate::new(ON, &unavailable);
        assert!(!g.is_active());
        assert_eq!(g.start(false), GateStep::AskPin { end_session: false });
        let desktop = NoBiometrics::default();
        let mut g = BiometricGate::new(ON, &desktop.availability());
        assert_eq!(
            g.run(&desktop, "sign", true, |_| true),
            GateStep::SkipPin,
            "no prompt is shown where there is no biometric"
        );
    }

    #[test]
    fn success_skips_the_pin_only_with_an_active_session() {
        let mut g = gate(ON);
        assert_eq!(
            g.start(true),
            GateStep::Prompt {
                allow_device_credential: false
            }
        );
        assert_eq!(
            g.on_outcome(BiometricOutcome::Success, true),
            GateStep::SkipPin
        );

        let mut g = gate(ON);
        g.start(false);
        assert_eq!(
            g.on_outcome(BiometricOutcome::Success, false),
            GateStep::AskPin { end_session: false },
            "a biometric alone never replaces the PIN"
        );
    }

    #[test]
    fn failure_offers_retry_and_counts() {
        let mut g = gate(ON);
        g.start(true);
        assert_eq!(
            g.on_outcome(BiometricOutcome::Failed, true),
            GateStep::RetryOrCancel { failures: 1 }
        );
        assert_eq!(
            g.retry(),
            GateStep::Prompt {
                allow_device_credential: false
            }
        );
        assert_eq!(
            g.on_outcome(BiometricOutcome::Failed, true),
            GateStep::RetryOrCancel { failures: 2 }
        );
        assert_eq!(g.cancel(), GateStep::Cancelled);
        assert_eq!(g.retry(), GateStep::Cancelled, "no retry after cancel");
    }

    #[test]
    fn cancel_at_the_prompt_cancels_signing() {
        let mut g = gate(ON);
        g.start(true);
        assert_eq!(
            g.on_outcome(BiometricOutcome::Cancelled, true),
            GateStep::Cancelled
        );
        assert_eq!(
            g.on_outcome(BiometricOutcome::Success, true),
            GateStep::Cancelled,
            "a late success after cancel must not skip the PIN"
        );
    }

    #[test]
    fn lockout_offers_the_device_credential_when_set() {
        let auth = Scripted::new(vec![BiometricOutcome::LockedOut, BiometricOutcome::Success]);
        let mut g = gate(ON);
        assert_eq!(g.run(&auth, "sign", true, |_| true), GateStep::SkipPin);
        let prompts = auth.prompts();
        assert_eq!(prompts.len(), 2);
        assert!(!prompts[0].allow_device_credential);
        assert!(prompts[1].allow_device_credential);
        assert_eq!(prompts[1].reason, "sign");
    }

    #[test]
    fn lockout_of_the_device_credential_falls_back_to_the_pin() {
        let auth = Scripted::new(vec![
            BiometricOutcome::LockedOut,
            BiometricOutcome::LockedOut,
        ]);
        let mut g = gate(ON);
        assert_eq!(
            g.run(&auth, "sign", true, |_| true),
            GateStep::AskPin { end_session: true }
        );
    }

    #[test]
    fn lockout_with_pin_only_asks_the_pin_and_ends_the_session() {
        let mut g = gate(ON_PIN_ONLY);
        g.start(true);
        assert_eq!(
            g.on_outcome(BiometricOutcome::LockedOut, true),
            GateStep::AskPin { end_session: true }
        );
        let mut g = gate(ON_PIN_ONLY);
        g.start(false);
        assert_eq!(
            g.on_outcome(BiometricOutcome::LockedOut, false),
            GateStep::AskPin { end_session: false }
        );
    }

    #[test]
    fn vanished_biometrics_fall_back_to_the_pin() {
        let mut g = gate(ON);
        g.start(true);
        assert_eq!(
            g.on_outcome(BiometricOutcome::Unavailable, true),
            GateStep::AskPin { end_session: true }
        );
    }

    #[test]
    fn run_stops_when_the_user_gives_up_after_failures() {
        let auth = Scripted::new(vec![
            BiometricOutcome::Failed,
            BiometricOutcome::Failed,
            BiometricOutcome::Failed,
        ]);
        let mut g = gate(ON);
        let mut asked = Vec::new();
        let step = g.run(&auth, "sign", true, |failures| {
            asked.push(failures);
            failures < 3
        });
        assert_eq!(step, GateStep::Cancelled);
        assert_eq!(asked, vec![1, 2, 3]);
        assert_eq!(auth.prompts().len(), 3);
    }

    #[test]
    fn a_verified_pin_passes_the_gate_after_any_answered_prompt() {
        for outcome in [
            BiometricOutcome::Failed,
            BiometricOutcome::Cancelled,
            BiometricOutcome::LockedOut,
            BiometricOutcome::Unavailable,
            BiometricOutcome::Success,
        ] {
            let mut g = gate(ON_PIN_ONLY);
            g.start(false);
            g.on_outcome(outcome, false);
            assert_eq!(g.pin_verified(), Some(GateStep::SkipPin), "{outcome:?}");
            // Decided: a late prompt answer changes nothing.
            assert_eq!(
                g.on_outcome(BiometricOutcome::Failed, true),
                GateStep::Cancelled
            );
        }
        // Cancel on the retry screen after a failure, then the PIN.
        let mut g = gate(ON);
        g.start(false);
        g.on_outcome(BiometricOutcome::Failed, false);
        g.cancel();
        assert_eq!(g.pin_verified(), Some(GateStep::SkipPin));
    }

    #[test]
    fn a_verified_pin_before_any_prompt_answer_leaves_the_prompt_first() {
        let mut g = gate(ON);
        assert_eq!(
            g.start(true),
            GateStep::Prompt {
                allow_device_credential: false
            }
        );
        assert_eq!(g.pin_verified(), None);
        // The prompt still runs and decides.
        assert_eq!(
            g.on_outcome(BiometricOutcome::Success, true),
            GateStep::SkipPin
        );
        // An inactive gate is transparent: the PIN passes it.
        let mut off = gate(BiometricSetting::default());
        off.start(false);
        assert_eq!(off.pin_verified(), Some(GateStep::SkipPin));
    }

    #[test]
    fn settings_round_trip_as_json() {
        let json = serde_json::to_value(ON_PIN_ONLY).unwrap();
        assert_eq!(json["enabled"], true);
        assert_eq!(json["onLockout"], "pinOnly");
        let back: BiometricSetting = serde_json::from_value(json).unwrap();
        assert_eq!(back, ON_PIN_ONLY);
    }
}
