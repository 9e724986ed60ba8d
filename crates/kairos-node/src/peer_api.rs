//! The peer API (documented in `docs/node-api.md`): what other nodes may ask of this one.
//!
//! * `PUT /v1/pieces/{hash}` — store a piece, signed by its uploader;
//! * `GET /v1/pieces/{hash}` — fetch a piece, refused with `403 locked` until release;
//! * `DELETE /v1/pieces/{hash}`, `GET /v1/pieces/{hash}/audit`, `GET /v1/pieces/{hash}/shard`
//!   — the uploader takes a piece back, audits it, fetches its shard for a repair
//!   ([`crate::peer_delete`], [`crate::peer_audit`]);
//! * `POST /v1/commit/{id}` — the uploader asks this node to keep the file's pieces
//!   ([`crate::peer_commit`], [`crate::pending`]);
//! * `GET /v1/info[?challenge=HEX]` — the node's key and address; with a challenge, also a
//!   liveness proof ([`kairos_proto::liveness`]) that directories ask for before listing it.
//!
//! Invariants: a store is checked completely — size, body layout,
//! `piece_hash(share, shard) == hash`, signature (addressed to this node) and freshness, rate, release window,
//! quota, free disk (the pure rules are [`crate::admission`]'s) — before anything is written, so a refused request stores nothing; it is acknowledged only after the
//! piece is durable; a stored piece never changes (same hash + same release is an idempotent
//! 200, another release a 409). A piece's bytes are not even read before the node's own clock
//! passes its release. Piece ids are parsed as 32-byte hashes and never touch a path. No input
//! can panic a handler or make it buffer more than one maximal piece per store slot.

use crate::admission::{self, quota_full, too_large, Limits};
use crate::piece::{hash_from_text, hash_to_text, PieceBody, HEADER_LEN, MAX_BODY_LEN};
use crate::state::Node;
use crate::store::{PieceInfo, PieceWrite, PutOutcome};
use crate::writer::{Op, Outcome};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kairos_net::request::{
    bad_method, content_length, limit_connection, no_route, peek_body, read_body_within,
};
use kairos_net::ApiError;
use kairos_proto::liveness::{self, CHALLENGE_LEN};
use kairos_seal::PieceHash;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `PUT /v1/pieces/{hash}` → 201 (stored) or 200 (already stored, same release).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoreResponse {
    pub hash: String,
    pub release: u64,
    pub created: bool,
}

/// `GET /v1/info` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InfoResponse {
    pub key: String,
    pub addr: String,
    pub version: String,
    /// With `?challenge=`: the node's signature (hex) over the challenge and `addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// `GET /v1/info` query.
#[derive(Deserialize)]
pub struct InfoQuery {
    /// 32 bytes, hex: a directory's liveness challenge.
    challenge: Option<String>,
}

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route(
            "/v1/pieces/{hash}",
            get(fetch_piece)
                .put(store_piece)
                .delete(crate::peer_delete::delete_piece),
        )
        .route("/v1/commit/{id}", post(crate::peer_commit::commit))
        .route(
            "/v1/pieces/{hash}/audit",
            get(crate::peer_audit::audit_piece),
        )
        .route(
            "/v1/pieces/{hash}/shard",
            get(crate::peer_audit::fetch_shard),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(bad_method)
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            limit_connection::<Node>,
        ))
        .with_state(node)
}

async fn info(
    State(node): State<Arc<Node>>,
    query: Result<Query<InfoQuery>, QueryRejection>,
) -> Result<Json<InfoResponse>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "bad_challenge",
            "challenge must be 64 hex digits (32 random bytes)",
        )
    };
    let Query(q) = query.map_err(|_| bad())?;
    let proof = match q.challenge {
        None => None,
        Some(text) => {
            let challenge: [u8; CHALLENGE_LEN] = data_encoding::HEXLOWER_PERMISSIVE
                .decode(text.as_bytes())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(bad)?;
            let proof = liveness::prove(&node.identity, &challenge, &node.advertise);
            Some(data_encoding::HEXLOWER.encode(&proof))
        }
    };
    Ok(Json(InfoResponse {
        key: node.identity.public().to_text(),
        addr: node.advertise.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        proof,
    }))
}

fn parse_hash(text: &str) -> Result<PieceHash, ApiError> {
    hash_from_text(text).ok_or_else(|| {
        ApiError::bad_request(
            "bad_hash",
            "a piece id is 64 hex digits (the BLAKE3 piece hash)",
        )
    })
}

