//! The plaintext framing of a sealed file: what goes *inside* the encryption.
//!
//! The file name and size must not appear in the clear manifest, so they travel inside the
//! encrypted stream. The framed stream is:
//!
//! ```text
//! offset        bytes  field
//! 0             4      magic "KRSF"
//! 4             1      format version = 1
//! 5             1      name length N (0..=255)
//! 6             N      file name, UTF-8
//! 6+N           S      the file's bytes
//! 6+N+S         8      S, the file size, u64 little-endian
//! 14+N+S        32     BLAKE3 (plain hash mode) of the file's bytes
//! ```
//!
//! This stream is cut into blocks of `params.block_plaintext_size()` bytes; the last block holds
//! the rest (1 ..= block size bytes). Since the 40-byte trailer always follows the file bytes,
//! a block filled with header and file bytes is never the last one, and even an empty file makes
//! one block. The header is at most 261 bytes and every valid block holds at least 8176 bytes, so
//! the header always lies in block 0; the trailer may straddle the last two blocks.
//!
//! Invariants: `Framer` reads the input once, in chunks; its memory is one block. It hashes
//! the file either itself, each chunk while it is in cache (one thread), or, with
//! [`Framer::with_tree_hash`], mostly on the sealing workers as BLAKE3 subtrees (see [`tree`]):
//! a block then carries a [`HashJob`] that must be hashed before the block is encrypted, and
//! the trailer waits until every job's CVs are back. `Deframer` holds back the last 40 bytes it has seen (they
//! may be the trailer) and checks size and hash only at the end, so everything it writes before
//! `Deframer::finish` succeeds is authenticated per block (AES-GCM) but not yet checked as a
//! whole: callers write to a temporary file and rename it after `finish`.

mod tree;

use std::io::{Read, Write};

use crate::error::{OpenError, SealError};
use crate::format::{FORMAT_VERSION, MAX_NAME_LEN};
use crate::params::Params;

pub(crate) use tree::{hash_subtrees, HashJob, SubtreeCv, TreeHasher};

/// First bytes of every framed stream.
pub const MAGIC: [u8; 4] = *b"KRSF";
/// Bytes of the fixed part of the header (magic, version, name length).
pub const HEADER_FIXED_LEN: usize = 6;
/// Bytes of the trailer: size (8) + BLAKE3 (32).
pub const TRAILER_LEN: usize = 40;

/// Input is read and hashed in chunks of this size: the chunk is still in L2 when it is hashed.
const READ_CHUNK: usize = 256 * 1024;

/// Length of the framed stream of a file with a `name_len`-byte name and `size` bytes.
pub fn framed_len(name_len: usize, size: u64) -> u64 {
    (HEADER_FIXED_LEN + name_len + TRAILER_LEN) as u64 + size
}

/// Number of blocks a file of `size` bytes named with `name_len` bytes seals into.
pub fn block_count(params: &Params, name_len: usize, size: u64) -> u64 {
    framed_len(name_len, size).div_ceil(params.block_plaintext_size() as u64)
}

/// The header bytes for `name`.
pub(crate) fn encode_header(name: &str) -> Result<Vec<u8>, SealError> {
    if name.len() > MAX_NAME_LEN {
        return Err(SealError::NameTooLong(name.len()));
    }
    let mut header = Vec::with_capacity(HEADER_FIXED_LEN + name.len());
    header.extend_from_slice(&MAGIC);
    header.push(FORMAT_VERSION);
    header.push(name.len() as u8);
    header.extend_from_slice(name.as_bytes());
    Ok(header)
}

/// One block's plaintext, as cut from the framed stream.
pub(crate) struct PlainBlock {
    pub index: u32,
    pub is_last: bool,
    /// Plaintext bytes, with spare capacity for the tag and padding.
    pub buf: Vec<u8>,
    /// File bytes of `buf` to hash before sealing (tree hashing only).
    pub hash_job: Option<HashJob>,
}

/// Where the framer's whole-file hash is computed.
enum FileHash {
    /// Here, on the reading thread (boxed: a hasher is about 2 KB).
    Inline(Box<blake3::Hasher>),
    /// Mostly by whoever seals the blocks, from their [`HashJob`]s.
    Tree(TreeHasher),
}

