//! Background write-back of a file that is being written: the download's output is flushed
//! to disk (`fdatasync` on a second handle) every few tens of MiB while blocks are still
//! arriving, so the final fsync waits only for the tail instead of the whole file.
//!
//! Invariant: the flusher never decides durability — the owner still calls `sync_all` after
//! [`Flusher::finish`]; flushing early only moves disk work earlier. A flush error is reported
//! by `finish`.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

pub struct Flusher {
    kick: Option<SyncSender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Flusher {
    /// Starts a flusher thread for `file` (a clone of the handle being written).
    pub fn new(file: File) -> io::Result<Self> {
        // Capacity 1: kicks while a flush runs coalesce into one more flush.
        let (kick, rx) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("kairos-flush".into())
            .spawn(move || {
                for () in rx {
                    file.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Flusher {
            kick: Some(kick),
            thread: Some(thread),
        })
    }

    /// Asks for a flush of everything written so far (never blocks).
    pub fn kick(&self) {
        if let Some(k) = &self.kick {
            let _ = k.try_send(());
        }
    }

    /// Stops the thread and reports a flush error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.kick = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the flusher thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.kick = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
