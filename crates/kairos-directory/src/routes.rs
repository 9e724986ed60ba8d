//! The HTTP routes of the directory (documented in `docs/directory-api.md`).
//!
//! Invariants: every handler validates completely before it writes, so a refused request
//! changes nothing; every refusal is an [`ApiError`] JSON body with a stable code; nothing here
//! panics on any input; a manifest's bytes leave the directory before its release time only in
//! answer to a request signed by its uploader (or to a sibling's signed federation pull).

use crate::api_error::{bad_query, internal};
use crate::beacon_routes;
use crate::federation;
use crate::handler::{
    bytes_response, parse_id, read_limited, read_upload, request_signer, unexpected,
};
use crate::nodes::NodeEntry;
use crate::placements;
use crate::reach::REACH_VALID;
use crate::state::App;
use crate::store::{ManifestOutcome, ManifestWrite, NodeOutcome, NodeWrite};
use crate::tombstones::{self, refuse_revoked};
use crate::validate::{self, manifest_error, record_error};
use crate::writer::{Op, Outcome};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use kairos_directory_client::wire::{
    Info, ListedNode, NodeList, PublishResponse, SubscribeResponse,
};
use kairos_net::request::{bad_method, limit_connection, no_route};
use kairos_net::ApiError;
use kairos_proto::{AnyManifest, FileId, PublicKey, SignedNodeRecord};
use serde::Deserialize;
use std::sync::Arc;

/// Number of nodes `GET /v1/nodes` returns without `count`.
pub const DEFAULT_LIST_COUNT: usize = 32;
pub use crate::handler::HEADER_RELEASE;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/nodes", post(subscribe).get(list_nodes))
        .route("/v1/nodes/{key}", get(node_record))
        .route("/v1/manifests/{id}", put(publish).get(fetch_manifest))
        .route(
            "/v1/placements/{id}",
            put(placements::publish).get(placements::fetch),
        )
        .route("/v1/placements/{id}/held", get(placements::held))
        .route(
            "/v1/tombstones/{id}",
            put(tombstones::publish).get(tombstones::fetch),
        )
        .route("/v1/sync", get(federation::feed))
        .route(
            "/v1/beacons/{chain}/{round}",
            get(beacon_routes::get_beacon),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(bad_method)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            limit_connection::<App>,
        ))
        .with_state(app)
}

async fn info(State(app): State<Arc<App>>) -> Result<Json<Info>, ApiError> {
    let (_, manifests) = app.store.counts().map_err(internal)?;
    Ok(Json(Info {
        key: app.identity.public().to_text(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        time: app.now(),
        nodes: app.nodes.len() as u64,
        manifests,
        node_ttl: app.cfg.node_ttl.as_secs(),
        manifest_retention: app.cfg.manifest_retention.as_secs(),
    }))
}

async fn subscribe(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SubscribeResponse>, ApiError> {
    let limit = app.cfg.limits.max_record_bytes;
    let bytes = read_limited(&app, &headers, body, limit, "a node record").await?;
    let record = SignedNodeRecord::from_bytes(Vec::from(bytes)).map_err(record_error)?;
    let (key, ts) = (record.record().key, record.record().timestamp);
    let policy = app.policy();
    let expires_at = validate::admit_record(&record, &policy)?;
    // Records are public (listed, relayed): refuse a replay before it can spend the node's
    // rate-limit tokens, so replaying a node's record cannot lock the node out. Only the key
    // holder can make a newer record; the writer re-checks newness authoritatively.
    validate::admit_newer(app.nodes.timestamp(&key), ts)?;
    app.limit_identity(&key)?;
    validate::admit_room(app.nodes.contains(&key), app.nodes.len(), &policy)?;
    // Listed only once reached where the record says (crate::reach); last of the checks, as
    // it is the one that costs a connection.
    let addr = record.record().addr.clone();
    let now = app.now();
    let probe = app.cfg.reach_nodes
        && !(app.nodes).reached_since(&key, &addr, now.saturating_sub(REACH_VALID));
    if probe {
        app.reach.check(&key, &addr).await?;
    }
    match app
        .writer
        .submit(Op::Node(NodeWrite { record }))
        .await
        .map_err(internal)?
    {
        Outcome::Node(NodeOutcome::Stored) => {
            if probe {
                app.nodes.mark_reached(key, &addr, now);
            }
            Ok(Json(SubscribeResponse {
                key: key.to_text(),
                expires_at,
            }))
        }
        Outcome::Node(NodeOutcome::NotNewer { have }) => Err(validate::not_newer(have, ts)),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    count: Option<usize>,
    exclude: Option<String>,
}

async fn list_nodes(
    State(app): State<Arc<App>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<NodeList>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let exclude = q
        .exclude
        .as_deref()
        .map(PublicKey::from_text)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_query", format!("exclude: {e}")))?;
    let count = q
        .count
        .unwrap_or(DEFAULT_LIST_COUNT)
        .min(app.cfg.limits.max_list);
    let nodes = app
        .nodes
        .sample(count, exclude.as_ref(), app.now())
        .iter()
        .map(|e| listed(e))
        .collect();
    Ok(Json(NodeList { nodes }))
}

/// `GET /v1/nodes/{key}`: the current signed record of one live node.
async fn node_record(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ListedNode>, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request("bad_key", e.body_text()))?;
    let key = PublicKey::from_text(&text)
        .map_err(|e| ApiError::bad_request("bad_key", format!("node key: {e}")))?;
    match app.nodes.get(&key) {
        Some(e) if e.expires_at > app.now() => Ok(Json(listed(&e))),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_node",
            format!("this directory holds no live record of node {key}: it is offline, has not subscribed here, or its record expired"),
        )),
    }
}

