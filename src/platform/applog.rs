//! An app's log: every container's output, one line each with a timestamp and the
//! container's name (`2026-11-27T09:30:01.123Z [web-1] listening`), in `app.log`,
//! rotated to `app.log.1` past a size so it cannot grow without bound.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Past this size the log is rotated (one previous file is kept).
const ROTATE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct AppLog {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
}

impl AppLog {
    pub fn open(path: &Path) -> std::io::Result<AppLog> {
        let file = crate::state::open_private_log(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(AppLog {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                file,
                size,
            })),
        })
    }

    pub fn line(&self, prefix: &str, text: &str) {
        self.lines(prefix, &[text]);
    }

    /// Several lines with one time, in one write (the router logs' batches).
    pub fn lines(&self, prefix: &str, texts: &[impl AsRef<str>]) {
        if texts.is_empty() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        let now = timestamp();
        let mut line = String::new();
        for text in texts {
            line.push_str(&format!("{now} {prefix} {}\n", text.as_ref()));
        }
        if inner.size + line.len() as u64 > ROTATE_BYTES {
            let rotated = inner.path.with_extension("log.1");
            let _ = std::fs::rename(&inner.path, rotated);
            if let Ok(f) = crate::state::open_private_log(&inner.path) {
                inner.file = f;
                inner.size = 0;
            }
        }
        if inner.file.write_all(line.as_bytes()).is_ok() {
            inner.size += line.len() as u64;
        }
    }
}

/// Now, as `ui::utc` writes it.
pub fn timestamp() -> String {
    crate::ui::utc(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20"), "{t}");
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn the_log_is_rotated_past_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let log = AppLog::open(&path).unwrap();
        let line = "x".repeat(1024);
        for _ in 0..(ROTATE_BYTES / 1024 + 10) {
            log.line("[web-1]", &line);
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < ROTATE_BYTES / 2, "app.log was not rotated: {size} bytes");
        assert!(dir.path().join("app.log.1").exists());
    }

    #[test]
    fn lines_are_prefixed() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(&dir.path().join("app.log")).unwrap();
        log.line("[web-1]", "hello");
        let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
        assert!(text.ends_with(" [web-1] hello\n"), "{text}");
    }
}
