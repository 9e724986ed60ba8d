//! Manifest publication, the time-lock on fetching, refusal of bad input, expiry and restart.

mod common;

use common::*;
use kairos_directory::{ClientError, DirectoryClient};
use kairos_net::Transport;
use kairos_proto::{FileId, Identity};
use std::time::Duration;

#[tokio::test]
async fn publish_then_fetch_respects_the_time_lock() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let client = client_of(&h, &clk);
    let uploader = Identity::generate();
    let now = clk.now();
    let release = now + 3600;
    let m = manifest(&uploader, now, release, 1);

    client.publish(&m).await.unwrap();
    client.publish(&m).await.unwrap(); // idempotent

    // Before release: anonymous → locked until T; another identity → locked; uploader → ok.
    match client.fetch_manifest(&m.id(), None).await {
        Err(ClientError::Locked { until }) => assert_eq!(until, release),
        other => panic!("expected Locked, got {other:?}"),
    }
    let stranger = Identity::generate();
    assert!(matches!(
        client.fetch_manifest(&m.id(), Some(&stranger)).await,
        Err(ClientError::Locked { .. })
    ));
    let got = client
        .fetch_manifest(&m.id(), Some(&uploader))
        .await
        .unwrap();
    assert_eq!(got, m);

    // The raw answer: 403, JSON with locked_until, Retry-After.
    let r = send(http().get(url(&h, &format!("/v1/manifests/{}", m.id())))).await;
    assert_eq!((r.status, r.code()), (403, "locked".into()));
    assert_eq!(r.json()["locked_until"], release);
    assert_eq!(r.headers["retry-after"], "3600");

    // After release: anyone.
    clk.set(release);
    let got = client.fetch_manifest(&m.id(), None).await.unwrap();
    assert_eq!(got.as_bytes(), m.as_bytes());
    let r = send(http().get(url(&h, &format!("/v1/manifests/{}", m.id())))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-kairos-release"], release.to_string().as_str());
    h.shutdown().await;
}

#[tokio::test]
async fn bad_manifests_are_refused_and_change_nothing() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(dir.path(), &clk);
    cfg.limits.max_manifest_bytes = 4096;
    let h = start(cfg).await;
    let c = http();
    let put = |id: String, bytes: Vec<u8>| {
        send(c.put(url(&h, &format!("/v1/manifests/{id}"))).body(bytes))
    };
    let uploader = Identity::generate();
    let now = clk.now();
    let m = manifest(&uploader, now, now + 100, 1);
    let other = manifest(&uploader, now, now + 100, 2);

    let r = put(m.id().to_string(), m.as_bytes().to_vec()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["created"], true);
    let r = put(m.id().to_string(), m.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.json()["created"].clone()), (200, false.into()));

    // Other (valid) bytes under the stored id: a conflicting re-publish, refused.
    let r = put(m.id().to_string(), other.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "wrong_id".into()));
    // Tampered bytes under their (old) id, and under their own new hash.
    let mut tampered = other.as_bytes().to_vec();
    tampered[60] ^= 1;
    let r = put(other.id().to_string(), tampered.clone()).await;
    assert_eq!((r.status, r.code()), (400, "wrong_id".into()));
    let r = put(FileId::of(&tampered).to_string(), tampered).await;
    assert_eq!((r.status, r.code()), (400, "bad_manifest_signature".into()));
    let r = put(FileId::of(b"junk").to_string(), b"junk".to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "malformed_manifest".into()));
    let r = put("not-an-id".into(), other.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "bad_file_id".into()));
    // Oversized (declared and streamed without a length).
    let big = manifest_blocks(&uploader, now, now + 100, 3, 40);
    assert!(big.as_bytes().len() > 4096);
    let r = put(big.id().to_string(), big.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (413, "too_large".into()));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = send(
        c.put(url(&h, &format!("/v1/manifests/{}", big.id())))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    assert_eq!((r.status, r.code()), (413, "too_large".into()));
    // Release in the past.
    let old = manifest(&uploader, now - 1000, now - 400, 4);
    let r = put(old.id().to_string(), old.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "release_in_past".into()));
    // Release further ahead than the directory accepts (default 400 days).
    let far = manifest(&uploader, now, now + 401 * 86_400, 5);
    let r = put(far.id().to_string(), far.as_bytes().to_vec()).await;
    assert_eq!((r.status, r.code()), (400, "release_too_far".into()));

    // Store unchanged: one manifest, the original bytes.
    assert_eq!(info(&h).await["manifests"], 1);
    clk.advance(Duration::from_secs(100));
    let r = send(c.get(url(&h, &format!("/v1/manifests/{}", m.id())))).await;
    assert_eq!(r.body, m.as_bytes());
    for id in [other.id(), big.id(), old.id(), far.id()] {
        let r = send(c.get(url(&h, &format!("/v1/manifests/{id}")))).await;
        assert_eq!((r.status, r.code()), (404, "not_found".into()));
    }
    h.shutdown().await;
}

