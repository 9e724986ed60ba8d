//! The CLI's client of the local API: HTTP/1.1 over the daemon's Unix socket.
//!
//! Invariant: the client holds no keys and reads no files; it sends paths and ids to the
//! daemon, which does the work with its own identity. A download is written by the client
//! itself, as its user and against its working directory ([`crate::target`]), and moved into
//! place only after the daemon's `get_result`. A stream that ends without a terminal event is
//! an error, never a silent success.

pub use crate::target::Destination;
use crate::target::{Output, OutputError};
pub use crate::wire::{
    BadPiece, DirectoryStatus, ErrorEvent, Event, GetResult, PutResult, StartResult, Status,
};
use crate::wire::{
    CheckReport, FileReport, GetRequest, LockChoice, PutRequest, RepairReport, RevokeReport,
    Uploads,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kairos_proto::FileId;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio::net::UnixStream;

/// Why a local API call failed.
#[derive(Debug, Error)]
pub enum LocalError {
    /// (The I/O error is part of the message, not a `source`, so a report of the chain says
    /// it once.)
    #[error("no kairos daemon answers at {}: {error}; start one with `kairos daemon` (and check --home / KAIROS_HOME)", socket.display())]
    NotRunning {
        socket: PathBuf,
        error: std::io::Error,
    },
    /// The file is time-locked; `until` is the release time (Unix seconds).
    #[error("{message}")]
    Locked { until: u64, message: String },
    /// A typed failure reported by the daemon (`code` as in [`ErrorEvent::error`]).
    #[error("{message}")]
    Daemon {
        code: String,
        message: String,
        needed: Option<usize>,
        known: Option<usize>,
    },
    /// The download could not be written where asked (code `bad_output`).
    #[error("{0}")]
    Output(String),
    #[error(
        "the daemon's answer was not understood: {0} (are the CLI and daemon the same version?)"
    )]
    Protocol(String),
}

impl LocalError {
    /// The stable error code (`locked`, `not_enough_nodes`, …; `not_running`, `protocol` for
    /// failures on this side).
    pub fn code(&self) -> &str {
        match self {
            LocalError::NotRunning { .. } => "not_running",
            LocalError::Locked { .. } => "locked",
            LocalError::Daemon { code, .. } => code,
            LocalError::Output(_) => "bad_output",
            LocalError::Protocol(_) => "protocol",
        }
    }

    /// For a locked file, its release time.
    pub fn locked_until(&self) -> Option<u64> {
        match self {
            LocalError::Locked { until, .. } => Some(*until),
            _ => None,
        }
    }

    fn from_event(e: ErrorEvent) -> Self {
        match (e.error.as_str(), e.locked_until) {
            ("locked", Some(until)) => LocalError::Locked {
                until,
                message: e.message,
            },
            _ => LocalError::Daemon {
                code: e.error,
                message: e.message,
                needed: e.needed,
                known: e.known,
            },
        }
    }
}

/// Client of one daemon's local API.
/// How [`LocalClient::put_with`] seals a file (default: the path's name, the node's lock).
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub name: Option<String>,
    pub lock: Option<LockChoice>,
}

#[derive(Clone, Debug)]
pub struct LocalClient {
    socket: PathBuf,
}

impl From<OutputError> for LocalError {
    fn from(e: OutputError) -> Self {
        LocalError::Output(e.0)
    }
}

fn protocol(e: impl std::fmt::Display) -> LocalError {
    LocalError::Protocol(e.to_string())
}

/// Makes a path absolute against the current directory (the daemon may run elsewhere).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

