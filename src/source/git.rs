//! The git commands intake needs: is this folder in a work tree, which files would a push
//! carry, which commit does a ref name, and that commit's tree as a tar stream. Every call
//! runs `git` with the folder as its working directory and an environment cleared of the
//! variables that would point it at another repository.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::archive::{unpack_tar, ArchiveStats, Links};
use super::SourceError;
use crate::io_error::IoError;
use crate::process::{Exit, ProcessError, Spawn};

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

/// How long one git command on a local repository may take before it is stopped (one
/// waiting on a lock, say), and how much it may print.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);
const GIT_OUTPUT_LIMIT: usize = 256 * 1024 * 1024;

fn git(dir: &Path, args: &[&str]) -> Spawn {
    // Messages are matched below ("not a git repository"): host_env keeps them in English.
    Spawn::new("git", dir)
        .args(args)
        .host_env(|name| REPOSITORY_VARIABLES.contains(&name), &[])
}

fn run(dir: &Path, args: &[&str]) -> Result<Output, SourceError> {
    git(dir, args)
        .output(GIT_OUTPUT_LIMIT, GIT_TIMEOUT, None)
        .map_err(|e| stopped(dir, args, e))
}

/// A git that could not be run, or was stopped.
fn stopped(dir: &Path, args: &[&str], error: ProcessError) -> SourceError {
    match error {
        ProcessError::Spawn { source, .. } => SourceError::GitMissing {
            path: dir.into(),
            source,
        },
        other => SourceError::GitFailed {
            command: format!("git {}", args.join(" ")),
            dir: dir.into(),
            status: "was stopped".into(),
            stderr: other.to_string(),
        },
    }
}

fn failed(dir: &Path, args: &[&str], output: &Output) -> SourceError {
    SourceError::GitFailed {
        command: format!("git {}", args.join(" ")),
        dir: dir.into(),
        status: Exit(output.status).to_string(),
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

/// Whether a `.git` stands in `dir` or above it. A work tree has one (a folder, or a file
/// naming one) at its top, and the variables that could point git elsewhere are cleared:
/// with none, git need not be asked, nor even be installed.
pub(crate) fn under_git(dir: &Path) -> bool {
    let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    abs.ancestors().any(|a| a.join(".git").exists())
}

/// The work tree holding `dir`, or None when `dir` is not inside one. Without git, a
/// folder under a `.git` cannot be read the way a push would, so that is an error.
pub(crate) fn work_tree(dir: &Path) -> Result<Option<WorkTree>, SourceError> {
    if !under_git(dir) {
        return Ok(None);
    }
    let args = ["rev-parse", "--is-inside-work-tree"];
    let output = run(dir, &args)?;
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

/// Files under a source folder that git ignores and that are not tracked: a push would
/// not carry them, so intake leaves them out, and says so with the rules that did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Files left out (those inside ignored folders counted one by one).
    pub files: u64,
    /// Whether the source folder itself is ignored (then nothing untracked is taken).
    pub whole: bool,
    /// The rules that apply, as `git check-ignore -v` names them, each with one path it
    /// ignores (relative to the source folder); at most [`RULES_SHOWN`].
    pub rules: Vec<(String, PathBuf)>,
}

impl Ignored {
    /// One line for the build output: how many files, and by which rules.
    pub fn describe(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|(rule, path)| format!("{rule} ignores {}", path.display()))
            .collect();
        format!(
            "left out {} file{} that git ignores, as `git push` would ({}{})",
            self.files,
            if self.files == 1 { "" } else { "s" },
            rules.join("; "),
            if rules.len() == RULES_SHOWN { "; ..." } else { "" }
        )
    }
}

/// How many ignore rules a report names.
pub const RULES_SHOWN: usize = 3;
/// How many ignored paths are asked about to find them.
const PATHS_ASKED: usize = 64;

/// What git ignores under `dir`, or None when it ignores nothing there. `taken`: how
/// many files the caller takes (tracked or not ignored).
pub(crate) fn ignored(dir: &Path, taken: usize) -> Result<Option<Ignored>, SourceError> {
    let args = [
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--directory",
    ];
    let output = if taken == 0 { None } else { Some(run(dir, &args)?) };
    let output = match output {
        Some(o) if o.status.success() => o,
        // Nothing taken, or `ls-files --directory` failed, as it does inside an ignored
        // folder: ask about the folder itself.
        failed_run => {
            let rules = rules(dir, &[PathBuf::from(".")])?;
            if rules.is_empty() {
                return match failed_run {
                    Some(o) => Err(failed(dir, &args, &o)),
                    None => Ok(None),
                };
            }
            let all = super::count_files_except_git(dir)?;
            let rules = rules
                .into_iter()
                .map(|(rule, _)| (rule, PathBuf::from(".")))
                .collect();
            return Ok(Some(Ignored {
                files: all.saturating_sub(taken as u64),
                whole: true,
                rules,
            }));
        }
    };
    let entries: Vec<PathBuf> = output
        .stdout
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| PathBuf::from(OsStr::from_bytes(n)))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let mut files = 0;
    for entry in &entries {
        let path = dir.join(entry);
        files += if path.is_dir() {
            super::count_files_except_git(&path)?
        } else {
            1
        };
    }
    let asked: Vec<PathBuf> = entries.iter().take(PATHS_ASKED).cloned().collect();
    Ok(Some(Ignored {
        files,
        whole: false,
        rules: rules(dir, &asked)?,
    }))
}

