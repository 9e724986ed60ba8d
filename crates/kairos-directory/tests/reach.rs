//! A directory lists a node only after reaching it where its record says and checking its
//! signed answer to a fresh challenge (`src/reach.rs`). The nodes here are small test servers
//! that answer `GET /v1/info?challenge=…` honestly or in one of the ways a liar would; the real
//! node's answer is exercised by every test of kairos-node, whose directories reach nodes.

mod common;

use axum::extract::Query;
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use kairos_directory::ClientError;
use kairos_proto::{Identity, NodeRecord, SignedNodeRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Answer {
    Honest,
    /// Signs the challenge with another key.
    WrongProof,
    NoProof,
    /// Answers as another node.
    OtherKey,
    /// An endless body.
    Huge,
}

/// Serves `GET /v1/info` for `id` on a fresh loopback port as `answer` says; returns the
/// record advertising that port and the server task.
async fn node(
    answer: Answer,
    now: u64,
) -> (Arc<Identity>, SignedNodeRecord, tokio::task::JoinHandle<()>) {
    let id = Arc::new(Identity::generate());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (me, at) = (id.clone(), addr.clone());
    let info = move |q: Query<HashMap<String, String>>| async move {
        let challenge: [u8; 32] = data_encoding::HEXLOWER
            .decode(q.get("challenge").unwrap().as_bytes())
            .unwrap()
            .try_into()
            .unwrap();
        let signer = match answer {
            Answer::WrongProof => Identity::generate(),
            _ => Identity::from_seed(&me.seed()),
        };
        let key = match answer {
            Answer::OtherKey => Identity::generate().public(),
            _ => me.public(),
        };
        let proof = kairos_proto::liveness::prove(&signer, &challenge, &at);
        let mut body = serde_json::json!({"key": key.to_text(), "addr": at, "version": "0"});
        if !matches!(answer, Answer::NoProof) {
            body["proof"] = data_encoding::HEXLOWER.encode(&proof).into();
        }
        if matches!(answer, Answer::Huge) {
            body["padding"] = "x".repeat(1 << 20).into();
        }
        Json(body)
    };
    let app = Router::new().route("/v1/info", get(info));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let record = NodeRecord::new(&id, addr, 1 << 30, now).sign(&id).unwrap();
    (id, record, server)
}

fn reaching(
    home: &std::path::Path,
    clk: &kairos_directory::ManualClock,
) -> kairos_directory::DirectoryConfig {
    let mut c = config(home, clk);
    c.reach_nodes = true;
    c.reach_timeout = Duration::from_secs(5);
    c
}

#[tokio::test]
async fn only_nodes_that_answer_as_themselves_are_listed() {
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(reaching(&root.path().join("d"), &clk)).await;
    let c = client_of(&h, &clk);

    for answer in [
        Answer::WrongProof,
        Answer::NoProof,
        Answer::OtherKey,
        Answer::Huge,
    ] {
        let (_, rec, server) = node(answer, clk.now()).await;
        match c.subscribe(&rec).await {
            Err(ClientError::Rejected { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (422, "unreachable"), "{answer:?}")
            }
            other => panic!("{answer:?}: {other:?}"),
        }
        server.abort();
    }
    // Nobody listens at all.
    let dead = Identity::generate();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rec = NodeRecord::new(&dead, format!("127.0.0.1:{port}"), 1, clk.now())
        .sign(&dead)
        .unwrap();
    assert!(c.subscribe(&rec).await.is_err());
    assert!(c.list_nodes(100, None).await.unwrap().is_empty());
    assert_eq!(info(&h).await["nodes"], 0, "refused records are not stored");

    let (id, rec, server) = node(Answer::Honest, clk.now()).await;
    c.subscribe(&rec).await.unwrap();
    let listed = c.list_nodes(100, None).await.unwrap();
    assert_eq!(listed, vec![rec.clone()]);
    // A heartbeat within the validity window is not probed again: it is stored even though
    // the node is gone now.
    server.abort();
    let _ = server.await;
    let addr = rec.record().addr.clone();
    let heartbeat = |now| {
        NodeRecord::new(&id, addr.clone(), 1 << 30, now)
            .sign(&id)
            .unwrap()
    };
    clk.advance(Duration::from_secs(1));
    c.subscribe(&heartbeat(clk.now())).await.unwrap();
    // Past it, the node is reached again, and now it is gone.
    clk.advance(Duration::from_secs(31 * 60));
    match c.subscribe(&heartbeat(clk.now())).await {
        Err(ClientError::Rejected { code, .. }) => assert_eq!(code, "unreachable"),
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
}

#[tokio::test]
async fn relayed_records_are_listed_only_once_reached_here() {
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let (home_a, key_a) = home_with_key(root.path(), "a");
    let (home_c, key_c) = home_with_key(root.path(), "c");
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr_a, addr_c) = (la.local_addr().unwrap(), lc.local_addr().unwrap());
    let mut cfg_a = reaching(&home_a, &clk);
    cfg_a.siblings = vec![sibling(addr_c, key_c)];
    // C lists whatever it is sent.
    let mut cfg_c = config(&home_c, &clk);
    cfg_c.siblings = vec![sibling(addr_a, key_a)];
    let a = kairos_directory::start_on(cfg_a, la).await.unwrap();
    let c = kairos_directory::start_on(cfg_c, lc).await.unwrap();

    let (live_id, live, server) = node(Answer::Honest, clk.now()).await;
    let (_, fake, fake_server) = node(Answer::NoProof, clk.now()).await;
    let to_c = client_of(&c, &clk);
    to_c.subscribe(&live).await.unwrap();
    to_c.subscribe(&fake).await.unwrap();

    let to_a = client_of(&a, &clk);
    // A holds both records once they are relayed…
    for rec in [&live, &fake] {
        let key = rec.record().key;
        eventually(10, "the record relayed", || async {
            to_a.node_record(&key).await.ok()
        })
        .await;
    }
    // …and lists the live one once its background probe reached it, never the liar.
    let listed = eventually(10, "the relayed live node listed", || async {
        let listed = to_a.list_nodes(100, None).await.unwrap();
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed, vec![live.clone()]);
    assert_eq!(live_id.public(), live.record().key);
    server.abort();
    fake_server.abort();
    a.shutdown().await;
    c.shutdown().await;
}
