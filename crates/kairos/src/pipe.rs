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

/// Prints one line of a command's result to stdout. A reader that went away (`kairos ls | head
/// -1`, a closed pipe) is not an error: the rest of the output is dropped quietly, never a
/// panic as `println!` would.
pub fn line(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.write_all(b"\n")) {
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("kairos: writing to standard output: {e}");
        }
    }
}

/// `println!` for command results, through [`line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::pipe::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
