//! Where the PKCS#11 modules of the DSC tokens common in India are installed, per OS.
//!
//! Every path carries its source. Only paths a source names are listed; a vendor whose
//! module path we could not find in any source is named in a comment and left out (the
//! user can still type the path under "advanced", or the vendor's installer registers the
//! module with p11-kit, which discovery reads first).
//!
//! Sources (read 2026-12-02):
//! - [S1] hasthamalp/UNLOCK, `4.software-issues/dsc-issues.md` (field support notes for
//!   NIC's DSC signer): ProxKey on Linux `/usr/lib/WatchData/ProxKey/lib/libwdpkcs_SignatureP11.so`,
//!   on Windows `SignatureP11.dll` in `Windows\SysWOW64` or `Windows\system32`; ePass2003 on
//!   Windows `C:\Windows\System32\eps2003csp11.dll`.
//! - [S2] gist.github.com/cristiroma (SafeNet Authentication Client 10.8 on Ubuntu):
//!   `pkcs11-tool --module /usr/lib/libeTPkcs11.so`.
//! - [S3] Debian packages on this machine: `softhsm2` installs `/usr/lib/softhsm/libsofthsm2.so`
//!   (and `/usr/share/p11-kit/modules/softhsm2.module`); `opensc-pkcs11` installs
//!   `/usr/lib/<triplet>/opensc-pkcs11.so` (and `opensc-pkcs11.module`). Checked by the test
//!   `known_modules_resolve_on_this_machine`.
//! - [S4] pdf-tools.com PdfTools SDK, `Pkcs11.Module.Load`: "Devices from Aladdin Ltd. use
//!   etpkcs11.dll" (the file name only; the System32 directory is unverified).
//! - [S5] Gentoo ebuild of SafeNet Authentication Client 10.8 (gpo.zugaina.org): the SAC core
//!   .deb ships `usr/lib/libIDPrimePKCS11.so.<version>` for Gemalto/Thales IDPrime (the
//!   unversioned name is unverified).
//!
//! Not listed, no path found in a source: ePass2003 / HYP2003 (HyperPKI) on Linux and macOS,
//! Trust Key (Watchdata; [S1] names only its directory `/usr/lib/WatchData/TRUSTKEY`),
//! mToken (Longmai), Bit4id, and every macOS path.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Operating systems the table knows paths for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux (any distribution).
    Linux,
    /// Windows.
    Windows,
    /// macOS.
    MacOs,
}

impl Os {
    /// The OS this binary was built for; `None` on others (phones use no PKCS#11 module).
    pub fn current() -> Option<Self> {
        if cfg!(target_os = "linux") {
            Some(Self::Linux)
        } else if cfg!(target_os = "windows") {
            Some(Self::Windows)
        } else if cfg!(target_os = "macos") {
            Some(Self::MacOs)
        } else {
            None
        }
    }
}

/// What kind of module it is, when the vendor's name alone does not say it. Sent as a
/// key (`softwareToken`); the UI words it in the user's language (`kind_<key>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ModuleKind {
    /// Keys kept in files, no hardware: for trials and tests, not for a DSC.
    SoftwareToken,
}

/// One vendor module and where its installer puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModule {
    /// Vendor and product: proper names, shown as they are in every language.
    pub vendor: &'static str,
    /// What the module is, when the name does not say it (shown in the user's words).
    pub kind: Option<ModuleKind>,
    /// Installed paths, per OS, most common first.
    pub paths: &'static [(Os, &'static str)],
    /// Whether a source confirms the full path (`false`: the file name is sourced, the
    /// directory is the usual one for that OS).
    pub verified: bool,
}

impl KnownModule {
    /// The first of this module's paths for `os` that exists.
    pub fn present(&self, os: Os) -> Option<PathBuf> {
        self.paths
            .iter()
            .filter(|(for_os, _)| *for_os == os)
            .map(|(_, path)| Path::new(path))
            .find(|path| path.is_file())
            .map(Path::to_path_buf)
    }
}

/// The table. Vendor modules first, then the generic ones (OpenSC drives PIV and many
/// cards; SoftHSM2 is a software token, useful for trials and our lab).
pub const KNOWN_MODULES: &[KnownModule] = &[
    KnownModule {
        vendor: "ProxKey (Watchdata)",
        kind: None,
        paths: &[
            (
                Os::Linux,
                "/usr/lib/WatchData/ProxKey/lib/libwdpkcs_SignatureP11.so",
            ), // [S1]
            (Os::Windows, r"C:\Windows\System32\SignatureP11.dll"), // [S1]
            (Os::Windows, r"C:\Windows\SysWOW64\SignatureP11.dll"), // [S1]
        ],
        verified: true,
    },
    KnownModule {
        vendor: "ePass2003 (Feitian)",
        kind: None,
        paths: &[(Os::Windows, r"C:\Windows\System32\eps2003csp11.dll")], // [S1]
        verified: true,
    },
    KnownModule {
        vendor: "SafeNet eToken (Thales)",
        kind: None,
        paths: &[
            (Os::Linux, "/usr/lib/libeTPkcs11.so"),             // [S2]
            (Os::Windows, r"C:\Windows\System32\eTPKCS11.dll"), // [S4], directory unverified
        ],
        verified: false,
    },
    KnownModule {
        vendor: "Gemalto / Thales IDPrime",
        kind: None,
        paths: &[(Os::Linux, "/usr/lib/libIDPrimePKCS11.so")], // [S5], unversioned name unverified
        verified: false,
    },
    KnownModule {
        vendor: "OpenSC",
        kind: None,
        paths: &[
            (Os::Linux, "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"), // [S3]
            (Os::Linux, "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so"), // [S3]
        ],
        verified: true,
    },
    KnownModule {
        vendor: "SoftHSM2",
        kind: Some(ModuleKind::SoftwareToken),
        paths: &[(Os::Linux, "/usr/lib/softhsm/libsofthsm2.so")], // [S3]
        verified: true,
    },
];

/// The modules of `table` installed on this machine for `os`, with their table entries.
pub fn present_modules(table: &[KnownModule], os: Os) -> Vec<(KnownModule, PathBuf)> {
    table
        .iter()
        .filter_map(|m| m.present(os).map(|path| (*m, path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_a_path_and_absolute_paths_only() {
        for m in KNOWN_MODULES {
            assert!(!m.paths.is_empty(), "{}", m.vendor);
            for (os, path) in m.paths {
                match os {
                    Os::Windows => assert!(path.starts_with(r"C:\"), "{path}"),
                    _ => assert!(path.starts_with('/'), "{path}"),
                }
            }
        }
    }

    #[test]
    fn a_missing_module_is_not_present() {
        let table = [KnownModule {
            vendor: "nobody",
            kind: None,
            paths: &[(Os::Linux, "/nonexistent/libnothing.so")],
            verified: false,
        }];
        assert!(present_modules(&table, Os::Linux).is_empty());
    }
}
