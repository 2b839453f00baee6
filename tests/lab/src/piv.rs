//! A virtual PIV card behind a private `pcscd`, driven through the lab scripts in
//! `tests/lab/piv/` (see its README): one run directory per [`PivLab`], so runs in
//! parallel test processes never see each other.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::tool::Tool;
use crate::{LabError, Result};

/// Reader name the card appears in (the same in every run: each run has its own pcscd).
pub const PIV_READER: &str = "Virtual PCD 00 00";

/// PIN of a fresh virtual PIV card. A well-known test value, not a secret.
pub const PIV_PIN: &str = "123456";

/// PUK of a fresh virtual PIV card. A well-known test value, not a secret.
pub const PIV_PUK: &str = "12345678";

/// OpenSC's PKCS#11 module, which drives the same card through PC/SC.
pub const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// The installed OpenSC's version, from `opensc-tool -i` (`OpenSC 0.23.0 [gcc …]`), e.g.
/// `(0, 23, 0)`. `opensc-tool` and [`OPENSC_PKCS11`] come from the same OpenSC build.
pub fn opensc_version() -> Result<(u32, u32, u32)> {
    let out = Tool::new("opensc-tool").arg("-i").run()?;
    let text = String::from_utf8_lossy(&out);
    parse_opensc_version(&text).ok_or_else(|| LabError::Io {
        context: format!("`opensc-tool -i` printed no version: {}", text.trim()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}

/// `(major, minor, patch)` from the first line of `opensc-tool -i`.
fn parse_opensc_version(text: &str) -> Option<(u32, u32, u32)> {
    let version = text.lines().next()?.strip_prefix("OpenSC ")?;
    let mut parts = version.split_whitespace().next()?.split('.');
    let mut number = || -> Option<u32> {
        let part = parts.next()?;
        let digits = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        part[..digits].parse().ok()
    };
    Some((number()?, number()?, number().unwrap_or(0)))
}

/// A key slot the lab provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PivSlot {
    /// `9A`: EC P-256 (PIV Authentication).
    Auth9A,
    /// `9C`: RSA-2048 (Digital Signature).
    Sign9C,
}

impl PivSlot {
    /// The key reference byte (`0x9A` / `0x9C`), which the core uses as the key id.
    pub fn key_ref(self) -> u8 {
        match self {
            Self::Auth9A => 0x9A,
            Self::Sign9C => 0x9C,
        }
    }

    /// OpenSC's PKCS#11 `CKA_ID` for the slot's objects (`01` for 9A, `02` for 9C).
    pub fn opensc_id(self) -> u8 {
        match self {
            Self::Auth9A => 0x01,
            Self::Sign9C => 0x02,
        }
    }

    fn pem_name(self) -> &'static str {
        match self {
            Self::Auth9A => "9a.pem",
            Self::Sign9C => "9c.pem",
        }
    }
}

/// A running virtual PIV card and its private `pcscd`, stopped (by PID) on drop.
///
/// The card starts with PIN [`PIV_PIN`], PUK [`PIV_PUK`] and 3 tries each. Its state
/// (keys, certificates, retry counters) lives in the run directory, so
/// [`PivLab::kill_card`] followed by [`PivLab::restart_card`] puts the *same* card back.
#[derive(Debug)]
pub struct PivLab {
    run: TempDir,
    env: Vec<(String, String)>,
    stopped: bool,
}

impl PivLab {
    /// Starts pcscd and a fresh card (no keys yet); ~0.7 s.
    pub fn start() -> Result<Self> {
        let run = tempfile::Builder::new()
            .prefix("securesign-piv-")
            .tempdir()
            .map_err(LabError::io("create the PIV run directory"))?;
        script("start.sh", run.path())?;
        let mut lab = Self {
            run,
            env: Vec::new(),
            stopped: false,
        };
        lab.env = read_env(&lab.run.path().join("env"))?;
        Ok(lab)
    }

    /// Starts a fresh card with keys and certificates in 9A (EC P-256) and 9C
    /// (RSA-2048), generated on the card; ~3–5 s.
    pub fn start_provisioned() -> Result<Self> {
        let lab = Self::start()?;
        script("provision.sh", lab.run_dir())?;
        Ok(lab)
    }

    /// The run directory (pcscd socket, logs, card state).
    pub fn run_dir(&self) -> &Path {
        self.run.path()
    }

    /// The variables a PC/SC or OpenSC client of this run needs
    /// (`PCSCLITE_CSOCK_NAME`, `OPENSC_CONF`, …), as set by `start.sh`.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Applies [`PivLab::env`] to this process. Call it before the first PC/SC call:
    /// libpcsclite reads the socket name once per process (nextest runs one test per
    /// process).
    pub fn apply_env(&self) {
        for (key, value) in &self.env {
            std::env::set_var(key, value);
        }
    }

    /// The PC/SC reader holding the card.
    pub fn reader(&self) -> &'static str {
        PIV_READER
    }

    /// The certificate in `slot` (DER), as provisioned.
    pub fn cert_der(&self, slot: PivSlot) -> Result<Vec<u8>> {
        let pem = self.run_dir().join("provision").join(slot.pem_name());
        Tool::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&pem)
            .run()
    }

    /// Kills the card process (SIGKILL: the card is pulled out mid-whatever) and waits
    /// until pcscd reports the reader empty. pcscd keeps running.
    pub fn kill_card(&self) -> Result<()> {
        script("kill-card.sh", self.run_dir())
    }

    /// Freezes the card process (SIGSTOP): APDUs sent now wait unanswered, so a test can
    /// kill the card while a command is in flight. [`PivLab::kill_card`] ends it.
    ///
    /// Through OpenSC 0.23's PKCS#11 module (Debian 12) a card killed with an APDU in flight
    /// can deadlock the client for good (an `sc_lock` bug fixed in OpenSC 0.24, see
    /// [`opensc_version`] and `core/tests/opensc_piv.rs`). [`PivLab::kill_card`] alone, with
    /// no command in flight, does not hit it: it returns once pcscd reports the reader empty.
    pub fn freeze_card(&self) -> Result<()> {
        let pid = self.card_pid()?;
        // bash's builtin `kill`: no dependency on procps.
        Tool::new("bash")
            .args(["-c", "kill -STOP \"$1\"", "freeze-card"])
            .arg(pid.to_string())
            .run()
            .map(|_| ())
    }

    /// Puts the same card back (same state) and waits until pcscd sees it; ~0.4 s.
    pub fn restart_card(&self) -> Result<()> {
        script("restart-card.sh", self.run_dir())
    }

    /// PID of the card process.
    pub fn card_pid(&self) -> Result<u32> {
        read_pid(&self.run_dir().join("card.pid"))
    }

    /// PID of this run's pcscd.
    pub fn pcscd_pid(&self) -> Result<u32> {
        read_pid(&self.run_dir().join("pcscd.pid"))
    }

    /// Stops the card, then pcscd, by their PIDs.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        script("stop.sh", self.run_dir())
    }
}

