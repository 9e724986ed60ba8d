//! Wire types of kairos and their signatures: identities and onion addresses, the signed file
//! manifest and its id, signed node records, and signed HTTP requests.
//!
//! Everything here is pure: no I/O, no clock (callers pass `now`). Every decoder returns a typed
//! error on any input and never panics.
#![forbid(unsafe_code)]

pub mod identity;
mod text;

pub use identity::{onion_address, parse_onion_address, Identity, IdentityError, PublicKey};
