//! The reverse of archive intake: a folder packed as the `.tar.gz` the platform's archive
//! deployment takes (PLATFORM.md §1): one top folder, relative names, links kept as
//! links, and no more than the platform's 300 MB once unpacked.
//!
//! Entries are written in name order with fixed owners and times (tar's deterministic
//! mode), so the same source gives the same archive.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::copy::{walk_error, FileCount};
use super::{SourceError, ARCHIVE_LIMIT_BYTES};
use crate::io_error::IoError;

/// Pack the content of `dir` under the folder `top` into `out` (gzip tar). Fails before
/// writing anything when the files exceed the platform's limit. Returns what went in.
pub fn pack_tar_gz(dir: &Path, top: &str, out: &mut File) -> Result<FileCount, SourceError> {
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| walk_error(dir, e))?;
    let mut stats = FileCount::default();
    for entry in &entries {
        stats.add(entry)?;
    }
    if stats.bytes > ARCHIVE_LIMIT_BYTES {
        return Err(SourceError::ArchiveTooHeavy {
            archive: format!("the archive of {}", dir.display()),
            limit: ARCHIVE_LIMIT_BYTES,
            seen: stats.bytes,
        });
    }
    let label = |e: std::io::Error| SourceError::Io(IoError::new("write the archive of", dir, e));
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    for entry in &entries {
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let name = Path::new(top).join(rel);
        tar.append_path_with_name(entry.path(), &name).map_err(label)?;
    }
    let gz = tar.into_inner().map_err(label)?;
    let file = gz.finish().map_err(label)?;
    file.flush().map_err(label)?;
    Ok(stats)
}
