//! Signed HTTP requests: proof that a request body came from the holder of a key, recently, for
//! one recipient, and only once.
//!
//! The signature covers `"kairos request v2\0" ‖ recipient key (32) ‖ method ‖ "\0" ‖
//! path-and-query ‖ "\0" ‖ timestamp (u64 LE) ‖ nonce (16) ‖ BLAKE3(body)`, so it cannot be moved
//! to another server, another route, another body or another time. It travels in five headers
//! ([`HEADER_KEY`] …). Receivers check the recipient is their own key and the timestamp against
//! their own clock ([`RequestAuth::verify`]: at most [`MAX_FUTURE_SKEW`] ahead and `max_skew`
//! behind), and remember nonces of *accepted* requests ([`ReplayGuard`]) so a captured request
//! cannot be replayed.
//!
//! Invariant of the guard: memory is bounded per signing key and entries live at most
//! `max_skew + MAX_FUTURE_SKEW`; one key that sends many requests fills only its own quota and
//! never makes another key's requests fail.

use crate::identity::{Identity, PublicKey};
use crate::text;
use rand::RngCore;
use std::collections::{HashMap, VecDeque};
use thiserror::Error;

pub const HEADER_KEY: &str = "x-kairos-key";
pub const HEADER_RECIPIENT: &str = "x-kairos-recipient";
pub const HEADER_TIME: &str = "x-kairos-time";
pub const HEADER_NONCE: &str = "x-kairos-nonce";
pub const HEADER_SIGNATURE: &str = "x-kairos-signature";
const CONTEXT: &[u8] = b"kairos request v2\0";
/// Default accepted age of a request (the signer's clock behind the receiver's), seconds.
pub const DEFAULT_MAX_SKEW: u64 = 300;
/// Most a request's timestamp may be ahead of the receiver's clock, seconds. Kept small so that
/// a remembered nonce never has to outlive the skew window by much.
pub const MAX_FUTURE_SKEW: u64 = 30;
/// Default number of nonces remembered per signing key (see [`ReplayGuard`]).
pub const DEFAULT_NONCES_PER_KEY: usize = 4096;

/// Why a signed request was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("missing or malformed header {0}")]
    Header(&'static str),
    #[error("request timestamp {timestamp} is outside the accepted window of this server's clock ({now}: at most {MAX_FUTURE_SKEW} s ahead, {max_skew} s behind); check the sender's clock")]
    Stale {
        timestamp: u64,
        now: u64,
        max_skew: u64,
    },
    #[error("request was signed for another recipient ({0}), not this server")]
    WrongRecipient(PublicKey),
    #[error("request signature does not verify")]
    BadSignature,
    #[error("request replayed: this nonce was already used")]
    Replay,
    #[error("too many recent requests from this key; try again shortly")]
    Busy,
}

/// The authentication part of a signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuth {
    pub key: PublicKey,
    pub recipient: PublicKey,
    pub timestamp: u64,
    pub nonce: [u8; 16],
    pub signature: [u8; 64],
}

/// What a request signature covers, apart from the signer's key.
struct Signed<'a> {
    recipient: &'a PublicKey,
    method: &'a str,
    path: &'a str,
    body_hash: &'a [u8; 32],
}

impl Signed<'_> {
    fn message(&self, timestamp: u64, nonce: &[u8; 16]) -> Vec<u8> {
        let mut m = Vec::with_capacity(CONTEXT.len() + self.method.len() + self.path.len() + 96);
        m.extend_from_slice(CONTEXT);
        m.extend_from_slice(&self.recipient.0);
        m.extend_from_slice(self.method.as_bytes());
        m.push(0);
        m.extend_from_slice(self.path.as_bytes());
        m.push(0);
        m.extend_from_slice(&timestamp.to_le_bytes());
        m.extend_from_slice(nonce);
        m.extend_from_slice(self.body_hash);
        m
    }
}

/// BLAKE3 of a request body, as signed.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    *blake3::hash(body).as_bytes()
}

impl RequestAuth {
    /// Signs `method path` with the given body hash at time `now` for `recipient`, with a fresh
    /// nonce.
    pub fn sign(
        identity: &Identity,
        recipient: &PublicKey,
        method: &str,
        path: &str,
        body_hash: &[u8; 32],
        now: u64,
    ) -> Self {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let signed = Signed {
            recipient,
            method,
            path,
            body_hash,
        };
        let signature = identity.sign(&signed.message(now, &nonce));
        RequestAuth {
            key: identity.public(),
            recipient: *recipient,
            timestamp: now,
            nonce,
            signature,
        }
    }

