//! Sealing: turning a byte stream into encrypted, erasure-coded, key-split pieces and back.
//!
//! Pure code: no network, no files, no clock. Everything here works on readers, writers and
//! buffers handed in by the caller.
//!
//! Modules:
//! * [`params`] — the coding parameters `(k, m, shard size)` and their invariants;
//! * [`keys`] — salt, per-block secret and key derivation, nonce and AAD, Shamir shares,
//!   piece hashes;
//! * [`block`] — sealing and opening one block (the pure per-block functions a node runs on
//!   its own worker threads);
//! * [`frame`] — the plaintext framing that carries the file name, size and hash inside the
//!   encryption;
//! * [`stream`] — [`Sealer`] and [`Opener`], streaming with bounded memory and optional
//!   worker threads.
//!
//! Security properties, in one place: each block has its own AES-256-GCM key derived from a
//! fresh 256-bit secret; the secret is Shamir-split with threshold `k` so any `k` pieces open a
//! block and `k - 1` reveal nothing about it; the AAD binds each block to its file salt,
//! position and last-block flag; each piece's hash (in the signed manifest) binds share and
//! shard, so bad pieces are erasures, not poison.

pub mod block;
pub mod error;
pub mod frame;
pub mod keys;
pub mod params;
pub mod stream;

#[cfg(test)]
mod kat;

pub use block::{open_block, open_block_into, seal_block, Piece, SealedBlock};
pub use error::{OpenError, SealError};
pub use frame::{block_count, framed_len, FileInfo, FORMAT_VERSION, MAX_NAME_LEN};
pub use keys::{
    block_aad, block_key, block_nonce, new_salt, piece_hash, FileSalt, KeyShare, PieceHash,
    SECRET_LEN, SHARE_LEN,
};
pub use params::{Params, ParamsError, SHARD_ALIGN, TAG_LEN};
pub use stream::{BlockPieces, Opener, Sealer};

/// Lower-case hex, for `Debug` output.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
