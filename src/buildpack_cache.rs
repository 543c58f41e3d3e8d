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
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::io_error::IoError;
use crate::process::{Exit, Spawn};

/// A fetch from a server that accepts and never answers is stopped at this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
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
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What is kept of one URL and ref.
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

pub struct BuildpackCache {
    root: PathBuf,
}

impl BuildpackCache {
    /// The cache of the shipway installation at `home`.
    pub fn new(home: &Path) -> BuildpackCache {
        BuildpackCache {
            root: home.join("buildpacks"),
        }
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
    /// and then use what it left.
    fn lock(&self, folder: &Path) -> Result<nix::fcntl::Flock<File>, CacheError> {
        crate::state::private_dir(&self.root)
            .map_err(|e| CacheError::Io(IoError::other("create", &self.root, e)))?;
        crate::state::exclusive_lock(&folder.with_extension("lock"))
            .map_err(|e| CacheError::Io(IoError::other("lock", folder, e)))
    }

    /// `url` at `reference`, fetched or refreshed as the rules above say.
    pub fn git(&self, url: &str, reference: Option<&str>) -> Result<Checkout, CacheError> {
        let folder = self.folder(url, reference);
        let _held = self.lock(&folder)?;
        let repo = folder.join("repo");
        let cached = read_entry(&folder).filter(|_| repo.join(".git").is_dir());
        let (mut entry, note) = match cached {
            Some(entry) if is_fixed(&repo, reference) => (entry, None),
            Some(entry) => match refresh(&repo, url, reference) {
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
                        "{url} cannot be reached ({why}): using the cached copy at {} (fetched {})",
                        crate::source::short(&entry.commit),
                        crate::ui::utc(UNIX_EPOCH + Duration::from_millis(entry.fetched_at))
                    );
                    (entry, Some(note))
                }
                Err(other) => return Err(other),
            },
            None => {
                let commit = clone(&folder, url, reference)?;
                let entry = Entry {
                    url: url.to_string(),
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
        write_entry(&folder, &entry)?;
        Ok(Checkout {
            dir: repo,
            entry,
            note,
        })
    }

    /// The archive at `url` (`.tgz`, `.tar.gz`), downloaded again at each use, and taken
    /// from the cache when the server cannot be reached. Its "commit" is a digest of its
    /// bytes. `dir` is the archive file itself.
    pub fn archive(&self, url: &str) -> Result<Checkout, CacheError> {
        let folder = self.folder(url, None);
        let _held = self.lock(&folder)?;
        crate::state::private_dir(&folder)
            .map_err(|e| CacheError::Io(IoError::other("create", &folder, e)))?;
        let file = folder.join("buildpack.tgz");
        let cached = read_entry(&folder).filter(|_| file.is_file());
        let partial = folder.join("buildpack.tgz.part");
        let (mut entry, note) = match (download(url, &partial), cached) {
            (Ok(()), cached) => {
                std::fs::rename(&partial, &file)
                    .map_err(|e| CacheError::Io(IoError::other("write", &file, e)))?;
                let entry = Entry {
                    url: url.to_string(),
                    reference: None,
                    commit: digest(&file).map_err(|e| CacheError::Io(IoError::other("read", &file, e)))?,
                    fetched_at: crate::clock::now_ms(),
                    last_used: cached.map_or(0, |c| c.last_used),
                    bytes: 0,
                };
                (entry, None)
            }
            (Err(why), Some(entry)) => {
                let _ = std::fs::remove_file(&partial);
                let note = format!(
                    "{url} cannot be reached ({why}): using the copy downloaded {}",
                    crate::ui::utc(UNIX_EPOCH + Duration::from_millis(entry.fetched_at))
                );
                (entry, Some(note))
            }
            (Err(why), None) => {
                let _ = std::fs::remove_dir_all(&folder);
                return Err(CacheError::Fetch {
                    url: url.to_string(),
                    why: why.to_string(),
                    detail: "nothing of it is cached".into(),
                });
            }
        };
        entry.last_used = crate::clock::now_ms();
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
            std::fs::remove_dir_all(&self.root)
                .map_err(|e| CacheError::Io(IoError::other("remove", &self.root, e)))?;
        }
        Ok(count)
    }
}

/// Whether a cached checkout at `reference` can never change: a commit, or a tag.
fn is_fixed(repo: &Path, reference: Option<&str>) -> bool {
    let Some(r) = reference else { return false };
    // A commit id is told by its look; only a tag needs git to ask.
    let is_commit = r.len() >= 7 && r.chars().all(|c| c.is_ascii_hexdigit());
    is_commit
        || git(
            repo,
            &["show-ref", "--verify", "--quiet", &format!("refs/tags/{r}")],
        )
        .is_ok()
}

fn clone(folder: &Path, url: &str, reference: Option<&str>) -> Result<String, CacheError> {
    let _ = std::fs::remove_dir_all(folder);
    crate::state::private_dir(folder).map_err(|e| CacheError::Io(IoError::other("create", folder, e)))?;
    let repo = folder.join("repo");
    let fetch = git(folder, &["clone", "--quiet", url, "repo"]);
    if let Err(detail) = fetch {
        let _ = std::fs::remove_dir_all(folder);
        return Err(CacheError::Fetch {
            url: url.to_string(),
            why: why(&detail).to_string(),
            detail,
        });
    }
    if let Some(r) = reference {
        if let Err(detail) = git(&repo, &["checkout", "--quiet", "--detach", r]) {
            let _ = std::fs::remove_dir_all(folder);
            return Err(CacheError::UnknownRef {
                url: url.to_string(),
                reference: r.to_string(),
                detail,
            });
        }
    }
    head(&repo)
}

/// Fetch `reference` (or the default branch) again and check it out.
fn refresh(repo: &Path, url: &str, reference: Option<&str>) -> Result<String, CacheError> {
    let wanted = reference.unwrap_or("HEAD");
    if let Err(detail) = git(repo, &["fetch", "--quiet", "--force", "origin", wanted]) {
        return Err(CacheError::Fetch {
            url: url.to_string(),
            why: why(&detail).to_string(),
            detail,
        });
    }
    git(
        repo,
        &["checkout", "--quiet", "--force", "--detach", "FETCH_HEAD"],
    )
    .map_err(|detail| CacheError::UnknownRef {
        url: url.to_string(),
        reference: wanted.to_string(),
        detail,
    })?;
    head(repo)
}

fn head(repo: &Path) -> Result<String, CacheError> {
    git(repo, &["rev-parse", "HEAD"])
        .map(|out| out.trim().to_string())
        .map_err(|detail| {
            CacheError::Io(IoError::new(
                "read the commit of",
                repo.to_path_buf(),
                std::io::Error::other(detail),
            ))
        })
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
    } else if has("Network is unreachable") || has("timed out") || has("did not finish within") {
        "the network does not reach it"
    } else {
        "git failed"
    }
}

