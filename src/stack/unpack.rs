//! Layers onto a root filesystem: a layer's tar applied over the ones below it, with
//! whiteouts (`.wh.NAME` removes NAME, `.wh..wh..opq` hides everything a lower layer put in
//! its folder), and no way out of the root: an entry naming `..` is refused, and a path
//! that crosses a symlink is resolved inside the root, as if the root were `/`, so that a
//! link to `/etc` written through lands in the image's `/etc`, never the host's.
//!
//! As root, owners and modes are kept. As an ordinary user, every file belongs to that
//! user (`chown` is not allowed) and setuid/setgid bits are dropped, since they would make
//! the user's own files privileged. Device nodes are skipped in both cases: a container
//! gets its own minimal `/dev`. Extended attributes (file capabilities) are not applied.
//!
//! It writes only below the root it is given; it does not fetch or verify anything.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::error::StackError;
use crate::io_error::{io, IoError};

/// How many symlinks one path may cross, as the kernel's own limit (MAXSYMLINKS).
const MAX_LINKS: u32 = 40;
const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT: &str = ".wh.";

/// What an unpack wrote, for the record and the user.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Bytes of regular files written.
    pub bytes: u64,
    pub files: u64,
    /// Character and block devices left out.
    pub devices_skipped: u64,
    /// Files and folders whose setuid/setgid bits were dropped (ordinary user only).
    pub setid_dropped: u64,
}

/// A root filesystem being built, layer after layer.
pub struct Unpacker {
    root: PathBuf,
    as_root: bool,
    /// Folders' modes and times, applied once every layer is in: a folder made read-only
    /// early would stop a later layer (or an ordinary user) from writing into it.
    folders: BTreeMap<PathBuf, (u32, u64)>,
    buffer: Vec<u8>,
    pub summary: Summary,
}

/// A problem with one entry of a layer, before the layer's digest is known to the caller.
enum Refusal {
    Escape(&'static str),
    Io(IoError),
}

impl From<IoError> for Refusal {
    fn from(e: IoError) -> Refusal {
        Refusal::Io(e)
    }
}

impl Unpacker {
    /// Build into `root`, which must exist and be empty.
    pub fn new(root: &Path) -> Unpacker {
        Unpacker {
            root: root.to_path_buf(),
            as_root: nix::unistd::geteuid().is_root(),
            folders: BTreeMap::new(),
            buffer: vec![0; 256 * 1024],
            summary: Summary::default(),
        }
    }

