//! Node subscription, listing and expiry against a real directory on loopback.

mod common;

use common::*;
use kairos_directory::{ClientError, DirectoryClient};
use kairos_net::Transport;
use kairos_proto::{Identity, NodeRecord};
use std::time::Duration;

#[tokio::test]
async fn subscribe_list_and_expire() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let client = client_of(&h, &clk);

    let ids: Vec<Identity> = (0..5).map(|_| Identity::generate()).collect();
    for id in &ids {
        client.subscribe(&record(id, clk.now())).await.unwrap();
    }
    let all = client.list_nodes(100, None).await.unwrap();
    assert_eq!(all.len(), 5);
    let some = client.list_nodes(3, Some(&ids[0].public())).await.unwrap();
    assert_eq!(some.len(), 3);
    assert!(some.iter().all(|r| r.record().key != ids[0].public()));
    let without = client.list_nodes(10, Some(&ids[0].public())).await.unwrap();
    assert_eq!(without.len(), 4);

    // A heartbeat 30 s later keeps node 1 alive past the others' TTL (60 s).
    clk.advance(Duration::from_secs(30));
    client.subscribe(&record(&ids[1], clk.now())).await.unwrap();
    clk.advance(Duration::from_secs(31));
    let live = client.list_nodes(10, None).await.unwrap();
    assert_eq!(live.len(), 1, "expired records are never listed");
    assert_eq!(live[0].record().key, ids[1].public());
    // The sweep deletes the expired ones from the store.
    eventually(10, "sweep of expired nodes", || async {
        (info(&h).await["nodes"] == 1).then_some(())
    })
    .await;
    clk.advance(Duration::from_secs(60));
    assert!(client.list_nodes(10, None).await.unwrap().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn stale_replayed_and_unbound_records_are_refused() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(dir.path(), &clk);
    cfg.allow_loopback_nodes = false;
    let h = start(cfg).await;
    let c = http();
    let post = |bytes: Vec<u8>| {
        let req = c
            .post(url(&h, "/v1/nodes"))
            .header("content-type", "application/octet-stream")
            .body(bytes);
        send(req)
    };
    let id = Identity::generate();
    let onion = format!("{}:80", id.public().onion_address());
    let rec = |ts| {
        NodeRecord::new(&id, onion.clone(), 1, ts)
            .sign(&id)
            .unwrap()
    };

    let now = clk.now();
    let first = rec(now);
    let r = post(first.as_bytes().to_vec()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["expires_at"], now + 60);

    // Replay of the same bytes, and an older record: refused.
    let r = post(first.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (409, "replay".into()));
    let r = post(rec(now - 1).as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (409, "replay".into()));
    // Same second, fresh nonce: still not newer.
    let r = post(rec(now).as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (409, "replay".into()));
    // Too old / from the future.
    let r = post(rec(now - 301).as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "clock_skew".into()));
    let r = post(rec(now + 301).as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "clock_skew".into()));
    // A newer one is accepted.
    assert_eq!(post(rec(now + 1).as_bytes().to_vec()).await.status, 200);

    // Another key's onion address, and loopback on a Tor-mode directory: refused.
    let other = Identity::generate();
    let stolen = NodeRecord::new(
        &id,
        format!("{}:80", other.public().onion_address()),
        1,
        now,
    )
    .sign(&id)
    .unwrap();
    let r = post(stolen.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (403, "address_not_bound".into()));
    let r = post(record(&other, now).as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (403, "address_not_bound".into()));

    // Tampered bytes, garbage, oversized.
    let mut bad = rec(now + 2).as_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let r = post(bad).await;
    assert_eq!((r.status, r.code()), (400, "bad_record_signature".into()));
    let r = post(b"hello".to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "malformed_record".into()));
    let r = post(vec![0u8; kairos_proto::record::MAX_RECORD_BYTES + 1]).await;
    assert_eq!((r.status, r.code()), (413, "too_large".into()));

    // Nothing of the refused ones was stored: one live node, the accepted newest record.
    let list = send(c.get(url(&h, "/v1/nodes?count=10"))).await.json();
    let nodes = list["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["timestamp"], now + 1);

    // The client surfaces refusals as Rejected with the code.
    let client = DirectoryClient::new(Transport::Direct, vec![h.local_addr().to_string()]).unwrap();
    match client.subscribe(&rec(now)).await {
        Err(ClientError::Rejected {
            status: 409, code, ..
        }) => assert_eq!(code, "replay"),
        other => panic!("expected a replay rejection, got {other:?}"),
    }
    h.shutdown().await;
}

