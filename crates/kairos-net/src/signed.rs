//! Verifying signed requests inside handlers, and signing outgoing ones.
//!
//! Invariant: [`verify_request`] records nothing. A route that needs replay protection calls
//! [`Verified::commit`] after its own checks (rate limits, authorisation) have accepted the
//! request, so refused requests never take room in the [`ReplayGuard`]. Idempotent routes
//! (content-addressed stores) skip the guard altogether.

use crate::ApiError;
use axum::http::{HeaderMap, Method, Uri};
use kairos_proto::request::{body_hash, RequestAuth};
use kairos_proto::{PublicKey, ReplayGuard};
use std::sync::Mutex;

/// Who is verifying, and when.
pub struct Receiver<'a> {
    /// This server's key: requests must name it as recipient.
    pub key: &'a PublicKey,
    pub now: u64,
    /// Accepted age of a request, seconds.
    pub max_skew: u64,
    /// Checked (not recorded) for an early refusal of replays; `None` for idempotent routes.
    pub replay: Option<&'a Mutex<ReplayGuard>>,
}

/// A request whose signature, recipient and freshness verified.
#[derive(Debug)]
pub struct Verified {
    auth: RequestAuth,
}

impl Verified {
    /// The signer's key.
    pub fn key(&self) -> PublicKey {
        self.auth.key
    }

    /// Records the nonce once the route accepted the request; refuses a replay (or a key over
    /// its nonce quota). Returns the signer's key.
    pub fn commit(&self, guard: &Mutex<ReplayGuard>, now: u64) -> Result<PublicKey, ApiError> {
        lock(guard).record(&self.auth, now)?;
        Ok(self.auth.key)
    }
}

fn lock(guard: &Mutex<ReplayGuard>) -> std::sync::MutexGuard<'_, ReplayGuard> {
    guard.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks the signature headers of a request against its method, path-and-query and body, its
/// recipient and freshness, and (if `receiver.replay` is given) that its nonce was not used.
pub fn verify_request(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    receiver: &Receiver<'_>,
) -> Result<Verified, ApiError> {
    let auth = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    auth.verify(
        receiver.key,
        method.as_str(),
        path,
        &body_hash(body),
        receiver.now,
        receiver.max_skew,
    )?;
    if let Some(guard) = receiver.replay {
        lock(guard).check(&auth, receiver.now)?;
    }
    Ok(Verified { auth })
}

/// Adds signature headers for `method path` with `body`, addressed to `recipient`, to a request
/// builder.
pub fn sign(
    builder: reqwest::RequestBuilder,
    identity: &kairos_proto::Identity,
    recipient: &PublicKey,
    method: &str,
    path: &str,
    body: &[u8],
    now: u64,
) -> reqwest::RequestBuilder {
    let auth = RequestAuth::sign(identity, recipient, method, path, &body_hash(body), now);
    auth.headers()
        .into_iter()
        .fold(builder, |b, (k, v)| b.header(k, v))
}
