//! The version and limits of the sealed format that more than one module states.
//!
//! [`crate::frame`] writes and enforces them and [`crate::error`] names them in its messages;
//! keeping them here, in a module that imports nothing from the crate, lets both depend on it
//! without depending on each other.

/// Version of the sealed format: the framing ([`crate::frame`]) and the block layout
/// ([`crate::block`]). Written into every framed stream's header; any change to either layout
/// needs a new version.
pub const FORMAT_VERSION: u8 = 1;
/// Longest file name, in bytes of UTF-8 (the header stores its length in one byte).
pub const MAX_NAME_LEN: usize = 255;
