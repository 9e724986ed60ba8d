//! The beacon relay over real sockets: a test chain's beacon server on 127.0.0.1 with a manual
//! clock as the upstream, a directory relaying that chain, and hostile upstreams.

mod common;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use common::*;
use kairos_directory::{DirectoryConfig, DirectoryHandle, ManualClock, TestChainSource};
use kairos_lock::{BeaconJson, Chain, TestChain};
use rand::SeedableRng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const PERIOD: u64 = 3;

fn test_chain(seed: u64, genesis: u64) -> Arc<TestChain> {
    Arc::new(
        TestChain::generate(
            &mut rand::rngs::StdRng::seed_from_u64(seed),
            genesis,
            PERIOD,
        )
        .unwrap(),
    )
}

async fn beacon_server(chain: Arc<TestChain>, clock: &ManualClock) -> kairos_beacon::BeaconServer {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    kairos_beacon::start(l, chain, clock.clock()).unwrap()
}

/// A directory relaying `chain` only (no quicknet), fetching from `upstreams`.
fn relay_config(
    home: &std::path::Path,
    clock: &ManualClock,
    chain: &Chain,
    upstreams: Vec<String>,
) -> DirectoryConfig {
    let mut c = config(home, clock);
    c.serve_quicknet = false;
    c.beacon_timeout = Duration::from_secs(5);
    c.test_chains = vec![TestChainSource {
        chain: chain.clone(),
        upstreams,
    }];
    c
}

fn beacon_url(h: &DirectoryHandle, chain: &Chain, round: impl std::fmt::Display) -> String {
    url(h, &format!("/v1/beacons/{}/{round}", chain.hash_hex()))
}

/// GETs a beacon; on 200 also parses and verifies it against `chain`.
async fn get_beacon(
    h: &DirectoryHandle,
    chain: &Chain,
    round: u64,
) -> (Resp, Option<kairos_lock::VerifiedBeacon>) {
    let r = send(http().get(beacon_url(h, chain, round))).await;
    let verified = (r.status == 200).then(|| {
        let b = BeaconJson::parse(&r.body).expect("drand beacon JSON");
        assert_eq!(b.round, round);
        chain.verify(&b).expect("the relayed beacon verifies")
    });
    (r, verified)
}

#[tokio::test]
async fn not_yet_then_relayed_and_verified_then_cached_across_restarts() {
    init_tracing();
    let clk = clock();
    let tc = test_chain(1, clk.now());
    let chain = tc.chain().clone();
    let upstream = beacon_server(tc.clone(), &clk).await;
    let dir = tempfile::tempdir().unwrap();
    let h = start(relay_config(dir.path(), &clk, &chain, vec![upstream.url()])).await;

    // Round 3's time is genesis + 6 s: not yet.
    let (r, _) = get_beacon(&h, &chain, 3).await;
    assert_eq!((r.status, r.code()), (425, "not_yet".to_owned()));
    assert_eq!(r.headers["retry-after"], "6");
    assert_eq!(r.json()["locked_until"], chain.round_time(3).unwrap());

    clk.advance(Duration::from_secs(6));
    let (r, first) = get_beacon(&h, &chain, 3).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let first = first.unwrap();
    assert_eq!(
        r.json()["randomness"],
        kairos_lock::wire::hex(&first.randomness())
    );

    // The upstream goes away: the stored beacon is still served, also after a restart.
    upstream.shutdown().await;
    let (r, again) = get_beacon(&h, &chain, 3).await;
    assert_eq!(r.status, 200);
    assert_eq!(again.unwrap(), first);
    let (r, _) = get_beacon(&h, &chain, 2).await;
    assert_eq!(
        (r.status, r.code()),
        (502, "upstream_failed".to_owned()),
        "not stored, upstream down"
    );
    h.shutdown().await;
    let h = start(relay_config(dir.path(), &clk, &chain, vec![])).await;
    let (r, after) = get_beacon(&h, &chain, 3).await;
    assert_eq!(r.status, 200);
    assert_eq!(after.unwrap(), first);
    let (r, _) = get_beacon(&h, &chain, 2).await;
    assert_eq!((r.status, r.code()), (404, "no_beacon".to_owned()));
    h.shutdown().await;
}

#[tokio::test]
async fn bad_input_and_unknown_chains() {
    init_tracing();
    let clk = clock();
    let tc = test_chain(2, clk.now());
    let dir = tempfile::tempdir().unwrap();
    let h = start(relay_config(dir.path(), &clk, tc.chain(), vec![])).await;
    let chain = tc.chain();
    for (path, status, code) in [
        (beacon_url(&h, chain, 0), 400, "bad_round"),
        (beacon_url(&h, chain, "x"), 400, "bad_round"),
        (beacon_url(&h, chain, "-1"), 400, "bad_round"),
        (beacon_url(&h, chain, u64::MAX), 400, "bad_round"),
        (
            beacon_url(&h, chain, "18446744073709551616"),
            400,
            "bad_round",
        ),
        (url(&h, "/v1/beacons/abc/1"), 400, "bad_chain"),
        (
            url(&h, &format!("/v1/beacons/{}/1", "zz".repeat(32))),
            400,
            "bad_chain",
        ),
        (
            beacon_url(&h, test_chain(3, 0).chain(), 1),
            404,
            "unknown_chain",
        ),
        (beacon_url(&h, &Chain::quicknet(), 1), 404, "unknown_chain"),
    ] {
        let r = send(http().get(&path)).await;
        assert_eq!((r.status, r.code()), (status, code.to_owned()), "{path}");
    }
    h.shutdown().await;
}

