//! The beacon server over a real socket with a manual clock: rounds before their time are
//! refused like drand does, rounds after it are signed and verify against the chain.

use kairos_lock::{BeaconJson, ChainInfo, TestChain};
use kairos_proto::clock::ManualClock;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;

async fn get(url: String) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    // No proxy from the environment: the server is on loopback.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client.get(url).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn signs_a_round_only_once_its_time_has_come() {
    let clock = ManualClock::new(1_000);
    let tc =
        Arc::new(TestChain::generate(&mut rand::rngs::StdRng::seed_from_u64(1), 1_000, 3).unwrap());
    let chain = tc.chain().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = kairos_beacon::start(listener, tc.clone(), clock.clock()).unwrap();
    let base = format!("{}/{}", server.url(), chain.hash_hex());

    let (status, _, body) = get(format!("{base}/info")).await;
    assert_eq!(status, 200);
    let info = ChainInfo::parse(&body).unwrap();
    assert_eq!(kairos_lock::Chain::from_info(&info).unwrap(), chain);
    assert_eq!(get(format!("{}/info", server.url())).await.0, 200);

    // Round 2 is at 1003.
    let (status, headers, _) = get(format!("{base}/public/2")).await;
    assert_eq!(status, 425);
    assert_eq!(headers["retry-after"], "3");
    clock.advance(Duration::from_secs(3));
    let (status, _, body) = get(format!("{base}/public/2")).await;
    assert_eq!(status, 200);
    let beacon = BeaconJson::parse(&body).unwrap();
    assert_eq!(beacon.round, 2);
    chain.verify(&beacon).unwrap();
    let (status, _, body) = get(format!("{base}/public/latest")).await;
    assert_eq!(status, 200);
    assert_eq!(BeaconJson::parse(&body).unwrap().round, 2);

    for (path, status) in [
        (format!("{base}/public/0"), 400),
        (format!("{base}/public/x"), 400),
        (format!("{base}/public/{}", u64::MAX), 400),
        (
            format!("{}/{}/public/1", server.url(), "00".repeat(32)),
            404,
        ),
        (format!("{}/nothing", server.url()), 404),
    ] {
        assert_eq!(get(path.clone()).await.0, status, "{path}");
    }
    server.shutdown().await;
}
