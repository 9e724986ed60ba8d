//! What the directory's HTTP handlers share: the file id in a path, bounded bodies, the
//! signer of an optionally signed request, and the answer to an impossible writer outcome.
//!
//! Invariant: a request carrying any `x-kairos-` header must verify completely (recipient,
//! skew, nonce) before anything depends on its signer; its nonce is committed only then.

use crate::api_error::too_large;
use crate::state::App;
use crate::writer::Outcome;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kairos_net::request::{content_length, read_body, read_body_within, BudgetHeld};
use kairos_net::ApiError;
use kairos_proto::{FileId, PublicKey};

/// Response header carrying a manifest's release time (Unix seconds).
pub const HEADER_RELEASE: &str = "x-kairos-release";

pub fn parse_id(path: Result<Path<String>, PathRejection>) -> Result<FileId, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request("bad_file_id", e.body_text()))?;
    text.parse()
        .map_err(|e: kairos_proto::manifest::BadFileId| {
            ApiError::bad_request("bad_file_id", e.to_string())
        })
}

/// Reads a request body of at most `limit` bytes (`what` names it in the refusal).
pub async fn read_limited(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    read_body(
        body,
        content_length(headers),
        limit,
        app.cfg.limits.body_timeout,
        || too_large(what, limit),
    )
    .await
}

/// [`read_limited`] for manifest and placement publishes: the bytes received count against
/// the directory's upload budget ([`App::uploads`]) until the returned share is dropped.
pub async fn read_upload(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<(Bytes, BudgetHeld), ApiError> {
    read_body_within(
        body,
        content_length(headers),
        limit,
        app.cfg.limits.body_timeout,
        Some(&app.uploads),
        || too_large(what, limit),
    )
    .await
}

pub fn unexpected(o: Outcome) -> ApiError {
    tracing::error!("writer answered with an unexpected outcome {o:?}");
    ApiError::internal("unexpected storage answer")
}

/// A stored item's bytes (manifest or placement) with the file's release time.
pub fn bytes_response(bytes: Vec<u8>, release: u64) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(HEADER_RELEASE, HeaderValue::from(release));
    resp
}

/// The key that signed the request, or `None` for an anonymous one (no signature headers).
/// Spends one token of the signer's rate limit.
pub fn request_signer(
    app: &App,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    now: u64,
) -> Result<Option<PublicKey>, ApiError> {
    if !headers.keys().any(|k| k.as_str().starts_with("x-kairos-")) {
        return Ok(None);
    }
    let verified =
        kairos_net::signed::verify_request(headers, method, uri, b"", &app.receiver(now))?;
    app.limit_identity(&verified.key())?;
    // Only accepted requests take room in the replay guard.
    Ok(Some(verified.commit(&app.replay, now)?))
}
