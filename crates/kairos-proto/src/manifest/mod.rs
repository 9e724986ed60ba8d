//! Signed manifests and the file id derived from them.
//!
//! Two versions share the magic `KRSM` and are told apart by the byte after it:
//! * version 1 ([`v1`]: [`Manifest`], [`SignedManifest`]) — content and placement (peer
//!   addresses) in one object, signed by the uploading node's key; what put writes today;
//! * version 2 ([`v2`]: [`ContentManifest`], [`SignedContentManifest`]) — content only,
//!   signed by a per-file key, with a lock section ([`lock`]: [`LockSection`]); where the
//!   pieces live is a separate, re-signable [`crate::placement`] record (see
//!   `docs/manifest-v2.md`).
//!
//! [`AnyManifest::from_bytes`] reads either. In both, the **file id** ([`FileId`]) is the BLAKE3
//! hash of the signed bytes, signature included, so nobody can swap a manifest under an id.
//!
//! Invariants shared by both versions: one canonical encoding (decoders are total, refuse
//! trailing bytes and counts the input cannot hold, never allocate beyond the input), at most
//! [`MAX_MANIFEST_BYTES`], and a signature with a context string of its own per version.

mod any;
mod error;
mod file_id;
pub mod lock;
pub mod v1;
pub mod v2;

pub use any::AnyManifest;
pub use error::ManifestError;
pub use file_id::{BadFileId, FileId};
pub use lock::{DrandLock, LockRoundError, LockSection, MAX_TLOCK_CIPHERTEXT};
pub use v1::{BlockEntry, Manifest, Peer, PieceEntry, SignedManifest, MANIFEST_VERSION};
pub use v2::{
    ContentBlock, ContentManifest, SignedContentManifest, CONTENT_MANIFEST_VERSION,
    MAX_PIECES_PER_BLOCK, MAX_SHARD_SIZE,
};

pub(crate) use crate::codec::SIGNATURE_LEN;

/// The magic of every manifest version.
pub(crate) const MAGIC: &[u8; 4] = b"KRSM";
/// Largest signed manifest accepted anywhere (≈ 150 000 blocks of k+m = 6, ≈ 600 GiB files).
pub const MAX_MANIFEST_BYTES: usize = 32 * 1024 * 1024;
