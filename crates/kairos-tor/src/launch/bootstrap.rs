//! Waiting for a spawned tor to finish bootstrapping, reporting each change of progress.
//!
//! Invariants:
//! * The wait ends with an error as soon as tor exits (with its log tail) or the deadline
//!   passes (with the last progress, tor's warning if any, and the log tail): a caller never
//!   waits on a dead tor.
//! * The progress callback sees each distinct status once, in order.

use super::config::ProgressFn;
use super::spawn::SpawnedTor;
use crate::control::BootstrapStatus;
use crate::error::TorError;
use std::time::{Duration, Instant};
use tracing::debug;

/// Polls `status/bootstrap-phase` until 100 %, reporting progress; errors on exit or timeout.
pub(crate) async fn wait_bootstrapped(
    spawned: &mut SpawnedTor,
    timeout: Duration,
    progress: Option<&ProgressFn>,
) -> Result<(), TorError> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<BootstrapStatus> = None;
    loop {
        let status = match spawned.control.bootstrap_status().await {
            Ok(s) => s,
            Err(e) => {
                if let Some(exit) = spawned.exit_error().await {
                    return Err(exit);
                }
                return Err(e.into());
            }
        };
        if last.as_ref() != Some(&status) {
            debug!(tor = %spawned.label, progress = status.progress, tag = %status.tag, "bootstrap");
            if let Some(f) = progress {
                f(&status);
            }
        }
        let done = status.progress >= 100;
        last = Some(status);
        if done {
            return Ok(());
        }
        if let Some(exit) = spawned.exit_error().await {
            return Err(exit);
        }
        if Instant::now() >= deadline {
            return Err(timeout_error(spawned, timeout, last));
        }
        // Often, so a caller waiting to act on bootstrap (such as re-registering an onion
        // service) acts well within tor's one-second tick.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn timeout_error(
    spawned: &SpawnedTor,
    timeout: Duration,
    last: Option<BootstrapStatus>,
) -> TorError {
    let s = last.unwrap_or(BootstrapStatus {
        progress: 0,
        tag: String::new(),
        summary: String::new(),
        warning: None,
    });
    TorError::BootstrapTimeout {
        timeout,
        progress: s.progress,
        summary: s.summary,
        warning: s
            .warning
            .map(|w| format!("; tor warns: {w}"))
            .unwrap_or_default(),
        log: spawned.log.render(),
    }
}
