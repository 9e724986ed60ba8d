//! A manifest of either version, read by its version byte.

use super::error::ManifestError;
use super::v1::{SignedManifest, MANIFEST_VERSION};
use super::v2::{SignedContentManifest, CONTENT_MANIFEST_VERSION};
use super::{FileId, MAGIC};
use crate::codec::DecodeError;
use crate::identity::PublicKey;
use kairos_seal::Params;

/// A verified manifest of version 1 or 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyManifest {
    /// Content and placement in one, signed by the uploading node.
    V1(SignedManifest),
    /// Content only, signed by a per-file key; the placement is a separate record.
    V2(SignedContentManifest),
}

impl AnyManifest {
    /// Decodes and fully verifies either version, dispatching on the byte after the magic.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ManifestError> {
        if bytes.len() < MAGIC.len() + 1 {
            return Err(DecodeError::Truncated {
                field: "manifest version",
                needed: MAGIC.len() + 1 - bytes.len(),
            }
            .into());
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(DecodeError::Magic("kairos manifest").into());
        }
        match bytes[MAGIC.len()] {
            MANIFEST_VERSION => SignedManifest::from_bytes(bytes).map(AnyManifest::V1),
            CONTENT_MANIFEST_VERSION => {
                SignedContentManifest::from_bytes(bytes).map(AnyManifest::V2)
            }
            version => Err(DecodeError::Version {
                what: "manifest",
                version,
            }
            .into()),
        }
    }

    /// [`AnyManifest::from_bytes`] plus a check that the bytes hash to `expected`.
    pub fn verify(bytes: Vec<u8>, expected: &FileId) -> Result<Self, ManifestError> {
        expected.check(&bytes)?;
        Self::from_bytes(bytes)
    }

    /// The format version (1 or 2).
    pub fn version(&self) -> u8 {
        match self {
            AnyManifest::V1(_) => MANIFEST_VERSION,
            AnyManifest::V2(_) => CONTENT_MANIFEST_VERSION,
        }
    }

    /// BLAKE3 of the signed bytes.
    pub fn file_id(&self) -> FileId {
        match self {
            AnyManifest::V1(m) => m.id(),
            AnyManifest::V2(m) => m.id(),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AnyManifest::V1(m) => m.as_bytes(),
            AnyManifest::V2(m) => m.as_bytes(),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            AnyManifest::V1(m) => m.into_bytes(),
            AnyManifest::V2(m) => m.into_bytes(),
        }
    }

    /// The signing key: the uploading node's (v1) or the per-file key (v2).
    pub fn uploader(&self) -> PublicKey {
        match self {
            AnyManifest::V1(m) => m.manifest().uploader,
            AnyManifest::V2(m) => m.manifest().uploader,
        }
    }

    pub fn created(&self) -> u64 {
        match self {
            AnyManifest::V1(m) => m.manifest().created,
            AnyManifest::V2(m) => m.manifest().created,
        }
    }

    pub fn release(&self) -> u64 {
        match self {
            AnyManifest::V1(m) => m.manifest().release,
            AnyManifest::V2(m) => m.manifest().release,
        }
    }

    pub fn salt(&self) -> [u8; 32] {
        match self {
            AnyManifest::V1(m) => m.manifest().salt,
            AnyManifest::V2(m) => m.manifest().salt,
        }
    }

    pub fn params(&self) -> Params {
        match self {
            AnyManifest::V1(m) => m.manifest().params,
            AnyManifest::V2(m) => m.manifest().params,
        }
    }

    pub fn block_count(&self) -> usize {
        match self {
            AnyManifest::V1(m) => m.manifest().blocks.len(),
            AnyManifest::V2(m) => m.manifest().blocks.len(),
        }
    }
}
