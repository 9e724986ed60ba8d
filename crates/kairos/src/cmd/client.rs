//! `kairos start | status | put | get`: thin clients of the daemon's local API (a Unix socket
//! in the daemon's home). The CLI holds no keys; the daemon does the work.

use crate::cli::{ClientArgs, GetArgs, PutArgs, StatusArgs};
use crate::exit::{Exit, EXIT_LOCKED, EXIT_USAGE};
use crate::pipe::outln;
use crate::{release, settings};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kairos_node::local_client::{Destination, Event, LocalClient, LocalError, PutOptions};
use kairos_proto::FileId;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub fn client(args: &ClientArgs) -> Result<LocalClient> {
    client_home(args).map(|(_, c)| c)
}

fn client_home(args: &ClientArgs) -> Result<(PathBuf, LocalClient)> {
    let home = settings::home_or_default(args.home.clone(), ".kairos")?;
    let c = LocalClient::new(home.join(kairos_node::SOCKET_FILE));
    Ok((home, c))
}

/// Copies standard input to a new 0600 file in `home/spool`, for the daemon to read.
fn spool_stdin(home: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = home.join("spool");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut spool = tempfile::Builder::new()
        .prefix("stdin-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a spool file in {}", dir.display()))?;
    std::io::copy(&mut std::io::stdin().lock(), spool.as_file_mut())
        .context("reading standard input")?;
    spool
        .as_file()
        .sync_all()
        .context("writing the spool file")?;
    Ok(spool)
}

/// A progress bar on a terminal, nothing otherwise.
fn progress(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
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
        // Past the release time, waiting for the drand beacon: the daemon's words say which.
        Some(_) if e.to_string().contains("beacon round") => {
            Exit(EXIT_LOCKED, e.to_string()).into()
        }
        Some(t) => Exit(
            EXIT_LOCKED,
            format!(
                "the file is locked until {} (time-lock); try again after that",
                release::describe(t, kairos_proto::time::now_unix())
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
    if result.directories_reached == 0 {
        let why: Vec<String> = (result.directories.iter())
            .filter_map(|d| d.last_error.as_ref().map(|e| format!("{}: {e}", d.addr)))
            .collect();
        anyhow::bail!(
            "not joined: none of the {} directories was reached ({}); the daemon keeps trying, see `kairos status`",
            result.directories.len(),
            why.join("; ")
        );
    }
    outln!(
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
        outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status);
    }
    Ok(())
}

pub async fn put(args: PutArgs) -> Result<()> {
    let now = kairos_proto::time::now_unix();
    // A release time the CLI cannot use is a usage error, like a malformed file id.
    let release = release::parse_release(&args.release_time, args.tz, now)
        .map_err(|e| Exit(EXIT_USAGE, format!("{e:#} (see `kairos put --help`)")))?;
    let (home, c) = client_home(&args.client)?;
    // Standard input is spooled to a 0600 file in the daemon's home: sealing needs the size
    // up front (it is framed into the first block). The spool is removed when this returns.
    let spool = match args.path.as_os_str() == "-" {
        true => Some(spool_stdin(&home)?),
        false => None,
    };
    let (path, name) = match &spool {
        Some(s) => (
            s.path().to_path_buf(),
            Some(args.name.clone().unwrap_or_else(|| "stdin".into())),
        ),
        None => (absolute(&args.path)?, args.name.clone()),
    };
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(meta.is_file(), "{} is not a regular file", path.display());
    let bar = progress("put");
    let options = PutOptions {
        name,
        lock: args.lock.map(Into::into),
    };
    let result = c.put_with(&path, release, options, on_event(&bar)).await;
    bar.finish_and_clear();
    drop(spool);
    let result = result?;
    let path = match args.path.as_os_str() == "-" {
        true => PathBuf::from("standard input"),
        false => path,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        eprintln!(
            "stored {} ({}) in {} blocks on {} nodes, {}; locked until {} ({})",
            shown(&path.display().to_string()),
            indicatif::HumanBytes(meta.len()),
            result.blocks,
            result.nodes,
            rate(meta.len(), result.elapsed_ms),
            release::describe(release, kairos_proto::time::now_unix()),
            describe_lock(&result.lock)
        );
        outln!("{}", result.id);
    }
    Ok(())
}

/// `drand lock, round R of quicknet` / `… of a local TEST chain` / `peer lock only`.
pub fn describe_lock(lock: &kairos_node::LockReport) -> String {
    match (lock.kind.as_str(), lock.round) {
        ("drand", Some(round)) if lock.test_chain => {
            format!("drand lock, round {round} of a local TEST chain, not drand")
        }
        ("drand", Some(round)) => format!("drand lock, quicknet round {round}"),
        _ => "peer lock only: holders keep it closed, no drand lock".into(),
    }
}

pub async fn get(args: GetArgs) -> Result<()> {
    let id: FileId = (args.file_id.parse())
        .map_err(|e| Exit(EXIT_USAGE, format!("{e} (see `kairos get --help`)")))?;
    if args.output.as_os_str() == "-" && args.json {
        return Err(Exit(
            EXIT_USAGE,
            "--json and -o - both write to standard output; choose one".into(),
        )
        .into());
    }
    let dest = if args.output.as_os_str() == "-" {
        Destination::Stream(Box::new(std::io::stdout()))
    } else {
        Destination::Path {
            path: absolute(&args.output)?,
            force: args.force,
        }
    };
    let c = client(&args.client)?;
    let bar = progress("get");
    let result = c.get_to(&id, dest, on_event(&bar)).await;
    bar.finish_and_clear();
    let result = result.map_err(locked_exit)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        for u in &result.unreachable {
            eprintln!("note: {u}");
        }
        eprintln!(
            "{} ({}) verified, BLAKE3 {}; {}",
            shown(&result.name),
            indicatif::HumanBytes(result.size),
            result.blake3,
            rate(result.size, result.elapsed_ms)
        );
        if args.output.as_os_str() != "-" {
            outln!("{}", result.path.display());
        }
    }
    Ok(())
}