#[tokio::test]
async fn expired_manifests_are_swept_and_answer_not_found() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await; // retention 1000 s
    let client = client_of(&h, &clk);
    let uploader = Identity::generate();
    let now = clk.now();
    let m = manifest(&uploader, now, now + 10, 1);
    client.publish(&m).await.unwrap();
    clk.advance(Duration::from_secs(10 + 999));
    client.fetch_manifest(&m.id(), None).await.unwrap();
    clk.advance(Duration::from_secs(1));
    eventually(10, "manifest sweep", || async {
        (info(&h).await["manifests"] == 0).then_some(())
    })
    .await;
    assert!(matches!(
        client.fetch_manifest(&m.id(), None).await,
        Err(ClientError::NotFound)
    ));
    let r = send(http().get(url(&h, &format!("/v1/manifests/{}", m.id())))).await;
    assert_eq!((r.status, r.code()), (404, "not_found".into()));
    assert!(r.json()["message"].as_str().unwrap().contains("expired"));
    h.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_manifests_nodes_and_replay_state() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    let key = h.public_key();
    let addr = vec![h.local_addr().to_string()];
    let client = DirectoryClient::new(Transport::Direct, addr)
        .unwrap()
        .with_clock(clk.clock());
    let uploader = Identity::generate();
    let node = Identity::generate();
    let now = clk.now();
    let m = manifest(&uploader, now, now + 50, 1);
    let rec = record(&node, now);
    client.publish(&m).await.unwrap();
    client.subscribe(&rec).await.unwrap();
    // A second directory on the same home is refused while the first runs.
    let err = kairos_directory::start(config(dir.path(), &clk))
        .await
        .err()
        .expect("second directory on the same home must not start");
    assert!(err.to_string().contains("already open"), "{err}");
    h.shutdown().await;

    let h = start(config(dir.path(), &clk)).await;
    assert_eq!(h.public_key(), key, "identity survives restart");
    let client = client_of(&h, &clk);
    assert_eq!(
        client
            .fetch_manifest(&m.id(), Some(&uploader))
            .await
            .unwrap(),
        m
    );
    let nodes = client.list_nodes(10, None).await.unwrap();
    assert_eq!(nodes, vec![rec.clone()]);
    assert!(matches!(
        client.subscribe(&rec).await,
        Err(ClientError::Rejected { status: 409, .. })
    ));
    h.shutdown().await;
}

#[tokio::test]
async fn client_fails_over_to_a_directory_that_answers() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let h = start(config(dir.path(), &clk)).await;
    // A port with nothing listening, before and after the live one.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let client = DirectoryClient::new(
        Transport::Direct,
        vec![dead.clone(), h.local_addr().to_string(), dead.clone()],
    )
    .unwrap()
    .with_clock(clk.clock());
    let uploader = Identity::generate();
    let m = manifest(&uploader, clk.now(), clk.now() + 5, 9);
    for _ in 0..5 {
        client.publish(&m).await.unwrap();
    }
    let only_dead = DirectoryClient::new(Transport::Direct, vec![dead]).unwrap();
    assert!(matches!(
        only_dead.fetch_manifest(&m.id(), None).await,
        Err(ClientError::Unreachable { .. })
    ));
    h.shutdown().await;
}

