//! Source intake, the first step of a deployment: turn what the user deploys (a folder, a
//! git work tree, one commit of a repository, a `.tar.gz` archive, a `.war`/`.jar` file)
//! into a new folder holding exactly the app's files, the way the platform would receive
//! them (PLATFORM.md §1), and say what was taken. It owns reading the source and the safety
//! of archive extraction; it never builds, and never writes anywhere but beside `dest`.
//!
//! Decisions worth knowing:
//! - A folder inside a git work tree gives what a push carries plus the working changes a
//!   developer expects to rehearse: tracked and untracked files, never ignored ones, never
//!   `.git`. Its version is HEAD's SHA even when the tree has changes; the description then
//!   says "with uncommitted changes", since the build log must not claim a commit's content.
//! - `--ref` gives exactly that commit's tree (`git archive`, so `export-ignore` applies as
//!   on a push); submodule content is not in it, as in any `git archive`.
//! - Modification times are not kept: nothing in a fresh build depends on them, and setting
//!   them costs a system call per file.

mod app_file;
mod archive;
mod copy;
mod error;
mod git;
mod pack;
mod staging;

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

pub use app_file::{read_app_file, AppFileError, APP_FILE_LIMIT};
pub use archive::{extract_tar_gz, unpack_tar_gz, ArchiveStats, ARCHIVE_LIMIT_BYTES};
pub use copy::{copy_cache, copy_tree, count_files, CopyStats, FileCount};
pub(crate) use copy::{copy_tree_excluding, Exclude};
pub use error::SourceError;
pub(crate) use git::under_git;
pub use git::{Ignored, RULES_SHOWN};
pub use pack::pack_tar_gz;

use crate::io_error::IoError;
use archive::{unpack_single_folder, Links};
use copy::{create_parents, in_parallel};
use staging::Staging;

/// What was taken, for logs and deployment history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// One line saying where the files came from, e.g. "git work tree /src/app on branch
    /// main at 1a2b3c4d5e6f with uncommitted changes".
    pub description: String,
    /// The full commit SHA when known: SOURCE_VERSION for the build.
    pub version: Option<String>,
    /// The ref given with `--ref`, else the branch checked out in the work tree.
    pub git_ref: Option<String>,
    /// Regular files in the app.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// FIFOs, sockets and devices found in a folder source and left out (relative paths):
    /// git cannot carry them either, so a push would not have them.
    pub skipped: Vec<PathBuf>,
    /// In a work tree: what git ignores under the folder taken, left out.
    pub ignored: Option<Ignored>,
}

/// Fill `dest` (must not exist; created, with its parent existing) with the app's files
/// from `input`. `git_ref`: take exactly that commit's tree (git archive). `project_dir`:
/// the PROJECT_DIR config var: only that subfolder of the source becomes the app.
///
/// The files are gathered in a temporary folder beside `dest` and renamed into place at
/// the end: on error `dest` does not exist.
pub fn intake(
    input: &Path,
    git_ref: Option<&str>,
    project_dir: Option<&str>,
    dest: &Path,
) -> Result<SourceInfo, SourceError> {
    let input = local_path(input)?;
    let project_dir = parse_project_dir(project_dir)?;
    let meta = file_or_folder(&input)?;
    let input = fs::canonicalize(&input).map_err(|e| SourceError::Io(IoError::new("read", &input, e)))?;
    let staging = Staging::beside(dest)?;
    let mut taken = match git_ref {
        Some(git_ref) if meta.is_dir() => take_commit(&input, git_ref, &staging)?,
        Some(git_ref) => {
            return Err(SourceError::NotAGitRepository {
                path: input,
                git_ref: git_ref.into(),
            })
        }
        None if meta.is_dir() => match git::work_tree(&input)? {
            Some(work_tree) => take_work_tree(&input, work_tree, project_dir.as_deref(), &staging)?,
            None => take_folder(&input, project_dir.as_deref(), &staging)?,
        },
        None => match InputFile::of(&input) {
            Some(InputFile::Archive) => take_archive(&input, &staging)?,
            Some(InputFile::War | InputFile::Jar) => take_java_file(&input, &staging)?,
            None => return Err(SourceError::UnsupportedInput { path: input }),
        },
    };
    // Folders and work trees were taken from the subfolder directly; extracted trees are
    // whole and the subfolder is picked now.
    if let (Some(project_dir), false) = (&project_dir, taken.picked) {
        taken.built = pick_project_dir(&taken.built, project_dir, &taken.description)?;
        (taken.files, taken.bytes) = count_files(&taken.built)?;
    }
    // Checked against the folder that becomes the app, now that it is known.
    if let Some(links) = &taken.links {
        links.check_stay_inside(&taken.built)?;
    }
    if let Some(project_dir) = &project_dir {
        taken
            .description
            .push_str(&format!(", PROJECT_DIR={}", project_dir.display()));
    }
    staging.finish(&taken.built)?;
    Ok(SourceInfo {
        description: taken.description,
        version: taken.version,
        git_ref: taken.git_ref,
        files: taken.files,
        bytes: taken.bytes,
        skipped: taken.skipped,
        ignored: taken.ignored,
    })
}

