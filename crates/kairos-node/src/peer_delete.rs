//! `DELETE /v1/pieces/{hash}`: an uploader takes a piece back before its release time — to clean
//! up an upload that failed or was interrupted, or to revoke a file. Documented in
//! `docs/node-api.md`.
//!
//! Invariants: only the key that stored the piece (its per-file uploader key) can delete it,
//! with a request signed for this node within the skew window; a released piece is never
//! deleted (someone may be downloading it); the check and the delete happen in one writer
//! transaction, so they cannot race a store or a sweep. Idempotent: deleting a missing piece
//! is `404 not_found` and changes nothing; no nonce is needed.

use crate::state::Node;
use crate::store::DeleteOutcome;
use crate::writer::{Op, Outcome};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use kairos_net::ApiError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `DELETE /v1/pieces/{hash}` → 200.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeleteResponse {
    pub hash: String,
    pub deleted: bool,
}

pub async fn delete_piece(
    State(node): State<Arc<Node>>,
    Path(hash_text): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<DeleteResponse>, ApiError> {
    let hash = crate::peer_audit::parse(&hash_text)?;
    let now = node.now();
    let signer = crate::peer_audit::signer(&node, &method, &uri, &headers)?;
    let op = Op::Delete {
        hash,
        signer,
        now,
        retention: node.cfg.retention.as_secs(),
    };
    match node.writer.submit(op).await? {
        Outcome::Deleted(DeleteOutcome::Deleted) => Ok(Json(DeleteResponse {
            hash: hash_text.to_ascii_lowercase(),
            deleted: true,
        })),
        Outcome::Deleted(DeleteOutcome::Missing) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this node does not hold that piece",
        )),
        Outcome::Deleted(DeleteOutcome::NotUploader) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_uploader",
            "only the key that stored a piece may delete it",
        )),
        Outcome::Deleted(DeleteOutcome::Released { release }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "released",
            format!(
                "the piece was released at {}; released pieces are not deleted (they expire with the node's retention)",
                kairos_proto::time::rfc3339(release)
            ),
        )),
        _ => Err(ApiError::internal("unexpected writer answer")),
    }
}
