//! Classic buildpacks (the Heroku buildpack API that Scalingo follows): where one comes
//! from (bundled, a folder, a git URL with `#ref`, a `.tgz`), a fresh writable copy of it,
//! and how its three scripts run: working folder = the buildpack copy, a clean
//! environment, output streamed, scripts without the execute bit run through their
//! shebang.
//!
//! It runs one script at a time and reports what happened; choosing which buildpacks
//! to run, and in what order, is the build step's.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use include_dir::{include_dir, Dir};
use nix::sys::signal::Signal;

use crate::buildpack_cache::{self, BuildpackCache};
use crate::process::{self, Exit, Interrupted, LineSink, Spawn, Stream};
use crate::release_yaml::{ReleaseYaml, ReleaseYamlError};

/// The official detection order (PLATFORM.md §2).
pub const DETECTION_ORDER: &[&str] = &[
    "clojure", "go", "gradle", "java", "nodejs", "php", "python", "ruby", "scala",
];

/// What a buildpack reference may be, said wherever one cannot be used.
const EXPECTED: &str = "give a folder holding bin/detect and bin/compile, a git URL (with an optional #ref), a .tgz/.tar.gz, or a bundled buildpack's name";

static BUNDLED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/buildpacks");

#[derive(Debug, thiserror::Error)]
pub enum BuildpackError {
    #[error("no bundled buildpack is named {name:?} (bundled: {known})")]
    UnknownName { name: String, known: String },
    #[error("buildpack {spec}: {path} does not exist; {EXPECTED}")]
    Missing { spec: String, path: PathBuf },
    #[error("buildpack {spec}: {path} is a file, not a buildpack folder; {EXPECTED}")]
    NotAFolder { spec: String, path: PathBuf },
    #[error("buildpack {spec} has no bin/compile: a classic buildpack needs bin/detect and bin/compile")]
    NotABuildpack { spec: String },
    #[error("cannot clone buildpack {spec}: {detail}")]
    Git { spec: String, detail: String },
    #[error("buildpack {spec}: {reference:?} is not a ref git accepts ({why}): give a branch, a tag or a commit id after #")]
    BadRef {
        spec: String,
        reference: String,
        why: &'static str,
    },
    #[error("the fetch of buildpack {spec} was interrupted")]
    FetchCancelled { spec: String },
    #[error("cannot unpack buildpack {spec}: {message}")]
    Unpack { spec: String, message: String },
    #[error("cannot copy buildpack {spec}: {source}")]
    Copy { spec: String, source: std::io::Error },
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Cache(#[from] crate::buildpack_cache::CacheError),
    #[error("{script} of {buildpack} {exit}")]
    ScriptFailed {
        buildpack: String,
        script: &'static str,
        exit: Exit,
    },
    #[error("{script} of {buildpack} did not finish within {limit}: it was stopped, with every process it started")]
    TimedOut {
        buildpack: String,
        script: &'static str,
        limit: String,
    },
    #[error("{script} of {buildpack} printed more than {limit} on {stream}: {why}; is it printing a whole file, or looping?")]
    OutputTooLarge {
        buildpack: String,
        script: &'static str,
        stream: &'static str,
        limit: &'static str,
        why: &'static str,
    },
    #[error("{script} of {buildpack} was interrupted")]
    Cancelled { buildpack: String, script: &'static str },
    #[error("{buildpack}: {source}")]
    Release {
        buildpack: String,
        source: ReleaseYamlError,
    },
}

/// Where a buildpack comes from, as a user writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    Bundled(String),
    Folder(PathBuf),
    Git { url: String, reference: Option<String> },
    Tarball(PathBuf),
    Remote(String),
}

impl Locator {
    /// Reads a BUILDPACK_URL, a `.buildpacks` line, a `--buildpack` flag or a
    /// BUILDPACK_NAME. Relative paths are taken from `base`.
    pub fn parse(spec: &str, base: &Path) -> Locator {
        let spec = spec.trim();
        let (url, reference) = match spec.rsplit_once('#') {
            Some((u, r)) if !r.is_empty() => (u, Some(r.to_string())),
            _ => (spec.trim_end_matches('#'), None),
        };
        let is_tarball = url.ends_with(".tgz") || url.ends_with(".tar.gz");
        if let Some(path) = url.strip_prefix("file://") {
            return if is_tarball {
                Locator::Tarball(PathBuf::from(path))
            } else {
                Locator::Git {
                    url: url.to_string(),
                    reference,
                }
            };
        }
        if names_a_server(url) {
            return if is_tarball {
                Locator::Remote(url.to_string())
            } else {
                Locator::Git {
                    url: url.to_string(),
                    reference,
                }
            };
        }
        if !url.contains('/') && !url.starts_with('.') && BUNDLED.get_dir(url).is_some() {
            return Locator::Bundled(url.to_string());
        }
        let path = base.join(url);
        if is_tarball {
            Locator::Tarball(path)
        } else if reference.is_some() && path.join(".git").exists() || path.join("HEAD").is_file() {
            Locator::Git {
                url: path.display().to_string(),
                reference,
            }
        } else {
            Locator::Folder(path)
        }
    }

