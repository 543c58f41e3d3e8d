//! The command line, as clap types only (verbs named like the Scalingo CLI's where
//! one exists). Parsing only: commands/ does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "shipway",
    version,
    about = "Rehearse a Scalingo deployment on this machine: classic buildpacks, Procfile processes, TCP readiness, postdeploy, zero-downtime switch."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct EnvArgs {
    /// A config var for this build, NAME=value (repeatable); reaches buildpacks only through ENV_DIR
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Config vars from a .env file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build SOURCE and roll it out: the app is served at http://127.0.0.1:PORT afterwards
    Deploy {
        /// A folder (default: .), a .tar.gz/.tgz archive with one top folder, or a .war/.jar file
        source: Option<PathBuf>,
        /// The app (default: the source folder's name)
        #[arg(short, long)]
        app: Option<String>,
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
    Detect {
        dir: Option<PathBuf>,
        /// Test this buildpack (a bundled name, folder, file:// git URL#ref or .tgz) instead; repeatable
        #[arg(long = "buildpack", value_name = "PATH_OR_URL")]
        buildpacks: Vec<String>,
        /// The app whose config vars (BUILDPACK_URL, BUILDPACK_NAME) apply
        #[arg(short, long)]
        app: Option<String>,
        #[command(flatten)]
        env: EnvArgs,
        #[arg(long)]
        json: bool,
    },
    /// Build SOURCE into a release folder without deploying it
    Build {
        source: Option<PathBuf>,
        #[arg(short, long)]
        app: Option<String>,
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
    /// Add a git remote (default `shipway`) whose pushes to main/master deploy APP
    GitSetup {
        /// The app (default: the work tree's folder name)
        #[arg(short, long)]
        app: Option<String>,
        /// The name of the remote to add
        #[arg(short, long, default_value = "shipway")]
        remote: String,
        /// Replace a remote of that name that points elsewhere
        #[arg(long)]
        force: bool,
    },
    /// Show the git remote that deploys APP
    GitShow {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(short, long, default_value = "shipway")]
        remote: String,
    },
    /// Write the archive `scalingo deploy` takes (a .tar.gz with one top folder) from SOURCE
    Archive {
        /// A folder (default: .); in a git work tree, what `deploy` would take from it
        source: Option<PathBuf>,
        /// The app, which names the top folder (default: the source folder's name)
        #[arg(short, long)]
        app: Option<String>,
        /// Archive exactly this commit's tree (git archive)
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// The file to write (default: APP.tar.gz in the current folder)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The pre-receive hook of a `git-setup` repository: deploys what is pushed (internal)
    #[command(hide = true)]
    GitReceive {
        #[arg(short, long)]
        app: String,
        /// The remote's name in the user's repository, for advice
        #[arg(long, default_value = "shipway")]
        remote: String,
    },
    /// Run the platform (routers and containers) in the foreground; Ctrl-C stops it
    Up {
        /// Run it in the background
        #[arg(long)]
        detach: bool,
    },
    /// Stop the platform and every app process, gracefully
    Down,
    /// Create an app, so that its config vars (e.g. BUILDPACK_URL) can be set before the first deploy
    Create { app: String },
    /// Stop an app's containers and remove all its state
    Destroy {
        app: String,
        /// Confirm: everything of the app is deleted (config vars, releases, history, cache)
        #[arg(long)]
        force: bool,
    },
    /// The apps known, their current release, router URL and status
    Apps {
        #[arg(long)]
        json: bool,
    },
    /// The app's containers: name, status, command, PORT, pid, uptime, restarts
    Ps {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The containers' output, with timestamps and [web-1] prefixes
    Logs {
        #[arg(short, long)]
        app: Option<String>,
        /// How many lines (from the end)
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: usize,
        /// Keep printing new lines until Ctrl-C
        #[arg(short, long)]
        follow: bool,
        /// Only this process type (web) or container (web-1)
        #[arg(long)]
        filter: Option<String>,
    },
    /// Change how many containers of each type run: `web=2 worker=1` (or `web:2`)
    Scale {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(required = true, value_name = "TYPE=COUNT")]
        counts: Vec<String>,
    },
    /// Restart every container, a type (web) or one container (web-1), new ones first
    Restart {
        #[arg(short, long)]
        app: Option<String>,
        target: Option<String>,
    },
    /// The app's config vars
    Env {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One config var's value
    EnvGet {
        #[arg(short, long)]
        app: Option<String>,
        name: String,
    },
    /// Set config vars (restarts nothing: run `shipway restart` to apply them)
    EnvSet {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(value_name = "NAME=VALUE")]
        pairs: Vec<String>,
        /// Also read NAME=value lines from this .env file
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Remove config vars (restarts nothing)
    EnvUnset {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// The app's deployments: id, date, duration, git ref, status, image size
    Deployments {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The full output of a deployment (default: the last one)
    DeploymentLogs {
        #[arg(short, long)]
        app: Option<String>,
        id: Option<String>,
    },
    /// Delete the app's build cache (CACHE_DIR)
    DeploymentDeleteCache {
        #[arg(short, long)]
        app: Option<String>,
    },
    /// The buildpacks fetched by URL and kept for builds without the network
    Buildpacks {
        /// Remove them all (the next build fetches what it needs again)
        #[arg(long)]
        clear: bool,
        #[arg(long)]
        json: bool,
    },
    /// Roll out the release of an earlier successful deployment again, without building
    Rollback {
        #[arg(short, long)]
        app: Option<String>,
        /// A deployment id (default: the previous successful deployment)
        id: Option<String>,
    },
    /// Run a command in a one-off container of the current release, in this terminal
    Run {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// The scheduled jobs of the current release (cron.json): schedule, command, size, last and next run
    CronTasks {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a job of cron.json now, as the scheduler would: its number (1) or its command
    CronRun {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(value_name = "JOB")]
        job: String,
    },
    /// The platform itself when started by `up --detach` or `deploy` (internal)
    /// Provision an addon backed by a real server of this machine: postgresql, redis or
    /// mysql (its config vars are set and the app restarted)
    AddonsAdd {
        #[arg(short, long)]
        app: Option<String>,
        /// postgresql, redis or mysql
        addon: String,
        /// The platform's plan name (shown; its size is not enforced here)
        plan: Option<String>,
    },
    /// The app's addons, and whether their servers run
    Addons {
        #[arg(short, long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop an addon's server and delete its data (its config vars are unset and the
    /// app restarted)
    AddonsRemove {
        #[arg(short, long)]
        app: Option<String>,
        /// The addon's ID (`shipway addons`), or its kind
        id: String,
    },
    /// psql connected to the app's PostgreSQL addon
    PgsqlConsole {
        #[arg(short, long)]
        app: Option<String>,
    },
    /// redis-cli connected to the app's Redis addon
    RedisConsole {
        #[arg(short, long)]
        app: Option<String>,
    },
    /// The mysql client connected to the app's MySQL addon
    MysqlConsole {
        #[arg(short, long)]
        app: Option<String>,
    },
    #[command(hide = true)]
    Platform,
    /// Kills every app process group if the platform dies (internal)
    #[command(hide = true)]
    Watchdog,
}
