//! `.slugignore`: files removed from the slug AFTER the build (PLATFORM.md §2). One
//! pattern a line, `#` comments, a leading `/` anchors the pattern to the app's root;
//! otherwise patterns follow .gitignore's rules, which the platform's docs point to.
//!
//! It removes files from a built app folder and nothing else.

use std::path::Path;

use ignore::gitignore::GitignoreBuilder;

use crate::io_error::{io, IoError};
use crate::source::{read_app_file, AppFileError, APP_FILE_LIMIT};

#[derive(Debug, thiserror::Error)]
pub enum SlugignoreError {
    #[error(".slugignore: {0}")]
    File(#[from] AppFileError),
    #[error(".slugignore line {line}: {message}")]
    Pattern { line: usize, message: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What was removed, for the build output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: Vec<String>,
}

/// Apply `<app>/.slugignore`, if present, to `app`.
pub fn apply(app: &Path) -> Result<Removed, SlugignoreError> {
    let text = match read_app_file(&app.join(".slugignore"), APP_FILE_LIMIT)? {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => return Ok(Removed::default()),
    };
    let mut builder = GitignoreBuilder::new(app);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        builder
            .add_line(None, line.trim())
            .map_err(|e| SlugignoreError::Pattern {
                line: i + 1,
                message: e.to_string(),
            })?;
    }
    let matcher = builder.build().map_err(|e| SlugignoreError::Pattern {
        line: 0,
        message: e.to_string(),
    })?;
    let mut removed = Removed::default();
    let mut walk = walkdir::WalkDir::new(app)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        let is_dir = entry.file_type().is_dir();
        if !matcher.matched(entry.path(), is_dir).is_ignore() {
            continue;
        }
        let rel = entry.path().strip_prefix(app).unwrap_or(entry.path());
        let result = if is_dir {
            walk.skip_current_dir();
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
        // Named from the app's root, as the user wrote it in .slugignore: the build folder's
        // own path means nothing to them.
        result.map_err(io("remove from the slug", rel))?;
        removed.entries.push(rel.display().to_string());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_matches_and_honours_the_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        for f in [
            "a.log",
            "keep.txt",
            "tmp-data/x",
            "sub/tmp-data/y",
            "docs/readme",
            "sub/b.log",
        ] {
            let p = app.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::write(app.join(".slugignore"), "# comment\n*.log\n/tmp-data\ndocs/\n").unwrap();
        let removed = apply(app).unwrap();
        assert!(!app.join("a.log").exists());
        assert!(!app.join("sub/b.log").exists());
        assert!(!app.join("tmp-data").exists());
        assert!(!app.join("docs").exists());
        assert!(
            app.join("sub/tmp-data/y").exists(),
            "anchored pattern must not match below the root"
        );
        assert!(app.join("keep.txt").exists());
        assert_eq!(removed.entries.len(), 4);
    }

    #[test]
    fn no_file_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), "x").unwrap();
        assert_eq!(apply(dir.path()).unwrap(), Removed::default());
        assert!(dir.path().join("a.log").exists());
    }
}
