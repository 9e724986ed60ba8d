//! Finding the `tor` binary and the helper programs shipped with it.
//!
//! Invariant: a path is returned only if it names an executable regular file; otherwise the
//! error lists every place looked at, so a user can see why tor was not found.

use crate::error::TorError;
use std::path::{Path, PathBuf};

/// Finds the tor binary: `configured` if given (a bare name is searched in `PATH`), else `tor`
/// in `PATH`, then in `/usr/sbin` and `/usr/bin` (not on a non-root user's `PATH` on Debian).
pub fn find_tor(configured: Option<&Path>) -> Result<PathBuf, TorError> {
    let mut looked = Vec::new();
    let found = match configured {
        Some(p) if p.components().count() > 1 || p.is_absolute() => {
            looked.push(p.display().to_string());
            is_executable(p).then(|| p.to_path_buf())
        }
        Some(p) => search("tor", Some(p), &mut looked),
        None => search("tor", None, &mut looked),
    };
    found.ok_or_else(|| TorError::TorNotFound {
        looked: looked.join(", "),
    })
}

/// Finds a helper program shipped with tor (e.g. `tor-gencert`): next to `tor`, in `PATH`,
/// then in the system directories.
pub fn find_tool(tool: &'static str, tor: &Path) -> Result<PathBuf, TorError> {
    let mut looked = Vec::new();
    if let Some(dir) = tor.parent() {
        let p = dir.join(tool);
        looked.push(p.display().to_string());
        if is_executable(&p) {
            return Ok(p);
        }
    }
    search(tool, None, &mut looked).ok_or_else(|| TorError::ToolNotFound {
        tool,
        looked: looked.join(", "),
    })
}

fn search(default: &str, name: Option<&Path>, looked: &mut Vec<String>) -> Option<PathBuf> {
    let name = name
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default.into());
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.push("/usr/bin".into());
    for dir in dirs {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let candidate = dir.join(&name);
        if is_executable(&candidate) {
            return Some(candidate);
        }
        looked.push(candidate.display().to_string());
    }
    None
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_reported() {
        let e = find_tor(Some(Path::new("/nonexistent/dir/tor"))).unwrap_err();
        assert!(matches!(e, TorError::TorNotFound { .. }));
        assert!(e.to_string().contains("Debian package `tor`"));
    }
}
