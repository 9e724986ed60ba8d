//! The beacon relay behind `GET /v1/beacons/{chain}/{round}`: drand beacons of the chains this
//! directory serves (quicknet, configured test chains), answered from the `beacons` table and,
//! on a miss for a round whose time has come, fetched from the chain's upstream drand HTTP APIs
//! through the directory's transport (over Tor: tor's SOCKS port, never a direct connection).
//!
//! Invariants:
//! * only beacons that verified against their chain's pinned or configured public key, and are
//!   of the round asked for, are stored or served; a bad upstream answer is logged and
//!   dropped, and the next upstream is tried;
//! * concurrent misses for one (chain, round) share one upstream fetch (a *flight*); a flight
//!   runs as a task of the directory's [`Service`], so it finishes (and stores) even if every
//!   requester went away, and stops at shutdown;
//! * at most `max_beacon_fetches` flights run at once; a miss beyond that is [`Miss::Busy`];
//! * upstream bodies are read up to [`kairos_lock::wire::MAX_JSON_BYTES`] and every request
//!   has a timeout (`beacon_timeout`).

use crate::config::{DirectoryConfig, RelayedChain};
use crate::store::{BeaconWrite, Store};
use crate::writer::{Op, Outcome, Writer};
use futures::future::{BoxFuture, FutureExt, Shared};
use kairos_host::{Service, StoreError};
use kairos_lock::wire::MAX_JSON_BYTES;
use kairos_lock::{Beacon, BeaconJson, VerifiedBeacon};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why the relay has no beacon to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// This directory does not serve that chain.
    UnknownChain,
    /// Round 0, or a round whose time does not fit in 64 bits.
    BadRound,
    /// The round's time (`at`) has not come yet.
    NotYet { at: u64 },
    /// Not stored here, and no upstream is configured for the chain.
    NoUpstream,
    /// Every upstream failed, lied or does not have it yet (details in the log).
    Upstream,
    /// Too many upstream fetches in flight.
    Busy,
    /// The database failed (`closed`: the directory is shutting down).
    Storage { closed: bool },
}

type ChainHash = [u8; 32];
type Flight = Shared<BoxFuture<'static, Result<Beacon, Miss>>>;

/// The relay: chains served, the HTTP client for upstreams, the flights in progress.
pub struct BeaconRelay {
    chains: HashMap<ChainHash, RelayedChain>,
    client: reqwest::Client,
    store: Store,
    writer: Writer,
    service: Service,
    inflight: Mutex<HashMap<(ChainHash, u64), Flight>>,
    fetches: Arc<Semaphore>,
    timeout: Duration,
    cap: u64,
}

fn hex(hash: &ChainHash) -> String {
    kairos_lock::wire::hex(hash)
}

fn storage(e: StoreError) -> Miss {
    tracing::error!("beacon relay: storage failure: {e}");
    Miss::Storage {
        closed: matches!(e, StoreError::Closed),
    }
}

impl BeaconRelay {
    /// The relay of `cfg`'s chains; flights run under `service`.
    pub fn new(
        cfg: &DirectoryConfig,
        store: Store,
        writer: Writer,
        service: Service,
    ) -> Result<BeaconRelay, kairos_net::TransportError> {
        let chains = cfg
            .relayed_chains()
            .into_iter()
            .map(|r| (*r.chain.hash(), r))
            .collect();
        Ok(BeaconRelay {
            chains,
            client: cfg.transport.client("beacons")?,
            store,
            writer,
            service,
            inflight: Mutex::new(HashMap::new()),
            fetches: Arc::new(Semaphore::new(cfg.limits.max_beacon_fetches)),
            timeout: cfg.beacon_timeout,
            cap: cfg.limits.max_beacons_per_chain,
        })
    }

    /// The chain with this hash, if this directory serves it.
    pub fn chain(&self, hash: &ChainHash) -> Option<&RelayedChain> {
        self.chains.get(hash)
    }

    /// The beacon of `round` of chain `hash` at `now`: stored, or fetched, verified and stored.
    pub async fn lookup(
        self: &Arc<Self>,
        hash: ChainHash,
        round: u64,
        now: u64,
    ) -> Result<Beacon, Miss> {
        let entry = self.chains.get(&hash).ok_or(Miss::UnknownChain)?;
        let at = entry.chain.round_time(round).map_err(|_| Miss::BadRound)?;
        if now < at {
            return Err(Miss::NotYet { at });
        }
        if let Some(beacon) = self.stored(&hash, round)? {
            return Ok(beacon);
        }
        if entry.upstreams.is_empty() {
            return Err(Miss::NoUpstream);
        }
        self.join_flight(hash, round)?.await
    }

