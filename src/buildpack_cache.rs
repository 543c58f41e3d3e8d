//! Buildpacks fetched by URL (`https://`, `http://`, `git://`, `ssh://`, `git@host:path`,
//! with `#branch`, `#tag` or `#sha`), kept in `SHIPWAY_HOME/buildpacks/` by URL and ref,
//! so that the next build does not depend on the server:
//!
//! - a tag or a commit already cached is never fetched again;
//! - a branch (or no ref: the default branch) is fetched again at each use; when the server
//!   cannot be reached, the cached copy is used, and the build says which commit, fetched
//!   when;
//! - with nothing cached, a failed fetch says why: name resolution, connection refused,
//!   not found, authentication.
//!
//! It hands back a checked-out folder; copying it for a build is the caller's.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{after, bounded, never, select, Receiver};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::io_error::IoError;
use crate::process::{Exit, ProcessError, Spawn};
use crate::settings::{render_duration, render_size, Settings};

const GIT_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot fetch buildpack {url}: {why}\n{detail}")]
    Fetch {
        url: String,
        why: String,
        detail: String,
    },
    #[error("buildpack {url} has no ref {reference}: {detail}")]
    UnknownRef {
        url: String,
        reference: String,
        detail: String,
    },
    #[error("cannot fetch buildpack {url}: the archive is larger than {limit} (the buildpack_max_size setting, SHIPWAY_BUILDPACK_MAX_SIZE): the download was stopped and nothing of it is kept")]
    TooLarge { url: String, limit: String },
    #[error("buildpack {url}: {message}; nothing of this download is kept")]
    Broken { url: String, message: String },
    #[error("the fetch of buildpack {url} was interrupted")]
    Cancelled { url: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What is kept of one URL and ref. The URL is kept without its credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub url: String,
    pub reference: Option<String>,
    pub commit: String,
    /// Unix milliseconds.
    pub fetched_at: u64,
    pub last_used: u64,
    /// Its size on disk, when listed (never stored).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A cached checkout, ready to copy.
pub struct Checkout {
    pub dir: PathBuf,
    pub entry: Entry,
    /// Said to the user when the cached copy stands in for a fetch that failed.
    pub note: Option<String>,
}

/// How every fetch (curl, git) is bounded and called off: the build's cancellation (Ctrl-C,
/// SIGTERM, SIGHUP of the client), its deadline, a size for archives and a stall timeout.
#[derive(Clone)]
pub struct Limits {
    pub max_size: u64,
    pub stall: Duration,
    pub deadline: Instant,
    pub cancel: Receiver<()>,
}

impl Limits {
    /// A build's limits: the settings', within the build's own time.
    pub fn of_build(settings: &Settings, cancel: &Receiver<()>) -> Limits {
        Limits {
            max_size: settings.buildpack_max_size,
            stall: settings.buildpack_stall_timeout,
            deadline: crate::clock::deadline_in(settings.build_timeout),
            cancel: cancel.clone(),
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn cancelled(&self) -> bool {
        self.cancel.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected)
    }
}

pub struct BuildpackCache {
    root: PathBuf,
    limits: Limits,
}

impl BuildpackCache {
    /// The cache of the shipway installation at `home`, for listing and clearing: nothing
    /// is fetched through it but under the default settings.
    pub fn new(home: &Path) -> BuildpackCache {
        BuildpackCache::with_limits(
            home,
            Limits::of_build(&Settings::defaults(home.to_path_buf()), &never()),
        )
    }

    /// The cache a build fetches through, bounded and called off as `limits` say.
    pub fn with_limits(home: &Path, limits: Limits) -> BuildpackCache {
        BuildpackCache {
            root: home.join("buildpacks"),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn folder(&self, url: &str, reference: Option<&str>) -> PathBuf {
        // A stable name from the URL and ref: FNV-1a, enough to tell entries apart.
        let key = format!("{url}#{}", reference.unwrap_or(""));
        let hash = fnv1a(FNV_OFFSET, key.as_bytes());
        let name: String = url
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("buildpack")
            .trim_end_matches(".git")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(40)
            .collect();
        self.root.join(format!("{name}-{hash:016x}"))
    }

    /// The entry's own lock: one build at a time fetches or refreshes it; the others wait
    /// (as long as they are not called off) and then use what it left.
    fn lock(&self, folder: &Path, url: &str) -> Result<nix::fcntl::Flock<File>, CacheError> {
        crate::state::private_dir(&self.root).map_err(|e| io_err("create", &self.root, e))?;
        let path = folder.with_extension("lock");
        loop {
            if let Some(held) =
                crate::state::try_exclusive_lock(&path).map_err(|e| io_err("lock", folder, e))?
            {
                return Ok(held);
            }
            select! {
                recv(self.limits.cancel) -> _ => return Err(CacheError::Cancelled { url: redact(url) }),
                recv(after(Duration::from_millis(50))) -> _ => {}
            }
        }
    }

    /// `url` at `reference`, fetched or refreshed as the rules above say.
    pub fn git(&self, url: &str, reference: Option<&str>) -> Result<Checkout, CacheError> {
        let folder = self.folder(url, reference);
        let _held = self.lock(&folder, url)?;
        let repo = folder.join("repo");
        let cached = read_entry(&folder).filter(|_| repo.join(".git").is_dir());
        let (mut entry, note) = match cached {
            Some(entry) if is_fixed(&self.limits, &repo, reference) => (entry, None),
            Some(entry) => match self.refresh(&repo, url, reference) {
                Ok(commit) => (
                    Entry {
                        commit,
                        fetched_at: crate::clock::now_ms(),
                        ..entry
                    },
                    None,
                ),
                Err(CacheError::Fetch { why, .. }) => {
                    let note = format!(
                        "{} cannot be reached ({why}): using the cached copy at {} (fetched {})",
                        redact(url),
                        crate::source::short(&entry.commit),
                        crate::units::utc_ms(entry.fetched_at)
                    );
                    (entry, Some(note))
                }
                Err(other) => return Err(other),
            },
            None => {
                let commit = self.clone_into(&folder, url, reference)?;
                let entry = Entry {
                    url: redact(url),
                    reference: reference.map(String::from),
                    commit,
                    fetched_at: crate::clock::now_ms(),
                    last_used: 0,
                    bytes: 0,
                };
                (entry, None)
            }
        };
        entry.last_used = crate::clock::now_ms();
        // An entry written by an older shipway kept the URL as given.
        entry.url = redact(&entry.url);
        write_entry(&folder, &entry)?;
        Ok(Checkout {
            dir: repo,
            entry,
            note,
        })
    }

    /// The archive at `url` (`.tgz`, `.tar.gz`), downloaded again at each use, and taken
    /// from the cache when the server cannot be reached. Its "commit" is a digest of its
    /// bytes. A download is kept only once `unpack` has taken it whole: one that fails,
    /// stops short, grows past the size limit or is called off leaves nothing behind.
    pub fn archive(
        &self,
        url: &str,
        unpack: &dyn Fn(&Path) -> Result<(), String>,
    ) -> Result<Checkout, CacheError> {
        let folder = self.folder(url, None);
        let _held = self.lock(&folder, url)?;
        let file = folder.join("buildpack.tgz");
        let cached = read_entry(&folder).filter(|_| file.is_file());
        // Nothing of a failed download stays: its folder too, where it was the first.
        let forget = |partial: &Path| {
            let _ = std::fs::remove_file(partial);
            if cached.is_none() {
                let _ = std::fs::remove_dir_all(&folder);
            }
        };
        crate::state::private_dir(&folder).map_err(|e| io_err("create", &folder, e))?;
        let partial = folder.join("buildpack.tgz.part");
        let (mut entry, note) = match self.download(url, &partial) {
            Ok(()) => {
                if let Err(message) = unpack(&partial) {
                    forget(&partial);
                    return Err(CacheError::Broken {
                        url: redact(url),
                        message,
                    });
                }
                std::fs::rename(&partial, &file).map_err(|e| io_err("write", &file, e))?;
                let entry = Entry {
                    url: redact(url),
                    reference: None,
                    commit: digest(&file).map_err(|e| io_err("read", &file, e))?,
                    fetched_at: crate::clock::now_ms(),
                    last_used: cached.as_ref().map_or(0, |c| c.last_used),
                    bytes: 0,
                };
                (entry, None)
            }
            Err(Download::Unreachable(why)) if cached.is_some() => {
                forget(&partial);
                let entry = cached.clone().ok_or_else(|| io_err("read", &file, "no entry"))?;
                unpack(&file).map_err(|message| CacheError::Broken {
                    url: redact(url),
                    message,
                })?;
                let note = format!(
                    "{} cannot be reached ({why}): using the copy downloaded {}",
                    redact(url),
                    crate::units::utc_ms(entry.fetched_at)
                );
                (entry, Some(note))
            }
            Err(failed) => {
                forget(&partial);
                return Err(match failed {
                    Download::Unreachable(why) => CacheError::Fetch {
                        url: redact(url),
                        why,
                        detail: "nothing of it is cached".into(),
                    },
                    Download::TooLarge => CacheError::TooLarge {
                        url: redact(url),
                        limit: render_size(self.limits.max_size),
                    },
                    Download::Cancelled => CacheError::Cancelled { url: redact(url) },
                    Download::Io(e) => CacheError::Io(IoError::new("write", &partial, e)),
                });
            }
        };
        entry.last_used = crate::clock::now_ms();
        entry.url = redact(&entry.url);
        write_entry(&folder, &entry)?;
        Ok(Checkout {
            dir: file,
            entry,
            note,
        })
    }

    /// Every entry, with its size on disk.
    pub fn list(&self) -> Vec<Entry> {
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut entries: Vec<Entry> = dirs
            .flatten()
            .filter_map(|d| {
                let mut entry = read_entry(&d.path())?;
                entry.url = redact(&entry.url);
                entry.bytes = walkdir::WalkDir::new(d.path())
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum();
                Some(entry)
            })
            .collect();
        entries.sort_by(|a, b| a.url.cmp(&b.url).then(a.reference.cmp(&b.reference)));
        entries
    }

    /// Remove every entry; returns how many there were.
    pub fn clear(&self) -> Result<usize, CacheError> {
        let count = std::fs::read_dir(&self.root)
            .map(|dirs| dirs.flatten().filter(|d| read_entry(&d.path()).is_some()).count())
            .unwrap_or(0);
        if self.root.exists() {
            std::fs::remove_dir_all(&self.root).map_err(|e| io_err("remove", &self.root, e))?;
        }
        Ok(count)
    }

    fn clone_into(&self, folder: &Path, url: &str, reference: Option<&str>) -> Result<String, CacheError> {
        let _ = std::fs::remove_dir_all(folder);
        crate::state::private_dir(folder).map_err(|e| io_err("create", folder, e))?;
        let repo = folder.join("repo");
        let bare = without_credentials(url).0;
        let fetched = git_remote(
            &self.limits,
            folder,
            url,
            &["clone", "--quiet", "--end-of-options", &bare, "repo"],
        );
        if let Err(failure) = fetched {
            let _ = std::fs::remove_dir_all(folder);
            return Err(failure.fetch_error(url));
        }
        if let Some(r) = reference {
            let checkout = git(
                &self.limits,
                &repo,
                &["checkout", "--quiet", "--detach", "--end-of-options", r],
            );
            if let Err(failure) = checkout {
                let _ = std::fs::remove_dir_all(folder);
                return Err(failure.ref_error(url, r));
            }
        }
        head(&self.limits, &repo)
    }

    /// Fetch `reference` (or the default branch) again and check it out.
    fn refresh(&self, repo: &Path, url: &str, reference: Option<&str>) -> Result<String, CacheError> {
        let wanted = reference.unwrap_or("HEAD");
        // The remote of a checkout made by an older shipway may hold the URL's credentials.
        git(
            &self.limits,
            repo,
            &[
                "remote",
                "set-url",
                "--end-of-options",
                "origin",
                &without_credentials(url).0,
            ],
        )
        .map_err(|f| f.fetch_error(url))?;
        git_remote(
            &self.limits,
            repo,
            url,
            &[
                "fetch",
                "--quiet",
                "--force",
                "--end-of-options",
                "origin",
                wanted,
            ],
        )
        .map_err(|f| f.fetch_error(url))?;
        git(
            &self.limits,
            repo,
            &[
                "checkout",
                "--quiet",
                "--force",
                "--detach",
                "--end-of-options",
                "FETCH_HEAD",
            ],
        )
        .map_err(|f| f.ref_error(url, wanted))?;
        head(&self.limits, repo)
    }

    /// Download `url` to `to` with curl, bounded in size and time; the URL (and so its
    /// credentials) reaches curl through a config file of mode 0600, never its argv.
    fn download(&self, url: &str, to: &Path) -> Result<(), Download> {
        let dir = to.parent().unwrap_or(Path::new("/"));
        let config = curl_config(dir, url).map_err(Download::Io)?;
        let stall = self.limits.stall.as_secs().max(1).to_string();
        let mut piped = Spawn::new("curl", dir)
            .args(["--fail", "--silent", "--show-error", "--location"])
            // What a buildpack URL may be; a redirect cannot reach file:// or anything else.
            .args(["--proto", "=http,https", "--proto-redir", "=http,https"])
            .args([
                "--connect-timeout",
                &stall,
                "--speed-limit",
                "1",
                "--speed-time",
                &stall,
            ])
            .args(["--output", "-", "--config"])
            .args([config.path()])
            .host_env(|_| false, &[])
            .read_stdout()
            .map_err(|_| Download::Unreachable("curl cannot be run: install curl".into()))?;
        let _ = std::fs::remove_file(to);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)
            .map_err(Download::Io)?;
        // Read on a thread, so that cancellation and the deadline hold whatever the
        // server does; past the size limit it stops reading, and curl is stopped.
        let (done_tx, done) = bounded::<Result<(), Download>>(1);
        let max = self.limits.max_size;
        if let Some(mut out) = piped.stdout.take() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut total: u64 = 0;
                let result = loop {
                    match out.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            total += n as u64;
                            if total > max {
                                break Err(Download::TooLarge);
                            }
                            if let Err(e) = file.write_all(&buf[..n]) {
                                break Err(Download::Io(e));
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(Download::Io(e)),
                    }
                };
                let _ = done_tx.send(result);
            });
        }
        let stop = |piped: &mut crate::process::Piped| {
            piped.child.stop(Signal::SIGTERM, Duration::from_secs(1));
        };
        let read = select! {
            recv(done) -> r => r.unwrap_or(Ok(())),
            recv(self.limits.cancel) -> _ => Err(Download::Cancelled),
            recv(after(self.limits.left())) -> _ => Err(Download::Unreachable(
                "it did not finish within the build's time limit: the download timed out".into()
            )),
        };
        if let Err(e) = read {
            stop(&mut piped);
            return Err(e);
        }
        let exit = match piped.child.wait_until(self.limits.left(), &self.limits.cancel) {
            Ok(exit) => exit,
            Err(crate::process::Interrupted::Cancelled) => {
                stop(&mut piped);
                return Err(Download::Cancelled);
            }
            Err(crate::process::Interrupted::TimedOut) => {
                stop(&mut piped);
                return Err(Download::Unreachable("the download timed out".into()));
            }
        };
        let said = String::from_utf8_lossy(&piped.stderr()).into_owned();
        // curl's exit codes: 6 no such host, 7 refused, 22 an HTTP error, 28 timed out.
        match exit.code() {
            Some(0) => Ok(()),
            Some(6) => Err(Download::Unreachable("the host name does not resolve".into())),
            Some(7) => Err(Download::Unreachable("the connection was refused".into())),
            // The status as curl words it: the URL's port may hold any digits.
            Some(22) if said.contains("error: 401") || said.contains("error: 403") => {
                Err(Download::Unreachable("authentication failed or is needed".into()))
            }
            Some(22) if said.contains("error: 4") => Err(Download::Unreachable("no archive at that URL".into())),
            Some(28) => Err(Download::Unreachable(format!(
                "the server sent nothing for {} (the buildpack_stall_timeout setting): the download timed out",
                render_duration(self.limits.stall)
            ))),
            _ => Err(Download::Unreachable(format!(
                "the download failed ({}): {}",
                exit,
                redact(said.trim())
            ))),
        }
    }
}

