//! `kairos man`: the man page in roff, generated from the clap definition that parses the
//! arguments. Without `--out` it prints `kairos.1` (the commands listed, each with its summary);
//! with `--out DIR` it writes `kairos.1` and one page per command (`kairos-put.1`, ...) and
//! names each file it wrote (checked to be there).

use crate::cli::{Cli, ManArgs};
use anyhow::{Context, Result};
use clap::CommandFactory;

pub fn run(args: ManArgs) -> Result<()> {
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .context("rendering the man page")?;
        return crate::pipe::print(&page);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    // The pages generate_to writes: the root's, then one per command (there is no deeper
    // level).
    let cmd = Cli::command();
    let commands = cmd
        .get_subcommands()
        .map(|c| format!("kairos-{}.1", c.get_name()));
    for name in std::iter::once("kairos.1".to_owned()).chain(commands) {
        let page = dir.join(name);
        anyhow::ensure!(page.is_file(), "{} was not written", page.display());
        println!("{}", page.display());
    }
    Ok(())
}
