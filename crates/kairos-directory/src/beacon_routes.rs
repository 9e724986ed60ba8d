//! `GET /v1/beacons/{chain}/{round}` (documented in `docs/directory-api.md`): the HTTP face of
//! the beacon relay ([`crate::beacons`]).
//!
//! Invariants: the path is parsed completely before the relay is asked; every refusal is an
//! [`ApiError`] JSON body with a stable code; a round whose time has not come is `425 not_yet`
//! with `Retry-After` (seconds until its time) and `locked_until` (its time); nothing here
//! panics on any input.

use crate::beacons::Miss;
use crate::state::App;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kairos_lock::wire::unhex32;
use kairos_lock::BeaconJson;
use kairos_net::ApiError;
use std::sync::Arc;

pub async fn get_beacon(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let (hash, round) = match parse(path) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let now = app.now();
    match app.beacons.lookup(hash, round, now).await {
        Ok(beacon) => Json(BeaconJson::unverified(&beacon)).into_response(),
        Err(miss) => refusal(&app, &hash, miss, now),
    }
}

/// The chain hash and round of the path.
fn parse(path: Result<Path<(String, String)>, PathRejection>) -> Result<([u8; 32], u64), ApiError> {
    let Path((chain, round)) =
        path.map_err(|e| ApiError::bad_request("bad_path", e.body_text()))?;
    let hash = unhex32(&chain, "chain hash").map_err(|_| {
        ApiError::bad_request(
            "bad_chain",
            "the chain is 64 hex digits (its drand chain hash)",
        )
    })?;
    let round: u64 = round
        .parse()
        .map_err(|_| ApiError::bad_request("bad_round", "the round is a decimal number from 1"))?;
    Ok((hash, round))
}

fn refusal(app: &App, hash: &[u8; 32], miss: Miss, now: u64) -> Response {
    let period = app
        .beacons
        .chain(hash)
        .map_or(1, |c| c.chain.period().clamp(1, 60));
    match miss {
        Miss::UnknownChain => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_chain",
            "this directory does not relay beacons of that chain",
        )
        .into_response(),
        Miss::BadRound => ApiError::bad_request(
            "bad_round",
            "that round does not exist on this chain (rounds start at 1)",
        )
        .into_response(),
        Miss::NotYet { at } => not_yet(at, now),
        Miss::NoUpstream => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_beacon",
            "this directory has no beacon of that round and no upstream to fetch it from; try another source",
        )
        .into_response(),
        Miss::Upstream => with_retry(
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                "no upstream gave a valid beacon of that round (yet); try again shortly or another source",
            )
            .into_response(),
            period,
        ),
        Miss::Busy => ApiError::busy("beacon fetches", 1).into_response(),
        Miss::Storage { closed: true } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the directory is shutting down; try another directory",
        )
        .into_response(),
        Miss::Storage { closed: false } => {
            ApiError::internal("the directory could not access its database; try again later")
                .into_response()
        }
    }
}

/// `425 not_yet`: the round is published at `at`.
fn not_yet(at: u64, now: u64) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_EARLY,
        "not_yet",
        format!(
            "that round is published at {}; it has no beacon yet",
            kairos_proto::time::rfc3339(at)
        ),
    );
    e.body.locked_until = Some(at);
    with_retry(e.into_response(), at.saturating_sub(now).max(1))
}

fn with_retry(mut resp: Response, secs: u64) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}
