//! Federation between sibling directories: the feed a directory serves (`GET /v1/sync`) and the
//! puller that consumes its siblings' feeds.
//!
//! # Protocol
//!
//! Every stored item has a per-database sequence number; the feed returns items with a seq
//! greater than `since`, oldest first, in bounded pages, with the `next` cursor and the
//! database `epoch`. The feed contains time-locked manifests, so it is served only to requests
//! signed by a configured sibling key.
//!
//! # Invariants
//!
//! * Nothing is trusted because a sibling sent it: every record, manifest (v1 or v2) and
//!   placement is decoded and verified again here (signature, file id, address binding,
//!   expiry; a placement against its manifest, from the same page or already stored) exactly
//!   as if a client had sent it; items that fail, and kinds this version does not know, are
//!   skipped and logged.
//! * A page's items and the advanced cursor are committed in one transaction, so a crash never
//!   skips items; a restarted directory resumes from its stored cursor.
//! * Each sibling has its own task, timeout and exponential backoff (capped at
//!   `sync_max_backoff`, with jitter): a sibling that is down or slow delays only itself.
//! * A cursor is valid only for the epoch it was issued under; on an epoch change the puller
//!   starts over from 0 (the sibling's database was replaced).

use crate::api_error::{bad_query, internal};
use crate::config::Sibling;
use crate::state::App;
use crate::store::{
    FeedItem, ItemKind, ManifestWrite, NodeWrite, PlacementWrite, Store, TombstoneWrite,
};
use crate::validate::{self, admit_relayed_manifest, admit_relayed_record, Policy};
use crate::writer::{Op, Outcome};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use data_encoding::BASE64;
use futures::StreamExt;
use kairos_directory_client::wire::{SyncItem, SyncPage};
use kairos_net::{ApiError, ErrorBody, Transport};
use kairos_proto::{
    AnyManifest, FileId, PlacementRecord, PublicKey, SignedContentManifest, SignedNodeRecord,
    SignedPlacement, SignedTombstone, Tombstone,
};
use rand::Rng;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
pub struct FeedQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/sync?since=S&limit=N`, signed by a sibling.
pub async fn feed(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Json<SyncPage>, ApiError> {
    let now = app.now();
    let verified =
        kairos_net::signed::verify_request(&headers, &method, &uri, b"", &app.receiver(now))?;
    let key = verified.key();
    if !app.sibling_keys.contains(&key) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_sibling",
            format!("{key} is not a configured sibling of this directory"),
        ));
    }
    let Query(q) = query.map_err(bad_query)?;
    // Only accepted requests take room in the replay guard.
    verified.commit(&app.replay, now)?;
    let limits = &app.cfg.limits;
    let since = q.since.unwrap_or(0);
    let limit = q
        .limit
        .unwrap_or(limits.sync_page_items)
        .clamp(1, limits.sync_page_items);
    let store = app.store.clone();
    let max_bytes = limits.sync_page_bytes;
    let page = tokio::task::spawn_blocking(move || store.feed(since, limit, max_bytes))
        .await
        .map_err(|_| ApiError::internal("feed task failed"))?
        .map_err(internal)?;
    Ok(Json(SyncPage {
        epoch: format!("{:016x}", app.store.epoch()),
        items: page.items.into_iter().map(sync_item).collect(),
        next: page.next,
        more: page.more,
    }))
}

/// The wire form of one stored feed item.
fn sync_item(it: FeedItem) -> SyncItem {
    SyncItem {
        seq: it.seq,
        kind: match it.kind {
            ItemKind::Node => "node",
            ItemKind::Manifest => "manifest",
            ItemKind::Placement => "placement",
            ItemKind::Tombstone => "tombstone",
        }
        .to_owned(),
        id: (it.kind != ItemKind::Node).then(|| FileId(it.key).to_string()),
        data: BASE64.encode(&it.bytes),
    }
}

/// Delay before retry number `failures` (≥ 1): `interval × 2^(failures-1)`, capped, with ±25 %
/// jitter so siblings that failed together do not retry together.
pub fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    let exp = interval.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let base = exp.min(max);
    let jittered = base.as_secs_f64() * rand::thread_rng().gen_range(0.75..1.25);
    Duration::try_from_secs_f64(jittered).unwrap_or(base)
}

/// Polls one sibling until `stop`.
pub async fn pull_loop(
    app: Arc<App>,
    sibling: Sibling,
    client: reqwest::Client,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            r = pull_once(&app, &sibling, &client) => r,
            _ = stop.cancelled() => return,
        };
        let delay = match result {
            Ok(more) => {
                if failures > 0 {
                    tracing::info!("sibling {sibling} is reachable again");
                }
                failures = 0;
                if more {
                    continue;
                }
                app.cfg.sync_interval
            }
            Err(e) => {
                failures += 1;
                let d = backoff(app.cfg.sync_interval, app.cfg.sync_max_backoff, failures);
                tracing::warn!(
                    "pull from sibling {sibling} failed ({failures} in a row), retrying in {}: {e}",
                    humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
                );
                d
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Pulls and stores one page. Returns whether more pages are ready.
pub async fn pull_once(
    app: &App,
    sibling: &Sibling,
    client: &reqwest::Client,
) -> Result<bool, String> {
    let (epoch, cursor) = app.store.cursor(&sibling.key).map_err(|e| e.to_string())?;
    let (page, their_epoch) = fetch_page(app, sibling, client, cursor).await?;
    if cursor != 0 && their_epoch != epoch {
        tracing::info!(
            "sibling {sibling} has a new database (epoch changed); pulling its feed from the start"
        );
        return store_page(app, sibling, their_epoch, 0, Verified::default())
            .await
            .map(|_| true);
    }
    let policy = app.policy();
    let store = app.store.clone();
    let mut verified = tokio::task::spawn_blocking(move || {
        verify_items(page.items, &policy, |id| {
            stored_content_manifest(&store, id)
        })
    })
    .await
    .map_err(|e| format!("verification task failed: {e}"))?;
    if verified.skipped > 0 {
        tracing::warn!(
            "skipped {} invalid or expired items from sibling {sibling}",
            verified.skipped
        );
    }
    keep_room(app, &policy, &mut verified.nodes);
    let next = page.next.max(cursor);
    store_page(app, sibling, their_epoch, next, verified).await?;
    Ok(page.more)
}

/// Asks `sibling` for the page after `cursor`, signed by this directory.
async fn fetch_page(
    app: &App,
    sibling: &Sibling,
    client: &reqwest::Client,
    cursor: u64,
) -> Result<(SyncPage, u64), String> {
    let limits = &app.cfg.limits;
    let path = format!("/v1/sync?since={cursor}&limit={}", limits.sync_page_items);
    let url = Transport::url(&sibling.addr, &path);
    let request = kairos_net::signed::sign(
        client.get(&url).timeout(app.cfg.sync_timeout),
        &app.identity,
        &sibling.key,
        "GET",
        &path,
        b"",
        app.now(),
    );
    let resp = request.send().await.map_err(|e| format!("{e}"))?;
    let status = resp.status();
    // A page holds up to `sync_page_bytes` of payload, or one item of any size; base64 adds a
    // third, JSON a little per item.
    let payload = limits.sync_page_bytes + limits.max_manifest_bytes;
    let cap = payload / 3 * 4 + limits.sync_page_items * 256 + (64 << 10);
    let body = read_capped(resp, cap).await?;
    if !status.is_success() {
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| format!("{} ({}): {}", status, b.error, b.message))
            .unwrap_or_else(|_| status.to_string());
        return Err(detail);
    }
    parse_page(&body)
}

/// A sibling's `GET /v1/sync` answer and its epoch (hex on the wire).
pub fn parse_page(body: &[u8]) -> Result<(SyncPage, u64), String> {
    let page: SyncPage =
        serde_json::from_slice(body).map_err(|e| format!("malformed sync page: {e}"))?;
    let epoch = u64::from_str_radix(&page.epoch, 16)
        .map_err(|_| format!("malformed epoch {:?}", page.epoch))?;
    Ok((page, epoch))
}

/// Drops relayed records of keys this directory does not hold once the node cap is reached.
fn keep_room(app: &App, policy: &Policy, nodes: &mut Vec<NodeWrite>) {
    let mut room = validate::room(app.nodes.len(), policy);
    nodes.retain(|n| {
        app.nodes.contains(&n.record.record().key) || {
            let ok = room > 0;
            room = room.saturating_sub(1);
            ok
        }
    });
}

/// The stored v2 content manifest of `id`, if any (a placement relayed alone is checked
/// against it). Storage errors count as "not stored": the placement is skipped this time.
fn stored_content_manifest(store: &Store, id: &FileId) -> Option<SignedContentManifest> {
    let row = store.manifest(id, |_| true).ok()??;
    SignedContentManifest::from_bytes(row.bytes?).ok()
}

async fn store_page(
    app: &App,
    sibling: &Sibling,
    epoch: u64,
    cursor: u64,
    items: Verified,
) -> Result<(), String> {
    // Relayed records are listed only once this directory reached them itself.
    let relayed: Vec<(PublicKey, String)> = (items.nodes.iter())
        .map(|n| (n.record.record().key, n.record.record().addr.clone()))
        .collect();
    let op = Op::Pulled {
        sibling: sibling.key,
        epoch,
        cursor,
        nodes: items.nodes,
        manifests: items.manifests,
        placements: items.placements,
        tombstones: items.tombstones,
    };
    if let Outcome::Pulled {
        stored_nodes,
        manifests,
        placements,
        conflicts,
        full,
    } = app.writer.submit(op).await.map_err(|e| e.to_string())?
    {
        if app.cfg.reach_nodes {
            for &i in &stored_nodes {
                let (key, addr) = relayed[i].clone();
                app.reach.enqueue(key, addr);
            }
        }
        if full > 0 {
            tracing::warn!("{full} manifests or placements from sibling {sibling} were not stored: this directory's manifest storage is full (limits.manifest_store_bytes)");
        }
        if conflicts > 0 {
            tracing::error!("sibling {sibling} sent {conflicts} manifests whose id is already stored with other bytes");
        }
        if !stored_nodes.is_empty() || manifests > 0 || placements > 0 {
            tracing::debug!(
                "stored {} node records, {manifests} manifests and {placements} placements from sibling {sibling}",
                stored_nodes.len()
            );
        }
    }
    Ok(())
}

async fn read_capped(resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the sync page: {e}"))?;
        if buf.len() + chunk.len() > cap {
            return Err(format!("sync page larger than {cap} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The items of a pulled page that passed verification, and how many were skipped.
#[derive(Default)]
pub struct Verified {
    pub nodes: Vec<NodeWrite>,
    pub manifests: Vec<ManifestWrite>,
    pub placements: Vec<PlacementWrite>,
    pub tombstones: Vec<TombstoneWrite>,
    pub skipped: usize,
}

/// Decodes and verifies pulled items as if clients had sent them. A placement is verified
/// against the v2 manifest of its file from the same page or, failing that, from
/// `stored(id)`.
pub fn verify_items(
    items: Vec<SyncItem>,
    p: &Policy,
    stored: impl Fn(&FileId) -> Option<SignedContentManifest>,
) -> Verified {
    let mut out = Verified::default();
    let mut page_manifests: HashMap<FileId, SignedContentManifest> = HashMap::new();
    for item in items {
        let result = match item.kind.as_str() {
            "node" => verify_node(&item, p).map(|n| out.nodes.push(n)),
            "manifest" => verify_manifest(&item, p).map(|(w, m)| {
                if let AnyManifest::V2(m) = m {
                    page_manifests.insert(w.id, m);
                }
                out.manifests.push(w)
            }),
            "placement" => verify_placement(&item, p, |id| {
                page_manifests.get(id).cloned().or_else(|| stored(id))
            })
            .map(|w| out.placements.push(w)),
            "tombstone" => verify_tombstone(&item, |id| {
                page_manifests.get(id).cloned().or_else(|| stored(id))
            })
            .map(|w| out.tombstones.push(w)),
            other => Err(format!("unknown item kind {other:?}")),
        };
        if let Err(reason) = result {
            tracing::debug!("skipping relayed item {}: {reason}", item.seq);
            out.skipped += 1;
        }
    }
    out
}

fn item_id(item: &SyncItem) -> Result<FileId, String> {
    item.id
        .as_deref()
        .ok_or("item without id")?
        .parse()
        .map_err(|e: kairos_proto::manifest::BadFileId| e.to_string())
}

fn verify_placement(
    item: &SyncItem,
    p: &Policy,
    manifest_of: impl FnOnce(&FileId) -> Option<SignedContentManifest>,
) -> Result<PlacementWrite, String> {
    let id = item_id(item)?;
    let bytes = BASE64
        .decode(item.data.as_bytes())
        .map_err(|e| e.to_string())?;
    let claimed = PlacementRecord::decode_unverified(&bytes).map_err(|e| e.to_string())?;
    if claimed.file_id != id {
        return Err("placement item names another file than its record".into());
    }
    let manifest = manifest_of(&id).ok_or("placement of a version 2 manifest not held here")?;
    let placement = SignedPlacement::verify(bytes, &manifest).map_err(|e| e.to_string())?;
    Ok(PlacementWrite {
        id,
        seq: placement.seq(),
        bytes: placement.into_bytes(),
        quota: p.manifest_quota,
    })
}

/// A relayed tombstone is verified against the file's manifest (from the page or stored) as
/// a client's would be, except for the release time: the origin checked it with its clock
/// when it accepted the tombstone, and a revoke must not be undone by relaying it late.
fn verify_tombstone(
    item: &SyncItem,
    manifest_of: impl FnOnce(&FileId) -> Option<SignedContentManifest>,
) -> Result<TombstoneWrite, String> {
    let id = item_id(item)?;
    let bytes = BASE64
        .decode(item.data.as_bytes())
        .map_err(|e| e.to_string())?;
    let claimed = Tombstone::decode_unverified(&bytes).map_err(|e| e.to_string())?;
    if claimed.file_id != id {
        return Err("tombstone item names another file than its tombstone".into());
    }
    let manifest = manifest_of(&id).ok_or("tombstone of a version 2 manifest not held here")?;
    let t = SignedTombstone::verify(bytes, &manifest).map_err(|e| e.to_string())?;
    if t.tombstone().created > manifest.manifest().release {
        return Err("tombstone signed after the file's release".into());
    }
    Ok(TombstoneWrite {
        id,
        bytes: t.into_bytes(),
    })
}

fn verify_node(item: &SyncItem, p: &Policy) -> Result<NodeWrite, String> {
    let bytes = BASE64
        .decode(item.data.as_bytes())
        .map_err(|e| e.to_string())?;
    let record = SignedNodeRecord::from_bytes(bytes).map_err(|e| e.to_string())?;
    admit_relayed_record(&record, p)?;
    Ok(NodeWrite { record })
}

/// A relayed manifest of either version, as a write and as verified (a v2 one may be needed
/// for a placement later on the page).
fn verify_manifest(item: &SyncItem, p: &Policy) -> Result<(ManifestWrite, AnyManifest), String> {
    let id = item_id(item)?;
    let bytes = BASE64
        .decode(item.data.as_bytes())
        .map_err(|e| e.to_string())?;
    let m = AnyManifest::verify(bytes, &id).map_err(|e| e.to_string())?;
    let expires_at = admit_relayed_manifest(&m, p)?;
    let write = ManifestWrite {
        id,
        release: m.release(),
        uploader: m.uploader(),
        expires_at,
        bytes: m.as_bytes().to_vec(),
        quota: p.manifest_quota,
    };
    Ok((write, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let i = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let d1 = backoff(i, max, 1);
        assert!(d1 >= Duration::from_millis(75) && d1 <= Duration::from_millis(125));
        let d4 = backoff(i, max, 4);
        assert!(d4 >= Duration::from_millis(600) && d4 <= Duration::from_millis(1000));
        for f in [10, 40, u32::MAX] {
            assert!(backoff(i, max, f) <= max.mul_f64(1.25));
        }
        // Absurd settings must not panic.
        let _ = backoff(Duration::MAX, Duration::MAX, u32::MAX);
    }
}