/// How many regular files are under `root`, but not in a `.git` folder: told from the
/// folders' listings, without reading each file's size.
fn count_files_except_git(root: &Path) -> Result<u64, SourceError> {
    let mut files = 0;
    let walk = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git");
    for entry in walk {
        files += u64::from(
            entry
                .map_err(|e| SourceError::Io(IoError::new("read", root, e.into())))?
                .file_type()
                .is_file(),
        );
    }
    Ok(files)
}

/// A source gathered in the staging folder, not yet moved into place.
struct Taken {
    built: PathBuf,
    /// Whether PROJECT_DIR was already applied while taking.
    picked: bool,
    /// The symbolic links of an extracted tree, still to be checked against `built`.
    links: Option<Links>,
    description: String,
    version: Option<String>,
    git_ref: Option<String>,
    files: u64,
    bytes: u64,
    skipped: Vec<PathBuf>,
    ignored: Option<Ignored>,
}

enum InputFile {
    Archive,
    War,
    Jar,
}

impl InputFile {
    fn of(path: &Path) -> Option<InputFile> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(InputFile::Archive)
        } else if name.ends_with(".war") {
            Some(InputFile::War)
        } else if name.ends_with(".jar") {
            Some(InputFile::Jar)
        } else {
            None
        }
    }
}

/// The bundled buildpack the platform builds a deployed `.war` or `.jar` file with
/// (PLATFORM.md §1: the WAR buildpack, the JVM common buildpack), or None for any other
/// source, which goes through the usual selection.
pub fn java_file_buildpack(input: &Path) -> Option<&'static str> {
    if !input.is_file() {
        return None;
    }
    match InputFile::of(input)? {
        InputFile::War => Some("java-war"),
        InputFile::Jar => Some("jvm-common"),
        InputFile::Archive => None,
    }
}

/// The source a command was given, as a local path that exists: what a command checks
/// before it starts work that intake would otherwise refuse later.
pub fn check_input(input: &Path) -> Result<PathBuf, SourceError> {
    let path = local_path(input)?;
    file_or_folder(&path)?;
    Ok(path)
}

/// The source's metadata, when it is a folder or a regular file (links followed). Anything
/// else is refused before anything opens it: opening a FIFO for reading waits for a writer
/// that may never come, and a device may never end.
fn file_or_folder(path: &Path) -> Result<fs::Metadata, SourceError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() || meta.is_file() => Ok(meta),
        Ok(meta) => Err(SourceError::NotFileOrFolder {
            path: path.to_path_buf(),
            kind: app_file::kind_of(meta.file_type()),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(SourceError::InputNotFound { path: path.into() }),
        Err(e) => Err(SourceError::Io(IoError::new("read", path, e))),
    }
}

/// Refuses remote addresses (shipway is offline) and reads `file://` as a path.
fn local_path(input: &Path) -> Result<PathBuf, SourceError> {
    let text = input.to_string_lossy();
    if let Some(path) = text.strip_prefix("file://") {
        return Ok(PathBuf::from(path));
    }
    let remote = ["http://", "https://", "ssh://", "git://"]
        .iter()
        .any(|scheme| text.starts_with(scheme))
        // scp-like `git@github.com:org/app.git`, unless a local file has that name.
        || (text.contains('@') && text.contains(':') && !input.exists());
    if remote {
        return Err(SourceError::RemoteInput { url: text.into() });
    }
    Ok(input.to_path_buf())
}

