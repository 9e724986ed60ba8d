//! Starting the test network without a usable tor must fail with a clear, typed error (and
//! leave no tor running).

use kairos_tor::TorError;
use kairos_tor_testnet::{TestNetError, TestNetwork};
use std::time::Duration;

#[tokio::test]
async fn missing_tor_binary_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir").join("tor");
    let err = TestNetwork::start_with(
        &tmp.path().join("net"),
        Some(&missing),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, TestNetError::Tor(TorError::TorNotFound { .. })),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("install the Debian package `tor`"), "{msg}");
}
