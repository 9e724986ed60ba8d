//! Federation: directories pull from their siblings, verify, and converge — including across a
//! restart of one of them, through an intermediate directory, and past a sibling that hangs.

mod common;

use common::*;
use kairos_directory::{ClientError, DirectoryConfig, DirectoryHandle, ManualClock};
use kairos_proto::{Identity, PublicKey};
use std::net::SocketAddr;

/// Waits until `h` serves manifest `m` (to its uploader).
async fn has_manifest(
    h: &DirectoryHandle,
    clk: &kairos_directory::ManualClock,
    m: &kairos_proto::SignedManifest,
    uploader: &Identity,
) {
    let c = client_of(h, clk);
    eventually(15, "manifest to propagate", || async {
        c.fetch_manifest(&m.id(), Some(uploader)).await.ok()
    })
    .await;
}

async fn has_node(h: &DirectoryHandle, clk: &kairos_directory::ManualClock, key: PublicKey) {
    let c = client_of(h, clk);
    eventually(15, "node record to propagate", || async {
        let nodes = c.list_nodes(256, None).await.ok()?;
        nodes.iter().any(|r| r.record().key == key).then_some(())
    })
    .await;
}

struct Slot {
    home: std::path::PathBuf,
    key: PublicKey,
    addr: SocketAddr,
}

fn cfg_for(slot: &Slot, peers: &[&Slot], clk: &kairos_directory::ManualClock) -> DirectoryConfig {
    let mut c = config(&slot.home, clk);
    c.siblings = peers.iter().map(|p| sibling(p.addr, p.key)).collect();
    c
}

/// Reserves a loopback port for a directory that will start later.
fn slot(root: &std::path::Path, name: &str) -> Slot {
    let (home, key) = home_with_key(root, name);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Slot { home, key, addr }
}

async fn start_slot(
    s: &Slot,
    peers: &[&Slot],
    clk: &kairos_directory::ManualClock,
) -> DirectoryHandle {
    kairos_directory::start_on(cfg_for(s, peers, clk), bind(s.addr).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn ring_of_three_converges_across_a_restart() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let (a, b, c) = (
        slot(root.path(), "a"),
        slot(root.path(), "b"),
        slot(root.path(), "c"),
    );
    let ha = start_slot(&a, &[&b, &c], &clk).await;
    let hb = start_slot(&b, &[&c, &a], &clk).await;
    let hc = start_slot(&c, &[&a, &b], &clk).await;

    let uploader = Identity::generate();
    let now = clk.now();
    let m1 = manifest(&uploader, now, now + 600, 1);
    let node = Identity::generate();
    client_of(&ha, &clk).publish(&m1).await.unwrap();
    client_of(&ha, &clk)
        .subscribe(&record(&node, now))
        .await
        .unwrap();
    for h in [&hb, &hc] {
        has_manifest(h, &clk, &m1, &uploader).await;
        has_node(h, &clk, node.public()).await;
    }
    // Relayed manifests keep their time-lock at every directory.
    match client_of(&hc, &clk).fetch_manifest(&m1.id(), None).await {
        Err(ClientError::Locked { until }) => assert_eq!(until, now + 600),
        other => panic!("expected Locked at C, got {other:?}"),
    }

    // Stop C; publish at B meanwhile; restart C with the same home and port.
    hc.shutdown().await;
    let m2 = manifest(&uploader, now, now + 600, 2);
    client_of(&hb, &clk).publish(&m2).await.unwrap();
    has_manifest(&ha, &clk, &m2, &uploader).await;
    let hc = start_slot(&c, &[&a, &b], &clk).await;
    has_manifest(&hc, &clk, &m2, &uploader).await;
    has_manifest(&hc, &clk, &m1, &uploader).await; // kept on disk
                                                   // And what C publishes reaches the others.
    let m3 = manifest(&uploader, now, now + 600, 3);
    client_of(&hc, &clk).publish(&m3).await.unwrap();
    for h in [&ha, &hb] {
        has_manifest(h, &clk, &m3, &uploader).await;
    }
    // After release, anyone fetches from any of them.
    clk.set(now + 600);
    for h in [&ha, &hb, &hc] {
        client_of(h, &clk)
            .fetch_manifest(&m3.id(), None)
            .await
            .unwrap();
    }
    for h in [ha, hb, hc] {
        assert_eq!(info(&h).await["manifests"], 3);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn records_travel_through_an_intermediate_and_past_a_hung_sibling() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let (a, b, c) = (
        slot(root.path(), "a"),
        slot(root.path(), "b"),
        slot(root.path(), "c"),
    );
    // A hung sibling: accepts TCP connections (kernel backlog) but never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_slot = Slot {
        home: root.path().join("hung"),
        key: Identity::generate().public(),
        addr: hung.local_addr().unwrap(),
    };
    // Chain A – B – C; C also lists the hung sibling first.
    let ha = start_slot(&a, &[&b], &clk).await;
    let hb = start_slot(&b, &[&a, &c], &clk).await;
    let hc = start_slot(&c, &[&hung_slot, &b], &clk).await;
    let uploader = Identity::generate();
    let now = clk.now();
    let m = manifest(&uploader, now, now + 60, 7);
    client_of(&ha, &clk).publish(&m).await.unwrap();
    has_manifest(&hc, &clk, &m, &uploader).await;
    let m2 = manifest(&uploader, now, now + 60, 8);
    client_of(&hc, &clk).publish(&m2).await.unwrap();
    has_manifest(&ha, &clk, &m2, &uploader).await;
    for h in [ha, hb, hc] {
        h.shutdown().await;
    }
    drop(hung);
}

#[tokio::test]
async fn the_feed_is_only_for_signed_siblings() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let sib = Identity::generate();
    let mut cfg = config(&root.path().join("d"), &clk);
    cfg.siblings = vec![sibling("127.0.0.1:9".parse().unwrap(), sib.public())];
    // Never reachable sibling: its puller just backs off.
    let h = start(cfg).await;
    let uploader = Identity::generate();
    let m = manifest(&uploader, clk.now(), clk.now() + 600, 1);
    client_of(&h, &clk).publish(&m).await.unwrap();

    let c = http();
    let path = "/v1/sync?since=0&limit=10";
    let r = send(c.get(url(&h, path))).await;
    assert_eq!((r.status, r.code()), (401, "unsigned".into()));
    let stranger = Identity::generate();
    let me = h.public_key();
    let r = send(kairos_net::signed::sign(
        c.get(url(&h, path)),
        &stranger,
        &me,
        "GET",
        path,
        b"",
        clk.now(),
    ))
    .await;
    assert_eq!((r.status, r.code()), (403, "not_sibling".into()));
    // Signed for another path: bad signature.
    let r = send(kairos_net::signed::sign(
        c.get(url(&h, path)),
        &sib,
        &me,
        "GET",
        "/v1/sync",
        b"",
        clk.now(),
    ))
    .await;
    assert_eq!((r.status, r.code()), (401, "bad_signature".into()));
    // The sibling gets the locked manifest, and a replay of its request is refused.
    // Signed for another directory: refused by this one.
    let elsewhere = Identity::generate().public();
    let r = send(kairos_net::signed::sign(
        c.get(url(&h, path)),
        &sib,
        &elsewhere,
        "GET",
        path,
        b"",
        clk.now(),
    ))
    .await;
    assert_eq!((r.status, r.code()), (403, "wrong_recipient".into()));
    let req =
        kairos_net::signed::sign(c.get(url(&h, path)), &sib, &me, "GET", path, b"", clk.now());
    let replay = req.try_clone().unwrap();
    let r = send(req).await;
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["kind"], "manifest");
    assert_eq!(page["items"][0]["id"], m.id().to_string());
    assert_eq!(page["more"], false);
    let r = send(replay).await;
    assert_eq!((r.status, r.code()), (409, "replay".into()));
    h.shutdown().await;
}

