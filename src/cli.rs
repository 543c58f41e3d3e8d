//! The command line, as clap types only (verbs named like the Scalingo CLI's where
//! one exists). Parsing only: commands/ does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCandidates;

use crate::commands::complete;

#[derive(Debug, Parser)]
#[command(
    name = "shipway",
    version,
    about = "Rehearse a Scalingo deployment on this machine: classic buildpacks, Procfile processes, TCP readiness, postdeploy, zero-downtime switch."
)]
pub struct Cli {
    /// The app to work on, before or after the verb (default: SHIPWAY_APP, then the app the
    /// work tree's `shipway` git remote deploys, then the current folder's name when such an
    /// app exists; verbs that take a SOURCE default to the source's name)
    #[arg(short, long, global = true, value_name = "APP", add = ArgValueCandidates::new(complete::apps))]
    pub app: Option<String>,
    /// The git remote that names the app (default: shipway; `shipway-REMOTE` is tried too);
    /// for git-setup and git-show, the remote to add or show
    #[arg(short, long, global = true, value_name = "REMOTE")]
    pub remote: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct EnvArgs {
    /// A config var, NAME=value (repeatable), seen by buildpacks only through ENV_DIR: `deploy`
    /// stores it on the app before the build, where it stays even if the build fails (`env-unset`
    /// removes it); `build` and `detect` use it for that run only
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Config vars from a .env file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build SOURCE and roll it out: the app is served at http://127.0.0.1:PORT afterwards
    #[command(after_help = "Examples:
  shipway deploy                         the current folder, as app <folder name>
  shipway deploy fixtures/apps/python    a folder; the app is named after it
  shipway -a myapp deploy app.tar.gz     an archive with one top folder, as app myapp
  shipway deploy --ref HEAD~1            exactly that commit's tree")]
    Deploy {
        /// A folder (default: .), a .tar.gz/.tgz archive with one top folder, or a .war/.jar file
        source: Option<PathBuf>,
        /// Deploy exactly this commit's tree (git archive); sets SOURCE_VERSION
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// The router port of the app's first deploy (default: first free from 5000)
        #[arg(long)]
        port: Option<u16>,
        /// Config vars stored on the app before the build (like env-set)
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Show every candidate buildpack's verdict on DIR, the winner and why
    #[command(after_help = "Examples:
  shipway detect fixtures/apps/python
  shipway detect --buildpack ./my-buildpack .     does my buildpack apply to this folder?
  shipway -a myapp detect                         with myapp's BUILDPACK_URL/BUILDPACK_NAME")]
    Detect {
        /// The app's folder (default: .)
        dir: Option<PathBuf>,
        /// Test this buildpack (a bundled name, folder, file:// git URL#ref or .tgz) instead; repeatable
        #[arg(long = "buildpack", value_name = "PATH_OR_URL")]
        buildpacks: Vec<String>,
        #[command(flatten)]
        env: EnvArgs,
        /// Print the verdicts as JSON
        #[arg(long)]
        json: bool,
    },
    /// Build SOURCE into a release folder without deploying it
    #[command(after_help = "Examples:
  shipway build                          a release of the current folder, not started
  shipway build --out /tmp/slug .        the release folder (app/, release.toml) in /tmp/slug")]
    Build {
        /// A folder (default: .), a .tar.gz/.tgz archive, or a .war/.jar file
        source: Option<PathBuf>,
        /// Build exactly this commit's tree (git archive); sets SOURCE_VERSION
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// Use these buildpacks, in order, instead of the selection rules; repeatable
        #[arg(long = "buildpack", value_name = "PATH_OR_URL")]
        buildpacks: Vec<String>,
        /// Write the release folder here (app/ and release.toml) instead of the app's releases
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Add a git remote (default `shipway`, or -r REMOTE) whose pushes to main/master deploy the app
    #[command(after_help = "Examples:
  shipway git-setup && git push shipway main       the app is named after the work tree's folder
  shipway -a staging -r staging git-setup          a second app: git push staging main")]
    GitSetup {
        /// Replace a remote of that name that points elsewhere
        #[arg(long)]
        force: bool,
    },
    /// Show the git remote that deploys the app (-r REMOTE: another remote)
    #[command(after_help = "Examples:
  shipway git-show                 in a work tree: the URL of its `shipway` remote
  shipway -a myapp git-show        elsewhere: myapp's repository")]
    GitShow,
    /// Write the archive `scalingo deploy` takes (a .tar.gz with one top folder) from SOURCE
    #[command(after_help = "Examples:
  shipway archive                  ./<folder>.tar.gz from the current folder
  shipway archive -o /tmp/a.tgz --ref v1.2 .")]
    Archive {
        /// A folder (default: .); in a git work tree, what `deploy` would take from it
        source: Option<PathBuf>,
        /// Archive exactly this commit's tree (git archive)
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// The file to write (default: APP.tar.gz in the current folder)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The pre-receive hook of a `git-setup` repository: deploys what is pushed (internal)
    #[command(hide = true)]
    GitReceive,
    /// Run the platform (routers and containers) in the foreground; Ctrl-C stops it
    #[command(after_help = "Examples:
  shipway up               logs of every app, prefixed `app [web-1]`, until Ctrl-C
  shipway up --detach")]
    Up {
        /// Run it in the background (its log: SHIPWAY_HOME/platform.log)
        #[arg(long)]
        detach: bool,
    },
    /// Stop the platform and every app process, gracefully
    #[command(after_help = "Example:
  shipway down")]
    Down,
    /// Create an app, so that its config vars (e.g. BUILDPACK_URL) can be set before the first deploy
    #[command(
        after_help = "Example:
  shipway create myapp && shipway -a myapp env-set BUILDPACK_NAME=python",
        alias = "c"
    )]
    Create {
        /// The app's name: lowercase letters, digits and dashes, starting with a letter
        app: String,
    },
    /// Stop an app's containers and delete all its state (asks for its name unless --force)
    #[command(after_help = "Examples:
  shipway destroy myapp
  shipway -a myapp destroy --force")]
    Destroy {
        /// The app (or -a APP; no default: the app to destroy is always named)
        #[arg(value_name = "APP")]
        name: Option<String>,
        /// Do not ask: everything of the app is deleted (config vars, releases, history, cache)
        #[arg(long)]
        force: bool,
    },
    /// The apps known, their current release, router URL and status
    #[command(after_help = "Example:
  shipway apps --json")]
    Apps {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// The app's stack, status, URL, release, formation and addons
    #[command(after_help = "Examples:
  shipway apps-info
  shipway -a myapp apps-info --json")]
    AppsInfo {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Open the app's URL in a browser ($BROWSER, else xdg-open); printed when not on a terminal
    #[command(after_help = "Examples:
  shipway open
  curl \"$(shipway -a myapp open)\"      not on a terminal, the URL is printed")]
    Open,
    /// The platform's dashboard in a browser: apps, deployments, containers, logs (read-only, 127.0.0.1)
    #[command(after_help = "Examples:
  shipway dashboard
  shipway dashboard -a myapp          straight to that app's page")]
    Dashboard,
    /// The app's containers: name, status, command, PORT, pid, uptime, restarts
    #[command(after_help = "Examples:
  shipway ps
  shipway -a myapp ps --json")]
    Ps {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Each container's CPU and memory (now, its size's limit, the most since it started)
    #[command(after_help = "Examples:
  shipway stats
  shipway -a myapp stats --stream
  shipway stats --json             cpu_percent, memory_bytes, memory_limit_bytes, memory_max_bytes")]
    Stats {
        /// Measure again every few seconds until Ctrl-C (piped: one record per interval)
        #[arg(long)]
        stream: bool,
        /// Print them as JSON (with --stream: one JSON object per line)
        #[arg(long)]
        json: bool,
    },
    /// The containers' output, with timestamps and [web-1] prefixes
    #[command(after_help = "Examples:
  shipway logs -f
  shipway logs -n 20 --filter web-1
  shipway logs --filter one-off-1     the output of a `run --detached`
  shipway logs --raw > app.log        the bytes as the app wrote them, escape sequences included")]
    #[command(alias = "l")]
    Logs {
        /// How many lines (from the end)
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: usize,
        /// Keep printing new lines until Ctrl-C
        #[arg(short, long)]
        follow: bool,
        /// Only this process type (web) or container (web-1)
        #[arg(long, add = ArgValueCandidates::new(complete::logs_filter))]
        filter: Option<String>,
        /// The bytes as the app wrote them: its escape sequences reach the terminal
        #[arg(long)]
        raw: bool,
    },
    /// Show the formation, or change it: TYPE:AMOUNT, TYPE:+N, TYPE:-N (or TYPE=AMOUNT)
    #[command(after_help = "Examples:
  shipway scale                    the formation: each process type, its amount and command
  shipway scale web:2 worker:1
  shipway scale web:+1 worker:-1
  shipway scale web:1:L            L: 1 GB of memory, no swap, 512 processes (docs/sizes.md)")]
    #[command(alias = "s")]
    Scale {
        /// TYPE:AMOUNT[:SIZE], TYPE:+N or TYPE:-N; none: show the formation
        #[arg(value_name = "TYPE:AMOUNT", add = ArgValueCandidates::new(complete::scale))]
        counts: Vec<String>,
    },
    /// Restart every container, a type (web) or one container (web-1), new ones first
    #[command(after_help = "Examples:
  shipway restart
  shipway restart worker
  shipway restart web-2")]
    Restart {
        /// A process type (web) or a container (web-1); default: all
        #[arg(add = ArgValueCandidates::new(complete::restart))]
        target: Option<String>,
    },
    /// Stop a running one-off container (`run --detached`): SIGTERM, SIGKILL after the grace period
    #[command(after_help = "Examples:
  shipway one-off-stop one-off-1
  shipway one-off-stop 1")]
    OneOffStop {
        /// The one-off's name (one-off-1), or its number (1)
        #[arg(value_name = "CONTAINER", add = ArgValueCandidates::new(complete::one_offs))]
        container: String,
    },
    /// Send SIGUSR1 or SIGUSR2 to containers: each one named (web-1), or every container of a type (web)
    #[command(after_help = "Examples:
  shipway send-signal --signal SIGUSR1 web-1
  shipway send-signal --signal SIGUSR2 web-1 web-2
  shipway kill -s SIGUSR2 web")]
    #[command(alias = "kill")]
    SendSignal {
        /// SIGUSR1 or SIGUSR2 (the signals the platform lets you send)
        #[arg(short, long)]
        signal: String,
        /// Containers (web-1) or process types (web)
        #[arg(value_name = "CONTAINER", required = true, add = ArgValueCandidates::new(complete::restart))]
        containers: Vec<String>,
    },
    /// Rename the app: its config vars, router port (its URL), addons, releases and history move with it
    #[command(after_help = "Examples:
  shipway -a my-app rename --new-name my-app-production      then type my-app to confirm
  echo my-app | shipway -a my-app rename --new-name my-app-production")]
    Rename {
        /// The app's new name: lowercase letters, digits and dashes, starting with a letter
        #[arg(long = "new-name", value_name = "NEW")]
        new_name: String,
    },
    /// The app's config vars
    #[command(after_help = "Example:
  shipway env --json")]
    Env {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// One config var's value
    #[command(after_help = "Example:
  shipway env-get DATABASE_URL")]
    EnvGet {
        /// The config var's name
        #[arg(add = ArgValueCandidates::new(complete::config_vars))]
        name: String,
    },
    /// Set config vars (restarts nothing: run `shipway restart` to apply them)
    #[command(after_help = "Examples:
  shipway env-set DEBUG=1 LOG_LEVEL=info && shipway restart
  shipway env-set --file .env")]
    EnvSet {
        /// NAME=value pairs
        #[arg(value_name = "NAME=VALUE")]
        pairs: Vec<String>,
        /// Also read NAME=value lines from this .env file
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Remove config vars (restarts nothing)
    #[command(after_help = "Example:
  shipway env-unset DEBUG LOG_LEVEL")]
    EnvUnset {
        /// The config vars' names
        #[arg(required = true, value_name = "NAME", add = ArgValueCandidates::new(complete::config_vars))]
        names: Vec<String>,
    },
    /// The app's deployments: id, date, duration, git ref, status, image size
    #[command(after_help = "Example:
  shipway deployments --json")]
    Deployments {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// The app's events, newest first: deployments, restarts, scale, crashes, one-offs,
    /// config var names (never their values), addons, stack
    #[command(after_help = "Examples:
  shipway timeline
  shipway timeline --json")]
    Timeline {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// The full output of a deployment (default: the last one); exits with its status's code
    #[command(after_help = "Examples:
  shipway deployment-logs
  shipway deployment-logs 1764842100123-3f2a")]
    DeploymentLogs {
        /// A deployment id, as `shipway deployments` lists them (default: the last one)
        #[arg(add = ArgValueCandidates::new(complete::deployments))]
        id: Option<String>,
    },
    /// The running deployment's output and statuses as they come, else the last one's; exits with its status's code
    #[command(after_help = "Examples:
  shipway deployment-follow              in one terminal, while `git push shipway main` runs in another
  shipway -a myapp deployment-follow")]
    DeploymentFollow,
    /// Delete the app's build cache (CACHE_DIR)
    #[command(after_help = "Example:
  shipway deployment-delete-cache && shipway deploy")]
    #[command(alias = "deployment-cache-delete")]
    DeploymentDeleteCache,
    /// The buildpacks fetched by URL and kept for builds without the network
    #[command(after_help = "Examples:
  shipway buildpacks
  shipway buildpacks --clear")]
    Buildpacks {
        /// Remove them all (the next build fetches what it needs again)
        #[arg(long)]
        clear: bool,
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// The platform's stacks: base, status, and the image pulled for each (digest, size)
    #[command(after_help = "Examples:
  shipway stacks
  shipway stacks --json
  shipway stacks --prune        remove the images no app uses")]
    Stacks {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
        /// Remove the images no app uses (nor any release of one)
        #[arg(long)]
        prune: bool,
    },
    /// Pull a stack's image (scalingo/STACK:latest) from Docker Hub or SHIPWAY_STACK_REGISTRY
    #[command(after_help = "Examples:
  shipway stacks-pull scalingo-26
  SHIPWAY_STACK_REGISTRY=http://127.0.0.1:5000 shipway stacks-pull scalingo-24")]
    StacksPull {
        /// scalingo-26, scalingo-24 or scalingo-22
        stack: String,
    },
    /// Import a stack's image from a `docker save` tar or an OCI archive (offline)
    #[command(after_help = "Examples:
  docker save scalingo/scalingo-26 | shipway stacks-import scalingo-26 -
  shipway stacks-import scalingo-26 scalingo-26.tar.gz")]
    StacksImport {
        /// scalingo-26, scalingo-24 or scalingo-22
        stack: String,
        /// The archive (plain, gzip or zstd), or - for stdin
        file: std::path::PathBuf,
    },
    /// Change the app's stack: its next deployment builds and runs on it (a restart keeps the running release's); the build cache is reset
    #[command(after_help = "Examples:
  shipway stacks-set scalingo-24 -a myapp
  shipway stacks-set host          this machine's own userland, no image")]
    StacksSet {
        /// scalingo-26, scalingo-24, scalingo-22, or host
        stack: String,
    },
    /// Turn the app's router logs on or off: one line per request in its log (off by default)
    #[command(after_help = "Examples:
  shipway router-logs --enable     then: shipway logs --filter router
  shipway router-logs              whether they are on")]
    RouterLogs {
        /// Write one line per request in the app's log
        #[arg(short, long, conflicts_with = "disable")]
        enable: bool,
        /// Stop writing them (the default)
        #[arg(short, long)]
        disable: bool,
    },
    /// Roll out the release of an earlier successful deployment again, without building
    #[command(after_help = "Examples:
  shipway rollback                 the previous successful deployment's release
  shipway rollback 1764842100123-3f2a")]
    Rollback {
        /// A deployment id (default: the previous successful deployment)
        #[arg(add = ArgValueCandidates::new(complete::deployments))]
        id: Option<String>,
    },
    /// Run a command in a one-off container of the current release, attached to this terminal
    #[command(
        long_about = "Run a command in a one-off container of the current release: the app's \
environment and profile scripts, no PORT, attached to this terminal; its exit status is shipway's.

Several words are passed as they are, each one argument (`run echo 'a  b'` prints `a  b`); \
a single word is a command line for bash, as in a Procfile (`run 'rake db:migrate && echo ok'`).",
        after_help = "Examples:
  shipway run bash
  shipway run python manage.py migrate
  shipway run -e DEBUG=1 -e LEVEL=2 env
  shipway run --detached python long_task.py     output in `shipway logs`
  shipway run 'echo $CONTAINER && exit 3'"
    )]
    #[command(alias = "r")]
    Run {
        /// A variable for this container only, NAME=value (repeatable); it overrides the config var of that name
        #[arg(short, long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Start it in the background, owned by the platform: its output goes to the app's logs
        #[arg(short, long)]
        detached: bool,
        /// The container size (S, M, L, XL, 2XL, 3XL; default M): its memory (no swap), process and CPU limits
        #[arg(short, long, value_name = "SIZE")]
        size: Option<String>,
        /// The command and its arguments
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// Run bash in a one-off container of the current release (`run bash`)
    #[command(after_help = "Examples:
  shipway bash
  shipway bash -c 'ls -la'")]
    Bash {
        /// A variable for this container only, NAME=value (repeatable)
        #[arg(short, long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// The container size (S, M, L, XL, 2XL, 3XL; default M): its memory (no swap), process and CPU limits
        #[arg(short, long, value_name = "SIZE")]
        size: Option<String>,
        /// Arguments for bash
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// The scheduled jobs of the current release (cron.json): schedule, command, size, last and next run
    #[command(after_help = "Examples:
  shipway cron-tasks
  shipway cron-tasks --json")]
    CronTasks {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Run a job of cron.json now, as the scheduler would: its number (1) or its command
    #[command(after_help = "Examples:
  shipway cron-run 1
  shipway cron-run 'python manage.py clearsessions'")]
    CronRun {
        /// The job's number in `shipway cron-tasks` (1), or its command
        #[arg(value_name = "JOB")]
        job: String,
    },
    /// Print a completion script for a shell
    #[command(after_help = "Examples:
  shipway completions bash > ~/.local/share/bash-completion/completions/shipway
  shipway completions zsh > ~/.zfunc/_shipway        (with fpath+=~/.zfunc in ~/.zshrc)
  shipway completions fish > ~/.config/fish/completions/shipway.fish")]
    Completions {
        /// bash, zsh or fish (also elvish, powershell)
        shell: clap_complete::Shell,
    },
    /// Print shipway's man page (roff)
    #[command(after_help = "Examples:
  shipway man | man -l -
  shipway man > ~/.local/share/man/man1/shipway.1")]
    Man,
    /// Provision an addon backed by a real server of this machine: postgresql, redis or
    /// mysql (its config vars are set and the app restarted)
    #[command(after_help = "Examples:
  shipway addons-add postgresql
  shipway -a myapp addons-add postgresql postgresql-starter-512")]
    AddonsAdd {
        /// postgresql, redis or mysql
        addon: String,
        /// The platform's plan name (shown; its size is not enforced here)
        plan: Option<String>,
    },
    /// The app's addons, and whether their servers run
    #[command(after_help = "Examples:
  shipway addons
  shipway addons --json")]
    Addons {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop an addon's server and delete its data (its config vars are unset and the
    /// app restarted)
    #[command(after_help = "Examples:
  shipway addons-remove redis
  shipway addons-remove ad-1a2b3c4d")]
    AddonsRemove {
        /// The addon's ID (`shipway addons`), or its kind
        #[arg(add = ArgValueCandidates::new(complete::addons))]
        id: String,
    },
    /// One addon: provider, plan, status, ID, address and the config vars it sets
    #[command(after_help = "Examples:
  shipway addons-info postgresql
  shipway addons-info ad-1a2b3c4d --json")]
    AddonsInfo {
        /// The addon's ID (`shipway addons`), or its kind
        #[arg(add = ArgValueCandidates::new(complete::addons))]
        id: String,
        /// Print it as JSON
        #[arg(long)]
        json: bool,
    },
    /// psql connected to the app's PostgreSQL addon
    #[command(after_help = "Example:
  shipway pgsql-console")]
    #[command(aliases = ["psql-console", "postgresql-console"])]
    PgsqlConsole,
    /// redis-cli connected to the app's Redis addon
    #[command(after_help = "Example:
  shipway redis-console")]
    RedisConsole,
    /// The mysql client connected to the app's MySQL addon
    #[command(after_help = "Example:
  shipway mysql-console")]
    MysqlConsole,
    /// The platform itself when started by `up --detach` or `deploy` (internal)
    #[command(hide = true)]
    Platform,
    /// Kills every app process group if the platform dies (internal)
    #[command(hide = true)]
    Watchdog,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_verb_has_an_example_and_every_flag_a_description() {
        let top = Cli::command();
        top.clone().debug_assert();
        let mut missing = Vec::new();
        for verb in top.get_subcommands().filter(|c| !c.is_hide_set()) {
            let name = verb.get_name();
            let examples = verb.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            if !examples.contains(&format!("shipway {name}")) && !examples.contains(&format!(" {name}")) {
                missing.push(format!("{name}: no example"));
            }
            for arg in verb.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                if id != "help" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{name} {id}: no description"));
                }
            }
        }
        for arg in top.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() {
                missing.push(format!("shipway {id}: no description"));
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn the_app_and_remote_are_read_before_or_after_the_verb() {
        for args in [
            &["shipway", "-a", "myapp", "-r", "staging", "ps"][..],
            &["shipway", "ps", "-a", "myapp", "-r", "staging"],
            &["shipway", "ps", "--app=myapp", "--remote", "staging"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.app.as_deref(), Some("myapp"), "{args:?}");
            assert_eq!(cli.remote.as_deref(), Some("staging"), "{args:?}");
        }
        // After the command's first word, everything belongs to the command.
        let cli = Cli::try_parse_from(["shipway", "run", "-e", "A=1", "-a", "x", "ls", "-a", "-d"]).unwrap();
        let Command::Run {
            env,
            command,
            detached,
            ..
        } = cli.command
        else {
            panic!("not run")
        };
        assert_eq!(
            (env, cli.app.as_deref(), detached),
            (vec!["A=1".to_string()], Some("x"), false)
        );
        assert_eq!(command, ["ls", "-a", "-d"]);
    }
}
