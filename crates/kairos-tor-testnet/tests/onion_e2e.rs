//! End to end over a real private Tor network on 127.0.0.1: a kairos identity published as an
//! onion service on one tor, reached through another tor's SOCKS port.
//!
//! One network is shared by every step (starting it is the slow part), so this file holds a
//! single test that runs the steps in order.

use kairos_proto::Identity;
use kairos_tor::onion::{publish_onion_and_wait, unpublish_onion};
use kairos_tor::{ControlAuth, ControlError, LaunchConfig, TorError, TorProcess};
use kairos_tor_testnet::TestNetwork;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kairos_tor=info,kairos_tor_testnet=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A TCP server that answers every connection with "echo:" + what it read (one message).
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(client: &mut TorProcess, host: &str, isolation: &str) -> tokio::net::TcpStream {
    let t = Instant::now();
    let stream = client
        .connect_with_retry(host, 80, isolation, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!(
        "stream to {host} ({isolation}) open after {:?}",
        t.elapsed()
    );
    stream
}

async fn round_trip(stream: &mut tokio::net::TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .unwrap();
    assert_eq!(back, payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onion_service_round_trip_over_private_network() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();

    let t = Instant::now();
    let net = TestNetwork::start(&tmp.path().join("net")).await.unwrap();
    eprintln!("TIMING TestNetwork::start: {:?}", t.elapsed());

    // Two client tors, launched concurrently.
    let config = |name: &str| {
        LaunchConfig::new(tmp.path().join(name))
            .torrc_lines(net.client_torrc_lines())
            .bootstrap_timeout(Duration::from_secs(60))
    };
    // Tor A the way a kairos server starts it: started, its onion service registered while
    // it bootstraps, then (below) registered again once it has.
    let identity = Identity::generate();
    let target = echo_server().await;
    let launch_a = async {
        let mut starting = TorProcess::start(config("tor-a")).await?;
        assert!(starting.socks_addr().ip().is_loopback());
        let early = kairos_tor::publish_onion(starting.control(), &identity, 80, target).await?;
        assert_eq!(early, identity.public().onion_address());
        starting.bootstrapped().await
    };
    let t = Instant::now();
    let (a, b) = tokio::join!(
        launch_a,
        TorProcess::launch(
            config("tor-b")
                .on_progress(|s| { eprintln!("tor-b bootstrap {}% {}", s.progress, s.summary) })
        )
    );
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    eprintln!(
        "TIMING client launch -> bootstrapped (both): {:?}",
        t.elapsed()
    );
    assert!(a.is_owned() && a.pid().is_some());
    assert!(b.socks_addr().ip().is_loopback());
    assert!(b
        .socks_proxy_url("w1")
        .starts_with("socks5h://w1:x@127.0.0.1:"));

    // Publish the kairos identity on tor A again (replacing the early registration) and wait
    // for its descriptor.
    let t = Instant::now();
    let host = publish_onion_and_wait(a.control(), &identity, 80, target, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!("TIMING ADD_ONION -> HS_DESC UPLOADED: {:?}", t.elapsed());
    assert_eq!(host, identity.public().onion_address());
    assert!(
        a.control().enabled_events().is_empty(),
        "HS_DESC listening must end with the wait"
    );
    assert_eq!(
        kairos_proto::parse_onion_address(&host).unwrap(),
        identity.public()
    );

    // Reach it from tor B.
    let mut stream = connect(&mut b, &host, "w1").await;
    round_trip(&mut stream, b"hello over tor").await;
    eprintln!(
        "TIMING ADD_ONION -> first successful round trip: {:?}",
        t.elapsed()
    );

    // A larger payload on a second, isolated circuit.
    let mut stream2 = connect(&mut b, &host, "w2").await;
    let big: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let t2 = Instant::now();
    round_trip(&mut stream2, &big).await;
    eprintln!("256 KiB echo took {:?}", t2.elapsed());

    // An address nobody publishes: a typed error once the deadline passes.
    let nobody = Identity::generate().public().onion_address();
    let t3 = Instant::now();
    let err = b
        .connect_with_retry(&nobody, 80, "w3", Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(err, TorError::Unreachable { .. }), "{err:?}");
    eprintln!("unpublished onion: {err} (after {:?})", t3.elapsed());

    // Publishing the same identity again (new target) replaces the service.
    let target2 = echo_server().await;
    let again = kairos_tor::publish_onion(a.control(), &identity, 80, target2)
        .await
        .unwrap();
    assert_eq!(again, host);
    unpublish_onion(a.control(), &identity).await.unwrap();

    // The control connection still works and the tors are still healthy.
    let status = b.control().bootstrap_status().await.unwrap();
    assert_eq!(status.progress, 100);
    b.control()
        .set_conf(&[("MaxCircuitDirtiness", "600")])
        .await
        .unwrap();
    let names = b.control().get_info("config/names").await.unwrap();
    assert!(names.lines().count() > 100, "multi-line GETINFO: {names}");

    // Attaching to a running tor: cookie path from PROTOCOLINFO, SAFECOOKIE.
    let attached = TorProcess::attach(a.control_addr(), ControlAuth::Cookie(None))
        .await
        .unwrap();
    assert_eq!(attached.socks_addr(), a.socks_addr());
    assert_eq!(attached.pid(), a.pid());
    assert!(!attached.is_owned());
    drop(attached);
    // A cookie that is not tor's must fail SAFECOOKIE with a typed error.
    let fake = tmp.path().join("fake_cookie");
    std::fs::write(&fake, [7u8; 32]).unwrap();
    let err = TorProcess::attach(a.control_addr(), ControlAuth::Cookie(Some(fake)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TorError::Control(ControlError::Auth(_))),
        "{err:?}"
    );
    // The owning connection survived the attach/detach of other controllers.
    assert_eq!(a.control().bootstrap_status().await.unwrap().progress, 100);

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    net.stop().await;
}