    /// Whether it is fetched from somewhere (the platform logs "Cloning custom buildpack").
    pub fn is_custom(&self) -> bool {
        !matches!(self, Locator::Bundled(_))
    }
}

/// The names of the bundled buildpacks.
pub fn bundled_names() -> Vec<String> {
    let mut names: Vec<String> = BUNDLED
        .dirs()
        .filter_map(|d| d.path().file_name()?.to_str().map(String::from))
        .collect();
    names.sort();
    names
}

/// A fresh, writable copy of a buildpack, ready to run.
#[derive(Debug, Clone)]
pub struct Buildpack {
    /// What the user wrote (a name, a path, a URL).
    pub spec: String,
    /// A short name for messages: the bundled name or the folder's name.
    pub name: String,
    pub dir: PathBuf,
    /// The commit it was taken from, when fetched by URL (kept in the deployment record).
    pub commit: Option<String>,
    /// What the user should know of where it came from (a cached copy standing in).
    pub note: Option<String>,
}

/// Make a fresh copy of the buildpack at `dest` (which must not exist).
/// `overrides` replaces the bundled set with a folder (the `buildpacks_dir` setting).
/// Every fetch goes through `cache`, bounded and called off by its limits. The buildpack
/// keeps `spec` with the credentials of its URL redacted: that is what is shown and recorded.
pub fn fetch(
    spec: &str,
    locator: &Locator,
    overrides: Option<&Path>,
    cache: &BuildpackCache,
    dest: &Path,
) -> Result<Buildpack, BuildpackError> {
    let shown = buildpack_cache::redact(spec);
    fetch_as(&shown, locator, overrides, cache, dest).map_err(|e| match e {
        BuildpackError::Cache(buildpack_cache::CacheError::Cancelled { .. }) => {
            BuildpackError::FetchCancelled { spec: shown.clone() }
        }
        other => other,
    })
}

fn fetch_as(
    spec: &str,
    locator: &Locator,
    overrides: Option<&Path>,
    cache: &BuildpackCache,
    dest: &Path,
) -> Result<Buildpack, BuildpackError> {
    let mut commit = None;
    let mut note = None;
    let copy_err = |source| BuildpackError::Copy {
        spec: spec.to_string(),
        source,
    };
    if let Locator::Git {
        reference: Some(r), ..
    } = locator
    {
        check_ref(r).map_err(|why| BuildpackError::BadRef {
            spec: spec.to_string(),
            reference: r.clone(),
            why,
        })?;
    }
    match locator {
        Locator::Bundled(name) => match overrides {
            Some(dir) => copy_folder(spec, &dir.join(name), dest)?,
            None => {
                let bundled = BUNDLED
                    .get_dir(name.as_str())
                    .ok_or_else(|| BuildpackError::UnknownName {
                        name: name.clone(),
                        known: bundled_names().join(", "),
                    })?;
                extract_bundled(bundled, name, dest).map_err(copy_err)?;
            }
        },
        Locator::Folder(path) => copy_folder(spec, path, dest)?,
        Locator::Git { url, reference } if names_a_server(url) => {
            let checkout = cache.git(url, reference.as_deref())?;
            // A fresh copy without git's own folder (most of the bytes of a long history).
            let exclude = crate::source::Exclude {
                git: true,
                ..Default::default()
            };
            crate::source::copy_tree_excluding(&checkout.dir, dest, exclude).map_err(|e| {
                BuildpackError::Copy {
                    spec: spec.to_string(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            commit = Some(checkout.entry.commit);
            note = checkout.note;
        }
        Locator::Git { url, reference } => clone(spec, url, reference.as_deref(), cache, dest)?,
        Locator::Tarball(path) => {
            if !path.is_file() {
                return Err(BuildpackError::Missing {
                    spec: spec.to_string(),
                    path: path.clone(),
                });
            }
            unpack(spec, path, dest)?;
        }
        Locator::Remote(url) => {
            // Unpacked before it is kept: an archive that does not unpack is not cached.
            let unpack_it = |file: &Path| {
                let _ = std::fs::remove_dir_all(dest);
                unpack(spec, file, dest).map_err(|e| match e {
                    BuildpackError::Unpack { message, .. } => format!("cannot unpack it: {message}"),
                    other => other.to_string(),
                })
            };
            let download = cache.archive(url, &unpack_it)?;
            commit = Some(download.entry.commit);
            note = download.note;
        }
    }
    if !dest.join("bin/compile").is_file() {
        return Err(BuildpackError::NotABuildpack {
            spec: spec.to_string(),
        });
    }
    let name = match locator {
        Locator::Bundled(n) => n.clone(),
        _ => spec
            .split('#')
            .next()
            .unwrap_or(spec)
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(spec)
            .trim_end_matches(".git")
            .trim_end_matches(".tgz")
            .trim_end_matches(".tar.gz")
            .to_string(),
    };
    Ok(Buildpack {
        spec: spec.to_string(),
        name,
        dir: dest.to_path_buf(),
        commit,
        note,
    })
}

/// Whether `r` is a ref git would take after `#`: a commit id, or a branch or tag name as
/// `git check-ref-format --branch` accepts it. A name starting with `-` is refused too: it
/// would read as an option wherever `--end-of-options` cannot stand.
pub fn check_ref(r: &str) -> Result<(), &'static str> {
    if buildpack_cache::is_commit_id(r) {
        return Ok(());
    }
    if r.starts_with('-') {
        return Err("it starts with -");
    }
    if r == "@" {
        return Err("it is @");
    }
    if r.chars().any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c)) {
        return Err("it holds a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if r.contains("..") || r.contains("@{") || r.contains("//") {
        return Err("it holds .., @{ or //");
    }
    if r.starts_with('/') || r.ends_with('/') || r.ends_with('.') {
        return Err("it starts or ends with /, or ends with .");
    }
    if r.split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err("a part of it starts with . or ends with .lock");
    }
    Ok(())
}

/// Whether a URL names a server (whose answers `buildpack_cache` keeps) rather than a
/// repository or archive of this machine: `file://` and paths are local.
fn names_a_server(url: &str) -> bool {
    !url.starts_with("file://") && (url.contains("://") || url.starts_with("git@"))
}

fn copy_folder(spec: &str, from: &Path, dest: &Path) -> Result<(), BuildpackError> {
    if from.is_file() {
        return Err(BuildpackError::NotAFolder {
            spec: spec.to_string(),
            path: from.to_path_buf(),
        });
    }
    if !from.is_dir() {
        return Err(BuildpackError::Missing {
            spec: spec.to_string(),
            path: from.to_path_buf(),
        });
    }
    crate::source::copy_tree(from, dest)
        .map(|_| ())
        .map_err(|e| BuildpackError::Copy {
            spec: spec.to_string(),
            source: std::io::Error::other(e.to_string()),
        })
}

fn extract_bundled(dir: &Dir<'_>, name: &str, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dest)?;
    for entry in dir.entries() {
        // Paths inside include_dir are relative to the `buildpacks/` root.
        let rel = entry.path().strip_prefix(name).unwrap_or(entry.path());
        let target = dest.join(rel);
        match entry {
            include_dir::DirEntry::Dir(d) => {
                std::fs::create_dir_all(&target)?;
                extract_bundled(d, name, dest)?;
            }
            include_dir::DirEntry::File(f) => {
                std::fs::write(&target, f.contents())?;
                let executable = rel.starts_with("bin");
                std::fs::set_permissions(
                    &target,
                    std::fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }),
                )?;
            }
        }
    }
    Ok(())
}

/// Sourcing an `export` file: it sets variables, nothing more, so it gets little time;
/// what `env -0` prints after it is the whole environment, bounded.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(60);
const EXPORT_LIMIT: usize = 16 * 1024 * 1024;

/// A git repository of this machine (a path or `file://`), cloned afresh for each build:
/// nothing to keep, nothing to wait for, but still called off with the build.
fn clone(
    spec: &str,
    url: &str,
    reference: Option<&str>,
    cache: &BuildpackCache,
    dest: &Path,
) -> Result<(), BuildpackError> {
    let failed = |failure: buildpack_cache::GitFailure| match failure {
        buildpack_cache::GitFailure::Cancelled => BuildpackError::FetchCancelled {
            spec: spec.to_string(),
        },
        buildpack_cache::GitFailure::Failed(detail) => BuildpackError::Git {
            spec: spec.to_string(),
            detail,
        },
    };
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let dest_s = dest.display().to_string();
    let limits = cache.limits();
    buildpack_cache::git(
        limits,
        parent,
        &["clone", "--quiet", "--end-of-options", url, &dest_s],
    )
    .map_err(failed)?;
    if let Some(r) = reference {
        // `--` after it: a ref, never a path of the work tree.
        buildpack_cache::git(
            limits,
            dest,
            &["checkout", "--quiet", "--end-of-options", r, "--"],
        )
        .map_err(failed)?;
    }
    Ok(())
}

fn unpack(spec: &str, archive: &Path, dest: &Path) -> Result<(), BuildpackError> {
    let scratch = dest.with_extension("unpack");
    let _ = std::fs::remove_dir_all(&scratch);
    let unpacked = unpack_in(archive, &scratch, dest).map_err(|message| BuildpackError::Unpack {
        spec: spec.to_string(),
        message,
    });
    let _ = std::fs::remove_dir_all(&scratch);
    unpacked
}

fn unpack_in(archive: &Path, scratch: &Path, dest: &Path) -> Result<(), String> {
    crate::source::unpack_tar_gz(archive, scratch, crate::source::ARCHIVE_LIMIT_BYTES)
        .map_err(|e| e.to_string())?;
    // Buildpack tarballs have bin/ at their root; some wrap it in one folder.
    let root = if scratch.join("bin").is_dir() {
        scratch.to_path_buf()
    } else {
        let mut dirs = std::fs::read_dir(scratch).map_err(|e| e.to_string())?.flatten();
        match (dirs.next(), dirs.next()) {
            (Some(only), None) if only.path().join("bin").is_dir() => only.path(),
            _ => return Err("no bin/ folder at its root".into()),
        }
    };
    std::fs::rename(&root, dest).map_err(|e| e.to_string())
}

/// A detect script's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: it applies. The first line it printed names the framework (the platform
    /// shows that); further lines are notes shipway shows under the verdict in `detect`
    /// (what the app asks for, what the host has), never in a build's output.
    Detected { name: String, notes: Vec<String> },
    /// Exit 1: it does not apply.
    NotDetected,
    /// Any other exit, or the script could not run: a bug in the buildpack worth showing.
    Error { status: String, stderr: String },
}