/// An upstream that signs with another key, or serves another round than asked, or garbage.
fn liar(bad: Arc<TestChain>, mode: &'static str, hits: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/{chain}/public/{round}",
        get(move |Path((_, round)): Path<(String, u64)>| {
            let bad = bad.clone();
            hits.fetch_add(1, Ordering::SeqCst);
            async move {
                let served = match mode {
                    "other_round" => round - 1,
                    _ => round,
                };
                let json = BeaconJson::unverified(&bad.sign(served).unwrap());
                match mode {
                    "garbage" => "{\"round\": 1, \"signature\": \"nope\"}".to_owned(),
                    _ => serde_json::to_string(&json).unwrap(),
                }
            }
        }),
    )
}

async fn serve_router(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(l, router).await;
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn lying_upstreams_store_nothing() {
    init_tracing();
    let clk = clock();
    let tc = test_chain(4, clk.now());
    let chain = tc.chain().clone();
    let dir = tempfile::tempdir().unwrap();
    clk.advance(Duration::from_secs(30));
    let impostor = test_chain(5, clk.now());
    let hits = Arc::new(AtomicUsize::new(0));
    let mut liars = Vec::new();
    for (key, mode) in [
        (impostor.clone(), "other_key"),
        (tc.clone(), "other_round"),
        (tc.clone(), "garbage"),
    ] {
        liars.push(serve_router(liar(key, mode, hits.clone())).await);
    }
    let urls: Vec<String> = liars.iter().map(|(u, _)| u.clone()).collect();
    let h = start(relay_config(dir.path(), &clk, &chain, urls.clone())).await;
    let (r, _) = get_beacon(&h, &chain, 5).await;
    assert_eq!((r.status, r.code()), (502, "upstream_failed".to_owned()));
    assert_eq!(hits.load(Ordering::SeqCst), 3, "every upstream was tried");
    let (r, _) = get_beacon(&h, &chain, 5).await;
    assert_eq!(r.status, 502, "nothing was stored");
    assert_eq!(hits.load(Ordering::SeqCst), 6);
    h.shutdown().await;

    // The same database, an honest upstream after the liars: the honest beacon is served.
    let honest = beacon_server(tc.clone(), &clk).await;
    let mut with_honest = urls;
    with_honest.push(honest.url());
    let h = start(relay_config(dir.path(), &clk, &chain, with_honest)).await;
    let (r, v) = get_beacon(&h, &chain, 5).await;
    assert_eq!(r.status, 200);
    assert_eq!(v.unwrap().signature(), &tc.sign(5).unwrap().signature);
    h.shutdown().await;
    honest.shutdown().await;
    for (_, task) in liars {
        task.abort();
    }
}

#[tokio::test]
async fn concurrent_misses_share_one_upstream_fetch() {
    init_tracing();
    let clk = clock();
    let tc = test_chain(6, clk.now());
    let chain = tc.chain().clone();
    clk.advance(Duration::from_secs(60));
    const CLIENTS: usize = 8;
    // The upstream holds its answer until it has seen CLIENTS requests or 2 s passed: without
    // coalescing every client's miss would reach it and release it at once.
    let hits = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let signer = tc.clone();
    let (h2, a2) = (hits.clone(), arrived.clone());
    let router = Router::new().route(
        "/{chain}/public/{round}",
        get(move |Path((_, round)): Path<(String, u64)>| {
            let (hits, arrived, signer) = (h2.clone(), a2.clone(), signer.clone());
            async move {
                if hits.fetch_add(1, Ordering::SeqCst) + 1 < CLIENTS {
                    let _ = tokio::time::timeout(Duration::from_secs(2), arrived.notified()).await;
                } else {
                    arrived.notify_waiters();
                }
                serde_json::to_string(&BeaconJson::unverified(&signer.sign(round).unwrap()))
                    .unwrap()
            }
        }),
    );
    let (upstream, task) = serve_router(router).await;
    let dir = tempfile::tempdir().unwrap();
    let h = Arc::new(start(relay_config(dir.path(), &clk, &chain, vec![upstream])).await);
    let mut reqs = Vec::new();
    for _ in 0..CLIENTS {
        let (h, chain) = (h.clone(), chain.clone());
        reqs.push(tokio::spawn(async move {
            get_beacon(&h, &chain, 7).await.0.status
        }));
    }
    for r in reqs {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "one upstream fetch for all the misses"
    );
    task.abort();
    Arc::into_inner(h).unwrap().shutdown().await;
}

#[tokio::test]
async fn upstream_fetches_go_through_the_socks_port_in_tor_mode() {
    init_tracing();
    let clk = clock();
    let tc = test_chain(7, clk.now());
    let chain = tc.chain().clone();
    clk.advance(Duration::from_secs(60));
    // A "SOCKS port" that only records that it was contacted, and a live upstream that must
    // never be contacted directly.
    let socks = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = beacon_server(tc.clone(), &clk).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = relay_config(dir.path(), &clk, &chain, vec![upstream.url()]);
    cfg.transport = kairos_net::Transport::Tor {
        socks: socks.local_addr().unwrap(),
    };
    let h = start(cfg).await;
    let req = tokio::spawn({
        let url = beacon_url(&h, &chain, 3);
        async move { send(http().get(url)).await }
    });
    let (mut sock, _) = tokio::time::timeout(Duration::from_secs(10), socks.accept())
        .await
        .expect("the relay never contacted the SOCKS port")
        .unwrap();
    use tokio::io::AsyncReadExt;
    let mut greeting = [0u8; 2];
    sock.read_exact(&mut greeting).await.unwrap();
    assert_eq!(greeting[0], 5, "a SOCKS5 greeting");
    drop(sock);
    drop(socks);
    let r = req.await.unwrap();
    assert_eq!(r.status, 502, "the fetch failed at the fake SOCKS port");
    h.shutdown().await;
    upstream.shutdown().await;
}
