//! The download's output file, written on its own thread.
//!
//! The opener thread decrypts and hashes; writing into the page cache costs about as much
//! again, so it happens here, on a second thread, fed 1 MiB buffers over a bounded channel.
//! A third thread `fdatasync`s every few tens of MiB, so the final fsync waits only for the
//! tail instead of the whole file.
//!
//! Invariants: bytes reach the file in the order written; memory is bounded by the channel
//! (a few MiB); [`OutputWriter::finish`] returns only after every byte was written and the
//! file fsync'd (`sync_all`), and reports the first I/O error of either thread. Early flushes
//! never decide durability — the final `sync_all` does.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per buffer handed to the writer thread.
const CHUNK: usize = 1 << 20;
/// Buffers queued for the writer thread at most.
const QUEUE: usize = 4;
/// Bytes written between background flushes (measured: 32–128 MiB are alike here; larger
/// only lets more dirty data pile up before the final fsync).
const FLUSH_EVERY: u64 = 128 << 20;

/// A `Write` whose bytes go to `file` on a writer thread.
pub struct OutputWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl OutputWriter {
    pub fn new(file: File) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (spare_tx, spare) = mpsc::sync_channel::<Vec<u8>>(QUEUE + 2);
        let flush_handle = file.try_clone()?;
        let thread = std::thread::Builder::new()
            .name("kairos-output".into())
            .spawn(move || {
                let flusher = Flusher::new(flush_handle)?;
                let mut file = file;
                let mut unflushed = 0u64;
                for buf in rx {
                    file.write_all(&buf)?;
                    unflushed += buf.len() as u64;
                    if unflushed >= FLUSH_EVERY {
                        flusher.kick();
                        unflushed = 0;
                    }
                    let _ = spare_tx.try_send(buf);
                }
                flusher.finish()?;
                file.sync_all()
            })?;
        Ok(OutputWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            spare,
            thread: Some(thread),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .map(|mut b| {
                b.clear();
                b
            })
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            // The writer thread stopped: its own error says why.
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the output writer thread stopped early"))),
        }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the output writer thread panicked")),
            None => Ok(()),
        }
    }

    /// Writes what is buffered, waits for the writer thread, fsyncs the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.join()
    }
}

impl Write for OutputWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Durability is `finish`'s job; here only hand over what is buffered.
        self.send()
    }
}

impl Drop for OutputWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// `fdatasync` on request, on its own thread (never blocks the writer).
struct Flusher {
    kick: Option<SyncSender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Flusher {
    fn new(file: File) -> io::Result<Self> {
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

    fn kick(&self) {
        if let Some(k) = &self.kick {
            let _ = k.try_send(());
        }
    }

    fn finish(mut self) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let file = File::create(&path).unwrap();
        let mut w = OutputWriter::new(file).unwrap();
        let mut want = Vec::new();
        for i in 0..3000u32 {
            let piece = vec![(i % 251) as u8; (i as usize * 37) % 5000];
            w.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
        }
        w.flush().unwrap();
        w.finish().unwrap();
        let mut got = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == want);
    }
}
