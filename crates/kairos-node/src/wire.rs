//! JSON shapes of the local API (documented in `docs/node-api.md`), shared by the daemon and
//! [`crate::local_client::LocalClient`] so both sides agree by construction.
//!
//! `put` and `get` answer with a stream of newline-delimited JSON [`Event`]s: any number of
//! `info` / `progress` / `warning` / `bad_piece` events, then exactly one terminal event —
//! `put_result`, `get_result` or `error`. A get also carries the file itself: one `file` event
//! (the sealed name) and then `data` events (verified plaintext, base64, in order), all before
//! its terminal event; the CLI writes them where its user asked.

use kairos_proto::FileId;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// The node's public key (text form).
    pub key: String,
    /// Where peers reach this node's peer API (`host:port`; an onion address in Tor mode).
    pub advertise: String,
    /// The local address the peer API is bound to.
    pub listen: String,
    /// `direct` or `tor (socks HOST:PORT)`.
    pub transport: String,
    /// Whether the node has joined the network (subscribed and heartbeating).
    pub joined: bool,
    pub directories: Vec<DirectoryStatus>,
    /// Live nodes the directories listed at the last heartbeat (this one included).
    pub peers_known: usize,
    pub pieces_held: u64,
    pub bytes_used: u64,
    pub quota: u64,
    /// The node's clock, Unix seconds.
    pub now: u64,
    pub version: String,
}

/// How one directory answered the node's subscriptions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirectoryStatus {
    pub addr: String,
    /// Unix seconds of the last accepted subscription.
    pub last_success: Option<u64>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
}

/// `POST /v1/start` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartResult {
    pub joined: bool,
    /// Directories that accepted the subscription just now.
    pub directories_reached: usize,
    pub directories: Vec<DirectoryStatus>,
}

/// `POST /v1/put` request body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PutRequest {
    /// Absolute path of the file to upload (read by the daemon).
    pub path: PathBuf,
    /// Release time, Unix seconds.
    pub release: u64,
    /// The name to seal with the file instead of the path's last component (`put -`, whose
    /// bytes the CLI spooled to a temporary file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which time-lock to seal with; `None` = the node's default (drand when it has a
    /// chain configured, else peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockChoice>,
}

/// The time-lock of an upload.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockChoice {
    /// drand timelock encryption under the peer lock: nobody can open the file before the
    /// drand round of its release time, even if every holder serves early.
    Drand,
    /// Holders alone keep the file closed until its release time (networks without a beacon).
    Peer,
}

/// The time-lock a file was sealed with, as put and info report it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockReport {
    /// `drand` or `peer`.
    pub kind: String,
    /// The drand chain's hash (hex) and round, for `drand`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u64>,
    /// Whether the chain is a local test chain (devnet), not drand.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_chain: bool,
}

/// `POST /v1/get` request body. The answer streams the file; the CLI writes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GetRequest {
    pub id: FileId,
}

/// The terminal event of a successful put.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PutResult {
    pub id: FileId,
    /// Release time, Unix seconds, and as RFC 3339.
    pub release: u64,
    pub release_rfc3339: String,
    /// File name sealed with the file (inside the encryption).
    pub name: String,
    pub size: u64,
    pub blocks: u32,
    /// Pieces stored (blocks × n).
    pub pieces: u64,
    /// Distinct nodes holding pieces.
    pub nodes: usize,
    /// Pieces that had to be re-sent to another node.
    pub retries: u64,
    pub elapsed_ms: u64,
    /// The time-lock the file is sealed with.
    pub lock: LockReport,
}

/// One of this node's uploads, as its local history keeps it (`kairos ls`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Upload {
    pub id: FileId,
    /// The name sealed with the file.
    pub name: String,
    pub size: u64,
    /// Unix seconds.
    pub created: u64,
    pub release: u64,
    /// The file's salt (hex): with the node seed it gives the per-file uploader key.
    pub salt: String,
    pub blocks: u32,
    /// Distinct holders of its pieces at upload.
    pub nodes: usize,
    pub lock: LockReport,
    /// Unix seconds of the last audit (`kairos check`, a scheduled audit or a repair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit: Option<u64>,
    /// Healthy pieces of the weakest block at the last audit (`n` = all in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weakest: Option<usize>,
    /// Set when its uploader revoked the file (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
}

/// `GET /v1/uploads` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Uploads {
    pub uploads: Vec<Upload>,
}

/// `GET /v1/files/{id}` → 200: what the network says about a file (`kairos info`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReport {
    pub id: FileId,
    /// Whether this node uploaded it (then its manifest is shown before release too).
    pub own: bool,
    /// Unix seconds, and as RFC 3339.
    pub release: u64,
    pub release_rfc3339: String,
    /// Whether the release time has passed by this node's clock.
    pub released: bool,
    /// The manifest's details, when a directory gave it (after release, or to its uploader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestReport>,
}

/// The manifest part of a [`FileReport`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestReport {
    /// Manifest format version (1 or 2).
    pub version: u8,
    pub created: u64,
    /// `K+M` coding, shard size in bytes.
    pub coding: String,
    pub shard_size: u32,
    pub blocks: u32,
    /// Bytes of sealed content (the file plus its sealed name and framing).
    pub sealed_bytes: u64,
    pub lock: LockReport,
    /// The newest placement record's sequence number and holder count (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holders: Option<usize>,
}

/// `GET /v1/check/{id}` → 200: where the pieces of one of this node's uploads stand
/// (`kairos check`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckReport {
    pub id: FileId,
    pub release: u64,
    /// Pieces a block needs (`k`) and has (`n`).
    pub k: usize,
    pub n: usize,
    /// The placement record checked.
    pub placement_seq: u64,
    pub blocks: Vec<BlockHealth>,
    /// The fewest pieces any block still has held: below `k` the file is lost, at `n` every
    /// piece is in place.
    pub weakest: usize,
    /// Unix seconds of the check.
    pub checked_at: u64,
}