/// Download `url` to `to` with curl; why not, in a word, when it fails.
fn download(url: &str, to: &Path) -> Result<(), &'static str> {
    let dir = to.parent().unwrap_or(Path::new("/"));
    let out = Spawn::new("curl", dir)
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--max-time",
            "120",
            "--output",
        ])
        .args([to.as_os_str(), std::ffi::OsStr::new(url)])
        .host_env(|_| false, &[])
        .output(64 * 1024, FETCH_TIMEOUT + Duration::from_secs(10), None)
        .map_err(|_| "curl cannot be run: install curl")?;
    // curl's exit codes: 6 no such host, 7 refused, 22 an HTTP error, 28 timed out.
    match out.status.code() {
        Some(0) => Ok(()),
        Some(6) => Err("the host name does not resolve"),
        Some(7) => Err("the connection was refused"),
        Some(22) if String::from_utf8_lossy(&out.stderr).contains("error: 4") => {
            // The status as curl words it: the URL's port may hold any digits.
            let said = String::from_utf8_lossy(&out.stderr);
            if said.contains("error: 401") || said.contains("error: 403") {
                Err("authentication failed or is needed")
            } else {
                Err("no archive at that URL")
            }
        }
        Some(28) => Err("the network does not reach it"),
        _ => Err("the download failed"),
    }
}

/// A digest of a file's bytes (FNV-1a, 64 bits), to tell one download from another.
fn digest(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut hash = FNV_OFFSET;
    let mut f = File::open(file)?;
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

/// git with its messages in English (they are read above) and no prompt; its stdout, or
/// what failed and what it said.
pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Spawn::new("git", dir)
        .args(args)
        .host_env(|_| false, &[("GIT_TERMINAL_PROMPT", "0")])
        .output(GIT_OUTPUT_LIMIT, FETCH_TIMEOUT, None)
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(format!("`git {}` {}: {stderr}", args.join(" "), Exit(out.status)))
    }
}

fn read_entry(folder: &Path) -> Option<Entry> {
    crate::state::read_toml(&folder.join("entry.toml")).ok().flatten()
}

fn write_entry(folder: &Path, entry: &Entry) -> Result<(), CacheError> {
    crate::state::write_toml(&folder.join("entry.toml"), entry, 0o600)
        .map_err(|e| CacheError::Io(IoError::other("write", folder, e)))
}

#[cfg(test)]
mod tests {
    use super::why;

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
