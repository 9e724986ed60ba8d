//! Shared fixtures for the directory integration tests: real servers on 127.0.0.1 port 0 with a
//! manual clock, signed records and manifests, and a raw HTTP helper.
#![allow(dead_code)]

use kairos_directory::{DirectoryConfig, DirectoryHandle, ManualClock, Sibling};
use kairos_net::Transport;
use kairos_proto::{
    BlockEntry, Identity, Manifest, NodeRecord, Peer, PieceEntry, SignedManifest, SignedNodeRecord,
};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kairos_directory=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A clock starting at the real time, so signed requests stay within skew until advanced.
pub fn clock() -> ManualClock {
    ManualClock::new(kairos_proto::time::now_unix())
}

/// Development settings with fast federation and sweeps.
pub fn config(home: &Path, clock: &ManualClock) -> DirectoryConfig {
    let mut c = DirectoryConfig {
        home: home.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Direct,
        allow_loopback_nodes: true,
        // These tests fabricate node records at addresses nobody serves; reaching nodes before
        // listing them is tested in tests/reach.rs.
        reach_nodes: false,
        clock: clock.clock(),
        node_ttl: Duration::from_secs(60),
        manifest_retention: Duration::from_secs(1000),
        sync_interval: Duration::from_millis(200),
        sync_max_backoff: Duration::from_secs(1),
        sync_timeout: Duration::from_secs(2),
        sweep_interval: Duration::from_millis(100),
        ..DirectoryConfig::default()
    };
    c.limits.shutdown_grace = Duration::from_secs(2);
    c
}

/// Starts a directory on its configured address.
pub async fn start(cfg: DirectoryConfig) -> DirectoryHandle {
    kairos_directory::start(cfg)
        .await
        .expect("directory starts")
}

/// Binds `addr` (retrying briefly: a port just released may still be held by the old server).
/// A client of `h` alone, signing with the test's clock.
pub fn client_of(h: &DirectoryHandle, clk: &ManualClock) -> kairos_directory::DirectoryClient {
    kairos_directory::DirectoryClient::new(
        kairos_net::Transport::Direct,
        vec![h.local_addr().to_string()],
    )
    .unwrap()
    .with_clock(clk.clock())
}

pub async fn bind(addr: std::net::SocketAddr) -> TcpListener {
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not bind {addr}");
}

/// A home directory with its identity already created, so siblings can be configured first.
pub fn home_with_key(root: &Path, name: &str) -> (PathBuf, kairos_proto::PublicKey) {
    let home = root.join(name);
    let id = kairos_net::home::load_or_create_identity(&home).unwrap();
    (home, id.public())
}

pub fn sibling(addr: std::net::SocketAddr, key: kairos_proto::PublicKey) -> Sibling {
    Sibling {
        addr: addr.to_string(),
        key,
    }
}

pub fn record(id: &Identity, ts: u64) -> SignedNodeRecord {
    NodeRecord::new(id, "127.0.0.1:4100".into(), 1 << 30, ts)
        .sign(id)
        .unwrap()
}

/// A small valid manifest by `uploader` opening at `release`; `salt` makes it unique.
pub fn manifest(uploader: &Identity, created: u64, release: u64, salt: u8) -> SignedManifest {
    manifest_blocks(uploader, created, release, salt, 2)
}

pub fn manifest_blocks(
    uploader: &Identity,
    created: u64,
    release: u64,
    salt: u8,
    blocks: usize,
) -> SignedManifest {
    let params = kairos_seal::Params::default();
    let n = params.total_shards();
    let peers: Vec<Peer> = (0..n)
        .map(|i| {
            let key = Identity::from_seed(&[i as u8 + 1; 32]).public();
            Peer {
                addr: format!("{}:80", key.onion_address()),
                key,
            }
        })
        .collect();
    let blocks = (0..blocks)
        .map(|b| BlockEntry {
            cipher_len: if b + 1 == blocks {
                100
            } else {
                params.block_cipher_size() as u32
            },
            pieces: (0..n)
                .map(|i| PieceEntry {
                    peer: i as u16,
                    hash: [(b * 31 + i) as u8; 32],
                })
                .collect(),
        })
        .collect();
    Manifest {
        uploader: uploader.public(),
        created,
        release,
        salt: [salt; 32],
        params,
        peers,
        blocks,
    }
    .sign(uploader)
    .unwrap()
}

/// A raw HTTP response.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    /// The `error` code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap().to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn http() -> reqwest::Client {
    Transport::Direct.client("test").unwrap()
}

pub fn url(h: &DirectoryHandle, path: &str) -> String {
    format!("http://{}{}", h.local_addr(), path)
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /v1/info` as JSON.
pub async fn info(h: &DirectoryHandle) -> serde_json::Value {
    send(http().get(url(h, "/v1/info"))).await.json()
}

/// A small valid v2 content manifest signed by `per_file` (lock none), opening at `release`;
/// `salt` makes it unique.
pub fn manifest_v2(
    per_file: &Identity,
    created: u64,
    release: u64,
    salt: u8,
) -> kairos_proto::SignedContentManifest {
    let params = kairos_seal::Params::default();
    let n = params.total_shards();
    let blocks = (0..2usize)
        .map(|b| kairos_proto::ContentBlock {
            cipher_len: if b == 1 {
                100
            } else {
                params.block_cipher_size() as u32
            },
            hashes: (0..n).map(|i| [(b * 31 + i) as u8; 32]).collect(),
        })
        .collect();
    kairos_proto::ContentManifest {
        uploader: per_file.public(),
        created,
        release,
        salt: [salt; 32],
        params,
        lock: kairos_proto::LockSection::None,
        blocks,
    }
    .sign(per_file)
    .unwrap()
}

/// A placement record of `m` with `seq`, pieces of every block on holders 0..n, signed by
/// `signer` (the manifest's per-file key, or another one to test refusal).
pub fn placement(
    m: &kairos_proto::SignedContentManifest,
    seq: u64,
    signer: &Identity,
) -> kairos_proto::SignedPlacement {
    let n = m.manifest().params.total_shards();
    kairos_proto::PlacementRecord {
        file_id: m.id(),
        seq,
        created: m.manifest().created,
        holders: (0..n)
            .map(|i| Identity::from_seed(&[i as u8 + seq as u8; 32]).public())
            .collect(),
        blocks: vec![(0..n as u16).collect(); m.manifest().blocks.len()],
    }
    .sign(signer)
    .unwrap()
}
