//! Which way a module unblocks the user PIN with the PUK / SO PIN, chosen per module.
//!
//! - Standard PKCS#11 (SoftHSM2, kryoptic, the vendor modules of DSC tokens): SO login with
//!   the PUK, `C_InitPIN(new)` ([`UnblockStyle::SoInitPin`]).
//! - OpenSC (`opensc-pkcs11`, e.g. PIV cards): whatever its configuration's
//!   `user_pin_unblock_style` says (OpenSC's `opensc.conf` example documents the values):
//!   `set_pin_in_unlogged_session` → `C_SetPIN(PUK, new)` without login
//!   ([`UnblockStyle::SetPinUnlogged`], RESET RETRY COUNTER on a PIV card);
//!   `init_pin_in_so_session` → [`UnblockStyle::SoInitPin`]; `none` (OpenSC's default) or
//!   `set_pin_in_specific_context` → [`UnblockStyle::NotSupported`]: the PUK is refused
//!   before the token sees it, so no PUK try is spent on a call that cannot work.

use std::path::PathBuf;

use super::UnblockStyle;

/// The `ManufacturerID` OpenSC's PKCS#11 module reports in `C_GetInfo`.
const OPENSC_MANUFACTURER: &str = "OpenSC";

/// Where OpenSC reads its configuration when `OPENSC_CONF` is not set (its build default
/// per OS: Debian's package, the Windows installer, the macOS installer).
const OPENSC_DEFAULT_CONF: &[&str] = &[
    "/etc/opensc/opensc.conf",
    "/etc/opensc.conf",
    r"C:\Program Files\OpenSC Project\OpenSC\opensc.conf",
    "/Library/OpenSC/etc/opensc.conf",
];

/// The style for a module whose `C_GetInfo` manufacturer is `manufacturer`.
pub(super) fn for_module(manufacturer: &str) -> UnblockStyle {
    if !manufacturer.trim().starts_with(OPENSC_MANUFACTURER) {
        return UnblockStyle::SoInitPin;
    }
    let text = opensc_conf_path()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    opensc_style(&text)
}

fn opensc_conf_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OPENSC_CONF").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    OPENSC_DEFAULT_CONF
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The style an OpenSC configuration asks for: the `user_pin_unblock_style` of the
/// `app opensc-pkcs11` block, else of `app default`; absent means OpenSC's default, `none`.
pub fn opensc_style(conf: &str) -> UnblockStyle {
    let mut app: Option<String> = None;
    let mut depth = 0usize;
    let (mut own, mut default) = (None, None);
    for raw in conf.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if depth == 0 {
            if let Some(rest) = line.strip_prefix("app ") {
                app = rest.split_whitespace().next().map(str::to_owned);
            }
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "user_pin_unblock_style" {
                let value = value.trim().trim_end_matches(';').trim().to_owned();
                match app.as_deref() {
                    Some("opensc-pkcs11") => own = Some(value),
                    Some("default") => default = Some(value),
                    _ => {}
                }
            }
        }
        depth += line.matches('{').count();
        depth = depth.saturating_sub(line.matches('}').count());
    }
    match own.or(default).as_deref() {
        Some("set_pin_in_unlogged_session") => UnblockStyle::SetPinUnlogged,
        Some("init_pin_in_so_session") => UnblockStyle::SoInitPin,
        _ => UnblockStyle::NotSupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opensc_pkcs11_block_wins_over_default() {
        let conf = "app default {\n  framework pkcs15 { use_file_caching = no; }\n  pkcs11 { user_pin_unblock_style = init_pin_in_so_session; }\n}\napp opensc-pkcs11 {\n  pkcs11 {\n    user_pin_unblock_style = set_pin_in_unlogged_session;\n  }\n}\n";
        assert_eq!(opensc_style(conf), UnblockStyle::SetPinUnlogged);
        let only_default =
            "app default {\n pkcs11 {\n  user_pin_unblock_style = init_pin_in_so_session;\n }\n}\n";
        assert_eq!(opensc_style(only_default), UnblockStyle::SoInitPin);
    }

    #[test]
    fn none_comments_and_the_specific_context_style_are_not_supported() {
        assert_eq!(opensc_style(""), UnblockStyle::NotSupported);
        let commented = "app default {\n pkcs11 {\n  # user_pin_unblock_style = set_pin_in_unlogged_session;\n }\n}\n";
        assert_eq!(opensc_style(commented), UnblockStyle::NotSupported);
        let specific = "app opensc-pkcs11 { pkcs11 {\n user_pin_unblock_style = set_pin_in_specific_context;\n} }\n";
        assert_eq!(opensc_style(specific), UnblockStyle::NotSupported);
    }

    #[test]
    fn other_modules_use_so_login_and_init_pin() {
        assert_eq!(for_module("SoftHSM"), UnblockStyle::SoInitPin);
        assert_eq!(for_module("Kryoptic"), UnblockStyle::SoInitPin);
    }
}
