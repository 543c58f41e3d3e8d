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
        /// A folder (default: .) or a .tar.gz/.tgz archive with one top folder
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
    /// Run the platform (routers and containers) in the foreground; Ctrl-C stops it
    Up {
        /// Run it in the background
        #[arg(long)]
        detach: bool,
    },
    /// Stop the platform and every app process, gracefully
    Down,
    /// The platform itself when started by `up --detach` or `deploy` (internal)
    #[command(hide = true)]
    Platform,
    /// Kills every app process group if the platform dies (internal)
    #[command(hide = true)]
    Watchdog,
}
