//! The get engine: fetch the manifest, fetch `k` good pieces of every block in parallel, open
//! the blocks in order, and move the file into place only once it verified as a whole.
//!
//! Pipeline: block fetches run as tasks, at most `window` blocks ahead of the opener and at
//! most `download_concurrency` piece requests at once; finished blocks are handed in order to
//! a blocking thread that runs [`kairos_seal::Opener`] into a temporary file in the output's
//! directory.
//!
//! Invariants:
//! * before the release time (the directory withholds the manifest, or the manifest's release
//!   is still ahead of this node's clock) nothing is created on disk;
//! * every piece is checked against its manifest hash before use; a bad or absent piece counts
//!   as missing and the next piece of the block is fetched; a peer that served a bad piece is
//!   reported ([`crate::wire::BadPiece`]);
//! * the output appears (by rename, after fsync) only when the whole file verified — size and
//!   BLAKE3 against the trailer sealed inside the encryption; on any failure or cancellation
//!   the temporary file is removed (drop guard);
//! * memory is O(piece size × (download_concurrency + n × window)), independent of file size;
//! * a name taken from the sealed stream is reduced to one plain path component and never
//!   replaces an existing file ([`crate::target`]).
//!
//! One block's fetching is [`crate::fetch`]'s; where the output goes is [`crate::target`]'s.

use crate::fetch::{fetch_block, lock, Download, ReadyBlock};
use crate::ops::{EventSink, OpError};
use crate::output::OutputWriter;
use crate::piece::HEADER_LEN;
use crate::state::Node;
use crate::target::{persist, resolve_output, safe_name, Target};
use crate::wire::GetResult;
use futures::stream::StreamExt;
use kairos_proto::{FileId, Manifest};
use kairos_seal::{FileInfo, OpenError, Opener, SHARE_LEN, TAG_LEN};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::NamedTempFile;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::AbortOnDropHandle;

