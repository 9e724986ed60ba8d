//! Shared fixtures: a real directory and several nodes in-process on 127.0.0.1 port 0, each
//! with its own temporary home, all reading one clock.
#![allow(dead_code)]

use kairos_directory::{DirectoryConfig, DirectoryHandle};
use kairos_net::Transport;
use kairos_node::{Clock, LocalClient, ManualClock, NodeConfig, NodeHandle};
use kairos_seal::Params;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kairos_node=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Small shards: several blocks without large files.
pub fn small_params() -> Params {
    Params {
        data_shards: 4,
        parity_shards: 2,
        shard_size: 64 * 1024,
    }
}

/// A clock starting at the real time, so signed requests stay within skew until advanced.
pub fn manual_clock() -> ManualClock {
    ManualClock::new(kairos_proto::time::now_unix())
}

/// A directory and `count` nodes.
pub struct Net {
    pub root: tempfile::TempDir,
    pub directory: Option<DirectoryHandle>,
    pub nodes: Vec<Option<NodeHandle>>,
    pub configs: Vec<NodeConfig>,
    pub clock: Clock,
}

pub fn node_config(home: &Path, dir: &str, params: Params, clock: &Clock) -> NodeConfig {
    let mut c = NodeConfig {
        home: home.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        directories: vec![dir.to_owned()],
        transport: Transport::Direct,
        params,
        auto_join: true,
        clock: clock.clone(),
        ..NodeConfig::default()
    };
    c.limits.shutdown_grace = Duration::from_secs(2);
    c
}

impl Net {
    pub async fn start(count: usize, params: Params, clock: Clock) -> Net {
        Self::start_with(count, params, clock, |_| {}).await
    }

    /// [`Net::start`] with every node's configuration adjusted by `adjust`.
    pub async fn start_with(
        count: usize,
        params: Params,
        clock: Clock,
        adjust: impl Fn(&mut NodeConfig),
    ) -> Net {
        Self::start_full(count, params, clock, |_| {}, adjust).await
    }

    /// [`Net::start_with`], the directory's configuration adjusted by `adjust_directory`.
    pub async fn start_full(
        count: usize,
        params: Params,
        clock: Clock,
        adjust_directory: impl FnOnce(&mut DirectoryConfig),
        adjust: impl Fn(&mut NodeConfig),
    ) -> Net {
        init_tracing();
        let root = tempfile::tempdir().unwrap();
        let mut dcfg = DirectoryConfig {
            home: root.path().join("directory"),
            listen: "127.0.0.1:0".parse().unwrap(),
            transport: Transport::Direct,
            allow_loopback_nodes: true,
            clock: clock.clone(),
            node_ttl: Duration::from_secs(3600),
            ..DirectoryConfig::default()
        };
        dcfg.limits.shutdown_grace = Duration::from_secs(2);
        adjust_directory(&mut dcfg);
        let directory = kairos_directory::start(dcfg)
            .await
            .expect("directory starts");
        let dir_addr = directory.local_addr().to_string();
        let mut net = Net {
            root,
            directory: Some(directory),
            nodes: Vec::new(),
            configs: Vec::new(),
            clock: clock.clone(),
        };
        let starts = (0..count).map(|i| {
            let home = net.root.path().join(format!("node-{i}"));
            let mut c = node_config(&home, &dir_addr, params, &clock);
            adjust(&mut c);
            c
        });
        let configs: Vec<NodeConfig> = starts.collect();
        let handles =
            futures::future::join_all(configs.iter().cloned().map(kairos_node::start)).await;
        for (mut cfg, h) in configs.into_iter().zip(handles) {
            let h = h.expect("node starts");
            // Restarts reuse the port the manifest names.
            cfg.listen = h.peer_addr();
            net.configs.push(cfg);
            net.nodes.push(Some(h));
        }
        net
    }

    pub fn client(&self, i: usize) -> LocalClient {
        LocalClient::new(self.configs[i].socket_path())
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn dir_addr(&self) -> String {
        self.directory.as_ref().unwrap().local_addr().to_string()
    }

    pub async fn stop_node(&mut self, i: usize) {
        if let Some(h) = self.nodes[i].take() {
            h.shutdown().await;
        }
    }

    pub async fn restart_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none());
        let mut last = None;
        for _ in 0..50 {
            match kairos_node::start(self.configs[i].clone()).await {
                Ok(h) => {
                    self.nodes[i] = Some(h);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {i} did not restart: {last:?}");
    }

    /// Index of the node with this key.
    pub fn index_of(&self, key: &kairos_proto::PublicKey) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|h| h.public_key() == *key))
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i).await;
        }
        if let Some(d) = self.directory.take() {
            d.shutdown().await;
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Entries of a directory (to check that nothing, not even a temp file, was created).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The content manifest and newest placement record of the version 2 file `id`, as the
/// directories serve them after release.
pub async fn v2_file(
    dir: &kairos_directory::DirectoryClient,
    id: &kairos_proto::FileId,
) -> (
    kairos_proto::SignedContentManifest,
    kairos_proto::PlacementRecord,
) {
    let kairos_proto::AnyManifest::V2(m) = dir.fetch_any_manifest(id, None).await.unwrap() else {
        panic!("put published a version 1 manifest");
    };
    let p = dir.fetch_newest_placement(&m, None).await.unwrap();
    (m, p.record().clone())
}