/// Free bytes on the file system holding the home (None if it cannot be asked).
fn free_disk_bytes(node: &Node) -> Option<u64> {
    let st = rustix::fs::statvfs(&node.cfg.home).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn limits(node: &Node) -> Limits {
    Limits {
        now: node.now(),
        skew: node.skew(),
        max_release: node.cfg.max_release.as_secs(),
        quota: node.cfg.quota,
        used: node.store.bytes_used(),
    }
}

async fn store_piece(
    State(node): State<Arc<Node>>,
    Path(hash_text): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StoreResponse>), ApiError> {
    let hash = parse_hash(&hash_text)?;
    let declared = content_length(&headers);
    admission::check_declared(declared, &limits(&node))?;
    // Admission before resources: the signature covers the body's 18-byte header and the hash
    // in the path, so signer, recipient, freshness, rate and release window are all checked on
    // those bytes before a body slot is taken.
    let (head, body) = peek_body(body, HEADER_LEN, node.cfg.limits.header_timeout).await?;
    let release =
        PieceBody::release_of(&head).map_err(|e| ApiError::bad_request("bad_piece", e))?;
    let uploader = verified_uploader(&node, &hash, &method, &uri, &headers, &head)?;
    admission::check_release(release, &limits(&node))?;
    // Bounds the body bytes held in memory at once, counting only bytes received (stalled
    // senders hold nothing); no room within the wait answers 503 instead of queueing.
    let (body, _held) = read_body_within(
        body,
        declared,
        MAX_BODY_LEN,
        node.cfg.limits.body_timeout,
        Some(&node.stores),
        || too_large(MAX_BODY_LEN),
    )
    .await?;
    let piece = verified_piece(&hash, &head, body)?;
    let l = limits(&node);
    let len = piece.data.len() as u64;
    admission::check_disk(len, free_disk_bytes(&node))?;
    let release = piece.release;
    let write = PieceWrite {
        hash,
        info: PieceInfo {
            release,
            stored_at: l.now,
            uploader,
            block: piece.block,
            shard: piece.shard,
            len,
        },
        delete_at: release.saturating_add(node.cfg.retention.as_secs()),
        data: piece.data,
    };
    let outcome = node.writer.submit(Op::Put(write)).await?;
    stored_response(hash, release, outcome)
}

/// Decodes the whole body and checks it hashes to the id in the path (so the signed `head ‖
/// hash` binds share and shard too) and begins with the signed head.
fn verified_piece(
    hash: &PieceHash,
    head: &[u8],
    body: bytes::Bytes,
) -> Result<PieceBody, ApiError> {
    if !body.starts_with(head) {
        return Err(ApiError::bad_request(
            "bad_piece",
            "the piece body changed after its header was checked",
        ));
    }
    let piece = PieceBody::decode(body).map_err(|e| ApiError::bad_request("bad_piece", e))?;
    if piece.hash() != *hash {
        return Err(ApiError::bad_request(
            "hash_mismatch",
            "the piece's share and shard do not hash to the id in the path",
        ));
    }
    Ok(piece)
}

/// Checks the uploader's signature over the body's header and the piece hash of the path
/// (addressed to this node), its freshness and the uploader's rate; returns its key. No nonce
/// is remembered: a store is content-addressed and idempotent, so a replayed copy only gets
/// "200 existing" (and counts against the uploader's rate).
fn verified_uploader(
    node: &Node,
    hash: &PieceHash,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    head: &[u8],
) -> Result<kairos_proto::PublicKey, ApiError> {
    let receiver = kairos_net::signed::Receiver {
        key: &node.identity.public(),
        now: node.now(),
        max_skew: node.skew(),
        replay: None,
    };
    let key = kairos_net::signed::verify_request(
        headers,
        method,
        uri,
        &PieceBody::signed_bytes_of(head, hash),
        &receiver,
    )?
    .key();
    node.key_limiter
        .check(&key)
        .map_err(ApiError::too_many_requests)?;
    Ok(key)
}

fn stored_response(
    hash: PieceHash,
    release: u64,
    outcome: Outcome,
) -> Result<(StatusCode, Json<StoreResponse>), ApiError> {
    let response = |created| {
        Json(StoreResponse {
            hash: hash_to_text(&hash),
            release,
            created,
        })
    };
    match outcome {
        Outcome::Put(PutOutcome::Stored) => Ok((StatusCode::CREATED, response(true))),
        Outcome::Put(PutOutcome::Existing) => Ok((StatusCode::OK, response(false))),
        Outcome::Put(PutOutcome::Conflict { release: have }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "this piece is already stored with release time {}; stored pieces are immutable",
                kairos_proto::time::rfc3339(have)
            ),
        )),
        Outcome::Put(PutOutcome::QuotaFull { used, quota }) => Err(quota_full(used, quota)),
        _ => Err(ApiError::internal("unexpected writer answer")),
    }
}

async fn fetch_piece(
    State(node): State<Arc<Node>>,
    Path(hash_text): Path<String>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash_text)?;
    let now = node.now();
    let store = node.store.clone();
    let found = tokio::task::spawn_blocking(move || store.read(&hash, now))
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))??;
    match found {
        None => Err(ApiError::not_found("this node does not hold that piece")),
        Some((info, None)) => Err(ApiError::locked("this piece", info.release, now)),
        Some((_, Some(body))) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
        }
    }
}
