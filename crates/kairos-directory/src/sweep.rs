//! The expiry sweep: deletes node records past their TTL, replay floors past their horizon,
//! and manifests past `release + retention`.
//!
//! Runs once at start and then every `sweep_interval`. Reads never depend on it for
//! correctness (listing filters on expiry itself); it only reclaims space. A manifest that was
//! swept answers `404 not_found` like one that never existed — the message says it may have
//! expired.

use crate::state::App;
use crate::store::SweepReport;
use crate::writer::{Op, Outcome};
use kairos_host::StoreError;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One complete sweep at the directory's current time.
pub async fn sweep_once(app: &App) -> Result<SweepReport, StoreError> {
    let ttl = app.cfg.node_ttl.as_secs();
    let mut total = SweepReport::default();
    loop {
        let op = Op::Sweep {
            now: app.now(),
            node_ttl: ttl,
            // A floor is only needed while a record at least as old could still pass the skew
            // check or be relayed as unexpired.
            floor_horizon: ttl.max(app.cfg.skew_secs()),
        };
        let Outcome::Swept(rep) = app.writer.submit(op).await? else {
            return Err(StoreError::Corrupt("unexpected writer answer".into()));
        };
        total.nodes.extend(rep.nodes);
        total.manifests += rep.manifests;
        total.floors += rep.floors;
        if !rep.more {
            return Ok(total);
        }
    }
}

pub async fn sweep_loop(app: Arc<App>, stop: CancellationToken) {
    loop {
        match sweep_once(&app).await {
            Ok(r) if !r.nodes.is_empty() || r.manifests > 0 => tracing::info!(
                "expiry sweep deleted {} node records and {} manifests",
                r.nodes.len(),
                r.manifests
            ),
            Ok(_) => {}
            Err(StoreError::Closed) => return,
            Err(e) => tracing::error!("expiry sweep failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(app.cfg.sweep_interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}