/// A name for a terminal: control characters (escape sequences, newlines) escaped, so a name
/// sealed by someone else cannot rewrite the screen.
pub fn shown(name: &str) -> String {
    name.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// `in 2.3 s (12.5 MiB/s)`.
fn rate(bytes: u64, ms: u64) -> String {
    let secs = (ms.max(1)) as f64 / 1000.0;
    format!(
        "in {secs:.1} s ({}/s)",
        indicatif::HumanBytes((bytes as f64 / secs) as u64)
    )
}

fn print_status(s: &kairos_node::Status) {
    let when = |t: Option<u64>| t.map_or("never".to_owned(), |t| release::describe(t, s.now));
    outln!("node key:     {}", s.key);
    outln!("address:      {}  (listening on {})", s.advertise, s.listen);
    outln!("transport:    {}", s.transport);
    outln!(
        "joined:       {}",
        if s.joined {
            "yes"
        } else {
            "no (run `kairos start`)"
        }
    );
    for d in &s.directories {
        match &d.last_error {
            Some(e) => outln!(
                "directory:    {}  last ok {}, last error ({}): {e}",
                d.addr,
                when(d.last_success),
                when(d.last_error_at)
            ),
            None => outln!("directory:    {}  last ok {}", d.addr, when(d.last_success)),
        }
    }
    outln!("peers known:  {}", s.peers_known);
    outln!("pieces held:  {}", s.pieces_held);
    outln!(
        "storage:      {} of {} used",
        indicatif::HumanBytes(s.bytes_used),
        indicatif::HumanBytes(s.quota)
    );
    outln!("clock:        {}", kairos_proto::time::rfc3339(s.now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_without_terminal_control() {
        assert_eq!(shown("\u{1b}[31mRED\n"), "\\u{1b}[31mRED\\n");
        assert_eq!(shown("plain é.txt"), "plain é.txt");
        assert_eq!(rate(10 << 20, 2000), "in 2.0 s (5.00 MiB/s)");
    }
}
