//! User settings: API base URL, idle timeout, biometric gate, token source, signing key.
//!
//! Stored as JSON in the app's config directory. The API base URL lives only here —
//! never in a deep link — and must be `https`, or plain `http` on a loopback address.

use std::path::{Path, PathBuf};
use std::time::Duration;

use securesign_core::biometric::BiometricSetting;
use securesign_core::session::SessionPolicy;
use securesign_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tauri_plugin_securesign_transport::PhoneLink;
use url::Url;

/// The production API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.securesign.toolsbots.com";
/// Spec default idle timeout, minutes.
pub const DEFAULT_IDLE_TIMEOUT_MINUTES: u32 = 15;
/// Longest idle timeout a user may set, minutes.
pub const MAX_IDLE_TIMEOUT_MINUTES: u32 = 8 * 60;
/// Longest PKCS#11 token label (`CK_TOKEN_INFO.label` is 32 bytes).
pub const MAX_TOKEN_LABEL_BYTES: usize = 32;
/// Settings file name inside the config directory.
pub const FILE_NAME: &str = "settings.json";

/// Where the token is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum TokenSource {
    /// A PKCS#11 module; `None` discovers one (p11-kit registry, known vendor paths).
    #[serde(rename_all = "camelCase")]
    Pkcs11 {
        /// Absolute path of the module library.
        module_path: Option<PathBuf>,
        /// The token's label when the module shows several tokens; `None` uses the only one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_label: Option<String>,
    },
    /// A PIV smart card in a PC/SC reader.
    #[serde(rename_all = "camelCase")]
    PcscReader {
        /// Reader name; `None` uses the only reader.
        reader: Option<String>,
    },
    /// A PIV token the phone reaches through its platform: a USB token or reader on
    /// Android (OTG), an NFC card, a USB-C reader on iOS. Phones only.
    Phone(PhoneLink),
}

impl Default for TokenSource {
    /// Desktop: a PKCS#11 module found automatically. Phones: a USB token when one is
    /// plugged in, else an NFC tap.
    fn default() -> Self {
        if cfg!(mobile) {
            Self::Phone(PhoneLink::Auto)
        } else {
            Self::Pkcs11 {
                module_path: None,
                token_label: None,
            }
        }
    }
}

/// The app's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// Base URL of the SecureSign REST API.
    pub api_base_url: String,
    /// Auto logout after this many idle minutes.
    pub idle_timeout_minutes: u32,
    /// Biometric gate before signing (phones).
    pub biometric: BiometricSetting,
    /// Where the token is.
    pub token_source: TokenSource,
    /// Key id (hex) or label to sign with; `None` when the token holds one signing key.
    pub signing_key: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            idle_timeout_minutes: DEFAULT_IDLE_TIMEOUT_MINUTES,
            biometric: BiometricSetting::default(),
            token_source: TokenSource::default(),
            signing_key: None,
        }
    }
}

impl Settings {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        securesign_client::base_url::parse(&self.api_base_url)?;
        if self.idle_timeout_minutes == 0 || self.idle_timeout_minutes > MAX_IDLE_TIMEOUT_MINUTES {
            return Err(Error::Config(format!(
                "idle timeout must be 1 to {MAX_IDLE_TIMEOUT_MINUTES} minutes"
            )));
        }
        match &self.token_source {
            TokenSource::Pkcs11 {
                module_path: Some(path),
                ..
            } if !path.is_absolute() => {
                return Err(Error::Config(
                    "the PKCS#11 module path must be absolute".into(),
                ))
            }
            TokenSource::Pkcs11 {
                token_label: Some(label),
                ..
            } if label.trim().is_empty() || label.len() > MAX_TOKEN_LABEL_BYTES => {
                return Err(Error::Config(format!(
                    "the token label must be 1 to {MAX_TOKEN_LABEL_BYTES} bytes"
                )))
            }
            TokenSource::PcscReader { reader: Some(name) } if name.trim().is_empty() => {
                return Err(Error::Config("the reader name is empty".into()))
            }
            TokenSource::Phone(PhoneLink::Usb {
                device: Some(device),
            }) if device.trim().is_empty() => {
                return Err(Error::Config("the USB device name is empty".into()))
            }
            _ => {}
        }
        if let Some(key) = &self.signing_key {
            if key.is_empty() || key.len() > 64 || key.chars().any(char::is_control) {
                return Err(Error::Config(
                    "the signing key must be a key id or label of 1 to 64 characters".into(),
                ));
            }
        }
        Ok(())
    }

    /// The validated API base URL.
    pub fn api_url(&self) -> Result<Url> {
        securesign_client::base_url::parse(&self.api_base_url)
    }

    /// The PIN session policy these settings ask for.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy::with_idle_timeout(Duration::from_secs(
            u64::from(self.idle_timeout_minutes) * 60,
        ))
    }

    /// Reads settings from `dir`, or the defaults when there is no file yet.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let settings: Self = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("{} is not valid: {e}", path.display())))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Validates and writes settings to `dir` atomically (temp file + rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Internal(format!("settings do not serialize: {e}")))?;
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, dir.join(FILE_NAME)))
            .map_err(|e| Error::Config(format!("cannot save settings: {e}")))
    }
}

