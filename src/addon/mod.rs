//! Addons (PLATFORM.md §7): databases provisioned beside an app and reached through
//! config vars, each backed here by a real server of the host's packages: PostgreSQL,
//! Redis, MySQL (MariaDB). This module says what an addon is, where it is stored, which
//! config vars it gives the app; `server.rs` provisions, starts and stops its server.
//!
//! It owns no platform state: the platform's supervisor owns the running servers, as it
//! owns containers.
//!
//! On disk, in the app's folder: `addons/<id>.toml` (the addon: kind, plan, port,
//! password; 0600) and `addons/<id>/` (the server's data, 0700). When shipway runs as
//! root, each addon's folder belongs to the addon's own OS user, who runs its server: the
//! one thing in the home that is not root's (docs/addons.md).

mod as_user;
mod server;
mod users;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::io_error::{io, IoError};
use crate::process::ProcessError;
use crate::state::{self, AppDir, StateError};

pub use as_user::main as as_user_main;
pub use server::{pgpass_line, provision, start, Secrets, Server};

/// The PostgreSQL superuser of every cluster: shipway's, used only to make the app's role
/// and database; its password is in the addon's record, never in the app's config vars.
pub const SUPERUSER: &str = "shipway";

#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error(
        "unknown addon {0:?}: shipway provides postgresql, redis and mysql (`shipway addons-add postgresql`)"
    )]
    Unknown(String),
    #[error("unknown plan {plan} for the {kind} addon: the platform's plans are {valid} (without a PLAN, {kind}-sandbox)")]
    UnknownPlan {
        kind: Kind,
        /// As asked, escaped and cut short: it may hold anything.
        plan: String,
        valid: String,
    },
    #[error("{app} already has a {kind} addon ({id}): remove it first (`shipway addons-remove {id}`)")]
    Duplicate { app: String, kind: Kind, id: String },
    #[error("{app} has no addon {id:?}{known}")]
    NoSuchAddon { app: String, id: String, known: String },
    #[error("the {kind} addon needs {program}, which is not installed (looked in {looked}): install Debian's {package} package (`apt-get install {package}`), or point the addon_bin_dirs setting at its folder")]
    Missing {
        kind: Kind,
        program: String,
        looked: String,
        package: &'static str,
    },
    #[error("the {kind} server {what}; the end of its output:\n{tail}")]
    Failed { kind: Kind, what: String, tail: String },
    #[error("cannot run the {kind} server: {source}")]
    Process { kind: Kind, source: ProcessError },
    #[error("cannot {action} the addon's user {user}: {message}")]
    User {
        action: &'static str,
        user: String,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the {kind} server was stopped: the platform is stopping")]
    Cancelled { kind: Kind },
    #[error("cannot draw random bytes from the kernel for {what} ({source}): nothing was made with a guessable one; try again once the system's random generator works")]
    NoRandomness {
        what: &'static str,
        source: getrandom::Error,
    },
}

/// The addons shipway provides, named as Scalingo's CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Postgresql,
    Redis,
    Mysql,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Kind {
    /// `postgresql`, `redis`, `mysql`; also the names buildpacks and older manifests
    /// use (`scalingo-postgresql`, `heroku-postgresql`, `heroku-redis`...).
    pub fn parse(name: &str) -> Result<Kind, AddonError> {
        let bare = name
            .trim()
            .trim_start_matches("scalingo-")
            .trim_start_matches("heroku-")
            .to_ascii_lowercase();
        match bare.as_str() {
            "postgresql" | "postgres" => Ok(Kind::Postgresql),
            "redis" => Ok(Kind::Redis),
            "mysql" => Ok(Kind::Mysql),
            _ => Err(AddonError::Unknown(name.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgresql => "postgresql",
            Kind::Redis => "redis",
            Kind::Mysql => "mysql",
        }
    }

    /// The config var the platform sets, and its alias (Scalingo's documentation:
    /// databases/postgresql/connecting, databases/redis/start, databases/mysql/connecting).
    pub fn vars(self) -> [&'static str; 2] {
        match self {
            Kind::Postgresql => ["SCALINGO_POSTGRESQL_URL", "DATABASE_URL"],
            Kind::Redis => ["SCALINGO_REDIS_URL", "REDIS_URL"],
            Kind::Mysql => ["SCALINGO_MYSQL_URL", "DATABASE_URL"],
        }
    }

    /// The Debian package that brings the server.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Postgresql => "postgresql",
            Kind::Redis => "redis-server",
            Kind::Mysql => "mariadb-server",
        }
    }
}