/// Why a download failed.
enum Download {
    /// The server could not be had (a cached copy may stand in).
    Unreachable(String),
    TooLarge,
    Cancelled,
    Io(std::io::Error),
}

/// A curl config file (mode 0600, removed when dropped) naming `url`.
fn curl_config(dir: &Path, url: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut config = tempfile::Builder::new().prefix(".curl-").tempfile_in(dir)?;
    let mut quoted = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '\\' | '"' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c => quoted.push(c),
        }
    }
    writeln!(config, "url = \"{quoted}\"")?;
    config.flush()?;
    Ok(config)
}

/// Whether a cached checkout at `reference` can never change: a commit, or a tag.
fn is_fixed(limits: &Limits, repo: &Path, reference: Option<&str>) -> bool {
    let Some(r) = reference else { return false };
    // A commit id is told by its look; only a tag needs git to ask.
    is_commit_id(r)
        || git(
            limits,
            repo,
            &[
                "show-ref",
                "--verify",
                "--quiet",
                "--end-of-options",
                &format!("refs/tags/{r}"),
            ],
        )
        .is_ok()
}

/// Whether `r` looks like a commit id (or an abbreviation of one), as git reads them.
pub fn is_commit_id(r: &str) -> bool {
    (7..=64).contains(&r.len()) && r.chars().all(|c| c.is_ascii_hexdigit())
}

