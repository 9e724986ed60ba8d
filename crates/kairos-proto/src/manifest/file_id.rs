//! The file id: BLAKE3 of a signed manifest's bytes (either version), and its text form.

use crate::text;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A file's id: BLAKE3 of its signed manifest bytes. Text form: 52 lower-case base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub [u8; 32]);

impl FileId {
    /// The id of the given signed manifest bytes.
    pub fn of(signed_bytes: &[u8]) -> Self {
        FileId(*blake3::hash(signed_bytes).as_bytes())
    }

    /// Checks that `signed_bytes` hash to this id (the first step of every `verify`).
    pub fn check(&self, signed_bytes: &[u8]) -> Result<(), super::ManifestError> {
        let actual = FileId::of(signed_bytes);
        if actual != *self {
            return Err(super::ManifestError::WrongId {
                expected: *self,
                actual,
            });
        }
        Ok(())
    }
}

/// A file id text that could not be parsed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("not a kairos file id ({0}): expected 52 base32 characters, as printed by `kairos put`")]
pub struct BadFileId(&'static str);

impl FromStr for FileId {
    type Err = BadFileId;
    fn from_str(s: &str) -> Result<Self, BadFileId> {
        text::decode::<32>(s.trim()).map(FileId).map_err(BadFileId)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::encode(&self.0))
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({self})")
    }
}

impl serde::Serialize for FileId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FileId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