impl LocalClient {
    /// A client of the daemon listening on `socket` (`home/kairos.sock`).
    pub fn new(socket: PathBuf) -> Self {
        LocalClient { socket }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, LocalError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|error| LocalError::NotRunning {
                    socket: self.socket.clone(),
                    error,
                })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(protocol)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("local API connection: {e}");
            }
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "kairos")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(protocol)?;
        sender.send_request(req).await.map_err(protocol)
    }

    /// Reads a whole (small) JSON answer; a non-200 answer is the daemon's error body.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        resp: Response<Incoming>,
    ) -> Result<T, LocalError> {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(protocol)?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(error_body(status, &body));
        }
        serde_json::from_slice(&body).map_err(protocol)
    }

    /// The daemon's status.
    pub async fn status(&self) -> Result<Status, LocalError> {
        let resp = self.request(Method::GET, "/v1/status", None).await?;
        self.json(resp).await
    }

    /// This node's own uploads, oldest release first.
    pub async fn uploads(&self) -> Result<Uploads, LocalError> {
        let resp = self.request(Method::GET, "/v1/uploads", None).await?;
        self.json(resp).await
    }

    /// What the network says about file `id` (release time; manifest details after release,
    /// or before it for this node's own uploads).
    pub async fn file_info(&self, id: &FileId) -> Result<FileReport, LocalError> {
        let resp = self
            .request(Method::GET, &format!("/v1/files/{id}"), None)
            .await?;
        self.json(resp).await
    }

    /// Where the pieces of this node's upload `id` stand.
    pub async fn check(&self, id: &FileId) -> Result<CheckReport, LocalError> {
        let resp = self
            .request(Method::GET, &format!("/v1/check/{id}"), None)
            .await?;
        self.json(resp).await
    }

    /// Audits this node's upload `id` and rebuilds what it lost.
    pub async fn repair(&self, id: &FileId) -> Result<RepairReport, LocalError> {
        let resp = self
            .request(Method::POST, &format!("/v1/repair/{id}"), None)
            .await?;
        self.json(resp).await
    }

    /// Revokes this node's upload `id` before its release.
    pub async fn revoke(&self, id: &FileId) -> Result<RevokeReport, LocalError> {
        let resp = self
            .request(Method::POST, &format!("/v1/revoke/{id}"), None)
            .await?;
        self.json(resp).await
    }

    /// Tells the daemon to join the network (subscribe to its directories now and heartbeat).
    pub async fn start(&self) -> Result<StartResult, LocalError> {
        let resp = self.request(Method::POST, "/v1/start", None).await?;
        self.json(resp).await
    }

    /// Uploads `path` (made absolute if relative) to open at `release` (Unix seconds).
    /// `on_event` sees every non-terminal event (progress, info, warnings).
    pub async fn put(
        &self,
        path: &Path,
        release: u64,
        on_event: impl FnMut(&Event),
    ) -> Result<PutResult, LocalError> {
        self.put_with(path, release, PutOptions::default(), on_event)
            .await
    }

    /// [`LocalClient::put`] with options: the name to seal instead of the path's last
    /// component (`put -`, whose bytes were spooled to a temporary file) and the time-lock.
    pub async fn put_with(
        &self,
        path: &Path,
        release: u64,
        options: PutOptions,
        mut on_event: impl FnMut(&Event),
    ) -> Result<PutResult, LocalError> {
        let req = PutRequest {
            path: absolute(path),
            release,
            name: options.name,
            lock: options.lock,
        };
        let body = serde_json::to_vec(&req).map_err(protocol)?;
        let resp = self.request(Method::POST, "/v1/put", Some(body)).await?;
        let handle = |e: Event| {
            on_event(&e);
            Ok(())
        };
        match self.events(resp, handle).await? {
            Event::PutResult(r) => Ok(r),
            other => Err(protocol(format!("unexpected final event {other:?}"))),
        }
    }

    /// Downloads file `id` to `output` (made absolute if relative): a new file, or an
    /// existing directory to create the file in under its sealed name. Never replaces a file.
    pub async fn get(
        &self,
        id: &FileId,
        output: &Path,
        on_event: impl FnMut(&Event),
    ) -> Result<GetResult, LocalError> {
        let dest = Destination::Path {
            path: absolute(output),
            force: false,
        };
        self.get_to(id, dest, on_event).await
    }

    /// Downloads file `id` to `dest`. The destination is checked before the request is sent
    /// (see [`crate::target`]); `on_event` sees every non-terminal event but the file's bytes.
    pub async fn get_to(
        &self,
        id: &FileId,
        dest: Destination,
        mut on_event: impl FnMut(&Event),
    ) -> Result<GetResult, LocalError> {
        let mut out = Output::new(dest)?;
        let body = serde_json::to_vec(&GetRequest { id: *id }).map_err(protocol)?;
        let resp = self.request(Method::POST, "/v1/get", Some(body)).await?;
        let handle = |e: Event| match e {
            Event::File { name } => Ok(out.begin(&name, id)?),
            Event::Data { b64 } => {
                let bytes = data_encoding::BASE64
                    .decode(b64.as_bytes())
                    .map_err(protocol)?;
                Ok(out.write(&bytes)?)
            }
            other => {
                on_event(&other);
                Ok(())
            }
        };
        match self.events(resp, handle).await? {
            Event::GetResult(mut r) => {
                r.path = out.finish()?;
                Ok(r)
            }
            other => Err(protocol(format!("unexpected final event {other:?}"))),
        }
    }

    /// Reads an NDJSON event stream up to its terminal event.
    async fn events(
        &self,
        resp: Response<Incoming>,
        mut on_event: impl FnMut(Event) -> Result<(), LocalError>,
    ) -> Result<Event, LocalError> {
        let status = resp.status();
        let mut body = resp.into_body();
        if status != StatusCode::OK {
            let bytes = body.collect().await.map_err(protocol)?.to_bytes();
            return Err(error_body(status, &bytes));
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                LocalError::Protocol(format!("the daemon closed the stream early: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                if line.len() <= 1 {
                    continue;
                }
                let event: Event = serde_json::from_slice(&line).map_err(protocol)?;
                match event {
                    Event::Error(e) => return Err(LocalError::from_event(e)),
                    e if e.is_terminal() => return Ok(e),
                    e => on_event(e)?,
                }
            }
        }
        Err(LocalError::Protocol(
            "the daemon ended the stream without a result (did it stop?)".into(),
        ))
    }
}

fn error_body(status: StatusCode, body: &[u8]) -> LocalError {
    match serde_json::from_slice::<kairos_net::ErrorBody>(body) {
        Ok(b) => LocalError::from_event(ErrorEvent {
            error: b.error,
            message: b.message,
            locked_until: b.locked_until,
            needed: None,
            known: None,
        }),
        Err(_) => LocalError::Protocol(format!("HTTP {status} without an error body")),
    }
}
