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
//!   replaces an existing file.

use crate::node::Node;
use crate::ops::{EventSink, OpError};
use crate::output::OutputWriter;
use crate::peer_client::PeerError;
use crate::piece::{PieceBody, HEADER_LEN};
use crate::wire::{BadPiece, GetResult};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use kairos_proto::{FileId, Manifest};
use kairos_seal::{FileInfo, OpenError, Opener, PieceHash, SHARE_LEN, TAG_LEN};
use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tempfile::NamedTempFile;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// Where the output goes.
enum Target {
    /// Create or replace this file.
    File(PathBuf),
    /// Create a new file in this directory, named after the sealed name.
    Dir(PathBuf),
}

impl Target {
    fn dir(&self) -> &Path {
        match self {
            Target::File(p) => p.parent().unwrap_or(Path::new("/")),
            Target::Dir(d) => d,
        }
    }
}

fn resolve_output(output: &Path) -> Result<Target, OpError> {
    if !output.is_absolute() {
        return Err(OpError::BadOutput(format!(
            "{} is not an absolute path",
            output.display()
        )));
    }
    match std::fs::metadata(output) {
        Ok(m) if m.is_dir() => Ok(Target::Dir(output.to_path_buf())),
        Ok(m) if m.is_file() => Ok(Target::File(output.to_path_buf())),
        Ok(_) => Err(OpError::BadOutput(format!(
            "{} exists and is neither a file nor a directory",
            output.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = output.parent().unwrap_or(Path::new("/"));
            if parent.is_dir() {
                Ok(Target::File(output.to_path_buf()))
            } else {
                Err(OpError::BadOutput(format!(
                    "the directory {} does not exist; create it first",
                    parent.display()
                )))
            }
        }
        Err(e) => Err(OpError::BadOutput(format!("{}: {e}", output.display()))),
    }
}

/// One plain file name from the sealed name: no separators, no control characters, not `.`
/// or `..`, never empty.
pub fn safe_name(sealed: &str, id: &FileId) -> String {
    let last = sealed.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        let id = id.to_string();
        format!("kairos-{}", &id[..16.min(id.len())])
    } else {
        clean.to_owned()
    }
}

/// A block ready for the opener.
struct ReadyBlock {
    index: u32,
    cipher_len: u32,
    expected: Vec<PieceHash>,
    /// Piece bodies (as served) in shard order, `None` where not fetched or bad.
    pieces: Vec<Option<Bytes>>,
}

/// Shared state of one download.
struct Ctx {
    node: Arc<Node>,
    manifest: Manifest,
    sink: EventSink,
    slots: Semaphore,
    bad: Mutex<Vec<BadPiece>>,
    unreachable: Mutex<BTreeMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Aborts the task when dropped (a cancelled get stops its fetches).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Downloads file `id` to `output` (absolute: a file path, or an existing directory).
pub async fn get(
    node: Arc<Node>,
    id: FileId,
    output: PathBuf,
    sink: EventSink,
) -> Result<GetResult, OpError> {
    let started = Instant::now();
    let target = resolve_output(&output)?;
    let dir = node.directory.clone().ok_or_else(|| {
        OpError::DirectoryUnreachable(
            "this node has no directories configured; start the daemon with --directory".into(),
        )
    })?;
    let signed = dir.fetch_manifest(&id, None).await?;
    let manifest = signed.manifest().clone();
    drop(signed);
    if node.now() < manifest.release {
        return Err(OpError::Locked {
            until: manifest.release,
        });
    }
    let params = manifest.params;
    let block_count = manifest.blocks.len() as u32;
    let total: u64 = manifest
        .blocks
        .iter()
        .map(|b| u64::from(b.cipher_len) - TAG_LEN as u64)
        .sum();
    sink.info(format!(
        "fetching {block_count} blocks ({} of {} pieces each) from {} peers",
        params.k(),
        params.total_shards(),
        manifest.peers.len()
    ));

    let out_dir = target.dir().to_path_buf();
    let temp = tokio::task::spawn_blocking(move || {
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
    .map_err(|e| OpError::Internal(e.to_string()))??;

    let (ready_tx, ready_rx) = mpsc::channel::<ReadyBlock>(2);
    let salt = manifest.salt;
    let opener_sink = sink.clone();
    let opener = AbortOnDrop(tokio::task::spawn_blocking(move || {
        open_all(
            temp,
            params,
            salt,
            block_count,
            ready_rx,
            opener_sink,
            total,
        )
    }));

    let k = params.k();
    let window = (node.cfg.download_concurrency.div_ceil(k) + 1).max(2);
    let ctx = Arc::new(Ctx {
        slots: Semaphore::new(node.cfg.download_concurrency),
        node: node.clone(),
        manifest,
        sink: sink.clone(),
        bad: Mutex::new(Vec::new()),
        unreachable: Mutex::new(BTreeMap::new()),
    });
    let mut fetches = futures::stream::iter(0..block_count)
        .map(|b| AbortOnDrop(tokio::spawn(fetch_block(ctx.clone(), b))))
        .buffered(window);
    let mut failure = None;
    while let Some(r) = fetches.next().await {
        match r {
            Ok(Ok(block)) => {
                if ready_tx.send(block).await.is_err() {
                    break; // the opener failed; its error is reported below
                }
            }
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(e) => {
                failure = Some(OpError::Internal(format!("fetch task: {e}")));
                break;
            }
        }
    }
    drop(fetches);
    drop(ready_tx);
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
    let replace = matches!(target, Target::File(_));
    let final_path = path.clone();
    tokio::task::spawn_blocking(move || persist(temp, &final_path, replace))
        .await
        .map_err(|e| OpError::Internal(e.to_string()))??;
    sink.progress(total, total);
    let bad_pieces = lock(&ctx.bad).clone();
    let unreachable = lock(&ctx.unreachable)
        .iter()
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

/// Renames the verified temporary file into place and makes the rename durable.
fn persist(temp: NamedTempFile, path: &Path, replace: bool) -> Result<(), OpError> {
    let result = if replace {
        temp.persist(path).map(|_| ())
    } else {
        temp.persist_noclobber(path).map(|_| ())
    };
    result.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            OpError::BadOutput(format!(
                "{} already exists; pass an output file name to replace it, or another directory",
                path.display()
            ))
        } else {
            OpError::BadOutput(format!("cannot create {}: {}", path.display(), e.error))
        }
    })?;
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| OpError::BadOutput(format!("syncing {}: {e}", parent.display())))?;
    }
    Ok(())
}

