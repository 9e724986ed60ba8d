//! The drand-format routes of the test chain (see the crate docs).
//!
//! Invariants: a round is signed only when `round_time(round) ≤ clock.now()`; every refusal
//! is an [`ApiError`] JSON body; nothing here panics on any input.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kairos_lock::{BeaconJson, ChainInfo, TestChain};
use kairos_net::ApiError;
use kairos_proto::clock::Clock;
use std::sync::Arc;

struct Beacons {
    chain: Arc<TestChain>,
    clock: Clock,
}

/// The router serving `chain` with `clock` deciding which rounds have come.
pub fn router(chain: Arc<TestChain>, clock: Clock) -> Router {
    let state = Arc::new(Beacons { chain, clock });
    Router::new()
        .route("/info", get(info))
        .route("/{chain}/info", get(chain_info))
        .route("/{chain}/public/{round}", get(public))
        .fallback(kairos_net::request::no_route)
        .with_state(state)
}

async fn info(State(s): State<Arc<Beacons>>) -> Json<ChainInfo> {
    Json(ChainInfo::of(s.chain.chain()))
}

fn check_chain(s: &Beacons, hash: &str) -> Result<(), ApiError> {
    if hash.eq_ignore_ascii_case(&s.chain.chain().hash_hex()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_chain",
            "this beacon server serves one test chain; see /info",
        ))
    }
}

async fn chain_info(
    State(s): State<Arc<Beacons>>,
    Path(hash): Path<String>,
) -> Result<Json<ChainInfo>, ApiError> {
    check_chain(&s, &hash)?;
    Ok(Json(ChainInfo::of(s.chain.chain())))
}

async fn public(
    State(s): State<Arc<Beacons>>,
    Path((hash, round)): Path<(String, String)>,
) -> Response {
    match beacon(&s, &hash, &round) {
        Ok(json) => Json(json).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Why a beacon is not served.
enum Refusal {
    UnknownChain(ApiError),
    BadRound,
    NotYet { round: u64, at: u64, now: u64 },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::UnknownChain(e) => e.into_response(),
            Refusal::BadRound => ApiError::bad_request(
                "bad_round",
                "rounds are decimal numbers from 1 (or `latest`)",
            )
            .into_response(),
            Refusal::NotYet { round, at, now } => {
                let mut resp = ApiError::new(
                    StatusCode::TOO_EARLY,
                    "not_yet",
                    format!(
                        "round {round} is not published before {}",
                        kairos_proto::time::rfc3339(at)
                    ),
                )
                .into_response();
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(at.saturating_sub(now).max(1)),
                );
                resp
            }
        }
    }
}

fn beacon(s: &Beacons, hash: &str, round: &str) -> Result<BeaconJson, Refusal> {
    check_chain(s, hash).map_err(Refusal::UnknownChain)?;
    let chain = s.chain.chain();
    let now = s.clock.now();
    let round = if round == "latest" {
        chain.round_at(now)
    } else {
        round.parse::<u64>().map_err(|_| Refusal::BadRound)?
    };
    let at = chain.round_time(round).map_err(|_| Refusal::BadRound)?;
    if now < at {
        return Err(Refusal::NotYet { round, at, now });
    }
    let beacon = s.chain.sign(round).map_err(|_| Refusal::BadRound)?;
    Ok(BeaconJson::unverified(&beacon))
}
