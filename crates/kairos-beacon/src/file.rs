//! The test chain's secret file: created once (mode 0600, never replaced), read back on every
//! start, so a devnet keeps its chain — and its locked files stay openable — across restarts.
//!
//! Invariant: the file is created with mode 0600 atomically (`create_new`), so the key is
//! never readable by others, not even briefly; an existing file with wider permissions is
//! refused rather than used.

use kairos_lock::{LockError, TestChain};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

/// Why the test chain file could not be used.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("test chain key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("test chain key {path}: {source} (delete the file to start a new test chain)")]
    Bad { path: PathBuf, source: LockError },
    #[error("test chain key {path} is readable by others (mode {mode:o}); run chmod 600 on it")]
    Permissions { path: PathBuf, mode: u32 },
}

/// The test chain in `path`, or a new one (round 1 at `genesis`, a round every `period`
/// seconds) written there with mode 0600 if the file does not exist.
pub fn load_or_create(path: &Path, genesis: u64, period: u64) -> Result<TestChain, FileError> {
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::File::open(path) {
        Ok(file) => {
            let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(FileError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
            let mut bytes = Zeroizing::new(Vec::new());
            std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io)?;
            TestChain::from_secret_bytes(&bytes).map_err(|source| FileError::Bad {
                path: path.to_owned(),
                source,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let chain =
                TestChain::generate(&mut rand::rngs::OsRng, genesis, period).map_err(|source| {
                    FileError::Bad {
                        path: path.to_owned(),
                        source,
                    }
                })?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            file.write_all(&chain.to_secret_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(chain)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test-chain.key");
        let a = load_or_create(&path, 100, 3).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&path, 999, 7).unwrap();
        assert_eq!(a.chain(), b.chain(), "the existing chain is kept");
        assert_eq!(b.chain().genesis(), 100);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&path, 100, 3),
            Err(FileError::Permissions { .. })
        ));
        std::fs::write(dir.path().join("bad"), b"nonsense").unwrap();
        std::fs::set_permissions(
            dir.path().join("bad"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            load_or_create(&dir.path().join("bad"), 1, 1),
            Err(FileError::Bad { .. })
        ));
    }
}
