//! The node's standing with its directories: whether it has joined, one client per
//! directory, and how each directory last answered (for `kairos status`). The rounds that
//! change it are [`crate::heartbeat`]'s.
//!
//! Invariants: once joined, the node stays joined until it stops; each directory's status is
//! recorded independently, so one unreachable directory does not hide the others.

use crate::wire::DirectoryStatus;
use kairos_directory_client::DirectoryClient;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// The node's standing with its directories.
pub struct Membership {
    joined: AtomicBool,
    wake: Notify,
    /// One client per directory, in configuration order.
    clients: Vec<DirectoryClient>,
    status: Mutex<Vec<DirectoryStatus>>,
    peers_known: AtomicUsize,
}

impl Membership {
    pub fn new(clients: Vec<DirectoryClient>) -> Self {
        let status = clients
            .iter()
            .map(|c| DirectoryStatus {
                addr: c.addrs().first().cloned().unwrap_or_default(),
                last_success: None,
                last_error: None,
                last_error_at: None,
            })
            .collect();
        Membership {
            joined: AtomicBool::new(false),
            wake: Notify::new(),
            clients,
            status: Mutex::new(status),
            peers_known: AtomicUsize::new(0),
        }
    }

    /// Marks the node joined and wakes the heartbeat loop.
    pub(crate) fn set_joined(&self) {
        self.joined.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Resolves when [`Membership::set_joined`] is called.
    pub(crate) async fn joined_signal(&self) {
        self.wake.notified().await
    }

    /// The per-directory clients, in configuration order.
    pub(crate) fn clients(&self) -> &[DirectoryClient] {
        &self.clients
    }

    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::SeqCst)
    }

    pub fn peers_known(&self) -> usize {
        self.peers_known.load(Ordering::SeqCst)
    }

    /// Records a fresh count of live peers (heartbeats and uploads list them).
    pub fn set_peers_known(&self, count: usize) {
        self.peers_known.store(count, Ordering::SeqCst);
    }

    pub fn directories(&self) -> Vec<DirectoryStatus> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn record(&self, i: usize, now: u64, result: Result<(), String>) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = status.get_mut(i) {
            match result {
                Ok(()) => s.last_success = Some(now),
                Err(e) => {
                    s.last_error = Some(e);
                    s.last_error_at = Some(now);
                }
            }
        }
    }
}

impl Membership {
    pub(crate) fn status_addr(&self, i: usize) -> String {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(i)
            .map(|s| s.addr.clone())
            .unwrap_or_default()
    }
}