#[tokio::test]
async fn a_lying_sibling_cannot_inject_anything() {
    use axum::routing::get;
    use data_encoding::BASE64;
    use kairos_directory::wire::{SyncItem, SyncPage};
    use kairos_proto::{FileId, NodeRecord};
    use std::sync::{Arc, Mutex};

    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let now = clk.now();
    let uploader = Identity::generate();
    let good_m = manifest(&uploader, now, now + 600, 1);
    let other_m = manifest(&uploader, now, now + 600, 2);
    let good_node = Identity::generate();
    let liar = Identity::generate();
    let mut flipped = record(&Identity::generate(), now).into_bytes();
    flipped[50] ^= 1;
    let victim = Identity::generate();
    let stolen_addr = NodeRecord::new(
        &liar,
        format!("{}:80", victim.public().onion_address()),
        1,
        now,
    )
    .sign(&liar)
    .unwrap();
    let expired = record(&Identity::generate(), now - 61);
    let node = |seq, bytes: &[u8]| SyncItem {
        seq,
        kind: "node".into(),
        id: None,
        data: BASE64.encode(bytes),
    };
    let man = |seq, id: FileId, bytes: &[u8]| SyncItem {
        seq,
        kind: "manifest".into(),
        id: Some(id.to_string()),
        data: BASE64.encode(bytes),
    };
    let items = vec![
        node(1, &flipped),
        node(2, stolen_addr.as_bytes()),
        node(3, expired.as_bytes()),
        man(4, good_m.id(), other_m.as_bytes()), // bytes of another manifest under this id
        man(5, other_m.id(), b"not a manifest"),
        SyncItem {
            seq: 6,
            kind: "future-kind".into(),
            id: None,
            data: "AAAA".into(),
        },
        node(7, record(&good_node, now).as_bytes()),
        man(8, good_m.id(), good_m.as_bytes()),
    ];
    let first = Arc::new(Mutex::new(Some(SyncPage {
        epoch: "00000000000000aa".into(),
        items,
        next: 8,
        more: false,
    })));
    let signed_pulls = Arc::new(Mutex::new(Vec::new()));
    let (pulls, page) = (signed_pulls.clone(), first.clone());
    let fake = axum::Router::new().route(
        "/v1/sync",
        get(
            move |headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
                pulls.lock().unwrap().push((
                    headers
                        .get("x-kairos-key")
                        .map(|v| v.to_str().unwrap().to_owned()),
                    uri.to_string(),
                ));
                axum::Json(page.lock().unwrap().take().unwrap_or(SyncPage {
                    epoch: "00000000000000aa".into(),
                    items: vec![],
                    next: 8,
                    more: false,
                }))
            },
        ),
    );
    let fake_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake_listener.local_addr().unwrap();
    let (stop_fake, stopped) = tokio::sync::oneshot::channel::<()>();
    let fake_task = tokio::spawn(async move {
        axum::serve(fake_listener, fake)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let mut cfg = config(&root.path().join("d"), &clk);
    cfg.siblings = vec![sibling(fake_addr, liar.public())];
    let h = start(cfg).await;
    has_manifest(&h, &clk, &good_m, &uploader).await;
    has_node(&h, &clk, good_node.public()).await;
    // Wait for a second (cursor-advanced) pull, then check nothing else got in.
    eventually(10, "a second pull", || async {
        let p = signed_pulls.lock().unwrap();
        (p.len() >= 2).then(|| p.clone())
    })
    .await;
    let i = info(&h).await;
    assert_eq!(
        (i["nodes"].as_u64(), i["manifests"].as_u64()),
        (Some(1), Some(1))
    );
    let pulls = signed_pulls.lock().unwrap().clone();
    assert!(pulls
        .iter()
        .all(|(k, _)| k.as_deref() == Some(h.public_key().to_text().as_str())));
    assert!(pulls[0].1.contains("since=0"));
    assert!(
        pulls[1].1.contains("since=8"),
        "cursor advanced: {:?}",
        pulls[1]
    );
    h.shutdown().await;
    let _ = stop_fake.send(());
    let _ = fake_task.await;
}

/// A signed `GET` of `path` on `h` by `id`, addressed to `h`.
fn signed_get(
    h: &DirectoryHandle,
    clk: &ManualClock,
    id: &Identity,
    path: &str,
) -> reqwest::RequestBuilder {
    let req = http().get(url(h, path));
    kairos_net::signed::sign(req, id, &h.public_key(), "GET", path, b"", clk.now())
}

#[tokio::test]
async fn one_key_cannot_exhaust_the_nonce_memory_of_others() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let sib = Identity::generate();
    let mut cfg = config(&root.path().join("d"), &clk);
    cfg.limits.nonces_per_key = 3;
    cfg.siblings = vec![sibling("127.0.0.1:9".parse().unwrap(), sib.public())];
    let h = start(cfg).await;
    let uploader = Identity::generate();
    let m = manifest(&uploader, clk.now(), clk.now() + 600, 1);
    client_of(&h, &clk).publish(&m).await.unwrap();
    let feed = "/v1/sync?since=0&limit=10";

    // A throwaway key's refused requests take no nonce memory: never "busy".
    let stranger = Identity::generate();
    for _ in 0..20 {
        let r = send(signed_get(&h, &clk, &stranger, feed)).await;
        assert_eq!((r.status, r.code()), (403, "not_sibling".into()));
    }
    // A key that uses up its own quota gets 429 for itself only.
    for _ in 0..3 {
        assert_eq!(send(signed_get(&h, &clk, &sib, feed)).await.status, 200);
    }
    let r = send(signed_get(&h, &clk, &sib, feed)).await;
    assert_eq!((r.status, r.code()), (429, "busy".into()));
    // Everyone else is unaffected.
    let path = format!("/v1/manifests/{}", m.id());
    for _ in 0..3 {
        assert_eq!(
            send(signed_get(&h, &clk, &uploader, &path)).await.status,
            200
        );
    }
    // After the window the sibling's nonces are forgotten and it syncs again.
    clk.advance(std::time::Duration::from_secs(301));
    assert_eq!(send(signed_get(&h, &clk, &sib, feed)).await.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_can_be_sent_again() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(&root.path().join("d"), &clk);
    cfg.limits.per_identity = kairos_directory::RateLimit {
        per_second: 5.0,
        burst: 1.0,
    };
    let h = start(cfg).await;
    let uploader = Identity::generate();
    let m = manifest(&uploader, clk.now(), clk.now() + 600, 1);
    client_of(&h, &clk).publish(&m).await.unwrap();
    let path = format!("/v1/manifests/{}", m.id());
    // Empty the uploader's bucket, then a request refused by the rate limit...
    let _ = send(signed_get(&h, &clk, &uploader, &path)).await;
    let req = signed_get(&h, &clk, &uploader, &path);
    let again = req.try_clone().unwrap();
    let r = send(req).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited".into()));
    // ...was not remembered: once the bucket refills, the same request is accepted, once.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let replay = again.try_clone().unwrap();
    assert_eq!(send(again).await.status, 200);
    let r = send(replay).await;
    assert_eq!((r.status, r.code()), (409, "replay".into()));
    h.shutdown().await;
}