#[tokio::test]
async fn every_acknowledged_publish_survives_a_shutdown_under_load() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let unlimited = || {
        let mut cfg = config(dir.path(), &clk);
        let free = kairos_directory::RateLimit {
            per_second: 1e6,
            burst: 1e6,
        };
        cfg.limits.per_identity = free;
        cfg.limits.per_connection = free;
        cfg
    };
    let h = start(unlimited()).await;
    let addr = h.local_addr().to_string();
    let uploader = std::sync::Arc::new(Identity::generate());
    let now = clk.now();
    let mut tasks = Vec::new();
    for w in 0..8u8 {
        let (addr, uploader) = (addr.clone(), uploader.clone());
        tasks.push(tokio::spawn(async move {
            let c = http();
            let mut acked = Vec::new();
            for i in 0..200u8 {
                let m = manifest_blocks(
                    &uploader,
                    now,
                    now + 100,
                    w.wrapping_mul(200).wrapping_add(i),
                    1 + (i as usize % 3),
                );
                let r = c
                    .put(format!("http://{addr}/v1/manifests/{}", m.id()))
                    .body(m.as_bytes().to_vec())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => acked.push(m),
                    Ok(r) if r.status() == 429 => {}
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break, // the server went away
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    h.shutdown().await;
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "some publishes completed before the shutdown"
    );
    eprintln!("{} publishes acknowledged before the shutdown", acked.len());
    let h = start(unlimited()).await;
    let c = http();
    for m in &acked {
        let r = send(c.get(url(&h, &format!("/v1/manifests/{}", m.id())))).await;
        assert_eq!(r.status, 403, "acknowledged manifest {} lost", m.id());
    }
    h.shutdown().await;
}

/// Throwaway keys can fill the manifest quota, never the disk: a publish over it gets
/// `507 directory_full` and stores nothing; expiry makes room again.
#[tokio::test]
async fn manifest_storage_is_capped() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let now = clk.now();
    let first = manifest(&Identity::generate(), now, now + 50, 1);
    let mut cfg = config(dir.path(), &clk);
    cfg.manifest_retention = Duration::from_secs(10);
    cfg.limits.manifest_store_bytes = first.as_bytes().len() as u64 + 100;
    let h = start(cfg).await;
    let client = client_of(&h, &clk);
    client.publish(&first).await.unwrap();
    let second = manifest(&Identity::generate(), now, now + 50, 2);
    match client.publish(&second).await {
        Err(ClientError::Rejected { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (507, "directory_full"))
        }
        other => panic!("expected directory_full, got {other:?}"),
    }
    assert_eq!(info(&h).await["manifests"], 1);
    // After release + retention the first one is swept, and there is room again.
    clk.advance(Duration::from_secs(61));
    eventually(10, "the expired manifest is swept", || async {
        (info(&h).await["manifests"] == 0).then_some(())
    })
    .await;
    client.publish(&second).await.unwrap();
    h.shutdown().await;
}

/// A directory that claims every manifest is locked (until the year 9999) must not hold a
/// released file back: the client asks the others, and reports the earliest claimed time only
/// when none has it.
#[tokio::test]
async fn one_lying_locked_answer_is_not_final() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let honest = start(config(dir.path(), &clk)).await;
    let liar = lying_directory(kairos_proto::time::MAX_RFC3339).await;
    let uploader = Identity::generate();
    let now = clk.now();
    let m = manifest(&uploader, now, now + 50, 1);
    client_of(&honest, &clk).publish(&m).await.unwrap();
    let both = vec![liar.to_string(), honest.local_addr().to_string()];
    let client = DirectoryClient::new(Transport::Direct, both)
        .unwrap()
        .with_clock(clk.clock());
    // Before release both say locked: the honest, earlier time is reported.
    for _ in 0..4 {
        match client.fetch_manifest(&m.id(), None).await {
            Err(ClientError::Locked { until }) => assert_eq!(until, now + 50),
            other => panic!("expected locked, got {other:?}"),
        }
    }
    clk.advance(Duration::from_secs(50));
    // Whichever directory the client starts at, the liar never wins.
    for _ in 0..4 {
        assert_eq!(client.fetch_manifest(&m.id(), None).await.unwrap(), m);
    }
    honest.shutdown().await;
}

/// A loopback HTTP server answering every request `403 locked` until `until`.
async fn lying_directory(until: u64) -> std::net::SocketAddr {
    let listener = bind("127.0.0.1:0".parse().unwrap()).await;
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "locked",
                "message": "locked",
                "locked_until": until,
            })),
        )
    });
    // Dropped with the test's runtime.
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
