//! `kairos`: one binary for the node daemon, the directory server and the CLI.
//!
//! This crate is the thin edge: argument parsing, settings, Tor wiring, progress output and
//! exit codes. The work happens in the libraries (`kairos-seal`, `kairos-proto`,
//! `kairos-directory`, `kairos-node`, `kairos-tor`, `kairos-net`).

mod allocator;
mod cli;
mod cmd;
mod devnet;
mod exit;
mod pipe;
mod release;
mod role;
mod serve;
mod settings;
mod startup;
mod tor;
mod units;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::return_large_buffers_when_freed();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: never escape codes in a redirected log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let json = match &cli.command {
        Command::Status(a) => a.json,
        Command::Put(a) => a.json,
        Command::Get(a) => a.json,
        Command::Info(a) => a.json,
        Command::Ls(a) => a.json,
        Command::Check(a) | Command::Repair(a) | Command::Revoke(a) => a.json,
        _ => false,
    };
    let result = match cli.command {
        Command::Selftest(a) => cmd::selftest::run(a.size_mib),
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::man::run(a),
        other => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run_async(other))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e, json),
    }
}

async fn run_async(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Directory(a) => cmd::directory::run(a).await,
        Command::Daemon(a) => cmd::daemon::run(a).await,
        Command::Start(a) => cmd::client::start(a).await,
        Command::Status(a) => cmd::client::status(a).await,
        Command::Put(a) => cmd::client::put(a).await,
        Command::Get(a) => cmd::client::get(a).await,
        Command::Info(a) => cmd::files::info(a).await,
        Command::Ls(a) => cmd::files::ls(a).await,
        Command::Check(a) => cmd::files::check(a).await,
        Command::Repair(a) => cmd::files::repair(a).await,
        Command::Revoke(a) => cmd::files::revoke(a).await,
        Command::Devnet(a) => cmd::devnet::run(a).await,
        Command::Demo(a) => cmd::demo::run(a).await,
        Command::Selftest(_) | Command::Completions(_) | Command::Man(_) => {
            unreachable!("handled without a runtime")
        }
    }
}
