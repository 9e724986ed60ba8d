//! A scripted control port for unit tests of the control client.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// For each step, reads one command line (checked against the expected prefix; an empty
/// prefix reads nothing) and writes the canned chunks, where a chunk `SLEEP <ms>` pauses.
pub(crate) async fn fake_tor(script: Vec<(&'static str, Vec<&'static str>)>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut r = tokio::io::BufReader::new(r);
        for (expect, chunks) in script {
            if !expect.is_empty() {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    return;
                }
                assert!(line.starts_with(expect), "got {line:?}, want {expect}");
            }
            for chunk in chunks {
                if let Some(ms) = chunk.strip_prefix("SLEEP ") {
                    tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                } else {
                    w.write_all(chunk.as_bytes()).await.unwrap();
                }
            }
        }
        // Keep the connection open until the client is done.
        let mut rest = String::new();
        let _ = r.read_line(&mut rest).await;
    });
    addr
}
