//! Request plumbing shared by the routes: bounded body reading and the per-connection rate
//! limit (keyed by the [`ConnId`] the accept loop attaches to each request).
//!
//! Invariant: no route buffers more than its configured cap of a request body — an oversized
//! `Content-Length` is refused before reading, a body that grows past the cap is refused as
//! soon as it does — and a body that trickles in slower than `body_timeout` is cut off.

use crate::server::App;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use kairos_net::serve::ConnId;
use kairos_net::ApiError;
use std::sync::Arc;
use std::time::Duration;

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("{what} is larger than this directory's limit of {limit} bytes"),
    )
}

/// Reads the whole body, refusing more than `limit` bytes (413) or a slow sender (408).
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    what: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(what, limit));
    }
    let read = async {
        let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("body_read", format!("could not read the request body: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large(what, limit));
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

/// Middleware: one token per request from the connection's bucket.
pub async fn limit_connection(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnId>().map_or(0, |c| c.0);
    if let Err(secs) = app.conn_limiter.check(&conn) {
        return ApiError::too_many_requests(secs).into_response();
    }
    next.run(req).await
}