fn head(limits: &Limits, repo: &Path) -> Result<String, CacheError> {
    git(limits, repo, &["rev-parse", "HEAD"])
        .map(|out| out.trim().to_string())
        .map_err(|failure| CacheError::Io(IoError::other("read the commit of", repo, failure)))
}

/// Why git could not fetch, in a word a user can act on.
fn why(stderr: &str) -> &'static str {
    let has = |s: &str| stderr.contains(s);
    // HTTP statuses as curl words them: a bare "403" would match a port number in the URL.
    let status = |code: &str| has(&format!("returned error: {code}"));
    if has("Could not resolve host") || has("Name or service not known") {
        "the host name does not resolve"
    } else if has("Connection refused") || has("Failed to connect") || has("Couldn't connect") {
        "the connection was refused"
    } else if has("Authentication failed")
        || has("could not read Username")
        || has("Permission denied")
        || status("401")
        || status("403")
    {
        "authentication failed or is needed"
    } else if has("not found") || status("404") || has("does not appear to be a git repository") {
        "no repository at that URL"
    } else if has("Operation too slow") || has("timed out") || has("did not finish within") {
        "the server stopped sending: the fetch timed out"
    } else if has("Network is unreachable") {
        "the network does not reach it"
    } else {
        "git failed"
    }
}

