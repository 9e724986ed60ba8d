//! The state every task of one running directory shares: settings, identity, store, writer
//! handle, node index, beacon relay, node prober, replay guard, rate limiters, upload slots and sibling
//! keys.
//!
//! `server` builds one [`App`] at start-up and hands it, as an `Arc`, to the routes, the
//! federation feed and pullers, and the sweeper. This module knows nothing of how those tasks
//! start or stop, so every task module can import it without importing start-up.
//!
//! Invariant: every time decision reads [`App::now`] (the configured clock), and every
//! admission decision goes through [`App::policy`], a snapshot of that clock and the settings.

use crate::beacons::BeaconRelay;
use crate::config::DirectoryConfig;
use crate::nodes::NodeIndex;
use crate::reach::Reach;
use crate::store::Store;
use crate::validate::Policy;
use crate::writer::Writer;
use kairos_net::ratelimit::RateLimiter;
use kairos_net::request::ConnLimited;
use kairos_net::ApiError;
use kairos_proto::{Identity, PublicKey, ReplayGuard};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Identities whose rate-limit buckets are remembered at once.
const IDENTITY_BUCKETS: usize = 200_000;

/// State shared by every task of one directory.
pub struct App {
    pub cfg: DirectoryConfig,
    pub identity: Identity,
    /// `identity.public()`, kept so request checks need not derive it.
    pub identity_key: PublicKey,
    pub store: Store,
    pub writer: Writer,
    pub nodes: Arc<NodeIndex>,
    pub beacons: Arc<BeaconRelay>,
    /// Reaches nodes before they are listed.
    pub reach: Arc<Reach>,
    pub replay: Mutex<ReplayGuard>,
    pub conn_limiter: RateLimiter<u64>,
    pub id_limiter: RateLimiter<PublicKey>,
    /// Memory for manifest and placement bodies, in bytes received.
    pub uploads: kairos_net::request::BodyBudget,
    pub sibling_keys: HashSet<PublicKey>,
}

impl ConnLimited for App {
    fn conn_limiter(&self) -> &RateLimiter<u64> {
        &self.conn_limiter
    }
}

impl App {
    /// The state of a directory configured by `cfg`, with fresh limiters and replay guard.
    pub fn new(
        cfg: DirectoryConfig,
        identity: Identity,
        store: Store,
        writer: Writer,
        nodes: Arc<NodeIndex>,
        beacons: Arc<BeaconRelay>,
        reach: Arc<Reach>,
    ) -> App {
        let l = &cfg.limits;
        App {
            replay: Mutex::new(ReplayGuard::new(cfg.skew_secs(), l.nonces_per_key)),
            conn_limiter: RateLimiter::new(
                l.per_connection.per_second,
                l.per_connection.burst,
                // Closed connections' buckets linger until refilled; leave room for churn.
                l.max_connections.saturating_mul(16).max(65_536),
            ),
            id_limiter: RateLimiter::new(
                l.per_identity.per_second,
                l.per_identity.burst,
                IDENTITY_BUCKETS,
            ),
            uploads: kairos_net::request::BodyBudget::new(
                l.max_concurrent_uploads
                    .saturating_mul(l.max_manifest_bytes),
                "manifest uploads",
            ),
            sibling_keys: cfg.siblings.iter().map(|s| s.key).collect(),
            identity_key: identity.public(),
            identity,
            store,
            writer,
            nodes,
            beacons,
            reach,
            cfg,
        }
    }

    pub fn now(&self) -> u64 {
        self.cfg.clock.now()
    }

    /// The admission settings, at the current time.
    pub fn policy(&self) -> Policy {
        Policy::new(&self.cfg, self.now())
    }

    /// How signed requests to this directory are checked at `now`: addressed to its key,
    /// within the skew window, nonce not yet used (recorded only once a route accepts).
    pub fn receiver(&self, now: u64) -> kairos_net::signed::Receiver<'_> {
        kairos_net::signed::Receiver {
            key: &self.identity_key,
            now,
            max_skew: self.cfg.skew_secs(),
            replay: Some(&self.replay),
        }
    }

    /// One token from `key`'s per-identity bucket.
    pub fn limit_identity(&self, key: &PublicKey) -> Result<(), ApiError> {
        self.id_limiter
            .check(key)
            .map_err(ApiError::too_many_requests)
    }
}
