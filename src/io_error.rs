//! The one shape of a failed file or socket operation: what was being done, to which path,
//! and the system's error ("cannot write /home/u/.local/state/shipway/apps/a/app.toml:
//! No space left on device"). Every module's error enum carries it as its `Io` variant,
//! so the message reads the same from every step. It only describes a failure; deciding
//! what to do about one is the caller's.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct IoError {
    /// A verb phrase that reads before the path: "read", "create the folder".
    pub action: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> IoError {
        IoError {
            action,
            path: path.into(),
            source,
        }
    }

    /// A failure that is not the system's own error (a child's complaint, a parser's),
    /// in the same shape.
    pub fn other(action: &'static str, path: impl Into<PathBuf>, detail: impl std::fmt::Display) -> IoError {
        IoError::new(action, path, std::io::Error::other(detail.to_string()))
    }

    /// The system's error number, for the callers that tell one apart (EWOULDBLOCK...).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// For `map_err`: `fs::read(&path).map_err(io("read", &path))?`.
pub fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IoError + 'a {
    move |source| IoError::new(action, path, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_says_what_where_and_why() {
        let e =
            std::fs::read("/nonexistent/shipway/x").map_err(io("read", Path::new("/nonexistent/shipway/x")));
        let e = e.unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /nonexistent/shipway/x: No such file or directory (os error 2)"
        );
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(
            IoError::other("read the commit of", "/r", "git said no").to_string(),
            "cannot read the commit of /r: git said no"
        );
    }
}
