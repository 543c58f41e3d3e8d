//! The one error type of source intake: every way taking an app's files can fail, each
//! variant carrying what the user needs to fix it (the path, the entry, the git command).

use crate::io_error::IoError;
use std::io;
use std::path::PathBuf;

/// Why the source could not be taken. Messages are lowercase fragments that say what is
/// wrong and what to do; the caller adds the step ("cannot take the source: ...").
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {path} does not exist; give a folder, a .tar.gz/.tgz archive or a .war/.jar file")]
    InputNotFound { path: PathBuf },

    #[error("source {path} is a {kind}; a source must be a folder or a regular file (a .tar.gz/.tgz archive, a .war/.jar)")]
    NotFileOrFolder { path: PathBuf, kind: &'static str },

    #[error("source {url} is a remote address and shipway works offline; download it (`curl -LO {url}`) or clone it (`git clone {url}`) first, then deploy the local file or folder")]
    RemoteInput { url: String },

    #[error("source {path} is neither a folder, a .tar.gz/.tgz archive nor a .war/.jar file; a plain .tar or .zip must be repacked with `tar -czf app.tar.gz app/`")]
    UnsupportedInput { path: PathBuf },

    #[error(
        "destination {path} already exists; shipway only fills a new folder, remove it or choose another"
    )]
    DestinationExists { path: PathBuf },

    #[error("destination {path} is not an empty folder; copy into a new or empty folder")]
    DestinationNotEmpty { path: PathBuf },

    #[error("the folder meant to hold {path} does not exist; create {parent} first")]
    DestinationParentMissing { path: PathBuf, parent: PathBuf },

    #[error(transparent)]
    Io(#[from] IoError),

    #[error("{path} is ignored by git ({rule}): `git push` would carry none of its {files} files, so nothing is taken; un-ignore it (`git check-ignore -v {path}` names the rule), or track its files with `git add -f`")]
    IgnoredByGit { path: PathBuf, rule: String, files: u64 },

    #[error("git is needed to read {path} but cannot be run ({source}); install git, or deploy an archive instead")]
    GitMissing { path: PathBuf, source: io::Error },

    #[error("--ref {git_ref} needs a git repository, and {path} is not inside one; drop --ref to deploy the files as they are")]
    NotAGitRepository { path: PathBuf, git_ref: String },

    #[error("unknown git ref `{git_ref}` in {repo}; list branches and tags with `git -C {repo} show-ref` and recent commits with `git -C {repo} log --oneline`", repo = .repo.display())]
    UnknownRef { git_ref: String, repo: PathBuf },

    #[error("`{command}` in {dir} {status}: {stderr}")]
    GitFailed {
        command: String,
        dir: PathBuf,
        status: String,
        stderr: String,
    },

    #[error("cannot read {archive}: {source}; is it a complete gzip-compressed tar? `gzip -t` tells")]
    ArchiveCorrupt { archive: String, source: io::Error },

    #[error("{archive}: entry `{entry}` has an absolute path, which would write outside the app folder; repack it with relative names (`tar -czf app.tar.gz app/`)")]
    ArchiveAbsolutePath { archive: String, entry: String },

    #[error("{archive}: entry `{entry}` contains `..`, which would write outside the app folder; repack it from the app's parent folder")]
    ArchiveParentComponent { archive: String, entry: String },

    #[error("{archive}: {kind} link `{entry}` points to `{target}`, outside the app folder; links in an archive must stay inside it")]
    ArchiveLinkOutside {
        archive: String,
        entry: String,
        target: String,
        kind: &'static str,
    },

    #[error("{archive}: hard link `{entry}` points to `{target}`, which is not a file earlier in the archive; repack it")]
    ArchiveHardLinkMissing {
        archive: String,
        entry: String,
        target: String,
    },

    #[error("{archive}: entry `{entry}` would be written through `{existing}`, which the archive made a file or a symbolic link, not a folder; repack it")]
    ArchiveEntryConflict {
        archive: String,
        entry: String,
        existing: String,
    },

    #[error("{archive}: entry `{entry}` is a {kind}, which an app cannot ship; remove it and repack")]
    ArchiveSpecialFile {
        archive: String,
        entry: String,
        kind: String,
    },

    /// The capitalised opening is the platform's own message, kept word for word so that
    /// what users search for matches (PLATFORM.md §1).
    #[error("The archive is too heavy (more than {limit} bytes): {archive} unpacks to at least {seen} bytes; leave build outputs and dependencies out of it")]
    ArchiveTooHeavy { archive: String, limit: u64, seen: u64 },

    #[error("{archive} must hold a single folder at its root (that folder is the app), but its root holds {}; repack it with `tar -czf app.tar.gz app/`", describe_root(.root))]
    ArchiveNotSingleFolder { archive: String, root: Vec<String> },

    #[error("PROJECT_DIR `{project_dir}` must name a folder inside the source, without `..`")]
    ProjectDirInvalid { project_dir: String },

    #[error("PROJECT_DIR `{project_dir}` does not exist in {origin}; fix the config var or add the folder")]
    ProjectDirMissing { project_dir: String, origin: String },

    #[error("PROJECT_DIR `{project_dir}` must be a folder, but `{path}` in {origin} is a {kind}")]
    ProjectDirNotFolder {
        project_dir: String,
        path: String,
        origin: String,
        kind: &'static str,
    },
}

/// At most a dozen names: an archive of a whole home folder must not flood the terminal.
fn describe_root(root: &[String]) -> String {
    const SHOWN: usize = 12;
    match root.len() {
        0 => "nothing".to_string(),
        n if n <= SHOWN => root.join(", "),
        n => format!("{} and {} more", root[..SHOWN].join(", "), n - SHOWN),
    }
}