#[derive(Debug, Clone)]
pub struct Detection {
    pub buildpack: String,
    pub verdict: Verdict,
    pub elapsed: Duration,
}

/// A detect script that passed: the first line that says something is the name (empty
/// output: the buildpack's own name), the lines after it are notes.
fn detected(buildpack: &str, printed: &[String]) -> Verdict {
    let mut lines = printed
        .iter()
        .map(|l| l.trim_end())
        .skip_while(|l| l.trim().is_empty());
    let name = lines
        .next()
        .map_or(buildpack.to_string(), |l| l.trim().to_string());
    let notes = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    Verdict::Detected { name, notes }
}

/// Everything a script needs besides its arguments.
pub struct ScriptContext<'a> {
    pub env: &'a [(String, String)],
    pub deadline: Instant,
    pub limit: String,
    pub cancel: &'a Receiver<()>,
    /// What scripts see when sandboxed: the build's own folder at `/app`, and the stack's
    /// image as `/` with the build's folders at their own paths.
    pub sandbox: Option<&'a crate::process::Plan>,
}

impl<'a> ScriptContext<'a> {
    /// The same deadline, cancellation and `/app` (every script of a build shares them),
    /// with another environment.
    pub fn with_env<'b>(&self, env: &'b [(String, String)]) -> ScriptContext<'b>
    where
        'a: 'b,
    {
        ScriptContext {
            env,
            deadline: self.deadline,
            limit: self.limit.clone(),
            cancel: self.cancel,
            sandbox: self.sandbox,
        }
    }
}

