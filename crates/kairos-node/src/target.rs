//! Where a download's output goes: resolving `--output` to a file or a directory, the file
//! name taken from inside the sealed stream, and the final durable rename.
//!
//! Invariants: a name from the sealed stream is reduced to one plain path component (no
//! separators, no control characters, never `.`/`..`/empty) and never replaces an existing
//! file; the output appears only by rename of a fully written and fsynced temporary file, and
//! the rename itself is made durable by syncing the directory.

use crate::ops::OpError;
use kairos_proto::FileId;
use std::fs::File;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Where the output goes.
pub enum Target {
    /// Create or replace this file.
    File(PathBuf),
    /// Create a new file in this directory, named after the sealed name.
    Dir(PathBuf),
}

impl Target {
    pub fn dir(&self) -> &Path {
        match self {
            Target::File(p) => p.parent().unwrap_or(Path::new("/")),
            Target::Dir(d) => d,
        }
    }
}

pub fn resolve_output(output: &Path) -> Result<Target, OpError> {
    if !output.is_absolute() {
        return Err(OpError::BadOutput(format!(
            "{} is not an absolute path",
            output.display()
        )));
    }
    match std::fs::metadata(output) {
        Ok(m) if m.is_dir() => Ok(Target::Dir(output.to_path_buf())),
        Ok(m) if m.is_file() => Ok(Target::File(output.to_path_buf())),
        Ok(_) => Err(OpError::BadOutput(format!(
            "{} exists and is neither a file nor a directory",
            output.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = output.parent().unwrap_or(Path::new("/"));
            if parent.is_dir() {
                Ok(Target::File(output.to_path_buf()))
            } else {
                Err(OpError::BadOutput(format!(
                    "the directory {} does not exist; create it first",
                    parent.display()
                )))
            }
        }
        Err(e) => Err(OpError::BadOutput(format!("{}: {e}", output.display()))),
    }
}

/// One plain file name from the sealed name: no separators, no control characters, not `.`
/// or `..`, never empty.
pub fn safe_name(sealed: &str, id: &FileId) -> String {
    let last = sealed.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        let id = id.to_string();
        format!("kairos-{}", &id[..16.min(id.len())])
    } else {
        clean.to_owned()
    }
}

/// Renames the verified temporary file into place and makes the rename durable.
pub fn persist(temp: NamedTempFile, path: &Path, replace: bool) -> Result<(), OpError> {
    let result = if replace {
        temp.persist(path).map(|_| ())
    } else {
        temp.persist_noclobber(path).map(|_| ())
    };
    result.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            OpError::BadOutput(format!(
                "{} already exists; pass an output file name to replace it, or another directory",
                path.display()
            ))
        } else {
            OpError::BadOutput(format!("cannot create {}: {}", path.display(), e.error))
        }
    })?;
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| OpError::BadOutput(format!("syncing {}: {e}", parent.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_stream_are_one_plain_component() {
        let id = FileId([7; 32]);
        assert_eq!(safe_name("report.pdf", &id), "report.pdf");
        assert_eq!(safe_name("../../etc/passwd", &id), "passwd");
        assert_eq!(safe_name("a\\b", &id), "b");
        assert!(safe_name("..", &id).starts_with("kairos-"));
        assert!(safe_name("", &id).starts_with("kairos-"));
        assert!(safe_name("dir/", &id).starts_with("kairos-"));
        assert_eq!(safe_name("x\u{0}y\n", &id), "xy");
    }
}
