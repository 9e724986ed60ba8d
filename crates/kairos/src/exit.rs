//! Exit codes and how a failure is reported: 0 success, 1 error, 2 usage error (clap, or a
//! malformed argument found later such as a file id), 3 file still locked.
//!
//! Invariant: a failure is reported once — on stderr as text, or (with `--json`) on stdout as
//! one JSON object `{"error": CODE, "message": TEXT, "exit": N}` whose `code` is stable
//! (the daemon's codes, see `kairos_node::wire::ErrorEvent`, plus `usage` and `error`).

use std::process::ExitCode;

/// Exit code when a file is still locked by its release time.
pub const EXIT_LOCKED: u8 = 3;
/// Exit code of a usage error (as clap's).
pub const EXIT_USAGE: u8 = 2;

/// An error that carries its own exit code (e.g. "locked").
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

/// The exit code and stable code of a failure.
fn classify(e: &anyhow::Error) -> (u8, String) {
    if let Some(Exit(code, _)) = e.downcast_ref::<Exit>() {
        let name = match *code {
            EXIT_LOCKED => "locked",
            EXIT_USAGE => "usage",
            _ => "error",
        };
        return (*code, name.to_owned());
    }
    if let Some(l) = e.downcast_ref::<kairos_node::LocalError>() {
        return (1, l.code().to_owned());
    }
    (1, "error".to_owned())
}

/// Reports a failure (text on stderr, or JSON on stdout) and returns its exit code.
pub fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let (code, name) = classify(e);
    let message = match e.downcast_ref::<Exit>() {
        Some(Exit(_, m)) => m.clone(),
        None => format!("{e:#}"),
    };
    if json {
        let body = serde_json::json!({ "error": name, "message": message, "exit": code });
        println!("{body}");
    } else if e.downcast_ref::<Exit>().is_some() {
        eprintln!("kairos: {message}");
    } else {
        eprintln!("kairos: error: {message}");
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let locked = anyhow::Error::from(Exit(EXIT_LOCKED, "m".into()));
        assert_eq!(classify(&locked), (3, "locked".into()));
        let usage = anyhow::Error::from(Exit(EXIT_USAGE, "m".into()));
        assert_eq!(classify(&usage), (2, "usage".into()));
        let daemon = anyhow::Error::from(kairos_node::LocalError::Output("x".into()));
        assert_eq!(classify(&daemon.context("ctx")), (1, "bad_output".into()));
        assert_eq!(classify(&anyhow::anyhow!("x")), (1, "error".into()));
    }
}
