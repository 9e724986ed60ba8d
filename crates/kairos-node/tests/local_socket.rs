//! The local API socket: private to its user, never hijacked, cleaned up.

mod common;

use common::*;
use kairos_node::{LocalClient, NodeError};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_private_and_managed_safely() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let clock = manual_clock().clock();
    // No directory needed: the node never joins.
    let mut cfg = node_config(&home, "127.0.0.1:9", small_params(), &clock);
    cfg.auto_join = false;
    let node = kairos_node::start(cfg.clone()).await.unwrap();
    let sock = node.socket_path();
    assert_eq!(sock, home.join("kairos.sock"));
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mine = std::fs::metadata(root.path()).unwrap().uid();
    assert_eq!(meta.uid(), mine, "socket owned by the daemon's user");
    let home_mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
    assert_eq!(home_mode, 0o700);
    let st = LocalClient::new(sock.clone()).status().await.unwrap();
    assert_eq!(st.key, node.public_key().to_text());

    // A second daemon on the same home is refused and leaves the first one's socket alone.
    let err = kairos_node::start(cfg.clone()).await.err().unwrap();
    assert!(
        matches!(err, NodeError::Store(_) | NodeError::AlreadyRunning(_)),
        "{err}"
    );
    LocalClient::new(sock.clone()).status().await.unwrap();

    node.shutdown().await;
    assert!(!sock.exists(), "socket removed at shutdown");
    let err = LocalClient::new(sock.clone()).status().await.unwrap_err();
    assert_eq!(err.code(), "not_running");

    // A stale socket (daemon crashed) is replaced, with mode 0600 again.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let node = kairos_node::start(cfg.clone()).await.unwrap();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    LocalClient::new(sock.clone()).status().await.unwrap();
    node.shutdown().await;

    // Anything else at the socket path is never deleted.
    std::fs::write(&sock, b"precious").unwrap();
    let err = kairos_node::start(cfg.clone()).await.err().unwrap();
    assert!(matches!(err, NodeError::Socket { .. }), "{err}");
    assert_eq!(std::fs::read(&sock).unwrap(), b"precious");
}
