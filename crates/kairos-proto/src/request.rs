//! Signed HTTP requests: proof that a request body came from the holder of a key, recently, and
//! only once.
//!
//! The signature covers `"kairos request v1\0" ‖ method ‖ "\0" ‖ path-and-query ‖ "\0" ‖
//! timestamp (u64 LE) ‖ nonce (16) ‖ BLAKE3(body)`, so it cannot be moved to another route,
//! another body or another time. It travels in four headers ([`HEADER_KEY`] …). Receivers check
//! the timestamp against their own clock ([`RequestAuth::verify`]) and remember nonces for the
//! skew window ([`ReplayGuard`]) so a captured request cannot be replayed.

use crate::identity::{Identity, PublicKey};
use crate::text;
use rand::RngCore;
use std::collections::{HashMap, VecDeque};
use thiserror::Error;

pub const HEADER_KEY: &str = "x-kairos-key";
pub const HEADER_TIME: &str = "x-kairos-time";
pub const HEADER_NONCE: &str = "x-kairos-nonce";
pub const HEADER_SIGNATURE: &str = "x-kairos-signature";
const CONTEXT: &[u8] = b"kairos request v1\0";
/// Default accepted clock difference between signer and receiver, seconds.
pub const DEFAULT_MAX_SKEW: u64 = 300;

/// Why a signed request was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("missing or malformed header {0}")]
    Header(&'static str),
    #[error("request timestamp {timestamp} is more than {max_skew} s away from this server's clock ({now}); check the sender's clock")]
    Stale {
        timestamp: u64,
        now: u64,
        max_skew: u64,
    },
    #[error("request signature does not verify")]
    BadSignature,
    #[error("request replayed: this nonce was already used")]
    Replay,
    #[error("too many recent requests to remember; try again shortly")]
    Busy,
}

/// The authentication part of a signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuth {
    pub key: PublicKey,
    pub timestamp: u64,
    pub nonce: [u8; 16],
    pub signature: [u8; 64],
}

fn message(
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &[u8; 16],
    body_hash: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + method.len() + path.len() + 64);
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(method.as_bytes());
    m.push(0);
    m.extend_from_slice(path.as_bytes());
    m.push(0);
    m.extend_from_slice(&timestamp.to_le_bytes());
    m.extend_from_slice(nonce);
    m.extend_from_slice(body_hash);
    m
}

/// BLAKE3 of a request body, as signed.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    *blake3::hash(body).as_bytes()
}

impl RequestAuth {
    /// Signs `method path` with the given body hash at time `now`, with a fresh nonce.
    pub fn sign(
        identity: &Identity,
        method: &str,
        path: &str,
        body_hash: &[u8; 32],
        now: u64,
    ) -> Self {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let signature = identity.sign(&message(method, path, now, &nonce, body_hash));
        RequestAuth {
            key: identity.public(),
            timestamp: now,
            nonce,
            signature,
        }
    }

    /// The four header name/value pairs.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_KEY, self.key.to_text()),
            (HEADER_TIME, self.timestamp.to_string()),
            (HEADER_NONCE, text::encode(&self.nonce)),
            (HEADER_SIGNATURE, text::encode(&self.signature)),
        ]
    }

    /// Parses the headers; `get` returns a header's value by (lower-case) name.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, RequestError> {
        let key = get(HEADER_KEY)
            .and_then(|v| PublicKey::from_text(v).ok())
            .ok_or(RequestError::Header(HEADER_KEY))?;
        let timestamp = get(HEADER_TIME)
            .and_then(|v| v.parse().ok())
            .ok_or(RequestError::Header(HEADER_TIME))?;
        let nonce = get(HEADER_NONCE)
            .and_then(|v| text::decode::<16>(v).ok())
            .ok_or(RequestError::Header(HEADER_NONCE))?;
        let signature = get(HEADER_SIGNATURE)
            .and_then(|v| text::decode::<64>(v).ok())
            .ok_or(RequestError::Header(HEADER_SIGNATURE))?;
        Ok(RequestAuth {
            key,
            timestamp,
            nonce,
            signature,
        })
    }

    /// Checks freshness against `now` and the signature. Does not check replays: pass the
    /// result through a [`ReplayGuard`].
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        body_hash: &[u8; 32],
        now: u64,
        max_skew: u64,
    ) -> Result<(), RequestError> {
        if self.timestamp.abs_diff(now) > max_skew {
            return Err(RequestError::Stale {
                timestamp: self.timestamp,
                now,
                max_skew,
            });
        }
        self.key
            .verify(
                &message(method, path, self.timestamp, &self.nonce, body_hash),
                &self.signature,
            )
            .map_err(|_| RequestError::BadSignature)
    }
}

