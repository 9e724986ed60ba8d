//! The placement routes: `PUT` and `GET /v1/placements/{id}` (documented in
//! `docs/directory-api.md`).
//!
//! Invariants: a placement is accepted only for a stored version 2 manifest, signed by that
//! manifest's uploader (per-file) key and fitting it (`SignedPlacement::verify`), and only if
//! its seq is higher than the stored one's (the writer decides that, atomically); a refused
//! request changes nothing. A placement leaves the directory before its file's release only to
//! a request signed by the manifest's uploader key, as the manifest does.

use crate::api_error::internal;
use crate::handler::{bytes_response, parse_id, read_upload, request_signer, unexpected};
use crate::state::App;
use crate::store::{PlacementOutcome, PlacementWrite};
use crate::validate::placement_error;
use crate::writer::{Op, Outcome};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use kairos_directory_client::wire::{HeldPieces, PlacementResponse};
use kairos_net::ApiError;
use kairos_proto::{FileId, SignedContentManifest, SignedPlacement};
use std::sync::Arc;

fn unknown_manifest(id: &FileId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_manifest",
        format!("this directory has no manifest {id}; publish the manifest first (or it expired)"),
    )
}

/// `PUT /v1/placements/{id}`: stores a newer signed placement record of a v2 file.
pub async fn publish(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    crate::tombstones::refuse_revoked(&app, &id)?;
    let limit = app.cfg.limits.max_manifest_bytes;
    let (bytes, _held) = read_upload(&app, &headers, body, limit, "the placement record").await?;
    let row = app.store.manifest(&id, |_| true).map_err(internal)?;
    let Some((uploader, Some(manifest))) = row.map(|r| (r.uploader, r.bytes)) else {
        return Err(unknown_manifest(&id));
    };
    // The same bytes again: answered at once, as a manifest re-publish is.
    if let Some((seq, stored)) = app.store.placement(&id).map_err(internal)? {
        if stored == bytes {
            return Ok(placed(id, seq, false));
        }
    }
    let placement = verify(bytes, manifest).await?;
    app.limit_identity(&uploader)?;
    let seq = placement.seq();
    let write = PlacementWrite {
        id,
        seq,
        bytes: placement.into_bytes(),
        quota: app.policy().manifest_quota,
    };
    match app
        .writer
        .submit(Op::Placement(write))
        .await
        .map_err(internal)?
    {
        Outcome::Placement(PlacementOutcome::Stored) => Ok(placed(id, seq, true)),
        Outcome::Placement(PlacementOutcome::Existing) => Ok(placed(id, seq, false)),
        Outcome::Placement(PlacementOutcome::Stale { have }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale_placement",
            format!("this directory holds a placement of {id} with seq {have}; a replacement needs a higher seq than that (this one has {seq})"),
        )),
        Outcome::Placement(PlacementOutcome::UnknownManifest) => Err(unknown_manifest(&id)),
        Outcome::Placement(PlacementOutcome::Full { used }) => Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "directory_full",
            format!("this directory holds {used} bytes of manifests and placements, its limit; publish to another directory"),
        )),
        other => Err(unexpected(other)),
    }
}

/// Verifies the record against the stored manifest, off the async threads.
async fn verify(bytes: Bytes, manifest: Vec<u8>) -> Result<SignedPlacement, ApiError> {
    tokio::task::spawn_blocking(move || {
        let manifest = SignedContentManifest::from_bytes(manifest).map_err(|_| {
            ApiError::bad_request(
                "wrong_version",
                "this file has a version 1 manifest, which carries its placement itself; placement records are for version 2 manifests",
            )
        })?;
        SignedPlacement::verify(Vec::from(bytes), &manifest).map_err(placement_error)
    })
    .await
    .map_err(|_| ApiError::internal("placement verification failed"))?
}

fn placed(id: FileId, seq: u64, created: bool) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = PlacementResponse {
        id: id.to_string(),
        seq,
        created,
    };
    (status, Json(body)).into_response()
}

/// `GET /v1/placements/{id}`: the newest placement, withheld like its manifest.
pub async fn fetch(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    crate::tombstones::refuse_revoked(&app, &id)?;
    let now = app.now();
    let signer = request_signer(&app, &headers, &method, &uri, now)?;
    let Some(row) = app.store.manifest(&id, |_| false).map_err(internal)? else {
        return Err(ApiError::not_found(format!(
            "this directory has no manifest {id}, so no placement of it (never published here, not relayed yet, or expired)"
        )));
    };
    if now < row.release && signer != Some(row.uploader) {
        return Err(ApiError::locked("this placement", row.release, now));
    }
    let Some((_, bytes)) = app.store.placement(&id).map_err(internal)? else {
        return Err(ApiError::not_found(format!(
            "this directory has no placement of {id} (a version 1 file carries it in its manifest; otherwise it has not been published or relayed here yet)"
        )));
    };
    Ok(bytes_response(bytes, row.release))
}

/// `GET /v1/placements/{id}/held`: to a request signed by a holder the newest placement names,
/// the hashes of the pieces it places there (and the uploader key and release). Before release
/// too: the holder has those pieces already; it learns neither the other holders nor the
/// manifest. Holders ask this to keep pieces a published placement references
/// (`docs/node-api.md`, "Pending pieces").
pub async fn held(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<HeldPieces>, ApiError> {
    let id = parse_id(path)?;
    crate::tombstones::refuse_revoked(&app, &id)?;
    let now = app.now();
    let Some(holder) = request_signer(&app, &headers, &method, &uri, now)? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unsigned",
            "sign the request with the holder's node key",
        ));
    };
    let not_held = move || {
        ApiError::not_found(format!(
            "this directory holds no placement of {id} that names {holder} as a holder"
        ))
    };
    let row = app.store.manifest(&id, |_| true).map_err(internal)?;
    let (Some(row), Some((seq, placement))) = (row, app.store.placement(&id).map_err(internal)?)
    else {
        return Err(not_held());
    };
    let Some(manifest) = row.bytes else {
        return Err(not_held());
    };
    let release = row.release;
    tokio::task::spawn_blocking(move || {
        let manifest = SignedContentManifest::from_bytes(manifest).map_err(|_| not_held())?;
        let placement = SignedPlacement::verify(placement, &manifest).map_err(|_| not_held())?;
        let record = placement.record();
        let mine = (record.holders.iter().position(|h| *h == holder)).ok_or_else(not_held)?;
        let hashes = (record.blocks.iter().zip(&manifest.manifest().blocks))
            .flat_map(|(holders, block)| {
                (holders.iter().zip(&block.hashes))
                    .filter(|(&h, _)| usize::from(h) == mine)
                    .map(|(_, hash)| data_encoding::HEXLOWER.encode(hash))
            })
            .collect();
        Ok(Json(HeldPieces {
            uploader: manifest.manifest().uploader.to_text(),
            release,
            seq,
            hashes,
        }))
    })
    .await
    .map_err(|_| ApiError::internal("reading the placement failed"))?
}
