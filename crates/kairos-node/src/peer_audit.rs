//! What the uploader of a piece may ask its holder before release, besides taking it back
//! (`peer_delete`): documented in `docs/node-api.md`.
//!
//! * `GET /v1/pieces/{hash}/audit?chunks=I,J,…` — proof that the holder still has the whole
//!   piece: the named 1 KiB chunks with their Merkle paths to the piece hash
//!   ([`kairos_seal::audit`]);
//! * `GET /v1/pieces/{hash}/shard` — the shard part of the piece, for a repair elsewhere.
//!
//! Invariants: only the key that stored the piece (its per-file uploader key), in a request
//! signed for this node within the skew window, gets an answer; a stranger learns nothing but
//! `403 not_uploader` (not even whether the piece exists after the signature check). **Neither
//! answer ever contains the key share**: a proof of chunk 0 leaves the share's bytes out, and
//! the shard route sends only the bytes after the share. So what a holder gives its uploader is
//! ciphertext only, which the uploader could rebuild anyway.

use crate::piece::hash_from_text;
use crate::state::Node;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kairos_net::ApiError;
use kairos_seal::audit::{self, MAX_AUDIT_CHUNKS};
use kairos_seal::{PieceHash, SHARE_LEN};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct AuditQuery {
    chunks: String,
}

/// `GET /v1/pieces/{hash}/audit?chunks=…` → 200, the proofs ([`audit::encode`]).
pub async fn audit_piece(
    State(node): State<Arc<Node>>,
    Path(hash_text): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let hash = parse(&hash_text)?;
    let data = uploader_read(&node, &hash, &method, &uri, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let chunks = parse_chunks(&q.chunks, audit::chunk_count(data.len() as u64))?;
    let proofs = tokio::task::spawn_blocking(move || {
        let proofs: Option<Vec<_>> = chunks.iter().map(|&c| audit::prove(&data, c)).collect();
        proofs.map(|p| audit::encode(&p))
    })
    .await
    .map_err(|e| ApiError::internal(format!("audit task failed: {e}")))?
    .ok_or_else(|| ApiError::internal("the stored piece is shorter than its key share"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], proofs).into_response())
}

/// `GET /v1/pieces/{hash}/shard` → 200, the shard bytes (no header, no share).
pub async fn fetch_shard(
    State(node): State<Arc<Node>>,
    Path(hash_text): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hash = parse(&hash_text)?;
    let mut data = uploader_read(&node, &hash, &method, &uri, &headers).await?;
    if data.len() < SHARE_LEN {
        return Err(ApiError::internal(
            "the stored piece is shorter than its key share",
        ));
    }
    let shard = data.split_off(SHARE_LEN);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], shard).into_response())
}

pub(crate) fn parse(text: &str) -> Result<PieceHash, ApiError> {
    hash_from_text(text).ok_or_else(|| {
        ApiError::bad_request(
            "bad_hash",
            "a piece id is 64 hex digits (the BLAKE3 piece hash)",
        )
    })
}

/// `1,5,9` → chunk indices: 1 to [`MAX_AUDIT_CHUNKS`] of them, each below `count`.
fn parse_chunks(text: &str, count: u64) -> Result<Vec<u64>, ApiError> {
    let bad = |why: String| ApiError::bad_request("bad_query", why);
    let chunks: Vec<u64> = text
        .split(',')
        .map(|c| c.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("chunks: a comma-separated list of chunk indices".into()))?;
    if chunks.is_empty() || chunks.len() > MAX_AUDIT_CHUNKS {
        return Err(bad(format!("chunks: 1 to {MAX_AUDIT_CHUNKS} indices")));
    }
    if let Some(c) = chunks.iter().find(|&&c| c >= count) {
        return Err(bad(format!(
            "chunk {c} is out of range: the piece has {count} chunks of 1 KiB"
        )));
    }
    Ok(chunks)
}

/// Verifies the request is signed for this node by the key that stored `hash` and reads the
/// stored `share ‖ shard`.
async fn uploader_read(
    node: &Node,
    hash: &PieceHash,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Vec<u8>, ApiError> {
    let signer = signer(node, method, uri, headers)?;
    let store = node.store.clone();
    let hash = *hash;
    let found = tokio::task::spawn_blocking(move || store.read_data(&hash))
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))??;
    match found {
        Some((info, data)) if info.uploader == signer => Ok(data),
        Some(_) => Err(not_uploader()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this node does not hold that piece",
        )),
    }
}

/// The key that signed a bodiless request for this node within the skew window, after its
/// rate check. No nonce: audits, shard fetches and deletes change nothing when replayed.
pub(crate) fn signer(
    node: &Node,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<kairos_proto::PublicKey, ApiError> {
    let receiver = kairos_net::signed::Receiver {
        key: &node.identity.public(),
        now: node.now(),
        max_skew: node.skew(),
        replay: None,
    };
    let signer = kairos_net::signed::verify_request(headers, method, uri, b"", &receiver)?.key();
    node.key_limiter
        .check(&signer)
        .map_err(ApiError::too_many_requests)?;
    Ok(signer)
}

fn not_uploader() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "not_uploader",
        "only the key that stored a piece may audit it or fetch its shard",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_lists_are_bounded_and_in_range() {
        assert_eq!(parse_chunks("0,3, 7", 8).unwrap(), vec![0, 3, 7]);
        assert!(parse_chunks("8", 8).is_err());
        assert!(parse_chunks("", 8).is_err());
        assert!(parse_chunks("1,,2", 8).is_err());
        assert!(parse_chunks("-1", 8).is_err());
        assert!(parse_chunks("18446744073709551616", 8).is_err());
        let many = vec!["1"; MAX_AUDIT_CHUNKS + 1].join(",");
        assert!(parse_chunks(&many, 8).is_err());
    }
}
