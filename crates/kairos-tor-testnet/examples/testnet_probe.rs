//! Starts a private test network in the given directory, prints its startup time and client
//! torrc lines, then waits for Ctrl-C (handy for poking at it by hand).
use kairos_tor_testnet::TestNetwork;
#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kairos_tor=info,kairos_tor_testnet=info".into()),
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
    if std::env::args().any(|a| a == "--clients") {
        for i in 0..4 {
            let t = std::time::Instant::now();
            let client = kairos_tor::TorProcess::launch(
                kairos_tor::LaunchConfig::new(
                    std::path::Path::new(&dir).join(format!("client{i}")),
                )
                .torrc_lines(net.client_torrc_lines())
                .on_progress(move |s| {
                    println!(
                        "  client{i} {:>6}ms {:>3}% {}",
                        t.elapsed().as_millis(),
                        s.progress,
                        s.tag
                    )
                }),
            )
            .await
            .unwrap();
            println!("client{i} bootstrapped in {:?}", t.elapsed());
            client.shutdown().await.unwrap();
        }
    }
    if std::env::args().any(|a| a == "--exit") {
        net.stop().await;
        return;
    }
    tokio::signal::ctrl_c().await.unwrap();
    net.stop().await;
}
