//! Where a download goes, on the CLI's side: the daemon streams the verified file
//! ([`crate::stream_out`]) and the client of the local API writes it here, as the user who ran
//! the command and against that user's working directory.
//!
//! Invariants:
//! * a symbolic link or a non-regular file is never followed, written through or replaced
//!   (a link to a directory is a directory: the file is created new inside it); an existing
//!   regular file is replaced only when asked (`force`);
//! * the target is checked before anything is fetched (an explicit file path), or as soon as
//!   the sealed name is known and before any byte is written (a directory);
//! * a name from the sealed stream is reduced to one plain path component (no separators, no
//!   control characters, never `.`/`..`/empty);
//! * the file appears only by an atomic rename of a temporary file (created `O_EXCL`, 0600, in
//!   the target's directory) that was fully written and fsynced, after the daemon reported
//!   the whole file verified; the rename is made durable by syncing the directory; on any
//!   failure the temporary file is removed (drop guard);
//! * a stream destination (standard output) receives only bytes of verified blocks; whether
//!   the whole file verified is the caller's to report (the exit code).

use crate::output::OutputWriter;
use kairos_proto::FileId;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;
use thiserror::Error;

/// Where the user wants a download.
pub enum Destination {
    /// A file to create (or, with `force`, to replace if it is a regular file), or an existing
    /// directory to create the file in under its sealed name. Relative paths are taken against
    /// the current directory.
    Path { path: PathBuf, force: bool },
    /// A stream such as standard output: the bytes as they verify.
    Stream(Box<dyn Write + Send>),
}

/// Why the output could not be written where asked. The message says what to do.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct OutputError(pub String);

fn fail<T>(message: String) -> Result<T, OutputError> {
    Err(OutputError(message))
}

/// An output path checked before the download starts.
enum Place {
    File(PathBuf),
    Dir(PathBuf),
}

/// Checks that `path` may become the output file: absent, or a regular file and `force`.
fn check_file(path: &Path, force: bool) -> Result<(), OutputError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => fail(format!("cannot check {}: {e}", path.display())),
        Ok(m) if m.file_type().is_symlink() => fail(format!(
            "{} is a symbolic link; kairos neither follows nor replaces links: give the real path (or `-o -` for standard output)",
            path.display()
        )),
        Ok(m) if !m.is_file() => fail(format!(
            "{} exists and is not a regular file; kairos writes only regular files (use `-o -` to write to standard output)",
            path.display()
        )),
        Ok(_) if force => Ok(()),
        Ok(_) => fail(format!(
            "{} already exists; pass --force to replace it, or choose another name",
            path.display()
        )),
    }
}

/// Resolves an output path: an existing directory (or a link to one), else a file path whose
/// directory exists.
fn resolve(path: &Path, force: bool) -> Result<Place, OutputError> {
    let path = std::path::absolute(path)
        .or_else(|e| fail(format!("cannot resolve {}: {e}", path.display())))?;
    if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
        return Ok(Place::Dir(path));
    }
    check_file(&path, force)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return fail(format!(
            "the directory {} does not exist; create it first",
            parent.display()
        ));
    }
    Ok(Place::File(path))
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

/// A file being written: the writer (dropped first) and its temporary file.
struct Partial {
    writer: OutputWriter,
    temp: NamedTempFile,
    path: PathBuf,
}

enum State {
    /// Checked, nothing created yet (waiting for the sealed name).
    Ready(Place),
    Writing(Partial),
    Stream(Box<dyn Write + Send>),
}

/// A download's output on the client side: checked at [`Output::new`], begun at the `file`
/// event, written by `data` events, moved into place by [`Output::finish`].
pub struct Output {
    state: State,
    force: bool,
}

impl Output {
    /// Checks the destination; creates nothing.
    pub fn new(dest: Destination) -> Result<Self, OutputError> {
        let (state, force) = match dest {
            Destination::Stream(w) => (State::Stream(w), false),
            Destination::Path { path, force } => (State::Ready(resolve(&path, force)?), force),
        };
        Ok(Output { state, force })
    }

