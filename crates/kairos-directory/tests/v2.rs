//! Manifest v2 in the directory: content manifests next to v1, placement records (withheld
//! like manifests, newest seq wins, verified against the manifest), their federation, and
//! node records by key.

mod common;

use common::*;
use kairos_directory::{ClientError, DirectoryClient};
use kairos_net::Transport;
use kairos_proto::{AnyManifest, Identity};
use std::time::Duration;

#[tokio::test]
async fn v2_manifest_and_placement_are_withheld_until_release() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let client = client_of(&h, &clk);
    let per_file = Identity::generate();
    let now = clk.now();
    let release = now + 3600;
    let m = manifest_v2(&per_file, now, release, 1);
    let p = placement(&m, 1, &per_file);

    // A placement before its manifest: unknown_manifest.
    match client.publish_placement(&p).await {
        Err(ClientError::Rejected { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (404, "unknown_manifest"))
        }
        other => panic!("expected unknown_manifest, got {other:?}"),
    }
    let any = AnyManifest::V2(m.clone());
    client.publish_any(&any).await.unwrap();
    client.publish_any(&any).await.unwrap(); // idempotent
    client.publish_placement(&p).await.unwrap();
    client.publish_placement(&p).await.unwrap(); // idempotent
    assert_eq!(info(&h).await["manifests"], 1);

    // Before release: anonymous and strangers locked, the per-file key served.
    match client.fetch_placement(&m, None).await {
        Err(ClientError::Locked { until }) => assert_eq!(until, release),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(
        client.fetch_any_manifest(&m.id(), None).await,
        Err(ClientError::Locked { .. })
    ));
    let stranger = Identity::generate();
    assert!(matches!(
        client.fetch_placement(&m, Some(&stranger)).await,
        Err(ClientError::Locked { .. })
    ));
    assert_eq!(
        client.fetch_placement(&m, Some(&per_file)).await.unwrap(),
        p
    );
    assert_eq!(
        client
            .fetch_any_manifest(&m.id(), Some(&per_file))
            .await
            .unwrap(),
        any
    );
    let path = format!("/v1/placements/{}", m.id());
    let r = send(http().get(url(&h, &path))).await;
    assert_eq!((r.status, r.code()), (403, "locked".into()));
    assert_eq!(r.json()["locked_until"], release);
    assert_eq!(r.headers["retry-after"], "3600");

    // After release: anyone.
    clk.set(release);
    assert_eq!(client.fetch_placement(&m, None).await.unwrap(), p);
    assert_eq!(client.fetch_any_manifest(&m.id(), None).await.unwrap(), any);
    let r = send(http().get(url(&h, &path))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, p.as_bytes());
    assert_eq!(r.headers["x-kairos-release"], release.to_string().as_str());
    // The v1-only fetch refuses a v2 manifest as invalid rather than misreading it.
    assert!(client.fetch_manifest(&m.id(), None).await.is_err());
    h.shutdown().await;
}

