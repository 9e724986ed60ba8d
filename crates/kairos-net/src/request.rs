//! Request plumbing shared by the routes of every kairos server: bounded body reading, the
//! per-connection rate limit, and the JSON answers to unknown routes and methods.
//!
//! Invariants: [`read_body`] never buffers more than its `limit` — an oversized declared
//! `Content-Length` is refused before anything is read, a body that grows past the limit is
//! refused as soon as it does — and a body that takes longer than `timeout`, or after
//! [`BODY_GRACE`] arrives slower than [`MIN_BODY_RATE`] on average, is cut off (so a sender
//! trickling bytes cannot hold memory for the whole timeout); [`read_body_within`] counts
//! every received byte against a [`BodyBudget`] (memory is bounded by bytes actually held, so
//! stalled senders hold nothing) and waits a bounded time for room, then answers `503 busy`;
//! [`limit_connection`] spends one token of the connection's bucket per request, keyed by the
//! [`ConnId`] the accept loop ([`crate::serve`]) attaches (0 if there is none).

use crate::ratelimit::RateLimiter;
use crate::serve::ConnId;
use crate::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Time a body may take before [`MIN_BODY_RATE`] applies (connection and circuit warm-up).
pub const BODY_GRACE: Duration = Duration::from_secs(10);
/// Slowest average rate a body may arrive at after [`BODY_GRACE`], bytes per second. One Tor
/// circuit carries MB/s; 16 KiB/s is generous to any real sender and makes holding memory cost
/// an attacker bandwidth.
pub const MIN_BODY_RATE: u64 = 16 * 1024;

/// How long a request waits for room in a [`BodyBudget`] before `503 busy`.
pub const SLOT_WAIT: Duration = Duration::from_secs(5);

/// Reads the first `n` bytes of `body` (fewer if it is shorter) within `timeout`, before any
/// body budget is taken, and hands back the body whole (those bytes included) for
/// [`read_body`]. A route whose signature covers a short head of the body (a piece store) checks
/// it on these bytes first, so a request that fails its cheap checks never holds budget. Holds
/// at most the chunks that delivered the first `n` bytes (one or two transport reads).
pub async fn peek_body(body: Body, n: usize, timeout: Duration) -> Result<(Bytes, Body), ApiError> {
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut have = 0usize;
    let read = async {
        while have < n {
            match stream.next().await {
                None => break,
                Some(Ok(chunk)) => {
                    have += chunk.len();
                    chunks.push(chunk);
                }
                Some(Err(e)) => {
                    return Err(ApiError::bad_request(
                        "body_read",
                        format!("could not read the request body: {e}"),
                    ))
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the first {n} bytes of the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )
    })??;
    let mut head = BytesMut::with_capacity(n);
    for c in &chunks {
        let take = (n - head.len()).min(c.len());
        head.extend_from_slice(&c[..take]);
        if head.len() == n {
            break;
        }
    }
    let replay = futures::stream::iter(chunks.into_iter().map(Ok::<_, axum::Error>));
    Ok((head.freeze(), Body::from_stream(replay.chain(stream))))
}

/// Whether `received` bytes after `elapsed` is too slow (see [`MIN_BODY_RATE`]).
fn too_slow(received: u64, elapsed: Duration) -> bool {
    let Some(late) = elapsed.checked_sub(BODY_GRACE) else {
        return false;
    };
    received < MIN_BODY_RATE.saturating_mul(late.as_secs())
}

fn slow_body(received: u64, elapsed: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_too_slow",
        format!(
            "the request body arrived too slowly ({received} bytes in {} s; at least {MIN_BODY_RATE} bytes/s are needed after {} s)",
            elapsed.as_secs(),
            BODY_GRACE.as_secs()
        ),
    )
}

/// The request's `Content-Length`, if present and a number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Memory for request bodies, counted in bytes actually received: a body holds one permit
/// per byte it has sent so far, so senders that stall hold (almost) nothing, and honest bodies
/// are never turned away because slow ones sit on whole slots.
#[derive(Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    what: &'static str,
}

/// The budget bytes one body holds until it is dropped.
pub type BudgetHeld = Option<OwnedSemaphorePermit>;

impl BodyBudget {
    /// `bytes` of bodies at once, for bodies of `what` (named in `503 busy` answers).
    pub fn new(bytes: usize, what: &'static str) -> Self {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
            what,
        }
    }

    /// Takes `n` more bytes into `held`, waiting at most [`SLOT_WAIT`] for room.
    async fn take(&self, held: &mut BudgetHeld, n: usize) -> Result<(), ApiError> {
        let n = u32::try_from(n).map_err(|_| ApiError::internal("body chunk too large"))?;
        let wait = self.bytes.clone().acquire_many_owned(n);
        let permit = match tokio::time::timeout(SLOT_WAIT, wait).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(ApiError::internal("body budget closed")),
            Err(_) => return Err(ApiError::busy(self.what, SLOT_WAIT.as_secs())),
        };
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

/// Reads the whole body (`declared` is its [`content_length`]), refusing more than `limit`
/// bytes with `too_large()` (the caller's 413) or a sender slower than `timeout` (408).
pub async fn read_body(
    body: Body,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    let (bytes, _) = read_body_within(body, declared, limit, timeout, None, too_large).await?;
    Ok(bytes)
}

