//! The local API (documented in `docs/node-api.md`): what the CLI asks of its daemon, over
//! HTTP/1.1 on the Unix socket `home/kairos.sock` (mode 0600, see [`crate::socket`]).
//!
//! * `GET /v1/status` → [`Status`];
//! * `POST /v1/start` → join the network now → [`StartResult`];
//! * `POST /v1/put` [`PutRequest`] → NDJSON [`Event`] stream ending in `put_result` or `error`;
//! * `POST /v1/get` [`GetRequest`] → NDJSON [`Event`] stream ending in `get_result` or `error`.
//!
//! Invariants: the socket is the only way in (no TCP port), so only the daemon's user can
//! drive it; a put or get whose client disconnects is cancelled (its temporary files are
//! removed); every stream ends with exactly one terminal event.

use crate::ops::{EventSink, OpError};
use crate::state::Node;
use crate::wire::{Event, GetRequest, PutRequest, StartResult, Status};
use crate::{get, heartbeat, put};
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get as get_route, post};
use axum::{Json, Router};
use bytes::Bytes;
use kairos_net::request::bad_method;
use kairos_net::ApiError;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Local {
    node: Arc<Node>,
    stop: CancellationToken,
}

pub fn router(node: Arc<Node>, stop: CancellationToken) -> Router {
    Router::new()
        .route("/v1/status", get_route(status))
        .route("/v1/start", post(start))
        .route("/v1/put", post(put_file))
        .route("/v1/get", post(get_file))
        .fallback(no_route)
        .method_not_allowed_fallback(bad_method)
        .with_state(Local { node, stop })
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no such route: {} (is the CLI newer than the daemon?)",
            uri.path()
        ),
    )
}

fn bad_json(e: JsonRejection) -> ApiError {
    ApiError::bad_request("bad_request", e.body_text())
}

async fn status(State(l): State<Local>) -> Json<Status> {
    Json(l.node.status())
}

async fn start(State(l): State<Local>) -> Json<StartResult> {
    let reached = heartbeat::join(&l.node).await;
    Json(StartResult {
        joined: l.node.membership.joined(),
        directories_reached: reached,
        directories: l.node.membership.directories(),
    })
}

async fn put_file(
    State(l): State<Local>,
    req: Result<Json<PutRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = req.map_err(bad_json)?;
    let node = l.node.clone();
    Ok(stream_op(l, move |sink| async move {
        match put::put(node, req.path, req.release, sink).await {
            Ok(r) => Event::PutResult(r),
            Err(e) => Event::Error(e.to_event()),
        }
    }))
}

async fn get_file(
    State(l): State<Local>,
    req: Result<Json<GetRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = req.map_err(bad_json)?;
    let node = l.node.clone();
    Ok(stream_op(l, move |sink| async move {
        match get::get(node, req.id, req.output, sink).await {
            Ok(r) => Event::GetResult(r),
            Err(e) => Event::Error(e.to_event()),
        }
    }))
}

/// Runs an operation in its own task and streams its events as NDJSON. The operation is
/// dropped (cancelled) if the client goes away or the daemon stops.
fn stream_op<F, Fut>(l: Local, op: F) -> Response
where
    F: FnOnce(EventSink) -> Fut,
    Fut: Future<Output = Event> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let fut = op(EventSink::new(tx.clone()));
    let stop = l.stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            last = fut => { let _ = tx.send(last); }
            _ = tx.closed() => tracing::info!("local client went away; operation cancelled"),
            _ = stop.cancelled() => {
                let e = OpError::Internal("the daemon is shutting down; run the command again after it restarts".into());
                let _ = tx.send(Event::Error(e.to_event()));
            }
        }
    });
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}
