//! A hostile peer in a real network: it lists itself like any node, then answers with the most
//! extreme values the wire allows (`locked_until` = u64::MAX, a `Retry-After` of 2^64 − 1
//! seconds). A put and a get must treat it as one missing piece among many — never panic, never
//! fail because of it (issue: "one hostile peer defeats k-of-n").

mod common;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use common::*;
use kairos_directory::DirectoryClient;
use kairos_net::Transport;
use kairos_proto::{Identity, NodeRecord};
use std::time::Duration;

/// `403 locked` until the end of time.
fn locked_forever() -> Response {
    let mut resp = (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": "locked",
            "message": "locked until the end of time",
            "locked_until": u64::MAX,
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(u64::MAX));
    resp
}

/// Starts the hostile peer on loopback and lists it in the directory at `dir` under its own
/// signed record. `accept_stores`: pretend to store pieces (so it ends up in the placement and
/// a get asks it); otherwise refuse every store as locked forever too.
async fn hostile_peer(dir: &DirectoryClient, accept_stores: bool) -> tokio::task::JoinHandle<()> {
    let identity = std::sync::Arc::new(Identity::generate());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let key = identity.public().to_text();
    // It proves its liveness like any node: directories list only nodes they reached.
    let info = {
        let (key, addr, identity) = (key.clone(), addr.clone(), identity.clone());
        move |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
            let challenge: [u8; 32] = data_encoding::HEXLOWER
                .decode(q.get("challenge").unwrap().as_bytes())
                .unwrap()
                .try_into()
                .unwrap();
            let proof = kairos_proto::liveness::prove(&identity, &challenge, &addr);
            Json(serde_json::json!({
                "key": key, "addr": addr, "version": "0",
                "proof": data_encoding::HEXLOWER.encode(&proof),
            }))
        }
    };
    let store = move |axum::extract::Path(hash): axum::extract::Path<String>,
                      body: axum::body::Bytes| async move {
        drop(body);
        if accept_stores {
            (
                StatusCode::CREATED,
                Json(serde_json::json!({"hash": hash, "release": u64::MAX, "created": true})),
            )
                .into_response()
        } else {
            locked_forever()
        }
    };
    let app = Router::new().route("/v1/info", get(info)).route(
        "/v1/pieces/{hash}",
        put(store).get(|| async { locked_forever() }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let record = NodeRecord::new(&identity, addr, 1 << 40, kairos_proto::time::now_unix())
        .sign(&identity)
        .unwrap();
    dir.subscribe(&record).await.unwrap();
    server
}

async fn round_trip_next_to(accept_stores: bool) {
    let clock = manual_clock();
    let net = Net::start(6, small_params(), clock.clock()).await;
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    let hostile = hostile_peer(&dir, accept_stores).await;
    let work = tempfile::tempdir().unwrap();
    // 20 blocks over 7 candidates: the hostile peer is drawn for most of them.
    let bytes = data(5_000_000, 21);
    let path = write_file(work.path(), "f", &bytes);
    let release = clock.now() + 30;
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    if !accept_stores {
        assert!(
            put.retries >= 1,
            "the hostile peer was never tried: {put:?}"
        );
    }
    clock.advance(Duration::from_secs(31));
    let dest = work.path().join("out");
    let got = net.client(5).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    if accept_stores {
        assert!(
            got.unreachable.iter().any(|u| u.contains("locked")),
            "the hostile peer was never asked: {:?}",
            got.unreachable
        );
    }
    hostile.abort();
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_refusing_every_store_until_the_end_of_time_does_not_stop_a_put() {
    round_trip_next_to(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_locked_until_the_end_of_time_does_not_stop_a_get() {
    round_trip_next_to(true).await;
}
