//! Verifying signed requests inside handlers.

use crate::ApiError;
use axum::http::{HeaderMap, Method, Uri};
use kairos_proto::request::{body_hash, RequestAuth};
use kairos_proto::{PublicKey, ReplayGuard};
use std::sync::Mutex;

/// Checks the signature headers of a request against its method, path-and-query and body at
/// time `now`, then its nonce against `guard`. Returns the signer's key.
pub fn verify_request(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    now: u64,
    max_skew: u64,
    guard: &Mutex<ReplayGuard>,
) -> Result<PublicKey, ApiError> {
    let auth = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    auth.verify(method.as_str(), path, &body_hash(body), now, max_skew)?;
    guard
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(&auth, now)?;
    Ok(auth.key)
}

/// Adds signature headers for `method path` with `body` to a request builder.
pub fn sign(
    builder: reqwest::RequestBuilder,
    identity: &kairos_proto::Identity,
    method: &str,
    path: &str,
    body: &[u8],
    now: u64,
) -> reqwest::RequestBuilder {
    let auth = RequestAuth::sign(identity, method, path, &body_hash(body), now);
    auth.headers()
        .into_iter()
        .fold(builder, |b, (k, v)| b.header(k, v))
}
