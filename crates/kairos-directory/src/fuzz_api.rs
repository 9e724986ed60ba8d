//! Entry points for the fuzz targets in `fuzz/` (not a stable API): the steps this crate runs on
//! JSON from the network, without I/O, reachable from outside the crate.
//!
//! Invariant: each function here calls the same code the server runs on the same bytes, so a
//! crash found through it is a crash of the server.

use crate::config::DirectoryConfig;
use crate::federation::{parse_page, verify_items};
use crate::validate::Policy;

/// What [`verify_sync_page`] made of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageReport {
    pub epoch: u64,
    pub next: u64,
    pub more: bool,
    /// Items on the page.
    pub items: usize,
    /// Items that passed decoding, signature and admission checks.
    pub nodes: usize,
    pub manifests: usize,
    pub placements: usize,
    /// Items skipped (malformed, forged, expired, unknown kind).
    pub skipped: usize,
}

/// Parses a sibling's `GET /v1/sync` answer and verifies its items exactly as the puller does
/// before it stores them, for a directory configured by `cfg` whose clock reads `now`.
pub fn verify_sync_page(
    cfg: &DirectoryConfig,
    now: u64,
    body: &[u8],
) -> Result<PageReport, String> {
    let (page, epoch) = parse_page(body)?;
    let items = page.items.len();
    // No store: a placement verifies only against a manifest on the same page.
    let v = verify_items(page.items, &Policy::new(cfg, now), |_| None);
    Ok(PageReport {
        epoch,
        next: page.next,
        more: page.more,
        items,
        nodes: v.nodes.len(),
        manifests: v.manifests.len(),
        placements: v.placements.len(),
        skipped: v.skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE64;
    use kairos_proto::{Identity, NodeRecord};

    #[test]
    fn a_page_is_verified_as_the_puller_does() {
        let cfg = DirectoryConfig {
            allow_loopback_nodes: true,
            ..DirectoryConfig::default()
        };
        let now = 1_000_000;
        let id = Identity::from_seed(&[1; 32]);
        let record = NodeRecord::new(&id, "127.0.0.1:9".into(), 0, now)
            .sign(&id)
            .unwrap();
        let page = serde_json::json!({
            "epoch": "00000000000000ff",
            "items": [
                {"seq": 1, "kind": "node", "data": BASE64.encode(record.as_bytes())},
                {"seq": 2, "kind": "node", "data": "not base64"},
                {"seq": 3, "kind": "later", "data": ""},
                {"seq": 4, "kind": "manifest", "data": ""},
            ],
            "next": 4,
            "more": false,
        });
        let report = verify_sync_page(&cfg, now, page.to_string().as_bytes()).unwrap();
        assert_eq!(
            report,
            PageReport {
                epoch: 255,
                next: 4,
                more: false,
                items: 4,
                nodes: 1,
                manifests: 0,
                placements: 0,
                skipped: 3,
            }
        );
        // Past its TTL the same record is skipped; a bad epoch refuses the whole page.
        let late = now + cfg.node_ttl.as_secs();
        assert_eq!(
            verify_sync_page(&cfg, late, page.to_string().as_bytes())
                .unwrap()
                .nodes,
            0
        );
        let bad_epoch = page.to_string().replace("00000000000000ff", "zz");
        assert!(verify_sync_page(&cfg, now, bad_epoch.as_bytes()).is_err());
        assert!(verify_sync_page(&cfg, now, b"{").is_err());
    }
}
