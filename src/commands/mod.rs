//! One file per verb (a family such as `env`, `env-get`, `env-set` shares one): turn
//! validated arguments into calls on the pipeline's modules and say what happened
//! through `ui::Output` for steps and `tables` for listings, and the final
//! error line below.

mod absent;
mod addons;
mod app_choice;
mod apps;
mod archive;
mod build;
mod buildpacks;
pub mod complete;
mod create;
mod cron;
mod dashboard;
mod deployments;
mod destroy;
mod env;
mod follow;
mod git;
mod help;
mod info;
mod logs;
mod ps;
mod rename;
mod restart;
mod rollback;
mod router_logs;
mod run;
mod scale;
mod stacks;
mod stacks_set;
mod stats;
mod tables;
mod timeline;

use std::path::{Path, PathBuf};

pub use app_choice::AppChoice;

use crate::cli::{Cli, Command, EnvArgs};
use crate::config_vars::{self, ConfigVars};
use crate::error::{exit, Error};
use crate::pipeline::Input;
use crate::platform::protocol::{DeployArgs, Request};
use crate::platform::{client, server, watchdog};
use crate::settings::{Settings, SettingsError};
use crate::state::{self, Home};

/// The command line from `args` (without the program's name), then the verb's work;
/// the exit status. A Scalingo verb shipway does not have gets its one-line answer
/// and exit status 2, as clap gives a usage error.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let matches =
        command().get_matches_from(std::iter::once(std::ffi::OsString::from("shipway")).chain(args));
    if let Some(verb) = matches.subcommand_name() {
        if let Some(answer) = absent::answer(verb) {
            eprintln!(" !     shipway has no `{verb}`: {answer}");
            return exit::USAGE;
        }
    }
    match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => run(cli),
        Err(e) => e.exit(),
    }
}

/// The whole command line: shipway's verbs, and the Scalingo verbs it answers with a
/// reason (hidden: neither help nor completion offers them).
pub fn command() -> clap::Command {
    absent::names().fold(<Cli as clap::CommandFactory>::command(), |top, name| {
        top.subcommand(
            clap::Command::new(name).hide(true).disable_help_flag(true).arg(
                clap::Arg::new("args")
                    .num_args(0..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true),
            ),
        )
    })
}