/// A digest of a file's bytes (FNV-1a, 64 bits), to tell one download from another.
fn digest(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut hash = FNV_OFFSET;
    // A download in the home: opened without blocking and refused if not a regular file.
    let mut f = crate::state::open_regular(file)
        .map_err(std::io::Error::other)?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(format!("{hash:016x}"));
        }
        hash = fnv1a(hash, &buf[..n]);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, going on from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Why a git command did not do its work.
#[derive(Debug)]
pub enum GitFailure {
    /// It ran and failed (or could not run): what it was and what it said, credentials
    /// redacted.
    Failed(String),
    Cancelled,
}

impl std::fmt::Display for GitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitFailure::Failed(detail) => f.write_str(detail),
            GitFailure::Cancelled => f.write_str("interrupted"),
        }
    }
}

impl GitFailure {
    fn fetch_error(self, url: &str) -> CacheError {
        match self {
            GitFailure::Cancelled => CacheError::Cancelled { url: redact(url) },
            GitFailure::Failed(detail) => CacheError::Fetch {
                url: redact(url),
                why: why(&detail).to_string(),
                detail,
            },
        }
    }

    fn ref_error(self, url: &str, reference: &str) -> CacheError {
        match self {
            GitFailure::Cancelled => CacheError::Cancelled { url: redact(url) },
            GitFailure::Failed(detail) => CacheError::UnknownRef {
                url: redact(url),
                reference: reference.to_string(),
                detail,
            },
        }
    }
}

