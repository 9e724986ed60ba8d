//! The on-disk home of a daemon or directory, and the identity key inside it.
//!
//! Invariant: the identity file holds the 32-byte Ed25519 seed, is created with mode 0600 in a
//! 0700 directory, and is never overwritten once it exists (losing it loses the node's onion
//! address and every claim signed with it).

use kairos_proto::Identity;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// File name of the identity seed inside a home.
pub const IDENTITY_FILE: &str = "identity.key";

/// Creates `home` (mode 0700) if needed.
pub fn ensure_home(home: &Path) -> io::Result<()> {
    fs::create_dir_all(home)?;
    fs::set_permissions(home, fs::Permissions::from_mode(0o700))
}

/// Loads `home/identity.key`, or generates and stores a fresh identity (mode 0600).
pub fn load_or_create_identity(home: &Path) -> io::Result<Identity> {
    ensure_home(home)?;
    let path = home.join(IDENTITY_FILE);
    match fs::File::open(&path) {
        Ok(mut f) => {
            let mode = f.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is readable by other users (mode {:o}); run `chmod 600` on it",
                        path.display(),
                        mode & 0o777
                    ),
                ));
            }
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            let mut extra = [0u8; 1];
            f.read_exact(&mut seed[..])
                .and_then(|_| match f.read(&mut extra)? {
                    0 => Ok(()),
                    _ => Err(io::ErrorKind::InvalidData.into()),
                })
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not a 32-byte kairos identity", path.display()),
                    )
                })?;
            Ok(Identity::from_seed(&seed))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = Identity::generate();
            let tmp = home.join(format!("{IDENTITY_FILE}.tmp"));
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&id.seed()[..])?;
            f.sync_all()?;
            // A hard link fails if another process created the key meanwhile: never overwrite.
            fs::hard_link(&tmp, &path)?;
            fs::remove_file(&tmp)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("h");
        let a = load_or_create_identity(&home).unwrap();
        let b = load_or_create_identity(&home).unwrap();
        assert_eq!(a.public(), b.public());
        let mode = fs::metadata(home.join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::set_permissions(home.join(IDENTITY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create_identity(&home).is_err());
    }
}