    /// Apply one layer's (uncompressed) tar. `digest` names the layer in errors.
    pub fn apply(&mut self, layer: impl Read, digest: &str) -> Result<(), StackError> {
        let mut archive = tar::Archive::new(layer);
        let mut this_layer: HashSet<PathBuf> = HashSet::new();
        let entries = archive.entries().map_err(|e| bad_tar(digest, &e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad_tar(digest, &e))?;
            let name = entry.path().map_err(|e| bad_tar(digest, &e))?.into_owned();
            let shown = name.display().to_string();
            self.entry(&mut entry, &name, &mut this_layer)
                .map_err(|r| match r {
                    Refusal::Escape(problem) => StackError::Escape {
                        digest: digest.to_string(),
                        entry: shown,
                        problem,
                    },
                    Refusal::Io(e) => StackError::Io(e),
                })?;
        }
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        name: &Path,
        this_layer: &mut HashSet<PathBuf>,
    ) -> Result<(), Refusal> {
        let rel = clean(name)?;
        let (Some(file_name), Some(parent)) = (rel.file_name(), rel.parent()) else {
            // The layer's own root (`./`): the image's root keeps the mode shipway gives it.
            return Ok(());
        };
        let file_name = file_name.to_os_string();
        let file_str = file_name.to_string_lossy();
        if file_str == OPAQUE {
            if let Some(dir) = self.resolve(parent, true)? {
                opaque(&dir, this_layer)?;
            }
            return Ok(());
        }
        if let Some(hidden) = file_str.strip_prefix(WHITEOUT) {
            if let Some(dir) = self.resolve(parent, false)? {
                remove_any(&dir.join(hidden))?;
            }
            return Ok(());
        }
        let Some(dir) = self.resolve(parent, true)? else {
            return Ok(());
        };
        let dest = dir.join(&file_name);
        let header = entry.header();
        let mode = header.mode().map_err(io("read the mode of", &dest))?;
        let mtime = header.mtime().unwrap_or(0);
        let owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let mode = self.mode(mode);
        this_layer.insert(dest.clone());
        match header.entry_type() {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&dest) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&dest)?;
                        mkdir(&dest)?;
                    }
                    Err(_) => mkdir(&dest)?,
                }
                self.chown(&dest, owner)?;
                self.folders.insert(dest, (mode, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_any(&dest)?;
                self.write_file(entry, &dest, mode, mtime, owner)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io("read the link of", &dest))?
                    .ok_or(Refusal::Escape("is a symlink without a target"))?
                    .into_owned();
                remove_any(&dest)?;
                std::os::unix::fs::symlink(&target, &dest).map_err(io("create", &dest))?;
                self.chown(&dest, owner)?;
                set_time(&dest, mtime);
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(io("read the link of", &dest))?
                    .ok_or(Refusal::Escape("is a hard link without a target"))?
                    .into_owned();
                let target = clean(&target)?;
                let source = match (target.parent(), target.file_name()) {
                    (Some(p), Some(n)) => self.resolve(p, false)?.map(|d| d.join(n)),
                    _ => None,
                };
                let source = source
                    .filter(|s| fs::symlink_metadata(s).is_ok_and(|m| !m.is_dir()))
                    .ok_or(Refusal::Escape("is a hard link to nothing this image has"))?;
                if source != dest {
                    remove_any(&dest)?;
                    fs::hard_link(&source, &dest).map_err(io("link", &dest))?;
                }
            }
            tar::EntryType::Fifo => {
                remove_any(&dest)?;
                nix::unistd::mkfifo(&dest, nix::sys::stat::Mode::from_bits_truncate(mode))
                    .map_err(|e| IoError::new("create", &dest, e.into()))?;
                self.chown(&dest, owner)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                this_layer.remove(&dest);
                self.summary.devices_skipped += 1;
            }
            // PAX and GNU long-name records are read by the tar crate; anything else
            // (volume labels, vendor types) carries no file.
            _ => {
                this_layer.remove(&dest);
            }
        }
        Ok(())
    }

    /// The mode a file gets: as in the layer, less setuid/setgid for an ordinary user.
    fn mode(&mut self, mode: u32) -> u32 {
        if self.as_root {
            mode & 0o7777
        } else {
            if mode & 0o6000 != 0 {
                self.summary.setid_dropped += 1;
            }
            mode & 0o1777
        }
    }

    fn chown(&self, path: &Path, (uid, gid): (u64, u64)) -> Result<(), Refusal> {
        if !self.as_root {
            return Ok(());
        }
        let (uid, gid) = (u32::try_from(uid).unwrap_or(0), u32::try_from(gid).unwrap_or(0));
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| Refusal::Io(IoError::new("chown", path, e)))
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        dest: &Path,
        mode: u32,
        mtime: u64,
        (uid, gid): (u64, u64),
    ) -> Result<(), Refusal> {
        let fail = |action| io(action, dest);
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dest)
            .map_err(fail("create"))?;
        loop {
            let n = entry
                .read(&mut self.buffer)
                .map_err(fail("read the layer's copy of"))?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buffer[..n]).map_err(fail("write"))?;
            self.summary.bytes += n as u64;
        }
        if self.as_root {
            let (uid, gid) = (u32::try_from(uid).unwrap_or(0), u32::try_from(gid).unwrap_or(0));
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(fail("chown"))?;
        }
        // After chown, which clears setuid bits.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(fail("chmod"))?;
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        let _ = file.set_times(fs::FileTimes::new().set_accessed(time).set_modified(time));
        self.summary.files += 1;
        Ok(())
    }

    /// The real folder `rel` names inside the root, every symlink on the way resolved as if
    /// the root were `/`. Missing folders are made when `create`, else `None`.
    fn resolve(&self, rel: &Path, create: bool) -> Result<Option<PathBuf>, Refusal> {
        let mut real = self.root.clone();
        let mut todo: VecDeque<PathBuf> = rel.components().map(|c| PathBuf::from(c.as_os_str())).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            match part.components().next() {
                Some(Component::RootDir) => real = self.root.clone(),
                Some(Component::ParentDir) if real != self.root => {
                    real.pop();
                }
                Some(Component::Normal(name)) => {
                    let next = real.join(name);
                    match fs::symlink_metadata(&next) {
                        Ok(m) if m.is_dir() => real = next,
                        Ok(m) if m.file_type().is_symlink() => {
                            links += 1;
                            if links > MAX_LINKS {
                                return Err(Refusal::Escape("crosses too many symlinks"));
                            }
                            let target = fs::read_link(&next).map_err(io("read", &next))?;
                            for c in target.components().rev() {
                                todo.push_front(PathBuf::from(c.as_os_str()));
                            }
                        }
                        Ok(_) => return Err(Refusal::Escape("has a parent that is a file, not a folder")),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            if !create {
                                return Ok(None);
                            }
                            mkdir(&next)?;
                            real = next;
                        }
                        Err(e) => return Err(IoError::new("inspect", next, e).into()),
                    }
                }
                _ => {}
            }
        }
        Ok(Some(real))
    }

    /// Give folders their modes and times, deepest first; the summary of the whole image.
    pub fn finish(self) -> Result<Summary, StackError> {
        for (dir, (mode, mtime)) in self.folders.iter().rev() {
            // A later layer may have put a symlink where the folder was: never chmod
            // through it.
            if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(*mode)).map_err(io("chmod", dir))?;
            set_time(dir, *mtime);
        }
        Ok(self.summary)
    }
}