#[tokio::test]
async fn placement_seq_rules_and_refusals_change_nothing() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let client = client_of(&h, &clk);
    let c = http();
    let per_file = Identity::generate();
    let now = clk.now();
    let m = manifest_v2(&per_file, now, now + 100, 1);
    let other_m = manifest_v2(&per_file, now, now + 100, 2);
    client
        .publish_any(&AnyManifest::V2(m.clone()))
        .await
        .unwrap();
    let put = |bytes: Vec<u8>| {
        send(
            c.put(url(&h, &format!("/v1/placements/{}", m.id())))
                .body(bytes),
        )
    };

    let p2 = placement(&m, 2, &per_file);
    let r = put(p2.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.json()["created"].clone()), (201, true.into()));
    assert_eq!(r.json()["seq"], 2);
    let r = put(p2.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.json()["created"].clone()), (200, false.into()));
    // Lower seq, and equal seq with other bytes: stale.
    for stale in [placement(&m, 1, &per_file), {
        let mut rec = p2.record().clone();
        rec.created += 1;
        rec.sign(&per_file).unwrap()
    }] {
        let r = put(stale.as_bytes().to_vec()).await;
        assert_eq!((r.status, r.code()), (409, "stale_placement".into()));
    }
    // Signed by another key; placing another file; garbage.
    let r = put(placement(&m, 3, &Identity::generate()).as_bytes().to_vec()).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "bad_placement_signature".into())
    );
    let r = put(placement(&other_m, 3, &per_file).as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "placement_mismatch".into()));
    let r = put(b"junk".to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "malformed_placement".into()));
    // A v1 manifest has no separate placement.
    let v1 = manifest(&per_file, now, now + 100, 3);
    client.publish(&v1).await.unwrap();
    let r = send(
        c.put(url(&h, &format!("/v1/placements/{}", v1.id())))
            .body(p2.as_bytes().to_vec()),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "wrong_version".into()));

    // Nothing changed: seq 2 is served; a higher seq replaces it.
    assert_eq!(
        client.fetch_placement(&m, Some(&per_file)).await.unwrap(),
        p2
    );
    let p3 = placement(&m, 3, &per_file);
    client.publish_placement(&p3).await.unwrap();
    assert_eq!(
        client.fetch_placement(&m, Some(&per_file)).await.unwrap(),
        p3
    );

    // Expiry deletes the placement with its manifest.
    clk.advance(Duration::from_secs(100 + 1000));
    eventually(10, "manifest sweep", || async {
        (info(&h).await["manifests"] == 0).then_some(())
    })
    .await;
    let r = send(c.get(url(&h, &format!("/v1/placements/{}", m.id())))).await;
    assert_eq!((r.status, r.code()), (404, "not_found".into()));
    h.shutdown().await;
}

#[tokio::test]
async fn placements_count_in_the_manifest_quota() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let per_file = Identity::generate();
    let now = clk.now();
    let m = manifest_v2(&per_file, now, now + 50, 1);
    let p = placement(&m, 1, &per_file);
    let mut cfg = config(dir.path(), &clk);
    cfg.limits.manifest_store_bytes = (m.as_bytes().len() + p.as_bytes().len()) as u64 - 1;
    let h = start(cfg).await;
    let client = client_of(&h, &clk);
    client
        .publish_any(&AnyManifest::V2(m.clone()))
        .await
        .unwrap();
    match client.publish_placement(&p).await {
        Err(ClientError::Rejected { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (507, "directory_full"))
        }
        other => panic!("expected directory_full, got {other:?}"),
    }
    assert!(matches!(
        client.fetch_placement(&m, Some(&per_file)).await,
        Err(ClientError::NoPlacement)
    ));
    h.shutdown().await;
}

#[tokio::test]
async fn node_record_by_key() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let client = client_of(&h, &clk);
    let node = Identity::generate();
    let rec = record(&node, clk.now());
    client.subscribe(&rec).await.unwrap();
    assert_eq!(client.node_record(&node.public()).await.unwrap(), rec);
    let stranger = Identity::generate().public();
    assert!(matches!(
        client.node_record(&stranger).await,
        Err(ClientError::UnknownNode(k)) if k == stranger
    ));
    let r = send(http().get(url(&h, &format!("/v1/nodes/{stranger}")))).await;
    assert_eq!((r.status, r.code()), (404, "unknown_node".into()));
    let r = send(http().get(url(&h, "/v1/nodes/not-a-key"))).await;
    assert_eq!((r.status, r.code()), (400, "bad_key".into()));
    let r = send(http().get(url(&h, &format!("/v1/nodes/{}", node.public())))).await;
    assert_eq!(r.json()["key"], node.public().to_text());
    // Past its TTL the record is no longer served.
    clk.advance(Duration::from_secs(60));
    assert!(matches!(
        client.node_record(&node.public()).await,
        Err(ClientError::UnknownNode(_))
    ));
    h.shutdown().await;
}