    /// The sealed name is known: fixes the final path, checks it, creates the temporary file.
    pub fn begin(&mut self, sealed_name: &str, id: &FileId) -> Result<(), OutputError> {
        let path = match &self.state {
            State::Ready(Place::File(p)) => p.clone(),
            State::Ready(Place::Dir(d)) => d.join(safe_name(sealed_name, id)),
            State::Writing(_) => return fail("the daemon announced the file twice".into()),
            State::Stream(_) => return Ok(()),
        };
        check_file(&path, self.force)?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let temp = tempfile::Builder::new()
            .prefix(".kairos-get-")
            .suffix(".part")
            .tempfile_in(dir)
            .or_else(|e| fail(format!("cannot create a file in {}: {e}", dir.display())))?;
        let file = temp.as_file().try_clone().map_err(write_err)?;
        let writer = OutputWriter::new(file).map_err(write_err)?;
        self.state = State::Writing(Partial { writer, temp, path });
        Ok(())
    }

    /// Writes verified bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        match &mut self.state {
            State::Writing(p) => p.writer.write_all(bytes).map_err(write_err),
            State::Stream(w) => w.write_all(bytes).map_err(write_err),
            State::Ready(_) => fail("the daemon sent data before the file name".into()),
        }
    }

    /// The daemon reported the whole file verified: fsync, rename into place, sync the
    /// directory. Returns where the file is (`-` for a stream).
    pub fn finish(self) -> Result<PathBuf, OutputError> {
        match self.state {
            State::Stream(mut w) => {
                w.flush().map_err(write_err)?;
                Ok(PathBuf::from("-"))
            }
            State::Writing(p) => persist(p, self.force),
            State::Ready(_) => fail("the daemon finished without sending the file".into()),
        }
    }
}

fn write_err(e: std::io::Error) -> OutputError {
    OutputError(format!("writing the output: {e}"))
}

/// Renames the fsynced temporary file into place and makes the rename durable.
fn persist(p: Partial, force: bool) -> Result<PathBuf, OutputError> {
    let Partial { writer, temp, path } = p;
    writer.finish().map_err(write_err)?;
    // Checked again: the path may have changed while the file downloaded.
    check_file(&path, force)?;
    let result = if force {
        temp.persist(&path).map(|_| ())
    } else {
        temp.persist_noclobber(&path).map(|_| ())
    };
    if let Err(e) = result {
        return if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            fail(format!(
                "{} already exists; pass --force to replace it, or choose another name",
                path.display()
            ))
        } else {
            fail(format!("cannot create {}: {}", path.display(), e.error))
        };
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    File::open(parent)
        .and_then(|d| d.sync_all())
        .or_else(|e| fail(format!("syncing {}: {e}", parent.display())))?;
    Ok(path)
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

    fn path_dest(path: &Path, force: bool) -> Destination {
        Destination::Path {
            path: path.to_path_buf(),
            force,
        }
    }

    #[test]
    fn links_and_special_files_are_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        std::fs::write(&real, b"keep").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for force in [false, true] {
            let e = Output::new(path_dest(&link, force)).err().unwrap();
            assert!(e.0.contains("symbolic link"), "{e}");
        }
        let e = Output::new(path_dest(Path::new("/dev/null"), true))
            .err()
            .unwrap();
        assert!(e.0.contains("not a regular file"), "{e}");
        let e = Output::new(path_dest(&real, false)).err().unwrap();
        assert!(e.0.contains("--force"), "{e}");
        assert_eq!(std::fs::read(&real).unwrap(), b"keep");
        assert_eq!(std::fs::read_link(&link).unwrap(), real);
    }

    #[test]
    fn a_file_appears_only_when_finished_and_force_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let id = FileId([1; 32]);
        let target = dir.path().join("out.bin");
        std::fs::write(&target, b"old").unwrap();
        let mut out = Output::new(path_dest(&target, true)).unwrap();
        out.begin("ignored", &id).unwrap();
        out.write(b"new bytes").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(out.finish().unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"new bytes");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn into_a_directory_a_clash_is_found_at_the_name_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let id = FileId([1; 32]);
        let link = dir.path().join("x.bin");
        std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
        let mut out = Output::new(path_dest(dir.path(), false)).unwrap();
        let e = out.begin("../x.bin", &id).unwrap_err();
        assert!(e.0.contains("symbolic link"), "{e}");
        drop(out);
        let mut out = Output::new(path_dest(dir.path(), false)).unwrap();
        out.begin("y.bin", &id).unwrap();
        out.write(b"abc").unwrap();
        drop(out); // a failed download: the temporary file goes
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
