//! Failure modes of launching tor must give clear, typed errors (and leave no tor running).

use kairos_tor::{LaunchConfig, TorError, TorProcess};
use std::time::{Duration, Instant};

#[tokio::test]
async fn missing_tor_binary_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir").join("tor");
    let err = TorProcess::launch(LaunchConfig::new(tmp.path().join("d")).tor_binary(&missing))
        .await
        .unwrap_err();
    assert!(matches!(err, TorError::TorNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("install the Debian package `tor`"), "{msg}");
    assert!(msg.contains("no-such-dir"), "{msg}");
}

#[tokio::test]
async fn tor_that_cannot_bootstrap_times_out_with_its_progress_and_log() {
    let tmp = tempfile::tempdir().unwrap();
    // A loopback port with nothing listening: the only directory authority is unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = LaunchConfig::new(tmp.path().join("lonely"))
        .torrc_lines([
            "TestingTorNetwork 1".to_string(),
            format!(
                "DirAuthority nowhere orport={port} v3ident=0123456789ABCDEF0123456789ABCDEF01234567 127.0.0.1:{port} 89ABCDEF0123456789ABCDEF0123456789ABCDEF"
            ),
        ])
        .bootstrap_timeout(Duration::from_secs(4));
    let start = Instant::now();
    let err = TorProcess::launch(config).await.unwrap_err();
    let elapsed = start.elapsed();
    match &err {
        TorError::BootstrapTimeout { progress, log, .. } => {
            assert!(*progress < 100);
            assert!(
                log.contains("Bootstrapped"),
                "log tail should be included: {log}"
            );
        }
        other => panic!("expected BootstrapTimeout, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("did not finish bootstrapping"), "{msg}");
    assert!(
        elapsed < Duration::from_secs(20),
        "deadline not honoured: {elapsed:?}"
    );
}

#[tokio::test]
async fn tor_that_exits_at_startup_reports_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let config = LaunchConfig::new(tmp.path().join("broken"))
        .torrc_lines(["ThisOptionDoesNotExist 1"])
        .bootstrap_timeout(Duration::from_secs(10));
    let err = TorProcess::launch(config).await.unwrap_err();
    match &err {
        TorError::EarlyExit { log, .. } => {
            assert!(log.contains("ThisOptionDoesNotExist"), "{log}");
        }
        other => panic!("expected EarlyExit, got {other:?}"),
    }
}
