//! The errors a command ends with, and the one place they become exit statuses.

use crate::build::BuildError;
use crate::config_vars::ConfigVarError;
use crate::settings::SettingsError;
use crate::state::StateError;

/// `shipway deploy` exit statuses, one per failure status of the platform.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const ERROR: i32 = 1;
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
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    GitRemote(#[from] crate::git_remote::GitRemoteError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{message}")]
    Platform { message: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Build(e) if e.was_cancelled() => exit::ABORTED,
            Error::Build(_) => exit::BUILD_ERROR,
            _ => exit::ERROR,
        }
    }
}