pub fn run(cli: Cli) -> i32 {
    let result = dispatch(cli);
    match result {
        Ok(code) => code,
        Err(e) => {
            // An error may quote what an app holds (a Procfile line, a build's last lines).
            let reader = crate::ui::Reader::stderr();
            for (i, line) in e.to_string().lines().enumerate() {
                let line = crate::ui::neutralise(line, reader);
                if i == 0 {
                    eprintln!(" !     {line}");
                } else {
                    eprintln!("       {line}");
                }
            }
            e.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, Error> {
    // Neither needs settings nor a home: they work on a machine shipway never ran on.
    match cli.command {
        Command::Completions { shell } => return help::completions(shell),
        Command::Man => return help::man(),
        _ => {}
    }
    let settings = match Settings::load() {
        // `down` stops what this user started whatever became of the home's permissions:
        // it says what it found and reads no setting from the home.
        Err(SettingsError::Home(problem)) if matches!(cli.command, Command::Down) => {
            crate::ui::Output::stdout().error(&format!("warning: {problem}"));
            Settings::load_without_config_file()?
        }
        loaded => loaded?,
    };
    let choice = AppChoice::new(cli.app, cli.remote);
    match cli.command {
        Command::Detect {
            dir,
            buildpacks,
            env,
            json,
        } => build::detect(&settings, dir, buildpacks, choice.given()?, &env, json),
        Command::Build {
            source,
            git_ref,
            buildpacks,
            out,
            env,
        } => build::build(&settings, source, &choice, git_ref, buildpacks, out, &env),
        Command::Deploy {
            source,
            git_ref,
            port,
            env,
        } => {
            let input = source_path(source)?;
            let name = choice.for_source(&input)?.name;
            let env = env_args(&env)?;
            let input =
                std::path::absolute(&input).map_err(|source| Error::io("resolve", input.clone(), source))?;
            let request = Request::Deploy {
                app: name,
                args: DeployArgs {
                    input: Input { path: input, git_ref },
                    port: port.or(settings.port),
                    env,
                    source: None,
                },
            };
            let home = home(&settings)?;
            warn_stale_settings(&home, &settings)?;
            client::stream(&home, request)
        }
        Command::GitSetup { force } => git::setup(&settings, &choice, force),
        Command::GitShow => git::show(&settings, &choice),
        Command::GitReceive => git::receive(&settings, &choice),
        Command::Archive {
            source,
            git_ref,
            output,
        } => archive::write(source, &choice, git_ref, output),
        Command::Up { detach: true } => client::up_detached(&home(&settings)?),
        Command::Up { detach: false } => server::run(settings, true),
        Command::Platform => server::run(settings, false),
        Command::Down => {
            let (home, problems) = Home::for_stop(&settings.home);
            client::down(&home, &problems)
        }
        Command::Watchdog => Ok(watchdog::run()),
        Command::Create { app } => create::run(&settings, app),
        Command::Destroy { name, force } => destroy::run(&settings, &choice, name, force),
        Command::Rename { new_name } => rename::run(&settings, &choice, &new_name),
        Command::Apps { json } => apps::run(&settings, json),
        Command::AppsInfo { json } => info::apps_info(&settings, &choice, json),
        Command::Open => info::open(&settings, &choice),
        Command::Dashboard => dashboard::run(&settings, &choice),
        Command::Ps { json } => ps::run(&settings, &choice, json),
        Command::Stats { stream, json } => stats::run(&settings, &choice, stream, json),
        Command::Logs {
            lines,
            follow,
            filter,
            raw,
        } => logs::run(
            &settings,
            &choice,
            logs::Options {
                lines,
                follow,
                filter,
                raw,
            },
        ),
        Command::Scale { counts } => scale::run(&settings, &choice, counts),
        Command::Restart { target } => restart::run(&settings, &choice, target),
        Command::OneOffStop { container } => restart::one_off_stop(&settings, &choice, &container),
        Command::SendSignal { signal, containers } => {
            restart::send_signal(&settings, &choice, &signal, containers)
        }
        Command::Env { json } => env::list(&settings, &choice, json),
        Command::EnvGet { name } => env::get(&settings, &choice, name),
        Command::EnvSet { pairs, file } => env::set(&settings, &choice, pairs, file),
        Command::EnvUnset { names } => env::unset(&settings, &choice, names),
        Command::Deployments { json } => deployments::list(&settings, &choice, json),
        Command::Timeline { json } => timeline::run(&settings, &choice, json),
        Command::DeploymentLogs { id } => deployments::logs(&settings, &choice, id),
        Command::DeploymentFollow => deployments::follow(&settings, &choice),
        Command::DeploymentDeleteCache => deployments::delete_cache(&settings, &choice),
        Command::Buildpacks { clear, json } => buildpacks::run(&settings, clear, json),
        Command::Stacks { json, prune } => stacks::list(&settings, json, prune),
        Command::StacksPull { stack } => stacks::pull(&settings, &stack),
        Command::StacksImport { stack, file } => stacks::import(&settings, &stack, &file),
        Command::StacksSet { stack } => stacks_set::run(&settings, &choice, &stack),
        Command::RouterLogs { enable, disable } => {
            let wanted = if enable {
                Some(true)
            } else {
                disable.then_some(false)
            };
            router_logs::run(&settings, &choice, wanted)
        }
        Command::Rollback { id } => rollback::run(&settings, &choice, id),
        Command::Run {
            env,
            detached,
            size,
            command,
        } => run::run(
            &settings,
            &choice,
            run::Options {
                env,
                detached,
                size,
                command,
            },
        ),
        Command::Bash { env, size, args } => run::run(
            &settings,
            &choice,
            run::Options {
                env,
                detached: false,
                size,
                command: std::iter::once("bash".to_string()).chain(args).collect(),
            },
        ),
        Command::CronTasks { json } => cron::tasks(&settings, &choice, json),
        Command::CronRun { job } => cron::run(&settings, &choice, job),
        Command::AddonsAdd { addon, plan } => addons::add(&settings, &choice, addon, plan),
        Command::Addons { json } => addons::list(&settings, &choice, json),
        Command::AddonsRemove { id } => addons::remove(&settings, &choice, id),
        Command::AddonsInfo { id, json } => info::addons_info(&settings, &choice, id, json),
        Command::PgsqlConsole => addons::console(&settings, &choice, crate::addon::Kind::Postgresql),
        Command::RedisConsole => addons::console(&settings, &choice, crate::addon::Kind::Redis),
        Command::MysqlConsole => addons::console(&settings, &choice, crate::addon::Kind::Mysql),
        Command::Completions { .. } | Command::Man => Ok(exit::SUCCESS),
    }
}

/// A running platform keeps the settings it started with: say which of this command's
/// environment it ignores, since they will not apply. The per-command ones (the router
/// port) are this command's own and apply: they are not compared.
fn warn_stale_settings(home: &Home, settings: &Settings) -> Result<(), Error> {
    let Some(crate::platform::protocol::Event::Info {
        settings: running, ..
    }) = client::ask(home, &Request::Status)?
    else {
        return Ok(());
    };
    let ignored: Vec<String> = settings
        .describe()
        .into_iter()
        .filter(|(key, _)| !Settings::per_command(key))
        .filter_map(|(key, value)| {
            let (_, now) = running.iter().find(|(k, _)| *k == key)?;
            (*now != value).then(|| format!("{key} = {now} (not {value})"))
        })
        .collect();
    if !ignored.is_empty() {
        eprintln!(
            " !     the running platform keeps the settings it started with, {}: it reads them when it starts (`shipway down` first to apply this environment's). This deploy's port setting applies.",
            ignored.join(", ")
        );
    }
    Ok(())
}

/// The source argument, `.` by default, which must exist.
fn source_path(source: Option<PathBuf>) -> Result<PathBuf, Error> {
    let path = source.unwrap_or_else(|| PathBuf::from("."));
    crate::source::check_input(&path).map_err(|e| Error::Usage(e.to_string()))
}

/// Config vars given with --env and --env-file (validated).
fn env_args(env: &EnvArgs) -> Result<ConfigVars, Error> {
    read_vars(env.env_file.as_deref(), &env.env)
}

/// Config vars from a `.env` file and `NAME=value` pairs (the pairs win), all
/// validated before any is used.
fn read_vars(file: Option<&Path>, pairs: &[String]) -> Result<ConfigVars, Error> {
    let mut vars = ConfigVars::new();
    if let Some(file) = file {
        let text =
            std::fs::read_to_string(file).map_err(|source| Error::io("read", file.to_path_buf(), source))?;
        vars.extend(config_vars::parse_env_file(&file.display().to_string(), &text)?);
    }
    for pair in pairs {
        let (k, v) = config_vars::parse_pair(pair)?;
        vars.insert(k, v);
    }
    Ok(vars)
}

/// The app the command line, SHIPWAY_APP, the git remote or the current folder names,
/// which must exist.
fn existing_app(settings: &Settings, choice: &AppChoice) -> Result<(Home, state::AppDir), Error> {
    let home = home(settings)?;
    let app = choice.existing(&home)?;
    Ok((home, app))
}

fn home(settings: &Settings) -> Result<Home, Error> {
    Ok(Home::open(&settings.home)?)
}

/// Asks `question` (shown on a terminal only: a pipe has nobody to read it) and returns the
/// one line answered on standard input, without its line end: how `destroy` and `rename`
/// have the app's name typed, as the Scalingo CLI does.
fn typed_answer(question: &str) -> Result<String, Error> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        print!("{question}");
        let _ = std::io::stdout().flush();
    }
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| Error::io("read the confirmation from", "standard input", source))?;
    Ok(answer.trim_end_matches(['\n', '\r']).to_string())
}
