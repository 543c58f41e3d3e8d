//! `shipway completions SHELL` and `shipway man`: generated from the clap definition
//! in `cli`, so they never drift from the verbs and flags.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{exit, Error};

/// The completion script for `shell`, on stdout: it registers `shipway` itself as the
/// completer, so that completions know the apps, containers and deployments (`complete`).
pub fn completions(shell: clap_complete::Shell) -> Result<i32, Error> {
    match super::complete::registration(&shell.to_string(), &mut std::io::stdout().lock()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write", "the completion script to stdout", e))
        }
        _ => Ok(exit::SUCCESS),
    }
}

/// The man page (section 1, roff), on stdout: the top command's, then one per verb
/// (`shipway-deploy`), as git's pages are named. A reader that stops early (`| head`)
/// is not an error.
pub fn man() -> Result<i32, Error> {
    match render_man(&mut std::io::stdout().lock()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write", "the man page to stdout", e))
        }
        _ => Ok(exit::SUCCESS),
    }
}

fn render_man(out: &mut impl std::io::Write) -> std::io::Result<()> {
    let command = Cli::command();
    clap_mangen::Man::new(command.clone()).render(out)?;
    for verb in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("shipway-{}", verb.get_name());
        clap_mangen::Man::new(verb.clone().name(name)).render(out)?;
    }
    Ok(())
}
