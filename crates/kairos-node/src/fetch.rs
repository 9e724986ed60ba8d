//! Fetching one block of a download: `k` good pieces out of `n`, verified against the
//! manifest, with slow peers raced by spare requests.
//!
//! Invariants: a piece counts only if it decodes and hashes to the manifest's hash; a bad
//! piece is reported with the peer that served it ([`crate::wire::BadPiece`]) and counts as
//! missing; at most `download_concurrency` piece requests are in flight per download (the
//! shared [`Download::slots`]); a block fails as `Locked` only if every piece that was not
//! fetched was refused as locked and none was corrupt — otherwise with the list of what was
//! missing and why.

use crate::ops::{EventSink, OpError};
use crate::peer_client::PeerError;
use crate::piece::{PieceBody, HEADER_LEN};
use crate::plan::{Holder, Plan};
use crate::state::Node;
use crate::wire::BadPiece;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use kairos_proto::BlockEntry;
use kairos_seal::{PieceHash, SHARE_LEN};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

/// A block ready for the opener.
pub struct ReadyBlock {
    pub index: u32,
    pub cipher_len: u32,
    pub expected: Vec<PieceHash>,
    /// Piece bodies (as served) in shard order, `None` where not fetched or bad.
    pub pieces: Vec<Option<Bytes>>,
}

/// Shared state of one download.
pub struct Download {
    pub node: Arc<Node>,
    pub plan: Plan,
    pub sink: EventSink,
    pub slots: Semaphore,
    pub bad: Mutex<Vec<BadPiece>>,
    pub unreachable: Mutex<BTreeMap<String, String>>,
    /// Piece bytes received, whether used or not (spare fetches included): the get's bytes on
    /// the wire.
    pub fetched_bytes: AtomicU64,
    /// Microseconds piece requests were in flight, summed over requests: divided by the
    /// download's time, how many were in flight on average.
    pub busy_micros: AtomicU64,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What happened to one piece request.
enum PieceOutcome {
    Good(Bytes),
    Bad(String),
    Missing(PeerError),
}

async fn fetch_piece(
    ctx: &Download,
    holder: &Holder,
    hash: &PieceHash,
    max_len: usize,
) -> PieceOutcome {
    let addr = match &holder.addr {
        Ok(addr) => addr,
        Err(why) => {
            return PieceOutcome::Missing(PeerError::Unreachable(format!(
                "its address is not known: {why}"
            )))
        }
    };
    let Ok(_slot) = ctx.slots.acquire().await else {
        return PieceOutcome::Missing(PeerError::Unreachable("download stopped".into()));
    };
    let started = Instant::now();
    let fetched = ctx.node.peers.fetch(addr, hash, max_len).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    ctx.busy_micros.fetch_add(micros, Ordering::Relaxed);
    if let Ok(body) = &fetched {
        (ctx.fetched_bytes).fetch_add(body.len() as u64, Ordering::Relaxed);
    }
    match fetched {
        Ok(body) => match PieceBody::decode(body.clone()) {
            Ok(p) if p.hash() == *hash => PieceOutcome::Good(body),
            Ok(_) => PieceOutcome::Bad(
                "hash mismatch: the piece is not the one the manifest lists".into(),
            ),
            Err(e) => PieceOutcome::Bad(format!("malformed piece: {e}")),
        },
        Err(PeerError::Invalid(e)) => PieceOutcome::Bad(e),
        Err(e) => PieceOutcome::Missing(e),
    }
}

/// What the pieces of one block came to so far.
struct Tally {
    b: u32,
    k: usize,
    n: usize,
    /// Piece bodies in shard order, `None` where not fetched (yet) or bad.
    slots: Vec<Option<Bytes>>,
    good: usize,
    missing: Vec<(usize, String)>,
    corrupt: Vec<(usize, String)>,
    locked_until: Option<u64>,
}

impl Tally {
    fn new(b: u32, k: usize, n: usize) -> Self {
        Tally {
            b,
            k,
            n,
            slots: vec![None; n],
            good: 0,
            missing: Vec::new(),
            corrupt: Vec::new(),
            locked_until: None,
        }
    }

