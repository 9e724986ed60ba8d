//! Cost of the drand lock per file: sealing `T` (encrypt), verifying a beacon, opening `T`
//! (decrypt). `cargo bench -p kairos-lock` prints criterion's time per call for each.

use criterion::{criterion_group, criterion_main, Criterion};
use kairos_lock::{open_secret, seal_secret, Beacon, Chain, TestChain};
use rand::SeedableRng;
use std::hint::black_box;

/// Real quicknet round 1000 (see tests/quicknet.rs for the source).
const ROUND_1000_SIG: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

fn lock(c: &mut Criterion) {
    let quicknet = Chain::quicknet();
    let t = [7u8; 32];
    let mut g = c.benchmark_group("lock");
    g.bench_function("encrypt (seal_secret, quicknet)", |b| {
        b.iter(|| seal_secret(&quicknet, black_box(20_000_000), &t).unwrap())
    });
    let beacon = Beacon {
        round: 1000,
        signature: kairos_lock::wire::unhex(ROUND_1000_SIG, 48, "sig")
            .unwrap()
            .try_into()
            .unwrap(),
    };
    g.bench_function("beacon verify (quicknet)", |b| {
        b.iter(|| quicknet.verify(black_box(&beacon)).unwrap())
    });
    let tc = TestChain::generate(&mut rand::rngs::StdRng::seed_from_u64(1), 0, 1).unwrap();
    let ct = seal_secret(tc.chain(), 1000, &t).unwrap();
    let verified = tc.chain().verify(&tc.sign(1000).unwrap()).unwrap();
    g.bench_function("decrypt (open_secret)", |b| {
        b.iter(|| open_secret(tc.chain(), &verified, 1000, black_box(&ct)).unwrap())
    });
    g.bench_function("test chain sign", |b| {
        b.iter(|| tc.sign(black_box(1000)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, lock);
criterion_main!(benches);
