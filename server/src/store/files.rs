//! The database files are readable and writable by their owner only (`0600`), whatever
//! the umask of the process that creates them.
//!
//! SQLite gives the `-wal`, `-shm` and `-journal` files it creates the permissions of the
//! database file (it `fchmod`s a new one to them, past the umask), so creating the
//! database file `0600` before SQLite opens it is what makes all of them `0600`. Files
//! left by an older release with wider permissions lose their group and other bits.

use std::fs::{OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner read and write.
const OWNER_ONLY: u32 = 0o600;
/// Group and other bits.
const OTHERS: u32 = 0o077;

/// The files SQLite keeps beside the database at `db`.
pub(super) fn sidecars(db: &Path) -> [PathBuf; 3] {
    ["-wal", "-shm", "-journal"].map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// Creates the database file `0600` when it does not exist yet, and takes group and
/// other permissions off it and its sidecars when they exist.
pub(super) fn prepare(db: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(OWNER_ONLY)
        .open(db)
    {
        // The umask may have taken bits off the mode given to open(2).
        Ok(file) => file.set_permissions(Permissions::from_mode(OWNER_ONLY))?,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    for path in std::iter::once(db.to_owned()).chain(sidecars(db)) {
        let mode = match std::fs::metadata(&path) {
            Ok(meta) => meta.permissions().mode(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if mode & OTHERS != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
                "database file readable by others: taking group and other permissions off");
            std::fs::set_permissions(&path, Permissions::from_mode(mode & !OTHERS))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_owner_only_and_an_old_one_loses_group_and_other_bits() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        prepare(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);

        let [wal, ..] = sidecars(&db);
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, Permissions::from_mode(0o664)).unwrap();
        std::fs::set_permissions(&db, Permissions::from_mode(0o400)).unwrap();
        prepare(&db).unwrap();
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(mode(&db), 0o400, "the owner's own bits are left alone");
    }
}
