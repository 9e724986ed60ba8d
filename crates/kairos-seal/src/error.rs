//! Typed errors of sealing and opening.
//!
//! Every failure on any input (wrong lengths, garbage shares, tampered ciphertext, a manifest
//! that does not fit its pieces) is reported as one of these; the crate never panics on data.

use thiserror::Error;

use crate::format::MAX_NAME_LEN;
use crate::params::ParamsError;

/// Why sealing failed.
#[derive(Debug, Error)]
pub enum SealError {
    #[error("invalid coding parameters: {0}")]
    Params(#[from] ParamsError),
    #[error("file name is {0} bytes long; at most {MAX_NAME_LEN} bytes of UTF-8 are allowed")]
    NameTooLong(usize),
    #[error("block {index}: {len} plaintext bytes exceed the block size of {max} bytes")]
    BlockTooLarge { index: u32, len: usize, max: usize },
    #[error(
        "block {index}: a block that is not the last must carry exactly {expected} plaintext \
         bytes, got {len}"
    )]
    ShortBlock {
        index: u32,
        len: usize,
        expected: usize,
    },
    #[error("the file needs more than 2^32 blocks")]
    TooManyBlocks,
    #[error("piece index {piece} is out of range: a block has {n} pieces (0..{n})")]
    PieceIndex { piece: usize, n: usize },
    #[error("reading the input failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a sealing worker thread stopped unexpectedly")]
    WorkerGone,
    #[error("internal {stage} failure: {detail}")]
    Internal { stage: &'static str, detail: String },
}

/// Why opening failed.
///
/// Errors about one block's pieces ([`OpenError::NotEnoughPieces`], [`OpenError::Decrypt`], …)
/// leave an [`crate::Opener`] unchanged: the caller may fetch other pieces and push the same
/// block again. Errors about the stream as a whole (header, trailer, output) are final.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("invalid coding parameters: {0}")]
    Params(#[from] ParamsError),
    #[error(
        "block {block}: expected {expected} piece slots and hashes, got {pieces} slots and \
         {hashes} hashes"
    )]
    PieceCount {
        block: u32,
        expected: usize,
        pieces: usize,
        hashes: usize,
    },
    #[error("block {block}: ciphertext length {cipher_len} is impossible here: {reason}")]
    CipherLen {
        block: u32,
        cipher_len: u32,
        reason: &'static str,
    },
    #[error(
        "block {block}: {good} intact pieces, {needed} needed; missing shard indexes \
         {missing:?}, corrupt (hash mismatch or wrong length) shard indexes {corrupt:?}"
    )]
    NotEnoughPieces {
        block: u32,
        needed: usize,
        good: usize,
        missing: Vec<usize>,
        corrupt: Vec<usize>,
    },
    #[error("block {block}: the key share of piece {piece} is malformed")]
    BadShare { block: u32, piece: usize },
    #[error(
        "block {block}: decryption failed: the pieces match the manifest but not this file, \
         block position, salt or lock secret (or the manifest itself is inconsistent)"
    )]
    Decrypt { block: u32 },
    #[error("expected block {expected} next, got block {got}")]
    UnexpectedBlock { expected: u32, got: u32 },
    #[error("the file has {expected} blocks but only {got} were opened")]
    MissingBlocks { expected: u32, got: u32 },
    #[error("the sealed stream's header is invalid: {0}")]
    BadHeader(String),
    #[error("the sealed stream ended before its header and trailer were complete")]
    Truncated,
    #[error("the trailer declares {declared} file bytes but the stream carried {actual}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("the BLAKE3 hash of the opened file does not match the hash sealed with it")]
    HashMismatch,
    #[error("writing the output failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the opener already failed on an earlier block and cannot continue")]
    Poisoned,
    #[error("an opening worker thread stopped unexpectedly")]
    WorkerGone,
    #[error("block {block}: internal {stage} failure: {detail}")]
    Internal {
        block: u32,
        stage: &'static str,
        detail: String,
    },
}

impl OpenError {
    /// True if this error concerns only one block's pieces, so pushing the block again with
    /// other pieces may succeed (the [`crate::Opener`] was left unchanged).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            OpenError::NotEnoughPieces { .. }
                | OpenError::BadShare { .. }
                | OpenError::Decrypt { .. }
                | OpenError::PieceCount { .. }
                | OpenError::Internal { .. }
        )
    }
}
