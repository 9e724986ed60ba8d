//! Storage that junk cannot hold (issue: "anonymous storage exhaustion"): a piece no published
//! placement references is dropped once its uploader key has stored nothing for the pending
//! window, while every piece of a real upload — committed by its uploader after publishing,
//! checked by each holder with its own directory — stays and opens after release. Real
//! directory, real nodes, real HTTP.

mod common;

use common::*;
use kairos_net::Transport;
use kairos_node::piece::{hash_to_text, PieceBody};
use kairos_proto::{Identity, PublicKey};
use reqwest::StatusCode;
use std::time::Duration;

const WINDOW: u64 = 600;

/// Stores a junk piece on `(addr, key)` signed by a throwaway key; returns its hash.
async fn junk(addr: &str, key: &PublicKey, release: u64, now: u64) -> [u8; 32] {
    let mut share = [7u8; kairos_seal::SHARE_LEN];
    share[0] = 1;
    let shard = data(8192, release);
    let hash = kairos_seal::piece_hash(&share, &shard);
    let body = PieceBody::encode(release, 0, 0, &share, &shard);
    let path = format!("/v1/pieces/{}", hash_to_text(&hash));
    let signed = PieceBody::signed_bytes_of(&body, &hash);
    let req = reqwest::Client::new().put(Transport::url(addr, &path));
    let req = kairos_net::signed::sign(req, &Identity::generate(), key, "PUT", &path, &signed, now);
    let resp = req.body(body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    hash
}

/// `POST /v1/commit/{id}` to node `i`, signed by `who`.
async fn commit(net: &Net, i: usize, who: &Identity, id: &str, now: u64) -> (u16, String) {
    let path = format!("/v1/commit/{id}");
    let addr = net.node(i).peer_addr().to_string();
    let req = reqwest::Client::new().post(Transport::url(&addr, &path));
    let key = net.node(i).public_key();
    let resp = kairos_net::signed::sign(req, who, &key, "POST", &path, b"", now)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, v["error"].as_str().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn junk_is_dropped_after_the_window_and_published_pieces_stay() {
    let clock = manual_clock();
    let net = Net::start_with(6, small_params(), clock.clock(), |c| {
        c.sweep_interval = Duration::from_millis(50);
        c.pending_window = Duration::from_secs(WINDOW);
    })
    .await;
    let now = clock.now();
    let release = now + 3 * WINDOW;
    let mut junk_pieces = Vec::new();
    for i in 0..6 {
        let (addr, key) = (
            net.node(i).peer_addr().to_string(),
            net.node(i).public_key(),
        );
        junk_pieces.push(junk(&addr, &key, release, now).await);
    }
    let held_before: u64 = (0..6)
        .map(|i| net.node(i).status().unwrap().pieces_held)
        .sum();
    assert_eq!(held_before, 6);

    let work = tempfile::tempdir().unwrap();
    let bytes = data(3_000_000, 9);
    let path = write_file(work.path(), "f", &bytes);
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    let real = put.pieces;

    // The commit route believes only the directories: a stranger cannot commit the file's
    // pieces, and an unpublished file has nothing to commit.
    let stranger = Identity::generate();
    let (status, code) = commit(&net, 1, &stranger, &put.id.to_string(), clock.now()).await;
    assert_eq!((status, code.as_str()), (403, "not_uploader"));
    let unknown = kairos_proto::FileId([9; 32]).to_string();
    let (status, code) = commit(&net, 1, &stranger, &unknown, clock.now()).await;
    assert_eq!((status, code.as_str()), (404, "not_placed"));

    // Past the window: only the junk goes.
    clock.advance(Duration::from_secs(WINDOW + 1));
    let held = |net: &Net| -> u64 {
        (0..6)
            .map(|i| net.node(i).status().unwrap().pieces_held)
            .sum()
    };
    let mut left = held(&net);
    for _ in 0..100 {
        if left == real {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = held(&net);
    }
    assert_eq!(left, real, "exactly the junk was dropped");
    for (i, hash) in junk_pieces.iter().enumerate() {
        let addr = net.node(i).peer_addr().to_string();
        let url = Transport::url(&addr, &format!("/v1/pieces/{}", hash_to_text(hash)));
        let status = reqwest::get(url).await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND, "junk on node {i} is gone");
    }

    clock.advance(Duration::from_secs(3 * WINDOW));
    let dest = work.path().join("out");
    let got = net.client(3).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    net.shutdown().await;
}
