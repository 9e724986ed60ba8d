//! Direct requests to a node's peer API: every refusal stores nothing; the time-lock holds
//! until the node's clock passes the release.

mod common;

use common::*;
use kairos_net::Transport;
use kairos_node::piece::{hash_to_text, PieceBody, MAX_BODY_LEN};
use kairos_proto::{Identity, PublicKey};
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

/// A node's peer address and key (requests are signed for that key).
struct Target {
    addr: String,
    key: PublicKey,
}

impl Target {
    fn of(net: &Net, i: usize) -> Self {
        Target {
            addr: net.node(i).peer_addr().to_string(),
            key: net.node(i).public_key(),
        }
    }
}

async fn put(
    http: &reqwest::Client,
    to: &Target,
    id: &Identity,
    hash: &[u8; 32],
    body: Vec<u8>,
    signed_body: Option<&[u8]>,
    now: u64,
) -> (StatusCode, serde_json::Value) {
    let path = format!("/v1/pieces/{}", hash_to_text(hash));
    let req = http.put(Transport::url(&to.addr, &path));
    let signed = PieceBody::signed_bytes_of(&body, hash);
    let signed = signed_body.unwrap_or(&signed);
    let req = kairos_net::signed::sign(req, id, &to.key, "PUT", &path, signed, now);
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
    let to = Target::of(&net, 0);
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
        &to,
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
        &to,
        &uploader,
        &other.hash,
        p.body.clone(),
        None,
        now,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "hash_mismatch"));
    // Oversized body: refused from its Content-Length. The node answers 413 without reading
    // the body, so the client may see the 413 or a broken pipe while still sending. It gets
    // its own connection: the node closes it after refusing.
    let big = vec![0; MAX_BODY_LEN + 1];
    let path = format!("/v1/pieces/{}", hash_to_text(&p.hash));
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let req = once.put(Transport::url(&addr, &path));
    let req = kairos_net::signed::sign(req, &uploader, &to.key, "PUT", &path, &big, now);
    match req.body(big).send().await {
        Ok(r) => {
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(code(&v), "too_large");
        }
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    // Malformed body.
    let mut garbage = p.body.clone();
    garbage[0] = b'X';
    let (s, v) = put(&http, &to, &uploader, &p.hash, garbage, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_piece"));
    // Release in the past, and too far ahead.
    let past = piece(now - 3600, 2);
    let (s, v) = put(&http, &to, &uploader, &past.hash, past.body, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "release_in_past"));
    let far = piece(now + 400 * 24 * 3600, 3);
    let (s, v) = put(&http, &to, &uploader, &far.hash, far.body, None, now).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "release_too_far"));
    assert_eq!(held(), 0);
    assert_eq!(net.node(0).status().unwrap().bytes_used, 0);

    // A valid store; an identical one is idempotent; another release time is refused.
    let (s, v) = put(&http, &to, &uploader, &p.hash, p.body.clone(), None, now).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["created"], true);
    let (s, v) = put(&http, &to, &uploader, &p.hash, p.body.clone(), None, now).await;
    assert_eq!(
        (s, &v["created"]),
        (StatusCode::OK, &serde_json::Value::Bool(false))
    );
    let mut moved = p.body.clone();
    moved[5..13].copy_from_slice(&(release + 1).to_le_bytes());
    let (s, v) = put(&http, &to, &uploader, &p.hash, moved, None, now).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_retention() {
    let clock = manual_clock();
    let net = Net::start_with(1, small_params(), clock.clock(), |c| {
        c.quota = 6000;
        c.retention = Duration::from_secs(10);
        c.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let addr = net.node(0).peer_addr().to_string();
    let to = Target::of(&net, 0);
    let http = reqwest::Client::new();
    let uploader = Identity::generate();
    let now = clock.now();
    let a = piece(now + 5, 10);
    let (s, _) = put(&http, &to, &uploader, &a.hash, a.body.clone(), None, now).await;
    assert_eq!(s, StatusCode::CREATED);
    // A second piece would exceed the quota: refused, nothing stored.
    let b = piece(now + 5, 20);
    let (s, v) = put(&http, &to, &uploader, &b.hash, b.body, None, now).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::INSUFFICIENT_STORAGE, "quota_full")
    );
    let st = net.node(0).status().unwrap();
    assert_eq!(st.pieces_held, 1);
    assert_eq!(st.bytes_used, (kairos_seal::SHARE_LEN + 4096) as u64);

    // Retention: deleted `retention` after release, and the quota is free again.
    let url = Transport::url(&addr, &format!("/v1/pieces/{}", hash_to_text(&a.hash)));
    clock.advance(Duration::from_secs(14));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    clock.advance(Duration::from_secs(2));
    let mut gone = false;
    for _ in 0..50 {
        if net.node(0).status().unwrap().pieces_held == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "retention sweep did not delete the piece");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(net.node(0).status().unwrap().bytes_used, 0);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_are_bound_to_their_holder_and_need_no_nonce() {
    let clock = manual_clock();
    let net = Net::start(2, small_params(), clock.clock()).await;
    let (a, b) = (Target::of(&net, 0), Target::of(&net, 1));
    let http = reqwest::Client::new();
    let uploader = Identity::generate();
    let now = clock.now();
    let p = piece(now + 600, 30);

    // Signed for node A, sent to node B: refused, nothing stored.
    let path = format!("/v1/pieces/{}", hash_to_text(&p.hash));
    let signed = PieceBody::signed_bytes_of(&p.body, &p.hash);
    let for_a = |target: &Target| {
        let req = http.put(Transport::url(&target.addr, &path));
        kairos_net::signed::sign(req, &uploader, &a.key, "PUT", &path, &signed, now)
            .body(p.body.clone())
    };
    let r = for_a(&b).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&v), "wrong_recipient");
    assert_eq!(net.node(1).status().unwrap().pieces_held, 0);

    // The same signed request twice to A: a replayed store is harmless (200 existing), not a
    // nonce error, and no nonce memory is spent on it.
    let req = for_a(&a).build().unwrap();
    let again = req.try_clone().unwrap();
    assert_eq!(
        http.execute(req).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(http.execute(again).await.unwrap().status(), StatusCode::OK);
    assert_eq!(net.node(0).status().unwrap().pieces_held, 1);
    net.shutdown().await;
}

