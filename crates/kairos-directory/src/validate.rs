//! Admission rules: what the directory accepts, from clients and from siblings.
//!
//! Signatures and structure are checked by `kairos-proto` decoders before anything here runs;
//! this module adds the directory's policy, decided with the directory's own clock:
//!
//! * a node record's address must be bound to its key (an `.onion` address derived from the
//!   key; loopback only on development networks);
//! * a record sent by a node must be signed within `max_skew` of now; a record relayed by a
//!   sibling only has to be unexpired (`timestamp + ttl > now`) and not from the future;
//! * a record is stored only if it is newer than the one held for its key, and a key not held
//!   yet only while there is room under `max_nodes`;
//! * a manifest's bytes must hash to the id they are published under; one published by a
//!   client must not have a release time more than `max_skew` in the past; a relayed one only
//!   has to be unexpired (`release + retention > now`); neither may release more than
//!   `manifest_max_release` from now (and never past 9999-12-31).
//! * a manifest may be of version 1 or 2 (`AnyManifest`); its uploader is its signer (the
//!   per-file key for v2). A placement record must be signed by the uploader key of the stored
//!   v2 manifest it names and fit it (`SignedPlacement::verify`); newest seq wins (writer);
//! * the manifests stored never exceed `limits.manifest_store_bytes` in all (checked by the
//!   writer inside the transaction that would go over it).
//!
//! Invariant: everything here is a pure function of (input, [`Policy`]) — the policy carries
//! `now` and the settings — so the routes and the federation puller decide alike, and each
//! rule is tested without a server. The callers fetch what a rule needs (the timestamp held for
//! a key, the number of nodes held) and pass it in.

use crate::config::DirectoryConfig;
use axum::http::StatusCode;
use kairos_net::ApiError;
use kairos_proto::addr::{self, AddrKind};
use kairos_proto::{
    AnyManifest, FileId, ManifestError, PlacementError, RecordError, SignedNodeRecord,
};

/// The clock and settings every decision here depends on.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub now: u64,
    pub skew: u64,
    pub node_ttl: u64,
    pub retention: u64,
    /// Latest release accepted, seconds from now.
    pub max_release: u64,
    pub allow_loopback: bool,
    /// Most node records held.
    pub max_nodes: usize,
    /// Most manifest bytes held in all.
    pub manifest_quota: u64,
}

impl Policy {
    /// The policy of a directory configured by `cfg` whose clock reads `now`.
    pub fn new(cfg: &DirectoryConfig, now: u64) -> Self {
        Policy {
            now,
            skew: cfg.skew_secs(),
            node_ttl: cfg.node_ttl.as_secs(),
            retention: cfg.manifest_retention.as_secs(),
            max_release: cfg.manifest_max_release.as_secs(),
            allow_loopback: cfg.allow_loopback_nodes,
            max_nodes: cfg.limits.max_nodes,
            manifest_quota: cfg.limits.manifest_store_bytes,
        }
    }
}

/// Maps a record decoding failure to its HTTP error.
pub fn record_error(e: RecordError) -> ApiError {
    match e {
        RecordError::BadSignature => ApiError::bad_request("bad_record_signature", e.to_string()),
        RecordError::Decode(_) | RecordError::Addr(_) => {
            ApiError::bad_request("malformed_record", e.to_string())
        }
    }
}

/// Maps a manifest decoding/verification failure to its HTTP error.
pub fn manifest_error(e: ManifestError) -> ApiError {
    match e {
        ManifestError::TooLarge(_) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        ManifestError::WrongId { .. } => ApiError::bad_request("wrong_id", e.to_string()),
        ManifestError::BadSignature => {
            ApiError::bad_request("bad_manifest_signature", e.to_string())
        }
        ManifestError::Decode(_) | ManifestError::Params(_) | ManifestError::Inconsistent(_) => {
            ApiError::bad_request("malformed_manifest", e.to_string())
        }
    }
}

/// Maps a placement decoding/verification failure to its HTTP error.
pub fn placement_error(e: PlacementError) -> ApiError {
    match e {
        PlacementError::TooLarge(_) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        PlacementError::BadSignature => {
            ApiError::bad_request("bad_placement_signature", e.to_string())
        }
        PlacementError::Mismatch(_) => ApiError::bad_request("placement_mismatch", e.to_string()),
        PlacementError::Decode(_) | PlacementError::Inconsistent(_) => {
            ApiError::bad_request("malformed_placement", e.to_string())
        }
    }
}