/// Downloads file `id` to `output` (absolute: a file path, or an existing directory).
pub async fn get(
    node: Arc<Node>,
    id: FileId,
    output: PathBuf,
    sink: EventSink,
) -> Result<GetResult, OpError> {
    let started = Instant::now();
    let target = resolve_output(&output)?;
    let manifest = released_manifest(&node, &id).await?;
    let (params, block_count) = (manifest.params, manifest.blocks.len() as u32);
    let total: u64 = (manifest.blocks.iter())
        .map(|b| u64::from(b.cipher_len) - TAG_LEN as u64)
        .sum();
    sink.info(format!(
        "fetching {block_count} blocks ({} of {} pieces each) from {} peers",
        params.k(),
        params.total_shards(),
        manifest.peers.len()
    ));
    let temp = create_temp(target.dir().to_path_buf()).await?;
    let (ready_tx, ready_rx) = mpsc::channel::<ReadyBlock>(2);
    let opener = {
        let (salt, sink) = (manifest.salt, sink.clone());
        AbortOnDropHandle::new(tokio::task::spawn_blocking(move || {
            let mut out = Opening::new(temp, params, salt, block_count)?;
            out.run(ready_rx, sink, total)?;
            out.finish()
        }))
    };
    let ctx = Arc::new(Download {
        slots: Semaphore::new(node.cfg.download_concurrency),
        node: node.clone(),
        manifest,
        sink: sink.clone(),
        bad: Mutex::new(Vec::new()),
        unreachable: Mutex::new(BTreeMap::new()),
    });
    let failure = fetch_all(&ctx, block_count, ready_tx).await;
    let opened = opener
        .await
        .map_err(|e| OpError::Internal(format!("opener thread: {e}")))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let (info, temp) = opened?;
    let path = match &target {
        Target::File(p) => p.clone(),
        Target::Dir(d) => d.join(safe_name(&info.name, &id)),
    };
    let (replace, final_path) = (matches!(target, Target::File(_)), path.clone());
    tokio::task::spawn_blocking(move || persist(temp, &final_path, replace))
        .await
        .map_err(|e| OpError::Internal(e.to_string()))??;
    sink.progress(total, total);
    let bad_pieces = lock(&ctx.bad).clone();
    let unreachable = (lock(&ctx.unreachable).iter())
        .map(|(a, r)| format!("{a}: {r}"))
        .collect();
    Ok(GetResult {
        id,
        path,
        name: info.name,
        size: info.size,
        blake3: data_encoding::HEXLOWER.encode(&info.hash),
        blocks: block_count,
        bad_pieces,
        unreachable,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// The file's manifest, if its release time has passed by this node's clock (the directory
/// withholds it before, too).
async fn released_manifest(node: &Node, id: &FileId) -> Result<Manifest, OpError> {
    let dir = node.directory.clone().ok_or_else(|| {
        OpError::DirectoryUnreachable(
            "this node has no directories configured; start the daemon with --directory".into(),
        )
    })?;
    let manifest = dir.fetch_manifest(id, None).await?.manifest().clone();
    check_coding(&manifest.params)?;
    if node.now() < manifest.release {
        return Err(OpError::Locked {
            until: manifest.release,
        });
    }
    Ok(manifest)
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

/// A temporary file in the output's directory (removed again if the download fails).
async fn create_temp(out_dir: PathBuf) -> Result<NamedTempFile, OpError> {
    tokio::task::spawn_blocking(move || {
        tempfile::Builder::new()
            .prefix(".kairos-get-")
            .suffix(".part")
            .tempfile_in(&out_dir)
            .map_err(|e| {
                OpError::BadOutput(format!(
                    "cannot create a file in {}: {e}",
                    out_dir.display()
                ))
            })
    })
    .await
    .map_err(|e| OpError::Internal(e.to_string()))?
}

/// Fetches every block, at most `window` blocks ahead of the opener, and hands them over in
/// order. Returns the first failure (the remaining fetches are aborted).
async fn fetch_all(
    ctx: &Arc<Download>,
    block_count: u32,
    ready_tx: mpsc::Sender<ReadyBlock>,
) -> Option<OpError> {
    let k = ctx.manifest.params.k();
    let window = (ctx.node.cfg.download_concurrency.div_ceil(k) + 1).max(2);
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

/// The opener thread's state: opens blocks in order into the temporary file, then checks
/// the whole file and fsyncs it.
struct Opening {
    temp: NamedTempFile,
    opener: Opener<OutputWriter>,
}

fn out_err(e: std::io::Error) -> OpError {
    OpError::BadOutput(format!("writing the output: {e}"))
}

impl Opening {
    fn new(
        temp: NamedTempFile,
        params: kairos_seal::Params,
        salt: kairos_seal::FileSalt,
        block_count: u32,
    ) -> Result<Self, OpError> {
        let file = temp.as_file().try_clone().map_err(out_err)?;
        let writer = OutputWriter::new(file).map_err(out_err)?;
        let opener = Opener::new(writer, params, salt, block_count);
        Ok(Opening { temp, opener })
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
            done += u64::from(block.cipher_len) - TAG_LEN as u64;
            sink.progress(done, total);
            working += mark.elapsed();
            mark = Instant::now();
        }
        tracing::debug!(
            "opener: {:.2} s opening and writing, {:.2} s waiting for blocks",
            working.as_secs_f64(),
            waiting.as_secs_f64()
        );
        Ok(())
    }

    /// Checks the whole file against its sealed trailer and makes it durable.
    fn finish(self) -> Result<(FileInfo, NamedTempFile), OpError> {
        let (info, writer) = self.opener.finish_with_writer().map_err(open_error)?;
        writer.finish().map_err(out_err)?;
        Ok((info, self.temp))
    }
}

fn open_error(e: OpenError) -> OpError {
    match e {
        OpenError::Io(e) => OpError::BadOutput(format!("writing the output: {e}")),
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
}
