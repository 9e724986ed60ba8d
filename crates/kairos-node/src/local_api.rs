//! The local API (documented in `docs/node-api.md`): what the CLI asks of its daemon, over
//! HTTP/1.1 on the Unix socket `home/kairos.sock` (mode 0600, see [`crate::socket`]).
//!
//! * `GET /v1/status` → [`Status`];
//! * `POST /v1/start` → join the network now → [`StartResult`];
//! * `POST /v1/put` [`PutRequest`] → NDJSON [`Event`] stream ending in `put_result` or `error`;
//! * `POST /v1/get` [`GetRequest`] → NDJSON [`Event`] stream carrying the file (`file`, then
//!   `data` events) and ending in `get_result` or `error`;
//! * `GET /v1/uploads` → [`Uploads`], this node's own uploads (`kairos ls`);
//! * `GET /v1/files/{id}` → [`FileReport`] (`kairos info`);
//! * `GET /v1/check/{id}` → [`CheckReport`], one of this node's uploads (`kairos check`).
//! * `POST /v1/repair/{id}` → [`RepairReport`], audit and repair one (`kairos repair`).
//! * `POST /v1/revoke/{id}` → [`RevokeReport`], take one back before release (`kairos revoke`).
//!
//! Invariants: the socket is the only way in (no TCP port), so only the daemon's user can
//! drive it; a put or get whose client disconnects is cancelled (its temporary files are
//! removed); every stream ends with exactly one terminal event, after every `data` event.

use crate::ops::{EventSink, OpError};
use crate::state::Node;
use crate::wire::{
    CheckReport, Event, FileReport, GetRequest, PutRequest, RepairReport, RevokeReport,
    StartResult, Status, Uploads,
};
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
        .route("/v1/uploads", get_route(uploads))
        .route("/v1/files/{id}", get_route(file_info))
        .route("/v1/check/{id}", get_route(file_check))
        .route("/v1/repair/{id}", post(file_repair))
        .route("/v1/revoke/{id}", post(file_revoke))
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

async fn uploads(State(l): State<Local>) -> Result<Json<Uploads>, ApiError> {
    let uploads = crate::history::list(l.node.store.db()).map_err(|e| {
        ApiError::internal(format!("reading this node's upload history failed: {e}"))
    })?;
    Ok(Json(Uploads { uploads }))
}

async fn file_info(
    State(l): State<Local>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<FileReport>, ApiError> {
    let id = parse_id(&id)?;
    let report = crate::info::file_report(&l.node, &id)
        .await
        .map_err(op_error)?;
    Ok(Json(report))
}

async fn file_check(
    State(l): State<Local>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<CheckReport>, ApiError> {
    let id = parse_id(&id)?;
    let report = crate::check::check(&l.node, &id).await.map_err(op_error)?;
    Ok(Json(report))
}

async fn file_repair(
    State(l): State<Local>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<RepairReport>, ApiError> {
    let id = parse_id(&id)?;
    let report = crate::repair::repair(&l.node, &id)
        .await
        .map_err(op_error)?;
    Ok(Json(report))
}

async fn file_revoke(
    State(l): State<Local>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<RevokeReport>, ApiError> {
    let id = parse_id(&id)?;
    let report = crate::revoke::revoke(&l.node, &id)
        .await
        .map_err(op_error)?;
    Ok(Json(report))
}

fn parse_id(id: &str) -> Result<kairos_proto::FileId, ApiError> {
    id.parse()
        .map_err(|e| ApiError::bad_request("bad_file_id", format!("{e}")))
}

/// A non-streamed operation's error as an HTTP answer with the operation's code.
fn op_error(e: OpError) -> ApiError {
    let status = match e {
        OpError::NotFound => StatusCode::NOT_FOUND,
        OpError::Revoked => StatusCode::GONE,
        OpError::BadInput(_) => StatusCode::BAD_REQUEST,
        OpError::DirectoryUnreachable(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.code(), e.to_string())
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
    Ok(stream_op(l, None, move |sink| async move {
        match put::put(node, req, sink).await {
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
    let (data_tx, data_rx) = mpsc::channel::<Event>(DATA_QUEUE);
    Ok(stream_op(l, Some(data_rx), move |sink| async move {
        match get::get(node, req.id, data_tx, sink).await {
            Ok(r) => Event::GetResult(r),
            Err(e) => Event::Error(e.to_event()),
        }
    }))
}

/// `data` events queued for the CLI at most (256 KiB of the file each): the opener waits when
/// the CLI, or whatever it writes to, is slower.
const DATA_QUEUE: usize = 4;

/// The two queues of a stream: `data` (bounded, the file's bytes, in order) and everything
/// else. Data is taken first, so the terminal event, sent only after the operation returned
/// and so after its last data, always comes after every data event.
struct Queues {
    events: mpsc::UnboundedReceiver<Event>,
    data: Option<mpsc::Receiver<Event>>,
}

impl Queues {
    async fn next(&mut self) -> Option<Event> {
        let Some(data) = self.data.as_mut() else {
            return self.events.recv().await;
        };
        tokio::select! {
            biased;
            d = data.recv() => match d {
                Some(d) => Some(d),
                None => {
                    self.data = None;
                    self.events.recv().await
                }
            },
            e = self.events.recv() => e,
        }
    }
}

/// Runs an operation in its own task and streams its events as NDJSON. The operation is
/// dropped (cancelled) if the client goes away or the daemon stops.
fn stream_op<F, Fut>(l: Local, data: Option<mpsc::Receiver<Event>>, op: F) -> Response
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
    let queues = Queues { events: rx, data };
    let lines = futures::stream::unfold(queues, |mut q| async move {
        let event = q.next().await?;
        // Sized up front: a `data` line is ~350 KiB, and growing a Vec by doubling would
        // allocate twice that per line.
        let size = match &event {
            Event::Data { b64 } => b64.len() + 32,
            _ => 256,
        };
        let mut line = Vec::with_capacity(size);
        if serde_json::to_writer(&mut line, &event).is_err() {
            line.clear();
        }
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), q))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}
