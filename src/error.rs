//! The errors a command ends with, and the one place they become exit statuses.
//! It names no step of the pipeline: a build's error comes in through `From` in
//! `build.rs`, already sorted into failed or cancelled, so that this module, which every
//! command and the platform use, depends on nothing above it.

use crate::config_vars::ConfigVarError;
use crate::io_error::IoError;
use crate::settings::SettingsError;
use crate::state::StateError;

/// `shipway deploy` exit statuses, one per failure status of the platform.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const ERROR: i32 = 1;
    /// A command line shipway cannot run (clap's usage errors have it too).
    pub const USAGE: i32 = 2;
    pub const BUILD_ERROR: i32 = 10;
    pub const CRASHED_ERROR: i32 = 11;
    pub const TIMEOUT_ERROR: i32 = 12;
    pub const HOOK_ERROR: i32 = 13;
    pub const ABORTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    ConfigVar(#[from] ConfigVarError),
    /// A build that failed (build-error) or was cancelled.
    #[error("{source}")]
    Build {
        source: Box<dyn std::error::Error + Send + Sync>,
        cancelled: bool,
    },
    #[error(transparent)]
    Stack(#[from] crate::stack::StackError),
    #[error(transparent)]
    GitRemote(#[from] crate::git_remote::GitRemoteError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{message}")]
    Platform { message: String },
}

impl Error {
    /// A failed file or socket operation, in the one shape (`io_error.rs`).
    pub fn io(action: &'static str, path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Error {
        Error::Io(IoError::new(action, path, source))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Build { cancelled: true, .. } => exit::ABORTED,
            Error::Build { .. } => exit::BUILD_ERROR,
            _ => exit::ERROR,
        }
    }
}