/// Remembers `(key, nonce)` pairs of accepted requests until their timestamp leaves the skew
/// window (after which [`RequestAuth::verify`] refuses them anyway).
///
/// Memory is bounded by `capacity`: when full of unexpired entries, new requests are refused
/// with [`RequestError::Busy`] rather than forgetting a nonce that could then be replayed.
pub struct ReplayGuard {
    max_skew: u64,
    capacity: usize,
    seen: HashMap<(PublicKey, [u8; 16]), u64>,
    order: VecDeque<(u64, PublicKey, [u8; 16])>,
}

impl ReplayGuard {
    pub fn new(max_skew: u64, capacity: usize) -> Self {
        ReplayGuard {
            max_skew,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records the request's nonce; refuses it if seen before.
    pub fn check(&mut self, auth: &RequestAuth, now: u64) -> Result<(), RequestError> {
        while let Some(&(expiry, key, nonce)) = self.order.front() {
            if expiry >= now {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&(key, nonce)) == Some(&expiry) {
                self.seen.remove(&(key, nonce));
            }
        }
        let slot = (auth.key, auth.nonce);
        if self.seen.contains_key(&slot) {
            return Err(RequestError::Replay);
        }
        if self.seen.len() >= self.capacity {
            return Err(RequestError::Busy);
        }
        // Keep `order` sorted by expiry so eviction stops at the first live entry; an entry that
        // arrives out of order is simply kept a little longer.
        let floor = self.order.back().map_or(0, |e| e.0);
        let expiry = auth.timestamp.saturating_add(self.max_skew).max(floor);
        self.seen.insert(slot, expiry);
        self.order.push_back((expiry, auth.key, auth.nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_replay() {
        let id = Identity::generate();
        let h = body_hash(b"body");
        let auth = RequestAuth::sign(&id, "PUT", "/v1/shards/x", &h, 1000);
        let hdrs = auth.headers();
        let parsed = RequestAuth::from_headers(|n| {
            hdrs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(parsed, auth);
        parsed.verify("PUT", "/v1/shards/x", &h, 1010, 300).unwrap();
        assert_eq!(
            parsed.verify("GET", "/v1/shards/x", &h, 1010, 300),
            Err(RequestError::BadSignature)
        );
        assert_eq!(
            parsed.verify("PUT", "/v1/shards/y", &h, 1010, 300),
            Err(RequestError::BadSignature)
        );
        assert_eq!(
            parsed.verify("PUT", "/v1/shards/x", &body_hash(b"other"), 1010, 300),
            Err(RequestError::BadSignature)
        );
        assert!(matches!(
            parsed.verify("PUT", "/v1/shards/x", &h, 2000, 300),
            Err(RequestError::Stale { .. })
        ));

        let mut guard = ReplayGuard::new(300, 2);
        guard.check(&auth, 1010).unwrap();
        assert_eq!(guard.check(&auth, 1011), Err(RequestError::Replay));
        let a2 = RequestAuth::sign(&id, "PUT", "/", &h, 1000);
        guard.check(&a2, 1011).unwrap();
        let a3 = RequestAuth::sign(&id, "PUT", "/", &h, 1000);
        assert_eq!(guard.check(&a3, 1012), Err(RequestError::Busy));
        // After the window the old entries are forgotten (and verify() refuses them as stale).
        guard.check(&a3, 1400).unwrap();
    }

    #[test]
    fn missing_headers_are_named() {
        assert_eq!(
            RequestAuth::from_headers(|_| None),
            Err(RequestError::Header(HEADER_KEY))
        );
    }
}