#[tokio::test]
async fn listing_is_bounded_and_validates_its_query() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(dir.path(), &clk);
    cfg.limits.max_list = 4;
    let h = start(cfg).await;
    let client = DirectoryClient::new(Transport::Direct, vec![h.local_addr().to_string()]).unwrap();
    for _ in 0..6 {
        client
            .subscribe(&record(&Identity::generate(), clk.now()))
            .await
            .unwrap();
    }
    assert_eq!(client.list_nodes(100, None).await.unwrap().len(), 4);
    assert_eq!(client.list_nodes(0, None).await.unwrap().len(), 0);
    let c = http();
    for q in ["count=-1", "count=abc", "exclude=notakey"] {
        let r = send(c.get(url(&h, &format!("/v1/nodes?{q}")))).await;
        assert_eq!((r.status, r.code()), (400, "bad_query".into()), "{q}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn identity_and_connection_rate_limits() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(dir.path(), &clk);
    cfg.limits.per_identity = kairos_directory::RateLimit {
        per_second: 0.1,
        burst: 2.0,
    };
    cfg.limits.per_connection = kairos_directory::RateLimit {
        per_second: 0.1,
        burst: 5.0,
    };
    let h = start(cfg).await;
    let id = Identity::generate();
    // Fresh connections each time: only the identity bucket is shared.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let r = send(
            http()
                .post(url(&h, "/v1/nodes"))
                .body(record(&id, clk.now() - 10 + i).as_bytes().to_vec()),
        )
        .await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.code(), "rate_limited");
            assert!(r.headers.contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, vec![200, 200, 429]);

    // One keep-alive connection: its own bucket runs out.
    let c = http();
    let mut codes = Vec::new();
    for _ in 0..7 {
        codes.push(send(c.get(url(&h, "/v1/info"))).await.status);
    }
    assert_eq!(&codes[..5], &[200; 5]);
    assert_eq!(codes[6], 429);
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let c = http();
    let r = send(c.get(url(&h, "/nope"))).await;
    assert_eq!((r.status, r.code()), (404, "no_route".into()));
    let r = send(c.delete(url(&h, "/v1/nodes"))).await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed".into()));
    let r = send(c.get(url(&h, "/v1/info"))).await;
    assert_eq!(r.json()["key"], h.public_key().to_text());
    h.shutdown().await;
}

#[tokio::test]
async fn replaying_public_records_and_manifests_cannot_lock_their_owner_out() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(dir.path(), &clk);
    cfg.limits.per_identity = kairos_directory::RateLimit {
        per_second: 0.01,
        burst: 2.0,
    };
    let h = start(cfg).await;
    let id = Identity::generate();
    let now = clk.now();
    let first = record(&id, now - 5);
    let post = |bytes: Vec<u8>| send(http().post(url(&h, "/v1/nodes")).body(bytes));
    assert_eq!(post(first.as_bytes().to_vec()).await.status, 200);
    // Anyone can copy the listed record and replay it: refused without spending tokens.
    for _ in 0..10 {
        let r = post(first.as_bytes().to_vec()).await;
        assert_eq!((r.status, r.code()), (409, "replay".into()));
    }
    assert_eq!(post(record(&id, now).as_bytes().to_vec()).await.status, 200);

    // Same for re-publishing someone's manifest.
    let uploader = Identity::generate();
    let m1 = manifest(&uploader, now, now + 100, 1);
    let put = |m: &kairos_proto::SignedManifest| {
        send(
            http()
                .put(url(&h, &format!("/v1/manifests/{}", m.id())))
                .body(m.as_bytes().to_vec()),
        )
    };
    assert_eq!(put(&m1).await.status, 201);
    for _ in 0..10 {
        assert_eq!(put(&m1).await.status, 200);
    }
    assert_eq!(
        put(&manifest(&uploader, now, now + 100, 2)).await.status,
        201
    );
    let r = put(&manifest(&uploader, now, now + 100, 3)).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited".into()));
    h.shutdown().await;
}
