//! The drand lock against total collusion: a real directory relaying a real local test chain's
//! beacon server, real nodes. Every holder and the directory act as if the release time has
//! passed (their clocks are ahead), so the peer lock is gone everywhere; the chain has not
//! signed the lock's round yet (its clock is the true one). Nothing opens the file until it
//! has — not `kairos get`, not an attacker holding every piece and the manifest.

mod common;

use common::*;
use kairos_directory::{DirectoryClient, TestChainSource};
use kairos_lock::TestChain;
use kairos_net::Transport;
use kairos_node::piece::PieceBody;
use kairos_proto::SignedContentManifest;
use kairos_seal::{LockSecret, OpenSchedule, Opener};
use std::sync::Arc;
use std::time::Duration;

/// Every piece of every block, fetched straight from its holder: `(share, shard)` per piece.
type Pieces = Vec<Vec<(Vec<u8>, Vec<u8>)>>;

async fn every_piece(
    net: &Net,
    m: &SignedContentManifest,
    p: &kairos_proto::PlacementRecord,
) -> Pieces {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (b, block) in m.manifest().blocks.iter().enumerate() {
        let mut pieces = Vec::new();
        for (i, hash) in block.hashes.iter().enumerate() {
            let holder = net.index_of(p.holder_of(b, i).unwrap()).unwrap();
            let url = Transport::url(
                &net.node(holder).peer_addr().to_string(),
                &format!("/v1/pieces/{}", kairos_node::piece::hash_to_text(hash)),
            );
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(
                resp.status(),
                200,
                "holder {holder} did not serve block {b} piece {i}"
            );
            let body = PieceBody::decode(resp.bytes().await.unwrap()).unwrap();
            pieces.push((body.share().to_vec(), body.shard_bytes().to_vec()));
        }
        out.push(pieces);
    }
    out
}

