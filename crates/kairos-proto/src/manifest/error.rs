//! Why a manifest (of either version) was rejected.

use super::{FileId, MAX_MANIFEST_BYTES};
use crate::codec::DecodeError;
use thiserror::Error;

/// Why a manifest was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ManifestError {
    #[error("malformed manifest: {0}")]
    Decode(#[from] DecodeError),
    #[error("manifest is {0} bytes; the limit is {MAX_MANIFEST_BYTES}")]
    TooLarge(usize),
    #[error("invalid coding parameters: {0}")]
    Params(#[from] kairos_seal::ParamsError),
    #[error("inconsistent manifest: {0}")]
    Inconsistent(String),
    #[error("manifest signature does not verify against its uploader key")]
    BadSignature,
    #[error("manifest hashes to file id {actual}, not the requested {expected}")]
    WrongId { expected: FileId, actual: FileId },
}

pub(crate) fn inconsistent(msg: impl Into<String>) -> ManifestError {
    ManifestError::Inconsistent(msg.into())
}