/// PROJECT_DIR as a relative path: a leading `/` means the source's root, `..` is refused,
/// and an empty value or `.` means the whole source.
fn parse_project_dir(project_dir: Option<&str>) -> Result<Option<PathBuf>, SourceError> {
    let Some(raw) = project_dir else {
        return Ok(None);
    };
    let mut rel = PathBuf::new();
    for component in Path::new(raw.trim()).components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(SourceError::ProjectDirInvalid {
                    project_dir: raw.into(),
                })
            }
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// `root/project_dir`, when each step of it is a real folder: a symbolic link could lead
/// out of the source.
fn pick_project_dir(root: &Path, project_dir: &Path, origin: &str) -> Result<PathBuf, SourceError> {
    let mut path = root.to_path_buf();
    let mut shown = PathBuf::new();
    for part in project_dir.iter() {
        path.push(part);
        shown.push(part);
        let not_folder = |kind| SourceError::ProjectDirNotFolder {
            project_dir: project_dir.display().to_string(),
            path: shown.display().to_string(),
            origin: origin.into(),
            kind,
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.is_symlink() => return Err(not_folder("symbolic link")),
            Ok(_) => return Err(not_folder("file")),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(SourceError::ProjectDirMissing {
                    project_dir: project_dir.display().to_string(),
                    origin: origin.into(),
                })
            }
            Err(e) => return Err(SourceError::Io(IoError::new("read", &path, e))),
        }
    }
    Ok(path)
}

fn take_folder(input: &Path, project_dir: Option<&Path>, staging: &Staging) -> Result<Taken, SourceError> {
    let description = format!("folder {}", input.display());
    let root = match project_dir {
        Some(project_dir) => pick_project_dir(input, project_dir, &description)?,
        None => input.to_path_buf(),
    };
    let built = staging.path().join("app");
    // The staging folder lies beside `dest`, which may be inside the source.
    let staging_meta =
        fs::metadata(staging.path()).map_err(|e| SourceError::Io(IoError::new("read", staging.path(), e)))?;
    let exclude = Exclude {
        git: true,
        dirs: vec![(staging_meta.dev(), staging_meta.ino())],
        ..Exclude::default()
    };
    let stats = copy_tree_excluding(&root, &built, exclude)?;
    Ok(Taken {
        built,
        picked: true,
        links: None,
        description,
        version: None,
        git_ref: None,
        files: stats.files,
        bytes: stats.bytes,
        skipped: stats.skipped,
        ignored: None,
    })
}

fn take_work_tree(
    input: &Path,
    work_tree: git::WorkTree,
    project_dir: Option<&Path>,
    staging: &Staging,
) -> Result<Taken, SourceError> {
    let mut description = format!("git work tree {}", input.display());
    let root = match project_dir {
        Some(project_dir) => pick_project_dir(input, project_dir, &description)?,
        None => input.to_path_buf(),
    };
    let files = git::list_files(&root)?;
    let built = staging.path().join("app");
    // `git status` stats every file and may re-read the racily clean ones: run it while
    // the files are copied rather than after.
    // So does the walk for what git ignores.
    let (stats, changed, ignored) = std::thread::scope(|scope| {
        let changed = scope.spawn(|| match work_tree.head {
            Some(_) => git::has_changes(&root),
            None => Ok(false),
        });
        let ignored = scope.spawn(|| git::ignored(&root, files.len()));
        let stats = copy_listed(&root, &files, &built);
        let changed = changed
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let ignored = ignored
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (stats, changed, ignored)
    });
    let (stats, changed, ignored) = (stats?, changed?, ignored?);
    if let Some(Ignored {
        whole: true,
        files,
        rules,
    }) = &ignored
    {
        if stats.files == 0 {
            return Err(SourceError::IgnoredByGit {
                path: root.clone(),
                rule: rules.first().map(|(r, _)| r.clone()).unwrap_or_default(),
                files: *files,
            });
        }
    }
    if let Some(branch) = &work_tree.branch {
        description.push_str(&format!(" on branch {branch}"));
    }
    match &work_tree.head {
        Some(head) => description.push_str(&format!(" at {}", short(head))),
        None => description.push_str(" before its first commit"),
    }
    if changed {
        description.push_str(" with uncommitted changes");
    }
    Ok(Taken {
        built,
        picked: true,
        links: None,
        description,
        version: work_tree.head,
        git_ref: work_tree.branch,
        files: stats.files,
        bytes: stats.bytes,
        skipped: stats.skipped,
        ignored,
    })
}