impl Buildpack {
    fn run(
        &self,
        script: &'static str,
        args: &[&Path],
        ctx: &ScriptContext<'_>,
        sink: LineSink,
    ) -> Result<Exit, BuildpackError> {
        let path = self.dir.join("bin").join(script);
        let (program, mut pre) = process::script_command(&path)?;
        pre.extend(args.iter().map(|a| a.as_os_str().to_owned()));
        let mut spawn = Spawn::new(program, &self.dir)
            .args(pre)
            .env(ctx.env.iter().cloned())
            .leftover_grace(Duration::from_secs(2));
        if let Some(plan) = ctx.sandbox {
            spawn = spawn.sandbox(plan.clone());
        }
        let mut child = spawn.start(sink)?;
        let left = ctx.deadline.saturating_duration_since(Instant::now());
        match child.wait_until(left, ctx.cancel) {
            Ok(exit) => {
                child.reap_group(Duration::from_secs(2));
                Ok(exit)
            }
            Err(why) => {
                // A build that is stopped keeps nothing running: the whole group goes.
                child.stop(Signal::SIGTERM, Duration::from_secs(2));
                Err(match why {
                    Interrupted::TimedOut => BuildpackError::TimedOut {
                        buildpack: self.name.clone(),
                        script,
                        limit: ctx.limit.clone(),
                    },
                    Interrupted::Cancelled => BuildpackError::Cancelled {
                        buildpack: self.name.clone(),
                        script,
                    },
                })
            }
        }
    }

