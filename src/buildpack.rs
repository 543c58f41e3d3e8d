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
        if url.contains("://") || url.starts_with("git@") {
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
pub fn fetch(
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
        Locator::Git { url, reference } if is_remote(url) => {
            let checkout = cache.git(url, reference.as_deref())?;
            copy_folder(spec, &checkout.dir, dest)?;
            // A fresh copy without git's own folder, as the platform's clone is used.
            let _ = std::fs::remove_dir_all(dest.join(".git"));
            commit = Some(checkout.entry.commit);
            note = checkout.note;
        }
        Locator::Git { url, reference } => clone(spec, url, reference.as_deref(), dest)?,
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
            let download = cache.archive(url)?;
            unpack(spec, &download.dir, dest)?;
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

/// Whether a git URL names a server, whose answers are cached (`buildpack_cache`), rather
/// than a repository on this machine.
fn is_remote(url: &str) -> bool {
    ["https://", "http://", "git://", "ssh://", "git@"]
        .iter()
        .any(|p| url.starts_with(p))
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
/// nothing to keep, nothing to wait for.
fn clone(spec: &str, url: &str, reference: Option<&str>, dest: &Path) -> Result<(), BuildpackError> {
    let failed = |detail| BuildpackError::Git {
        spec: spec.to_string(),
        detail,
    };
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let dest_s = dest.display().to_string();
    buildpack_cache::git(parent, &["clone", "--quiet", url, &dest_s]).map_err(failed)?;
    if let Some(r) = reference {
        buildpack_cache::git(dest, &["checkout", "--quiet", r]).map_err(failed)?;
    }
    Ok(())
}

fn unpack(spec: &str, archive: &Path, dest: &Path) -> Result<(), BuildpackError> {
    let err = |message: String| BuildpackError::Unpack {
        spec: spec.to_string(),
        message,
    };
    let scratch = dest.with_extension("unpack");
    crate::source::unpack_tar_gz(archive, &scratch, crate::source::ARCHIVE_LIMIT_BYTES)
        .map_err(|e| err(e.to_string()))?;
    // Buildpack tarballs have bin/ at their root; some wrap it in one folder.
    let root = if scratch.join("bin").is_dir() {
        scratch.clone()
    } else {
        let mut dirs = std::fs::read_dir(&scratch)
            .map_err(|e| err(e.to_string()))?
            .flatten();
        match (dirs.next(), dirs.next()) {
            (Some(only), None) if only.path().join("bin").is_dir() => only.path(),
            _ => return Err(err("no bin/ folder at its root".into())),
        }
    };
    std::fs::rename(&root, dest).map_err(|e| err(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// A detect script's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: it applies; what it printed names the framework.
    Detected(String),
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

/// Everything a script needs besides its arguments.
pub struct ScriptContext<'a> {
    pub env: &'a [(String, String)],
    pub deadline: Instant,
    pub limit: String,
    pub cancel: &'a Receiver<()>,
    /// The build's own folder that scripts see at `/app`, when sandboxed.
    pub app: Option<&'a Path>,
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
        if let Some(app) = ctx.app {
            spawn = spawn.app(app);
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
        let (sink, out, err) = capture();
        let verdict = if !self.dir.join("bin/detect").is_file() {
            Verdict::Error {
                status: "has no bin/detect".into(),
                stderr: String::new(),
            }
        } else {
            match self.run("detect", &[build_dir], ctx, sink) {
                Ok(exit) if exit.success() => {
                    let printed = out
                        .lock()
                        .map(|o| o.join(" ").trim().to_string())
                        .unwrap_or_default();
                    Verdict::Detected(if printed.is_empty() {
                        self.name.clone()
                    } else {
                        printed
                    })
                }
                Ok(exit) if exit.code() == Some(1) => Verdict::NotDetected,
                Ok(exit) => Verdict::Error {
                    status: exit.to_string(),
                    stderr: err.lock().map(|e| e.join("\n")).unwrap_or_default(),
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
        let out = Arc::new(Mutex::new(Vec::<String>::new()));
        let o = out.clone();
        let split: LineSink = Arc::new(move |stream, line: &str| match stream {
            Stream::Stdout => o.lock().map(|mut o| o.push(line.to_string())).unwrap_or(()),
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
        let text = out.lock().map(|o| o.join("\n")).unwrap_or_default();
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

type Captured = Arc<Mutex<Vec<String>>>;

fn capture() -> (LineSink, Captured, Captured) {
    let out: Captured = Arc::default();
    let err: Captured = Arc::default();
    let (o, e) = (out.clone(), err.clone());
    let sink: LineSink = Arc::new(move |stream, line: &str| {
        let target = if stream == Stream::Stdout { &o } else { &e };
        if let Ok(mut t) = target.lock() {
            t.push(line.to_string());
        }
    });
    (sink, out, err)
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
