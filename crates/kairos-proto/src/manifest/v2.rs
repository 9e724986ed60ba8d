//! The content manifest, version 2: what a file *is* (coding, lock, piece hashes), never where
//! its pieces live, signed by the file's own per-file key. Immutable: its hash is the file id.
//! Design and rationale: `docs/manifest-v2.md`.
//!
//! # Canonical encoding, version 2
//!
//! All integers little-endian. `n = k + m`.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `KRSM` |
//! | 1 | format version = 2 |
//! | 32 | uploader: the **per-file** Ed25519 public key ([`crate::Identity::per_file_key`]) |
//! | 8 | created, Unix seconds (u64) |
//! | 8 | release, Unix seconds (u64) |
//! | 32 | per-file salt (feeds every key derivation) |
//! | 1 | k (data shards) |
//! | 1 | m (parity shards) |
//! | 4 | shard size (u32) |
//! | 1 + … | lock section (see [`super::lock`]) |
//! | 4 | block count B (u32, ≥ 1) |
//! | B × (4 + n × 32) | block: ciphertext length (u32), then the n piece hashes in shard order |
//! | 64 | Ed25519 signature by the uploader over [`SIGNING_CONTEXT`] ‖ all bytes above |
//!
//! A piece's length is not stored: it is `SHARE_LEN + params.shard_len_for(cipher_len)`
//! ([`ContentBlock::piece_len`]).
//!
//! Invariants enforced by [`SignedContentManifest::from_bytes`] (never a panic, whatever the
//! input): at most [`MAX_MANIFEST_BYTES`], exact length, valid [`Params`] within the v2 caps
//! (`k + m ≤` [`MAX_PIECES_PER_BLOCK`], shard size ≤ [`MAX_SHARD_SIZE`]),
//! `created ≤ release ≤ 9999-12-31T23:59:59Z`, a well-formed lock section, at least one block,
//! every block but the last full, the last between `TAG_LEN` and full, and a valid signature.
//!
//! Left to the caller, who has the policy or the parameters: `release ≤ created + max_release`,
//! the drand chain and round of the lock ([`super::lock::DrandLock::check_round`]).

use super::error::{inconsistent, ManifestError};
use super::lock::{LockRoundError, LockSection};
use super::{FileId, MAGIC, MAX_MANIFEST_BYTES, SIGNATURE_LEN};
use crate::codec::{signed_message, split_signed, DecodeError, Reader, Writer};
use crate::identity::{Identity, PublicKey};
use crate::time::MAX_RFC3339;
use kairos_seal::{Params, PieceHash, SHARE_LEN, TAG_LEN};

/// Version byte of a content manifest.
pub const CONTENT_MANIFEST_VERSION: u8 = 2;
/// Signing context of a content manifest.
pub const SIGNING_CONTEXT: &[u8] = b"kairos content manifest v2\0";
/// Most pieces per block (`k + m`) a v2 manifest may ask a downloader to handle.
pub const MAX_PIECES_PER_BLOCK: usize = 32;
/// Largest shard size (bytes) a v2 manifest may ask a downloader to handle.
pub const MAX_SHARD_SIZE: u32 = 4 * 1024 * 1024;

/// One block: its ciphertext length and the hashes of its `n` pieces in shard order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentBlock {
    /// Ciphertext bytes including the tag, before padding.
    pub cipher_len: u32,
    /// `kairos_seal::piece_hash(share, shard)` of piece `i` at index `i`.
    pub hashes: Vec<PieceHash>,
}

impl ContentBlock {
    /// Bytes of each piece of this block: the share plus one shard.
    pub fn piece_len(&self, params: &Params) -> usize {
        SHARE_LEN + params.shard_len_for(self.cipher_len as usize)
    }
}

/// The content manifest (unsigned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentManifest {
    /// The per-file public key: signs this manifest, its placements and its tombstone.
    pub uploader: PublicKey,
    pub created: u64,
    pub release: u64,
    pub salt: [u8; 32],
    pub params: Params,
    pub lock: LockSection,
    pub blocks: Vec<ContentBlock>,
}

impl ContentManifest {
    /// Checks every invariant of the module docs except the signature.
    pub fn check(&self) -> Result<(), ManifestError> {
        check_params(&self.params)?;
        if self.created > self.release {
            return Err(inconsistent("release time is before creation time"));
        }
        if self.release > MAX_RFC3339 {
            return Err(inconsistent("release time is after 9999-12-31T23:59:59Z"));
        }
        self.lock.check()?;
        if self.blocks.is_empty() || self.blocks.len() > u32::MAX as usize {
            return Err(inconsistent("a manifest has 1 to 2^32 - 1 blocks"));
        }
        let n = self.params.total_shards();
        let full = self.params.block_cipher_size();
        let last = self.blocks.len() - 1;
        for (i, b) in self.blocks.iter().enumerate() {
            if b.hashes.len() != n {
                return Err(inconsistent(format!(
                    "block {i} has {} piece hashes, expected {n}",
                    b.hashes.len()
                )));
            }
            let len = b.cipher_len as usize;
            if (i < last && len != full) || len < TAG_LEN || len > full {
                return Err(inconsistent(format!(
                    "block {i} has an impossible ciphertext length {len}"
                )));
            }
        }
        Ok(())
    }

    /// [`super::lock::DrandLock::check_round`] of the lock section against this manifest's
    /// release time; `Ok` without a drand lock. Run it with the parameters of the chain the
    /// lock names (`genesis`: Unix time of round 1, `period`: seconds between rounds).
    pub fn check_lock_round(&self, genesis: u64, period: u64) -> Result<(), LockRoundError> {
        match self.lock.drand() {
            Some(d) => d.check_round(self.release, genesis, period),
            None => Ok(()),
        }
    }

