//! The error answers the HTTP handlers share (the routes and the federation feed): storage
//! failures, malformed queries, bodies over a limit. Admission refusals live in `validate`.
//!
//! Invariant: a storage failure's details go to the log only; the client gets a stable code
//! (`internal`, or `shutting_down` while the writer is closing) and no internals.

use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use kairos_host::StoreError;
use kairos_net::ApiError;

/// Maps a storage failure to the `500 internal` response (`503 shutting_down` while closing).
pub fn internal(e: StoreError) -> ApiError {
    tracing::error!("storage failure while serving a request: {e}");
    match e {
        StoreError::Closed => {
            shutting_down("the directory is shutting down; try another directory")
        }
        _ => ApiError::internal("the directory could not access its database; try again later"),
    }
}

/// `503 shutting_down` with `message`.
fn shutting_down(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        message.to_owned(),
    )
}

/// `400 bad_query`: the query string does not parse.
pub fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::bad_request("bad_query", e.body_text())
}

/// `413 too_large`: `what` is over `limit` bytes.
pub fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("{what} is larger than this directory's limit of {limit} bytes"),
    )
}
