//! Streaming wrappers: [`Sealer`] turns a reader into sealed blocks, [`Opener`] turns blocks
//! back into the file, both with a bounded number of blocks in flight.
//!
//! Threading: with `threads <= 1` everything runs in the caller's thread (one core). With
//! `threads = T >= 2`, T worker threads seal/open blocks while the caller's thread reads (or
//! deframes and writes). Block `i` goes to worker `i % T` and results are taken from the same
//! worker in turn, so they come back in index order without a reordering buffer.
//!
//! With workers, the reader thread only reads: each worker also hashes the whole chunks of its
//! block's plaintext for the file hash in the trailer (see `frame::tree`), so the trailer waits
//! for the CVs of every earlier block; results taken early for that are yielded later, in order.
//!
//! Memory invariant: at most `T + 1` blocks are in flight (read but not yet yielded), so memory
//! is O(block size × T), never O(file size). (Letting the reader run `2T` ahead used 1.7
//! instead of 1.6 cores in the two-thread bench, for one more block per thread of memory in
//! every uploading daemon: not taken.)

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::block::open::open_block_into_with;
use crate::block::seal::{seal_scheduled, ShardPool};
use crate::block::SealedBlock;
use crate::error::{OpenError, SealError};
use crate::frame::{hash_subtrees, Deframer, FileInfo, Framer, PlainBlock, SubtreeCv, TreeHasher};
use crate::keys::{new_salt, BlockPos, FileSalt, PieceHash};
use crate::params::Params;
use crate::schedule::{KeySchedule, OpenSchedule};

/// Seals the plaintext of one framed block under `schedule`; `block.buf` is left holding the
/// padded ciphertext, ready for reuse.
fn seal_plain(
    params: &Params,
    schedule: &KeySchedule,
    salt: &FileSalt,
    block: &mut PlainBlock,
    pool: &ShardPool,
) -> Result<SealedBlock, SealError> {
    let pos = BlockPos::new(*salt, block.index, block.is_last);
    seal_scheduled(params, schedule, pos, &mut block.buf, Some(pool))
}

/// A worker's answer: the sealed block (or why not), the buffer, the CVs of its hash job.
type SealDone = (Result<SealedBlock, SealError>, Vec<u8>, Vec<SubtreeCv>);

/// A worker's turn: hash the block's file bytes (before encryption overwrites them), seal it.
fn seal_job(
    params: &Params,
    schedule: &KeySchedule,
    salt: &FileSalt,
    mut block: PlainBlock,
    pool: &ShardPool,
) -> SealDone {
    let cvs = match block.hash_job.take() {
        Some(job) => hash_subtrees(job.first_chunk, &block.buf[job.range]),
        None => Vec::new(),
    };
    let result = seal_plain(params, schedule, salt, &mut block, pool);
    (result, block.buf, cvs)
}

struct SealWorker {
    jobs: Option<SyncSender<PlainBlock>>,
    results: Receiver<SealDone>,
    handle: Option<JoinHandle<()>>,
}

/// The worker threads of a [`Sealer`]: block `i` goes to worker `i % T`, results are taken in
/// the same order.
struct SealWorkers {
    list: Vec<SealWorker>,
    /// Blocks handed to workers and not yet received back.
    in_flight: usize,
    /// Index of the next block to receive (also picks the worker to take it from).
    next_out: usize,
}