    /// The five header name/value pairs.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_KEY, self.key.to_text()),
            (HEADER_RECIPIENT, self.recipient.to_text()),
            (HEADER_TIME, self.timestamp.to_string()),
            (HEADER_NONCE, text::encode(&self.nonce)),
            (HEADER_SIGNATURE, text::encode(&self.signature)),
        ]
    }

    /// Parses the headers; `get` returns a header's value by (lower-case) name.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, RequestError> {
        let key_of = |name: &'static str| {
            get(name)
                .and_then(|v| PublicKey::from_text(v).ok())
                .ok_or(RequestError::Header(name))
        };
        let key = key_of(HEADER_KEY)?;
        let recipient = key_of(HEADER_RECIPIENT)?;
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
            recipient,
            timestamp,
            nonce,
            signature,
        })
    }

    /// Checks that the request names `me` as its recipient, its freshness against `now` (at
    /// most [`MAX_FUTURE_SKEW`] ahead, `max_skew` behind) and the signature. Does not check
    /// replays: pass the result through a [`ReplayGuard`].
    pub fn verify(
        &self,
        me: &PublicKey,
        method: &str,
        path: &str,
        body_hash: &[u8; 32],
        now: u64,
        max_skew: u64,
    ) -> Result<(), RequestError> {
        if self.recipient != *me {
            return Err(RequestError::WrongRecipient(self.recipient));
        }
        let ahead = self.timestamp.saturating_sub(now);
        let behind = now.saturating_sub(self.timestamp);
        if ahead > MAX_FUTURE_SKEW.min(max_skew) || behind > max_skew {
            return Err(RequestError::Stale {
                timestamp: self.timestamp,
                now,
                max_skew,
            });
        }
        let signed = Signed {
            recipient: me,
            method,
            path,
            body_hash,
        };
        self.key
            .verify(
                &signed.message(self.timestamp, &self.nonce),
                &self.signature,
            )
            .map_err(|_| RequestError::BadSignature)
    }
}

/// Remembers `(key, nonce)` pairs of accepted requests until their timestamp leaves the skew
/// window (after which [`RequestAuth::verify`] refuses them anyway).
///
/// Use [`ReplayGuard::check`] when a request arrives (cheap refusal of a replay) and
/// [`ReplayGuard::record`] once the route has accepted it, so refused requests never take
/// memory. Memory is bounded per key by `per_key`: a key with that many live nonces gets
/// [`RequestError::Busy`] (a 429 for that key only) rather than a nonce being forgotten and
/// becoming replayable. Keys only get entries for accepted requests, which the routes rate-limit
/// per key, so the number of keys is bounded by what the routes accept within the window.
pub struct ReplayGuard {
    max_skew: u64,
    per_key: usize,
    seen: HashMap<PublicKey, HashMap<[u8; 16], u64>>,
    /// `(expiry, key, nonce)`, sorted by expiry.
    order: VecDeque<(u64, PublicKey, [u8; 16])>,
}