fn binding(rec: &SignedNodeRecord, p: &Policy) -> Result<(), String> {
    if rec.address_is_bound(p.allow_loopback) {
        return Ok(());
    }
    Err(match addr::kind(&rec.record().addr) {
        AddrKind::Onion(_) => "the record's onion address is derived from another key; a node can only register the onion address of its own key".into(),
        AddrKind::Loopback => "loopback addresses are accepted only by development directories; register the node's onion address".into(),
        AddrKind::Other => format!(
            "address {:?} is not an onion address derived from the node key{}",
            rec.record().addr,
            if p.allow_loopback { " nor a loopback address" } else { "" }
        ),
    })
}

/// A record a node sent directly. Returns its expiry time.
pub fn admit_record(rec: &SignedNodeRecord, p: &Policy) -> Result<u64, ApiError> {
    binding(rec, p).map_err(|m| ApiError::new(StatusCode::FORBIDDEN, "address_not_bound", m))?;
    let ts = rec.record().timestamp;
    if ts.abs_diff(p.now) > p.skew {
        return Err(ApiError::bad_request(
            "clock_skew",
            format!(
                "record timestamp {} is more than {} s away from this directory's clock ({}); sign a fresh record and check the node's clock",
                kairos_proto::time::rfc3339(ts),
                p.skew,
                kairos_proto::time::rfc3339(p.now)
            ),
        ));
    }
    let expires = ts.saturating_add(p.node_ttl);
    if expires <= p.now {
        return Err(ApiError::bad_request(
            "expired",
            format!(
                "record expired at {}; sign a fresh record",
                kairos_proto::time::rfc3339(expires)
            ),
        ));
    }
    Ok(expires)
}

/// A record for a key whose newest accepted record (if any) was signed at `held`: it must be
/// strictly newer, so an old record cannot be replayed.
pub fn admit_newer(held: Option<u64>, ts: u64) -> Result<(), ApiError> {
    match held {
        Some(have) if have >= ts => Err(not_newer(have, ts)),
        _ => Ok(()),
    }
}

/// The refusal of a record not newer than the one accepted at `have`.
pub fn not_newer(have: u64, ts: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "replay",
        format!(
            "this directory already accepted a record of this node signed at {}, not older than this one ({}); sign a fresh record",
            kairos_proto::time::rfc3339(have),
            kairos_proto::time::rfc3339(ts)
        ),
    )
}

/// How many new keys fit while `held` node records are held.
pub fn room(held: usize, p: &Policy) -> usize {
    p.max_nodes.saturating_sub(held)
}

/// A record for a key already `known` always fits; a new key needs [`room`].
pub fn admit_room(known: bool, held: usize, p: &Policy) -> Result<(), ApiError> {
    if known || room(held, p) > 0 {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "full",
        "this directory holds as many nodes as it is configured for; try another directory",
    ))
}

/// A published body must be the manifest of `id`: its hash is the file id.
pub fn admit_id(bytes: &[u8], id: &FileId) -> Result<(), ApiError> {
    id.check(bytes).map_err(manifest_error)
}

/// A record relayed by a sibling. Returns its expiry time, or why it is skipped.
pub fn admit_relayed_record(rec: &SignedNodeRecord, p: &Policy) -> Result<u64, String> {
    binding(rec, p)?;
    let ts = rec.record().timestamp;
    if ts > p.now.saturating_add(p.skew) {
        return Err(format!("record timestamp {ts} is in the future"));
    }
    let expires = ts.saturating_add(p.node_ttl);
    if expires <= p.now {
        return Err("record has expired".into());
    }
    Ok(expires)
}

/// A manifest a client published. Returns its expiry time.
pub fn admit_manifest(m: &AnyManifest, p: &Policy) -> Result<u64, ApiError> {
    admit_release(m.release(), p)
}

/// The release window of a published manifest: not in the past (beyond the skew), not
/// beyond `max_release` from now nor the year 9999. Returns the expiry time.
pub fn admit_release(release: u64, p: &Policy) -> Result<u64, ApiError> {
    if release.saturating_add(p.skew) < p.now {
        return Err(ApiError::bad_request(
            "release_in_past",
            format!(
                "release time {} is in the past (directory clock {}); choose a future release time",
                kairos_proto::time::rfc3339(release),
                kairos_proto::time::rfc3339(p.now)
            ),
        ));
    }
    let max = latest_release(p);
    if release > max {
        return Err(ApiError::bad_request(
            "release_too_far",
            format!(
                "release time {} is later than this directory accepts ({}, {} days from now); choose an earlier release time",
                kairos_proto::time::rfc3339(release),
                kairos_proto::time::rfc3339(max),
                p.max_release / 86_400
            ),
        ));
    }
    Ok(release.saturating_add(p.retention))
}

