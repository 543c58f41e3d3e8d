//! Reading the files of an app that shipway reads itself (Procfile, `.buildpacks`,
//! `.slugignore`): only regular files, and only up to a bound. The app is the user's, so
//! any of them may be a FIFO (opening it blocks until a writer comes), a link to
//! `/dev/zero` (reading it never ends), or simply huge.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::io_error::IoError;

/// Real Procfiles, `.buildpacks` and `.slugignore` files are a few lines; a megabyte is a
/// thousand times the longest and still costs nothing to hold.
pub const APP_FILE_LIMIT: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AppFileError {
    #[error("{path} is a {kind}, not a regular file; shipway reads it, and a {kind} can block or never end: replace it with a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{path} is larger than {limit} bytes, far more than this file ever holds; is it the right file?"
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What a file type is, in words, for messages.
pub fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "folder"
    } else if file_type.is_file() {
        "regular file"
    } else if file_type.is_fifo() {
        "FIFO (named pipe)"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// The content of `path` (links followed), `None` when there is none. Anything but a
/// regular file, and a file over `limit` bytes, is an error; nothing here ever blocks.
pub fn read_app_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, AppFileError> {
    let io = |source| AppFileError::Io(IoError::new("read", path, source));
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    check_regular(path, meta.file_type())?;
    // O_NONBLOCK: should a FIFO have taken the file's place since the check, opening it
    // returns at once instead of waiting for a writer; the open file is checked again.
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    check_regular(path, file.metadata().map_err(io)?.file_type())?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(AppFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(Some(bytes))
}

fn check_regular(path: &Path, file_type: fs::FileType) -> Result<(), AppFileError> {
    if file_type.is_file() {
        return Ok(());
    }
    Err(AppFileError::NotRegular {
        path: path.to_path_buf(),
        kind: kind_of(file_type),
    })
}

#[cfg(test)]
mod tests {
    //! read_app_file: regular files only, bounded, never blocking.
    use super::*;

    #[test]
    fn reads_regular_files_and_refuses_the_rest_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("Procfile"), "web: x\n").unwrap();
        assert_eq!(
            read_app_file(&dir.join("Procfile"), 100).unwrap().unwrap(),
            b"web: x\n"
        );
        assert!(read_app_file(&dir.join("missing"), 100).unwrap().is_none());

        // A FIFO with no writer: opening it for reading would wait forever.
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
        std::os::unix::fs::symlink("fifo", dir.join("to-fifo")).unwrap();
        fs::create_dir(dir.join("folder")).unwrap();
        for (name, kind) in [
            ("fifo", "FIFO (named pipe)"),
            ("to-fifo", "FIFO (named pipe)"),
            ("zero", "character device"),
            ("folder", "folder"),
        ] {
            let err = read_app_file(&dir.join(name), 100).unwrap_err();
            assert!(
                matches!(&err, AppFileError::NotRegular { kind: k, .. } if *k == kind),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }

        fs::write(dir.join("big"), vec![b'a'; 101]).unwrap();
        assert!(matches!(
            read_app_file(&dir.join("big"), 100),
            Err(AppFileError::TooLarge { limit: 100, .. })
        ));
        fs::write(dir.join("exact"), vec![b'a'; 100]).unwrap();
        assert_eq!(
            read_app_file(&dir.join("exact"), 100).unwrap().unwrap().len(),
            100
        );
    }
}
