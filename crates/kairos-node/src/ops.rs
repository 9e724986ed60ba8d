//! What put and get share: their typed error ([`OpError`], sent to the CLI as an `error`
//! event with a stable code) and the sink their progress events go to.
//!
//! Invariant: an operation whose sink was closed (the CLI went away) is cancelled at its next
//! await point by the local API; everything it created on disk is removed by drop guards.

use crate::wire::{ErrorEvent, Event};
use kairos_proto::time::rfc3339;
use thiserror::Error;
use tokio::sync::mpsc;

/// Why a put or get failed. Messages say what to do.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OpError {
    #[error("the file is time-locked until {} (Unix {until}); try again after that time", rfc3339(*until))]
    Locked { until: u64 },
    #[error("the file is time-locked until {} (waiting for beacon round {round}: the drand beacon of that round has not been published or has not reached the directories yet); try again in a minute", rfc3339(*until))]
    BeaconPending { round: u64, until: u64 },
    #[error("not enough nodes: every block needs {needed} distinct nodes but only {known} are available; wait for more nodes to join (`kairos status` shows peers known) or upload with fewer shards")]
    NotEnoughNodes { needed: usize, known: usize },
    #[error("not enough independently listed nodes: every block needs {needed} distinct nodes, but with at most k − 1 pieces of a block on nodes that only one directory lists, only {placeable} can be used; wait for more nodes to join, or check that the directories list the same network (one of them may be listing only its own nodes)")]
    NotEnoughIndependentNodes { needed: usize, placeable: usize },
    #[error("no directory has this file: check the file id; it may also have expired (manifests and pieces are deleted a retention period after release)")]
    NotFound,
    #[error("release time {} is not in the future (node clock: {}); choose a later time", rfc3339(*release), rfc3339(*now))]
    ReleaseInPast { release: u64, now: u64 },
    #[error("release time {} is further ahead than this node allows (at most {}); choose an earlier time", rfc3339(*release), rfc3339(*max))]
    ReleaseTooFar { release: u64, max: u64 },
    #[error("the file was revoked by its uploader before its release: it will never open")]
    Revoked,
    #[error("{0}")]
    NotEnoughPieces(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    BadOutput(String),
    #[error("{0}")]
    DirectoryUnreachable(String),
    #[error("{0}")]
    UploadFailed(String),
    #[error("{0}")]
    Integrity(String),
    #[error("internal failure: {0}")]
    Internal(String),
}

impl OpError {
    /// The stable code of the error event.
    pub fn code(&self) -> &'static str {
        match self {
            OpError::Locked { .. } | OpError::BeaconPending { .. } => "locked",
            OpError::NotEnoughNodes { .. } => "not_enough_nodes",
            OpError::NotEnoughIndependentNodes { .. } => "not_enough_independent_nodes",
            OpError::NotFound => "not_found",
            OpError::Revoked => "revoked",
            OpError::ReleaseInPast { .. } => "release_in_past",
            OpError::ReleaseTooFar { .. } => "release_too_far",
            OpError::NotEnoughPieces(_) => "not_enough_pieces",
            OpError::BadInput(_) => "bad_input",
            OpError::BadOutput(_) => "bad_output",
            OpError::DirectoryUnreachable(_) => "directory_unreachable",
            OpError::UploadFailed(_) => "upload_failed",
            OpError::Integrity(_) => "integrity",
            OpError::Internal(_) => "internal",
        }
    }

    pub fn to_event(&self) -> ErrorEvent {
        let (needed, known) = match self {
            OpError::NotEnoughNodes { needed, known } => (Some(*needed), Some(*known)),
            OpError::NotEnoughIndependentNodes { needed, placeable } => {
                (Some(*needed), Some(*placeable))
            }
            _ => (None, None),
        };
        ErrorEvent {
            error: self.code().to_owned(),
            message: self.to_string(),
            locked_until: match self {
                OpError::Locked { until } | OpError::BeaconPending { until, .. } => Some(*until),
                _ => None,
            },
            needed,
            known,
        }
    }
}

impl From<kairos_directory_client::ClientError> for OpError {
    fn from(e: kairos_directory_client::ClientError) -> Self {
        use kairos_directory_client::ClientError as C;
        match e {
            C::Locked { until } => OpError::Locked { until },
            C::NotFound => OpError::NotFound,
            C::Revoked => OpError::Revoked,
            other => OpError::DirectoryUnreachable(other.to_string()),
        }
    }
}

/// Where an operation's events go. Cloneable; sending never blocks (events are small and an
/// operation emits O(blocks) of them).
#[derive(Clone)]
pub struct EventSink(Option<mpsc::UnboundedSender<Event>>);

impl EventSink {
    pub fn new(tx: mpsc::UnboundedSender<Event>) -> Self {
        EventSink(Some(tx))
    }

    /// A sink that drops everything (benchmarks, tests of the engines).
    pub fn discard() -> Self {
        EventSink(None)
    }

    pub fn emit(&self, event: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }

    pub fn info(&self, message: impl Into<String>) {
        self.emit(Event::Info {
            message: message.into(),
        });
    }

    pub fn warning(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!("{message}");
        self.emit(Event::Warning { message });
    }

    pub fn progress(&self, done: u64, total: u64) {
        self.emit(Event::Progress { done, total });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn every_error(a: u64, b: u64, n: usize, text: String) -> Vec<OpError> {
        vec![
            OpError::Locked { until: a },
            OpError::NotEnoughNodes {
                needed: n,
                known: n / 2,
            },
            OpError::NotEnoughIndependentNodes {
                needed: n,
                placeable: n / 2,
            },
            OpError::NotFound,
            OpError::ReleaseInPast { release: a, now: b },
            OpError::ReleaseTooFar { release: a, max: b },
            OpError::NotEnoughPieces(text.clone()),
            OpError::BadInput(text.clone()),
            OpError::BadOutput(text.clone()),
            OpError::DirectoryUnreachable(text.clone()),
            OpError::UploadFailed(text.clone()),
            OpError::Integrity(text.clone()),
            OpError::Internal(text),
        ]
    }

    proptest! {
        /// Every error shows and becomes an event for any input (a release time beyond the
        /// year 9999 once made the daemon panic while formatting `ReleaseTooFar`).
        #[test]
        fn every_error_displays_for_any_input(a in any::<u64>(), b in any::<u64>(), n in any::<usize>(), text in ".*") {
            for e in every_error(a, b, n, text) {
                let shown = e.to_string();
                let ev = e.to_event();
                prop_assert_eq!(ev.message, shown);
                prop_assert_eq!(ev.error, e.code());
            }
        }
    }
}