fn latest_release(p: &Policy) -> u64 {
    p.now
        .saturating_add(p.max_release)
        .min(kairos_proto::time::MAX_RFC3339)
}

/// A manifest relayed by a sibling. Returns its expiry time, or why it is skipped.
pub fn admit_relayed_manifest(m: &AnyManifest, p: &Policy) -> Result<u64, String> {
    let release = m.release();
    let expires = release.saturating_add(p.retention);
    if expires <= p.now {
        return Err("manifest is past its retention".into());
    }
    if release > latest_release(p) {
        return Err("manifest releases later than this directory accepts".into());
    }
    Ok(expires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_proto::{Identity, NodeRecord};

    fn policy(allow_loopback: bool) -> Policy {
        Policy {
            now: 1_000_000,
            skew: 300,
            node_ttl: 60,
            retention: 100,
            max_release: 1000,
            allow_loopback,
            max_nodes: 2,
            manifest_quota: 1 << 20,
        }
    }

    #[test]
    fn release_window() {
        let p = policy(false);
        let code = |r| admit_release(r, &p).unwrap_err().body.error;
        assert_eq!(admit_release(p.now, &p).unwrap(), p.now + 100);
        assert_eq!(admit_release(p.now - 300, &p).unwrap(), p.now - 200);
        assert_eq!(code(p.now - 301), "release_in_past");
        assert!(admit_release(p.now + 1000, &p).is_ok());
        assert_eq!(code(p.now + 1001), "release_too_far");
        assert_eq!(code(u64::MAX), "release_too_far");
        let mut far = p;
        far.max_release = u64::MAX;
        assert!(admit_release(kairos_proto::time::MAX_RFC3339, &far).is_ok());
        assert_eq!(
            admit_release(kairos_proto::time::MAX_RFC3339 + 1, &far)
                .unwrap_err()
                .body
                .error,
            "release_too_far"
        );
    }

    #[test]
    fn record_rules() {
        let id = Identity::generate();
        let other = Identity::generate();
        let p = policy(false);
        let own = format!("{}:80", id.public().onion_address());
        let rec = |addr: &str, ts| NodeRecord::new(&id, addr.into(), 0, ts).sign(&id).unwrap();
        assert_eq!(admit_record(&rec(&own, p.now), &p).unwrap(), p.now + 60);
        let stolen = format!("{}:80", other.public().onion_address());
        assert_eq!(
            admit_record(&rec(&stolen, p.now), &p)
                .unwrap_err()
                .body
                .error,
            "address_not_bound"
        );
        assert_eq!(
            admit_record(&rec("127.0.0.1:5", p.now), &p)
                .unwrap_err()
                .body
                .error,
            "address_not_bound"
        );
        assert!(admit_record(&rec("127.0.0.1:5", p.now), &policy(true)).is_ok());
        assert_eq!(
            admit_record(&rec(&own, p.now - 301), &p)
                .unwrap_err()
                .body
                .error,
            "clock_skew"
        );
        assert_eq!(
            admit_record(&rec(&own, p.now + 301), &p)
                .unwrap_err()
                .body
                .error,
            "clock_skew"
        );
        // Within skew but past its TTL.
        assert_eq!(
            admit_record(&rec(&own, p.now - 100), &p)
                .unwrap_err()
                .body
                .error,
            "expired"
        );
        // Relayed: old-but-live is fine, expired and future are not.
        assert!(admit_relayed_record(&rec(&own, p.now - 30), &p).is_ok());
        assert!(admit_relayed_record(&rec(&own, p.now - 60), &p).is_err());
        assert!(admit_relayed_record(&rec(&own, p.now + 301), &p).is_err());
        assert!(admit_relayed_record(&rec(&stolen, p.now), &p).is_err());
    }

    #[test]
    fn newness_room_and_id_rules() {
        let p = policy(false);
        assert!(admit_newer(None, 5).is_ok());
        assert!(admit_newer(Some(4), 5).is_ok());
        for held in [5, 6] {
            assert_eq!(admit_newer(Some(held), 5).unwrap_err().body.error, "replay");
        }
        assert!(admit_room(false, 1, &p).is_ok());
        assert!(admit_room(true, 2, &p).is_ok());
        assert_eq!(admit_room(false, 2, &p).unwrap_err().body.error, "full");
        assert_eq!(room(5, &p), 0);
        let id = FileId::of(b"manifest");
        assert!(admit_id(b"manifest", &id).is_ok());
        assert_eq!(admit_id(b"other", &id).unwrap_err().body.error, "wrong_id");
    }
}
