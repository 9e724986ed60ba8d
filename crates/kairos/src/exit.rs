//! Exit codes beyond success (0), error (1) and usage error (2, from clap).

/// Exit code when a file is still locked by its release time.
pub const EXIT_LOCKED: u8 = 3;

/// An error that carries its own exit code (e.g. "locked").
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}
