//! Command-line options.

use std::{ffi::OsString, fs, io, path::PathBuf};

use crate::platform::{CardStorage, STORE_FILES, STORE_FILE_LEN};

/// `--help` text.
pub const USAGE: &str = "\
usage: securesign-virtual-piv [--port PORT] [--state DIR] [--no-quickack]

  --port PORT  vpcd port to connect to (default 35963 = reader \"Virtual PCD 00 00\",
               35964 = \"Virtual PCD 00 01\")
  --state DIR  keep the card's flash (keys, certificates, PIN/PUK, retry counters) in DIR,
               so a killed and restarted card is the same card; default: RAM (fresh card)
  --no-quickack  do not re-arm TCP_QUICKACK (only to measure the ~40 ms delayed-ACK baseline)

Prints one line starting with \"securesign-virtual-piv ready\" once connected to vpcd.
Logs go to stderr; set RUST_LOG=info (or piv_authenticator=info) for more.";

/// Default vpcd port (first virtual reader).
pub const DEFAULT_PORT: u16 = 35963;

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// vpcd TCP port on 127.0.0.1.
    pub port: u16,
    /// Directory for persistent card state, if any.
    pub state: Option<PathBuf>,
    /// Re-arm `TCP_QUICKACK` before every read (off only for measurements).
    pub quickack: bool,
}

/// Bad command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help` was given.
    #[error("help requested")]
    HelpRequested,
    /// An option that needs a value came last.
    #[error("{0} needs a value\n\n{USAGE}")]
    MissingValue(&'static str),
    /// `--port` is not a port number.
    #[error("--port: {0:?} is not a port number (1-65535)")]
    BadPort(String),
    /// Something else.
    #[error("unknown argument {0:?}\n\n{USAGE}")]
    Unknown(String),
}

/// The state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Creating or inspecting the directory failed.
    #[error("state directory {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A store file exists but is not a store of this card.
    #[error("{path} is {len} bytes, not a card store of {STORE_FILE_LEN} bytes")]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
}

impl Args {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, ArgsError> {
        let mut parsed = Self {
            port: DEFAULT_PORT,
            state: None,
            quickack: true,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Err(ArgsError::HelpRequested),
                "--port" => {
                    let value = args.next().ok_or(ArgsError::MissingValue("--port"))?;
                    parsed.port = match value.parse::<u16>() {
                        Ok(port) if port != 0 => port,
                        _ => return Err(ArgsError::BadPort(value)),
                    };
                }
                "--no-quickack" => parsed.quickack = false,
                "--state" => {
                    let value = args.next().ok_or(ArgsError::MissingValue("--state"))?;
                    parsed.state = Some(PathBuf::from(OsString::from(value)));
                }
                _ => return Err(ArgsError::Unknown(arg)),
            }
        }
        Ok(parsed)
    }

    /// The card storage these options ask for; creates the state directory if needed.
    ///
    /// Existing store files are checked here, because trussed's file store aborts on a file
    /// of the wrong size.
    pub fn storage(&self) -> Result<CardStorage, StateError> {
        let Some(dir) = &self.state else {
            return Ok(CardStorage::Ram);
        };
        let io_error = |path: &PathBuf| {
            let path = path.clone();
            move |source| StateError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        for name in STORE_FILES {
            let path = dir.join(name);
            match fs::metadata(&path) {
                Ok(meta) if meta.len() != STORE_FILE_LEN => {
                    return Err(StateError::WrongSize {
                        path,
                        len: meta.len(),
                    })
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_error(&path)(err)),
            }
        }
        Ok(CardStorage::Directory(dir.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, ArgsError> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_to_first_reader_and_ram() {
        assert_eq!(
            parse(&[]).unwrap(),
            Args {
                port: 35963,
                state: None,
                quickack: true,
            }
        );
    }

    #[test]
    fn reads_port_and_state() {
        let args = parse(&["--port", "35964", "--state", "/tmp/x", "--no-quickack"]).unwrap();
        assert_eq!(args.port, 35964);
        assert!(!args.quickack);
        assert_eq!(args.state, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse(&["--port", "0"]), Err(ArgsError::BadPort("0".into())));
        assert_eq!(parse(&["--port", "x"]), Err(ArgsError::BadPort("x".into())));
        assert_eq!(parse(&["--port"]), Err(ArgsError::MissingValue("--port")));
        assert_eq!(
            parse(&["--bogus"]),
            Err(ArgsError::Unknown("--bogus".into()))
        );
    }

    #[test]
    fn refuses_a_store_file_of_the_wrong_size() {
        let dir = std::env::temp_dir().join(format!("vpiv-args-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(STORE_FILES[0]), b"not a store").unwrap();
        let args = Args {
            port: DEFAULT_PORT,
            state: Some(dir.clone()),
            quickack: true,
        };
        let result = args.storage();
        fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(result, Err(StateError::WrongSize { len: 11, .. })));
    }
}
