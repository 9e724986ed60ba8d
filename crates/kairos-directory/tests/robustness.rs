//! Arbitrary network input: every answer is a JSON error with a 4xx status (or a success for
//! the rare valid input), the server never panics or stops answering, and nothing invalid is
//! stored.

mod common;

use common::*;
use kairos_proto::Identity;
use proptest::prelude::*;

fn json_error(r: &Resp) -> bool {
    (400..500).contains(&r.status)
        && serde_json::from_slice::<kairos_net::ErrorBody>(&r.body).is_ok()
}

#[test]
fn arbitrary_bodies_paths_and_queries_are_refused_cleanly() {
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clk = clock();
    let mut cfg = config(dir.path(), &clk);
    let free = kairos_directory::RateLimit {
        per_second: 1e6,
        burst: 1e6,
    };
    cfg.limits.per_connection = free;
    cfg.limits.per_identity = free;
    let h = rt.block_on(kairos_directory::start(cfg)).unwrap();
    let c = http();
    // A valid record, to mutate.
    let id = Identity::generate();
    let valid = record(&id, clk.now()).into_bytes();

    proptest!(ProptestConfig::with_cases(200), |(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        flip in 0usize..400,
        seg in "[ -~]{0,80}",
        query in "[ -~]{0,60}",
    )| {
        rt.block_on(async {
            let r = send(c.post(url(&h, "/v1/nodes")).body(body.clone())).await;
            prop_assert!(json_error(&r), "POST nodes: {} {:?}", r.status, String::from_utf8_lossy(&r.body));
            let mut m = valid.clone();
            let i = flip % m.len();
            m[i] ^= 0x40;
            let r = send(c.post(url(&h, "/v1/nodes")).body(m)).await;
            prop_assert!(json_error(&r), "mutated record: {}", r.status);
            let enc: String = seg.bytes().map(|b| format!("%{b:02X}")).collect();
            let r = send(c.put(url(&h, &format!("/v1/manifests/{enc}"))).body(body.clone())).await;
            prop_assert!(json_error(&r), "PUT manifest: {}", r.status);
            let r = send(c.get(url(&h, &format!("/v1/manifests/{enc}")))).await;
            prop_assert!(json_error(&r), "GET manifest: {}", r.status);
            let q: String = query.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'=' || b == b'&' { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
            let r = send(c.get(url(&h, &format!("/v1/nodes?{q}")))).await;
            prop_assert!(r.status == 200 || json_error(&r), "GET nodes?{}: {}", q, r.status);
            let r = send(c.get(url(&h, &format!("/v1/sync?{q}")))).await;
            prop_assert!(json_error(&r), "GET sync: {}", r.status);
            Ok(())
        })?;
    });

    rt.block_on(async {
        let info = info(&h).await;
        assert_eq!(info["nodes"], 0);
        assert_eq!(info["manifests"], 0);
        h.shutdown().await;
    });
}
