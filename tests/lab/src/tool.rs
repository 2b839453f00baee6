//! Running the lab's command-line tools (`openssl`, `pkcs11-tool`) with
//! clear errors and without leaking PINs into error messages.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::process::{Command, Stdio};

use crate::{LabError, Result};

/// One invocation of an external tool.
pub(crate) struct Tool {
    program: &'static str,
    command: Command,
    /// The command line as shown in errors; secrets are redacted.
    shown: Vec<String>,
}

impl Tool {
    /// Starts building an invocation of `program` (looked up on `PATH`).
    pub(crate) fn new(program: &'static str) -> Self {
        let mut command = Command::new(program);
        command.stdin(Stdio::null());
        Self {
            program,
            command,
            shown: vec![program.to_owned()],
        }
    }

    /// Adds an argument that may appear in error messages.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push(arg.as_ref().to_string_lossy().into_owned());
        self.command.arg(arg);
        self
    }

    /// Adds several arguments that may appear in error messages.
    pub(crate) fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Tool::arg)
    }

    /// Adds an argument (a PIN) that is never shown in error messages.
    pub(crate) fn secret_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push("<redacted>".to_owned());
        self.command.arg(arg);
        self
    }

    /// Sets an environment variable for the child only.
    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Runs the tool to completion and returns its standard output.
    ///
    /// The child is always waited for, so no process outlives this call.
    pub(crate) fn run(mut self) -> Result<Vec<u8>> {
        let output = self.command.output().map_err(|err| match err.kind() {
            ErrorKind::NotFound => LabError::ToolMissing { tool: self.program },
            _ => LabError::Io {
                context: format!("start `{}`", self.program),
                source: err,
            },
        })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        Err(LabError::ToolFailed {
            command: self.shown.join(" "),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
