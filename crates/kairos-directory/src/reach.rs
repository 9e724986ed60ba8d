//! Reaching nodes before listing them: a node record is listed only once this directory has
//! reached the node at the address the record advertises and the node signed a fresh
//! challenge there ([`kairos_proto::liveness`]).
//!
//! Without it any key could list itself: thousands of self-signed records at dead addresses
//! cost an attacker nothing and would make every upload try them first.
//!
//! * A subscription (`POST /v1/nodes`) reaches the node before the record is stored, unless
//!   this directory reached the same key at the same address within [`REACH_VALID`]; a node
//!   that cannot be reached gets `422 unreachable` and nothing changes.
//! * Records relayed by siblings and records loaded at start are stored as they come (they
//!   travel on through federation) but listed only once a background probe reached them.
//!
//! Invariants: probes go out through the directory's transport only (over Tor: onion
//! addresses, which validation already requires of records in Tor mode, through tor's SOCKS
//! port); at most [`Limits::max_reach_probes`](crate::config::Limits) run at once per kind
//! (inline, background), a full house answers `503 busy` or drops the background probe (the
//! node's next heartbeat retries); an answer is read up to [`MAX_ANSWER`] bytes, and every
//! field of it is checked: key, address and the signature over the challenge.

use crate::nodes::NodeIndex;
use kairos_net::{ApiError, Transport};
use kairos_proto::liveness::{self, CHALLENGE_LEN};
use kairos_proto::PublicKey;
use rand::RngCore;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long a successful probe vouches for a key at an address (30 minutes): heartbeats within
/// it are not probed again.
pub const REACH_VALID: u64 = 30 * 60;

/// Largest `GET /v1/info` answer read from a node.
const MAX_ANSWER: usize = 4096;

/// Background probes waiting at most.
const QUEUE: usize = 4096;

/// What a node answers at `GET /v1/info?challenge=…` (the fields checked).
#[derive(Deserialize)]
struct InfoAnswer {
    key: String,
    addr: String,
    proof: Option<String>,
}

/// The directory's prober.
pub struct Reach {
    client: reqwest::Client,
    timeout: Duration,
    inline: Semaphore,
    /// Probes in flight at once, per kind.
    max_probes: usize,
    queue: mpsc::Sender<(PublicKey, String)>,
}

impl Reach {
    /// A prober over `transport`; background probes are served by [`Reach::run`] with the
    /// returned receiver.
    pub fn new(
        transport: &Transport,
        timeout: Duration,
        max_probes: usize,
    ) -> Result<(Reach, mpsc::Receiver<(PublicKey, String)>), kairos_net::TransportError> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let reach = Reach {
            client: transport.client("reach")?,
            timeout,
            inline: Semaphore::new(max_probes.max(1)),
            max_probes: max_probes.max(1),
            queue,
        };
        Ok((reach, rx))
    }

    /// Reaches `key` at `addr` now, for a subscription: `503 busy` when too many probes run,
    /// `422 unreachable` when the node does not answer as `key` there.
    pub async fn check(&self, key: &PublicKey, addr: &str) -> Result<(), ApiError> {
        let _slot = self
            .inline
            .try_acquire()
            .map_err(|_| ApiError::busy("node reachability checks", 5))?;
        self.probe(key, addr).await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "unreachable",
                format!(
                    "this directory could not reach node {key} at {addr} ({e}); a node is listed only once its peer API answers, as its key, at the address its record advertises"
                ),
            )
        })
    }

    /// Queues a background probe of `key` at `addr` (dropped when the queue is full).
    pub fn enqueue(&self, key: PublicKey, addr: String) {
        let _ = self.queue.try_send((key, addr));
    }

    /// One probe: a fresh challenge, the node's answer, every field checked.
    async fn probe(&self, key: &PublicKey, addr: &str) -> Result<(), String> {
        let started = std::time::Instant::now();
        let result = self.probe_once(key, addr).await;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "probed node {key} at {addr}"
        );
        result
    }

    async fn probe_once(&self, key: &PublicKey, addr: &str) -> Result<(), String> {
        let mut challenge = [0u8; CHALLENGE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        let path = format!(
            "/v1/info?challenge={}",
            data_encoding::HEXLOWER.encode(&challenge)
        );
        let answer = tokio::time::timeout(self.timeout, self.ask(addr, &path))
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))??;
        if answer.key != key.to_text() {
            return Err(format!("it answers as another node ({})", answer.key));
        }
        if answer.addr != addr {
            return Err(format!("it advertises another address ({})", answer.addr));
        }
        let proof: [u8; 64] = (answer.proof.as_deref())
            .and_then(|p| data_encoding::HEXLOWER_PERMISSIVE.decode(p.as_bytes()).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or("its answer carries no liveness proof")?;
        liveness::verify(key, &challenge, addr, &proof)
            .map_err(|_| "its liveness proof does not verify".to_owned())
    }

    async fn ask(&self, addr: &str, path: &str) -> Result<InfoAnswer, String> {
        let resp = (self.client.get(Transport::url(addr, path)).send().await)
            .map_err(|e| format!("connection failed: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("it answered {}", resp.status()));
        }
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(format!("its answer is over {MAX_ANSWER} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("its answer is not node info: {e}"))
    }

    /// Serves queued background probes, at most `max_probes` at once, marking each reached
    /// node in `index`, until `stop`.
    pub async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<(PublicKey, String)>,
        index: Arc<NodeIndex>,
        clock: kairos_proto::Clock,
        stop: CancellationToken,
    ) {
        let slots = Arc::new(Semaphore::new(self.max_probes));
        let mut running = tokio::task::JoinSet::new();
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                _ = stop.cancelled() => None,
            };
            let Some((key, addr)) = next else { break };
            while running.try_join_next().is_some() {}
            if index.reached_since(&key, &addr, clock.now().saturating_sub(REACH_VALID)) {
                continue;
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (reach, index, clock) = (self.clone(), index.clone(), clock.clone());
            running.spawn(async move {
                let _slot = slot;
                match reach.probe(&key, &addr).await {
                    Ok(()) => index.mark_reached(key, &addr, clock.now()),
                    Err(e) => tracing::debug!("node {key} at {addr} not reached: {e}"),
                }
            });
        }
    }
}