/// git with its messages in English (they are read above) and no prompt, bounded by
/// `limits` (called off, the deadline; over HTTP, the stall timeout); its stdout, or why not.
pub fn git(limits: &Limits, dir: &Path, args: &[&str]) -> Result<String, GitFailure> {
    run_git(limits, dir, &[], args, None)
}

/// git talking to `url`, which `args` name without its credentials (as
/// [`without_credentials`] gives it). The credentials reach git through a credential helper
/// that reads a file of mode 0600, never its argv, and are never written in the
/// repository's config.
pub fn git_remote(limits: &Limits, dir: &Path, url: &str, args: &[&str]) -> Result<String, GitFailure> {
    let (_, credentials) = without_credentials(url);
    let file = match &credentials {
        Some((user, password)) => {
            let mut file = tempfile::Builder::new()
                .prefix(".git-credentials-")
                .tempfile_in(dir)
                .map_err(|e| GitFailure::Failed(format!("cannot write the credentials file: {e}")))?;
            writeln!(file, "username={user}\npassword={password}")
                .and_then(|_| file.flush())
                .map_err(|e| GitFailure::Failed(format!("cannot write the credentials file: {e}")))?;
            Some(file)
        }
        None => None,
    };
    let helper = file.as_ref().map(|f| {
        format!(
            "credential.helper=!f() {{ test \"$1\" = get && cat {}; }}; f",
            crate::shell::shell_quoted(&f.path().display().to_string())
        )
    });
    let config: Vec<&str> = match &helper {
        // The first, empty, helper drops any the user's config names.
        Some(h) => vec!["-c", "credential.helper=", "-c", h],
        None => Vec::new(),
    };
    run_git(limits, dir, &config, args, Some(url))
}