/// `addons-add postgresql postgresql-starter-512` splits a `postgresql:plan` spec as
/// bin/release and scalingo.json write it. A plan is one of the platform's
/// (`plan_for`); a Heroku plan after a `heroku-` name (a Heroku buildpack's bin/release:
/// `heroku-redis:hobby-dev`) means nothing on the platform and is taken as no plan.
pub fn parse_spec(spec: &str) -> Result<(Kind, Option<String>), AddonError> {
    let Some((name, plan)) = spec.split_once(':') else {
        return Ok((Kind::parse(spec)?, None));
    };
    let kind = Kind::parse(name)?;
    if plan.is_empty() {
        return Ok((kind, None));
    }
    let heroku = name.trim().to_ascii_lowercase().starts_with("heroku-");
    match plan_for(kind, Some(plan)) {
        Ok(p) => Ok((kind, Some(p))),
        Err(_) if heroku && is_plain_name(plan) => Ok((kind, None)),
        Err(e) => Err(e),
    }
}

/// The sizes (MB) of the platform's Starter and Business plans of a kind, as its
/// `addons-plans` lists them: `<kind>-<class>-<size>` (Scalingo's documentation,
/// databases/postgresql/changing-plan: a type, a class, a size in MB).
fn sizes(kind: Kind) -> &'static [u32] {
    match kind {
        Kind::Redis => &[256, 512, 1024, 2048, 4096, 8192, 16384],
        Kind::Postgresql | Kind::Mysql => &[512, 1024, 2048, 4096, 8192, 16384, 32768, 65536],
    }
}

/// Every plan name the platform has for `kind`, the sandbox first.
pub fn plans(kind: Kind) -> Vec<String> {
    let mut all = vec![Addon::default_plan(kind)];
    for class in ["starter", "business"] {
        all.extend(sizes(kind).iter().map(|s| format!("{kind}-{class}-{s}")));
    }
    all
}

/// The plan an addon of `kind` gets: `asked` when it is one of the platform's, the
/// sandbox when none is asked; anything else is refused, naming the valid ones.
pub fn plan_for(kind: Kind, asked: Option<&str>) -> Result<String, AddonError> {
    let Some(asked) = asked.filter(|p| !p.is_empty()) else {
        return Ok(Addon::default_plan(kind));
    };
    let all = plans(kind);
    if all.iter().any(|p| p == asked) {
        return Ok(asked.to_string());
    }
    Err(AddonError::UnknownPlan {
        kind,
        plan: escaped(asked),
        valid: all.join(", "),
    })
}

/// A plan as stored, fit for one cell of a table: a record written before plans were
/// checked may hold anything (a newline, 100 KB); such a plan is shown escaped and cut.
pub fn shown_plan(plan: &str) -> String {
    if is_plain_name(plan) {
        plan.to_string()
    } else {
        escaped(plan)
    }
}

/// Letters, digits and `-`, at most 64: a plan name of any platform.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Quoted, every control character escaped, at most 40 characters of it.
fn escaped(s: &str) -> String {
    const MAX: usize = 40;
    let cut: String = s.chars().take(MAX).collect();
    let more = s.chars().count() > MAX;
    format!("{:?}{}", cut, if more { " (cut)" } else { "" })
}

/// One addon of an app, as stored in `addons/<id>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Addon {
    pub id: String,
    pub kind: Kind,
    pub plan: String,
    pub port: u16,
    /// The app's password (its role's, its user's), in its config vars.
    pub password: String,
    /// PostgreSQL's superuser password (`SUPERUSER`), shipway's only. Empty in a record
    /// an older shipway wrote, whose app role is the superuser.
    #[serde(default)]
    pub admin_password: String,
    /// The database (and user) name.
    pub database: String,
    /// Milliseconds since the epoch (addons are listed oldest first).
    pub created: u64,
}

impl Addon {
    /// The connection URI, in the platform's format (see `Kind::vars`). The servers have
    /// no TLS here: PostgreSQL's `sslmode=prefer` falls back to plain; MySQL's URI
    /// leaves out the platform's `useSSL=true`, which a client would insist on.
    pub fn url(&self) -> String {
        let (port, password, db) = (self.port, &self.password, &self.database);
        match self.kind {
            Kind::Postgresql => format!("postgresql://{db}:{password}@127.0.0.1:{port}/{db}?sslmode=prefer"),
            Kind::Redis => format!("redis://default:{password}@127.0.0.1:{port}"),
            Kind::Mysql => format!("mysql://{db}:{password}@127.0.0.1:{port}/{db}"),
        }
    }

