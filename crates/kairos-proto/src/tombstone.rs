//! The tombstone: the uploader's revocation of a version 2 file, signed by its per-file key.
//! Directories replace manifest and placement with it; holders presented with it delete the
//! file's pieces. Design: `docs/manifest-v2.md`.
//!
//! # Canonical encoding, version 1 (exactly [`TOMBSTONE_LEN`] bytes)
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `KRST` |
//! | 1 | version = 1 |
//! | 32 | file id |
//! | 8 | created, Unix seconds (u64) |
//! | 64 | Ed25519 signature by the per-file key over [`SIGNING_CONTEXT`] ‖ all bytes above |
//!
//! Like a placement record, a tombstone names no key: verify it against the manifest's
//! uploader ([`SignedTombstone::verify`]) or the per-file key a holder stored with its pieces
//! ([`SignedTombstone::from_bytes`]). A tombstone is accepted only before the file's release;
//! that needs a clock, so it is the caller's check ([`SignedTombstone::check_before_release`]
//! with its `now`).

use crate::codec::{signed_message, split_signed, DecodeError, Reader, Writer, SIGNATURE_LEN};
use crate::identity::{Identity, PublicKey};
use crate::manifest::{FileId, SignedContentManifest};
use thiserror::Error;

const MAGIC: &[u8; 4] = b"KRST";
/// Version byte of a tombstone.
pub const TOMBSTONE_VERSION: u8 = 1;
/// Signing context of a tombstone.
pub const SIGNING_CONTEXT: &[u8] = b"kairos revoke v1\0";
/// Bytes of a signed tombstone.
pub const TOMBSTONE_LEN: usize = 4 + 1 + 32 + 8 + SIGNATURE_LEN;

/// Why a tombstone was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TombstoneError {
    #[error("malformed tombstone: {0}")]
    Decode(#[from] DecodeError),
    #[error("tombstone signature does not verify against the file's per-file key")]
    BadSignature,
    #[error("tombstone revokes file {actual}, not {expected}")]
    WrongFile { expected: FileId, actual: FileId },
    #[error("file was released at {release} (Unix seconds); a released file cannot be revoked")]
    Released { release: u64 },
}

/// A revocation (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub file_id: FileId,
    pub created: u64,
}

impl Tombstone {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.buf.reserve(TOMBSTONE_LEN);
        w.bytes(MAGIC);
        w.u8(TOMBSTONE_VERSION);
        w.bytes(&self.file_id.0);
        w.u64(self.created);
        w.buf
    }

    fn decode(body: &[u8]) -> Result<Tombstone, DecodeError> {
        let mut r = Reader::new(body);
        if r.take(4, "magic")? != MAGIC {
            return Err(DecodeError::Magic("kairos tombstone"));
        }
        let version = r.u8("version")?;
        if version != TOMBSTONE_VERSION {
            return Err(DecodeError::Version {
                what: "tombstone",
                version,
            });
        }
        let file_id = FileId(r.array("file id")?);
        let created = r.u64("created")?;
        r.finish()?;
        Ok(Tombstone { file_id, created })
    }

    /// Decodes the structure **without checking the signature**: only to learn which file a
    /// tombstone claims to revoke before verifying it.
    pub fn decode_unverified(bytes: &[u8]) -> Result<Tombstone, TombstoneError> {
        let (body, _) = split_signed(bytes)?;
        Ok(Self::decode(body)?)
    }

    /// Signs the tombstone with the file's per-file identity.
    pub fn sign(self, identity: &Identity) -> SignedTombstone {
        let mut bytes = self.encode();
        let sig = identity.sign(&signed_message(SIGNING_CONTEXT, &bytes));
        bytes.extend_from_slice(&sig);
        SignedTombstone {
            bytes,
            tombstone: self,
            signer: identity.public(),
        }
    }
}

/// A tombstone with its exact signed bytes and the key that signed it; holding one means the
/// signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTombstone {
    bytes: Vec<u8>,
    tombstone: Tombstone,
    signer: PublicKey,
}

impl SignedTombstone {
    /// Decodes and verifies signed tombstone bytes against `signer` (the file's per-file key).
    pub fn from_bytes(bytes: Vec<u8>, signer: &PublicKey) -> Result<Self, TombstoneError> {
        let (body, sig) = split_signed(&bytes)?;
        let tombstone = Tombstone::decode(body)?;
        signer
            .verify(&signed_message(SIGNING_CONTEXT, body), &sig)
            .map_err(|_| TombstoneError::BadSignature)?;
        Ok(SignedTombstone {
            bytes,
            tombstone,
            signer: *signer,
        })
    }

    /// Decodes and verifies a tombstone for the file of `manifest`: it names that file and is
    /// signed by its uploader key. The release-time rule is [`Self::check_before_release`].
    pub fn verify(
        bytes: Vec<u8>,
        manifest: &SignedContentManifest,
    ) -> Result<Self, TombstoneError> {
        let t = Self::from_bytes(bytes, &manifest.manifest().uploader)?;
        if t.tombstone.file_id != manifest.id() {
            return Err(TombstoneError::WrongFile {
                expected: manifest.id(),
                actual: t.tombstone.file_id,
            });
        }
        Ok(t)
    }

    /// The acceptance rule: a tombstone counts only for its own file and while that file is
    /// not released yet (`now < release`), judged by the receiver's clock.
    pub fn check_before_release(
        &self,
        manifest: &SignedContentManifest,
        now: u64,
    ) -> Result<(), TombstoneError> {
        if self.tombstone.file_id != manifest.id() {
            return Err(TombstoneError::WrongFile {
                expected: manifest.id(),
                actual: self.tombstone.file_id,
            });
        }
        let release = manifest.manifest().release;
        if now >= release {
            return Err(TombstoneError::Released { release });
        }
        Ok(())
    }

    pub fn tombstone(&self) -> &Tombstone {
        &self.tombstone
    }
    /// The key the signature verified against.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }
    pub fn file_id(&self) -> FileId {
        self.tombstone.file_id
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}
