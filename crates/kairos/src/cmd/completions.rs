//! `kairos completions SHELL`: the shell completion script, generated from the same clap
//! definition that parses the arguments (so it cannot fall out of date), on stdout.

use crate::cli::{Cli, CompletionsArgs};
use clap::CommandFactory;

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    // Generated into memory first: clap_complete panics on a failed write (e.g. `| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "kairos", &mut script);
    crate::pipe::print(&script)
}