    /// The config vars this addon sets on its app.
    pub fn config_vars(&self) -> Vec<(String, String)> {
        let url = self.url();
        self.kind
            .vars()
            .iter()
            .map(|v| (v.to_string(), url.clone()))
            .collect()
    }

    /// The default plan of a kind, shown when none is given.
    pub fn default_plan(kind: Kind) -> String {
        format!("{}-sandbox", kind.name())
    }

    fn new(app: &AppDir, kind: Kind, plan: Option<&str>) -> Result<Addon, AddonError> {
        let db: String = app
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Ok(Addon {
            id: format!("ad-{}", random_hex(4, "an addon id")?),
            kind,
            plan: plan_for(kind, plan)?,
            port: 0,
            password: random_hex(16, "a password")?,
            admin_password: if kind == Kind::Postgresql {
                random_hex(16, "a password")?
            } else {
                String::new()
            },
            database: db,
            created: crate::clock::now_ms(),
        })
    }

    fn save(&self, app: &AppDir) -> Result<(), StateError> {
        state::private_dir(&folder(app))?;
        state::write_toml(&record(app, &self.id), self, 0o600)
    }
}

/// `addons/` of an app.
pub fn folder(app: &AppDir) -> PathBuf {
    app.root.join("addons")
}

fn record(app: &AppDir, id: &str) -> PathBuf {
    folder(app).join(format!("{id}.toml"))
}

/// The server's own folder (its data).
pub fn data_dir(app: &AppDir, id: &str) -> PathBuf {
    folder(app).join(id)
}

/// The app's addons, oldest first. Reading one folder: free for an app without any.
pub fn list(app: &AppDir) -> Result<Vec<Addon>, StateError> {
    let entries = match std::fs::read_dir(folder(app)) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StateError::Io(IoError::new("read", folder(app), source))),
    };
    let mut addons = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Some(a) = state::read_toml::<Addon>(&path)? {
                addons.push(a);
            }
        }
    }
    addons.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(addons)
}

