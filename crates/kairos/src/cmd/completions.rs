//! `kairos completions SHELL`: the shell completion script, generated from the same clap
//! definition that parses the arguments (so it cannot fall out of date), on stdout.

use crate::cli::{Cli, CompletionsArgs};
use clap::CommandFactory;

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut cmd,
        "kairos",
        &mut std::io::stdout().lock(),
    );
    Ok(())
}
