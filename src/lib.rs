//! shipway: rehearse a Scalingo deployment (the Heroku classic buildpack API) on a
//! Linux laptop. Values flow one way: source -> build -> release -> rollout -> router.

pub mod addon;
pub mod app_rename;
pub mod build;
pub mod buildpack;
pub mod buildpack_cache;
pub mod cgroup;
pub mod cli;
pub mod clock;
mod commands;
pub mod config_vars;
pub mod container;
pub mod cron;
pub mod deployment;
pub mod deployment_log;
pub mod error;
pub mod git_remote;
pub mod io_error;
pub mod listing;
pub mod manifest;
pub mod official;
pub mod pipeline;
pub mod platform;
pub mod platform_numbers;
pub mod probe;
pub mod process;
pub mod procfile;
pub mod release;
pub mod release_yaml;
pub mod rollout;
pub mod router;
pub mod sandbox;
pub mod settings;
mod shell;
mod shim;
pub mod signals;
pub mod slugignore;
pub mod source;
pub mod stack;
pub mod state;
pub mod tail;
pub mod ui;
pub mod units;

/// Parse the command line, run the command, return the exit status.
pub fn run() -> i32 {
    // The shim sits in front of every child: it reads no settings and parses no flags,
    // so that it costs a container's start as little as possible.
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(a) if a == "shim" => return shim::main(args.collect()),
        Some(a) if a == "as-user" => return addon::as_user_main(args.collect()),
        _ => {}
    }
    commands::complete::answer_the_shell();
    commands::main(std::env::args_os().skip(1).collect())
}