    /// Run `bin/detect BUILD_DIR`, capturing what it prints.
    pub fn detect(&self, build_dir: &Path, ctx: &ScriptContext<'_>) -> Result<Detection, BuildpackError> {
        let started = Instant::now();
        let out = Capture::new(DETECT_CAPTURE);
        let err = Capture::new(DETECT_CAPTURE);
        let (o, e) = (out.clone(), err.clone());
        let sink: LineSink = Arc::new(move |stream, line: &str| match stream {
            Stream::Stdout => o.push(line),
            Stream::Stderr => e.push(line),
        });
        let verdict = if !self.dir.join("bin/detect").is_file() {
            Verdict::Error {
                status: "has no bin/detect".into(),
                stderr: String::new(),
            }
        } else {
            match self.run("detect", &[build_dir], ctx, sink) {
                // What it printed is shown, or names the framework: past the cap it is
                // neither, whatever the exit.
                Ok(_) if out.overflowed() || err.overflowed() => Verdict::Error {
                    status: format!(
                        "printed more than {DETECT_CAPTURE_SHOWN} on {}: it should print the framework's name",
                        if out.overflowed() { "stdout" } else { "stderr" }
                    ),
                    stderr: String::new(),
                },
                Ok(exit) if exit.success() => detected(&self.name, &out.lines()),
                Ok(exit) if exit.code() == Some(1) => Verdict::NotDetected,
                Ok(exit) => Verdict::Error {
                    status: exit.to_string(),
                    stderr: err.lines().join("\n"),
                },
                Err(BuildpackError::Process(e)) => Verdict::Error {
                    status: e.to_string(),
                    stderr: String::new(),
                },
                Err(e) => return Err(e),
            }
        };
        Ok(Detection {
            buildpack: self.name.clone(),
            verdict,
            elapsed: started.elapsed(),
        })
    }