/// The addon `id` of the app (or the only one of that kind, named by kind).
pub fn find(app: &AppDir, id: &str) -> Result<Addon, AddonError> {
    let all = list(app)?;
    let by_kind = Kind::parse(id).ok();
    let found = all
        .iter()
        .find(|a| a.id == id)
        .or_else(|| all.iter().find(|a| Some(a.kind) == by_kind));
    match found {
        Some(a) => Ok(a.clone()),
        None => Err(AddonError::NoSuchAddon {
            app: app.name.clone(),
            id: id.to_string(),
            known: if all.is_empty() {
                ": it has none".to_string()
            } else {
                format!(
                    " (it has: {})",
                    all.iter()
                        .map(|a| format!("{} {}", a.id, a.kind))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        }),
    }
}

/// Delete an addon's record, data and OS user (its server must be stopped).
pub fn remove(app: &AppDir, id: &str) -> Result<(), AddonError> {
    let dir = data_dir(app, id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", &dir)(e).into()),
    }
    users::remove(id)?;
    let rec = record(app, id);
    match std::fs::remove_file(&rec) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", &rec)(e).into()),
    }
}

/// The OS users of an app's addons removed, when its folder goes with `destroy` (their
/// servers stopped): nothing of an addon outlives its app.
pub fn remove_users(app: &AppDir) -> Result<(), AddonError> {
    for a in list(app)? {
        users::remove(&a.id)?;
    }
    Ok(())
}

/// The OS users of an app's addons told where their data folders are now, after the app
/// was renamed (their servers stopped).
pub fn rehome_users(app: &AppDir) -> Result<(), AddonError> {
    for a in list(app)? {
        users::rehome(&a.id, &data_dir(app, &a.id))?;
    }
    Ok(())
}

/// What a plan asks that a server of this machine cannot enforce, said once, when the
/// addon is added: the platform sizes memory and disk by plan.
pub fn plan_note(addon: &Addon) -> Option<String> {
    let size: String = addon
        .plan
        .rsplit('-')
        .next()
        .filter(|s| s.chars().all(|c| c.is_ascii_alphanumeric()) && s.chars().any(|c| c.is_ascii_digit()))?
        .to_string();
    Some(format!(
        "plan {}: its size ({size}) is not enforced here; the server uses what this machine has",
        addon.plan
    ))
}

/// A generated secret (scalingo.json's `secret` generator): 64 hex characters.
pub fn secret() -> Result<String, AddonError> {
    random_hex(32, "a generated secret")
}

/// `n` random bytes from the kernel's generator (getrandom(2)), in hex: passwords, secrets
/// and ids. It fails closed: a password is never made of anything guessable, such as the
/// time or a pid, even when the generator cannot be read.
fn random_hex(n: usize, what: &'static str) -> Result<String, AddonError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|source| AddonError::NoRandomness { what, source })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_drawn_from_the_kernel_and_never_repeat() {
        let a = secret().unwrap();
        let b = secret().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
        assert_eq!(random_hex(4, "an id").unwrap().len(), 8);
    }

    #[test]
    fn kinds_parse_the_platform_names_and_refuse_others() {
        assert_eq!(Kind::parse("postgresql").unwrap(), Kind::Postgresql);
        assert_eq!(Kind::parse("heroku-postgresql").unwrap(), Kind::Postgresql);
        assert_eq!(Kind::parse("scalingo-redis").unwrap(), Kind::Redis);
        assert_eq!(Kind::parse("mysql").unwrap(), Kind::Mysql);
        let e = Kind::parse("mongodb").unwrap_err().to_string();
        assert!(e.contains("postgresql, redis and mysql"), "{e}");
        assert_eq!(
            parse_spec("postgresql:postgresql-starter-512").unwrap(),
            (Kind::Postgresql, Some("postgresql-starter-512".into()))
        );
        assert_eq!(parse_spec("redis").unwrap(), (Kind::Redis, None));
        // A Heroku buildpack's plan is no plan here; a plan that is no name is refused.
        assert_eq!(parse_spec("heroku-redis:hobby-dev").unwrap(), (Kind::Redis, None));
        assert!(parse_spec("heroku-redis:a\nb").is_err());
        assert!(parse_spec("redis:hobby-dev").is_err());
    }

    #[test]
    fn plans_are_the_platform_names_and_a_bad_one_is_said_escaped_and_short() {
        assert_eq!(plan_for(Kind::Redis, None).unwrap(), "redis-sandbox");
        assert_eq!(
            plan_for(Kind::Postgresql, Some("postgresql-business-1024")).unwrap(),
            "postgresql-business-1024"
        );
        let e = plan_for(Kind::Mysql, Some("x\n| injected | row |"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("mysql-sandbox, mysql-starter-512"), "{e}");
        let huge = "p".repeat(100 * 1024);
        let e = plan_for(Kind::Redis, Some(&huge)).unwrap_err().to_string();
        assert!(e.len() < 2000, "{}", e.len());
        assert_eq!(shown_plan("redis-starter-256"), "redis-starter-256");
        assert_eq!(shown_plan("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn urls_and_vars_follow_the_platform() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir {
            name: "my-app".into(),
            root: dir.path().to_path_buf(),
        };
        let mut a = Addon::new(&app, Kind::Postgresql, None).unwrap();
        a.port = 5433;
        assert_eq!(a.database, "my_app");
        assert_eq!(a.password.len(), 32);
        assert_eq!(
            a.url(),
            format!(
                "postgresql://my_app:{}@127.0.0.1:5433/my_app?sslmode=prefer",
                a.password
            )
        );
        let names: Vec<String> = a.config_vars().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["SCALINGO_POSTGRESQL_URL", "DATABASE_URL"]);
        a.kind = Kind::Redis;
        assert!(a.url().starts_with("redis://default:"));
        assert_eq!(a.config_vars()[1].0, "REDIS_URL");
    }

    #[test]
    fn records_round_trip_and_removal_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir {
            name: "a".into(),
            root: dir.path().to_path_buf(),
        };
        assert!(list(&app).unwrap().is_empty());
        let a = Addon::new(&app, Kind::Redis, Some("redis-starter-256")).unwrap();
        a.save(&app).unwrap();
        std::fs::create_dir_all(data_dir(&app, &a.id)).unwrap();
        assert_eq!(list(&app).unwrap(), vec![a.clone()]);
        assert_eq!(find(&app, "redis").unwrap().id, a.id);
        assert!(find(&app, "ad-nope").unwrap_err().to_string().contains(&a.id));
        assert!(plan_note(&a).unwrap().contains("(256)"));
        remove(&app, &a.id).unwrap();
        assert!(list(&app).unwrap().is_empty());
        assert!(!data_dir(&app, &a.id).exists());
    }
}