/// Admission before resources: a store whose signature fails is refused on its first bytes,
/// before it takes one of the node's body slots — so senders that then stall cannot hold the
/// slots, and an honest store right after them goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_stores_with_bad_signatures_never_hold_a_body_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let clock = manual_clock();
    let net = Net::start_with(1, small_params(), clock.clock(), |c| {
        c.limits.max_concurrent_stores = 2;
    })
    .await;
    let to = Target::of(&net, 0);
    let now = clock.now();
    let forger = Identity::generate();
    let mut stalled = Vec::new();
    for i in 0..8 {
        let p = piece(now + 600, 100 + i);
        let path = format!("/v1/pieces/{}", hash_to_text(&p.hash));
        // Signed for another recipient: a replay from elsewhere, or junk.
        let auth = kairos_proto::RequestAuth::sign(
            &forger,
            &Identity::generate().public(),
            "PUT",
            &path,
            &kairos_proto::request::body_hash(&PieceBody::signed_bytes_of(&p.body, &p.hash)),
            now,
        );
        let mut head = format!(
            "PUT {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            to.addr,
            p.body.len()
        );
        for (k, v) in auth.headers() {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut s = tokio::net::TcpStream::connect(&to.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        // The piece header and a little more, then nothing: the rest never comes.
        s.write_all(&p.body[..64]).await.unwrap();
        stalled.push(s);
    }
    for s in &mut stalled {
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a bad signature is refused without waiting for the body")
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(
            answer.starts_with("HTTP/1.1 403") && answer.contains("wrong_recipient"),
            "{answer}"
        );
    }
    // The stalled connections are still open; an honest store is not kept waiting by them.
    let honest = piece(now + 600, 1);
    let http = reqwest::Client::new();
    let (s, v) = put(
        &http,
        &to,
        &Identity::generate(),
        &honest.hash,
        honest.body,
        None,
        now,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    drop(stalled);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_uploader_deletes_and_only_before_release() {
    let clock = manual_clock();
    let net = Net::start(1, small_params(), clock.clock()).await;
    let to = Target::of(&net, 0);
    let http = reqwest::Client::new();
    let (owner, stranger) = (Identity::generate(), Identity::generate());
    let now = clock.now();
    let delete = |id: &Identity, hash: &[u8; 32], now: u64| {
        let path = format!("/v1/pieces/{}", hash_to_text(hash));
        let req = http.delete(Transport::url(&to.addr, &path));
        let req = kairos_net::signed::sign(req, id, &to.key, "DELETE", &path, b"", now);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (
                status,
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let held = || net.node(0).status().unwrap().pieces_held;
    let early = piece(now + 600, 31);
    let late = piece(now + 60, 32);
    for p in [&early, &late] {
        let (s, _) = put(&http, &to, &owner, &p.hash, p.body.clone(), None, now).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    assert_eq!(held(), 2);

    let (s, v) = delete(&stranger, &early.hash, now).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_uploader"));
    assert_eq!(held(), 2);
    let (s, v) = delete(&owner, &early.hash, now).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], true);
    assert_eq!(held(), 1);
    let (s, v) = delete(&owner, &early.hash, now).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    // Stored again after a delete: a fresh piece like any other.
    let (s, _) = put(
        &http,
        &to,
        &owner,
        &early.hash,
        early.body.clone(),
        None,
        now,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    clock.advance(Duration::from_secs(61));
    let (s, v) = delete(&owner, &late.hash, clock.now()).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "released"));
    assert_eq!(held(), 2);
    net.shutdown().await;
}
