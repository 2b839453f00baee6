//! The signature files of a file batch: where each one goes, whether one already there
//! signs the document, and writing one atomically (temporary file in the same directory,
//! flushed, renamed into place, the directory flushed), so an interrupted batch keeps every
//! completed file and never leaves a partial one under the final name.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{Error, Result};

use crate::args::SignatureFormat;

/// Where one document's signature goes.
#[derive(Debug, Clone)]
pub struct SignatureFile {
    /// `<dir>/<file name>.<sig|p7s>`.
    pub path: PathBuf,
    /// `<dir>/.<file name>.<sig|p7s>.tmp`, only ever present while it is written.
    temp: PathBuf,
}

impl SignatureFile {
    /// The signature file of `document` in `dir`.
    pub fn of(dir: &Path, document: &Path, format: SignatureFormat) -> Result<Self> {
        let name = document
            .file_name()
            .ok_or_else(|| Error::BadRequest(format!("{} has no file name", document.display())))?;
        let mut file_name = name.to_os_string();
        file_name.push(".");
        file_name.push(format.extension());
        let mut temp_name = OsString::from(".");
        temp_name.push(&file_name);
        temp_name.push(".tmp");
        Ok(Self {
            path: dir.join(file_name),
            temp: dir.join(temp_name),
        })
    }

    /// Whether the file already holds a signature of the document with SHA-256 `digest`
    /// by the certificate `cert_der`: `false` when there is no file; an error
    /// (`SS_BAD_REQUEST`) when there is one that does not verify, which is never
    /// overwritten. Also removes the temporary file a killed run may have left.
    pub fn already_signed(
        &self,
        digest: &Sha256Digest,
        format: SignatureFormat,
        cert_der: &[u8],
    ) -> Result<bool> {
        match fs::remove_file(&self.temp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&self.temp, &e)),
        }
        let existing = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error(&self.path, &e)),
        };
        let verified = match format {
            SignatureFormat::Raw => {
                verify_digest_signature(cert_der, &digest.0, &existing).map(|_| ())
            }
            SignatureFormat::Cms => cms::verify_detached(&existing, digest).and_then(|cms| {
                if cms.signer_cert_der == cert_der {
                    Ok(())
                } else {
                    Err(Error::SignatureInvalid(
                        "another certificate signed it".into(),
                    ))
                }
            }),
        };
        verified.map(|()| true).map_err(|e| {
            Error::BadRequest(format!(
                "{} exists but is not this certificate's signature of the document as it is now ({e}); \
                 move it away to sign the document again",
                self.path.display()
            ))
        })
    }

    /// Writes `signature` to the final name atomically.
    pub fn write(&self, signature: &[u8]) -> Result<()> {
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&self.temp)?;
            file.write_all(signature)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.path)?;
            sync_directory(&self.path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&self.temp);
            Error::Internal(format!("cannot write {}: {e}", self.path.display()))
        })
    }
}

/// Flushes the directory entry of a renamed file (Unix; elsewhere the rename suffices).
fn sync_directory(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::BadRequest(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_file_goes_next_to_a_hidden_temporary_name_in_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f =
            SignatureFile::of(dir.path(), Path::new("/in/a b.pdf"), SignatureFormat::Cms).unwrap();
        assert_eq!(f.path, dir.path().join("a b.pdf.p7s"));
        assert_eq!(f.temp, dir.path().join(".a b.pdf.p7s.tmp"));
        f.write(b"sig").unwrap();
        assert_eq!(fs::read(&f.path).unwrap(), b"sig");
        assert!(!f.temp.exists());
        // A temporary file left by a killed run is removed when the batch starts.
        fs::write(&f.temp, b"partial").unwrap();
        fs::remove_file(&f.path).unwrap();
        let digest = Sha256Digest::of(b"doc");
        assert!(!f
            .already_signed(&digest, SignatureFormat::Cms, b"")
            .unwrap());
        assert!(!f.temp.exists());
    }

    #[test]
    fn an_existing_file_that_does_not_verify_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let f = SignatureFile::of(dir.path(), Path::new("doc.pdf"), SignatureFormat::Raw).unwrap();
        fs::write(&f.path, b"not a signature").unwrap();
        let err = f
            .already_signed(&Sha256Digest::of(b"doc"), SignatureFormat::Raw, b"no cert")
            .unwrap_err();
        assert_eq!(err.code(), securesign_core::ErrorCode::BadRequest);
        assert_eq!(fs::read(&f.path).unwrap(), b"not a signature");
    }
}
