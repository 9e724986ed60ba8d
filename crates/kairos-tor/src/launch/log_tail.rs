//! The last lines a tor printed, kept so that errors can show them, and the task that copies
//! tor's output into tracing.
//!
//! Invariant: at most [`LOG_TAIL_LINES`] lines are kept; a poisoned lock is recovered (the
//! tail is diagnostics only, never worth a panic).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing::{debug, warn};

/// Lines of tor's log kept for error messages.
const LOG_TAIL_LINES: usize = 40;

/// The last lines tor printed, shared with the task that reads its output.
#[derive(Clone, Default)]
pub(crate) struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn push(&self, line: String) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= LOG_TAIL_LINES {
            q.pop_front();
        }
        q.push_back(line);
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().cloned().collect()
    }

    pub(crate) fn render(&self) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            "(tor printed nothing)".into()
        } else {
            lines
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

/// Copies every line of `reader` into tracing (errors as warnings) and into `tail`.
pub(crate) fn pump_output(
    reader: impl AsyncRead + Unpin + Send + 'static,
    label: String,
    tail: LogTail,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("[err]") {
                warn!(tor = %label, "{line}");
            } else {
                debug!(tor = %label, "{line}");
            }
            tail.push(line);
        }
    });
}