/// The opener thread: opens blocks in order into the temporary file, then checks the whole
/// file and fsyncs it.
fn open_all(
    temp: NamedTempFile,
    params: kairos_seal::Params,
    salt: kairos_seal::FileSalt,
    block_count: u32,
    mut ready: mpsc::Receiver<ReadyBlock>,
    sink: EventSink,
    total: u64,
) -> Result<(FileInfo, NamedTempFile), OpError> {
    let out_err = |e: std::io::Error| OpError::BadOutput(format!("writing the output: {e}"));
    let file = temp.as_file().try_clone().map_err(out_err)?;
    let mut opener = Opener::new(
        OutputWriter::new(file).map_err(out_err)?,
        params,
        salt,
        block_count,
    );
    let mut done = 0u64;
    let (mut waiting, mut working) = (Duration::ZERO, Duration::ZERO);
    let mut mark = Instant::now();
    while let Some(block) = ready.blocking_recv() {
        waiting += mark.elapsed();
        mark = Instant::now();
        let slots: Vec<Option<(&[u8], &[u8])>> = block
            .pieces
            .iter()
            .map(|p| {
                p.as_ref().map(|b| {
                    let data = &b[HEADER_LEN..];
                    (&data[..SHARE_LEN], &data[SHARE_LEN..])
                })
            })
            .collect();
        opener
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
    let (info, writer) = opener.finish_with_writer().map_err(open_error)?;
    writer.finish().map_err(out_err)?;
    Ok((info, temp))
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

/// What happened to one piece request.
enum PieceOutcome {
    Good(Bytes),
    Bad(String),
    Missing(PeerError),
}

async fn fetch_piece(ctx: &Ctx, addr: &str, hash: &PieceHash, max_len: usize) -> PieceOutcome {
    let Ok(_slot) = ctx.slots.acquire().await else {
        return PieceOutcome::Missing(PeerError::Unreachable("download stopped".into()));
    };
    match ctx.node.peers.fetch(addr, hash, max_len).await {
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

/// Fetches `k` good pieces of block `b`, trying further pieces as others fail.
async fn fetch_block(ctx: Arc<Ctx>, b: u32) -> Result<ReadyBlock, OpError> {
    let m = &ctx.manifest;
    let entry = &m.blocks[b as usize];
    let (k, n) = (m.params.k(), m.params.total_shards());
    let max_len = HEADER_LEN + SHARE_LEN + m.params.shard_len_for(entry.cipher_len as usize);
    let peer_of = |i: usize| &m.peers[entry.pieces[i].peer as usize];
    let mut slots: Vec<Option<Bytes>> = vec![None; n];
    let mut good = 0;
    let mut next = 0;
    let mut missing: Vec<(usize, String)> = Vec::new();
    let mut corrupt: Vec<(usize, String)> = Vec::new();
    let mut locked_until: Option<u64> = None;
    let mut inflight = FuturesUnordered::new();
    let launch = |i: usize| {
        let ctx = &ctx;
        async move {
            let addr = &peer_of(i).addr;
            (
                i,
                fetch_piece(ctx, addr, &entry.pieces[i].hash, max_len).await,
            )
        }
    };
    // Data shards first: with all k of them the block needs no erasure decoding.
    while good + inflight.len() < k && next < n {
        inflight.push(launch(next));
        next += 1;
    }
    // A slow peer is raced: while the block is incomplete, one more piece is asked for every
    // `spare_fetch_after`, and the first k good pieces win.
    let race = ctx.node.cfg.spare_fetch_after;
    let spare = tokio::time::sleep(race);
    tokio::pin!(spare);
    loop {
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
        let peer = peer_of(i);
        match outcome {
            PieceOutcome::Good(body) => {
                slots[i] = Some(body);
                good += 1;
            }
            PieceOutcome::Bad(reason) => {
                let bad = BadPiece {
                    block: b,
                    shard: i as u8,
                    peer: peer.key.to_text(),
                    addr: peer.addr.clone(),
                    reason: reason.clone(),
                };
                ctx.sink.warning(format!(
                    "block {b} piece {i}: peer {} ({}) served a bad piece: {reason}",
                    peer.addr, peer.key
                ));
                ctx.sink.emit(crate::wire::Event::BadPiece(bad.clone()));
                lock(&ctx.bad).push(bad);
                corrupt.push((i, peer.addr.clone()));
            }
            PieceOutcome::Missing(e) => {
                if let PeerError::Locked { until } = e {
                    locked_until = Some(locked_until.unwrap_or(0).max(until));
                }
                let first = lock(&ctx.unreachable)
                    .insert(peer.addr.clone(), e.to_string())
                    .is_none();
                if first {
                    ctx.sink
                        .warning(format!("peer {}: {e}; trying other pieces", peer.addr));
                }
                missing.push((i, format!("{}: {e}", peer.addr)));
            }
        }
        if good == k {
            break;
        }
        while good + inflight.len() < k && next < n {
            inflight.push(launch(next));
            next += 1;
        }
    }
    drop(inflight);
    if good < k {
        if let Some(until) = locked_until.filter(|_| corrupt.is_empty()) {
            if missing.len() == n - good && until > ctx.node.now() {
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
            list(&missing),
            list(&corrupt)
        )));
    }
    Ok(ReadyBlock {
        index: b,
        cipher_len: entry.cipher_len,
        expected: entry.pieces.iter().map(|p| p.hash).collect(),
        pieces: slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_stream_are_one_plain_component() {
        let id = FileId([7; 32]);
        assert_eq!(safe_name("report.pdf", &id), "report.pdf");
        assert_eq!(safe_name("../../etc/passwd", &id), "passwd");
        assert_eq!(safe_name("a\\b", &id), "b");
        assert!(safe_name("..", &id).starts_with("kairos-"));
        assert!(safe_name("", &id).starts_with("kairos-"));
        assert!(safe_name("dir/", &id).starts_with("kairos-"));
        assert_eq!(safe_name("x\u{0}y\n", &id), "xy");
    }
}
