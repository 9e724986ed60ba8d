//! The local API's Unix domain socket, `home/kairos.sock`: created so that only the user who
//! runs the daemon can use it, and removed when the daemon stops.
//!
//! Invariants:
//! * the socket lives in the home directory, which is mode 0700 (checked at start), and the
//!   socket itself is chmod'ed to 0600 right after `bind` and verified (mode, owner, type)
//!   before the listener is used — so there is no moment another user can connect;
//! * an existing path is removed only if it is a socket that no daemon answers on (stale,
//!   after a crash); a live daemon's socket or any other kind of file is never touched;
//! * at shutdown the socket is removed only if the path still names the socket this process
//!   created (same device and inode).

use crate::error::NodeError;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};

/// Longest socket path the kernel accepts (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A bound local socket.
pub struct LocalSocket {
    path: PathBuf,
    /// (device, inode) of the socket we created.
    id: (u64, u64),
}

fn socket_err(path: &Path, message: impl Into<String>) -> NodeError {
    NodeError::Socket {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl LocalSocket {
    /// Creates the socket at `path` (see the module invariants).
    pub async fn bind(path: &Path) -> Result<(LocalSocket, UnixListener), NodeError> {
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(socket_err(
                path,
                format!("the path is longer than the {MAX_SOCKET_PATH} bytes a Unix socket path may have; use a shorter --home"),
            ));
        }
        let home = path
            .parent()
            .ok_or_else(|| socket_err(path, "the socket path has no parent directory"))?;
        let uid = rustix::process::getuid().as_raw();
        check_home(path, home, uid)?;
        clear_stale(path, home).await?;
        let listener = UnixListener::bind(path).map_err(|e| socket_err(path, e.to_string()))?;
        let fail = |msg: String| {
            let _ = fs::remove_file(path);
            socket_err(path, msg)
        };
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| fail(format!("chmod 600: {e}")))?;
        let meta = fs::symlink_metadata(path).map_err(|e| fail(e.to_string()))?;
        if !meta.file_type().is_socket() || meta.mode() & 0o777 != 0o600 || meta.uid() != uid {
            return Err(fail(format!(
                "after creation the socket has mode {:o} and owner {} (expected 600 and {uid}); refusing to serve on it",
                meta.mode() & 0o777,
                meta.uid()
            )));
        }
        let socket = LocalSocket {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        };
        Ok((socket, listener))
    }

    /// Removes the socket file if it is still ours.
    pub fn remove(&self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// The home must be owned by us and closed to everyone else (mode 0700).
fn check_home(path: &Path, home: &Path, uid: u32) -> Result<(), NodeError> {
    let home_meta =
        fs::metadata(home).map_err(|e| socket_err(path, format!("home directory: {e}")))?;
    if home_meta.mode() & 0o077 != 0 || home_meta.uid() != uid {
        return Err(socket_err(
            path,
            format!(
                "the home directory must be owned by you and mode 0700 (it is mode {:o}, owner {}); run `chmod 700` on it",
                home_meta.mode() & 0o777,
                home_meta.uid()
            ),
        ));
    }
    Ok(())
}

/// Whatever is at `path` must be a socket no daemon answers on (then it is removed) or
/// nothing; a live socket means another daemon runs on this home.
async fn clear_stale(path: &Path, home: &Path) -> Result<(), NodeError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(socket_err(
            path,
            "the path exists and is not a socket; move it away",
        )),
        Ok(_) => {
            let probe =
                tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(path)).await;
            match probe {
                Ok(Ok(_)) | Err(_) => Err(NodeError::AlreadyRunning(home.to_path_buf())),
                Ok(Err(e))
                    if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) =>
                {
                    tracing::info!("removing the stale socket {}", path.display());
                    match fs::remove_file(path) {
                        Err(e) if e.kind() != ErrorKind::NotFound => {
                            Err(socket_err(path, format!("removing a stale socket: {e}")))
                        }
                        _ => Ok(()),
                    }
                }
                Ok(Err(e)) => Err(socket_err(
                    path,
                    format!("probing the existing socket: {e}"),
                )),
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(socket_err(path, e.to_string())),
    }
}