fn bad_tar(digest: &str, e: &std::io::Error) -> StackError {
    StackError::Layer {
        digest: digest.to_string(),
        problem: format!("not a readable tar archive ({e})"),
    }
}

/// An entry's name as a path relative to the root: leading `/` and `./` dropped, `..`
/// refused (a well-made layer never has one).
fn clean(name: &Path) -> Result<PathBuf, Refusal> {
    let mut rel = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => return Err(Refusal::Escape("climbs out with `..`")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(rel)
}

fn mkdir(path: &Path) -> Result<(), Refusal> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| Refusal::Io(IoError::new("create", path, e)))
}

/// Remove what is at `path` (a folder with all it holds), never following a symlink.
fn remove_any(path: &Path) -> Result<(), Refusal> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => remove_tree(path).map_err(|e| match e {
            StackError::Io(e) => Refusal::Io(e),
            _ => Refusal::Escape("cannot be removed"),
        }),
        Ok(_) => fs::remove_file(path).map_err(|e| Refusal::Io(IoError::new("remove", path, e))),
        Err(_) => Ok(()),
    }
}

/// Everything below `dir` that this layer did not write goes: the opaque whiteout.
fn opaque(dir: &Path, this_layer: &HashSet<PathBuf>) -> Result<(), Refusal> {
    let entries = fs::read_dir(dir).map_err(io("list", dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !this_layer.contains(&path) {
            remove_any(&path)?;
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            opaque(&path, this_layer)?;
        }
    }
    Ok(())
}

fn set_time(path: &Path, mtime: u64) {
    let time = nix::sys::time::TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
    // A time that cannot be set changes nothing a program relies on but caches keyed on
    // it (pyc files): not worth failing the image for.
    let _ = nix::sys::stat::utimensat(
        None,
        path,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

/// Remove a whole tree, including folders an ordinary user's unpack left read-only
/// (their owner may always give them back the write bit).
pub fn remove_tree(dir: &Path) -> Result<(), StackError> {
    if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
        }
    }
    Ok(fs::remove_dir_all(dir).map_err(io("remove", dir))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("tar")
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).expect("append");
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, path, target).expect("append");
    }

    #[test]
    fn a_symlink_to_outside_is_written_through_inside_the_root() {
        let outside = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        let target = outside.path().display().to_string();
        let tar = layer(|b| {
            symlink(b, "escape", &target);
            file(b, "escape/pwned", b"x");
            symlink(b, "up", "../../../../..");
            file(b, "up/etc/pwned", b"y");
        });
        let mut u = Unpacker::new(root.path());
        u.apply(&tar[..], "sha256:test").expect("apply");
        u.finish().expect("finish");
        assert!(!outside.path().join("pwned").exists());
        assert!(root
            .path()
            .join(outside.path().strip_prefix("/").expect("abs"))
            .join("pwned")
            .is_file());
        assert!(root.path().join("etc/pwned").is_file());
    }

    #[test]
    fn whiteouts_remove_lower_files_and_opaque_folders_their_lower_content() {
        let root = tempfile::tempdir().expect("tempdir");
        let lower = layer(|b| {
            file(b, "etc/gone", b"1");
            file(b, "etc/kept", b"1");
            file(b, "var/o/old", b"1");
            file(b, "var/o/sub/old", b"1");
        });
        let upper = layer(|b| {
            file(b, "var/o/new-before", b"2");
            file(b, "etc/.wh.gone", b"");
            file(b, "var/o/.wh..wh..opq", b"");
            file(b, "var/o/new", b"2");
        });
        let mut u = Unpacker::new(root.path());
        u.apply(&lower[..], "sha256:lower").expect("lower");
        u.apply(&upper[..], "sha256:upper").expect("upper");
        u.finish().expect("finish");
        let r = root.path();
        assert!(!r.join("etc/gone").exists() && r.join("etc/kept").is_file());
        assert!(!r.join("etc/.wh.gone").exists());
        assert!(!r.join("var/o/old").exists() && !r.join("var/o/sub").exists());
        assert!(r.join("var/o/new").is_file() && r.join("var/o/new-before").is_file());
        assert!(!r.join("var/o/.wh..wh..opq").exists());
    }
}
