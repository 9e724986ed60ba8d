//! Admission rules: what the directory accepts, from clients and from siblings.
//!
//! Signatures and structure are checked by `kairos-proto` decoders before anything here runs;
//! this module adds the directory's policy, decided with the directory's own clock:
//!
//! * a node record's address must be bound to its key (an `.onion` address derived from the
//!   key; loopback only on development networks);
//! * a record sent by a node must be signed within `max_skew` of now; a record relayed by a
//!   sibling only has to be unexpired (`timestamp + ttl > now`) and not from the future;
//! * a manifest published by a client must not have a release time more than `max_skew` in the
//!   past; a relayed one only has to be unexpired (`release + retention > now`).

use crate::config::DirectoryConfig;
use axum::http::StatusCode;
use kairos_net::ApiError;
use kairos_proto::addr::{self, AddrKind};
use kairos_proto::{ManifestError, RecordError, SignedManifest, SignedNodeRecord};

/// The clock and settings every decision here depends on.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub now: u64,
    pub skew: u64,
    pub node_ttl: u64,
    pub retention: u64,
    pub allow_loopback: bool,
}

impl Policy {
    /// The policy of a directory configured by `cfg` whose clock reads `now`.
    pub fn new(cfg: &DirectoryConfig, now: u64) -> Self {
        Policy {
            now,
            skew: cfg.skew_secs(),
            node_ttl: cfg.node_ttl.as_secs(),
            retention: cfg.manifest_retention.as_secs(),
            allow_loopback: cfg.allow_loopback_nodes,
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
pub fn admit_manifest(m: &SignedManifest, p: &Policy) -> Result<u64, ApiError> {
    let release = m.manifest().release;
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
    Ok(release.saturating_add(p.retention))
}

/// A manifest relayed by a sibling. Returns its expiry time, or why it is skipped.
pub fn admit_relayed_manifest(m: &SignedManifest, p: &Policy) -> Result<u64, String> {
    let expires = m.manifest().release.saturating_add(p.retention);
    if expires <= p.now {
        return Err("manifest is past its retention".into());
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
            allow_loopback,
        }
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
}
