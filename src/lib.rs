//! shipway: rehearse a Scalingo deployment (the Heroku classic buildpack API) on a
//! Linux laptop. Values flow one way: source -> build -> release -> rollout -> router.

pub mod build;
pub mod buildpack;
pub mod cli;
mod commands;
pub mod config_vars;
pub mod container;
pub mod deployment;
pub mod error;
pub mod git_remote;
pub mod platform;
pub mod probe;
pub mod process;
pub mod procfile;
pub mod release;
pub mod release_yaml;
pub mod rollout;
pub mod router;
pub mod settings;
pub mod signals;
pub mod slugignore;
pub mod source;
pub mod state;
pub mod ui;

/// Parse the command line, run the command, return the exit status.
pub fn run() -> i32 {
    use clap::Parser;
    commands::run(cli::Cli::parse())
}
