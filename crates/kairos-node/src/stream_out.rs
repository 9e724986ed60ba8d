//! The daemon side of a download's plaintext: the opened file goes to the CLI as `file` and
//! `data` events on the get stream ([`crate::wire::Event`]), and the CLI writes it where its
//! user asked (`crate::target`). The daemon never writes a download to a path.
//!
//! Invariants: only bytes of blocks that passed their AEAD check reach this writer (the
//! [`kairos_seal::Opener`] writes nothing else); the `file` event (the sealed name) precedes
//! every `data` event, so the CLI can check its target before it writes a byte; memory is
//! bounded by the data channel (a few 256 KiB chunks) plus what arrives before the name is known
//! (the header ends in the first block), because sending waits for the CLI to read.

use crate::wire::Event;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Plaintext bytes per `data` event (a few are queued: small events keep that memory small).
const CHUNK: usize = 256 << 10;

/// Where the opener writes: a handle shared by the opener (which writes) and the opening loop
/// (which announces the name once the opener knows it).
#[derive(Clone)]
pub struct PlainStream {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    tx: mpsc::Sender<Event>,
    buf: Vec<u8>,
    /// Whether the `file` event went out (before that, bytes are only buffered).
    announced: bool,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the CLI stopped reading")
}

impl Inner {
    fn send(&mut self, event: Event) -> io::Result<()> {
        self.tx.blocking_send(event).map_err(|_| gone())
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() || !self.announced {
            return Ok(());
        }
        let b64 = data_encoding::BASE64.encode(&self.buf);
        self.buf.clear();
        self.send(Event::Data { b64 })
    }
}

impl PlainStream {
    /// A stream whose events go to `tx` (read by the local API and sent to the CLI in order).
    pub fn new(tx: mpsc::Sender<Event>) -> Self {
        let inner = Inner {
            tx,
            buf: Vec::with_capacity(CHUNK),
            announced: false,
        };
        PlainStream {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the `file` event; bytes written from now on flow to the CLI. Call it once, from a
    /// blocking thread.
    pub fn announce(&self, name: &str) -> io::Result<()> {
        let mut inner = self.lock();
        inner.send(Event::File {
            name: name.to_owned(),
        })?;
        inner.announced = true;
        if inner.buf.len() >= CHUNK {
            inner.send_buf()?;
        }
        Ok(())
    }

    /// Whether [`PlainStream::announce`] ran.
    pub fn announced(&self) -> bool {
        self.lock().announced
    }
}

impl Write for PlainStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut inner = self.lock();
        // Once announced, take at most one event's worth (`write_all` comes back for the rest),
        // so the buffer never outgrows an event.
        let take = if inner.announced {
            data.len().min(CHUNK - inner.buf.len().min(CHUNK - 1))
        } else {
            data.len()
        };
        inner.buf.extend_from_slice(&data[..take]);
        if inner.buf.len() >= CHUNK {
            inner.send_buf()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().send_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_goes_first_and_bytes_arrive_in_order() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut out = PlainStream::new(tx);
        let data: Vec<u8> = (0..3 * CHUNK + 5).map(|i| (i % 251) as u8).collect();
        out.write_all(&data[..CHUNK + 1]).unwrap();
        out.announce("f.bin").unwrap();
        out.write_all(&data[CHUNK + 1..]).unwrap();
        out.flush().unwrap();
        drop(out);
        assert_eq!(
            rx.blocking_recv(),
            Some(Event::File {
                name: "f.bin".into()
            })
        );
        let mut got = Vec::new();
        while let Some(Event::Data { b64 }) = rx.blocking_recv() {
            let chunk = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
            assert!(
                chunk.len() <= CHUNK || got.is_empty(),
                "only what came before the name may exceed an event"
            );
            got.extend(chunk);
        }
        assert!(got == data);
    }
}
