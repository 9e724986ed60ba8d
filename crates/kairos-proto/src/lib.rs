//! Wire types of kairos and their signatures: identities and onion addresses, per-file keys, the
//! signed file manifests (version 1, and version 2 with its placement records and tombstones)
//! and the file id, signed node records, and signed HTTP requests.
//!
//! Everything here is pure: no I/O, and no clock in the logic (callers pass `now`; only
//! [`time::now_unix`] reads the system clock, for the binaries' edges, and [`clock::Clock`] is
//! the shared handle those edges read it through). Every decoder returns a typed error on any
//! input and never panics.

pub mod addr;
pub mod clock;
mod codec;
pub mod identity;
pub mod liveness;
pub mod manifest;
pub mod per_file;
pub mod placement;
pub mod record;
pub mod request;
mod text;
pub mod time;
pub mod tombstone;

pub use clock::{Clock, ManualClock};
pub use codec::DecodeError;
pub use identity::{onion_address, parse_onion_address, Identity, IdentityError, PublicKey};
pub use manifest::{
    AnyManifest, BlockEntry, ContentBlock, ContentManifest, DrandLock, FileId, LockRoundError,
    LockSection, Manifest, ManifestError, Peer, PieceEntry, SignedContentManifest, SignedManifest,
};
pub use placement::{PlacementError, PlacementRecord, SignedPlacement};
pub use record::{NodeRecord, RecordError, SignedNodeRecord};
pub use request::{ReplayGuard, RequestAuth, RequestError};
pub use tombstone::{SignedTombstone, Tombstone, TombstoneError, TOMBSTONE_LEN};