/// A directory that answers a node lookup with another node's (valid) record is skipped.
#[tokio::test]
async fn node_record_of_another_key_is_refused() {
    init_tracing();
    let other = Identity::generate();
    let rec = record(&other, kairos_proto::time::now_unix());
    let body = serde_json::json!({
        "key": other.public().to_text(),
        "addr": rec.record().addr,
        "capacity": 1,
        "timestamp": rec.record().timestamp,
        "expires_at": rec.record().timestamp + 60,
        "record": data_encoding::BASE64.encode(rec.as_bytes()),
    });
    let listener = bind("127.0.0.1:0".parse().unwrap()).await;
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { axum::Json(body) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = DirectoryClient::new(Transport::Direct, vec![addr.to_string()]).unwrap();
    let asked = Identity::generate().public();
    assert!(matches!(
        client.node_record(&asked).await,
        Err(ClientError::Invalid(_))
    ));
}

#[tokio::test]
async fn federation_carries_v2_manifests_placements_and_tombstones() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let (home_a, key_a) = home_with_key(root.path(), "a");
    let (home_b, key_b) = home_with_key(root.path(), "b");
    let la = bind("127.0.0.1:0".parse().unwrap()).await;
    let lb = bind("127.0.0.1:0".parse().unwrap()).await;
    let (addr_a, addr_b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let mut ca = config(&home_a, &clk);
    ca.siblings = vec![sibling(addr_b, key_b)];
    let mut cb = config(&home_b, &clk);
    cb.siblings = vec![sibling(addr_a, key_a)];
    let ha = kairos_directory::start_on(ca, la).await.unwrap();
    let hb = kairos_directory::start_on(cb, lb).await.unwrap();

    let per_file = Identity::generate();
    let now = clk.now();
    let m = manifest_v2(&per_file, now, now + 100, 1);
    let (p1, p2) = (placement(&m, 1, &per_file), placement(&m, 2, &per_file));
    let to_a = client_of(&ha, &clk);
    to_a.publish_any(&AnyManifest::V2(m.clone())).await.unwrap();
    to_a.publish_placement(&p1).await.unwrap();
    let at_b = client_of(&hb, &clk);
    eventually(15, "v2 manifest and placement to reach b", || async {
        let p = at_b.fetch_placement(&m, Some(&per_file)).await.ok()?;
        (p == p1).then_some(())
    })
    .await;
    assert_eq!(
        at_b.fetch_any_manifest(&m.id(), Some(&per_file))
            .await
            .unwrap(),
        AnyManifest::V2(m.clone())
    );
    // A newer seq replaces the older one at the sibling too.
    to_a.publish_placement(&p2).await.unwrap();
    eventually(15, "seq 2 to reach b", || async {
        let p = at_b.fetch_placement(&m, Some(&per_file)).await.ok()?;
        (p == p2).then_some(())
    })
    .await;
    // The uploader's tombstone at a reaches b: b answers `revoked` and takes nothing back.
    let forged = kairos_proto::Tombstone {
        file_id: m.id(),
        created: now,
    }
    .sign(&Identity::generate());
    assert!(to_a.publish_tombstone(&forged).await.is_err());
    let tombstone = kairos_proto::Tombstone {
        file_id: m.id(),
        created: now,
    }
    .sign(&per_file);
    to_a.publish_tombstone(&tombstone).await.unwrap();
    eventually(15, "the tombstone to reach b", || async {
        matches!(
            at_b.fetch_any_manifest(&m.id(), Some(&per_file)).await,
            Err(ClientError::Revoked)
        )
        .then_some(())
    })
    .await;
    assert!(matches!(
        at_b.fetch_placement(&m, Some(&per_file)).await,
        Err(ClientError::Revoked)
    ));
    assert!(matches!(
        at_b.publish_placement(&p2).await,
        Err(ClientError::Revoked)
    ));
    ha.shutdown().await;
    hb.shutdown().await;
}