    /// Run `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`, output streamed to `sink`.
    pub fn compile(
        &self,
        build_dir: &Path,
        cache_dir: &Path,
        env_dir: &Path,
        ctx: &ScriptContext<'_>,
        sink: LineSink,
    ) -> Result<(), BuildpackError> {
        let exit = self.run("compile", &[build_dir, cache_dir, env_dir], ctx, sink)?;
        if exit.success() {
            Ok(())
        } else {
            Err(BuildpackError::ScriptFailed {
                buildpack: self.name.clone(),
                script: "bin/compile",
                exit,
            })
        }
    }

    /// Run `bin/release BUILD_DIR` if there is one; its stderr goes to `sink`.
    pub fn release(
        &self,
        build_dir: &Path,
        ctx: &ScriptContext<'_>,
        sink: LineSink,
    ) -> Result<ReleaseYaml, BuildpackError> {
        if !self.dir.join("bin/release").is_file() {
            return Ok(ReleaseYaml::default());
        }
        let out = Capture::new(RELEASE_CAPTURE);
        let o = out.clone();
        let split: LineSink = Arc::new(move |stream, line: &str| match stream {
            Stream::Stdout => o.push(line),
            Stream::Stderr => sink(stream, line),
        });
        let exit = self.run("release", &[build_dir], ctx, split)?;
        if !exit.success() {
            return Err(BuildpackError::ScriptFailed {
                buildpack: self.name.clone(),
                script: "bin/release",
                exit,
            });
        }
        if out.overflowed() {
            return Err(BuildpackError::OutputTooLarge {
                buildpack: self.name.clone(),
                script: "bin/release",
                stream: "stdout",
                limit: RELEASE_CAPTURE_SHOWN,
                why: "it should print a release YAML of a few lines (addons, config_vars, default_process_types)",
            });
        }
        let text = out.lines().join("\n");
        ReleaseYaml::parse(&text).map_err(|source| BuildpackError::Release {
            buildpack: self.name.clone(),
            source,
        })
    }