impl ReplayGuard {
    pub fn new(max_skew: u64, per_key: usize) -> Self {
        ReplayGuard {
            max_skew,
            per_key: per_key.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Refuses a nonce already recorded, or a key whose quota of live nonces is full. Records
    /// nothing.
    pub fn check(&self, auth: &RequestAuth, now: u64) -> Result<(), RequestError> {
        let Some(nonces) = self.seen.get(&auth.key) else {
            return Ok(());
        };
        if nonces.get(&auth.nonce).is_some_and(|&exp| exp >= now) {
            return Err(RequestError::Replay);
        }
        if nonces.values().filter(|&&exp| exp >= now).count() >= self.per_key {
            return Err(RequestError::Busy);
        }
        Ok(())
    }

    /// Checks as [`ReplayGuard::check`], then records the nonce. Call it once the request has
    /// been accepted; it is atomic, so of two concurrent copies of one request only one passes.
    pub fn record(&mut self, auth: &RequestAuth, now: u64) -> Result<(), RequestError> {
        self.expire(now);
        self.check(auth, now)?;
        // Keep `order` sorted by expiry so eviction stops at the first live entry; an entry that
        // arrives out of order is simply kept a little longer.
        let floor = self.order.back().map_or(0, |e| e.0);
        let expiry = auth.timestamp.saturating_add(self.max_skew).max(floor);
        self.seen
            .entry(auth.key)
            .or_default()
            .insert(auth.nonce, expiry);
        self.order.push_back((expiry, auth.key, auth.nonce));
        Ok(())
    }

    /// Nonces currently remembered, over all keys.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(expiry, key, nonce)) = self.order.front() {
            if expiry >= now {
                break;
            }
            self.order.pop_front();
            if let Some(nonces) = self.seen.get_mut(&key) {
                nonces.remove(&nonce);
                if nonces.is_empty() {
                    self.seen.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(auth: &RequestAuth) -> RequestAuth {
        let hdrs = auth.headers();
        RequestAuth::from_headers(|n| hdrs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()))
            .unwrap()
    }

    #[test]
    fn sign_verify_and_replay() {
        let id = Identity::generate();
        let me = Identity::generate().public();
        let h = body_hash(b"body");
        let auth = RequestAuth::sign(&id, &me, "PUT", "/v1/shards/x", &h, 1000);
        let parsed = parse(&auth);
        assert_eq!(parsed, auth);
        parsed
            .verify(&me, "PUT", "/v1/shards/x", &h, 1010, 300)
            .unwrap();
        assert_eq!(
            parsed.verify(&me, "GET", "/v1/shards/x", &h, 1010, 300),
            Err(RequestError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&me, "PUT", "/v1/shards/y", &h, 1010, 300),
            Err(RequestError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&me, "PUT", "/v1/shards/x", &body_hash(b"other"), 1010, 300),
            Err(RequestError::BadSignature)
        );
        assert!(matches!(
            parsed.verify(&me, "PUT", "/v1/shards/x", &h, 2000, 300),
            Err(RequestError::Stale { .. })
        ));

        let mut guard = ReplayGuard::new(300, 2);
        guard.check(&auth, 1010).unwrap();
        guard.record(&auth, 1010).unwrap();
        assert_eq!(guard.check(&auth, 1011), Err(RequestError::Replay));
        assert_eq!(guard.record(&auth, 1011), Err(RequestError::Replay));
        let a2 = RequestAuth::sign(&id, &me, "PUT", "/", &h, 1000);
        guard.record(&a2, 1011).unwrap();
        let a3 = RequestAuth::sign(&id, &me, "PUT", "/", &h, 1000);
        assert_eq!(guard.record(&a3, 1012), Err(RequestError::Busy));
        // After the window the old entries are forgotten (and verify() refuses them as stale).
        guard.record(&a3, 1400).unwrap();
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn another_recipient_is_refused() {
        let id = Identity::generate();
        let (a, b) = (Identity::generate().public(), Identity::generate().public());
        let h = body_hash(b"");
        let auth = parse(&RequestAuth::sign(&id, &a, "GET", "/v1/sync", &h, 1000));
        auth.verify(&a, "GET", "/v1/sync", &h, 1000, 300).unwrap();
        assert_eq!(
            auth.verify(&b, "GET", "/v1/sync", &h, 1000, 300),
            Err(RequestError::WrongRecipient(a))
        );
        // Rewriting the recipient header does not help: the signature covers it.
        let mut moved = auth.clone();
        moved.recipient = b;
        assert_eq!(
            moved.verify(&b, "GET", "/v1/sync", &h, 1000, 300),
            Err(RequestError::BadSignature)
        );
    }

    #[test]
    fn future_skew_is_tight() {
        let id = Identity::generate();
        let me = id.public();
        let h = body_hash(b"");
        let at = |t| RequestAuth::sign(&id, &me, "GET", "/", &h, t);
        at(1030).verify(&me, "GET", "/", &h, 1000, 300).unwrap();
        at(700).verify(&me, "GET", "/", &h, 1000, 300).unwrap();
        assert!(matches!(
            at(1031).verify(&me, "GET", "/", &h, 1000, 300),
            Err(RequestError::Stale { .. })
        ));
        assert!(matches!(
            at(699).verify(&me, "GET", "/", &h, 1000, 300),
            Err(RequestError::Stale { .. })
        ));
    }

    #[test]
    fn one_key_flooding_does_not_block_another() {
        let me = Identity::generate().public();
        let h = body_hash(b"");
        let mut guard = ReplayGuard::new(300, 8);
        let flooder = Identity::generate();
        let mut refused = 0;
        for _ in 0..100 {
            let a = RequestAuth::sign(&flooder, &me, "GET", "/", &h, 1000);
            if guard.record(&a, 1000) == Err(RequestError::Busy) {
                refused += 1;
            }
        }
        assert_eq!(refused, 92);
        assert_eq!(guard.len(), 8);
        let honest = Identity::generate();
        for _ in 0..8 {
            let a = RequestAuth::sign(&honest, &me, "GET", "/", &h, 1000);
            guard.check(&a, 1000).unwrap();
            guard.record(&a, 1000).unwrap();
        }
    }

    #[test]
    fn checking_records_nothing() {
        let id = Identity::generate();
        let me = id.public();
        let mut guard = ReplayGuard::new(300, 1);
        let a = RequestAuth::sign(&id, &me, "GET", "/", &body_hash(b""), 1000);
        for _ in 0..10 {
            guard.check(&a, 1000).unwrap();
        }
        assert!(guard.is_empty());
        guard.record(&a, 1000).unwrap();
    }

    #[test]
    fn missing_headers_are_named() {
        assert_eq!(
            RequestAuth::from_headers(|_| None),
            Err(RequestError::Header(HEADER_KEY))
        );
    }
}
