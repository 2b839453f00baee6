//! Finding the PKCS#11 module to load: explicit path, environment, p11-kit's registry, or
//! the known install paths of the common DSC vendors ([`super::vendors`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::vendors::{self, KnownModule, ModuleKind, Os, KNOWN_MODULES};
use crate::error::{Error, Result};

/// Environment variable naming the module when no path is configured.
pub const MODULE_ENV: &str = "SECURESIGN_PKCS11_MODULE";

/// Where p11-kit keeps its `*.module` files (system-wide, then admin overrides).
const P11KIT_MODULE_DIRS: [&str; 2] = ["/usr/share/p11-kit/modules", "/etc/pkcs11/modules"];

/// Where p11-kit resolves relative `module:` paths on Debian-like systems.
const P11KIT_LIBRARY_DIRS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
];

/// Modules that never hold signing keys and are skipped during discovery.
const NOT_SIGNING_MODULES: [&str; 1] = ["p11-kit-trust"];

/// Picks the module: an explicit path wins, then [`MODULE_ENV`], then the first module
/// registered with p11-kit, then the first DSC vendor module found at a known path.
pub fn resolve_module(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return existing(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(MODULE_ENV).filter(|v| !v.is_empty()) {
        return existing(PathBuf::from(path));
    }
    p11kit_modules()
        .into_iter()
        .chain(known_path_modules().into_iter().map(|(_, path)| path))
        .next()
        .ok_or_else(|| {
            Error::Config(format!(
                "no PKCS#11 module configured: pass --module, set {MODULE_ENV}, or install the token vendor's module"
            ))
        })
}

/// How a module was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ModuleOrigin {
    /// The path in the settings (or `--module`).
    Configured,
    /// [`MODULE_ENV`].
    Environment,
    /// A p11-kit module file.
    P11Kit,
    /// A DSC vendor's known install path ([`super::vendors::KNOWN_MODULES`]).
    KnownPath,
}

/// A PKCS#11 module found on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredModule {
    /// The library.
    pub path: PathBuf,
    /// The vendor, when the path is one of the known ones (a proper name, not translated).
    pub vendor: Option<&'static str>,
    /// What the module is, when the vendor's name does not say it (the UI words it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ModuleKind>,
    /// How it was found (the first way, when several found it).
    pub origin: ModuleOrigin,
}

/// Every module this machine offers, each once: the configured one, [`MODULE_ENV`],
/// p11-kit's registry, then the vendors' known paths. Nothing is loaded.
pub fn discover_modules(configured: Option<&Path>) -> Vec<DiscoveredModule> {
    let env = std::env::var_os(MODULE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let known = known_path_modules();
    let candidates = configured
        .map(|p| (p.to_path_buf(), ModuleOrigin::Configured))
        .into_iter()
        .chain(env.map(|p| (p, ModuleOrigin::Environment)))
        .chain(
            p11kit_modules()
                .into_iter()
                .map(|p| (p, ModuleOrigin::P11Kit)),
        )
        .chain(
            known
                .iter()
                .map(|(_, p)| (p.clone(), ModuleOrigin::KnownPath)),
        );
    let mut found: Vec<(PathBuf, DiscoveredModule)> = Vec::new();
    for (path, origin) in candidates {
        let Ok(canonical) = path.canonicalize() else {
            continue;
        };
        if !canonical.is_file() || found.iter().any(|(c, _)| *c == canonical) {
            continue;
        }
        let entry = known
            .iter()
            .find(|(_, p)| p.canonicalize().ok().as_ref() == Some(&canonical))
            .map(|(entry, _)| entry);
        found.push((
            canonical,
            DiscoveredModule {
                path,
                vendor: entry.map(|e| e.vendor),
                kind: entry.and_then(|e| e.kind),
                origin,
            },
        ));
    }
    found.into_iter().map(|(_, m)| m).collect()
}

/// The vendor modules of the table installed here.
fn known_path_modules() -> Vec<(KnownModule, PathBuf)> {
    Os::current()
        .map(|os| vendors::present_modules(KNOWN_MODULES, os))
        .unwrap_or_default()
}

fn existing(path: PathBuf) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Config(format!(
            "PKCS#11 module not found: {}",
            path.display()
        )))
    }
}

/// Modules registered with p11-kit that exist on disk, in a stable order.
pub fn p11kit_modules() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = P11KIT_MODULE_DIRS
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "module"))
        .collect();
    files.sort();
    let mut modules = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Some(module) = parse_module_file(&text) else {
            continue;
        };
        if NOT_SIGNING_MODULES.iter().any(|n| module.contains(n)) {
            continue;
        }
        if let Some(path) = locate(&module) {
            if !modules.contains(&path) {
                modules.push(path);
            }
        }
    }
    modules
}

/// The `module:` value of a p11-kit module file.
pub fn parse_module_file(text: &str) -> Option<String> {
    let mut module = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() == "module" && !value.trim().is_empty() {
            module = Some(value.trim().to_owned());
        }
    }
    module
}

fn locate(module: &str) -> Option<PathBuf> {
    let path = Path::new(module);
    if path.is_absolute() {
        return path.is_file().then(|| path.to_path_buf());
    }
    P11KIT_LIBRARY_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(path))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_module_lines_and_ignores_comments() {
        let text = "# comment\nmodule: opensc-pkcs11.so\ncritical: no\n";
        assert_eq!(parse_module_file(text).as_deref(), Some("opensc-pkcs11.so"));
        assert_eq!(parse_module_file("# module: x.so\n"), None);
        assert_eq!(parse_module_file("module:\n"), None);
    }

    #[test]
    fn an_explicit_missing_path_is_a_config_error() {
        let err = resolve_module(Some(Path::new("/nonexistent/libnothing.so"))).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Config);
        assert!(err.to_string().contains("/nonexistent/libnothing.so"));
    }

    #[test]
    fn discovered_modules_exist_and_skip_the_trust_module() {
        for m in p11kit_modules() {
            assert!(m.is_file(), "{}", m.display());
            assert!(!m.to_string_lossy().contains("p11-kit-trust"));
        }
    }
}