impl Drop for PivLab {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("piv lab: stop failed: {e}");
        }
    }
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("piv")
}

/// Runs `tests/lab/piv/NAME RUN` to completion.
fn script(name: &str, run: &Path) -> Result<()> {
    Tool::new("bash")
        .arg(scripts_dir().join(name))
        .arg(run)
        .run()
        .map(|_| ())
}

/// `export KEY="VALUE"` lines of the run's env file.
fn read_env(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).map_err(LabError::io(format!("read {}", path.display())))?;
    Ok(text
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim_matches('"').to_owned()))
        .collect())
}

fn read_pid(path: &Path) -> Result<u32> {
    let text =
        std::fs::read_to_string(path).map_err(LabError::io(format!("read {}", path.display())))?;
    text.trim().parse().map_err(|_| LabError::Io {
        context: format!("{} holds no PID", path.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_opensc_version;

    #[test]
    fn opensc_version_from_the_tool_banner() {
        let banner = "OpenSC 0.23.0 [gcc  12.2.0]\nEnabled features: locking zlib\n";
        assert_eq!(parse_opensc_version(banner), Some((0, 23, 0)));
        assert_eq!(
            parse_opensc_version("OpenSC 0.26.1-rc1 [x]"),
            Some((0, 26, 1))
        );
        assert_eq!(parse_opensc_version("OpenSC 0.25"), Some((0, 25, 0)));
        assert_eq!(parse_opensc_version("something else"), None);
    }
}
