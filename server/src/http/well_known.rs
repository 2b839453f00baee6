//! The files that let phones open `https://securesign.toolsbots.com/sign?requestId=…`
//! (the `appLink` of a session) in the app itself, and in no other app:
//! `GET /.well-known/assetlinks.json` (Android App Links, Digital Asset Links) and
//! `GET /.well-known/apple-app-site-association` (iOS Universal Links).
//!
//! Both come from the operator's configuration, checked once at start ([`AppLinks::new`])
//! and serialised then; a platform that is not configured answers `404 SS_NOT_FOUND` in
//! the API's error envelope, never an empty or made-up file (a wrong file would make
//! Android verify nothing, silently). The host and path of the link are the core's
//! [`APP_LINK_HOST`] / [`APP_LINK_PATH`], the ones the app accepts: they are not
//! configurable here because the app could not follow.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use securesign_core::deeplink::{APP_LINK_HOST, APP_LINK_PATH};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorEnvelope};

/// The app's identifier (`identifier` in `src-tauri/tauri.conf.json`): its Android
/// package name and iOS bundle id unless configured otherwise.
pub const APP_IDENTIFIER: &str = "in.securesign.app";
/// Path of the Android Digital Asset Links statement list.
pub const ASSETLINKS_PATH: &str = "/.well-known/assetlinks.json";
/// Path of the iOS apple-app-site-association file.
pub const AASA_PATH: &str = "/.well-known/apple-app-site-association";

/// The relation that lets an Android app handle the site's verified links.
const HANDLE_ALL_URLS: &str = "delegate_permission/common.handle_all_urls";
/// Longest Android package name or iOS bundle id accepted.
const MAX_ID_LEN: usize = 155;

/// What the operator configured (`serve --android-package …`); checked by
/// [`AppLinks::new`].
#[derive(Debug, Clone, Default)]
pub struct AppLinksSettings {
    /// Android package name; default [`APP_IDENTIFIER`].
    pub android_package: Option<String>,
    /// SHA-256 fingerprints of the Android app's signing certificates (`AA:BB:…` as
    /// `keytool -list -v` prints them, or 64 hex digits as `apksigner` does). None: no
    /// Android file.
    pub android_cert_fingerprints: Vec<String>,
    /// The Apple developer Team ID (10 characters). None: no Apple file.
    pub apple_team_id: Option<String>,
    /// iOS bundle id; default [`APP_IDENTIFIER`].
    pub apple_bundle_id: Option<String>,
}

/// A configuration the server refuses to start with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppLinksError {
    /// A fingerprint that is not 32 hex bytes.
    #[error("Android signing-certificate fingerprint {0:?} (--android-cert-fingerprint): expected the certificate's SHA-256 as 32 hex byte pairs separated by colons (AA:BB:…:FF, as `keytool -list -v` prints it) or as 64 hex digits")]
    Fingerprint(String),
    /// A package name Android would not accept.
    #[error("Android package name {0:?} (--android-package): expected at least two dot-separated parts, each a letter followed by letters, digits or underscores (e.g. in.securesign.app)")]
    PackageName(String),
    /// A package name without any fingerprint.
    #[error("--android-package is set but no --android-cert-fingerprint is: Android verifies App Links against the signing certificate, so give at least one")]
    PackageWithoutFingerprint,
    /// A Team ID that is not 10 uppercase letters or digits.
    #[error("Apple Team ID {0:?} (--apple-team-id): expected exactly 10 uppercase letters or digits, as the Apple developer account shows it")]
    TeamId(String),
    /// A bundle id iOS would not accept.
    #[error("iOS bundle id {0:?} (--apple-bundle-id): expected dot-separated parts of letters, digits and hyphens (e.g. in.securesign.app)")]
    BundleId(String),
    /// A bundle id without a Team ID.
    #[error("--apple-bundle-id is set but --apple-team-id is not: the app id is \"<TEAMID>.<bundle id>\"")]
    BundleWithoutTeam,
}

/// One Digital Asset Links statement (`assetlinks.json` is a list of them).
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetStatement {
    /// `["delegate_permission/common.handle_all_urls"]`.
    pub relation: Vec<String>,
    /// The Android app.
    pub target: AndroidTarget,
}

/// The app an [`AssetStatement`] delegates to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AndroidTarget {
    /// `android_app`.
    pub namespace: String,
    /// The app's package name.
    #[schema(example = "in.securesign.app")]
    pub package_name: String,
    /// SHA-256 of its signing certificates, `AA:BB:…` upper case.
    pub sha256_cert_fingerprints: Vec<String>,
}

/// The apple-app-site-association file.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppleAppSiteAssociation {
    /// Universal Links.
    pub applinks: AppleAppLinks,
}

/// The `applinks` section.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppleAppLinks {
    /// One entry: the app and the link it handles.
    pub details: Vec<AppleAppLinkDetail>,
}

