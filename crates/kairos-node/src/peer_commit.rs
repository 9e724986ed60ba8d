//! `POST /v1/commit/{file id}`: an uploader asks this node to keep the pieces of a file it
//! published ([`crate::pending`]). Documented in `docs/node-api.md`.
//!
//! Invariants: the request's word is never taken — this node asks its own directories which
//! pieces the newest placement of that file puts on it (`GET /v1/placements/{id}/held`,
//! signed by this node's key) and commits only those, only if the request is signed by the
//! key that the manifest names as uploader (the key that stored them). Idempotent, no nonce.

use crate::state::Node;
use crate::wire::CommitResponse;
use crate::writer::{Op, Outcome};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use kairos_directory_client::ClientError;
use kairos_net::ApiError;
use kairos_proto::{FileId, PublicKey};
use std::sync::Arc;

pub async fn commit(
    State(node): State<Arc<Node>>,
    Path(id_text): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<CommitResponse>, ApiError> {
    let id: FileId = id_text
        .parse()
        .map_err(|e| ApiError::bad_request("bad_id", format!("not a file id: {e}")))?;
    let signer = crate::peer_audit::signer(&node, &method, &uri, &headers)?;
    let dirs = node
        .directories()
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "no_directory", e.to_string()))?;
    let held = match dirs.held_pieces(&id, &node.identity).await {
        Ok(h) => h,
        Err(ClientError::NotFound) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_placed",
                format!("no directory of this node holds a placement of {id} that names this node yet (publish it, or retry once the directories have federated it)"),
            ))
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "directory_unreachable",
                format!("this node could not ask its directories about {id}: {e}"),
            ))
        }
    };
    let uploader = PublicKey::from_text(&held.uploader).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_directory_answer",
            "a directory named no valid uploader key",
        )
    })?;
    if uploader != signer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_uploader",
            "only the file's uploader key may commit its pieces",
        ));
    }
    let hashes: Vec<_> = (held.hashes.iter())
        .filter_map(|h| crate::piece::hash_from_text(h))
        .collect();
    let total = hashes.len() as u64;
    match node.writer.submit(Op::Commit { uploader, hashes }).await? {
        Outcome::Committed(n) => Ok(Json(CommitResponse {
            held: total,
            committed: n as u64,
        })),
        _ => Err(ApiError::internal("unexpected writer answer")),
    }
}
