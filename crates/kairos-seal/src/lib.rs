//! Sealing: turning a byte stream into encrypted, erasure-coded, key-split pieces and back.
//!
//! Pure code: no network, no files, no clock. Everything here works on readers, writers and
//! buffers handed in by the caller.
#![forbid(unsafe_code)]

pub mod params;

pub use params::{Params, ParamsError, SHARD_ALIGN, TAG_LEN};