/// Which apps handle which links.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppleAppLinkDetail {
    /// `["<TEAMID>.<bundle id>"]`.
    #[serde(rename = "appIDs")]
    #[schema(example = json!(["ABCDE12345.in.securesign.app"]))]
    pub app_ids: Vec<String>,
    /// The link's path and its one query parameter.
    pub components: Vec<AppleAppLinkComponent>,
}

/// A URL pattern of [`AppleAppLinkDetail`].
#[derive(Debug, Serialize, ToSchema)]
pub struct AppleAppLinkComponent {
    /// The path, exactly `/sign`.
    #[serde(rename = "/")]
    pub path: String,
    /// `{"requestId": "?*"}`: the request id is present and not empty.
    #[serde(rename = "?")]
    pub query: BTreeMap<String, String>,
    /// What the link is.
    pub comment: String,
}

/// The two files, serialised once; `None` where the platform is not configured.
#[derive(Debug, Clone, Default)]
pub struct AppLinks {
    assetlinks: Option<Bytes>,
    apple_app_site_association: Option<Bytes>,
}

impl AppLinks {
    /// Checks `settings` and serialises the files they configure.
    pub fn new(settings: &AppLinksSettings) -> Result<Self, AppLinksError> {
        Ok(Self {
            assetlinks: android_file(settings)?.map(to_json),
            apple_app_site_association: apple_file(settings)?.map(to_json),
        })
    }

    /// `assetlinks.json`, if an Android app is configured.
    pub fn assetlinks(&self) -> Option<&Bytes> {
        self.assetlinks.as_ref()
    }

    /// `apple-app-site-association`, if an iOS app is configured.
    pub fn apple_app_site_association(&self) -> Option<&Bytes> {
        self.apple_app_site_association.as_ref()
    }
}

fn to_json<T: Serialize>(value: T) -> Bytes {
    // Strings, lists and maps of strings only: serialising cannot fail.
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn android_file(settings: &AppLinksSettings) -> Result<Option<Vec<AssetStatement>>, AppLinksError> {
    let package = match &settings.android_package {
        Some(name) => checked_package_name(name)?,
        None => APP_IDENTIFIER.to_owned(),
    };
    if settings.android_cert_fingerprints.is_empty() {
        return match settings.android_package {
            Some(_) => Err(AppLinksError::PackageWithoutFingerprint),
            None => Ok(None),
        };
    }
    let mut fingerprints: Vec<String> = Vec::new();
    for given in &settings.android_cert_fingerprints {
        let fingerprint = normalised_fingerprint(given)?;
        if !fingerprints.contains(&fingerprint) {
            fingerprints.push(fingerprint);
        }
    }
    Ok(Some(vec![AssetStatement {
        relation: vec![HANDLE_ALL_URLS.to_owned()],
        target: AndroidTarget {
            namespace: "android_app".to_owned(),
            package_name: package,
            sha256_cert_fingerprints: fingerprints,
        },
    }]))
}

fn apple_file(
    settings: &AppLinksSettings,
) -> Result<Option<AppleAppSiteAssociation>, AppLinksError> {
    let bundle = match &settings.apple_bundle_id {
        Some(id) => checked_bundle_id(id)?,
        None => APP_IDENTIFIER.to_owned(),
    };
    let Some(team) = &settings.apple_team_id else {
        return match settings.apple_bundle_id {
            Some(_) => Err(AppLinksError::BundleWithoutTeam),
            None => Ok(None),
        };
    };
    let team = team.trim();
    if team.len() != 10
        || !team
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(AppLinksError::TeamId(team.to_owned()));
    }
    Ok(Some(AppleAppSiteAssociation {
        applinks: AppleAppLinks {
            details: vec![AppleAppLinkDetail {
                app_ids: vec![format!("{team}.{bundle}")],
                components: vec![AppleAppLinkComponent {
                    path: APP_LINK_PATH.to_owned(),
                    query: BTreeMap::from([("requestId".to_owned(), "?*".to_owned())]),
                    comment: format!(
                        "SecureSign signing requests (https://{APP_LINK_HOST}{APP_LINK_PATH}?requestId=...)"
                    ),
                }],
            }],
        },
    }))
}

/// `AA:BB:…` (any case) or 64 hex digits → `AA:BB:…` upper case.
fn normalised_fingerprint(given: &str) -> Result<String, AppLinksError> {
    let trimmed = given.trim();
    let digits: String = if trimmed.contains(':') {
        let pairs: Vec<&str> = trimmed.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
            return Err(AppLinksError::Fingerprint(given.to_owned()));
        }
        pairs.concat()
    } else {
        trimmed.to_owned()
    };
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppLinksError::Fingerprint(given.to_owned()));
    }
    let upper = digits.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32)
        .filter_map(|i| upper.get(2 * i..2 * i + 2))
        .collect();
    Ok(pairs.join(":"))
}

