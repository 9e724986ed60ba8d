//! The put engine: seal a file as a stream, place every block's `n` pieces on `n` distinct
//! nodes, upload them in parallel, then sign and publish the content manifest (version 2) and
//! the placement record (`docs/manifest-v2.md`).
//!
//! Pipeline: a blocking thread runs [`kairos_seal::Sealer`] over the file and hands sealed
//! blocks over a channel of capacity 1; this task turns each piece into a peer-API body and
//! starts its upload once one of `upload_concurrency` slots is free, so the sealer waits
//! whenever the network does.
//!
//! Invariants:
//! * memory is O(block size × 3 + piece size × upload_concurrency) (one block being sealed,
//!   one waiting, one being handed to its uploads),
//!   independent of the file size;
//! * the release time is checked (future, within `max_release`) and the peer list is checked
//!   (at least `n` usable nodes) before anything is read or uploaded;
//! * the placement record names where each piece actually landed, by holder identity: a piece
//!   whose node fails moves to another node that holds nothing of its block
//!   ([`crate::placement`]);
//! * everything the network sees of the upload — manifest, placement, store requests — is
//!   signed by the file's per-file key ([`crate::file_keys`]), never by the node key;
//! * the file id exists only once every piece is durable on its node and the manifest and its
//!   placement are published; a failure before that returns an error (pieces already stored
//!   are orphans that expire with their retention).

use crate::file_keys::FileKeys;
use crate::ops::{EventSink, OpError};
use crate::piece::OutgoingPiece;
use crate::placement::{Candidate, Placement};
use crate::state::Node;
use crate::wire::{PutRequest, PutResult, Upload};
use bytes::Bytes;
use kairos_directory_client::DirectoryClient;
use kairos_proto::{ContentBlock, ContentManifest, PlacementRecord, PublicKey};
use kairos_seal::{KeySchedule, PieceHash, SealError, SealedBlock, Sealer, MAX_NAME_LEN, TAG_LEN};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// State of one upload shared by its piece tasks.
struct Ctx {
    node: Arc<Node>,
    sink: EventSink,
    placement: Mutex<Placement>,
    n: usize,
    total: u64,
    done: AtomicU64,
    retries: AtomicU64,
    /// The file's release time (Unix seconds).
    release: u64,
    /// The file's salt, per-file uploader key (signs every store request), key schedule and
    /// lock.
    keys: FileKeys,
    /// Every piece stored so far and its holder (key, address): what a failed upload takes
    /// back ([`Orphans`]).
    stored: Mutex<Vec<(PublicKey, String, PieceHash)>>,
}

/// Takes back, when dropped armed, every piece an upload stored: a put that fails or is
/// cancelled (the CLI went away, Ctrl-C) leaves no orphan pieces on its holders. The deletes
/// are signed by the per-file key, run in the background (a dropped future cannot await) and
/// are best effort: a holder that cannot be reached drops them at their retention.
struct Orphans {
    ctx: Arc<Ctx>,
    armed: bool,
}

impl Drop for Orphans {
    fn drop(&mut self) {
        let pieces = std::mem::take(&mut *lock(&self.ctx.stored));
        if !self.armed || pieces.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let n = pieces.len();
            let deletes = pieces.iter().map(|(holder, addr, hash)| {
                let node = &ctx.node;
                node.peers
                    .delete(&ctx.keys.uploader, holder, addr, hash, node.now())
            });
            let results = futures::future::join_all(deletes).await;
            let failed = results.iter().filter(|r| r.is_err()).count();
            tracing::info!(
                "upload abandoned: took back {} of its {n} stored pieces ({failed} holders could not be reached; theirs expire with their retention)",
                n - failed
            );
        });
    }
}