impl SealWorkers {
    fn send(&mut self, block: PlainBlock) -> Result<(), SealError> {
        let w = block.index as usize % self.list.len();
        let sent = self.list[w].jobs.as_ref().map(|tx| tx.send(block));
        if !matches!(sent, Some(Ok(()))) {
            return Err(SealError::WorkerGone);
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The next block's result, in index order.
    fn receive(&mut self) -> Result<SealDone, SealError> {
        let w = self.next_out % self.list.len();
        let done = self.list[w]
            .results
            .recv()
            .map_err(|_| SealError::WorkerGone)?;
        self.in_flight -= 1;
        self.next_out += 1;
        Ok(done)
    }
}

/// Reads a file and yields its sealed blocks in index order.
///
/// ```
/// use kairos_seal::{Params, Sealer};
/// let params = Params { data_shards: 2, parity_shards: 1, shard_size: 4096 };
/// let sealer = Sealer::new(&b"hello"[..], params, "hello.txt", 1).unwrap();
/// let blocks: Vec<_> = sealer.collect::<Result<_, _>>().unwrap();
/// assert_eq!(blocks.len(), 1);
/// ```
///
/// Handing finished blocks back with [`Sealer::recycle`] lets later blocks reuse their shard
/// buffers, which saves the allocator's page faults (a large share of the sealing time).
pub struct Sealer<R: Read> {
    framer: Framer<R>,
    params: Params,
    schedule: Arc<KeySchedule>,
    salt: FileSalt,
    pool: Arc<ShardPool>,
    workers: SealWorkers,
    /// Results received from the workers ahead of time (for the file hash), not yet yielded.
    ready: VecDeque<Result<SealedBlock, SealError>>,
    /// Plaintext buffers not in use (they circulate between the reader and the workers).
    spare: Vec<Vec<u8>>,
    framer_done: bool,
    failed: bool,
}

impl<R: Read> Sealer<R> {
    /// A format 1 sealer ([`KeySchedule::V1`]) for `reader` (the file's bytes) with a fresh
    /// random salt. `threads <= 1` seals in the caller's thread; more start that many worker
    /// threads.
    pub fn new(
        reader: R,
        params: Params,
        file_name: &str,
        threads: usize,
    ) -> Result<Self, SealError> {
        Self::with_schedule(
            reader,
            params,
            file_name,
            threads,
            new_salt(),
            KeySchedule::V1,
        )
    }

    /// A sealer under `schedule` with the given `salt`.
    ///
    /// The salt must be fresh for every file ([`crate::new_salt`]): under
    /// [`KeySchedule::V2`] sealing is deterministic, so two plaintexts sealed with the same
    /// salt and repair seed would reuse block keys (see [`crate::schedule`]).
    pub fn with_schedule(
        reader: R,
        params: Params,
        file_name: &str,
        threads: usize,
        salt: FileSalt,
        schedule: KeySchedule,
    ) -> Result<Self, SealError> {
        let threads = if threads >= 2 { threads } else { 0 };
        let mut framer = Framer::new(reader, &params, file_name)?;
        if threads > 0 {
            framer = framer.with_tree_hash();
        }
        let schedule = Arc::new(schedule);
        // Enough shard buffers for every block that can be in flight, plus one being consumed.
        let pool = Arc::new(ShardPool::new(params.total_shards() * (threads + 2)));
        let mut workers = Vec::new();
        for w in 0..threads {
            // Capacity 1: one block waiting per worker besides the one being sealed.
            let (job_tx, job_rx) = mpsc::sync_channel::<PlainBlock>(1);
            let (res_tx, res_rx) = mpsc::sync_channel::<SealDone>(1);
            let pool = Arc::clone(&pool);
            let schedule = Arc::clone(&schedule);
            let handle = thread::Builder::new()
                .name(format!("kairos-seal-{w}"))
                .spawn(move || {
                    for block in job_rx {
                        let done = seal_job(&params, &schedule, &salt, block, &pool);
                        if res_tx.send(done).is_err() {
                            break;
                        }
                    }
                })?;
            workers.push(SealWorker {
                jobs: Some(job_tx),
                results: res_rx,
                handle: Some(handle),
            });
        }
        Ok(Sealer {
            framer,
            params,
            schedule,
            salt,
            pool,
            workers: SealWorkers {
                list: workers,
                in_flight: 0,
                next_out: 0,
            },
            ready: VecDeque::new(),
            spare: Vec::new(),
            framer_done: false,
            failed: false,
        })
    }

    /// The file's salt (goes into the manifest).
    pub fn salt(&self) -> FileSalt {
        self.salt
    }

    /// The coding parameters.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Hands a block's shard buffers back for reuse by later blocks (optional; call it once the
    /// pieces have been stored or sent).
    pub fn recycle(&self, block: SealedBlock) {
        for piece in block.pieces {
            self.pool.give(piece.shard);
        }
    }

    fn next_inline(&mut self) -> Option<Result<SealedBlock, SealError>> {
        let buf = self.spare.pop().unwrap_or_default();
        match self.framer.next_block(buf) {
            Ok(Some(mut block)) => {
                let result = seal_plain(
                    &self.params,
                    &self.schedule,
                    &self.salt,
                    &mut block,
                    &self.pool,
                );
                self.spare.push(block.buf);
                Some(result)
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn next_parallel(&mut self) -> Option<Result<SealedBlock, SealError>> {
        let t = self.workers.list.len();
        while !self.framer_done && self.workers.in_flight + self.ready.len() < t + 1 {
            let buf = self.spare.pop().unwrap_or_default();
            let (workers, ready, spare) = (&mut self.workers, &mut self.ready, &mut self.spare);
            // The trailer needs every earlier block's CVs: take all results now, yield later.
            let drain = |tree: &mut TreeHasher| {
                while workers.in_flight > 0 {
                    let (result, buf, cvs) = workers.receive()?;
                    spare.push(buf);
                    tree.add(cvs);
                    ready.push_back(result);
                }
                Ok(())
            };
            let sent = match self.framer.next_block_with(buf, drain) {
                Ok(Some(block)) => self.workers.send(block),
                Ok(None) => {
                    self.framer_done = true;
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                return Some(Err(e));
            }
        }
        if let Some(result) = self.ready.pop_front() {
            return Some(result);
        }
        if self.workers.in_flight == 0 {
            return None;
        }
        Some(self.workers.receive().and_then(|(result, buf, cvs)| {
            self.spare.push(buf);
            self.framer.add_cvs(cvs);
            result
        }))
    }
}

impl<R: Read> Iterator for Sealer<R> {
    type Item = Result<SealedBlock, SealError>;

    /// The next sealed block. After an error the iterator ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = if self.workers.list.is_empty() {
            self.next_inline()
        } else {
            self.next_parallel()
        };
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

impl<R: Read> Drop for Sealer<R> {
    fn drop(&mut self) {
        // Closing the job channels ends the workers; drain results so none blocks on send.
        for w in &mut self.workers.list {
            w.jobs = None;
        }
        for w in &mut self.workers.list {
            while w.results.recv().is_ok() {}
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

/// One block's inputs for [`Opener::push_blocks`].
#[derive(Clone, Debug)]
pub struct BlockPieces<'a> {
    /// Block index (must come in order).
    pub index: u32,
    /// Ciphertext length from the manifest.
    pub cipher_len: u32,
    /// The `n` piece hashes from the manifest.
    pub expected: &'a [PieceHash],
    /// The `n` piece slots `(share, shard)`, `None` where missing.
    pub pieces: Vec<Option<(&'a [u8], &'a [u8])>>,
}

impl<'a> BlockPieces<'a> {
    /// All pieces of a sealed block, with their hashes (`hashes` = `block.hashes()`).
    pub fn from_sealed(block: &'a SealedBlock, hashes: &'a [PieceHash]) -> Self {
        BlockPieces {
            index: block.index,
            cipher_len: block.cipher_len,
            expected: hashes,
            pieces: block.piece_refs(),
        }
    }
}

/// Opens blocks pushed in index order and writes the file to `writer`.
///
/// A block that fails to open for lack of good pieces leaves the opener unchanged (see
/// [`OpenError::is_retryable`]), so the caller can fetch more pieces and push it again. Bytes
/// are written as blocks arrive; the whole-file size and hash are checked by
/// [`Opener::finish`], so write to a temporary file and keep it only if `finish` succeeds.
pub struct Opener<W: Write> {
    params: Params,
    schedule: OpenSchedule,
    salt: FileSalt,
    block_count: u32,
    next: u32,
    deframer: Deframer<W>,
    buf: Vec<u8>,
    poisoned: bool,
}

impl<W: Write> Opener<W> {
    /// An opener for a format 1 file of `block_count` blocks sealed with `params` and `salt`.
    pub fn new(writer: W, params: Params, salt: FileSalt, block_count: u32) -> Self {
        Self::with_schedule(writer, params, salt, block_count, OpenSchedule::V1)
    }

    /// An opener for a file sealed under any key schedule (format 2: [`OpenSchedule::V2`] with
    /// the file's lock secret).
    pub fn with_schedule(
        writer: W,
        params: Params,
        salt: FileSalt,
        block_count: u32,
        schedule: OpenSchedule,
    ) -> Self {
        Opener {
            params,
            schedule,
            salt,
            block_count,
            next: 0,
            deframer: Deframer::new(writer),
            buf: Vec::new(),
            poisoned: false,
        }
    }

    fn check_next(&self, index: u32) -> Result<bool, OpenError> {
        if self.poisoned {
            return Err(OpenError::Poisoned);
        }
        if index != self.next || index >= self.block_count {
            return Err(OpenError::UnexpectedBlock {
                expected: self.next,
                got: index,
            });
        }
        Ok(index + 1 == self.block_count)
    }

    /// Feeds an opened block's plaintext to the deframer; a failure here is final.
    fn accept(&mut self, plaintext: &[u8]) -> Result<(), OpenError> {
        if let Err(e) = self.deframer.push(plaintext) {
            self.poisoned = true;
            return Err(e);
        }
        self.next += 1;
        Ok(())
    }

    /// The sealed file name once the blocks pushed so far hold the whole header (normally after
    /// the first block), so a caller can check where the file will go before writing it. Not
    /// sanitised: never use it as a path without stripping separators and the like.
    pub fn name(&self) -> Option<&str> {
        self.deframer.name()
    }

    /// Opens block `index` (the next one) from its pieces and writes its file bytes.
    pub fn push_block(
        &mut self,
        index: u32,
        cipher_len: u32,
        expected: &[PieceHash],
        pieces: &[Option<(&[u8], &[u8])>],
    ) -> Result<(), OpenError> {
        let is_last = self.check_next(index)?;
        let mut buf = std::mem::take(&mut self.buf);
        let opened = open_block_into_with(
            &self.params,
            &self.schedule,
            BlockPos::new(self.salt, index, is_last),
            cipher_len,
            expected,
            pieces,
            &mut buf,
        );
        let result = opened.and_then(|()| self.accept(&buf));
        self.buf = buf;
        result
    }

    /// Opens a sequence of blocks (in index order) on `threads` worker threads while this
    /// thread writes. `threads <= 1` is the same as calling [`Opener::push_block`] in a loop.
    /// Stops at the first error; blocks before it have been written.
    pub fn push_blocks<'a, I>(&mut self, blocks: I, threads: usize) -> Result<(), OpenError>
    where
        I: IntoIterator<Item = BlockPieces<'a>>,
    {
        if self.poisoned {
            return Err(OpenError::Poisoned);
        }
        if threads <= 1 {
            for b in blocks {
                self.push_block(b.index, b.cipher_len, b.expected, &b.pieces)?;
            }
            return Ok(());
        }
        let (params, salt) = (self.params, self.salt);
        // The workers borrow their own copy: `self` is borrowed mutably by the pipeline.
        let schedule = self.schedule.clone();
        thread::scope(|scope| {
            let workers = OpenWorkers::spawn(scope, threads, params, &schedule, salt)?;
            // Output buffers circulate between this thread and the workers.
            let mut spare: Vec<Vec<u8>> = vec![std::mem::take(&mut self.buf)];
            let outcome = self.pipeline(&workers, blocks.into_iter(), &mut spare);
            workers.finish();
            self.buf = spare.pop().unwrap_or_default();
            outcome
        })
    }

    /// Keeps up to `T + 1` blocks in flight on the workers and writes their plaintexts in
    /// order as they come back, until the input ends or a block fails.
    fn pipeline<'a>(
        &mut self,
        workers: &OpenWorkers<'a>,
        mut blocks: impl Iterator<Item = BlockPieces<'a>>,
        spare: &mut Vec<Vec<u8>>,
    ) -> Result<(), OpenError> {
        let threads = workers.jobs.len();
        let (mut sent, mut done) = (0usize, 0usize);
        let mut next_index = self.next;
        let mut input_done = false;
        // An out-of-order block is reported after the blocks before it are written.
        let mut pending_err = None;
        loop {
            while !input_done && sent - done < threads + 1 {
                let Some(b) = blocks.next() else {
                    input_done = true;
                    break;
                };
                if b.index != next_index || b.index >= self.block_count {
                    pending_err = Some(OpenError::UnexpectedBlock {
                        expected: next_index,
                        got: b.index,
                    });
                    input_done = true;
                    break;
                }
                let is_last = b.index + 1 == self.block_count;
                let buf = spare.pop().unwrap_or_default();
                if workers.jobs[sent % threads]
                    .send((b, is_last, buf))
                    .is_err()
                {
                    return Err(OpenError::WorkerGone);
                }
                next_index += 1;
                sent += 1;
            }
            if sent == done {
                return pending_err.map_or(Ok(()), Err);
            }
            let Ok((r, buf)) = workers.results[done % threads].recv() else {
                return Err(OpenError::WorkerGone);
            };
            done += 1;
            let r = r.and_then(|()| self.accept(&buf));
            spare.push(buf);
            r?;
        }
    }

    /// Checks that every block was opened and that the trailer's size and hash match.
    pub fn finish(self) -> Result<FileInfo, OpenError> {
        self.finish_with_writer().map(|(info, _)| info)
    }

    /// [`Opener::finish`], also returning the (flushed) writer.
    pub fn finish_with_writer(self) -> Result<(FileInfo, W), OpenError> {
        if self.poisoned {
            return Err(OpenError::Poisoned);
        }
        if self.next != self.block_count || self.block_count == 0 {
            return Err(OpenError::MissingBlocks {
                expected: self.block_count,
                got: self.next,
            });
        }
        self.deframer.finish()
    }
}

/// A block to open, whether it is the last, and the buffer to open it into.
type OpenJob<'a> = (BlockPieces<'a>, bool, Vec<u8>);
/// An opened block (or why not) and its buffer.
type OpenDone = (Result<(), OpenError>, Vec<u8>);

/// The scoped worker threads of one [`Opener::push_blocks`] call. Job `j` goes to worker
/// `j % T` and its result is taken from the same worker, so results come back in order.
struct OpenWorkers<'a> {
    jobs: Vec<SyncSender<OpenJob<'a>>>,
    results: Vec<Receiver<OpenDone>>,
}

impl<'a> OpenWorkers<'a> {
    /// Starts `threads` workers in `scope`.
    fn spawn<'scope>(
        scope: &'scope thread::Scope<'scope, '_>,
        threads: usize,
        params: Params,
        schedule: &'scope OpenSchedule,
        salt: FileSalt,
    ) -> Result<Self, OpenError>
    where
        'a: 'scope,
    {
        let mut jobs = Vec::with_capacity(threads);
        let mut results = Vec::with_capacity(threads);
        for w in 0..threads {
            // Capacity 1: one block waiting per worker besides the one being opened.
            let (job_tx, job_rx) = mpsc::sync_channel::<OpenJob<'a>>(1);
            let (res_tx, res_rx) = mpsc::sync_channel::<OpenDone>(1);
            thread::Builder::new()
                .name(format!("kairos-open-{w}"))
                .spawn_scoped(scope, move || {
                    for (b, is_last, mut buf) in job_rx {
                        let pos = BlockPos::new(salt, b.index, is_last);
                        let r = open_block_into_with(
                            &params,
                            schedule,
                            pos,
                            b.cipher_len,
                            b.expected,
                            &b.pieces,
                            &mut buf,
                        );
                        if res_tx.send((r, buf)).is_err() {
                            break;
                        }
                    }
                })
                // Workers already started end when `jobs` is dropped.
                .map_err(OpenError::Io)?;
            jobs.push(job_tx);
            results.push(res_rx);
        }
        Ok(OpenWorkers { jobs, results })
    }

    /// Closes the job channels and lets the workers finish what they hold (results are
    /// discarded), so that the scope can join them.
    fn finish(self) {
        drop(self.jobs);
        for r in &self.results {
            while r.recv().is_ok() {}
        }
    }
}