fn take_commit(input: &Path, git_ref: &str, staging: &Staging) -> Result<Taken, SourceError> {
    let commit = git::resolve_commit(input, git_ref)?;
    let built = staging.path().join("tree");
    let (stats, links) = git::extract_commit(input, &commit, &built)?;
    Ok(Taken {
        built,
        picked: false,
        links: Some(links),
        description: format!("git ref {git_ref} at {} of {}", short(&commit), input.display()),
        version: Some(commit),
        git_ref: Some(git_ref.into()),
        files: stats.files + stats.hard_links,
        bytes: stats.bytes,
        skipped: Vec::new(),
        ignored: None,
    })
}

fn take_archive(input: &Path, staging: &Staging) -> Result<Taken, SourceError> {
    let (stats, links, built) = unpack_single_folder(input, staging.path(), ARCHIVE_LIMIT_BYTES)?;
    let top = built.file_name().unwrap_or_default().to_string_lossy();
    Ok(Taken {
        description: format!("archive {} (folder {top}/)", input.display()),
        built,
        picked: false,
        links: Some(links),
        version: None,
        git_ref: None,
        files: stats.files + stats.hard_links,
        bytes: stats.bytes,
        skipped: Vec::new(),
        ignored: None,
    })
}

/// The platform wraps a deployed `.war` or `.jar` in the app folder (PLATFORM.md §1).
fn take_java_file(input: &Path, staging: &Staging) -> Result<Taken, SourceError> {
    let built = staging.path().join("app");
    fs::create_dir(&built).map_err(|e| SourceError::Io(IoError::new("create", &built, e)))?;
    let name = input.file_name().unwrap_or_default();
    let bytes =
        fs::copy(input, built.join(name)).map_err(|e| SourceError::Io(IoError::new("copy", input, e)))?;
    Ok(Taken {
        built,
        picked: false,
        links: None,
        description: format!("file {}", input.display()),
        version: None,
        git_ref: None,
        files: 1,
        bytes,
        skipped: Vec::new(),
        ignored: None,
    })
}

/// Copies the files git listed (relative to `base`) into `to`, created here.
fn copy_listed(base: &Path, files: &[PathBuf], to: &Path) -> Result<CopyStats, SourceError> {
    fs::create_dir(to).map_err(|e| SourceError::Io(IoError::new("create", to, e)))?;
    let mut known = HashSet::new();
    let mut nested = CopyStats::default();
    let copied = in_parallel(|copier| {
        for rel in files {
            if rel.iter().any(|part| part == ".git") {
                continue;
            }
            let source = base.join(rel);
            let meta = match fs::symlink_metadata(&source) {
                Ok(meta) => meta,
                // Tracked, then deleted in the work tree: the developer's change is the
                // deletion.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(SourceError::Io(IoError::new("read", &source, e))),
            };
            // Folders are made here, before any file below them is handed to a worker.
            create_parents(to, rel, &mut known)?;
            let target = to.join(rel);
            if meta.is_dir() {
                // A submodule, or a nested repository git lists as one untracked folder:
                // its files as checked out, without its own `.git`.
                let exclude = Exclude {
                    git: true,
                    ..Exclude::default()
                };
                let mut sub = copy_tree_excluding(&source, &target, exclude)?;
                sub.skipped = sub.skipped.into_iter().map(|p| rel.join(p)).collect();
                nested.add(sub);
            } else if !copier.copy(source, target, meta.file_type(), rel.clone()) {
                break;
            }
        }
        Ok(())
    })?;
    nested.add(copied);
    nested.skipped.sort();
    Ok(nested)
}

/// A commit's first 12 hex digits, as shown in messages.
pub(crate) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests;
