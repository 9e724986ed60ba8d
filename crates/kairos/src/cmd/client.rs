//! `kairos start | status | put | get`: thin clients of the daemon's local API (a Unix socket
//! in the daemon's home). The CLI holds no keys; the daemon does the work.

use crate::cli::{ClientArgs, GetArgs, PutArgs, StatusArgs};
use crate::exit::{Exit, EXIT_LOCKED};
use crate::{release, settings};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kairos_node::local_client::{Event, LocalClient, LocalError};
use kairos_proto::FileId;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

fn client(args: &ClientArgs) -> Result<LocalClient> {
    let home = settings::home_or_default(args.home.clone(), ".kairos")?;
    Ok(LocalClient::new(home.join(kairos_node::SOCKET_FILE)))
}

/// A progress bar on a terminal, nothing otherwise.
fn progress(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label);
    bar
}

/// Progress to the bar; warnings and bad pieces to stderr as they happen.
fn on_event(bar: &ProgressBar) -> impl FnMut(&Event) + '_ {
    move |ev| match ev {
        Event::Progress { done, total } => {
            bar.set_length(*total);
            bar.set_position(*done);
        }
        Event::Info { message } => bar.set_message(message.clone()),
        Event::Warning { message } => bar.suspend(|| eprintln!("warning: {message}")),
        Event::BadPiece(b) => bar.suspend(|| {
            eprintln!(
                "warning: peer {} ({}) served a bad piece (block {}, shard {}): {}",
                b.peer, b.addr, b.block, b.shard, b.reason
            )
        }),
        _ => {}
    }
}

/// Maps the daemon's "locked" answer to exit code 3 with the release time in the message.
fn locked_exit(e: LocalError) -> anyhow::Error {
    match e.locked_until() {
        Some(t) => Exit(
            EXIT_LOCKED,
            format!(
                "the file is locked until {} (time-lock); try again after that",
                kairos_proto::time::rfc3339(t)
            ),
        )
        .into(),
        None => e.into(),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

pub async fn start(args: ClientArgs) -> Result<()> {
    let c = client(&args)?;
    let result = c.start().await?;
    println!(
        "joined the network: {} of {} directories reached",
        result.directories_reached,
        result.directories.len()
    );
    Ok(())
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let c = client(&args.client)?;
    let status = c.status().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status);
    }
    Ok(())
}

pub async fn put(args: PutArgs) -> Result<()> {
    let path = absolute(&args.path)?;
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(meta.is_file(), "{} is not a regular file", path.display());
    let release = release::parse_release(&args.release_time, kairos_proto::time::now_unix())?;
    let c = client(&args.client)?;
    let bar = progress("put");
    let result = c.put(&path, release, on_event(&bar)).await;
    bar.finish_and_clear();
    let result = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        eprintln!(
            "stored {} ({} bytes) in {} blocks on {} nodes; locked until {}",
            path.display(),
            meta.len(),
            result.blocks,
            result.nodes,
            kairos_proto::time::rfc3339(release)
        );
        println!("{}", result.id);
    }
    Ok(())
}

pub async fn get(args: GetArgs) -> Result<()> {
    let id: FileId = args.file_id.parse()?;
    let output = absolute(&args.output)?;
    let c = client(&args.client)?;
    let bar = progress("get");
    let result = c.get(&id, &output, on_event(&bar)).await;
    bar.finish_and_clear();
    let result = result.map_err(locked_exit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        for u in &result.unreachable {
            eprintln!("note: {u}");
        }
        eprintln!(
            "{} ({} bytes) verified, BLAKE3 {}",
            result.name, result.size, result.blake3
        );
        println!("{}", result.path.display());
    }
    Ok(())
}

fn print_status(s: &kairos_node::Status) {
    let when = |t: Option<u64>| t.map_or("never".to_owned(), kairos_proto::time::rfc3339);
    println!("node key:     {}", s.key);
    println!("address:      {}  (listening on {})", s.advertise, s.listen);
    println!("transport:    {}", s.transport);
    println!(
        "joined:       {}",
        if s.joined {
            "yes"
        } else {
            "no (run `kairos start`)"
        }
    );
    for d in &s.directories {
        match &d.last_error {
            Some(e) => println!(
                "directory:    {}  last ok {}, last error: {e}",
                d.addr,
                when(d.last_success)
            ),
            None => println!("directory:    {}  last ok {}", d.addr, when(d.last_success)),
        }
    }
    println!("peers known:  {}", s.peers_known);
    println!("pieces held:  {}", s.pieces_held);
    println!("storage:      {} of {} bytes used", s.bytes_used, s.quota);
    println!("clock:        {}", kairos_proto::time::rfc3339(s.now));
}