/// One block's placement while its pieces upload.
struct BlockState {
    /// Node (index into the placement) of each shard.
    assigned: Mutex<Vec<usize>>,
    /// Pieces not yet stored.
    remaining: AtomicUsize,
    plain_len: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The file name to seal: the name given (`put -`), else the path's last component; cut to
/// 255 bytes of UTF-8.
fn sealed_name(path: &Path, given: Option<&str>) -> String {
    let name = match given {
        Some(n) => n.to_owned(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let mut end = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

fn open_input(path: &Path) -> Result<(File, u64), OpError> {
    let bad = |e: std::io::Error| OpError::BadInput(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(bad)?;
    let meta = file.metadata().map_err(bad)?;
    if !meta.is_file() {
        return Err(OpError::BadInput(format!(
            "{} is not a regular file; put uploads one file at a time",
            path.display()
        )));
    }
    Ok((file, meta.len()))
}

/// Seal worker threads: none, the sealer thread seals each block itself. One core seals about
/// 1 GB/s (`cargo bench -p kairos-seal`), several times what the disks and far more than what
/// Tor carry, while worker threads would keep `T + 1` blocks (about 10 MiB each, plaintext and
/// pieces) in flight: with two, the uploading daemon peaked above 96 MiB.
const SEAL_THREADS: usize = 1;

/// What the checks before an upload found: nothing is read or sent before they pass.
struct Preflight {
    now: u64,
    size: u64,
    name: String,
    dir: DirectoryClient,
    /// Directories that listed candidates, and how many nodes they listed.
    directories: usize,
    candidates: usize,
    block_total: u64,
}

/// One sealed block whose pieces are uploading: its ciphertext length, piece hashes, and
/// where its pieces are going.
type BlockRecord = (u32, Vec<PieceHash>, Arc<BlockState>);

/// Uploads the file at `req.path` (absolute) to open at `req.release` (Unix seconds), sealed
/// under `req.name` if given.
pub async fn put(node: Arc<Node>, req: PutRequest, sink: EventSink) -> Result<PutResult, OpError> {
    let started = Instant::now();
    let PutRequest {
        path,
        release,
        name,
        lock,
    } = req;
    let (pre, placement, file) = preflight(&node, &path, name.as_deref(), release).await?;
    let keys = crate::file_keys::for_upload(&node, release, lock)?;
    let n = node.cfg.params.total_shards();
    sink.info(format!(
        "sealing {:?} ({} bytes) into {} blocks of {n} pieces over {} nodes listed by {} directories",
        pre.name,
        pre.size,
        pre.block_total,
        pre.candidates,
        pre.directories,
    ));
    let ctx = Arc::new(Ctx {
        sink: sink.clone(),
        placement: Mutex::new(placement),
        n,
        total: kairos_seal::framed_len(pre.name.len(), pre.size),
        done: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        release,
        node: node.clone(),
        keys,
        stored: Mutex::new(Vec::new()),
    });
    let mut orphans = Orphans {
        ctx: ctx.clone(),
        armed: true,
    };
    let prepared = started.elapsed();
    let blocks = seal_and_upload(&ctx, file, &pre.name, &path).await?;
    let uploaded = started.elapsed();
    if blocks.len() as u64 != pre.block_total {
        return Err(OpError::Internal(format!(
            "sealed {} blocks, expected {}",
            blocks.len(),
            pre.block_total
        )));
    }
    let (id, nodes) = publish(&ctx, &pre, &blocks).await?;
    orphans.armed = false;
    let published = started.elapsed();
    let holders = holders_of(&ctx);
    let asked = holders.len();
    let confirmed = crate::commits::commit_all(&node, &ctx.keys.uploader, id, holders).await;
    remember(&ctx, &pre, id, nodes).await;
    let [prepared, uploaded, published, done] =
        [prepared, uploaded, published, started.elapsed()].map(|d| d.as_secs_f64());
    tracing::info!(
        "put {id}: preflight {prepared:.2} s, seal and upload {:.2} s, publish {:.2} s, commit {:.2} s ({confirmed} of {asked} holders confirmed)",
        uploaded - prepared,
        published - uploaded,
        done - published,
    );
    sink.progress(ctx.total, ctx.total);
    Ok(PutResult {
        id,
        release,
        release_rfc3339: kairos_proto::time::rfc3339(release),
        name: pre.name,
        size: pre.size,
        blocks: pre.block_total as u32,
        pieces: pre.block_total * n as u64,
        nodes,
        retries: ctx.retries.load(Ordering::SeqCst),
        elapsed_ms: started.elapsed().as_millis() as u64,
        lock: ctx.keys.report.clone(),
    })
}

/// Checks the release time, the input file and the candidate holders; returns what they
/// found, the placement over the candidates and the opened input.
async fn preflight(
    node: &Node,
    path: &Path,
    given_name: Option<&str>,
    release: u64,
) -> Result<(Preflight, Placement, File), OpError> {
    let params = node.cfg.params;
    let n = params.total_shards();
    let now = node.now();
    if release <= now {
        return Err(OpError::ReleaseInPast { release, now });
    }
    // Never past the year 9999 either, whatever max_release says: times are shown as RFC 3339.
    let max =
        (now.saturating_add(node.cfg.max_release.as_secs())).min(kairos_proto::time::MAX_RFC3339);
    if release > max {
        return Err(OpError::ReleaseTooFar { release, max });
    }
    if !path.is_absolute() {
        return Err(OpError::BadInput(format!(
            "{} is not an absolute path",
            path.display()
        )));
    }
    let input = path.to_path_buf();
    let (file, size) = tokio::task::spawn_blocking(move || open_input(&input))
        .await
        .map_err(|e| OpError::Internal(e.to_string()))??;
    let name = sealed_name(path, given_name);
    let dir = node.directories()?;
    let (candidates, directories) = candidates(node).await?;
    if candidates.len() < n {
        return Err(OpError::NotEnoughNodes {
            needed: n,
            known: candidates.len(),
        });
    }
    let candidate_count = candidates.len();
    let placement = Placement::new(candidates, n, params.k(), directories);
    if placement.capacity() < n {
        return Err(OpError::NotEnoughIndependentNodes {
            needed: n,
            placeable: placement.capacity(),
        });
    }
    let block_total = kairos_seal::block_count(&params, name.len(), size);
    if block_total > u64::from(u32::MAX) {
        return Err(OpError::BadInput(format!(
            "{} is too large for these coding parameters",
            path.display()
        )));
    }
    let pre = Preflight {
        now,
        size,
        name,
        dir,
        directories,
        candidates: candidate_count,
        block_total,
    };
    Ok((pre, placement, file))
}

/// The live nodes every directory lists that this node may upload to, and how many
/// directories answered.
async fn candidates(node: &Node) -> Result<(Vec<Candidate>, usize), OpError> {
    let survey = crate::survey::survey(node).await;
    if survey.answered() == 0 {
        let errors: Vec<String> = survey
            .failed
            .iter()
            .map(|(addr, e)| format!("{addr}: {e}"))
            .collect();
        return Err(OpError::DirectoryUnreachable(errors.join("; ")));
    }
    node.membership.set_peers_known(survey.candidates.len());
    let answered = survey.answered();
    Ok((survey.candidates, answered))
}

/// The sealer's output channel and its thread.
type SealerThread = (
    mpsc::Receiver<Result<SealedBlock, SealError>>,
    tokio::task::JoinHandle<Result<(), SealError>>,
);

/// Starts the sealer on a blocking thread. It takes the next sealed block only once the
/// channel has room for it, so at most one finished block waits outside the sealer.
fn spawn_sealer(
    file: File,
    params: kairos_seal::Params,
    name: &str,
    keys: &FileKeys,
) -> SealerThread {
    let (block_tx, block_rx) = mpsc::channel::<Result<SealedBlock, SealError>>(1);
    let name = name.to_owned();
    let (salt, schedule): (_, KeySchedule) = (keys.salt, keys.schedule.clone());
    let runtime = tokio::runtime::Handle::current();
    let sealer = tokio::task::spawn_blocking(move || -> Result<(), SealError> {
        let mut sealer = Sealer::with_schedule(file, params, &name, SEAL_THREADS, salt, schedule)?;
        while let Ok(room) = runtime.block_on(block_tx.reserve()) {
            let Some(item) = sealer.next() else { break };
            room.send(item);
        }
        Ok(())
    });
    (block_rx, sealer)
}

/// Seals the file and uploads every piece, at most `upload_concurrency` at once. Returns, per
/// block, where its pieces landed.
async fn seal_and_upload(
    ctx: &Arc<Ctx>,
    file: File,
    name: &str,
    path: &Path,
) -> Result<Vec<BlockRecord>, OpError> {
    let (mut block_rx, sealer) = spawn_sealer(file, ctx.node.cfg.params, name, &ctx.keys);
    let slots = Arc::new(Semaphore::new(ctx.node.cfg.upload_concurrency));
    let mut uploads: JoinSet<Result<(), OpError>> = JoinSet::new();
    let mut blocks: Vec<BlockRecord> = Vec::new();
    while let Some(item) = block_rx.recv().await {
        let block = item.map_err(|e| seal_error(path, e))?;
        let state = place_block(ctx, &block)?;
        blocks.push((block.cipher_len, block.hashes(), state.clone()));
        // The shards move into their uploads (no copy); the block is gone once they are sent.
        for (i, piece) in block.pieces.into_iter().enumerate() {
            let job = PieceJob {
                block: block.index,
                shard: i,
                hash: piece.hash,
                body: OutgoingPiece::new(
                    ctx.release,
                    block.index,
                    i as u8,
                    &piece.share,
                    Bytes::from(piece.shard),
                ),
            };
            while let Some(done) = uploads.try_join_next() {
                joined(done)?;
            }
            let permit = (slots.clone().acquire_owned().await)
                .map_err(|e| OpError::Internal(e.to_string()))?;
            uploads.spawn(upload_piece(ctx.clone(), state.clone(), job, permit));
        }
    }
    while let Some(done) = uploads.join_next().await {
        joined(done)?;
    }
    sealer
        .await
        .map_err(|e| OpError::Internal(format!("sealer thread: {e}")))?
        .map_err(|e| seal_error(path, e))?;
    Ok(blocks)
}

/// Chooses the `n` distinct nodes of a block's pieces.
fn place_block(ctx: &Ctx, block: &SealedBlock) -> Result<Arc<BlockState>, OpError> {
    let targets = lock(&ctx.placement)
        .for_block()
        .ok_or_else(|| OpError::NotEnoughNodes {
            needed: ctx.n,
            known: lock(&ctx.placement).healthy(),
        })?;
    Ok(Arc::new(BlockState {
        assigned: Mutex::new(targets),
        remaining: AtomicUsize::new(ctx.n),
        plain_len: u64::from(block.cipher_len) - TAG_LEN as u64,
    }))
}

/// Signs the content manifest and the placement record of where every piece landed with the
/// file's per-file key and publishes both. Returns the file id and how many distinct nodes
/// hold pieces.
async fn publish(
    ctx: &Ctx,
    pre: &Preflight,
    blocks: &[BlockRecord],
) -> Result<(kairos_proto::FileId, usize), OpError> {
    let keys = &ctx.keys;
    let manifest = ContentManifest {
        uploader: keys.uploader.public(),
        created: pre.now,
        release: ctx.release,
        salt: keys.salt,
        params: ctx.node.cfg.params,
        lock: keys.lock.clone(),
        blocks: (blocks.iter())
            .map(|(cipher_len, hashes, _)| ContentBlock {
                cipher_len: *cipher_len,
                hashes: hashes.clone(),
            })
            .collect(),
    };
    let signed = manifest
        .sign(&keys.uploader)
        .map_err(|e| OpError::Internal(format!("signing the manifest: {e}")))?;
    let (holders, indices) = landed(ctx, blocks);
    let nodes_used = holders.len();
    let placement = PlacementRecord {
        file_id: signed.id(),
        seq: 1,
        created: pre.now,
        holders,
        blocks: indices,
    }
    .sign(&keys.uploader)
    .map_err(|e| OpError::Internal(format!("signing the placement record: {e}")))?;
    let unpublished = |e| {
        OpError::DirectoryUnreachable(format!(
            "every piece is stored but the manifest could not be published, so the file has no id yet: {e}"
        ))
    };
    pre.dir
        .publish_v2(&signed, &placement)
        .await
        .map_err(unpublished)?;
    Ok((signed.id(), nodes_used))
}

/// Notes the published upload in the node's local history (`kairos ls`, `kairos info`). The
/// file exists whatever happens here, so a failure is only a warning.
async fn remember(ctx: &Ctx, pre: &Preflight, id: kairos_proto::FileId, nodes: usize) {
    let upload = Upload {
        id,
        name: pre.name.clone(),
        size: pre.size,
        created: pre.now,
        release: ctx.release,
        salt: data_encoding::HEXLOWER.encode(&ctx.keys.salt),
        blocks: pre.block_total as u32,
        nodes,
        lock: ctx.keys.report.clone(),
        last_audit: None,
        weakest: None,
        revoked: None,
    };
    let op = crate::writer::Op::RecordUpload(Box::new(upload));
    if let Err(e) = ctx.node.writer.submit(op).await {
        ctx.sink.warning(format!(
            "the file is stored and published, but this node could not note it in its upload history (kairos ls): {e}"
        ));
    }
}

/// The distinct holders (key, address) pieces were stored on.
fn holders_of(ctx: &Ctx) -> Vec<(PublicKey, String)> {
    let mut holders: Vec<(PublicKey, String)> = (lock(&ctx.stored).iter())
        .map(|(k, a, _)| (*k, a.clone()))
        .collect();
    holders.sort_by_key(|h| h.0);
    holders.dedup_by_key(|h| h.0);
    holders
}

/// Where every piece landed: the distinct holders, and per block the index of each piece's
/// holder in shard order.
fn landed(ctx: &Ctx, blocks: &[BlockRecord]) -> (Vec<PublicKey>, Vec<Vec<u16>>) {
    let placement = lock(&ctx.placement);
    let mut holder_index: HashMap<usize, u16> = HashMap::new();
    let mut holders = Vec::new();
    let indices = (blocks.iter())
        .map(|(_, _, state)| {
            (lock(&state.assigned).iter())
                .map(|&node_i| {
                    *holder_index.entry(node_i).or_insert_with(|| {
                        holders.push(placement.node(node_i).key);
                        (holders.len() - 1) as u16
                    })
                })
                .collect()
        })
        .collect();
    (holders, indices)
}

fn seal_error(path: &Path, e: SealError) -> OpError {
    match e {
        SealError::Io(e) => OpError::BadInput(format!("reading {} failed: {e}", path.display())),
        other => OpError::Internal(format!("sealing failed: {other}")),
    }
}

fn joined(r: Result<Result<(), OpError>, tokio::task::JoinError>) -> Result<(), OpError> {
    r.map_err(|e| OpError::Internal(format!("upload task: {e}")))?
}

/// One piece to upload: which block and shard it is, its hash and its peer-API body.
struct PieceJob {
    block: u32,
    shard: usize,
    hash: PieceHash,
    body: OutgoingPiece,
}

/// Moves piece `shard` off `node`, which failed it, to another node the placement rules allow;
/// returns the new node's address, or the number of healthy nodes left when none can take it.
///
/// No attempt limit: every failed node is out of this upload, so the attempts are bounded by
/// the candidates, and dead or fake candidates (listed by a directory that does not reach its
/// nodes) only cost the time it takes them to fail.
fn move_piece(ctx: &Ctx, state: &BlockState, shard: usize, node: usize) -> Result<String, usize> {
    // Lock order: block, then placement (every replacement in a block is serialised, so two
    // failing pieces of one block cannot pick the same new node).
    let mut assigned = lock(&state.assigned);
    let mut placement = lock(&ctx.placement);
    let (next, discredited) = placement.replace(node, &assigned);
    if let Some(d) = discredited {
        ctx.sink.warning(format!(
            "directory {} listed mostly dead nodes: they are dropped from this upload, and placement no longer counts that directory",
            ctx.node.membership.status_addr(d)
        ));
    }
    let next = next.ok_or_else(|| placement.healthy())?;
    assigned[shard] = next;
    Ok(placement.node(next).addr.clone())
}

/// Stores one piece, moving it to another node when its node fails.
async fn upload_piece(
    ctx: Arc<Ctx>,
    state: Arc<BlockState>,
    job: PieceJob,
    _permit: OwnedSemaphorePermit,
) -> Result<(), OpError> {
    let PieceJob {
        block,
        shard,
        hash,
        body,
    } = job;
    let mut attempts = 0;
    loop {
        let node_i = lock(&state.assigned)[shard];
        let (holder, addr) = {
            let placement = lock(&ctx.placement);
            let c = placement.node(node_i);
            (c.key, c.addr.clone())
        };
        let node = &ctx.node;
        let result = node
            .peers
            .store(
                &ctx.keys.uploader,
                &holder,
                &addr,
                &hash,
                body.clone(),
                node.now(),
            )
            .await;
        let err = match result {
            Ok(_) => {
                lock(&ctx.stored).push((holder, addr, hash));
                lock(&ctx.placement).stored(node_i);
                break;
            }
            Err(e) => e,
        };
        attempts += 1;
        let next_addr = move_piece(&ctx, &state, shard, node_i)
            .map_err(|healthy| {
                ctx.sink.warning(format!(
                    "block {block} piece {shard}: {addr} failed ({err}); no other node can take it"
                ));
                OpError::UploadFailed(format!(
                    "block {block} piece {shard} could not be stored: {attempts} nodes failed and the {healthy} left cannot take it without breaking the placement rules (n distinct nodes per block, at most k − 1 vouched for by one directory alone); last error from {addr}: {err}"
                ))
            })?;
        ctx.retries.fetch_add(1, Ordering::SeqCst);
        ctx.sink.warning(format!(
            "block {block} piece {shard}: {addr} failed ({err}); retrying on {next_addr}"
        ));
    }
    if state.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
        let done = ctx.done.fetch_add(state.plain_len, Ordering::SeqCst) + state.plain_len;
        ctx.sink.progress(done.min(ctx.total), ctx.total);
    }
    Ok(())
}