    /// The canonical unsigned bytes. Call [`ContentManifest::check`] first (signing does).
    fn encode(&self) -> Vec<u8> {
        let n = self.params.total_shards();
        let mut w = Writer::default();
        w.buf.reserve(1200 + self.blocks.len() * (4 + n * 32));
        w.bytes(MAGIC);
        w.u8(CONTENT_MANIFEST_VERSION);
        w.bytes(&self.uploader.0);
        w.u64(self.created);
        w.u64(self.release);
        w.bytes(&self.salt);
        w.u8(self.params.data_shards);
        w.u8(self.params.parity_shards);
        w.u32(self.params.shard_size);
        self.lock.encode(&mut w);
        w.u32(self.blocks.len() as u32);
        for b in &self.blocks {
            w.u32(b.cipher_len);
            for h in &b.hashes {
                w.bytes(h);
            }
        }
        w.buf
    }

    fn decode(body: &[u8]) -> Result<ContentManifest, ManifestError> {
        let mut r = Reader::new(body);
        if r.take(4, "magic")? != MAGIC {
            return Err(DecodeError::Magic("kairos manifest").into());
        }
        let version = r.u8("version")?;
        if version != CONTENT_MANIFEST_VERSION {
            return Err(DecodeError::Version {
                what: "content manifest",
                version,
            }
            .into());
        }
        let uploader = PublicKey(r.array("uploader")?);
        let created = r.u64("created")?;
        let release = r.u64("release")?;
        let salt = r.array("salt")?;
        let params = Params {
            data_shards: r.u8("k")?,
            parity_shards: r.u8("m")?,
            shard_size: r.u32("shard size")?,
        };
        check_params(&params)?;
        let lock = LockSection::decode(&mut r)?;
        let blocks = decode_blocks(&mut r, params.total_shards())?;
        r.finish()?;
        let m = ContentManifest {
            uploader,
            created,
            release,
            salt,
            params,
            lock,
            blocks,
        };
        m.check()?;
        Ok(m)
    }

    /// Checks and signs the manifest with the per-file identity.
    ///
    /// Fails if the manifest is inconsistent or `identity` is not `self.uploader`.
    pub fn sign(self, identity: &Identity) -> Result<SignedContentManifest, ManifestError> {
        if identity.public() != self.uploader {
            return Err(inconsistent(
                "signing identity is not the manifest's uploader (the per-file key)",
            ));
        }
        self.check()?;
        let mut bytes = self.encode();
        if bytes.len() + SIGNATURE_LEN > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len() + SIGNATURE_LEN));
        }
        let sig = identity.sign(&signed_message(SIGNING_CONTEXT, &bytes));
        bytes.extend_from_slice(&sig);
        let id = FileId::of(&bytes);
        Ok(SignedContentManifest {
            bytes,
            manifest: self,
            id,
        })
    }
}

/// Valid [`Params`] within the v2 caps a downloader accepts.
fn check_params(params: &Params) -> Result<(), ManifestError> {
    params.validate()?;
    if params.total_shards() > MAX_PIECES_PER_BLOCK {
        return Err(inconsistent(format!(
            "k + m = {} exceeds {MAX_PIECES_PER_BLOCK} pieces per block",
            params.total_shards()
        )));
    }
    if params.shard_size > MAX_SHARD_SIZE {
        return Err(inconsistent(format!(
            "shard size {} exceeds {MAX_SHARD_SIZE} bytes",
            params.shard_size
        )));
    }
    Ok(())
}

/// The block table: its length must be exactly what the rest of the input holds.
fn decode_blocks(r: &mut Reader<'_>, n: usize) -> Result<Vec<ContentBlock>, ManifestError> {
    let block_count = r.u32("block count")? as usize;
    let block_len = 4 + n * 32;
    if block_count.checked_mul(block_len) != Some(r.remaining()) {
        return Err(DecodeError::Invalid {
            field: "block count",
            reason: "does not match the manifest length",
        }
        .into());
    }
    let mut blocks = Vec::with_capacity(block_count);
    for _ in 0..block_count {
        let cipher_len = r.u32("cipher length")?;
        let mut hashes = Vec::with_capacity(n);
        for _ in 0..n {
            hashes.push(r.array("piece hash")?);
        }
        blocks.push(ContentBlock { cipher_len, hashes });
    }
    Ok(blocks)
}

/// A content manifest together with its exact signed bytes and its id. Only constructible
/// through signing or full verification, so holding one means it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedContentManifest {
    bytes: Vec<u8>,
    manifest: ContentManifest,
    id: FileId,
}

impl SignedContentManifest {
    /// Decodes and fully verifies signed content manifest bytes (structure, consistency,
    /// signature by the uploader key inside).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let (body, sig) = split_signed(&bytes)?;
        let manifest = ContentManifest::decode(body)?;
        manifest
            .uploader
            .verify(&signed_message(SIGNING_CONTEXT, body), &sig)
            .map_err(|_| ManifestError::BadSignature)?;
        let id = FileId::of(&bytes);
        Ok(SignedContentManifest {
            bytes,
            manifest,
            id,
        })
    }

    /// [`SignedContentManifest::from_bytes`] plus a check that the bytes hash to `expected`.
    pub fn verify(bytes: Vec<u8>, expected: &FileId) -> Result<Self, ManifestError> {
        expected.check(&bytes)?;
        Self::from_bytes(bytes)
    }

    pub fn id(&self) -> FileId {
        self.id
    }
    pub fn manifest(&self) -> &ContentManifest {
        &self.manifest
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}
