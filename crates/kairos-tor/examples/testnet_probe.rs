//! Starts a private test network in the given directory, prints its startup time and client
//! torrc lines, then waits for Ctrl-C (handy for poking at it by hand).
use kairos_tor::TestNetwork;
#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kairos_tor=info".into()),
        )
        .init();
    let dir = std::env::args()
        .nth(1)
        .expect("usage: testnet_probe DIR [--exit]");
    let net = TestNetwork::start(std::path::Path::new(&dir))
        .await
        .unwrap();
    println!("started in {:?}", net.startup_time());
    for l in net.client_torrc_lines() {
        println!("{l}");
    }
    if std::env::args().any(|a| a == "--exit") {
        net.stop().await;
        return;
    }
    tokio::signal::ctrl_c().await.unwrap();
    net.stop().await;
}
