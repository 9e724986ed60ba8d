//! Starting and stopping the beacon server: the shared accept loop of kairos servers
//! ([`kairos_net::serve`]) on a given listener, under one [`Service`].
//!
//! Invariant: [`BeaconServer::shutdown`] returns once the accept loop and every connection
//! ended; dropping the handle stops it without waiting.

use kairos_host::service::StopOnDrop;
use kairos_host::Service;
use kairos_lock::TestChain;
use kairos_net::serve::{serve, NoDelayTcp, ServeLimits};
use kairos_proto::clock::Clock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A running beacon server.
pub struct BeaconServer {
    addr: SocketAddr,
    hash: String,
    service: Service,
    _stop_on_drop: StopOnDrop,
}

impl BeaconServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`: the base URL to configure as the chain's upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The served chain's hash (hex).
    pub fn chain_hash(&self) -> &str {
        &self.hash
    }

    /// Stops accepting, lets requests in flight finish (up to 2 s), and returns when done.
    pub async fn shutdown(self) {
        self.service.shutdown().await;
    }
}

/// Serves `chain` on `listener` (bind it on loopback), with `clock` deciding which rounds
/// have come. Says on start that this is a test chain.
pub fn start(
    listener: TcpListener,
    chain: Arc<TestChain>,
    clock: Clock,
) -> std::io::Result<BeaconServer> {
    let addr = listener.local_addr()?;
    let hash = chain.chain().hash_hex();
    tracing::warn!(
        "TEST CHAIN: beacon server of local test chain {hash} on {addr} (not drand; development and tests only)"
    );
    let service = Service::new();
    let limits = ServeLimits {
        max_connections: 256,
        header_timeout: Duration::from_secs(20),
        shutdown_grace: Duration::from_secs(2),
    };
    let router = crate::routes::router(chain, clock);
    service.spawn(serve(NoDelayTcp(listener), router, limits, service.token()));
    Ok(BeaconServer {
        addr,
        hash,
        _stop_on_drop: service.stop_on_drop(),
        service,
    })
}
