//! Minimal canonical binary reader/writer shared by every signed structure.
//!
//! Integers are little-endian and fixed-width; variable-length fields carry an explicit length
//! prefix. A reader must consume its input exactly ([`Reader::finish`]): trailing bytes are an
//! error, so every value has exactly one encoding and a signature covers one meaning.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated: needed {needed} more bytes for {field}")]
    Truncated { field: &'static str, needed: usize },
    #[error("{0} trailing bytes after the end of the structure")]
    Trailing(usize),
    #[error("bad magic: not a {0}")]
    Magic(&'static str),
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: u8 },
    #[error("field {0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("field {field} is invalid: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// A string of at most 255 bytes with a u8 length prefix. Callers validate the length first.
    pub(crate) fn short_str(&mut self, s: &str) {
        debug_assert!(s.len() <= 255);
        self.u8(s.len() as u8);
        self.bytes(s.as_bytes());
    }
}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    pub(crate) fn short_str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.u8(field)? as usize;
        std::str::from_utf8(self.take(len, field)?).map_err(|_| DecodeError::Utf8(field))
    }
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Bytes of an Ed25519 signature, the last field of every signed object.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// What a signature covers: `context ‖ body`. Every signed type has its own context, so a
/// signature over one type never verifies as another.
pub(crate) fn signed_message(context: &[u8], body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(context.len() + body.len());
    msg.extend_from_slice(context);
    msg.extend_from_slice(body);
    msg
}

/// Splits signed bytes into the body and the trailing signature.
pub(crate) fn split_signed(bytes: &[u8]) -> Result<(&[u8], [u8; SIGNATURE_LEN]), DecodeError> {
    let Some(body_len) = bytes.len().checked_sub(SIGNATURE_LEN) else {
        return Err(DecodeError::Truncated {
            field: "signature",
            needed: SIGNATURE_LEN - bytes.len(),
        });
    };
    let (body, sig) = bytes.split_at(body_len);
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(sig);
    Ok((body, signature))
}
