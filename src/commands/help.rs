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
    render_settings(out)?;
    render_exit_status(out)?;
    for verb in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("shipway-{}", verb.get_name());
        clap_mangen::Man::new(verb.clone().name(name)).render(out)?;
    }
    Ok(())
}

/// Text for roff: a backslash, a dash or a leading dot or quote would be read as roff.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// SETTINGS: every setting's variable and default, from the settings' own table.
fn render_settings(out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, ".SH SETTINGS")?;
    writeln!(
        out,
        "{}",
        roff(
            "Defaults are the platform's numbers. $SHIPWAY_HOME/config.toml (boot_timeout = \"5s\") \
             overrides them, and SHIPWAY_* environment variables override that \
             (SHIPWAY_BOOT_TIMEOUT=5s). A running platform keeps the settings it started with."
        )
    )?;
    let defaults = crate::settings::Settings::defaults("$XDG_STATE_HOME/shipway".into());
    for (key, value) in defaults.describe() {
        let value = if key == "home" {
            "$XDG_STATE_HOME/shipway, else ~/.local/state/shipway".to_string()
        } else if value.is_empty() {
            "(none)".to_string()
        } else {
            value
        };
        writeln!(
            out,
            ".TP\n\\fBSHIPWAY_{}\\fR\n{}",
            roff(&key.to_uppercase()),
            roff(&format!("default: {value}"))
        )?;
    }
    Ok(())
}

/// EXIT STATUS: the codes of `error::exit`, and the verbs that pass another through.
fn render_exit_status(out: &mut impl std::io::Write) -> std::io::Result<()> {
    use crate::error::exit;
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    let rows = [
        (exit::SUCCESS, "success"),
        (exit::ERROR, "an error, said on stderr"),
        (
            exit::USAGE,
            "a command line shipway cannot run, or a Scalingo verb it does not have",
        ),
        (exit::BUILD_ERROR, "deploy: build-error"),
        (exit::CRASHED_ERROR, "deploy: crashed-error"),
        (exit::TIMEOUT_ERROR, "deploy: timeout-error"),
        (exit::HOOK_ERROR, "deploy: hook-error"),
        (exit::ABORTED, "aborted (Ctrl-C)"),
    ];
    for (code, what) in rows {
        writeln!(out, ".TP\n\\fB{code}\\fR\n{}", roff(what))?;
    }
    writeln!(
        out,
        ".PP\n{}",
        roff(
            "run, bash, cron-run and the consoles exit with their command's status; \
             deployment-logs with the code of the deployment it shows."
        )
    )
}
