//! The get engine: fetch the manifest (and for a version 2 file its placement and, with the
//! drand lock, the beacon that opens it: [`crate::plan`], [`crate::unlock`]), fetch `k` good
//! pieces of every block in parallel, open the blocks in order, and stream the file to the
//! CLI, which writes it ([`crate::stream_out`]; the CLI side is `crate::target`).
//!
//! Pipeline: block fetches run as tasks, at most `window` blocks ahead of the opener and at
//! most `download_concurrency` piece requests at once; finished blocks are handed in order to
//! a blocking thread that runs [`kairos_seal::Opener`] into a [`PlainStream`].
//!
//! Invariants:
//! * before the release time (the directory withholds the manifest, or the manifest's release
//!   is still ahead of this node's clock) nothing is sent but the error; with the drand lock,
//!   no piece is fetched before the lock opened;
//! * every piece is checked against its manifest hash before use; a bad or absent piece counts
//!   as missing and the next piece of the block is fetched; a peer that served a bad piece is
//!   reported ([`crate::wire::BadPiece`]);
//! * only bytes of blocks that passed their AEAD check are streamed; the `get_result` event —
//!   the CLI's signal to move its file into place — is sent only when the whole file verified
//!   (size and BLAKE3 against the trailer sealed inside the encryption);
//! * memory is O(piece size × (download_concurrency + n × window)), independent of file size;
//! * the daemon writes nothing to disk for a get.
//!
//! One block's fetching is [`crate::fetch`]'s.

use crate::fetch::{fetch_block, lock, Download, ReadyBlock};
use crate::ops::{EventSink, OpError};
use crate::piece::HEADER_LEN;
use crate::plan::Plan;
use crate::state::Node;
use crate::stream_out::PlainStream;
use crate::wire::{Event, GetResult};
use futures::stream::StreamExt;
use kairos_directory_client::DirectoryClient;
use kairos_proto::{AnyManifest, FileId, SignedContentManifest};
use kairos_seal::{FileInfo, OpenError, OpenSchedule, Opener, SHARE_LEN, TAG_LEN};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::AbortOnDropHandle;

