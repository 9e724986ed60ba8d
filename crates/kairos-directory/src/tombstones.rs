//! Revocation: `PUT` and `GET /v1/tombstones/{id}` (documented in `docs/directory-api.md`),
//! and the `410 revoked` answer every other route gives for a revoked file.
//!
//! Invariants: a tombstone is accepted only for a stored version 2 manifest, signed by that
//! manifest's uploader (per-file) key, and only before the file's release by this directory's
//! clock; a refused request changes nothing. Once revoked, a file's manifest and placement
//! are never served or re-admitted (a re-publish of the same bytes is `410` too), here or at a
//! sibling that pulled the tombstone; the tombstone is public (it names only the file id).

use crate::api_error::internal;
use crate::handler::{bytes_response, parse_id, read_limited, unexpected};
use crate::state::App;
use crate::store::{TombstoneOutcome, TombstoneWrite};
use crate::writer::{Op, Outcome};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kairos_directory_client::wire::TombstoneResponse;
use kairos_net::ApiError;
use kairos_proto::{FileId, SignedContentManifest, SignedTombstone, TombstoneError, TOMBSTONE_LEN};
use std::sync::Arc;

/// `410 revoked`: the answer for every request about a revoked file.
pub fn revoked(id: &FileId) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "revoked",
        format!("file {id} was revoked by its uploader before its release; it will never open"),
    )
}

/// `Err(410)` if `id` is revoked here.
pub fn refuse_revoked(app: &App, id: &FileId) -> Result<(), ApiError> {
    match app.store.tombstone(id).map_err(internal)? {
        Some(_) => Err(revoked(id)),
        None => Ok(()),
    }
}

/// `PUT /v1/tombstones/{id}`: revokes a v2 file before its release.
pub async fn publish(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    let bytes = read_limited(&app, &headers, body, TOMBSTONE_LEN, "the tombstone").await?;
    let row = app.store.manifest(&id, |_| true).map_err(internal)?;
    let Some((uploader, Some(manifest))) = row.map(|r| (r.uploader, r.bytes)) else {
        return Err(ApiError::not_found(format!(
            "this directory has no manifest {id} to revoke (never published here, not relayed yet, or expired)"
        )));
    };
    if let Some(stored) = app.store.tombstone(&id).map_err(internal)? {
        if stored == bytes {
            return Ok(answer(id, false));
        }
    }
    let manifest = SignedContentManifest::from_bytes(manifest).map_err(|_| {
        ApiError::bad_request(
            "wrong_version",
            "this file has a version 1 manifest, which cannot be revoked",
        )
    })?;
    let tombstone = SignedTombstone::verify(Vec::from(bytes), &manifest).map_err(refusal)?;
    tombstone
        .check_before_release(&manifest, app.now())
        .map_err(refusal)?;
    app.limit_identity(&uploader)?;
    let write = TombstoneWrite {
        id,
        bytes: tombstone.into_bytes(),
    };
    match app
        .writer
        .submit(Op::Tombstone(write))
        .await
        .map_err(internal)?
    {
        Outcome::Tombstone(TombstoneOutcome::Stored) => Ok(answer(id, true)),
        Outcome::Tombstone(TombstoneOutcome::Existing) => Ok(answer(id, false)),
        Outcome::Tombstone(TombstoneOutcome::UnknownManifest) => Err(ApiError::not_found(format!(
            "this directory has no manifest {id} to revoke (it expired)"
        ))),
        other => Err(unexpected(other)),
    }
}

fn refusal(e: TombstoneError) -> ApiError {
    match e {
        TombstoneError::Released { .. } => {
            ApiError::new(StatusCode::CONFLICT, "released", e.to_string())
        }
        TombstoneError::BadSignature => {
            ApiError::new(StatusCode::FORBIDDEN, "bad_signature", e.to_string())
        }
        other => ApiError::bad_request("bad_tombstone", other.to_string()),
    }
}

fn answer(id: FileId, created: bool) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = TombstoneResponse {
        id: id.to_string(),
        created,
    };
    (status, Json(body)).into_response()
}

/// `GET /v1/tombstones/{id}`: the signed tombstone of a revoked file.
pub async fn fetch(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    let Some(bytes) = app.store.tombstone(&id).map_err(internal)? else {
        return Err(ApiError::not_found(format!(
            "this directory holds no tombstone of {id}: it was not revoked (or not that this directory knows)"
        )));
    };
    let release = app
        .store
        .manifest(&id, |_| false)
        .map_err(internal)?
        .map_or(0, |r| r.release);
    Ok(bytes_response(bytes, release))
}