    fn stored(&self, hash: &ChainHash, round: u64) -> Result<Option<Beacon>, Miss> {
        Ok(self
            .store
            .beacon(hash, round)
            .map_err(storage)?
            .map(|signature| Beacon { round, signature }))
    }

    /// The flight for (hash, round): the one in progress, or a new one.
    fn join_flight(self: &Arc<Self>, hash: ChainHash, round: u64) -> Result<Flight, Miss> {
        let key = (hash, round);
        // Held while the flight is spawned and inserted: the flight removes itself under the
        // same lock when done, so it cannot finish before it is in the map (and stay there).
        let mut map = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = map.get(&key) {
            return Ok(flight.clone());
        }
        // A flight that just finished stored its beacon before leaving the map.
        if let Some(beacon) = self.stored(&hash, round)? {
            return Ok(futures::future::ready(Ok(beacon)).boxed().shared());
        }
        let permit = self
            .fetches
            .clone()
            .try_acquire_owned()
            .map_err(|_| Miss::Busy)?;
        let me = self.clone();
        let task = self.service.spawn(async move {
            let result = me.fly(hash, round, permit).await;
            me.inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            result
        });
        let flight = async move { task.await.unwrap_or(Err(Miss::Upstream)) }
            .boxed()
            .shared();
        map.insert(key, flight.clone());
        Ok(flight)
    }

    /// One flight: the upstreams in turn until one gives a verified beacon, which is stored.
    async fn fly(
        &self,
        hash: ChainHash,
        round: u64,
        _permit: OwnedSemaphorePermit,
    ) -> Result<Beacon, Miss> {
        let Some(entry) = self.chains.get(&hash) else {
            return Err(Miss::UnknownChain);
        };
        let token = self.service.token();
        let fetched = tokio::select! {
            v = self.fetch_any(entry, round) => v,
            _ = token.cancelled() => return Err(Miss::Storage { closed: true }),
        };
        let beacon = fetched?;
        let write = BeaconWrite {
            chain: hash,
            round,
            signature: *beacon.signature(),
            cap: self.cap,
        };
        match self
            .writer
            .submit(Op::Beacon(write))
            .await
            .map_err(storage)?
        {
            Outcome::Beacon(outcome) => {
                tracing::debug!(
                    "beacon relay: round {round} of chain {}: {outcome:?}",
                    hex(&hash)
                );
                Ok(beacon.beacon())
            }
            other => {
                tracing::error!("writer answered a beacon write with {other:?}");
                Err(Miss::Storage { closed: false })
            }
        }
    }

    async fn fetch_any(&self, entry: &RelayedChain, round: u64) -> Result<VerifiedBeacon, Miss> {
        for base in &entry.upstreams {
            match self.fetch_one(base, entry, round).await {
                Ok(beacon) => return Ok(beacon),
                Err(e) => tracing::warn!(
                    "beacon upstream {base}: round {round} of chain {}: {e}; nothing stored",
                    entry.chain.hash_hex()
                ),
            }
        }
        Err(Miss::Upstream)
    }

    /// Fetches, parses and verifies one upstream's beacon of `round`.
    async fn fetch_one(
        &self,
        base: &str,
        entry: &RelayedChain,
        round: u64,
    ) -> Result<VerifiedBeacon, String> {
        let url = format!(
            "{}/{}/public/{round}",
            base.trim_end_matches('/'),
            entry.chain.hash_hex()
        );
        let mut resp = self
            .client
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("body: {e}"))? {
            if body.len().saturating_add(chunk.len()) > MAX_JSON_BYTES {
                return Err(format!("body over {MAX_JSON_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let beacon = BeaconJson::parse(&body).map_err(|e| e.to_string())?;
        if beacon.round != round {
            return Err(format!(
                "served round {} when asked for round {round}",
                beacon.round
            ));
        }
        let chain = entry.chain.clone();
        // A pairing check is ~2 ms of CPU: off the async threads.
        tokio::task::spawn_blocking(move || chain.verify(&beacon))
            .await
            .map_err(|e| format!("verification task failed: {e}"))?
            .map_err(|e| e.to_string())
    }
}