/// Downloads file `id`, streaming its `file` and `data` events to `out`.
pub async fn get(
    node: Arc<Node>,
    id: FileId,
    out: mpsc::Sender<Event>,
    sink: EventSink,
) -> Result<GetResult, OpError> {
    let started = Instant::now();
    let plan = released_plan(&node, &id, &sink).await?;
    let (params, block_count) = (plan.params, plan.blocks.len() as u32);
    let total: u64 = (plan.blocks.iter())
        .map(|b| u64::from(b.cipher_len) - TAG_LEN as u64)
        .sum();
    sink.info(format!(
        "fetching {block_count} blocks ({} of {} pieces each) from {} peers",
        params.k(),
        params.total_shards(),
        plan.holders.len()
    ));
    let (ready_tx, ready_rx) = mpsc::channel::<ReadyBlock>(1);
    let opener = {
        let (salt, sink, schedule) = (plan.salt, sink.clone(), plan.schedule.clone());
        AbortOnDropHandle::new(tokio::task::spawn_blocking(move || {
            let stream = PlainStream::new(out);
            let mut opening = Opening::new(stream, params, salt, block_count, schedule);
            opening.run(ready_rx, sink, total)?;
            opening.finish()
        }))
    };
    let ctx = Arc::new(Download {
        slots: Semaphore::new(node.cfg.download_concurrency),
        node: node.clone(),
        plan,
        sink: sink.clone(),
        bad: Mutex::new(Vec::new()),
        unreachable: Mutex::new(BTreeMap::new()),
        fetched_bytes: AtomicU64::new(0),
        busy_micros: AtomicU64::new(0),
    });
    let failure = fetch_all(&ctx, block_count, ready_tx).await;
    let opened = opener
        .await
        .map_err(|e| OpError::Internal(format!("opener thread: {e}")))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let info = opened?;
    sink.progress(total, total);
    let fetched_bytes = ctx.fetched_bytes.load(Ordering::Relaxed);
    let busy = Duration::from_micros(ctx.busy_micros.load(Ordering::Relaxed));
    // No file id: the log must not record what this node's user downloaded.
    tracing::info!(
        "get: {fetched_bytes} piece bytes fetched in {:.1?}, {:.1} requests in flight on average (at most {})",
        started.elapsed(),
        busy.as_secs_f64() / started.elapsed().as_secs_f64(),
        node.cfg.download_concurrency
    );
    let bad_pieces = lock(&ctx.bad).clone();
    let unreachable = (lock(&ctx.unreachable).iter())
        .map(|(a, r)| format!("{a}: {r}"))
        .collect();
    Ok(GetResult {
        id,
        path: PathBuf::new(),
        name: info.name,
        size: info.size,
        blake3: data_encoding::HEXLOWER.encode(&info.hash),
        blocks: block_count,
        bad_pieces,
        unreachable,
        fetched_bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// What downloading the file needs, if its release time has passed by this node's clock (the
/// directory withholds the manifest before, too) and, with the drand lock, its beacon is out.
async fn released_plan(node: &Node, id: &FileId, sink: &EventSink) -> Result<Plan, OpError> {
    let dir = node.directories()?;
    match dir.fetch_any_manifest(id, None).await? {
        AnyManifest::V1(m) => {
            let m = m.manifest().clone();
            check_released(node, &m.params, m.release)?;
            Ok(Plan::from_v1(m))
        }
        AnyManifest::V2(m) => v2_plan(node, &dir, &m, sink).await,
    }
}

/// The plan of a version 2 file: released, unlocked (the beacon comes before any piece), and
/// its newest placement with holder addresses resolved.
async fn v2_plan(
    node: &Node,
    dir: &DirectoryClient,
    m: &SignedContentManifest,
    sink: &EventSink,
) -> Result<Plan, OpError> {
    let content = m.manifest();
    check_released(node, &content.params, content.release)?;
    let schedule: OpenSchedule = crate::unlock::open_schedule(node, dir, content, sink).await?;
    let placement = dir.fetch_newest_placement(m, None).await?;
    Plan::from_v2(node, dir, m, &placement, schedule).await
}

/// Refuses a file whose coding this node will not handle or whose release time has not come.
fn check_released(node: &Node, params: &kairos_seal::Params, release: u64) -> Result<(), OpError> {
    check_coding(params)?;
    if node.now() < release {
        return Err(OpError::Locked { until: release });
    }
    Ok(())
}

/// Most pieces per block a download accepts (a hostile manifest could ask for 255).
pub const MAX_DOWNLOAD_SHARDS: usize = 64;
/// Largest shard a download accepts (a hostile manifest could ask for 16 MiB): four times the
/// default (1 MiB − 4 KiB), so `download_concurrency` pieces in flight stay within tens of MiB.
pub const MAX_DOWNLOAD_SHARD_SIZE: u32 = 4 << 20;

/// Refuses coding parameters that would make this node hold more than it should: memory is
/// O(shard size × pieces in flight), and pieces in flight grow with `n`.
fn check_coding(params: &kairos_seal::Params) -> Result<(), OpError> {
    if params.total_shards() > MAX_DOWNLOAD_SHARDS || params.shard_size > MAX_DOWNLOAD_SHARD_SIZE {
        return Err(OpError::Integrity(format!(
            "the manifest asks for {}+{} pieces of {} bytes per block; this node downloads at most {MAX_DOWNLOAD_SHARDS} pieces of at most {MAX_DOWNLOAD_SHARD_SIZE} bytes",
            params.k(),
            params.m(),
            params.shard_size
        )));
    }
    Ok(())
}

/// Fetches every block, at most `window` blocks ahead of the opener, and hands them over in
/// order. Returns the first failure (the remaining fetches are aborted).
async fn fetch_all(
    ctx: &Arc<Download>,
    block_count: u32,
    ready_tx: mpsc::Sender<ReadyBlock>,
) -> Option<OpError> {
    let remote = remote_share(ctx);
    let window = window_blocks(
        ctx.node.cfg.download_concurrency,
        ctx.plan.params.k(),
        remote,
    );
    tracing::debug!(
        "get: {window} blocks fetched ahead, {:.0} % of the first pieces remote",
        remote * 100.0
    );
    let mut fetches = futures::stream::iter(0..block_count)
        .map(|b| AbortOnDropHandle::new(tokio::spawn(fetch_block(ctx.clone(), b))))
        .buffered(window);
    while let Some(r) = fetches.next().await {
        match r {
            Ok(Ok(block)) => {
                if ready_tx.send(block).await.is_err() {
                    return None; // the opener failed; its error is reported by the caller
                }
            }
            Ok(Err(e)) => return Some(e),
            Err(e) => return Some(OpError::Internal(format!("fetch task: {e}"))),
        }
    }
    None
}

/// How many blocks are fetched ahead of the opener: enough for the requests that leave this
/// node to fill `concurrency` slots plus half as many again. Over Tor piece times vary, and
/// with only `concurrency / k` blocks ahead one slow piece at the head left a quarter of the
/// slots idle (measured: 10–12 of 16 in flight on average). Pieces this node holds itself
/// come back at once over loopback, so a block with `k × remote` pieces on the network holds
/// only that many slots for long: with a quarter of the pieces local the same window in
/// blocks kept only 10.5–11.5 of 16 slots busy. Counting remote pieces, at most half again as
/// many blocks as when every piece is remote: memory is O(window × k × piece size).
fn window_blocks(concurrency: usize, k: usize, remote: f64) -> usize {
    let wanted = concurrency + concurrency / 2;
    let all_remote = wanted.div_ceil(k) + 1;
    let most = all_remote + all_remote / 2;
    // With no remote piece the quotient is infinite; `min` caps it before the cast.
    let counted = (wanted as f64 / (k as f64 * remote)).ceil() + 1.0;
    (counted.min(most as f64) as usize).max(all_remote).max(2)
}

/// The share of the pieces a download asks for first (each block's data pieces) that travel
/// over the network rather than to this node itself.
fn remote_share(ctx: &Download) -> f64 {
    let (plan, k) = (&ctx.plan, ctx.plan.params.k());
    let remote = |p: &kairos_proto::PieceEntry| match &plan.holders[p.peer as usize].addr {
        Ok(addr) => !ctx.node.peers.is_self(addr),
        Err(_) => true,
    };
    let (mut total, mut far) = (0usize, 0usize);
    for block in &plan.blocks {
        for p in block.pieces.iter().take(k) {
            total += 1;
            far += usize::from(remote(p));
        }
    }
    if total == 0 {
        1.0
    } else {
        far as f64 / total as f64
    }
}

/// The opener thread's state: opens blocks in order into the plaintext stream, announces
/// the sealed name as soon as it is known, then checks the whole file.
struct Opening {
    stream: PlainStream,
    opener: Opener<PlainStream>,
}

fn out_err(e: std::io::Error) -> OpError {
    OpError::BadOutput(format!("sending the file to the CLI: {e}"))
}

impl Opening {
    fn new(
        stream: PlainStream,
        params: kairos_seal::Params,
        salt: kairos_seal::FileSalt,
        block_count: u32,
        schedule: OpenSchedule,
    ) -> Self {
        let opener = Opener::with_schedule(stream.clone(), params, salt, block_count, schedule);
        Opening { stream, opener }
    }

    /// Opens every block received, in order, until the sender is done.
    fn run(
        &mut self,
        mut ready: mpsc::Receiver<ReadyBlock>,
        sink: EventSink,
        total: u64,
    ) -> Result<(), OpError> {
        let mut done = 0u64;
        let (mut waiting, mut working) = (Duration::ZERO, Duration::ZERO);
        let mut mark = Instant::now();
        while let Some(block) = ready.blocking_recv() {
            waiting += mark.elapsed();
            mark = Instant::now();
            let slots: Vec<Option<(&[u8], &[u8])>> = (block.pieces.iter())
                .map(|p| {
                    p.as_ref().map(|b| {
                        let data = &b[HEADER_LEN..];
                        (&data[..SHARE_LEN], &data[SHARE_LEN..])
                    })
                })
                .collect();
            self.opener
                .push_block(block.index, block.cipher_len, &block.expected, &slots)
                .map_err(open_error)?;
            self.announce()?;
            done += u64::from(block.cipher_len) - TAG_LEN as u64;
            sink.progress(done, total);
            working += mark.elapsed();
            mark = Instant::now();
        }
        tracing::debug!(
            "opener: {:.2} s opening and sending, {:.2} s waiting for blocks",
            working.as_secs_f64(),
            waiting.as_secs_f64()
        );
        Ok(())
    }

    /// Sends the sealed name once the opener knows it (then the bytes start flowing).
    fn announce(&self) -> Result<(), OpError> {
        match self.opener.name() {
            Some(name) if !self.stream.announced() => self.stream.announce(name).map_err(out_err),
            _ => Ok(()),
        }
    }

    /// Checks the whole file against its sealed trailer, then sends the last bytes.
    fn finish(self) -> Result<FileInfo, OpError> {
        let (info, mut stream) = self.opener.finish_with_writer().map_err(open_error)?;
        if !stream.announced() {
            // An empty file with a header that ended exactly at the last block.
            stream.announce(&info.name).map_err(out_err)?;
        }
        stream.flush().map_err(out_err)?;
        Ok(info)
    }
}

fn open_error(e: OpenError) -> OpError {
    match e {
        OpenError::Io(e) => out_err(e),
        OpenError::MissingBlocks { .. } => {
            OpError::Internal(format!("the download stopped early: {e}"))
        }
        other => OpError::Integrity(format!(
            "the file does not verify: {other}; the manifest or the uploader's data is inconsistent"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_seal::Params;

    #[test]
    fn hostile_coding_parameters_are_refused_before_any_fetch() {
        assert!(check_coding(&Params::default()).is_ok());
        let wide = Params {
            data_shards: 200,
            parity_shards: 55,
            ..Params::default()
        };
        assert!(matches!(check_coding(&wide), Err(OpError::Integrity(_))));
        let huge = Params {
            shard_size: 16 << 20,
            ..Params::default()
        };
        assert!(matches!(check_coding(&huge), Err(OpError::Integrity(_))));
    }

    #[test]
    fn the_window_counts_the_pieces_that_leave_the_node() {
        // Every piece remote: 24 requests over k = 3, one block more.
        assert_eq!(window_blocks(16, 3, 1.0), 9);
        // A third local: 2 remote pieces a block need 12 blocks, plus one.
        assert_eq!(window_blocks(16, 3, 2.0 / 3.0), 13);
        // Never more than half again the all-remote window, however much is local (memory).
        assert_eq!(window_blocks(16, 3, 0.0), 13);
        assert_eq!(window_blocks(16, 3, 0.1), 13);
        // Never fewer blocks than with every piece remote, and at least two.
        assert_eq!(window_blocks(16, 10, 1.0), 4);
        assert_eq!(window_blocks(1, 64, 1.0), 2);
    }
}
