//! Shell completions and man pages, generated from the clap definitions so
//! they never disagree with `--help`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// `trailguard completions SHELL`: the script on standard output.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "trailguard",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

/// `trailguard man -o DIR`: `trailguard.1` and `trailguard-SUB[-SUB].1` for
/// every subcommand.
pub fn man(args: ManArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut command = Cli::command();
    command.build();
    let written = write_pages(&command, "trailguard", &args.output)?;
    eprintln!(
        "trailguard: wrote {written} man page(s) to {}",
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<usize> {
    let page = command.clone().name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page).render(&mut bytes)?;
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        written += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(written)
}
