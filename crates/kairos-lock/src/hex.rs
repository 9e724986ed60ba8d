//! Hex, as drand writes keys, hashes and signatures (lower case; either case accepted).
//!
//! Invariant: decoding is total (a typed error, never a panic) and checks the length first.

use crate::error::LockError;

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Decodes hex of exactly `len` bytes (either case); `what` names the field in the error.
pub fn unhex(text: &str, len: usize, what: &str) -> Result<Vec<u8>, LockError> {
    if text.len() != len.saturating_mul(2) {
        return Err(LockError::Wire(format!("{what} is not {len} bytes of hex")));
    }
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|_| LockError::Wire(format!("{what} is not hex")))
}

/// Decodes hex of exactly 32 bytes.
pub fn unhex32(text: &str, what: &str) -> Result<[u8; 32], LockError> {
    unhex(text, 32, what)?
        .try_into()
        .map_err(|_| LockError::Wire(format!("{what} is not 32 bytes")))
}
