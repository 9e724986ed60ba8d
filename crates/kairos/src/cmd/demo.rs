//! `kairos demo`: the whole story on a throw-away network, narrated.
//!
//! 1. start a directory, 6 daemons (k = 4, m = 2) and a local drand test chain;
//! 2. put a random file with a release time a few seconds ahead, sealed with the drand lock
//!    (its key is timelock-encrypted to the test chain's round of the release time);
//! 3. get it before the release: refused as locked, and no output file appears;
//! 4. wait for the release (and the round's beacon); get it: byte-for-byte identical;
//! 5. stop two of the nodes (m of them) and get it once more.

use crate::cli::DemoArgs;
use crate::devnet::Devnet;
use anyhow::{bail, ensure, Context, Result};
use kairos_node::local_client::LocalClient;
use kairos_proto::FileId;
use rand::RngCore;
use std::path::{Path, PathBuf};
use std::time::Duration;

const NODES: usize = 6;

pub async fn run(args: DemoArgs) -> Result<()> {
    let tmp;
    let home = match &args.keep {
        Some(dir) => dir.clone(),
        None => {
            tmp = tempfile::Builder::new().prefix("kairos-demo-").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    say(&format!(
        "starting a local network: 1 directory + {NODES} nodes{} in {}",
        if args.tor {
            " as onion services on a private Tor network"
        } else {
            " on loopback (direct transport, not anonymous)"
        },
        home.display()
    ));
    let mut net = Devnet::start(&home, NODES, args.tor, &[]).await?;
    let result = story(&mut net, &home, &args).await;
    say("stopping the network");
    net.shutdown().await;
    match &result {
        Ok(()) => say("demo finished: OK"),
        Err(e) => eprintln!("demo FAILED: {e:#}"),
    }
    result
}

fn say(msg: &str) {
    println!("== {msg}");
}

/// The uploaded sample and the node that downloads it (the last one; node-0 uploaded it).
struct Ends {
    downloader: LocalClient,
    /// The sample's bytes and its file id.
    data: Vec<u8>,
    id: FileId,
    release: u64,
    /// The drand round of the lock, if the file has one.
    round: Option<u64>,
    out_dir: PathBuf,
}

async fn story(net: &mut Devnet, home: &Path, args: &DemoArgs) -> Result<()> {
    let ends = put_sample(net, home, args).await?;
    get_before_release(&ends).await?;
    get_after_release(&ends).await?;
    say("stopping node-1 and node-2 (m = 2 of the 6 piece holders of every block)");
    for i in [1, 2] {
        net.nodes[i].stop(Duration::from_secs(10)).await;
    }
    let again = ends.out_dir.join("report-again.bin");
    let got = ends
        .downloader
        .get(&ends.id, &again, |_| {})
        .await
        .context("get with two nodes down")?;
    ensure!(
        std::fs::read(&got.path)? == ends.data,
        "bytes differ after losing two nodes"
    );
    say("downloaded again with two nodes down: identical");
    Ok(())
}

/// Step 2: node-0 uploads a random sample with a release time `--delay` seconds ahead.
async fn put_sample(net: &Devnet, home: &Path, args: &DemoArgs) -> Result<Ends> {
    let uploader = LocalClient::new(net.nodes[0].home.join(kairos_node::SOCKET_FILE));
    let downloader = LocalClient::new(net.nodes[NODES - 1].home.join(kairos_node::SOCKET_FILE));
    let input = home.join("secret-report.bin");
    let mut data = vec![0u8; args.size_kib * 1024];
    rand::thread_rng().fill_bytes(&mut data);
    std::fs::write(&input, &data)?;
    let delay = args.delay.unwrap_or(if args.tor { 30 } else { 8 });
    let release = kairos_proto::time::now_unix() + delay;
    say(&format!(
        "node-0: kairos put {} --release-time {}  ({} KiB)",
        input.display(),
        kairos_proto::time::rfc3339(release),
        args.size_kib
    ));
    let put = uploader.put(&input, release, |_| {}).await.context("put")?;
    say(&format!(
        "file id: {}  ({} blocks on {} nodes)",
        put.id, put.blocks, put.nodes
    ));
    say(&format!(
        "sealed with the {}: until that round is signed, not even every holder together can open it",
        crate::cmd::client::describe_lock(&put.lock)
    ));
    let round = put.lock.round;
    let out_dir = home.join("downloads");
    std::fs::create_dir_all(&out_dir)?;
    Ok(Ends {
        downloader,
        data,
        id: put.id,
        release,
        round,
        out_dir,
    })
}

/// Step 3: a get before the release is refused as locked and writes nothing.
async fn get_before_release(ends: &Ends) -> Result<()> {
    let output = ends.out_dir.join("report.bin");
    say(&format!(
        "node-{}: kairos get {} --output {}  (before the release)",
        NODES - 1,
        ends.id,
        output.display()
    ));
    match ends.downloader.get(&ends.id, &output, |_| {}).await {
        Ok(_) => bail!("the file was served before its release time"),
        Err(e) => match e.locked_until() {
            Some(t) => say(&format!(
                "refused as expected: locked until {}",
                kairos_proto::time::rfc3339(t)
            )),
            None => return Err(e).context("get before release failed, but not with 'locked'"),
        },
    }
    ensure!(!output.exists(), "a refused get left an output file behind");
    say("no output file was written");
    Ok(())
}

/// Step 4: after the release the download is byte-for-byte the sample.
async fn get_after_release(ends: &Ends) -> Result<()> {
    let now = kairos_proto::time::now_unix();
    if ends.release >= now {
        say(&format!(
            "waiting {} s for the release time ...",
            ends.release - now + 1
        ));
        tokio::time::sleep(Duration::from_secs(ends.release - now + 1)).await;
    }
    let output = ends.out_dir.join("report.bin");
    say(&format!(
        "node-{}: kairos get {} --output {}  (after the release)",
        NODES - 1,
        ends.id,
        output.display()
    ));
    let got = ends
        .downloader
        .get(&ends.id, &output, |_| {})
        .await
        .context("get after release")?;
    let back = std::fs::read(&got.path)?;
    ensure!(
        back == ends.data,
        "downloaded bytes differ from the original"
    );
    if let Some(round) = ends.round {
        say(&format!(
            "the test chain published round {round}; its beacon, relayed by the directory, opened the lock"
        ));
    }
    say(&format!(
        "downloaded {} bytes: identical to the original",
        back.len()
    ));
    Ok(())
}
