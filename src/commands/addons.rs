//! `addons-add`, `addons`, `addons-remove` (through the platform, which owns the
//! servers), and the consoles `pgsql-console`, `redis-console`, `mysql-console`, which
//! run the host's client against the addon, attached to this terminal.

use std::path::Path;

use super::tables;
use crate::addon::{self, Kind};
use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{AddonRow, Event, Request};
use crate::process::{ProcessError, Spawn};
use crate::settings::Settings;
use crate::state::Home;

pub fn add(
    settings: &Settings,
    choice: &super::AppChoice,
    spec: String,
    plan: Option<String>,
) -> Result<i32, Error> {
    // A bad name or plan is said before a platform is started for it.
    let (kind, from_spec) = addon::parse_spec(&spec).map_err(|e| Error::Usage(e.to_string()))?;
    addon::plan_for(kind, plan.as_deref().or(from_spec.as_deref()))
        .map_err(|e| Error::Usage(e.to_string()))?;
    let (home, app) = super::existing_app(settings, choice)?;
    client::stream(
        &home,
        Request::AddonsAdd {
            app: app.name,
            addon: spec,
            plan,
        },
    )
}

pub fn remove(settings: &Settings, choice: &super::AppChoice, id: String) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    // Said here when the app has no such addon, before a platform is started for it.
    addon::find(&app, &id).map_err(|e| Error::Usage(e.to_string()))?;
    client::stream(&home, Request::AddonsRemove { app: app.name, id })
}

pub fn list(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let rows = rows_or_stored(&home, &app)?;
    if json {
        tables::print_json(&rows);
    } else {
        tables::addons(&app.name, &rows);
    }
    Ok(exit::SUCCESS)
}

/// The app's addons as the running platform knows them, or as stored (none of them
/// running) when no platform runs; each plan shown as one cell.
pub(super) fn rows_or_stored(home: &Home, app: &crate::state::AppDir) -> Result<Vec<AddonRow>, Error> {
    let mut rows = match rows(home, &app.name)? {
        Some(rows) => rows,
        None => addon::list(app)?
            .into_iter()
            .map(|a| AddonRow {
                id: a.id,
                addon: a.kind.name().into(),
                plan: a.plan,
                status: "stopped".into(),
                port: a.port,
                pid: None,
            })
            .collect(),
    };
    // A plan stored before plans were checked may hold a newline or 100 KB: one cell.
    for r in &mut rows {
        r.plan = addon::shown_plan(&r.plan);
    }
    Ok(rows)
}

/// The addons as a running platform knows them; None when no platform runs.
fn rows(home: &Home, app: &str) -> Result<Option<Vec<AddonRow>>, Error> {
    match client::ask(home, &Request::Addons { app: app.to_string() })? {
        Some(Event::Addons { rows }) => Ok(Some(rows)),
        Some(Event::Error { message }) => Err(Error::Platform { message }),
        _ => Ok(None),
    }
}

/// The client of `kind`, connected to the app's addon; its exit status passed through.
pub fn console(settings: &Settings, choice: &super::AppChoice, kind: Kind) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let a = addon::find(&app, kind.name()).map_err(|_| {
        Error::Usage(format!(
            "{} has no {kind} addon: `shipway addons-add {kind} -a {}` provisions one",
            app.name, app.name
        ))
    })?;
    let running = rows(&home, &app.name)?
        .is_some_and(|rows| rows.iter().any(|r| r.id == a.id && r.status == "running"));
    if !running {
        return Err(Error::Platform {
            message: format!(
                "the {kind} server of {} is not running: `shipway up` starts it with the platform; when the platform runs, its log ({}) says why it is not",
                app.name,
                home.log_file().display()
            ),
        });
    }
    let port = a.port.to_string();
    // The password never goes in the client's command line, which every local user can
    // read: psql reads it from a password file, mysql from a defaults file (each 0600, in
    // a 0700 folder removed when the client is done), redis-cli from its environment,
    // which only this user can read.
    let secrets = addon::Secrets::new().map_err(|e| Error::Platform {
        message: e.to_string(),
    })?;
    let secret_file = |name: &str, text: &str| {
        secrets.file(name, text).map_err(|e| Error::Platform {
            message: e.to_string(),
        })
    };
    let (program, package, args, secret): (
        &str,
        &str,
        Vec<std::ffi::OsString>,
        Option<(&str, std::ffi::OsString)>,
    ) = match kind {
        Kind::Postgresql => (
            "psql",
            "postgresql-client",
            vec![format!("postgresql://{db}@127.0.0.1:{port}/{db}", db = a.database).into()],
            Some((
                "PGPASSFILE",
                secret_file(
                    "pgpass",
                    &addon::pgpass_line(a.port, &a.database, &a.database, &a.password),
                )?
                .into_os_string(),
            )),
        ),
        Kind::Redis => (
            "redis-cli",
            "redis-tools",
            ["-h", "127.0.0.1", "-p", &port, "--user", "default"]
                .map(Into::into)
                .to_vec(),
            Some(("REDISCLI_AUTH", a.password.clone().into())),
        ),
        Kind::Mysql => {
            let defaults = secret_file("my.cnf", &format!("[client]\npassword={}\n", a.password))?;
            let mut first = std::ffi::OsString::from("--defaults-extra-file=");
            first.push(&defaults);
            (
                "mysql",
                "mariadb-client",
                // The defaults file must come first.
                vec![
                    first,
                    "-h".into(),
                    "127.0.0.1".into(),
                    "-P".into(),
                    port.into(),
                    "-u".into(),
                    a.database.clone().into(),
                    a.database.clone().into(),
                ],
                None,
            )
        }
    };
    // Whatever password the user's environment holds is not the addon's: left out.
    let env = std::env::vars_os()
        .filter(|(k, _)| {
            !["PGPASSWORD", "PGPASSFILE", "MYSQL_PWD", "REDISCLI_AUTH"]
                .iter()
                .any(|n| k == n)
        })
        .chain(secret.map(|(k, v)| (k.into(), v)));
    let cwd = std::env::current_dir().unwrap_or_else(|_| Path::new("/").to_path_buf());
    // Ctrl-C belongs to the client (it cancels a query), as in a terminal.
    // SAFETY: setting a disposition to "ignore" has no handler to be unsafe about.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    let status = Spawn::new(program, &cwd)
        .args(args)
        .env(env)
        .run_attached()
        .map_err(|e| match e {
            ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::Platform {
                message: format!("{program} is not installed: install Debian's {package} package (`apt-get install {package}`)"),
            },
            other => Error::Platform {
                message: other.to_string(),
            },
        })?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status.0).unwrap_or(0)))
}
