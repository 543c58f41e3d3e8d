//! The `git push` trigger (PLATFORM.md §1): each app's bare repository in
//! `SHIPWAY_HOME`, the `pre-receive` hook that deploys what is pushed to it, and the
//! rules a push must follow (main or master only, no shallow history, no deletion).
//!
//! It prepares and judges pushes; deploying is the platform's, through the client. The
//! hook runs before git updates the ref, so a failed deployment refuses the push and the
//! remote never claims a commit that is not deployed.
//!
//! Why a view repository: during `pre-receive` the pushed objects are still in git's
//! quarantine folder, visible only to processes given `GIT_OBJECT_DIRECTORY`. The
//! platform runs in another process with a clean environment, so the hook lends it a
//! small bare repository whose `objects/info/alternates` lists the quarantine and the
//! app's repository: a plain `git archive` there sees the pushed commit.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::io_error::{io, IoError};
use crate::process::{Exit, ProcessError, Spawn};
use crate::shell::{single_quoted, unquoted};
use crate::state::AppDir;

/// An all-zero SHA: the old value of a ref being created, the new one of a deletion.
const ZERO: &str = "0000000000000000000000000000000000000000";

/// The branches a push deploys, as on the platform.
pub const DEPLOYED_BRANCHES: &[&str] = &["main", "master"];

#[derive(Debug, thiserror::Error)]
pub enum GitRemoteError {
    #[error("git cannot be run ({source}); install git")]
    GitMissing { source: std::io::Error },
    #[error("`git {command}` in {dir} {status}: {stderr}")]
    GitFailed {
        command: String,
        dir: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{dir} is not in a git work tree; run `shipway git-setup` in your app's repository (`git init` makes one)")]
    NotAWorkTree { dir: PathBuf },
    #[error("the remote `{remote}` already points to {url}; add --force to point it at {wanted}, or choose another name with --remote")]
    RemoteTaken {
        remote: String,
        url: String,
        wanted: PathBuf,
    },
    #[error("this repository has no remote named `{remote}`; `shipway git-setup` adds it")]
    NoRemote { remote: String },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("git gave the hook a line it does not understand: {line:?}")]
    BadHookInput { line: String },
}

/// `git` in `dir`, with no variable of a hook's environment pointing it elsewhere.
fn git(dir: &Path, args: &[&str]) -> Spawn {
    Spawn::new("git", dir)
        .args(args)
        .host_env(|name| name.starts_with("GIT_"), &[])
}

/// How long one git command may take, and how much it may print: these only read a
/// few refs and paths of local repositories.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);
const GIT_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

fn run(dir: &Path, args: &[&str]) -> Result<Output, GitRemoteError> {
    git(dir, args)
        .output(GIT_OUTPUT_LIMIT, GIT_TIMEOUT, None)
        .map_err(|e| match e {
            ProcessError::Spawn { source, .. } => GitRemoteError::GitMissing { source },
            other => GitRemoteError::GitFailed {
                command: args.join(" "),
                dir: dir.to_path_buf(),
                status: "was stopped".into(),
                stderr: other.to_string(),
            },
        })
}

