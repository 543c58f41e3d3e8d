//! A temporary folder beside a destination, where a tree is built before it is renamed
//! into place: the destination either appears whole or not at all.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};
use tempfile::TempDir;

use super::SourceError;
use crate::io_error::IoError;

/// Owns the temporary folder; dropping it (on any error) removes whatever was built.
pub(crate) struct Staging {
    dir: TempDir,
    dest: PathBuf,
}

impl Staging {
    /// Checks `dest` does not exist and its parent does, then creates the temporary folder
    /// in that parent, so that the final rename never crosses a filesystem.
    pub(crate) fn beside(dest: &Path) -> Result<Staging, SourceError> {
        if dest.symlink_metadata().is_ok() {
            return Err(SourceError::DestinationExists { path: dest.into() });
        }
        let parent = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(SourceError::DestinationParentMissing {
                path: dest.into(),
                parent: parent.into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix(".shipway-intake-")
            .tempdir_in(parent)
            .map_err(|e| SourceError::Io(IoError::new("create a temporary folder in", parent, e)))?;
        Ok(Staging {
            dir,
            dest: dest.into(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves `built` (inside the staging folder) to the destination, then removes the rest.
    pub(crate) fn finish(self, built: &Path) -> Result<(), SourceError> {
        rename_no_replace(built, &self.dest)?;
        // The staging folder may still hold what was left out (the rest of an archive when
        // PROJECT_DIR picked a subfolder): TempDir's drop removes it.
        drop(self.dir);
        Ok(())
    }
}

/// rename(2) silently replaces an empty folder; RENAME_NOREPLACE keeps a destination that
/// appeared since `beside` checked. Filesystems without the flag fall back to check-then-rename.
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), SourceError> {
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) | Err(Errno::ENOTEMPTY) => Err(SourceError::DestinationExists { path: to.into() }),
        Err(Errno::EINVAL) | Err(Errno::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Err(SourceError::DestinationExists { path: to.into() });
            }
            std::fs::rename(from, to)
                .map_err(|e| SourceError::Io(IoError::new("move the source into", to, e)))
        }
        Err(errno) => Err(SourceError::Io(IoError::new(
            "move the source into",
            to,
            std::io::Error::from(errno),
        ))),
    }
}

#[cfg(test)]
mod tests {
    //! Staging: the destination appears whole, never replaces anything, never half-filled.
    use super::*;

    #[test]
    fn refuses_existing_destination_and_missing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("app");
        std::fs::create_dir(&existing).unwrap();
        assert!(matches!(
            Staging::beside(&existing),
            Err(SourceError::DestinationExists { .. })
        ));
        assert!(matches!(
            Staging::beside(&tmp.path().join("missing/app")),
            Err(SourceError::DestinationParentMissing { .. })
        ));
    }

    #[test]
    fn finish_moves_and_cleans_up_and_never_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("app");
        let staging = Staging::beside(&dest).unwrap();
        let staging_path = staging.path().to_path_buf();
        let built = staging.path().join("tree");
        std::fs::create_dir(&built).unwrap();
        std::fs::write(built.join("f"), "x").unwrap();
        std::fs::create_dir(staging.path().join("leftover")).unwrap();
        // A folder that appears after the check must survive.
        std::fs::create_dir(&dest).unwrap();
        assert!(matches!(
            staging.finish(&built),
            Err(SourceError::DestinationExists { .. })
        ));
        assert!(!staging_path.exists());
        std::fs::remove_dir(&dest).unwrap();

        let staging = Staging::beside(&dest).unwrap();
        let staging_path = staging.path().to_path_buf();
        let built = staging.path().join("tree");
        std::fs::create_dir(&built).unwrap();
        std::fs::write(built.join("f"), "x").unwrap();
        staging.finish(&built).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "x");
        assert!(!staging_path.exists());
    }
}