fn run_git(
    limits: &Limits,
    dir: &Path,
    config: &[&str],
    args: &[&str],
    url: Option<&str>,
) -> Result<String, GitFailure> {
    let stall = limits.stall.as_secs().max(1).to_string();
    let low_speed = format!("http.lowSpeedTime={stall}");
    let out = Spawn::new("git", dir)
        .args(["-c", "http.lowSpeedLimit=1", "-c", &low_speed])
        // Transports that run commands of the URL's choosing are never taken.
        .args(["-c", "protocol.ext.allow=never"])
        .args(config)
        .args(args)
        .host_env(|_| false, &[("GIT_TERMINAL_PROMPT", "0"), ("GIT_ASKPASS", "")])
        .output(GIT_OUTPUT_LIMIT, limits.left(), Some(&limits.cancel));
    let shown = || redact(&format!("`git {}`", args.join(" ")));
    let out = match out {
        Ok(out) => out,
        Err(ProcessError::Cancelled { .. }) => return Err(GitFailure::Cancelled),
        Err(ProcessError::TimedOut { .. }) => {
            return Err(GitFailure::Failed(format!(
                "{} did not finish within the build's time limit: timed out",
                shown()
            )))
        }
        Err(e) => return Err(GitFailure::Failed(redact(&e.to_string()))),
    };
    if limits.cancelled() {
        return Err(GitFailure::Cancelled);
    }
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut stderr = redact(String::from_utf8_lossy(&out.stderr).trim());
        if let Some(url) = url {
            // git may name the URL as it was given, or its password alone.
            if let (_, Some((_, password))) = without_credentials(url) {
                if !password.is_empty() {
                    stderr = stderr.replace(&password, "***");
                }
            }
        }
        Err(GitFailure::Failed(format!(
            "{} {}: {stderr}",
            shown(),
            Exit(out.status)
        )))
    }
}

