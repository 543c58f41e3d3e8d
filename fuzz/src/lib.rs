//! What the filesystem fuzz targets share: a scratch folder per fuzzing process, a
//! folder beside the one under test with a snapshot to prove nothing in it changed, and the
//! kernel's view of where a symbolic link leads.
//!
//! It checks the product from outside; it never reaches into shipway's internals.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// A folder for this process, under `$TMPDIR` (run with `TMPDIR=/dev/shm` to keep the
/// disk out of the loop). libFuzzer ends with `exit()`, which runs no destructor, so the
/// folder is removed by an `atexit` handler; a crash leaves it behind for inspection.
pub fn scratch(target: &str) -> &'static Path {
    SCRATCH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("shipway-fuzz-{target}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch folder");
        let dir = fs::canonicalize(&dir).expect("canonicalize the scratch folder");
        extern "C" fn remove_scratch() {
            if let Some(dir) = SCRATCH.get() {
                let _ = fs::remove_dir_all(dir);
            }
        }
        // SAFETY: registers a plain function with no captured state.
        unsafe { libc::atexit(remove_scratch) };
        dir
    })
}

/// `root/outside`, the folder a target must leave as it was: a `dir/` and, with the text
/// `must survive`, each of `files` (paths inside it).
pub fn outside(root: &Path, files: &[&str]) -> PathBuf {
    let outside = root.join("outside");
    fs::create_dir_all(outside.join("dir")).expect("create the outside folder");
    for file in files {
        fs::write(outside.join(file), "must survive").expect("write a file outside");
    }
    outside
}

/// One entry of a snapshot: kind, size and, for links, the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { len: u64, content: Vec<u8> },
    Link(PathBuf),
    Other,
}

/// Every entry under `root` (itself included), links not followed.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut nodes = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.expect("walk the snapshot tree");
        let kind = entry.file_type();
        let node = if kind.is_dir() {
            Node::Dir
        } else if kind.is_file() {
            let content = fs::read(entry.path()).expect("read a snapshot file");
            Node::File {
                len: content.len() as u64,
                content,
            }
        } else if kind.is_symlink() {
            Node::Link(fs::read_link(entry.path()).expect("read a snapshot link"))
        } else {
            Node::Other
        };
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        nodes.insert(rel.to_path_buf(), node);
    }
    nodes
}

/// The names directly in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .expect("list a folder")
        .map(|e| e.expect("list a folder").file_name())
        .collect();
    names.sort();
    names
}

/// Where `path` leads once every link on the way is followed, as the kernel would, with
/// missing components resolved by name. `None` when there are more than 40 links (ELOOP).
/// `path` must be absolute.
pub fn resolve(path: &Path) -> Option<PathBuf> {
    let mut at = PathBuf::from("/");
    let mut queue: Vec<OsString> = Vec::new();
    push_steps(&mut queue, path);
    let mut hops = 0;
    while let Some(part) = queue.pop() {
        if part == ".." {
            at.pop();
            continue;
        }
        at.push(&part);
        if let Ok(target) = fs::read_link(&at) {
            hops += 1;
            if hops > 40 {
                return None;
            }
            at.pop();
            if target.has_root() {
                at = PathBuf::from("/");
            }
            push_steps(&mut queue, &target);
        }
    }
    Some(at)
}

/// Pushes `path`'s components so that the first one is popped first.
fn push_steps(queue: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(part) => queue.push(part.to_os_string()),
            Component::ParentDir => queue.push("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

/// Panics unless every symbolic link under `root` leads inside `root` (or to `root`
/// itself: a link to `.` stays home).
pub fn assert_links_stay_inside(root: &Path) {
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.expect("walk the extracted tree");
        if !entry.path_is_symlink() {
            continue;
        }
        // A loop (None) reaches nothing at all.
        if let Some(to) = resolve(entry.path()) {
            assert!(
                to.starts_with(root),
                "link {} leads to {}, outside {}",
                entry.path().display(),
                to.display(),
                root.display()
            );
        }
    }
}

/// Removes `path` whatever it is, if it exists.
pub fn remove(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).expect("clean up a folder"),
        Ok(_) => fs::remove_file(path).expect("clean up a file"),
        Err(_) => {}
    }
}