/// Android's `applicationId` rule: two or more parts, each `[A-Za-z][A-Za-z0-9_]*`.
fn checked_package_name(name: &str) -> Result<String, AppLinksError> {
    let parts: Vec<&str> = name.split('.').collect();
    let part_ok = |p: &&str| {
        let mut bytes = p.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if name.len() > MAX_ID_LEN || parts.len() < 2 || !parts.iter().all(part_ok) {
        return Err(AppLinksError::PackageName(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// Apple's `CFBundleIdentifier` rule: letters, digits, hyphens and dots, no empty part.
fn checked_bundle_id(id: &str) -> Result<String, AppLinksError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !ok {
        return Err(AppLinksError::BundleId(id.to_owned()));
    }
    Ok(id.to_owned())
}

/// The well-known routes over `links` (any router state: they carry their own).
pub fn routes<S: Clone + Send + Sync + 'static>(links: Arc<AppLinks>) -> Router<S> {
    Router::new()
        .route(ASSETLINKS_PATH, get(assetlinks))
        .route(AASA_PATH, get(apple_app_site_association))
        .with_state(links)
}

fn json_file(body: Option<&Bytes>, missing: &str) -> Result<Response, ApiError> {
    let body = body.ok_or_else(|| ApiError::not_found(missing))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.clone(),
    )
        .into_response())
}

/// Android Digital Asset Links: the app that handles `appLink`s.
#[utoipa::path(
    get, path = "/.well-known/assetlinks.json", tag = "app links",
    responses(
        (status = 200, description = "The statement list", body = [AssetStatement], content_type = "application/json"),
        (status = 404, description = "SS_NOT_FOUND: no Android app configured (serve --android-cert-fingerprint)", body = ErrorEnvelope),
    )
)]
pub async fn assetlinks(State(links): State<Arc<AppLinks>>) -> Result<Response, ApiError> {
    json_file(
        links.assetlinks(),
        "no Android app is configured on this server (--android-cert-fingerprint)",
    )
}

/// iOS Universal Links: the app that handles `appLink`s.
#[utoipa::path(
    get, path = "/.well-known/apple-app-site-association", tag = "app links",
    responses(
        (status = 200, description = "The association file", body = AppleAppSiteAssociation, content_type = "application/json"),
        (status = 404, description = "SS_NOT_FOUND: no iOS app configured (serve --apple-team-id)", body = ErrorEnvelope),
    )
)]
pub async fn apple_app_site_association(
    State(links): State<Arc<AppLinks>>,
) -> Result<Response, ApiError> {
    json_file(
        links.apple_app_site_association(),
        "no iOS app is configured on this server (--apple-team-id)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5";

    #[test]
    fn fingerprints_are_normalised_to_upper_case_pairs() {
        assert_eq!(normalised_fingerprint(FP).unwrap(), FP);
        assert_eq!(
            normalised_fingerprint(&FP.to_ascii_lowercase()).unwrap(),
            FP
        );
        assert_eq!(
            normalised_fingerprint(&FP.replace(':', "").to_ascii_lowercase()).unwrap(),
            FP
        );
        for bad in [
            "",
            "14:6D",
            &FP[3..],
            &format!("{FP}:00"),
            &FP.replacen("14", "1G", 1),
            &FP.replacen(":6D", "6:D", 1),
            &FP.replace(':', "-"),
        ] {
            assert_eq!(
                normalised_fingerprint(bad),
                Err(AppLinksError::Fingerprint(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn package_names_follow_androids_rule() {
        for good in [APP_IDENTIFIER, "com.example.app_2", "a.b"] {
            assert!(checked_package_name(good).is_ok(), "{good}");
        }
        for bad in [
            "app",
            "in..app",
            "in.securesign.",
            "1n.app",
            "in.securesign.app-x",
            "in._a",
            "",
        ] {
            assert!(checked_package_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bundle_ids_follow_apples_rule() {
        assert!(checked_bundle_id("in.securesign.app-dev").is_ok());
        for bad in ["", "in..app", "in.secure sign", "in.app_x"] {
            assert!(checked_bundle_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn incomplete_settings_are_refused() {
        let package_only = AppLinksSettings {
            android_package: Some(APP_IDENTIFIER.to_owned()),
            ..AppLinksSettings::default()
        };
        assert_eq!(
            AppLinks::new(&package_only).unwrap_err(),
            AppLinksError::PackageWithoutFingerprint
        );
        let bundle_only = AppLinksSettings {
            apple_bundle_id: Some(APP_IDENTIFIER.to_owned()),
            ..AppLinksSettings::default()
        };
        assert_eq!(
            AppLinks::new(&bundle_only).unwrap_err(),
            AppLinksError::BundleWithoutTeam
        );
        for team in ["ABCDE1234", "abcde12345", "ABCDE123456", "ABCDE-2345"] {
            let settings = AppLinksSettings {
                apple_team_id: Some(team.to_owned()),
                ..AppLinksSettings::default()
            };
            assert_eq!(
                AppLinks::new(&settings).unwrap_err(),
                AppLinksError::TeamId(team.to_owned())
            );
        }
    }

    #[test]
    fn nothing_configured_serves_nothing() {
        let links = AppLinks::new(&AppLinksSettings::default()).unwrap();
        assert!(links.assetlinks().is_none());
        assert!(links.apple_app_site_association().is_none());
    }
}
