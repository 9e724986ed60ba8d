//! Writing a generated text (completions, a man page) to standard output.
//!
//! A reader that stops early (`kairos man | head`) closes the pipe; that is not a failure
//! of the command, so a broken pipe ends it quietly with success — never a panic, never an
//! error message about a pipe the user closed on purpose.

use anyhow::{Context, Result};
use std::io::{ErrorKind, Write};

/// Writes all of `text` to stdout; a closed pipe is success.
pub fn print(text: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}
