//! Direct requests to a node's peer API: every refusal stores nothing; the time-lock holds
//! until the node's clock passes the release.

mod common;

use common::*;
use kairos_net::Transport;
use kairos_node::piece::{hash_to_text, PieceBody, MAX_BODY_LEN};
use kairos_proto::Identity;
use reqwest::StatusCode;
use std::time::Duration;

struct Piece {
    hash: [u8; 32],
    body: Vec<u8>,
}

fn piece(release: u64, seed: u64) -> Piece {
    let mut share = [0u8; kairos_seal::SHARE_LEN];
    share.copy_from_slice(&data(kairos_seal::SHARE_LEN, seed));
    share[0] = 1; // shard index 0
    let shard = data(4096, seed + 1);
    Piece {
        hash: kairos_seal::piece_hash(&share, &shard),
        body: PieceBody::encode(release, 0, 0, &share, &shard),
    }
}

async fn put(
    http: &reqwest::Client,
    addr: &str,
    id: &Identity,
    hash: &[u8; 32],
    body: Vec<u8>,
    signed_body: Option<&[u8]>,
    now: u64,
) -> (StatusCode, serde_json::Value) {
    let path = format!("/v1/pieces/{}", hash_to_text(hash));
    let req = http.put(Transport::url(addr, &path));
    let req = kairos_net::signed::sign(req, id, "PUT", &path, signed_body.unwrap_or(&body), now);
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

fn code(v: &serde_json::Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_store_nothing_and_the_lock_holds() {
    let clock = manual_clock();
    let net = Net::start(1, small_params(), clock.clock()).await;
    let addr = net.node(0).peer_addr().to_string();
    let http = reqwest::Client::new();
    let uploader = Identity::generate();
    let now = clock.now();
    let release = now + 600;
    let p = piece(release, 1);
    let held = || net.node(0).status().unwrap().pieces_held;

    // Unknown piece, malformed id.
    let url = Transport::url(&addr, &format!("/v1/pieces/{}", hash_to_text(&p.hash)));
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    let bad = Transport::url(&addr, "/v1/pieces/..%2F..%2Fidentity.key");
    assert_eq!(http.get(&bad).send().await.unwrap().status(), 400);

    // Bad signature: signed over another body.
    let (s, v) = put(
        &http,
        &addr,
        &uploader,
        &p.hash,
        p.body.clone(),
        Some(b"other"),
        now,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "bad_signature"));
    // Unsigned.
    let path = format!("/v1/pieces/{}", hash_to_text(&p.hash));
    let r = http
        .put(Transport::url(&addr, &path))
        .body(p.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Wrong hash in the path.
    let other = piece(release, 9);
    let (s, v) = put(
        &http,
        &addr,
        &uploader,
        &other.hash,
        p.body.clone(),
        None,
        now,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "hash_mismatch"));
    // Oversized body.
    let (s, v) = put(
        &http,
        &addr,
        &uploader,
        &p.hash,
        vec![0; MAX_BODY_LEN + 1],
        None,
        now,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    // Malformed body.
    let mut garbage = p.body.clone();
    garbage[0] = b'X';
    let (s, v) = put(&http, &addr, &uploader, &p.hash, garbage, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_piece"));
    // Release in the past, and too far ahead.
    let past = piece(now - 3600, 2);
    let (s, v) = put(&http, &addr, &uploader, &past.hash, past.body, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "release_in_past"));
    let far = piece(now + 400 * 24 * 3600, 3);
    let (s, v) = put(&http, &addr, &uploader, &far.hash, far.body, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "release_too_far"));
    assert_eq!(held(), 0);
    assert_eq!(net.node(0).status().unwrap().bytes_used, 0);

    // A valid store; an identical one is idempotent; another release time is refused.
    let (s, v) = put(&http, &addr, &uploader, &p.hash, p.body.clone(), None, now).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["created"], true);
    let (s, v) = put(&http, &addr, &uploader, &p.hash, p.body.clone(), None, now).await;
    assert_eq!(
        (s, &v["created"]),
        (StatusCode::OK, &serde_json::Value::Bool(false))
    );
    let mut moved = p.body.clone();
    moved[5..13].copy_from_slice(&(release + 1).to_le_bytes());
    let (s, v) = put(&http, &addr, &uploader, &p.hash, moved, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(held(), 1);

    // Before release: 403 locked with Retry-After; after: the exact body.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["retry-after"], "600");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (code(&v), v["locked_until"].as_u64()),
        ("locked", Some(release))
    );
    clock.advance(Duration::from_secs(599));
    assert_eq!(http.get(&url).send().await.unwrap().status(), 403);
    clock.advance(Duration::from_secs(1));
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().to_vec(), p.body);
    net.shutdown().await;
}