/// Reads a file and cuts its framed stream into block plaintexts.
pub(crate) struct Framer<R> {
    reader: R,
    block_size: usize,
    capacity: usize,
    header: Option<Vec<u8>>,
    hash: FileHash,
    size: u64,
    eof: bool,
    trailer: Option<[u8; TRAILER_LEN]>,
    trailer_pos: usize,
    next_index: u32,
    done: bool,
}

impl<R: Read> Framer<R> {
    /// A framer for `reader`; `params` must be valid and `name` at most 255 bytes.
    pub fn new(reader: R, params: &Params, name: &str) -> Result<Self, SealError> {
        params.validate()?;
        Ok(Framer {
            reader,
            block_size: params.block_plaintext_size(),
            capacity: params.block_cipher_size(),
            header: Some(encode_header(name)?),
            hash: FileHash::Inline(Box::default()),
            size: 0,
            eof: false,
            trailer: None,
            trailer_pos: 0,
            next_index: 0,
            done: false,
        })
    }

    /// Leaves most of the file hashing to the caller: blocks carry [`HashJob`]s whose CVs
    /// ([`hash_subtrees`]) go back through [`Framer::add_cvs`] (in any order).
    pub fn with_tree_hash(mut self) -> Self {
        self.hash = FileHash::Tree(TreeHasher::default());
        self
    }

    /// Hands back the CVs of a block's [`HashJob`].
    pub fn add_cvs(&mut self, cvs: Vec<SubtreeCv>) {
        if let FileHash::Tree(tree) = &mut self.hash {
            tree.add(cvs);
        }
    }

    /// The next block, or `None` after the last one. Its plaintext goes into `buf` (cleared;
    /// pass the previous block's buffer back to avoid allocating). With tree hashing, every
    /// earlier block's CVs must have been added before the trailer is written.
    pub fn next_block(&mut self, buf: Vec<u8>) -> Result<Option<PlainBlock>, SealError> {
        self.next_block_with(buf, |_| Ok(()))
    }

    /// [`Framer::next_block`], calling `resolve` when the trailer needs the hash while some
    /// [`HashJob`]s' CVs are still out: it must add them all (with [`TreeHasher::add`]).
    pub fn next_block_with(
        &mut self,
        mut buf: Vec<u8>,
        resolve: impl FnOnce(&mut TreeHasher) -> Result<(), SealError>,
    ) -> Result<Option<PlainBlock>, SealError> {
        if self.done {
            return Ok(None);
        }
        buf.clear();
        buf.reserve(self.capacity);
        if let Some(header) = self.header.take() {
            buf.extend_from_slice(&header);
        }
        let body = buf.len();
        self.fill_from_reader(&mut buf)?;
        let hash_job = self.split_hash(&buf, body);
        let is_last = self.eof && self.append_trailer(&mut buf, resolve)?;
        let index = self.next_index;
        if !is_last {
            self.next_index = self
                .next_index
                .checked_add(1)
                .ok_or(SealError::TooManyBlocks)?;
        }
        Ok(Some(PlainBlock {
            index,
            is_last,
            buf,
            hash_job,
        }))
    }

    /// Tree hashing: hands the file bytes `buf[body..]` to the tree and returns the job for the
    /// worker, in `buf` positions. When the file ended in this block the trailer needs the hash
    /// before the block can be sealed, so the job is hashed here instead.
    fn split_hash(&mut self, buf: &[u8], body: usize) -> Option<HashJob> {
        let FileHash::Tree(tree) = &mut self.hash else {
            return None;
        };
        let file_bytes = &buf[body..];
        let job = tree.split(file_bytes)?;
        if self.eof {
            tree.add(hash_subtrees(job.first_chunk, &file_bytes[job.range]));
            return None;
        }
        Some(HashJob {
            first_chunk: job.first_chunk,
            range: job.range.start + body..job.range.end + body,
        })
    }

