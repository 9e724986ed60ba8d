//! Which piece stores a node admits: pure checks from the request's facts, the node's clock
//! and its limits to "accept" or a precise refusal — no I/O, so each rule is unit-tested.
//!
//! Invariants: every check runs before anything is written ([`crate::peer_api`] calls them in
//! that order); a release time up to the signing skew in the past is still accepted, so an
//! upload that straddles its release is not refused half way; arithmetic saturates, so no
//! value a peer sends (0, `u64::MAX`) can overflow.

use crate::piece::{HEADER_LEN, MAX_BODY_LEN};
use axum::http::StatusCode;
use kairos_net::ApiError;

/// Free disk space kept in reserve beyond a piece (redb grows its file in steps).
pub const DISK_MARGIN: u64 = 64 << 20;

/// The node's side of an admission decision.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub now: u64,
    /// Accepted clock skew of signed requests, seconds.
    pub skew: u64,
    /// Furthest release time ahead accepted, seconds.
    pub max_release: u64,
    pub quota: u64,
    /// Piece bytes held now.
    pub used: u64,
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("a piece body is at most {limit} bytes"),
    )
}

fn storage_full(code: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::INSUFFICIENT_STORAGE, code, message)
}

pub fn quota_full(used: u64, quota: u64) -> ApiError {
    storage_full(
        "quota_full",
        format!("this node's quota is full ({used} of {quota} bytes used); try another node"),
    )
}

/// Before the body is read: its declared length must fit a piece and the quota.
pub fn check_declared(declared: Option<u64>, l: &Limits) -> Result<(), ApiError> {
    let Some(n) = declared else {
        return Ok(());
    };
    if n > MAX_BODY_LEN as u64 {
        return Err(too_large(MAX_BODY_LEN));
    }
    if l.used.saturating_add(n) > l.quota.saturating_add(HEADER_LEN as u64) {
        return Err(quota_full(l.used, l.quota));
    }
    Ok(())
}

/// The release time must be ahead (within the skew) and not further than `max_release`.
pub fn check_release(release: u64, l: &Limits) -> Result<(), ApiError> {
    if release.saturating_add(l.skew) < l.now {
        return Err(ApiError::bad_request(
            "release_in_past",
            format!(
                "release time {} is in the past (node clock {}); choose a future release time",
                kairos_proto::time::rfc3339(release),
                kairos_proto::time::rfc3339(l.now)
            ),
        ));
    }
    let max = l.now.saturating_add(l.max_release);
    if release > max {
        return Err(ApiError::bad_request(
            "release_too_far",
            format!(
                "release time {} is further ahead than this node accepts (at most {})",
                kairos_proto::time::rfc3339(release),
                kairos_proto::time::rfc3339(max)
            ),
        ));
    }
    Ok(())
}

/// A piece of `len` bytes needs twice that free (redb copies on write) plus the margin.
pub fn check_disk(len: u64, free: Option<u64>) -> Result<(), ApiError> {
    match free {
        Some(free) if free < len.saturating_mul(2).saturating_add(DISK_MARGIN) => {
            Err(storage_full(
                "disk_full",
                format!("this node's disk is full ({free} bytes free); try another node"),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        now: 1_000_000,
        skew: 300,
        max_release: 86_400,
        quota: 10 << 20,
        used: 0,
    };

    fn code(r: Result<(), ApiError>) -> Option<(StatusCode, String)> {
        r.err().map(|e| (e.status, e.body.error))
    }

    #[test]
    fn declared_length_against_size_and_quota() {
        assert!(check_declared(None, &L).is_ok());
        assert!(check_declared(Some(1 << 20), &L).is_ok());
        assert_eq!(
            code(check_declared(Some(u64::MAX), &L)),
            Some((StatusCode::PAYLOAD_TOO_LARGE, "too_large".into()))
        );
        let full = Limits { used: L.quota, ..L };
        assert_eq!(
            code(check_declared(Some(1 << 20), &full)),
            Some((StatusCode::INSUFFICIENT_STORAGE, "quota_full".into()))
        );
    }

    #[test]
    fn release_window_with_skew_and_no_overflow() {
        assert!(check_release(L.now + 10, &L).is_ok());
        assert!(check_release(L.now - L.skew, &L).is_ok());
        assert_eq!(
            code(check_release(L.now - L.skew - 1, &L)).map(|c| c.1),
            Some("release_in_past".into())
        );
        assert!(check_release(L.now + L.max_release, &L).is_ok());
        assert_eq!(
            code(check_release(u64::MAX, &L)).map(|c| c.1),
            Some("release_too_far".into())
        );
        assert_eq!(
            code(check_release(0, &L)).map(|c| c.1),
            Some("release_in_past".into())
        );
    }

    #[test]
    fn disk_needs_twice_the_piece_plus_margin() {
        assert!(check_disk(1 << 20, None).is_ok());
        assert!(check_disk(1 << 20, Some((2 << 20) + DISK_MARGIN)).is_ok());
        assert_eq!(
            code(check_disk(1 << 20, Some(DISK_MARGIN))).map(|c| c.1),
            Some("disk_full".into())
        );
        assert!(check_disk(u64::MAX, Some(1 << 40)).is_err());
    }
}
