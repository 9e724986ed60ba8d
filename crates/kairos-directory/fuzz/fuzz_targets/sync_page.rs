//! A sibling's `GET /v1/sync` answer, as the puller reads it: JSON parsing, the epoch, then per
//! item base64, record/manifest decoding, signature and file-id checks and the relay admission
//! rules. Never a panic; every item is either accepted or counted as skipped.
#![no_main]

use std::sync::OnceLock;

use kairos_directory::fuzz_api::verify_sync_page;
use kairos_directory::DirectoryConfig;
use libfuzzer_sys::fuzz_target;

/// The directory's clock: the time the records and manifests in `seeds/` were signed at.
const NOW: u64 = 1_700_000_000;

fn config() -> &'static DirectoryConfig {
    static CONFIG: OnceLock<DirectoryConfig> = OnceLock::new();
    // Loopback addresses allowed, so records that are not onion-bound reach the later checks.
    CONFIG.get_or_init(|| DirectoryConfig {
        allow_loopback_nodes: true,
        ..DirectoryConfig::default()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = verify_sync_page(config(), NOW, data) {
        assert_eq!(
            report.nodes + report.manifests + report.placements + report.skipped,
            report.items
        );
    }
});
