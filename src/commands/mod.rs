//! One file per verb (a family such as `env`, `env-get`, `env-set` shares one): turn
//! validated arguments into calls on the pipeline's modules and say what happened
//! through `ui` (`ui::Output` for steps, `ui::tables` for listings), and the final
//! error line below.

mod addons;
mod apps;
mod archive;
mod build;
mod buildpacks;
mod create;
mod cron;
mod deployments;
mod destroy;
mod env;
mod git;
mod logs;
mod ps;
mod restart;
mod rollback;
mod run;
mod scale;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, EnvArgs};
use crate::config_vars::{self, ConfigVars};
use crate::error::Error;
use crate::platform::protocol::Request;
use crate::platform::{client, server, watchdog};
use crate::settings::Settings;
use crate::state::{self, Home};

pub fn run(cli: Cli) -> i32 {
    let result = dispatch(cli);
    match result {
        Ok(code) => code,
        Err(e) => {
            for (i, line) in e.to_string().lines().enumerate() {
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
    let settings = Settings::load()?;
    match cli.command {
        Command::Detect {
            dir,
            buildpacks,
            app,
            env,
            json,
        } => build::detect(&settings, dir, buildpacks, app, &env, json),
        Command::Build {
            source,
            app,
            git_ref,
            buildpacks,
            out,
            env,
        } => build::build(&settings, source, app, git_ref, buildpacks, out, &env),
        Command::Deploy {
            source,
            app,
            git_ref,
            port,
            env,
        } => {
            let input = source_path(source)?;
            let name = app_name(app, &input)?;
            let env = env_args(&env)?;
            let input = std::path::absolute(&input).map_err(|source| Error::Io {
                action: "resolve",
                path: input.clone(),
                source,
            })?;
            let request = Request::Deploy {
                app: name,
                input,
                git_ref,
                port: port.or(settings.port),
                env,
                source: None,
            };
            let home = home(&settings)?;
            warn_stale_settings(&home, &settings)?;
            client::stream(&home, request)
        }
        Command::GitSetup { app, remote, force } => git::setup(&settings, app, &remote, force),
        Command::GitShow { app, remote } => git::show(&settings, app, &remote),
        Command::GitReceive { app, remote } => git::receive(&settings, &app, &remote),
        Command::Archive {
            source,
            app,
            git_ref,
            output,
        } => archive::write(source, app, git_ref, output),
        Command::Up { detach: true } => client::up_detached(&home(&settings)?),
        Command::Up { detach: false } => server::run(settings, true),
        Command::Platform => server::run(settings, false),
        Command::Down => client::down(&home(&settings)?),
        Command::Watchdog => Ok(watchdog::run()),
        Command::Create { app } => create::run(&settings, app),
        Command::Destroy { app, force } => destroy::run(&settings, app, force),
        Command::Apps { json } => apps::run(&settings, json),
        Command::Ps { app, json } => ps::run(&settings, app, json),
        Command::Logs {
            app,
            lines,
            follow,
            filter,
        } => logs::run(&settings, app, lines, follow, filter),
        Command::Scale { app, counts } => scale::run(&settings, app, counts),
        Command::Restart { app, target } => restart::run(&settings, app, target),
        Command::Env { app, json } => env::list(&settings, app, json),
        Command::EnvGet { app, name } => env::get(&settings, app, name),
        Command::EnvSet { app, pairs, file } => env::set(&settings, app, pairs, file),
        Command::EnvUnset { app, names } => env::unset(&settings, app, names),
        Command::Deployments { app, json } => deployments::list(&settings, app, json),
        Command::DeploymentLogs { app, id } => deployments::logs(&settings, app, id),
        Command::DeploymentDeleteCache { app } => deployments::delete_cache(&settings, app),
        Command::Buildpacks { clear, json } => buildpacks::run(&settings, clear, json),
        Command::Rollback { app, id } => rollback::run(&settings, app, id),
        Command::Run { app, command } => run::run(&settings, app, command),
        Command::CronTasks { app, json } => cron::tasks(&settings, app, json),
        Command::CronRun { app, job } => cron::run(&settings, app, job),
        Command::AddonsAdd { app, addon, plan } => addons::add(&settings, app, addon, plan),
        Command::Addons { app, json } => addons::list(&settings, app, json),
        Command::AddonsRemove { app, id } => addons::remove(&settings, app, id),
        Command::PgsqlConsole { app } => addons::console(&settings, app, crate::addon::Kind::Postgresql),
        Command::RedisConsole { app } => addons::console(&settings, app, crate::addon::Kind::Redis),
        Command::MysqlConsole { app } => addons::console(&settings, app, crate::addon::Kind::Mysql),
    }
}

/// A running platform keeps the settings it started with: say so when this command's
/// environment asks for others, since they will not apply.
fn warn_stale_settings(home: &Home, settings: &Settings) -> Result<(), Error> {
    let Some(crate::platform::protocol::Event::Info {
        settings: running, ..
    }) = client::ask(home, &Request::Status)?
    else {
        return Ok(());
    };
    let wanted = settings.describe();
    for (key, value) in &wanted {
        if let Some((_, now)) = running.iter().find(|(k, _)| k == key) {
            if now != value {
                eprintln!(
                    " !     the running platform has {key} = {now}, not {value}: it reads its settings when it starts (`shipway down` first to apply them)"
                );
            }
        }
    }
    Ok(())
}

/// The source argument, `.` by default, which must exist.
fn source_path(source: Option<PathBuf>) -> Result<PathBuf, Error> {
    let path = source.unwrap_or_else(|| PathBuf::from("."));
    crate::source::check_input(&path).map_err(|e| Error::Usage(e.to_string()))
}

/// `-a APP`, else the source folder's name; validated.
fn app_name(app: Option<String>, source: &Path) -> Result<String, Error> {
    let name = app.unwrap_or_else(|| state::app_name_from(source));
    state::validate_app_name(&name)?;
    Ok(name)
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
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
            action: "read",
            path: file.to_path_buf(),
            source,
        })?;
        vars.extend(config_vars::parse_env_file(&file.display().to_string(), &text)?);
    }
    for pair in pairs {
        let (k, v) = config_vars::parse_pair(pair)?;
        vars.insert(k, v);
    }
    Ok(vars)
}

/// The app `-a APP` names (else the current folder's), which must exist.
fn existing_app(settings: &Settings, app: Option<String>) -> Result<(Home, state::AppDir), Error> {
    let home = home(settings)?;
    let app = home.existing_app(&app_name(app, Path::new("."))?)?;
    Ok((home, app))
}

fn home(settings: &Settings) -> Result<Home, Error> {
    Ok(Home::open(&settings.home)?)
}
