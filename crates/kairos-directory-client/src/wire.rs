//! JSON bodies of the directory API (see `docs/directory-api.md`). Shared by the server and the
//! client so both sides agree by construction.
//!
//! Binary payloads (signed node records, signed manifests) travel base64-encoded (RFC 4648,
//! standard alphabet, padded) inside JSON; receivers decode and verify them themselves — the
//! clear fields next to them are conveniences that must not be trusted.

use serde::{Deserialize, Serialize};

/// `POST /v1/nodes` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubscribeResponse {
    /// The node key, text form.
    pub key: String,
    /// Unix seconds after which the record is dropped unless a newer one arrives.
    pub expires_at: u64,
}

/// One node of `GET /v1/nodes`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListedNode {
    pub key: String,
    pub addr: String,
    pub capacity: u64,
    pub timestamp: u64,
    pub expires_at: u64,
    /// The signed node record, base64.
    pub record: String,
}

/// `GET /v1/nodes` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeList {
    pub nodes: Vec<ListedNode>,
}

/// `PUT /v1/manifests/{id}` → 201 (new) or 200 (identical bytes already stored).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishResponse {
    pub id: String,
    /// Release time, Unix seconds.
    pub release: u64,
    /// Unix seconds after which the manifest is deleted (release + retention).
    pub expires_at: u64,
    /// True if this request stored it, false if it was already there.
    pub created: bool,
}

/// `PUT /v1/placements/{id}` → 201 (stored) or 200 (identical bytes already stored).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlacementResponse {
    pub id: String,
    /// The stored record's seq.
    pub seq: u64,
    /// True if this request stored it, false if it was already there.
    pub created: bool,
}

/// `GET /v1/placements/{id}/held` → 200: the pieces of a file that its newest placement puts on
/// the holder that signed the request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeldPieces {
    /// The file's per-file uploader key (text): the key that stored the pieces.
    pub uploader: String,
    pub release: u64,
    /// The placement's seq.
    pub seq: u64,
    /// Piece hashes, 64 hex digits each.
    pub hashes: Vec<String>,
}

/// `PUT /v1/tombstones/{id}` → 201 (revoked now) or 200 (revoked already).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TombstoneResponse {
    pub id: String,
    pub created: bool,
}

/// One item of the federation feed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncItem {
    /// The serving directory's sequence number of the item.
    pub seq: u64,
    /// `"node"`, `"manifest"` (version 1 or 2) or `"placement"`. Pullers skip kinds they do
    /// not know.
    pub kind: String,
    /// For manifests, the file id the bytes must hash to; for placements, the file placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Signed record, manifest or placement bytes, base64.
    pub data: String,
}

/// `GET /v1/sync` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncPage {
    /// Random id of the serving database (16 hex digits). A puller whose stored cursor belongs
    /// to another epoch starts again from 0.
    pub epoch: String,
    pub items: Vec<SyncItem>,
    /// Pass as `since` for the next page.
    pub next: u64,
    /// Whether more items are ready right away.
    pub more: bool,
}

/// `GET /v1/info` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Info {
    /// The directory's identity key (text form); siblings list it.
    pub key: String,
    /// kairos version of the server.
    pub version: String,
    /// The directory's clock, Unix seconds.
    pub time: u64,
    /// Node records held (some may be past their TTL until the next sweep).
    pub nodes: u64,
    pub manifests: u64,
    /// Node record TTL, seconds.
    pub node_ttl: u64,
    /// Manifest retention after release, seconds.
    pub manifest_retention: u64,
}