    /// The environment after sourcing this buildpack's `export` file, if it wrote one
    /// (multi-buildpack: what the next buildpack's compile sees).
    pub fn exported_env(
        &self,
        env: &[(String, String)],
    ) -> Result<Option<Vec<(String, String)>>, BuildpackError> {
        let export = self.dir.join("export");
        if !export.is_file() {
            return Ok(None);
        }
        let out = Spawn::new("bash", &self.dir)
            .args(["-c", "set -a; . \"$1\" >/dev/null 2>&1; env -0", "bash"])
            .args([&export])
            .env(env.iter().cloned())
            .output(EXPORT_LIMIT, EXPORT_TIMEOUT, None)?;
        let vars = out
            .stdout
            .split(|b| *b == 0)
            .filter_map(|pair| {
                let pair = String::from_utf8_lossy(pair);
                let (k, v) = pair.split_once('=')?;
                // bash adds its own bookkeeping variables; keep what a buildpack sets.
                if matches!(k, "_" | "PWD" | "OLDPWD" | "SHLVL") {
                    return None;
                }
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        Ok(Some(vars))
    }
}

/// What `bin/detect` may print on each stream: a framework's name is one short line, and a
/// detect that fails shows its stderr to the user, for which a screenful is plenty; 64 KiB
/// leaves chatty scripts room while a runaway one cannot grow shipway's memory.
const DETECT_CAPTURE: usize = 64 * 1024;
const DETECT_CAPTURE_SHOWN: &str = "64 KiB";
/// What `bin/release` may print on stdout: real release YAMLs are under 1 KiB (PHP's, one
/// of the longest, lists a few process types); 1 MiB is a thousand times that.
const RELEASE_CAPTURE: usize = 1024 * 1024;
const RELEASE_CAPTURE_SHOWN: &str = "1 MiB";

/// Lines a script printed, kept up to a number of bytes: past it the rest is dropped (the
/// pipe is still drained, so the script is never blocked) and the capture says so.
#[derive(Clone)]
struct Capture(Arc<Mutex<Captured>>);

struct Captured {
    lines: Vec<String>,
    bytes: usize,
    limit: usize,
    overflowed: bool,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture(Arc::new(Mutex::new(Captured {
            lines: Vec::new(),
            bytes: 0,
            limit,
            overflowed: false,
        })))
    }

    fn push(&self, line: &str) {
        if let Ok(mut c) = self.0.lock() {
            // Each line counts its newline, as the script printed it.
            let bytes = c.bytes + line.len() + 1;
            if c.overflowed || bytes > c.limit {
                c.overflowed = true;
            } else {
                c.bytes = bytes;
                c.lines.push(line.to_string());
            }
        }
    }

    fn overflowed(&self) -> bool {
        self.0.lock().is_ok_and(|c| c.overflowed)
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|c| c.lines.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_read_like_the_platform() {
        let base = Path::new("/app");
        assert_eq!(Locator::parse("nodejs", base), Locator::Bundled("nodejs".into()));
        assert_eq!(
            Locator::parse("https://github.com/Scalingo/nodejs-buildpack#v1", base),
            Locator::Git {
                url: "https://github.com/Scalingo/nodejs-buildpack".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            Locator::parse("file:///tmp/bp.git#main", base),
            Locator::Git {
                url: "file:///tmp/bp.git".into(),
                reference: Some("main".into())
            }
        );
        assert_eq!(
            Locator::parse("file:///tmp/bp.tgz", base),
            Locator::Tarball("/tmp/bp.tgz".into())
        );
        assert_eq!(
            Locator::parse("https://x.org/bp.tar.gz", base),
            Locator::Remote("https://x.org/bp.tar.gz".into())
        );
        assert_eq!(
            Locator::parse("./my-bp", base),
            Locator::Folder("/app/./my-bp".into())
        );
        assert_eq!(Locator::parse("/abs/bp", base), Locator::Folder("/abs/bp".into()));
    }

    #[test]
    fn a_file_named_as_a_buildpack_is_said_to_be_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bp");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        let spec = file.display().to_string();
        let cache = BuildpackCache::new(dir.path());
        let err = fetch(
            &spec,
            &Locator::parse(&spec, dir.path()),
            None,
            &cache,
            &dir.path().join("copy"),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, BuildpackError::NotAFolder { .. }), "{message}");
        assert!(message.contains("is a file, not a buildpack folder"), "{message}");
        assert!(message.contains("bin/detect and bin/compile"), "{message}");
        assert!(!message.contains("does not exist"), "{message}");
    }

    /// A buildpack in `dir/bp` whose bin/detect and bin/release run `detect` and `release`.
    fn scripted(dir: &Path, detect: &str, release: &str) -> Buildpack {
        use std::os::unix::fs::PermissionsExt;
        let bp = dir.join("bp");
        std::fs::create_dir_all(bp.join("bin")).unwrap();
        for (name, body) in [("detect", detect), ("compile", "true"), ("release", release)] {
            let path = bp.join("bin").join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Buildpack {
            spec: "bp".into(),
            name: "bp".into(),
            dir: bp,
            commit: None,
            note: None,
        }
    }

    fn run_scripts(bp: &Buildpack, dir: &Path) -> (Detection, Result<ReleaseYaml, BuildpackError>) {
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let (_keep, cancel) = crossbeam_channel::bounded::<()>(0);
        let ctx = ScriptContext {
            env: &env,
            deadline: Instant::now() + Duration::from_secs(60),
            limit: "1m".into(),
            cancel: &cancel,
            sandbox: None,
        };
        let detection = bp.detect(dir, &ctx).unwrap();
        let sink: LineSink = Arc::new(|_, _| {});
        (detection, bp.release(dir, &ctx, sink))
    }

    #[test]
    fn detect_and_release_output_is_capped_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // 100 KiB and 2 MiB of short lines: past each cap, a script that ends normally.
        let bp = scripted(
            dir.path(),
            "yes Python | head -c 102400",
            "yes 'web: x' | head -c 2097152",
        );
        let (detection, release) = run_scripts(&bp, dir.path());
        match detection.verdict {
            Verdict::Error { status, .. } => {
                assert!(status.contains("printed more than 64 KiB on stdout"), "{status}")
            }
            other => panic!("{other:?}"),
        }
        let message = release.unwrap_err().to_string();
        assert!(
            message.starts_with("bin/release of bp printed more than 1 MiB on stdout"),
            "{message}"
        );

        // Within the caps, both read as before.
        let bp = scripted(
            dir.path(),
            "echo Python >&2; echo Python",
            "echo '---'; echo 'default_process_types:'; echo '  web: ./x'",
        );
        let (detection, release) = run_scripts(&bp, dir.path());
        assert_eq!(
            detection.verdict,
            Verdict::Detected {
                name: "Python".into(),
                notes: Vec::new()
            }
        );
        assert_eq!(release.unwrap().default_process_types["web"], "./x");
    }

    #[test]
    fn detect_names_the_framework_by_its_first_line_and_keeps_the_rest_as_notes() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            detected(
                "python",
                &lines(&[
                    "",
                    "Python",
                    "  asks for 3.13 (.python-version)",
                    "",
                    "found 3.13.0"
                ])
            ),
            Verdict::Detected {
                name: "Python".into(),
                notes: lines(&["asks for 3.13 (.python-version)", "found 3.13.0"]),
            }
        );
        // Nothing printed: the buildpack's own name, as before.
        assert_eq!(
            detected("python", &[]),
            Verdict::Detected {
                name: "python".into(),
                notes: Vec::new()
            }
        );
    }

    #[test]
    fn the_copies_of_the_shared_version_libraries_are_the_same() {
        // A buildpack is copied alone, so each carries its own copy; they must not drift.
        let file = |path: &str| {
            BUNDLED
                .get_file(path)
                .unwrap_or_else(|| panic!("{path} is not bundled"))
                .contents()
        };
        let versions = file("python/lib/versions.sh");
        for name in ["ruby", "php", "go", "java", "jvm-common"] {
            assert_eq!(
                file(&format!("{name}/lib/versions.sh")),
                versions,
                "{name}/lib/versions.sh"
            );
        }
        assert_eq!(file("jvm-common/lib/runtime.sh"), file("java/lib/runtime.sh"));
    }

    #[test]
    fn every_bundled_buildpack_has_its_scripts() {
        let names = bundled_names();
        for name in DETECTION_ORDER {
            assert!(names.contains(&name.to_string()), "{name} is not bundled");
        }
        for name in names {
            let dir = BUNDLED.get_dir(name.as_str()).unwrap();
            assert!(
                dir.get_file(format!("{name}/bin/detect")).is_some(),
                "{name}/bin/detect"
            );
            assert!(
                dir.get_file(format!("{name}/bin/compile")).is_some(),
                "{name}/bin/compile"
            );
        }
    }

    #[test]
    fn bundled_copy_is_executable_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("bp");
        let cache = BuildpackCache::new(dir.path());
        let bp = fetch("python", &Locator::Bundled("python".into()), None, &cache, &dest).unwrap();
        assert_eq!(bp.name, "python");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("bin/compile"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
}