/// `git check-ignore -v` of `paths` in `dir`: each distinct rule (`.gitignore:3:dist/`)
/// with the first path it ignores, at most RULES_SHOWN.
fn rules(dir: &Path, paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, SourceError> {
    let mut args: Vec<&str> = vec!["check-ignore", "-v", "--"];
    let names: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    args.extend(names.iter().map(String::as_str));
    let output = run(dir, &args)?;
    // 1: none of them is ignored.
    if !output.status.success() && output.status.code() != Some(1) {
        return Err(failed(dir, &args, &output));
    }
    // `<source>:<line>:<pattern>` TAB `<path>` (`-z` needs `--stdin`, which Spawn does
    // not feed; a path git quotes is shown quoted).
    let mut rules: Vec<(String, PathBuf)> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((rule, path)) = line.split_once('\t') else {
            continue;
        };
        if rules.len() < RULES_SHOWN && !rules.iter().any(|(r, _)| r == rule) {
            rules.push((rule.to_string(), PathBuf::from(path)));
        }
    }
    Ok(rules)
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
    let args = ["archive", "--format=tar", "--end-of-options", commit];
    let mut git = git(dir, &args)
        .read_stdout()
        .map_err(|e| stopped(dir, &args, e))?;
    let label = format!("`git archive {commit}` in {}", dir.display());
    let mut stdout = git.stdout.take();
    let unpacked = match stdout.as_mut() {
        Some(stdout) => unpack_tar(stdout, into, &label, u64::MAX),
        None => Err(SourceError::Io(IoError::new(
            "read the output of git archive in",
            dir,
            std::io::Error::other("no pipe"),
        ))),
    };
    if unpacked.is_err() {
        // git may be blocked writing the rest: stop it, its status means nothing now.
        drop(stdout);
        git.child.stop(Signal::SIGKILL, Duration::ZERO);
        return unpacked;
    }
    if let Some(stdout) = stdout.as_mut() {
        let _ = std::io::copy(stdout, &mut std::io::sink());
    }
    drop(stdout);
    let never = crossbeam_channel::never();
    let status = git.child.wait_until(GIT_TIMEOUT, &never).map_err(|_| {
        stopped(
            dir,
            &args,
            ProcessError::TimedOut {
                program: "git".into(),
                limit: GIT_TIMEOUT,
            },
        )
    })?;
    git.child.reap_group(Duration::from_secs(1));
    let unpacked = unpacked?;
    if !status.success() {
        return Err(failed(
            dir,
            &args,
            &Output {
                status: status.0,
                stdout: Vec::new(),
                stderr: git.stderr(),
            },
        ));
    }
    Ok(unpacked)
}