/// Opens the file from all its pieces with lock secret `t`.
fn open(m: &SignedContentManifest, pieces: &Pieces, t: LockSecret) -> Result<Vec<u8>, String> {
    let c = m.manifest();
    let schedule = OpenSchedule::V2 { lock_secret: t };
    let mut opener = Opener::with_schedule(
        Vec::new(),
        c.params,
        c.salt,
        c.blocks.len() as u32,
        schedule,
    );
    for (b, block) in c.blocks.iter().enumerate() {
        let slots: Vec<Option<(&[u8], &[u8])>> = (pieces[b].iter())
            .map(|(share, shard)| Some((share.as_slice(), shard.as_slice())))
            .collect();
        opener
            .push_block(b as u32, block.cipher_len, &block.hashes, &slots)
            .map_err(|e| e.to_string())?;
    }
    let (_, bytes) = opener.finish_with_writer().map_err(|e| e.to_string())?;
    Ok(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_holder_and_the_directory_colluding_cannot_open_before_the_round() {
    // The chain's clock is the true time; everyone else's is ours to move.
    let world = manual_clock();
    let liars = manual_clock();
    let chain = TestChain::generate(&mut rand::rngs::OsRng, world.now(), 1).unwrap();
    let public = chain.chain().clone();
    let signer = TestChain::from_secret_bytes(&chain.to_secret_bytes()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let beacons = kairos_beacon::start(listener, Arc::new(chain), world.clock()).unwrap();
    let source = TestChainSource {
        chain: public.clone(),
        upstreams: vec![beacons.url()],
    };
    let lock_chain = public.clone();
    let net = Net::start_full(
        6,
        small_params(),
        liars.clock(),
        |d| d.test_chains = vec![source],
        |c| {
            c.lock_chain = Some(lock_chain.clone());
            c.beacon_wait = Duration::from_millis(1500);
        },
    )
    .await;

    let work = tempfile::tempdir().unwrap();
    let bytes = data(600_000, 11);
    let path = write_file(work.path(), "sealed", &bytes);
    let release = liars.now() + 60;
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    assert_eq!(put.lock.kind, "drand");
    assert!(put.lock.test_chain);
    let round = put.lock.round.unwrap();
    assert_eq!(Some(round), public.round_at_or_after(release).ok());

    // Everyone but the chain lies: the release time has passed for holders and directory.
    liars.advance(Duration::from_secs(120));

    // kairos get: every piece and the manifest are there for the asking, yet it is refused as
    // locked (the CLI's exit 3), naming the round, and writes nothing.
    let dest = work.path().join("early");
    let err = net.client(5).get(&put.id, &dest, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "locked", "{err}");
    assert!(
        err.to_string().contains(&format!("beacon round {round}")),
        "{err}"
    );
    assert!(!dest.exists());

    // The attacker's opener: the manifest from the directory and all n pieces of every block
    // from every holder — and still no way in.
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(liars.clock());
    let (m, placement) = v2_file(&dir, &put.id).await;
    let pieces = every_piece(&net, &m, &placement).await;
    let Some(lock) = m.manifest().lock.drand() else {
        panic!("the manifest has no drand lock");
    };
    assert!(open(&m, &pieces, LockSecret::none()).is_err());
    let early = public.verify(&signer.sign(round - 1).unwrap()).unwrap();
    assert!(kairos_lock::open_secret(&public, &early, round, &lock.ciphertext).is_err());

    // The chain reaches round R: the same pieces open to the original bytes, and so does get.
    world.advance(Duration::from_secs(120));
    let beacon = dir.fetch_beacon(&public, round).await.unwrap();
    let t = kairos_lock::open_secret(&public, &beacon, round, &lock.ciphertext).unwrap();
    let opened = open(&m, &pieces, LockSecret::from_bytes(t.expose())).unwrap();
    assert_eq!(opened, bytes);
    let got = net.client(5).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);

    net.shutdown().await;
    beacons.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peer_lock_uploads_need_no_beacon_and_drand_needs_a_chain() {
    let clock = manual_clock();
    let net = Net::start(6, small_params(), clock.clock()).await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(100_000, 12);
    let path = write_file(work.path(), "plain", &bytes);
    let release = clock.now() + 30;
    // No chain configured: the default is the peer lock, and drand is refused clearly.
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    assert_eq!(put.lock.kind, "peer");
    let options = kairos_node::PutOptions {
        name: None,
        lock: Some(kairos_node::LockChoice::Drand),
    };
    let err = net
        .client(0)
        .put_with(&path, release, options, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_input", "{err}");
    assert!(err.to_string().contains("--lock peer"), "{err}");
    clock.advance(Duration::from_secs(30));
    let dest = work.path().join("out");
    let got = net.client(3).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    net.shutdown().await;
}

/// A directory that does not relay the chain (or is down for beacons) does not keep a released
/// file closed: the node asks its own beacon upstream (drand's HTTP API over Tor in Tor mode;
/// here the test chain's server).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_beacon_comes_from_another_source_when_no_directory_has_it() {
    let clock = manual_clock();
    let chain = TestChain::generate(&mut rand::rngs::OsRng, clock.now(), 1).unwrap();
    let public = chain.chain().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let beacons = kairos_beacon::start(listener, Arc::new(chain), clock.clock()).unwrap();
    let url = beacons.url();
    // The directory relays no chain at all.
    let net = Net::start_with(6, small_params(), clock.clock(), |c| {
        c.lock_chain = Some(public.clone());
        c.beacon_upstreams = vec![url.clone()];
        c.beacon_wait = Duration::from_secs(5);
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(300_000, 13);
    let path = write_file(work.path(), "f", &bytes);
    let release = clock.now() + 30;
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    assert_eq!(put.lock.kind, "drand");
    clock.advance(Duration::from_secs(31));
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    let relayed = dir.fetch_beacon(&public, put.lock.round.unwrap()).await;
    assert!(
        relayed.is_err(),
        "the directory was not supposed to relay this chain"
    );
    let dest = work.path().join("out");
    let got = net.client(4).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    net.shutdown().await;
    beacons.shutdown().await;
}
