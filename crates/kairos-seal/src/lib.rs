//! Sealing: turning a byte stream into encrypted, erasure-coded, key-split pieces and back.
//!
//! Pure code: no network, no files, no clock. Everything here works on readers, writers and
//! buffers handed in by the caller.
//!
//! Modules, lowest first; each imports only modules listed before it (no cycles), and none
//! imports the crate root:
//! * [`params`] — the coding parameters `(k, m, shard size)` and their invariants;
//! * [`format`] — the format version and the longest file name;
//! * [`error`] — [`SealError`] and [`OpenError`];
//! * [`keys`] — salt, [`BlockPos`], per-block secret and key derivation, nonce and AAD, Shamir
//!   shares, piece hashes;
//! * [`schedule`] — the key schedules: [`KeySchedule::V1`] (random block secrets) and
//!   [`KeySchedule::V2`] (secrets and Shamir coefficients derived from a per-file
//!   [`RepairSeed`], keys mixed with a per-file [`LockSecret`]), and [`regenerate_share`];
//! * [`block`] — one block's byte layout, [`Piece`] and [`SealedBlock`]; [`block::seal`] and
//!   [`block::open`] hold the pure per-block functions (a node runs them on its own worker
//!   threads);
//! * [`frame`] — the plaintext framing that carries the file name, size and hash inside the
//!   encryption;
//! * [`audit`] — proofs that a holder still has a whole piece (a chunk and its BLAKE3 Merkle
//!   path to the piece hash), never carrying the key share;
//! * [`repair`] — rebuilding a lost shard by Reed-Solomon from any `k` others;
//! * [`stream`] — [`Sealer`] and [`Opener`], streaming with bounded memory and optional
//!   worker threads.
//!
//! Security properties, in one place: each block has its own AES-256-GCM key derived from a
//! 256-bit secret of its own (fresh random under V1, derived per block from the per-file repair
//! seed under V2, where the key also mixes in the lock secret); the secret is Shamir-split with
//! threshold `k` so any `k` pieces open a block and `k - 1` reveal nothing about it; the AAD binds each block to its file salt,
//! position and last-block flag; each piece's hash (in the signed manifest) binds share and
//! shard, so bad pieces are erasures, not poison.

pub mod audit;
pub mod block;
pub mod error;
pub mod format;
pub mod frame;
pub mod keys;
pub mod params;
pub mod repair;
pub mod schedule;
pub mod stream;

#[cfg(test)]
mod kat;
#[cfg(test)]
mod kat_v2;

pub use block::open::{open_block, open_block_into, open_block_into_with, open_block_with};
pub use block::seal::{seal_block, seal_block_with};
pub use block::{Piece, SealedBlock};
pub use error::{OpenError, SealError};
pub use format::{FORMAT_VERSION, MAX_NAME_LEN};
pub use frame::{block_count, framed_len, FileInfo};
pub use keys::{
    block_aad, block_key, block_key_v2, block_nonce, new_salt, piece_hash, BlockPos, FileSalt,
    KeyShare, PieceHash, SECRET_LEN, SHARE_LEN,
};
pub use params::{Params, ParamsError, SHARD_ALIGN, TAG_LEN};
pub use schedule::{regenerate_share, KeySchedule, LockSecret, OpenSchedule, RepairSeed};
pub use stream::{BlockPieces, Opener, Sealer};
