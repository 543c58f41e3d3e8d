//! The git commands intake needs: is this folder in a work tree, which files would a push
//! carry, which commit does a ref name, and that commit's tree as a tar stream. Every call
//! runs `git` with the folder as its working directory and an environment cleared of the
//! variables that would point it at another repository.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use super::archive::{unpack_tar, ArchiveStats, Links};
use super::SourceError;

/// Variables that redirect git to another repository or index: set when shipway runs from
/// a git hook, and then every command below would read the wrong tree.
const REPOSITORY_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

/// The commit a work tree stands on.
pub(crate) struct WorkTree {
    /// HEAD's full SHA; None before the first commit.
    pub(crate) head: Option<String>,
    /// The branch checked out; None on a detached HEAD.
    pub(crate) branch: Option<String>,
}

fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command.current_dir(dir).stdin(Stdio::null());
    for name in REPOSITORY_VARIABLES {
        command.env_remove(name);
    }
    // Messages are matched below ("not a git repository"): keep them in English.
    command.env("LC_ALL", "C");
    command
}

fn run(dir: &Path, args: &[&str]) -> Result<Output, SourceError> {
    git(dir)
        .args(args)
        .output()
        .map_err(|source| SourceError::GitMissing {
            path: dir.into(),
            source,
        })
}

fn failed(dir: &Path, args: &[&str], output: &Output) -> SourceError {
    SourceError::GitFailed {
        command: format!("git {}", args.join(" ")),
        dir: dir.into(),
        status: describe_status(output.status),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    }
}

fn stdout_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Whether a failed `git rev-parse` failed because the folder is in no repository. Only
/// that message counts: anything else ("detected dubious ownership") must not be taken for
/// "no repository", or the whole folder, ignored files included, would be deployed.
fn not_a_repository(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("not a git repository")
}

/// Whether `dir` is a git repository (a work tree, or a bare repository).
fn is_repository(dir: &Path) -> Result<bool, SourceError> {
    let args = ["rev-parse", "--git-dir"];
    let output = run(dir, &args)?;
    if output.status.success() {
        return Ok(true);
    }
    if not_a_repository(&output) {
        return Ok(false);
    }
    Err(failed(dir, &args, &output))
}

/// The work tree holding `dir`, or None when `dir` is not inside one. Without git, a
/// folder under a `.git` cannot be read the way a push would, so that is an error.
pub(crate) fn work_tree(dir: &Path) -> Result<Option<WorkTree>, SourceError> {
    let args = ["rev-parse", "--is-inside-work-tree"];
    let output = match git(dir).args(args).output() {
        Ok(output) => output,
        Err(source) if dir.ancestors().any(|a| a.join(".git").exists()) => {
            return Err(SourceError::GitMissing {
                path: dir.into(),
                source,
            })
        }
        Err(_) => return Ok(None),
    };
    if !output.status.success() {
        // Outside any repository, the common case of a plain folder: told from the same run.
        if not_a_repository(&output) {
            return Ok(None);
        }
        return Err(failed(dir, &args, &output));
    }
    // "false" inside `.git` itself or in a bare repository: not a work tree.
    if stdout_line(&output) != "true" {
        return Ok(None);
    }
    let head = run(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    let branch = run(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    Ok(Some(WorkTree {
        head: head.status.success().then(|| stdout_line(&head)),
        branch: branch.status.success().then(|| stdout_line(&branch)),
    }))
}

/// What `git push` would carry from `dir` plus the working changes: tracked and untracked
/// files that are not ignored, relative to `dir`. Tracked files deleted in the work tree
/// are listed too; the caller skips what is gone.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"];
    let output = run(dir, &args)?;
    if !output.status.success() {
        return Err(failed(dir, &args, &output));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for name in output.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let path = PathBuf::from(OsStr::from_bytes(name));
        // A file in conflict is listed once per stage, one after the other.
        if files.last() != Some(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Whether `dir` holds changes not in HEAD: modified, staged, deleted or untracked files.
pub(crate) fn has_changes(dir: &Path) -> Result<bool, SourceError> {
    let args = [
        "status",
        "--porcelain",
        "-z",
        "--untracked-files=normal",
        "--",
        ".",
    ];
    let output = run(dir, &args)?;
    if !output.status.success() {
        return Err(failed(dir, &args, &output));
    }
    Ok(!output.stdout.is_empty())
}

/// The full SHA of the commit `git_ref` names in the repository holding `dir`.
pub(crate) fn resolve_commit(dir: &Path, git_ref: &str) -> Result<String, SourceError> {
    if !is_repository(dir)? {
        return Err(SourceError::NotAGitRepository {
            path: dir.into(),
            git_ref: git_ref.into(),
        });
    }
    let spec = format!("{git_ref}^{{commit}}");
    // --end-of-options: a ref such as `--output=x` is a name, never an option.
    let output = run(
        dir,
        &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec],
    )?;
    if !output.status.success() {
        return Err(SourceError::UnknownRef {
            git_ref: git_ref.into(),
            repo: dir.into(),
        });
    }
    Ok(stdout_line(&output))
}

/// Extracts the tree of `commit` into `into` (created here) through the safe extractor.
/// Run in a subfolder, git archives that subfolder only, as `ls-files` lists it. The links
/// are returned unchecked, for the caller to check against what becomes the app.
pub(crate) fn extract_commit(
    dir: &Path,
    commit: &str,
    into: &Path,
) -> Result<(ArchiveStats, Links), SourceError> {
    let args = ["archive", "--format=tar", commit];
    let mut child = git(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SourceError::GitMissing {
            path: dir.into(),
            source,
        })?;
    // Drained on its own thread: a full stderr pipe would block git, and the tar reader
    // with it.
    let mut stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = stderr.read_to_end(&mut text);
        }
        text
    });
    let label = format!("`git archive {commit}` in {}", dir.display());
    let mut stdout = child.stdout.take();
    let unpacked = match stdout.as_mut() {
        Some(stdout) => unpack_tar(stdout, into, &label, u64::MAX),
        None => Err(SourceError::io(
            "read the output of git archive in",
            dir,
            std::io::Error::other("no pipe"),
        )),
    };
    if unpacked.is_err() {
        // git may be blocked writing the rest: stop it, its status means nothing now.
        let _ = child.kill();
    } else if let Some(stdout) = stdout.as_mut() {
        let _ = std::io::copy(stdout, &mut std::io::sink());
    }
    drop(stdout);
    let status = child
        .wait()
        .map_err(|e| SourceError::io("wait for git archive in", dir, e))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    let unpacked = unpacked?;
    if !status.success() {
        return Err(failed(
            dir,
            &args,
            &Output {
                status,
                stdout: Vec::new(),
                stderr,
            },
        ));
    }
    Ok(unpacked)
}

/// "exited with code 3", "killed by SIGKILL": how an exit status reads everywhere.
fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => match nix::sys::signal::Signal::try_from(signal) {
            Ok(name) => format!("killed by {}", name.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        (None, None) => "ended".to_string(),
    }
}