/// Makes room for `more` bytes: doubling as bytes arrive (never more than twice what was
/// received, so a sender cannot make us allocate far ahead of what it sends), but never past
/// the declared length — plain doubling would leave a 1 MiB body in a 2 MiB buffer.
fn grow_for(buf: &mut BytesMut, more: usize, declared: Option<u64>) {
    let needed = buf.len() + more;
    if needed <= buf.capacity() {
        return;
    }
    let mut want = needed.max(buf.len() * 2);
    if let Some(declared) = declared {
        want = want
            .min(usize::try_from(declared).unwrap_or(usize::MAX))
            .max(needed);
    }
    // Not `reserve`: it may double the capacity past `want`.
    let mut bigger = BytesMut::with_capacity(want);
    bigger.extend_from_slice(buf);
    *buf = bigger;
}

/// [`read_body`], holding `budget` bytes for every byte received (if given): the returned
/// permit is the body's share, to keep as long as the bytes are in memory. The buffer is
/// never more than twice what arrived, whatever `declared` says ([`grow_for`]).
pub async fn read_body_within(
    body: Body,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
    budget: Option<&BodyBudget>,
    too_large: impl Fn() -> ApiError,
) -> Result<(Bytes, BudgetHeld), ApiError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let started = Instant::now();
    let mut held: BudgetHeld = None;
    let read = async {
        let mut buf = BytesMut::new();
        let mut stream = body.into_data_stream();
        loop {
            // Wake at least every second to apply the minimum rate to a silent sender.
            let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
            let chunk = match next {
                Err(_) => None,
                Ok(None) => break,
                Ok(Some(chunk)) => Some(chunk),
            };
            let Some(chunk) = chunk else {
                let elapsed = started.elapsed();
                if too_slow(buf.len() as u64, elapsed) {
                    return Err(slow_body(buf.len() as u64, elapsed));
                }
                continue;
            };
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("body_read", format!("could not read the request body: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            if let Some(budget) = budget {
                budget.take(&mut held, chunk.len()).await?;
            }
            grow_for(&mut buf, chunk.len(), declared);
            buf.extend_from_slice(&chunk);
            if too_slow(buf.len() as u64, started.elapsed()) {
                return Err(slow_body(buf.len() as u64, started.elapsed()));
            }
        }
        Ok(buf.freeze())
    };
    let bytes = tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )
    })??;
    Ok((bytes, held))
}

/// Server state that rate-limits requests per connection.
pub trait ConnLimited: Send + Sync + 'static {
    fn conn_limiter(&self) -> &RateLimiter<u64>;
}

/// Middleware: one token per request from the connection's bucket, else 429.
pub async fn limit_connection<S: ConnLimited>(
    State(state): State<Arc<S>>,
    req: Request,
    next: Next,
) -> Response {
    let conn = req.extensions().get::<ConnId>().map_or(0, |c| c.0);
    if let Err(secs) = state.conn_limiter().check(&conn) {
        return ApiError::too_many_requests(secs).into_response();
    }
    next.run(req).await
}

/// Fallback: 404 `no_route`.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no such route: {}", uri.path()),
    )
}

/// Method fallback: 405 `method_not_allowed`.
pub async fn bad_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not supported on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_buffer_grows_with_what_arrived_and_ends_at_the_declared_length() {
        let declared = 1_000_000u64;
        let mut buf = BytesMut::new();
        while buf.len() < declared as usize {
            let more = 16_384.min(declared as usize - buf.len());
            grow_for(&mut buf, more, Some(declared));
            assert!(buf.capacity() <= (2 * buf.len()).max(more).max(declared as usize));
            buf.extend_from_slice(&vec![0u8; more]);
            assert!(buf.capacity() <= (2 * buf.len()).max(declared as usize));
        }
        assert_eq!(buf.capacity(), declared as usize);
        // Undeclared: doubling, bounded by twice what arrived.
        let mut buf = BytesMut::new();
        for _ in 0..100 {
            grow_for(&mut buf, 1000, None);
            buf.extend_from_slice(&[0u8; 1000]);
            assert!(buf.capacity() <= 2 * buf.len());
        }
    }

    #[test]
    fn minimum_rate_applies_after_the_grace_period_only() {
        assert!(!too_slow(0, BODY_GRACE));
        assert!(!too_slow(0, Duration::ZERO));
        assert!(too_slow(0, BODY_GRACE + Duration::from_secs(1)));
        assert!(!too_slow(
            MIN_BODY_RATE,
            BODY_GRACE + Duration::from_secs(1)
        ));
        assert!(too_slow(u64::MAX - 1, Duration::MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_is_cut_off_long_before_the_timeout() {
        let trickle = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))])
            .chain(futures::stream::pending());
        let started = Instant::now();
        let e = read_body(
            Body::from_stream(trickle),
            Some(1 << 20),
            1 << 20,
            Duration::from_secs(120),
            || ApiError::internal("too large"),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(e.body.error, "body_too_slow");
        assert!(started.elapsed() < Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_budget_room_is_bounded() {
        let budget = BodyBudget::new(10, "uploads");
        let read = |len: usize| {
            read_body_within(
                Body::from(vec![7u8; len]),
                Some(len as u64),
                100,
                Duration::from_secs(60),
                Some(&budget),
                || ApiError::internal("too large"),
            )
        };
        let (bytes, held) = read(8).await.unwrap();
        assert_eq!(bytes.len(), 8);
        let e = read(8).await.unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.body.error, "busy");
        drop(held);
        assert!(read(8).await.is_ok());
    }
}