fn listed(e: &NodeEntry) -> ListedNode {
    ListedNode {
        key: e.key.to_text(),
        addr: e.addr.clone(),
        capacity: e.capacity,
        timestamp: e.timestamp,
        expires_at: e.expires_at,
        record: e.record_b64.clone(),
    }
}

async fn publish(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    // Bounds the memory held by bodies being buffered (and verified) at once.
    refuse_revoked(&app, &id)?;
    let limit = app.cfg.limits.max_manifest_bytes;
    let (bytes, _held) = read_upload(&app, &headers, body, limit, "the manifest").await?;
    validate::admit_id(&bytes, &id)?;
    // Same hash ⇒ same bytes: a manifest already stored under this id is answered at once,
    // without verifying it again and without spending the uploader's rate-limit tokens
    // (anyone may re-publish a manifest they hold; only the uploader can create a new id).
    if let Some(row) = app.store.manifest(&id, |_| false).map_err(internal)? {
        let expires = row
            .release
            .saturating_add(app.cfg.manifest_retention.as_secs());
        return Ok(published(id, row.release, expires, false));
    }
    let manifest = verify_manifest(bytes, id).await?;
    let expires_at = validate::admit_manifest(&manifest, &app.policy())?;
    // For v2 the signer is the per-file key: quotas and rate limits apply to it.
    let (release, uploader) = (manifest.release(), manifest.uploader());
    app.limit_identity(&uploader)?;
    let write = ManifestWrite {
        id,
        release,
        uploader,
        expires_at,
        bytes: manifest.into_bytes(),
        quota: app.policy().manifest_quota,
    };
    let created = store_manifest(&app, write).await?;
    Ok(published(id, release, expires_at, created))
}

/// Verifies the signature and structure off the async threads (a manifest can be 32 MiB).
async fn verify_manifest(bytes: Bytes, id: FileId) -> Result<AnyManifest, ApiError> {
    tokio::task::spawn_blocking(move || AnyManifest::verify(Vec::from(bytes), &id))
        .await
        .map_err(|_| ApiError::internal("manifest verification failed"))?
        .map_err(manifest_error)
}

/// Stores an admitted manifest. Returns whether this request created it.
async fn store_manifest(app: &App, write: ManifestWrite) -> Result<bool, ApiError> {
    match app
        .writer
        .submit(Op::Manifest(write))
        .await
        .map_err(internal)?
    {
        Outcome::Manifest(ManifestOutcome::Created) => Ok(true),
        Outcome::Manifest(ManifestOutcome::Existing) => Ok(false),
        Outcome::Manifest(ManifestOutcome::Conflict) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "other manifest bytes are already stored under this file id",
        )),
        Outcome::Manifest(ManifestOutcome::Full { used }) => Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "directory_full",
            format!(
                "this directory holds {used} bytes of manifests, its limit; publish to another directory or try again after older manifests expire"
            ),
        )),
        other => Err(unexpected(other)),
    }
}

fn published(id: FileId, release: u64, expires_at: u64, created: bool) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = PublishResponse {
        id: id.to_string(),
        release,
        expires_at,
        created,
    };
    (status, Json(body)).into_response()
}

async fn fetch_manifest(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    refuse_revoked(&app, &id)?;
    let now = app.now();
    // A request carrying signature headers must verify; one without any is anonymous.
    let signer = request_signer(&app, &headers, &method, &uri, now)?;
    let row = app
        .store
        .manifest(&id, |stored| {
            now >= stored.release || signer.as_ref() == Some(&stored.uploader)
        })
        .map_err(internal)?;
    let Some(row) = row else {
        return Err(ApiError::not_found(format!(
            "this directory has no manifest {id}: it was never published here (or has not reached this directory from its siblings yet), or it expired {} after its release time and was deleted",
            humantime::format_duration(app.cfg.manifest_retention)
        )));
    };
    let Some(bytes) = row.bytes else {
        return Err(ApiError::locked("this manifest", row.release, now));
    };
    Ok(bytes_response(bytes, row.release))
}