    /// Appends file bytes to `buf` until it holds a full block or the input ends, hashing them
    /// when hashing inline.
    fn fill_from_reader(&mut self, buf: &mut Vec<u8>) -> Result<(), SealError> {
        while !self.eof && buf.len() < self.block_size {
            // Reads end on READ_CHUNK boundaries of the file, so BLAKE3 updates start aligned
            // (it hashes fastest from a boundary of many chunks; see block::hash_boundary).
            let to_grid = READ_CHUNK - (self.size % READ_CHUNK as u64) as usize;
            let want = to_grid.min(self.block_size - buf.len());
            let before = buf.len();
            // `take` + `read_to_end` appends into spare capacity without zeroing it first
            // (for files and slices) and retries on `Interrupted`; short means end of input.
            let got = (&mut self.reader).take(want as u64).read_to_end(buf)?;
            if let FileHash::Inline(hasher) = &mut self.hash {
                hasher.update(&buf[before..]);
            }
            self.size += got as u64;
            if got < want {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// After the end of input: appends as much of the trailer as fits in `buf`; true once the
    /// whole trailer is out (this block is the last). `resolve` as in `next_block_with`.
    fn append_trailer(
        &mut self,
        buf: &mut Vec<u8>,
        resolve: impl FnOnce(&mut TreeHasher) -> Result<(), SealError>,
    ) -> Result<bool, SealError> {
        let trailer = match self.trailer {
            Some(t) => t,
            None => {
                let mut t = [0u8; TRAILER_LEN];
                t[..8].copy_from_slice(&self.size.to_le_bytes());
                t[8..].copy_from_slice(self.file_hash(resolve)?.as_bytes());
                *self.trailer.insert(t)
            }
        };
        let room = self.block_size - buf.len();
        let take = room.min(TRAILER_LEN - self.trailer_pos);
        buf.extend_from_slice(&trailer[self.trailer_pos..self.trailer_pos + take]);
        self.trailer_pos += take;
        if self.trailer_pos == TRAILER_LEN {
            self.done = true;
        }
        Ok(self.done)
    }

    /// The whole-file hash, once the input has ended.
    fn file_hash(
        &mut self,
        resolve: impl FnOnce(&mut TreeHasher) -> Result<(), SealError>,
    ) -> Result<blake3::Hash, SealError> {
        match &mut self.hash {
            FileHash::Inline(hasher) => Ok(hasher.finalize()),
            FileHash::Tree(tree) => {
                if !tree.is_complete() {
                    resolve(tree)?;
                }
                tree.finalize().ok_or_else(|| SealError::Internal {
                    stage: "file hash",
                    detail: "a block's hash was never handed back".into(),
                })
            }
        }
    }
}

/// What an opened file turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The file name sealed with it (UTF-8, at most 255 bytes). Not sanitised: callers must not
    /// use it as a path without stripping separators and the like.
    pub name: String,
    /// File size in bytes.
    pub size: u64,
    /// BLAKE3 hash of the file's bytes (checked against the sealed trailer).
    pub hash: [u8; 32],
}

/// Consumes block plaintexts in order, strips header and trailer, writes the file bytes.
pub(crate) struct Deframer<W> {
    writer: W,
    /// Header bytes gathered so far; `None` once the header is complete.
    header: Option<Vec<u8>>,
    name: String,
    /// The last up-to-40 bytes seen after the header: possibly the trailer.
    tail: Vec<u8>,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Deframer<W> {
    pub fn new(writer: W) -> Self {
        Deframer {
            writer,
            header: Some(Vec::with_capacity(HEADER_FIXED_LEN + MAX_NAME_LEN)),
            name: String::new(),
            tail: Vec::with_capacity(TRAILER_LEN),
            hasher: blake3::Hasher::new(),
            written: 0,
        }
    }

    /// The sealed file name, once the header has been read (it ends in the first block or
    /// two). Not sanitised, like [`FileInfo::name`].
    pub fn name(&self) -> Option<&str> {
        self.header.is_none().then_some(self.name.as_str())
    }

    /// Feeds the next block's plaintext.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), OpenError> {
        if let Some(header) = self.header.as_mut() {
            if header.len() < HEADER_FIXED_LEN {
                let take = (HEADER_FIXED_LEN - header.len()).min(data.len());
                header.extend_from_slice(&data[..take]);
                data = &data[take..];
                if header.len() < HEADER_FIXED_LEN {
                    return Ok(());
                }
                if header[..4] != MAGIC {
                    return Err(OpenError::BadHeader("wrong magic".into()));
                }
                if header[4] != FORMAT_VERSION {
                    return Err(OpenError::BadHeader(format!(
                        "unsupported format version {}",
                        header[4]
                    )));
                }
            }
            let need = HEADER_FIXED_LEN + usize::from(header[5]);
            let take = (need - header.len()).min(data.len());
            header.extend_from_slice(&data[..take]);
            data = &data[take..];
            if header.len() < need {
                return Ok(());
            }
            let name = std::str::from_utf8(&header[HEADER_FIXED_LEN..])
                .map_err(|_| OpenError::BadHeader("file name is not UTF-8".into()))?;
            self.name = name.to_owned();
            self.header = None;
        }
        self.push_body(data)
    }

    /// Writes all but the last 40 bytes seen so far.
    fn push_body(&mut self, data: &[u8]) -> Result<(), OpenError> {
        if data.len() >= TRAILER_LEN {
            let tail = std::mem::take(&mut self.tail);
            self.emit(&tail)?;
            self.tail = tail;
            self.tail.clear();
            let (body, rest) = data.split_at(data.len() - TRAILER_LEN);
            self.emit(body)?;
            self.tail.extend_from_slice(rest);
        } else {
            self.tail.extend_from_slice(data);
            if self.tail.len() > TRAILER_LEN {
                let excess = self.tail.len() - TRAILER_LEN;
                let tail = std::mem::take(&mut self.tail);
                self.emit(&tail[..excess])?;
                self.tail = tail;
                self.tail.drain(..excess);
            }
        }
        Ok(())
    }

    /// Hashes and writes file bytes, in cache-sized pieces that end on READ_CHUNK boundaries of
    /// the file (aligned BLAKE3 updates are fastest).
    fn emit(&mut self, mut bytes: &[u8]) -> Result<(), OpenError> {
        while !bytes.is_empty() {
            let to_grid = READ_CHUNK - (self.written % READ_CHUNK as u64) as usize;
            let (chunk, rest) = bytes.split_at(to_grid.min(bytes.len()));
            self.hasher.update(chunk);
            self.writer.write_all(chunk)?;
            self.written += chunk.len() as u64;
            bytes = rest;
        }
        Ok(())
    }

    /// Checks the trailer; flushes and returns the writer.
    pub fn finish(mut self) -> Result<(FileInfo, W), OpenError> {
        if self.header.is_some() || self.tail.len() != TRAILER_LEN {
            return Err(OpenError::Truncated);
        }
        let mut size = [0u8; 8];
        size.copy_from_slice(&self.tail[..8]);
        let declared = u64::from_le_bytes(size);
        if declared != self.written {
            return Err(OpenError::SizeMismatch {
                declared,
                actual: self.written,
            });
        }
        let hash = self.hasher.finalize();
        if hash != self.tail[8..] {
            return Err(OpenError::HashMismatch);
        }
        self.writer.flush()?;
        Ok((
            FileInfo {
                name: self.name,
                size: self.written,
                hash: *hash.as_bytes(),
            },
            self.writer,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            data_shards: 2,
            parity_shards: 1,
            shard_size: 4096,
        }
    }

    fn frame_all(file: &[u8], name: &str) -> Vec<PlainBlock> {
        let mut f = Framer::new(file, &params(), name).unwrap();
        let mut out = Vec::new();
        while let Some(b) = f.next_block(Vec::new()).unwrap() {
            out.push(b);
        }
        out
    }

    /// Frames with tree hashing, hashing each block's job only when the trailer asks for it
    /// (as the sealer's workers would, later and in any order).
    fn frame_all_tree(file: &[u8], name: &str) -> Vec<PlainBlock> {
        let mut f = Framer::new(file, &params(), name).unwrap().with_tree_hash();
        let mut out = Vec::new();
        let mut pending: Vec<Vec<SubtreeCv>> = Vec::new();
        loop {
            let next = f.next_block_with(Vec::new(), |tree| {
                for cvs in pending.drain(..).rev() {
                    tree.add(cvs);
                }
                Ok(())
            });
            let Some(mut b) = next.unwrap() else {
                return out;
            };
            if let Some(job) = b.hash_job.take() {
                pending.push(hash_subtrees(job.first_chunk, &b.buf[job.range]));
            }
            out.push(b);
        }
    }

    #[test]
    fn tree_hashing_frames_the_same_bytes() {
        let bs = params().block_plaintext_size();
        let file: Vec<u8> = (0..4 * bs + 3000)
            .map(|i| (i * 13 + i / 977) as u8)
            .collect();
        let mut sizes: Vec<usize> = (0..3000).step_by(7).collect();
        for edge in [1024, 2048, bs - 47, bs, 2 * bs - 47, 2 * bs, 3 * bs + 1024] {
            sizes.extend(edge.saturating_sub(1030)..edge + 1030);
        }
        for size in sizes {
            let inline = frame_all(&file[..size], "name");
            let tree = frame_all_tree(&file[..size], "name");
            assert_eq!(inline.len(), tree.len());
            for (a, b) in inline.iter().zip(&tree) {
                assert_eq!(a.buf, b.buf, "size {size} block {}", a.index);
                assert_eq!((a.index, a.is_last), (b.index, b.is_last));
            }
        }
    }

    #[test]
    fn layout_matches_the_module_docs() {
        let blocks = frame_all(b"abc", "n.txt");
        assert_eq!(blocks.len(), 1);
        let b = &blocks[0].buf;
        let mut want = b"KRSF\x01\x05n.txt".to_vec();
        want.extend_from_slice(b"abc");
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(blake3::hash(b"abc").as_bytes());
        assert_eq!(b, &want);
        assert!(blocks[0].is_last);
    }

    #[test]
    fn block_boundaries_and_deframing() {
        let p = params();
        let bs = p.block_plaintext_size();
        let name = "x";
        let overhead = HEADER_FIXED_LEN + name.len() + TRAILER_LEN;
        for size in [
            0,
            1,
            bs - overhead - 1,
            bs - overhead,
            bs - overhead + 1,
            bs - HEADER_FIXED_LEN - name.len(),
            bs - HEADER_FIXED_LEN - name.len() + 1,
            3 * bs + 17,
        ] {
            let file: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let blocks = frame_all(&file, name);
            assert_eq!(
                blocks.len() as u64,
                block_count(&p, name.len(), size as u64)
            );
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(b.index as usize, i);
                assert_eq!(b.is_last, i + 1 == blocks.len());
                if !b.is_last {
                    assert_eq!(b.buf.len(), bs);
                } else {
                    assert!(!b.buf.is_empty() && b.buf.len() <= bs);
                }
            }
            let mut d = Deframer::new(Vec::new());
            for b in &blocks {
                d.push(&b.buf).unwrap();
            }
            let (info, out) = d.finish().unwrap();
            assert_eq!(out, file);
            assert_eq!(info.size, size as u64);
            assert_eq!(info.name, name);
        }
    }

    #[test]
    fn deframer_rejects_damage() {
        let mut bytes = frame_all(b"hello", "h").remove(0).buf;
        let mut d = Deframer::new(Vec::new());
        d.push(&bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(d.finish(), Err(OpenError::SizeMismatch { .. })));
        let mut d = Deframer::new(Vec::new());
        d.push(&bytes[..20]).unwrap();
        assert!(matches!(d.finish(), Err(OpenError::Truncated)));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut d = Deframer::new(Vec::new());
        d.push(&bytes).unwrap();
        assert!(matches!(d.finish(), Err(OpenError::HashMismatch)));
        bytes[0] = b'X';
        assert!(Deframer::new(Vec::new()).push(&bytes).is_err());
        assert!(matches!(
            Framer::new(&b""[..], &params(), &"n".repeat(256)),
            Err(SealError::NameTooLong(256))
        ));
    }
}