fn run_ok(dir: &Path, args: &[&str]) -> Result<String, GitRemoteError> {
    let output = run(dir, args)?;
    if !output.status.success() {
        return Err(GitRemoteError::GitFailed {
            command: args.join(" "),
            dir: dir.to_path_buf(),
            status: Exit(output.status).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The app's bare repository, the one its remote points at.
pub fn repository(app: &AppDir) -> PathBuf {
    app.root.join("repo.git")
}

/// The top folder of the work tree holding `dir`.
pub fn work_tree_top(dir: &Path) -> Result<PathBuf, GitRemoteError> {
    let output = run(dir, &["rev-parse", "--show-toplevel"])?;
    let top = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || top.is_empty() {
        return Err(GitRemoteError::NotAWorkTree {
            dir: dir.to_path_buf(),
        });
    }
    Ok(PathBuf::from(top))
}

/// The URL of `remote` in the repository holding `dir`, if it has one.
pub fn remote_url(dir: &Path, remote: &str) -> Result<Option<String>, GitRemoteError> {
    let output = run(dir, &["remote", "get-url", "--", remote])?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
}

/// The app a remote made by `setup` deploys, read from its URL (`.../apps/<app>/repo.git`,
/// the layout of [`repository`]), as the Scalingo CLI reads `<app>.git` from its remote.
/// Any other URL names no app.
pub fn app_of_url(url: &str) -> Option<String> {
    let path = Path::new(url.trim_end_matches('/'));
    if path.file_name()? != "repo.git" {
        return None;
    }
    let app = path.parent()?;
    if app.parent()?.file_name()? != "apps" {
        return None;
    }
    app.file_name()?.to_str().map(String::from)
}

/// The app that `remote` (or `shipway-<remote>`, as the Scalingo CLI also tries
/// `scalingo-<remote>`) of the work tree holding `dir` deploys, with the remote's name.
/// `None` outside a work tree, without such a remote, or when its URL is not shipway's.
pub fn app_of_remote(dir: &Path, remote: &str) -> Option<(String, String)> {
    // Outside any work tree (the common case of `ps` in some folder): no git to ask.
    if !crate::source::under_git(dir) {
        return None;
    }
    [remote.to_string(), format!("shipway-{remote}")]
        .into_iter()
        .find_map(|name| {
            let url = remote_url(dir, &name).ok()??;
            Some((app_of_url(&url)?, name))
        })
}

/// What `setup` did with the remote.
#[derive(Debug, PartialEq, Eq)]
pub enum RemoteChange {
    Added,
    Unchanged,
    Replaced { previous: String },
}

/// Create (or update) the app's bare repository and its hook, and point `remote` of the
/// work tree at `top` to it. The hook calls `exe` with `home` as SHIPWAY_HOME.
pub fn setup(
    top: &Path,
    app: &AppDir,
    remote: &str,
    force: bool,
    exe: &Path,
    home: &Path,
) -> Result<RemoteChange, GitRemoteError> {
    let repo = repository(app);
    let existing = remote_url(top, remote)?;
    if let Some(url) = &existing {
        if Path::new(url) != repo && !force {
            return Err(GitRemoteError::RemoteTaken {
                remote: remote.into(),
                url: url.clone(),
                wanted: repo,
            });
        }
    }
    if !repo.join("HEAD").exists() {
        let path = repo.to_string_lossy().into_owned();
        run_ok(
            app.root.as_path(),
            &["init", "--quiet", "--bare", "--initial-branch=main", &path],
        )?;
        // git creates it after the umask (0775 under a umask of 002): shipway refuses
        // folders others may write in its home, so it keeps its own private.
        std::fs::set_permissions(&repo, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io("protect", &repo))?;
    }
    // Shallow pushes are let in as far as the hook, which refuses them with the platform's
    // advice; git's own refusal would say only "shallow update not allowed".
    run_ok(&repo, &["config", "receive.shallowUpdate", "true"])?;
    write_hook(&repo, &app.name, remote, exe, home)?;
    let wanted = repo.to_string_lossy().into_owned();
    Ok(match existing {
        None => {
            run_ok(top, &["remote", "add", "--", remote, &wanted])?;
            RemoteChange::Added
        }
        Some(url) if Path::new(&url) == repo => RemoteChange::Unchanged,
        Some(previous) => {
            run_ok(top, &["remote", "set-url", "--", remote, &wanted])?;
            RemoteChange::Replaced { previous }
        }
    })
}

/// The hook of the app's repository rewritten for the app's (new) name, the remote it was
/// set up for kept: the repository moved with the app's folder when it was renamed.
/// Nothing to do for an app that has no repository.
pub fn retarget_hook(app: &AppDir, exe: &Path, home: &Path) -> Result<(), GitRemoteError> {
    let repo = repository(app);
    let hook = repo.join("hooks").join("pre-receive");
    let Ok(text) = std::fs::read_to_string(&hook) else {
        return Ok(());
    };
    let remote = text
        .rsplit_once(" --remote ")
        .and_then(|(_, quoted)| unquoted(quoted.trim_end()))
        .unwrap_or_else(|| "shipway".to_string());
    write_hook(&repo, &app.name, &remote, exe, home)
}

fn write_hook(repo: &Path, app: &str, remote: &str, exe: &Path, home: &Path) -> Result<(), GitRemoteError> {
    let exe = exe.to_string_lossy();
    let script = format!(
        "#!/bin/sh\n\
         # Written by `shipway git-setup`: a push to main or master deploys the app {app}, and\n\
         # the push is refused when the deployment fails. `shipway git-setup` rewrites it.\n\
         SHIPWAY_HOME={home}\n\
         export SHIPWAY_HOME\n\
         shipway={exe}\n\
         if [ ! -x \"$shipway\" ]; then\n\
         \x20 echo \" !     $shipway is gone: run \\`shipway git-setup -a {app}\\` again in your repository\"\n\
         \x20 exit 1\n\
         fi\n\
         exec \"$shipway\" git-receive --app {app_q} --remote {remote_q}\n",
        home = single_quoted(&home.to_string_lossy()),
        exe = single_quoted(&exe),
        app_q = single_quoted(app),
        remote_q = single_quoted(remote),
    );
    let hooks = repo.join("hooks");
    std::fs::create_dir_all(&hooks).map_err(io("create", &hooks))?;
    let hook = hooks.join("pre-receive");
    let tmp = hooks.join(".pre-receive.tmp");
    std::fs::write(&tmp, script).map_err(io("write", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(io("write", &tmp))?;
    Ok(std::fs::rename(&tmp, &hook).map_err(io("write", &hook))?)
}

/// One line of the hook's input: a ref git is about to update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl RefUpdate {
    pub fn parse(line: &str) -> Result<RefUpdate, GitRemoteError> {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(old), Some(new), Some(name), None) => Ok(RefUpdate {
                old: old.into(),
                new: new.into(),
                name: name.into(),
            }),
            _ => Err(GitRemoteError::BadHookInput { line: line.into() }),
        }
    }

    /// The branch name, for `refs/heads/<branch>`.
    pub fn branch(&self) -> Option<&str> {
        self.name.strip_prefix("refs/heads/")
    }

    /// The ref's old commit; None when the push creates it.
    pub fn previous(&self) -> Option<&str> {
        (self.old != ZERO).then_some(self.old.as_str())
    }
}

/// Why a push is refused before anything is built. Each message is what the user reads
/// as `remote:` lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Pushing to `{name}` does not deploy: only the main and master branches are deployed.\nTo deploy it: git push {remote} {short}:main")]
    NotDeployedBranch {
        name: String,
        short: String,
        remote: String,
    },
    #[error("Deleting the branch {branch} is refused: it holds the deployed commit.\nThe app keeps serving its release; `shipway down` stops every app.")]
    Deletion { branch: String },
    /// Word for word what the platform (and Heroku) answers.
    #[error("Push rejected, source repository is a shallow clone. Unshallow it with `git fetch --all --unshallow` and try pushing again.")]
    Shallow,
}

/// Check every update of a push; the first refusal refuses all of it (git applies a
/// push whole or not at all once `pre-receive` fails).
pub fn judge(updates: &[RefUpdate], shallow: bool, remote: &str) -> Result<(), Refusal> {
    for update in updates {
        match update.branch() {
            Some(branch) if DEPLOYED_BRANCHES.contains(&branch) => {
                if update.new == ZERO {
                    return Err(Refusal::Deletion {
                        branch: branch.into(),
                    });
                }
            }
            _ => {
                let short = update
                    .name
                    .strip_prefix("refs/heads/")
                    .or_else(|| update.name.strip_prefix("refs/tags/"))
                    .unwrap_or(&update.name);
                return Err(Refusal::NotDeployedBranch {
                    name: update.name.clone(),
                    short: short.into(),
                    remote: remote.into(),
                });
            }
        }
    }
    if shallow {
        return Err(Refusal::Shallow);
    }
    Ok(())
}

/// Whether git would make the repository shallow to accept this push: it then names a
/// temporary shallow file for the hook (GIT_SHALLOW_FILE), listing the pushed history's
/// cut-off commits.
pub fn is_shallow_push(shallow_file: Option<&Path>) -> bool {
    shallow_file
        .and_then(|f| std::fs::metadata(f).ok())
        .is_some_and(|m| m.len() > 0)
}

/// What a hook knows from git's environment, read once before that environment is
/// cleared (a platform started from the hook must not inherit GIT_DIR).
#[derive(Debug, Clone, Default)]
pub struct HookEnv {
    /// The repository (the hook's working folder).
    pub repo: PathBuf,
    /// GIT_QUARANTINE_PATH: where the pushed objects wait.
    pub quarantine: Option<PathBuf>,
    pub shallow_file: Option<PathBuf>,
}

impl HookEnv {
    /// Read git's variables, then remove every `GIT_*` variable from this process.
    pub fn take() -> Result<HookEnv, GitRemoteError> {
        let cwd = std::env::current_dir().map_err(io("find", Path::new(".")))?;
        let absolute = |value: OsString| {
            let path = PathBuf::from(value);
            let path = if path.is_absolute() { path } else { cwd.join(path) };
            // git gives "." for GIT_DIR: name the repository itself in messages.
            path.canonicalize().unwrap_or(path)
        };
        let repo = std::env::var_os("GIT_DIR")
            .map(absolute)
            .unwrap_or_else(|| cwd.clone());
        let env = HookEnv {
            repo,
            quarantine: std::env::var_os("GIT_QUARANTINE_PATH")
                .or_else(|| std::env::var_os("GIT_OBJECT_DIRECTORY"))
                .map(absolute),
            shallow_file: std::env::var_os("GIT_SHALLOW_FILE").map(absolute),
        };
        let names: Vec<OsString> = std::env::vars_os()
            .map(|(name, _)| name)
            .filter(|name| name.to_string_lossy().starts_with("GIT_"))
            .collect();
        for name in names {
            // Still one thread here: nothing reads the environment concurrently.
            std::env::remove_var(name);
        }
        Ok(env)
    }
}

/// A bare repository that sees the pushed objects (see the module's notes), with
/// `refs/heads/<branch>` at the pushed commit; removed when dropped.
pub struct IncomingView {
    dir: tempfile::TempDir,
}

impl IncomingView {
    pub fn create(hook: &HookEnv, branch: &str, commit: &str) -> Result<IncomingView, GitRemoteError> {
        let dir = tempfile::Builder::new()
            .prefix("incoming-")
            .suffix(".git")
            .tempdir_in(&hook.repo)
            .map_err(io("create a folder in", &hook.repo))?;
        let path = dir.path().to_string_lossy().into_owned();
        run_ok(&hook.repo, &["init", "--quiet", "--bare", &path])?;
        let mut alternates = String::new();
        if let Some(q) = &hook.quarantine {
            alternates.push_str(&format!("{}\n", q.display()));
        }
        alternates.push_str(&format!("{}\n", hook.repo.join("objects").display()));
        let file = dir.path().join("objects/info/alternates");
        std::fs::write(&file, alternates).map_err(io("write", &file))?;
        run_ok(
            dir.path(),
            &["update-ref", &format!("refs/heads/{branch}"), commit],
        )?;
        Ok(IncomingView { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, new: &str) -> RefUpdate {
        RefUpdate {
            old: ZERO.into(),
            new: new.into(),
            name: name.into(),
        }
    }

    #[test]
    fn hook_lines_are_parsed() {
        let line = format!("{ZERO} {} refs/heads/main", "a".repeat(40));
        let u = RefUpdate::parse(&line).unwrap();
        assert_eq!(u.branch(), Some("main"));
        assert_eq!(u.previous(), None);
        assert!(RefUpdate::parse("only two").is_err());
    }

    #[test]
    fn only_main_and_master_are_deployed() {
        let sha = "b".repeat(40);
        assert!(judge(&[update("refs/heads/main", &sha)], false, "shipway").is_ok());
        assert!(judge(&[update("refs/heads/master", &sha)], false, "shipway").is_ok());
        let refused = judge(&[update("refs/heads/feature", &sha)], false, "shipway").unwrap_err();
        assert!(
            refused.to_string().contains("git push shipway feature:main"),
            "{refused}"
        );
        let tag = judge(&[update("refs/tags/v1", &sha)], false, "prod").unwrap_err();
        assert!(tag.to_string().contains("git push prod v1:main"), "{tag}");
    }

    #[test]
    fn deletions_and_shallow_pushes_are_refused() {
        let deletion = judge(&[update("refs/heads/main", ZERO)], false, "shipway");
        assert!(matches!(deletion, Err(Refusal::Deletion { .. })));
        let shallow = judge(&[update("refs/heads/main", &"c".repeat(40))], true, "shipway");
        assert_eq!(shallow, Err(Refusal::Shallow));
        assert!(Refusal::Shallow
            .to_string()
            .contains("git fetch --all --unshallow"));
    }

    #[test]
    fn the_app_is_read_from_a_remote_url() {
        assert_eq!(
            app_of_url("/home/me/.local/state/shipway/apps/myapp/repo.git").as_deref(),
            Some("myapp")
        );
        assert_eq!(
            app_of_url("/tmp/h/apps/my-app/repo.git/").as_deref(),
            Some("my-app")
        );
        for other in [
            "git@ssh.osc-fr1.scalingo.com:myapp.git",
            "/tmp/h/myapp/repo.git",
            "/tmp/apps/myapp/other.git",
            "repo.git",
            "",
        ] {
            assert_eq!(app_of_url(other), None, "{other}");
        }
    }

    #[test]
    fn hook_quotes_what_it_embeds() {
        assert_eq!(single_quoted("/a b/it's"), r"'/a b/it'\''s'");
    }
}