/// The settings directory: `$SECURESIGN_CONFIG_DIR` when set (tests, managed installs),
/// otherwise the platform's app config directory.
pub fn config_dir(platform_default: Option<PathBuf>) -> Result<PathBuf> {
    match std::env::var_os("SECURESIGN_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => platform_default.ok_or_else(|| Error::Config("no configuration directory".into())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_spec() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.idle_timeout_minutes, 15);
        assert_eq!(
            s.session_policy().idle_timeout,
            Duration::from_secs(15 * 60)
        );
        assert!(!s.biometric.enabled);
    }

    #[test]
    fn the_api_url_follows_the_client_rule() {
        // The rule itself is securesign-client's (base_url.rs); settings apply it.
        for (url, ok) in [
            ("https://api.example.in", true),
            ("http://127.0.0.1:8080", true),
            ("http://api.example.in", false),
            ("https://api.example.in/v1", false),
        ] {
            let s = Settings {
                api_base_url: url.into(),
                ..Settings::default()
            };
            assert_eq!(s.validate().is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn invalid_fields_are_refused() {
        let mut s = Settings {
            idle_timeout_minutes: 0,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
        s.idle_timeout_minutes = MAX_IDLE_TIMEOUT_MINUTES + 1;
        assert!(s.validate().is_err());
        s.idle_timeout_minutes = 5;
        s.token_source = TokenSource::Pkcs11 {
            module_path: Some("relative/lib.so".into()),
            token_label: None,
        };
        assert!(s.validate().is_err());
        for label in ["", " ", &"x".repeat(MAX_TOKEN_LABEL_BYTES + 1)] {
            s.token_source = TokenSource::Pkcs11 {
                module_path: None,
                token_label: Some(label.to_owned()),
            };
            assert!(s.validate().is_err(), "{label:?}");
        }
        s.token_source = TokenSource::PcscReader {
            reader: Some(" ".into()),
        };
        assert!(s.validate().is_err());
        s.token_source = TokenSource::Phone(PhoneLink::Usb {
            device: Some(String::new()),
        });
        assert!(s.validate().is_err());
        s.token_source = TokenSource::PcscReader { reader: None };
        s.signing_key = Some(String::new());
        assert!(s.validate().is_err());
        s.signing_key = Some("01".into());
        s.validate().unwrap();
    }

    #[test]
    fn token_sources_read_and_write_as_flat_tagged_json() {
        let cases = [
            (
                TokenSource::Pkcs11 {
                    module_path: None,
                    token_label: None,
                },
                r#"{"kind":"pkcs11","modulePath":null}"#,
            ),
            (
                TokenSource::Pkcs11 {
                    module_path: Some("/usr/lib/softhsm/libsofthsm2.so".into()),
                    token_label: Some("Demo Token".into()),
                },
                r#"{"kind":"pkcs11","modulePath":"/usr/lib/softhsm/libsofthsm2.so","tokenLabel":"Demo Token"}"#,
            ),
            (
                TokenSource::PcscReader {
                    reader: Some("Virtual PCD 00 00".into()),
                },
                r#"{"kind":"pcscReader","reader":"Virtual PCD 00 00"}"#,
            ),
            (
                TokenSource::Phone(PhoneLink::Auto),
                r#"{"kind":"phone","link":"auto"}"#,
            ),
            (
                TokenSource::Phone(PhoneLink::Usb {
                    device: Some("/dev/bus/usb/001/002".into()),
                }),
                r#"{"kind":"phone","link":"usb","device":"/dev/bus/usb/001/002"}"#,
            ),
            (
                TokenSource::Phone(PhoneLink::Nfc),
                r#"{"kind":"phone","link":"nfc"}"#,
            ),
        ];
        for (source, json) in cases {
            assert_eq!(serde_json::to_string(&source).unwrap(), json);
            assert_eq!(serde_json::from_str::<TokenSource>(json).unwrap(), source);
        }
        // (serde ignores unknown fields beside a unit variant's tag, so `"link":"nfc"` with an
        // extra field still reads as NFC; struct variants refuse them.)
        for bad in [
            r#"{"kind":"phone","link":"bluetooth"}"#,
            r#"{"kind":"phone","link":"usb","device":null,"extra":1}"#,
            r#"{"kind":"phone"}"#,
        ] {
            assert!(serde_json::from_str::<TokenSource>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn save_and_load_round_trip_and_missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), Settings::default());
        let s = Settings {
            api_base_url: "http://127.0.0.1:9".into(),
            idle_timeout_minutes: 3,
            signing_key: Some("signer-ec".into()),
            ..Settings::default()
        };
        s.save(dir.path()).unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), s);
        assert!(!dir.path().join("settings.json.tmp").exists());
    }

    #[test]
    fn a_tampered_file_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            r#"{"apiBaseUrl":"http://evil.example"}"#,
        )
        .unwrap();
        let err = Settings::load(dir.path()).unwrap_err();
        assert_eq!(err.code(), securesign_core::ErrorCode::Config);
        std::fs::write(dir.path().join(FILE_NAME), r#"{"unknown":1}"#).unwrap();
        assert!(Settings::load(dir.path()).is_err());
    }
}
