//! Completions that know the state: app names for `-a`, process types and containers
//! for `scale`, `restart` and `logs --filter`, deployment IDs, addon IDs and config var
//! names. clap_complete's dynamic engine (`CompleteEnv`) asks these functions when the
//! shell calls `COMPLETE=bash shipway -- WORDS...`, so bash, zsh and fish share them.
//! They read the home's files, and ask a running platform for its containers with a
//! short deadline; they never start one, and print nothing of their own: a completion
//! that cannot know offers nothing.

use std::ffi::OsString;
use std::time::Duration;

use clap_complete::CompletionCandidate;

use crate::settings::Settings;
use crate::state::{AppDir, Home};

/// How long a completion waits for the platform's list of containers: a hung
/// platform must not hang the user's shell.
const PLATFORM_DEADLINE: Duration = Duration::from_millis(500);

/// The environment variable the registration scripts set (`COMPLETE=bash shipway`).
pub const VAR: &str = "COMPLETE";

/// When the shell asks for completions (`COMPLETE` is set), answer and exit; else
/// return, and the command line is parsed as usual.
pub fn answer_the_shell() {
    clap_complete::CompleteEnv::with_factory(super::command)
        .var(VAR)
        .complete();
}

/// The registration script of `shell`, which `shipway completions SHELL` prints: it
/// calls `shipway` back with `COMPLETE` set at each TAB.
pub fn registration(shell: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let shells = clap_complete::env::Shells::builtins();
    match shells.completer(shell) {
        Some(completer) => completer.write_registration(VAR, "shipway", "shipway", "shipway", out),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no completion for {shell}: bash, zsh, fish, elvish or powershell"),
        )),
    }
}

fn home() -> Option<Home> {
    let settings = Settings::load().ok()?;
    Home::open(&settings.home).ok()
}

/// `-a APP`/`--app APP`/`--app=APP` and `-r`/`--remote` of the line being completed:
/// the engine gives candidate functions no arguments, but the words are this process's.
fn flag_on_line(short: &str, long: &str) -> Option<String> {
    let words: Vec<String> = std::env::args_os()
        .skip_while(|a| a != "--")
        .map(|a: OsString| a.to_string_lossy().into_owned())
        .collect();
    let mut value = None;
    for (i, w) in words.iter().enumerate() {
        if w == short || w == long {
            value = words.get(i + 1).cloned().filter(|v| !v.is_empty());
        } else if let Some(v) = w.strip_prefix(&format!("{long}=")) {
            value = Some(v.to_string());
        }
    }
    value
}

/// The app the line names, as the verb would choose it (flag, SHIPWAY_APP, remote, folder).
fn app() -> Option<(Home, AppDir)> {
    let home = home()?;
    let choice = super::AppChoice::new(flag_on_line("-a", "--app"), flag_on_line("-r", "--remote"));
    let app = choice.existing(&home).ok()?;
    Some((home, app))
}

fn candidates(values: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let mut values: Vec<String> = values.into_iter().collect();
    values.sort();
    values.dedup();
    values.into_iter().map(CompletionCandidate::new).collect()
}

pub fn apps() -> Vec<CompletionCandidate> {
    candidates(home().map(|h| h.apps()).unwrap_or_default())
}

/// The process types of the app's current release.
fn process_types(app: &AppDir) -> Vec<String> {
    app.current()
        .and_then(|n| crate::release::Release::load(&app.release(n)).ok())
        .map(|r| r.process_types.into_keys().collect())
        .unwrap_or_default()
}

/// The app's containers as a running platform lists them, within the deadline.
fn containers(home: &Home, app: &AppDir) -> Vec<String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (home, name) = (home.clone(), app.name.clone());
    // The thread is left behind if the platform does not answer: the process ends.
    std::thread::spawn(move || {
        let rows = super::ps::containers(&home, &name)
            .ok()
            .flatten()
            .unwrap_or_default();
        let _ = tx.send(rows.into_iter().map(|r| r.name).collect::<Vec<String>>());
    });
    rx.recv_timeout(PLATFORM_DEADLINE).unwrap_or_default()
}

/// `scale`: `TYPE:` for each process type of the current release.
pub fn scale() -> Vec<CompletionCandidate> {
    let Some((_, app)) = app() else { return Vec::new() };
    candidates(process_types(&app).into_iter().map(|t| format!("{t}:")))
}

/// `restart`: the process types and the running containers.
pub fn restart() -> Vec<CompletionCandidate> {
    let Some((home, app)) = app() else {
        return Vec::new();
    };
    candidates(process_types(&app).into_iter().chain(containers(&home, &app)))
}

/// `one-off-stop`: the running one-offs.
pub fn one_offs() -> Vec<CompletionCandidate> {
    let Some((home, app)) = app() else {
        return Vec::new();
    };
    let prefix = format!("{}-", crate::container::ONE_OFF);
    candidates(
        containers(&home, &app)
            .into_iter()
            .filter(|c| c.starts_with(&prefix)),
    )
}

/// `logs --filter`: the process types, the containers, and `platform`.
pub fn logs_filter() -> Vec<CompletionCandidate> {
    let Some((home, app)) = app() else {
        return Vec::new();
    };
    candidates(
        process_types(&app)
            .into_iter()
            .chain(containers(&home, &app))
            .chain(["platform".to_string()]),
    )
}

/// `deployment-logs`, `rollback`: the app's deployment IDs.
pub fn deployments() -> Vec<CompletionCandidate> {
    let Some((_, app)) = app() else { return Vec::new() };
    candidates(
        crate::deployment::Deployment::list(&app)
            .into_iter()
            .map(|d| d.id),
    )
}

/// `addons-remove`, `addons-info`: the app's addon IDs and kinds.
pub fn addons() -> Vec<CompletionCandidate> {
    let Some((_, app)) = app() else { return Vec::new() };
    let addons = crate::addon::list(&app).unwrap_or_default();
    candidates(
        addons
            .iter()
            .map(|a| a.id.clone())
            .chain(addons.iter().map(|a| a.kind.name().to_string())),
    )
}

/// `env-get`, `env-unset`: the app's config var names.
pub fn config_vars() -> Vec<CompletionCandidate> {
    let Some((_, app)) = app() else { return Vec::new() };
    candidates(
        app.load_config()
            .map(|c| c.config_vars.into_keys().collect::<Vec<_>>())
            .unwrap_or_default(),
    )
}