    /// Counts piece `i` served by `peer`, reporting bad pieces and unreachable peers.
    fn record(&mut self, ctx: &Download, i: usize, peer: &Holder, outcome: PieceOutcome) {
        let addr = peer.label();
        let b = self.b;
        match outcome {
            PieceOutcome::Good(body) => {
                self.slots[i] = Some(body);
                self.good += 1;
            }
            PieceOutcome::Bad(reason) => {
                let bad = BadPiece {
                    block: b,
                    shard: i as u8,
                    peer: peer.key.to_text(),
                    addr: addr.clone(),
                    reason: reason.clone(),
                };
                ctx.sink.warning(format!(
                    "block {b} piece {i}: peer {addr} ({}) served a bad piece: {reason}",
                    peer.key
                ));
                ctx.sink.emit(crate::wire::Event::BadPiece(bad.clone()));
                lock(&ctx.bad).push(bad);
                self.corrupt.push((i, addr));
            }
            PieceOutcome::Missing(e) => {
                if let PeerError::Locked { until } = e {
                    self.locked_until = Some(self.locked_until.unwrap_or(0).max(until));
                }
                let first = lock(&ctx.unreachable)
                    .insert(addr.clone(), e.to_string())
                    .is_none();
                if first {
                    ctx.sink
                        .warning(format!("peer {addr}: {e}; trying other pieces"));
                }
                self.missing.push((i, format!("{addr}: {e}")));
            }
        }
    }

    /// The block for the opener, or why it cannot be rebuilt now.
    fn finish(self, entry: &BlockEntry, now: u64) -> Result<ReadyBlock, OpError> {
        let Tally { b, k, n, good, .. } = self;
        if good < k {
            if let Some(until) = self.locked_until.filter(|_| self.corrupt.is_empty()) {
                if self.missing.len() == n - good && until > now {
                    return Err(OpError::Locked { until });
                }
            }
            let list = |v: &[(usize, String)]| {
                v.iter()
                    .map(|(i, why)| format!("{i} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(OpError::NotEnoughPieces(format!(
                "block {b}: only {good} of the {k} pieces needed could be fetched (of {n}); missing shards: [{}]; corrupt shards: [{}]. The file cannot be rebuilt now; try again when more of its peers are back",
                list(&self.missing),
                list(&self.corrupt)
            )));
        }
        Ok(ReadyBlock {
            index: b,
            cipher_len: entry.cipher_len,
            expected: entry.pieces.iter().map(|p| p.hash).collect(),
            pieces: self.slots,
        })
    }
}

/// Fetches `k` good pieces of block `b`, trying further pieces as others fail.
pub async fn fetch_block(ctx: Arc<Download>, b: u32) -> Result<ReadyBlock, OpError> {
    let m = &ctx.plan;
    let entry = &m.blocks[b as usize];
    let (k, n) = (m.params.k(), m.params.total_shards());
    let max_len = HEADER_LEN + SHARE_LEN + m.params.shard_len_for(entry.cipher_len as usize);
    let peer_of = |i: usize| &m.holders[entry.pieces[i].peer as usize];
    let mut tally = Tally::new(b, k, n);
    let mut next = 0;
    let mut inflight = FuturesUnordered::new();
    let launch = |i: usize| {
        let ctx = &ctx;
        async move {
            let outcome = fetch_piece(ctx, peer_of(i), &entry.pieces[i].hash, max_len).await;
            (i, outcome)
        }
    };
    // A slow peer is raced: while the block is incomplete, one more piece is asked for every
    // `spare_fetch_after`, and the first k good pieces win.
    let race = ctx.node.cfg.spare_fetch_after;
    let spare = tokio::time::sleep(race);
    tokio::pin!(spare);
    loop {
        // Data shards first: with all k of them the block needs no erasure decoding.
        while tally.good + inflight.len() < k && next < n {
            inflight.push(launch(next));
            next += 1;
        }
        let (i, outcome) = tokio::select! {
            r = inflight.next() => match r {
                Some(r) => r,
                None => break,
            },
            () = &mut spare, if next < n => {
                inflight.push(launch(next));
                next += 1;
                spare.as_mut().reset(tokio::time::Instant::now() + race);
                continue;
            }
        };
        tally.record(&ctx, i, peer_of(i), outcome);
        if tally.good == k {
            break;
        }
    }
    drop(inflight);
    tally.finish(entry, ctx.node.now())
}
