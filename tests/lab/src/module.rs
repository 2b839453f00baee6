//! The two PKCS#11 modules the lab provisions tokens on, and their per-token
//! configuration files.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{LabError, Result};

/// Where Debian installs SoftHSM2's module.
const SOFTHSM2_DEFAULT_PATH: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Where `tests/lab/build-kryoptic.sh` puts the kryoptic module.
const KRYOPTIC_DEFAULT_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/libkryoptic_pkcs11.so");

/// A software PKCS#11 module the lab can provision tokens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Module {
    /// SoftHSM2 2.6 (Debian package `softhsm2`). Never locks the user PIN.
    SoftHsm2,
    /// kryoptic 1.5 (built by `tests/lab/build-kryoptic.sh`). Locks the user
    /// PIN after 10 consecutive failures.
    Kryoptic,
}

impl Module {
    /// A short human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            Module::SoftHsm2 => "SoftHSM2",
            Module::Kryoptic => "kryoptic",
        }
    }

    /// The environment variable that points the module at its configuration
    /// file. It is read by the module at `C_Initialize`.
    pub const fn config_env_var(self) -> &'static str {
        match self {
            Module::SoftHsm2 => "SOFTHSM2_CONF",
            Module::Kryoptic => "KRYOPTIC_CONF",
        }
    }

    /// The environment variable that overrides the module's library path.
    pub const fn path_override_env_var(self) -> &'static str {
        match self {
            Module::SoftHsm2 => "SECURESIGN_LAB_SOFTHSM2_MODULE",
            Module::Kryoptic => "SECURESIGN_LAB_KRYOPTIC_MODULE",
        }
    }

    /// The module's shared library, checked to exist.
    ///
    /// Uses [`Module::path_override_env_var`] when set, else the default
    /// location. A missing module is an error naming the script to run.
    pub fn library_path(self) -> Result<PathBuf> {
        let path = match std::env::var_os(self.path_override_env_var()) {
            Some(custom) => PathBuf::from(custom),
            None => PathBuf::from(match self {
                Module::SoftHsm2 => SOFTHSM2_DEFAULT_PATH,
                Module::Kryoptic => KRYOPTIC_DEFAULT_PATH,
            }),
        };
        if path.is_file() {
            return Ok(path);
        }
        Err(match self {
            Module::SoftHsm2 => LabError::SoftHsmNotInstalled { path },
            Module::Kryoptic => LabError::KryopticNotBuilt { path },
        })
    }

    /// Writes a configuration whose token storage lives inside `dir` and
    /// returns the configuration file's path.
    pub(crate) fn write_config(self, dir: &Path) -> Result<PathBuf> {
        let (file_name, contents) = match self {
            Module::SoftHsm2 => {
                let token_dir = dir.join("softhsm-tokens");
                fs::create_dir(&token_dir)
                    .map_err(LabError::io(format!("create {}", token_dir.display())))?;
                let contents = format!(
                    "# SecureSign token lab: one SoftHSM2 token store per test\n\
                     directories.tokendir = {}\n\
                     objectstore.backend = file\n\
                     log.level = ERROR\n\
                     slots.removable = false\n",
                    token_dir.display()
                );
                ("softhsm2.conf", contents)
            }
            Module::Kryoptic => {
                // One slot backed by one sqlite file; everything else (EC
                // point encoding, mechanisms) stays at kryoptic's defaults.
                let contents = format!(
                    "# SecureSign token lab: one kryoptic slot per test\n\
                     [[slots]]\n\
                     slot = 1\n\
                     description = \"SecureSign lab slot\"\n\
                     dbtype = \"sqlite\"\n\
                     dbargs = {}\n",
                    toml_string(&dir.join("kryoptic-token.sql"))
                );
                ("kryoptic.conf", contents)
            }
        };
        let path = dir.join(file_name);
        fs::write(&path, contents).map_err(LabError::io(format!("write {}", path.display())))?;
        Ok(path)
    }
}

/// A path as a TOML basic string (quotes and backslashes escaped).
fn toml_string(path: &Path) -> String {
    let escaped = path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("\"{escaped}\"")
}