/// `text` with the credentials of every URL in it replaced: `https://user:***@host`, and
/// a lone user of an HTTP URL (a token) as `https://***@host`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let scheme = before[..before.len() - 3].to_ascii_lowercase();
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None if scheme.ends_with("http") || scheme.ends_with("https") => out.push_str("***"),
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// An HTTP `url` without its userinfo, and the user and password it held (percent-decoded,
/// as git and curl read them). Other URLs are left whole: `ssh://git@host` names an
/// account, not a secret.
pub fn without_credentials(url: &str) -> (String, Option<(String, String)>) {
    let lower = url.to_ascii_lowercase();
    let Some(at) = url
        .find("://")
        .filter(|_| lower.starts_with("http://") || lower.starts_with("https://"))
    else {
        return (url.to_string(), None);
    };
    let (scheme, after) = url.split_at(at + 3);
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_string(), None);
    };
    let (user, password) = authority[..at].split_once(':').unwrap_or((&authority[..at], ""));
    let bare = format!("{scheme}{}{}", &authority[at + 1..], &after[authority_end..]);
    (bare, Some((percent_decoded(user), percent_decoded(password))))
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_entry(folder: &Path) -> Option<Entry> {
    crate::state::read_toml(&folder.join("entry.toml")).ok().flatten()
}

fn write_entry(folder: &Path, entry: &Entry) -> Result<(), CacheError> {
    crate::state::write_toml(&folder.join("entry.toml"), entry, 0o600).map_err(|e| io_err("write", folder, e))
}

fn io_err(action: &'static str, path: &Path, source: impl std::fmt::Display) -> CacheError {
    CacheError::Io(IoError::other(action, path, source))
}

#[cfg(test)]
mod tests {
    use super::{redact, why, without_credentials};

    #[test]
    fn credentials_in_urls_are_redacted_wherever_they_stand() {
        assert_eq!(
            redact("https://user:s3cret@example.org/bp.git#v1"),
            "https://user:***@example.org/bp.git#v1"
        );
        assert_eq!(
            redact("fatal: unable to access 'http://u:p%40ss@127.0.0.1:8080/x/': 401"),
            "fatal: unable to access 'http://u:***@127.0.0.1:8080/x/': 401"
        );
        assert_eq!(redact("https://ghp_token@host/r"), "https://***@host/r");
        assert_eq!(
            redact("ssh://git@host/r and git@host:r"),
            "ssh://git@host/r and git@host:r"
        );
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(
            redact("a http://a:b@h/ then https://c:d@i"),
            "a http://a:***@h/ then https://c:***@i"
        );
        assert_eq!(
            without_credentials("https://user:p%40ss@example.org/bp.git"),
            (
                "https://example.org/bp.git".to_string(),
                Some(("user".to_string(), "p@ss".to_string()))
            )
        );
        assert_eq!(without_credentials("ssh://git@host/r").1, None);
        assert_eq!(without_credentials("https://host/r").1, None);
    }

    #[test]
    fn a_status_code_in_the_port_is_not_taken_for_the_status() {
        let missing = "fatal: repository 'http://127.0.0.1:40312/nothing-here.git/' not found";
        assert_eq!(why(missing), "no repository at that URL");
        let refused =
            "fatal: unable to access 'http://127.0.0.1:4040/bp.git/': The requested URL returned error: 403";
        assert_eq!(why(refused), "authentication failed or is needed");
        let gone = "curl: (22) The requested URL returned error: 404";
        assert_eq!(why(gone), "no repository at that URL");
    }
}