/// `POST /v1/repair/{id}` → 200: what a repair of one of this node's uploads did
/// (`kairos repair`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepairReport {
    pub id: FileId,
    /// Pieces audited.
    pub audited: usize,
    /// Pieces rebuilt and stored on a new holder.
    pub rebuilt: Vec<RepairedPiece>,
    /// Blocks with fewer than `k` healthy pieces: beyond repair.
    pub lost_blocks: Vec<u32>,
    /// Pieces (or whole blocks, shard `None`) that could not be repaired, and why.
    pub failed: Vec<(u32, Option<u8>, String)>,
    /// Shard bytes fetched from healthy holders, and piece bytes stored on new ones.
    pub bytes_fetched: u64,
    pub bytes_stored: u64,
    /// The placement record in force after the repair.
    pub placement_seq: u64,
    pub elapsed_ms: u64,
}

/// `POST /v1/revoke/{id}` → 200: what revoking one of this node's uploads did
/// (`kairos revoke`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevokeReport {
    pub id: FileId,
    /// Pieces of the file, holders that deleted theirs, holders that no longer had them.
    pub pieces: usize,
    pub deleted: usize,
    pub already_gone: usize,
    /// Holders that could not be asked or refused (their pieces expire with their retention).
    pub failed: Vec<String>,
}

/// One piece a repair rebuilt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepairedPiece {
    pub block: u32,
    pub shard: u8,
    /// What the audit found about the old copy.
    pub was: String,
    /// The new holder's key.
    pub holder: String,
}

/// One block in a [`CheckReport`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockHealth {
    pub block: u32,
    /// The holder (key) of each piece, in shard order, as the placement names them.
    #[serde(default)]
    pub holders: Vec<String>,
    /// Pieces whose holder proved it holds them (an audit of random chunks).
    pub held: usize,
    /// Pieces whose holder says it does not (deleted, lost): `(shard, holder key)`.
    pub missing: Vec<(u8, String)>,
    /// Pieces whose holder answered the audit with a bad proof (a partial or damaged copy):
    /// `(shard, holder key, why)`.
    #[serde(default)]
    pub corrupt: Vec<(u8, String, String)>,
    /// Pieces whose holder could not be asked: `(shard, holder key, why)`.
    pub unreachable: Vec<(u8, String, String)>,
}

/// A piece a peer served that did not match the manifest (or could not be used).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BadPiece {
    pub block: u32,
    pub shard: u8,
    /// The peer's key (text form) and address as listed in the manifest.
    pub peer: String,
    pub addr: String,
    pub reason: String,
}

/// The terminal event of a successful get.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GetResult {
    pub id: FileId,
    /// Where the file was written (`-` for standard output): filled in by the CLI, which
    /// writes it; empty in the daemon's event.
    #[serde(default)]
    pub path: PathBuf,
    /// The file name sealed with the file.
    pub name: String,
    pub size: u64,
    /// BLAKE3 of the file, hex (checked against the hash sealed with it).
    pub blake3: String,
    pub blocks: u32,
    /// Pieces that failed their hash check, naming the peers that served them.
    pub bad_pieces: Vec<BadPiece>,
    /// Peers that could not be reached or refused (`addr: reason`), deduplicated.
    pub unreachable: Vec<String>,
    /// Piece bytes fetched from holders, spare fetches included: the get's bytes on the wire
    /// (about the file size plus the coding's overhead per piece; more when slow holders were
    /// raced).
    #[serde(default)]
    pub fetched_bytes: u64,
    pub elapsed_ms: u64,
}

/// A typed failure: `error` is a stable code (`locked`, `not_enough_nodes`, `not_found`,
/// `not_enough_pieces`, `release_in_past`, `release_too_far`, `bad_input`, `bad_output`,
/// `directory_unreachable`, `upload_failed`, `integrity`, `internal`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorEvent {
    pub error: String,
    pub message: String,
    /// For `locked`: the release time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<u64>,
    /// For `not_enough_nodes`: nodes needed and nodes known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<usize>,
}

/// One line of a put/get stream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A narration line for people.
    Info {
        message: String,
    },
    /// Bytes of the sealed stream (file plus a few bytes of framing) done so far.
    Progress {
        done: u64,
        total: u64,
    },
    /// Something went wrong and was worked around (a retry on another node, a peer down).
    Warning {
        message: String,
    },
    /// A peer served a piece that failed its hash check.
    BadPiece(BadPiece),
    /// (get) The file name sealed with the file, raw (sanitise before use as a path); sent
    /// once the first block is open, before any `data`.
    File {
        name: String,
    },
    /// (get) File bytes, base64, in order; every byte is from a block that passed its AEAD
    /// check. Whether the whole file verified is said by the terminal event.
    Data {
        b64: String,
    },
    PutResult(PutResult),
    GetResult(GetResult),
    Error(ErrorEvent),
}

impl Event {
    /// Whether this event ends the stream.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::PutResult(_) | Event::GetResult(_) | Event::Error(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_shapes() {
        let e = Event::Progress { done: 1, total: 2 };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"progress","done":1,"total":2}"#
        );
        let e = Event::Error(ErrorEvent {
            error: "locked".into(),
            message: "m".into(),
            locked_until: Some(5),
            needed: None,
            known: None,
        });
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"event":"error","error":"locked","message":"m","locked_until":5}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }
}

/// `POST /v1/commit/{id}` (peer API) → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommitResponse {
    /// Pieces of the file the placement puts on the node.
    pub held: u64,
    /// Of those, how many were pending until now.
    pub committed: u64,
}
