//! Request plumbing shared by the routes of every kairos server: bounded body reading, the
//! per-connection rate limit, and the JSON answers to unknown routes and methods.
//!
//! Invariants: [`read_body`] never buffers more than its `limit` — an oversized declared
//! `Content-Length` is refused before anything is read, a body that grows past the limit is
//! refused as soon as it does — and a body that trickles in slower than `timeout` is cut off;
//! [`limit_connection`] spends one token of the connection's bucket per request, keyed by the
//! [`ConnId`] the accept loop ([`crate::serve`]) attaches (0 if there is none).

use crate::ratelimit::RateLimiter;
use crate::serve::ConnId;
use crate::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The request's `Content-Length`, if present and a number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads the whole body (`declared` is its [`content_length`]), refusing more than `limit`
/// bytes with `too_large()` (the caller's 413) or a sender slower than `timeout` (408).
pub async fn read_body(
    body: Body,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("body_read", format!("could not read the request body: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )
    })?
}

/// Server state that rate-limits requests per connection.
pub trait ConnLimited: Send + Sync + 'static {
    fn conn_limiter(&self) -> &RateLimiter<u64>;
}

/// Middleware: one token per request from the connection's bucket, else 429.
pub async fn limit_connection<S: ConnLimited>(
    State(state): State<Arc<S>>,
    req: Request,
    next: Next,
) -> Response {
    let conn = req.extensions().get::<ConnId>().map_or(0, |c| c.0);
    if let Err(secs) = state.conn_limiter().check(&conn) {
        return ApiError::too_many_requests(secs).into_response();
    }
    next.run(req).await
}

/// Fallback: 404 `no_route`.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no such route: {}", uri.path()),
    )
}

/// Method fallback: 405 `method_not_allowed`.
pub async fn bad_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not supported on {}", uri.path()),
    )
}
