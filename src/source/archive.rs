//! Safe extraction of tar streams: a `.tar.gz` the user deploys, a buildpack tarball, or the
//! output of `git archive`. An archive is untrusted input: nothing is ever written outside
//! the folder it is extracted into, links may not lead out of it, special files are
//! refused, and the uncompressed size is capped before the bytes are written.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::copy::set_dir_mode;
use super::staging::Staging;
use super::SourceError;
use crate::io_error::IoError;

/// The platform's limit on an archive's uncompressed size (PLATFORM.md §1).
pub const ARCHIVE_LIMIT_BYTES: u64 = 314_572_800;

/// Links followed while checking where a symbolic link leads; the kernel's own limit.
const MAX_LINK_HOPS: usize = 40;

/// What an extraction wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    /// Uncompressed bytes of regular files.
    pub bytes: u64,
}

/// Extracts a platform archive: a gzip tar holding a single folder at its root, whose
/// content becomes `dest` (which must not exist; its parent must). Everything is extracted
/// into a temporary folder beside `dest` first, so a refused archive leaves nothing behind.
pub fn extract_tar_gz(archive: &Path, dest: &Path, limit_bytes: u64) -> Result<ArchiveStats, SourceError> {
    let staging = Staging::beside(dest)?;
    let (stats, links, top) = unpack_single_folder(archive, staging.path(), limit_bytes)?;
    links.check_stay_inside(&top)?;
    staging.finish(&top)?;
    Ok(stats)
}

/// The steps of a platform archive's extraction, shared by [`extract_tar_gz`] and source
/// intake so that the one the fuzzer reaches is the one deployments use: unpacks into
/// `staging/unpacked`, requires a single top folder, and returns what was written with
/// that top folder (not yet moved into place). The links are not checked yet: the caller
/// knows which folder becomes the app, the top one or PROJECT_DIR in it.
pub(crate) fn unpack_single_folder(
    archive: &Path,
    staging: &Path,
    limit_bytes: u64,
) -> Result<(ArchiveStats, Links, PathBuf), SourceError> {
    let unpacked = staging.join("unpacked");
    let (stats, links) = unpack_tar_gz_into(archive, &unpacked, limit_bytes)?;
    let top = single_top_folder(&unpacked, &links.label)?;
    Ok((stats, links, top))
}

/// Extracts a gzip tar as it is, whatever its root holds, into `dest` (which must not
/// exist): buildpack tarballs keep `bin/` at their root.
pub fn unpack_tar_gz(archive: &Path, dest: &Path, limit_bytes: u64) -> Result<ArchiveStats, SourceError> {
    let staging = Staging::beside(dest)?;
    let unpacked = staging.path().join("unpacked");
    let (stats, links) = unpack_tar_gz_into(archive, &unpacked, limit_bytes)?;
    links.check_stay_inside(&unpacked)?;
    staging.finish(&unpacked)?;
    Ok(stats)
}

/// Extracts into `into`, a folder created here.
fn unpack_tar_gz_into(
    archive: &Path,
    into: &Path,
    limit_bytes: u64,
) -> Result<(ArchiveStats, Links), SourceError> {
    let label = archive.display().to_string();
    // O_NONBLOCK: a FIFO named like an archive (intake refuses one, but it may have taken
    // the file's place since) opens at once instead of waiting for a writer, and is refused.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(archive)
        .map_err(|e| SourceError::Io(IoError::new("open", archive, e)))?;
    let meta = file
        .metadata()
        .map_err(|e| SourceError::Io(IoError::new("read", archive, e)))?;
    if !meta.is_file() {
        return Err(SourceError::NotFileOrFolder {
            path: archive.to_path_buf(),
            kind: super::app_file::kind_of(meta.file_type()),
        });
    }
    // MultiGzDecoder: concatenated gzip members are one valid stream (`cat a.gz b.gz`).
    let mut gz = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file));
    let unpacked = unpack_tar(&mut gz, into, &label, limit_bytes)?;
    // tar stops reading at its end-of-archive blocks, before the gzip trailer: read on to
    // the end so that a truncated or corrupt file is reported, not half-trusted. The
    // padding after the end blocks is small; what lies beyond a few MiB is not read.
    io::copy(&mut (&mut gz).take(16 << 20), &mut io::sink()).map_err(|source| {
        SourceError::ArchiveCorrupt {
            archive: label,
            source,
        }
    })?;
    Ok(unpacked)
}

/// Returns the only entry at the root of `unpacked` when it is a folder.
fn single_top_folder(unpacked: &Path, label: &str) -> Result<PathBuf, SourceError> {
    let mut root = Vec::new();
    let mut only = None;
    for entry in fs::read_dir(unpacked).map_err(|e| SourceError::Io(IoError::new("read", unpacked, e)))? {
        let entry = entry.map_err(|e| SourceError::Io(IoError::new("read", unpacked, e)))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let name = entry.file_name().to_string_lossy().into_owned();
        root.push(if is_dir { format!("{name}/") } else { name });
        only = is_dir.then(|| entry.path());
    }
    match (root.len(), only) {
        (1, Some(top)) => Ok(top),
        _ => {
            root.sort();
            Err(SourceError::ArchiveNotSingleFolder {
                archive: label.to_string(),
                root,
            })
        }
    }
}

/// Extracts the tar stream `reader` into `into`, a folder created here (its parent must
/// exist). `label` names the archive in messages. The symbolic links written are returned
/// unchecked: see [`Links::check_stay_inside`].
pub(crate) fn unpack_tar<R: Read>(
    reader: R,
    into: &Path,
    label: &str,
    limit_bytes: u64,
) -> Result<(ArchiveStats, Links), SourceError> {
    fs::create_dir(into).map_err(|e| SourceError::Io(IoError::new("create", into, e)))?;
    let mut unpacker = Unpacker {
        into,
        label,
        limit_bytes,
        dirs: HashSet::new(),
        links: Vec::new(),
        stats: ArchiveStats::default(),
        buffer: vec![0; 1 << 16],
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| unpacker.corrupt(e))?;
    for entry in entries {
        let entry = entry.map_err(|e| unpacker.corrupt(e))?;
        unpacker.entry(entry)?;
    }
    let links = Links {
        into: into.to_path_buf(),
        label: label.to_string(),
        written: unpacker.links,
    };
    Ok((unpacker.stats, links))
}

/// The symbolic links an extraction wrote, not yet checked: only the caller knows which
/// folder of the extracted tree becomes the app (the whole tree, its single top folder, or
/// PROJECT_DIR in it), and a link that stays inside the tree can still lead out of that
/// folder: `app/up -> ..` names the extraction folder, which is not shipped.
#[derive(Debug)]
pub(crate) struct Links {
    /// The extraction folder.
    into: PathBuf,
    /// The archive, in messages.
    label: String,
    /// Each link relative to `into`, as named in the archive, with its target.
    written: Vec<(PathBuf, PathBuf)>,
}

impl Links {
    /// Refuses any link under `app` (`into` or a folder in it: what becomes the app) that
    /// leads out of `app`. Links elsewhere in the tree are not shipped and not checked.
    /// Run once the whole tree exists: a link that stays inside on its own can lead out
    /// through another link extracted later.
    pub(crate) fn check_stay_inside(&self, app: &Path) -> Result<(), SourceError> {
        if self.written.is_empty() {
            return Ok(());
        }
        let base = app.strip_prefix(&self.into).map_err(|_| {
            SourceError::Io(IoError::new(
                "check the links in",
                app,
                io::Error::other(format!("not inside {}", self.into.display())),
            ))
        })?;
        for (link, target) in &self.written {
            if let Ok(inside) = link.strip_prefix(base) {
                check_link_stays_inside(app, &self.label, &link.display().to_string(), inside, target)?;
            }
        }
        Ok(())
    }
}

/// Follows `target` from the folder holding `link` (relative to `root`) the way the kernel
/// would, through the links under `root`, and refuses it if it ever rises above `root`.
/// `name` is the link's name in messages.
fn check_link_stays_inside(
    root: &Path,
    label: &str,
    name: &str,
    link: &Path,
    target: &Path,
) -> Result<(), SourceError> {
    let outside = || link_outside(label, name, target, "symbolic");
    let mut at: Vec<OsString> = link
        .parent()
        .map(|p| p.iter().map(|c| c.to_os_string()).collect())
        .unwrap_or_default();
    // `..` stands for a parent step: a normal component can never be named so.
    let mut queue: VecDeque<OsString> = steps(target).ok_or_else(outside)?.into();
    let mut hops = 0;
    while let Some(part) = queue.pop_front() {
        if part == ".." {
            if at.pop().is_none() {
                return Err(outside());
            }
            continue;
        }
        at.push(part);
        let here: PathBuf = at.iter().collect();
        let Ok(meta) = fs::symlink_metadata(root.join(&here)) else {
            // Nothing there: what follows is resolved by name alone, and no later
            // component can be a link since none exists below a missing folder.
            continue;
        };
        if !meta.is_symlink() {
            continue;
        }
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return Err(outside());
        }
        let next = fs::read_link(root.join(&here))
            .map_err(|e| SourceError::Io(IoError::new("read the link", root.join(&here), e)))?;
        at.pop();
        for part in steps(&next).ok_or_else(outside)?.into_iter().rev() {
            queue.push_front(part);
        }
    }
    Ok(())
}

struct Unpacker<'a> {
    into: &'a Path,
    label: &'a str,
    limit_bytes: u64,
    /// Folders (relative) known to be real folders created here; anything else on the way
    /// to an entry must be checked, since it may be a link the archive planted.
    dirs: HashSet<PathBuf>,
    /// Symbolic links written, with their targets, for the final check.
    links: Vec<(PathBuf, PathBuf)>,
    stats: ArchiveStats,
    buffer: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), SourceError> {
        let kind = entry.header().entry_type();
        // `git archive` writes a pax global header holding the commit id: metadata only.
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry.path().map_err(|e| self.corrupt(e))?.into_owned();
        let rel = self.relative(&path, &name)?;
        if rel.as_os_str().is_empty() {
            // `./` names the root itself.
            return match kind {
                EntryType::Directory => Ok(()),
                _ => Err(SourceError::ArchiveSpecialFile {
                    archive: self.label.into(),
                    entry: name,
                    kind: "file without a name".into(),
                }),
            };
        }
        let mode = entry.header().mode().map_err(|e| self.corrupt(e))?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&mut entry, &rel, &name, mode)
            }
            EntryType::Directory => self.directory(&rel, &name, mode),
            EntryType::Symlink => {
                let target = self.link_name(&entry, &name)?;
                self.symlink(&rel, &name, target)
            }
            EntryType::Link => {
                let target = self.link_name(&entry, &name)?;
                self.hard_link(&rel, &name, &target)
            }
            other => Err(SourceError::ArchiveSpecialFile {
                archive: self.label.into(),
                entry: name,
                kind: match other {
                    EntryType::Char => "character device".into(),
                    EntryType::Block => "block device".into(),
                    EntryType::Fifo => "fifo (named pipe)".into(),
                    other => format!("tar entry of type `{}`", other.as_byte() as char),
                },
            }),
        }
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        name: &str,
        mode: u32,
    ) -> Result<(), SourceError> {
        // The size is known from the header: refuse before writing a byte of it.
        let size = entry.size();
        let seen = self.stats.bytes.saturating_add(size);
        if seen > self.limit_bytes {
            return Err(SourceError::ArchiveTooHeavy {
                archive: self.label.into(),
                limit: self.limit_bytes,
                seen,
            });
        }
        let path = self.prepare(rel, name)?;
        // create_new: never open through a link. The umask applies, as with tar and git.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&path)
            .map_err(|e| SourceError::Io(IoError::new("create", &path, e)))?;
        let mut written = 0u64;
        loop {
            let n = entry.read(&mut self.buffer).map_err(|e| corrupt(self.label, e))?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buffer[..n])
                .map_err(|e| SourceError::Io(IoError::new("write", &path, e)))?;
            written += n as u64;
        }
        // A stream cut inside a file's data reads as a short file, not as an error.
        if written != size {
            return Err(corrupt(
                self.label,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("`{name}` is cut short ({written} of {size} bytes)"),
                ),
            ));
        }
        self.stats.files += 1;
        self.stats.bytes = seen;
        Ok(())
    }

    fn directory(&mut self, rel: &Path, name: &str, mode: u32) -> Result<(), SourceError> {
        self.ensure_dir(rel, name)?;
        set_dir_mode(&self.into.join(rel), mode & 0o755)
    }

    fn symlink(&mut self, rel: &Path, name: &str, target: PathBuf) -> Result<(), SourceError> {
        if target.has_root() {
            return Err(self.link_outside(name, &target, "symbolic"));
        }
        let path = self.prepare(rel, name)?;
        std::os::unix::fs::symlink(&target, &path)
            .map_err(|e| SourceError::Io(IoError::new("create the link", &path, e)))?;
        self.links.push((rel.to_path_buf(), target));
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hard_link(&mut self, rel: &Path, name: &str, target: &Path) -> Result<(), SourceError> {
        // A hard link names another entry of the archive, relative to its root.
        let target_name = target.display().to_string();
        let target_rel = self
            .relative(target, &target_name)
            .map_err(|_| self.link_outside(name, target, "hard"))?;
        let missing = || SourceError::ArchiveHardLinkMissing {
            archive: self.label.into(),
            entry: name.into(),
            target: target_name.clone(),
        };
        // The way to the target must be folders extracted here, or the link could reach
        // through a planted symbolic link to a file outside.
        let parent = target_rel.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() && !self.dirs.contains(parent) {
            return Err(missing());
        }
        let source = self.into.join(&target_rel);
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_file() => {}
            _ => return Err(missing()),
        }
        let path = self.prepare(rel, name)?;
        fs::hard_link(&source, &path)
            .map_err(|e| SourceError::Io(IoError::new("create the link", &path, e)))?;
        self.stats.hard_links += 1;
        Ok(())
    }

    /// Makes the folders above `rel` and clears the way for a new non-folder entry; returns
    /// its full path. A later entry replaces an earlier file or link of the same name, as
    /// tar does; it never replaces a folder.
    fn prepare(&mut self, rel: &Path, name: &str) -> Result<PathBuf, SourceError> {
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.ensure_dir(parent, name)?;
        }
        let path = self.into.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Err(SourceError::ArchiveEntryConflict {
                archive: self.label.into(),
                entry: name.into(),
                existing: rel.display().to_string(),
            }),
            Ok(_) => {
                fs::remove_file(&path).map_err(|e| SourceError::Io(IoError::new("replace", &path, e)))?;
                Ok(path)
            }
            Err(_) => Ok(path),
        }
    }

    /// Makes `rel` and its parents real folders, refusing to go through anything else.
    fn ensure_dir(&mut self, rel: &Path, name: &str) -> Result<(), SourceError> {
        if self.dirs.contains(rel) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for component in rel.components() {
            prefix.push(component);
            if self.dirs.contains(&prefix) {
                continue;
            }
            let path = self.into.join(&prefix);
            match fs::symlink_metadata(&path) {
                Err(_) => {
                    fs::create_dir(&path).map_err(|e| SourceError::Io(IoError::new("create", &path, e)))?;
                    self.stats.dirs += 1;
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(SourceError::ArchiveEntryConflict {
                        archive: self.label.into(),
                        entry: name.into(),
                        existing: prefix.display().to_string(),
                    })
                }
            }
            self.dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// An entry's name as a clean relative path: `.` dropped, absolute and `..` refused.
    fn relative(&self, path: &Path, name: &str) -> Result<PathBuf, SourceError> {
        let mut rel = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => {
                    return Err(SourceError::ArchiveAbsolutePath {
                        archive: self.label.into(),
                        entry: name.into(),
                    })
                }
                Component::ParentDir => {
                    return Err(SourceError::ArchiveParentComponent {
                        archive: self.label.into(),
                        entry: name.into(),
                    })
                }
            }
        }
        Ok(rel)
    }

    fn link_name<R: Read>(&self, entry: &tar::Entry<'_, R>, name: &str) -> Result<PathBuf, SourceError> {
        match entry.link_name().map_err(|e| self.corrupt(e))? {
            Some(target) if !target.as_os_str().is_empty() => Ok(target.into_owned()),
            _ => Err(self.corrupt(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("link `{name}` has no target"),
            ))),
        }
    }

    fn link_outside(&self, name: &str, target: &Path, kind: &'static str) -> SourceError {
        link_outside(self.label, name, target, kind)
    }

    fn corrupt(&self, source: io::Error) -> SourceError {
        corrupt(self.label, source)
    }
}

/// A link target as steps (`..` for a parent), or None when it is absolute.
fn steps(target: &Path) -> Option<Vec<OsString>> {
    let mut steps = Vec::new();
    for component in target.components() {
        match component {
            Component::Normal(part) => steps.push(part.to_os_string()),
            Component::ParentDir => steps.push("..".into()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(steps)
}

fn link_outside(label: &str, name: &str, target: &Path, kind: &'static str) -> SourceError {
    SourceError::ArchiveLinkOutside {
        archive: label.into(),
        entry: name.into(),
        target: target.display().to_string(),
        kind,
    }
}

fn corrupt(label: &str, source: io::Error) -> SourceError {
    SourceError::ArchiveCorrupt {
        archive: label.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    //! Extraction: what a sound archive gives, and each way a hostile or broken one is
    //! refused without writing anything outside its temporary folder.
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::os::unix::fs::PermissionsExt;
    use tar::Header;

    /// One tar entry, written with raw names so that hostile ones can be built.
    struct Spec<'a> {
        kind: EntryType,
        name: &'a str,
        link: &'a str,
        data: &'a [u8],
        mode: u32,
    }

    fn file<'a>(name: &'a str, data: &'a [u8]) -> Spec<'a> {
        Spec {
            kind: EntryType::Regular,
            name,
            link: "",
            data,
            mode: 0o644,
        }
    }
    fn dir(name: &str) -> Spec<'_> {
        Spec {
            kind: EntryType::Directory,
            name,
            link: "",
            data: b"",
            mode: 0o755,
        }
    }
    fn link<'a>(kind: EntryType, name: &'a str, target: &'a str) -> Spec<'a> {
        Spec {
            kind,
            name,
            link: target,
            data: b"",
            mode: 0o777,
        }
    }

    fn tar_bytes(specs: &[Spec<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for spec in specs {
            let mut header = Header::new_gnu();
            let old = header.as_old_mut();
            old.name[..spec.name.len()].copy_from_slice(spec.name.as_bytes());
            old.linkname[..spec.link.len()].copy_from_slice(spec.link.as_bytes());
            header.set_entry_type(spec.kind);
            header.set_size(spec.data.len() as u64);
            header.set_mode(spec.mode);
            header.set_cksum();
            builder.append(&header, spec.data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A folder holding `app.tar.gz`; the destination is `app` beside it.
    struct Case {
        tmp: tempfile::TempDir,
    }

    impl Case {
        fn new(specs: &[Spec<'_>]) -> Case {
            Case::from_gz(&gzip(&tar_bytes(specs)))
        }
        fn from_gz(gz: &[u8]) -> Case {
            let tmp = tempfile::tempdir().unwrap();
            fs::create_dir(tmp.path().join("work")).unwrap();
            fs::write(tmp.path().join("app.tar.gz"), gz).unwrap();
            Case { tmp }
        }
        fn archive(&self) -> PathBuf {
            self.tmp.path().join("app.tar.gz")
        }
        fn dest(&self) -> PathBuf {
            self.tmp.path().join("work/app")
        }
        fn extract(&self, limit: u64) -> Result<ArchiveStats, SourceError> {
            extract_tar_gz(&self.archive(), &self.dest(), limit)
        }
        /// Refused: no destination, no temporary folder left, nothing written elsewhere.
        fn refused(&self) -> SourceError {
            let error = self.extract(ARCHIVE_LIMIT_BYTES).unwrap_err();
            self.assert_untouched();
            error
        }
        fn assert_untouched(&self) {
            let work: Vec<_> = fs::read_dir(self.tmp.path().join("work")).unwrap().collect();
            assert!(work.is_empty(), "left behind: {work:?}");
            let mut top: Vec<_> = fs::read_dir(self.tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            top.sort();
            assert_eq!(top, ["app.tar.gz", "work"]);
        }
    }

    #[test]
    fn extracts_the_single_top_folder_with_modes_and_links() {
        let global = Spec {
            kind: EntryType::XGlobalHeader,
            name: "pax_global_header",
            link: "",
            data: b"52 comment=0123456789012345678901234567890123456789\n",
            mode: 0o666,
        };
        let case = Case::new(&[
            global,
            dir("./myapp/"),
            Spec {
                mode: 0o755,
                ..file("./myapp/bin/run", b"#!/bin/sh\n")
            },
            file("myapp/readme", b"hello"),
            link(EntryType::Symlink, "myapp/run", "bin/run"),
            link(EntryType::Symlink, "myapp/bin/readme", "../readme"),
            link(EntryType::Link, "myapp/copy", "myapp/readme"),
            dir("myapp/empty/"),
        ]);
        let stats = case.extract(ARCHIVE_LIMIT_BYTES).unwrap();
        let dest = case.dest();
        let mode = fs::metadata(dest.join("bin/run")).unwrap().permissions().mode();
        assert_eq!(mode & 0o100, 0o100, "executable bit lost");
        assert_eq!(fs::read_to_string(dest.join("run")).unwrap(), "#!/bin/sh\n");
        assert_eq!(
            fs::read_link(dest.join("bin/readme")).unwrap(),
            Path::new("../readme")
        );
        assert_eq!(fs::read_to_string(dest.join("copy")).unwrap(), "hello");
        assert!(dest.join("empty").is_dir());
        assert!(!dest.join("pax_global_header").exists());
        assert_eq!(
            stats,
            ArchiveStats {
                files: 2,
                dirs: 3,
                symlinks: 2,
                hard_links: 1,
                bytes: 15
            }
        );
        // Only `app` was added beside the archive's work folder.
        let work: Vec<_> = fs::read_dir(case.tmp.path().join("work")).unwrap().collect();
        assert_eq!(work.len(), 1);
    }

    #[test]
    fn later_entries_replace_files_but_never_folders() {
        let case = Case::new(&[file("a/f", b"old"), file("a/f", b"new")]);
        case.extract(ARCHIVE_LIMIT_BYTES).unwrap();
        assert_eq!(fs::read_to_string(case.dest().join("f")).unwrap(), "new");

        let case = Case::new(&[file("a/d/f", b"x"), file("a/d", b"file over a folder")]);
        assert!(matches!(case.refused(), SourceError::ArchiveEntryConflict { .. }));
    }

    #[test]
    fn refuses_two_top_entries_naming_them() {
        let case = Case::new(&[file("app/index.php", b"<?php"), file("README", b"x")]);
        let error = case.refused();
        assert!(matches!(error, SourceError::ArchiveNotSingleFolder { .. }));
        let message = error.to_string();
        assert!(message.contains("README, app/"), "{message}");
        assert!(message.contains("single folder"), "{message}");
    }

    #[test]
    fn refuses_a_lone_file_and_an_empty_archive() {
        let case = Case::new(&[file("index.php", b"<?php")]);
        assert!(matches!(
            case.refused(),
            SourceError::ArchiveNotSingleFolder { .. }
        ));
        let case = Case::new(&[]);
        let error = case.refused();
        assert!(error.to_string().contains("root holds nothing"), "{error}");
    }

    #[test]
    fn unpack_tar_gz_keeps_the_root_as_it_is() {
        let case = Case::new(&[file("bin/detect", b"#!/bin/sh"), file("README", b"x")]);
        unpack_tar_gz(&case.archive(), &case.dest(), ARCHIVE_LIMIT_BYTES).unwrap();
        assert!(case.dest().join("bin/detect").is_file());
        assert!(case.dest().join("README").is_file());
    }

    #[test]
    fn refuses_an_absolute_path() {
        let outside = tempfile::tempdir().unwrap();
        let name = format!("{}/evil", outside.path().display());
        let case = Case::new(&[file("app/ok", b"x"), file(&name, b"owned")]);
        let error = case.refused();
        assert!(matches!(error, SourceError::ArchiveAbsolutePath { ref entry, .. } if *entry == name));
        assert!(!outside.path().join("evil").exists());
    }

    #[test]
    fn refuses_a_parent_component() {
        let case = Case::new(&[file("app/ok", b"x"), file("app/../../evil", b"owned")]);
        assert!(matches!(
            case.refused(),
            SourceError::ArchiveParentComponent { .. }
        ));
        assert!(!case.tmp.path().join("evil").exists());
    }

    #[test]
    fn refuses_symbolic_links_leading_out() {
        for target in ["/etc/passwd", "../../x", "../../../../../../../../etc"] {
            let case = Case::new(&[dir("app/"), link(EntryType::Symlink, "app/x", target)]);
            let error = case.refused();
            assert!(
                matches!(error, SourceError::ArchiveLinkOutside { kind: "symbolic", .. }),
                "{target}: {error}"
            );
        }
    }

    #[test]
    fn refuses_a_chain_of_links_that_leads_out() {
        // Each link stays inside when read by name; followed, `l` is `app` itself, so
        // `d/l/../..` climbs above the root. One step less is still out: `d/l/..` is the
        // folder holding `app`, not shipped.
        for target in ["d/l/../..", "d/l/.."] {
            let case = Case::new(&[
                dir("app/d/"),
                link(EntryType::Symlink, "app/d/l", ".."),
                link(EntryType::Symlink, "app/y", target),
            ]);
            assert!(
                matches!(case.refused(), SourceError::ArchiveLinkOutside { ref entry, .. } if entry == "app/y"),
                "{target}"
            );
        }
        // Back down into the app through the same link: kept.
        let case = Case::new(&[
            dir("app/d/"),
            link(EntryType::Symlink, "app/d/l", ".."),
            link(EntryType::Symlink, "app/y", "d/l/d"),
        ]);
        case.extract(ARCHIVE_LIMIT_BYTES).unwrap();
    }

    #[test]
    fn refuses_a_link_to_the_folder_above_the_top_one() {
        // Found by `cargo fuzz run archive`: the check followed links within the whole
        // extracted tree, but only the top folder becomes the app, so `app/up -> ..`
        // passed and pointed at the destination's parent.
        let specs = || vec![dir("app/"), link(EntryType::Symlink, "app/up", "..")];
        let case = Case::new(&specs());
        let error = case.refused();
        assert!(
            matches!(error, SourceError::ArchiveLinkOutside { ref entry, ref target, .. }
                if entry == "app/up" && target == ".."),
            "{error}"
        );
        // Kept as it is, the archive's root is the destination and `..` is inside it.
        let case = Case::new(&specs());
        unpack_tar_gz(&case.archive(), &case.dest(), ARCHIVE_LIMIT_BYTES).unwrap();
        assert_eq!(
            fs::read_link(case.dest().join("app/up")).unwrap(),
            Path::new("..")
        );
    }

    #[test]
    fn refuses_writing_through_a_link() {
        let case = Case::new(&[
            dir("app/real/"),
            link(EntryType::Symlink, "app/alias", "real"),
            file("app/alias/f", b"x"),
        ]);
        assert!(matches!(case.refused(), SourceError::ArchiveEntryConflict { .. }));
    }

    #[test]
    fn refuses_hard_links_leading_out_or_nowhere() {
        for target in ["/etc/passwd", "../outside", "app/../../outside"] {
            let case = Case::new(&[file("app/f", b"x"), link(EntryType::Link, "app/h", target)]);
            let error = case.refused();
            assert!(
                matches!(error, SourceError::ArchiveLinkOutside { kind: "hard", .. }),
                "{target}: {error}"
            );
        }
        let case = Case::new(&[file("app/f", b"x"), link(EntryType::Link, "app/h", "app/g")]);
        assert!(matches!(
            case.refused(),
            SourceError::ArchiveHardLinkMissing { .. }
        ));
        // Through a planted link to a folder outside: refused, not followed.
        let case = Case::new(&[
            dir("app/"),
            link(EntryType::Symlink, "app/etc", "/etc"),
            link(EntryType::Link, "app/h", "app/etc/passwd"),
        ]);
        let error = case.refused();
        assert!(
            matches!(
                error,
                SourceError::ArchiveLinkOutside { .. } | SourceError::ArchiveHardLinkMissing { .. }
            ),
            "{error}"
        );
    }

    #[test]
    fn refuses_devices_and_fifos() {
        for (kind, word) in [
            (EntryType::Char, "character device"),
            (EntryType::Block, "block device"),
            (EntryType::Fifo, "fifo"),
        ] {
            let case = Case::new(&[
                dir("app/"),
                Spec {
                    kind,
                    ..file("app/dev", b"")
                },
            ]);
            let error = case.refused();
            assert!(matches!(error, SourceError::ArchiveSpecialFile { .. }), "{error}");
            assert!(error.to_string().contains(word), "{error}");
        }
    }

    #[test]
    fn limit_counts_uncompressed_bytes() {
        let data = vec![7u8; 1000];
        let specs = || vec![file("app/a", &data[..600]), file("app/b", &data[..400])];
        Case::new(&specs()).extract(1000).unwrap();
        let case = Case::new(&specs());
        let error = case.extract(999).unwrap_err();
        case.assert_untouched();
        assert!(
            error
                .to_string()
                .starts_with("The archive is too heavy (more than 999 bytes)"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_real_archive_over_300_mb() {
        // 315 MB of zeros as concatenated gzip members (one valid gzip stream): the same
        // megabyte compressed once keeps the test fast. The entry's header comes first.
        let size: u64 = ARCHIVE_LIMIT_BYTES + 1;
        let mut header = Header::new_gnu();
        header.set_path("app/big").unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        let mut gz = gzip(header.as_bytes());
        let megabyte = gzip(&vec![0u8; 1 << 20]);
        let padded = size.div_ceil(512) * 512 + 1024;
        for _ in 0..padded >> 20 {
            gz.extend_from_slice(&megabyte);
        }
        gz.extend_from_slice(&gzip(&vec![0u8; (padded & ((1 << 20) - 1)) as usize]));
        let case = Case::from_gz(&gz);
        let error = case.refused();
        assert!(matches!(error, SourceError::ArchiveTooHeavy { .. }));
        assert!(
            error
                .to_string()
                .contains("The archive is too heavy (more than 314572800 bytes)"),
            "{error}"
        );
    }

    #[test]
    fn refuses_broken_gzip_clearly() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let gz = gzip(&tar_bytes(&[file("app/data", &data), file("app/more", b"x")]));
        // Cut in the middle, cut in the trailer, not gzip at all.
        for broken in [
            &gz[..gz.len() / 2],
            &gz[..gz.len() - 4],
            b"not gzip at all".as_slice(),
        ] {
            let case = Case::from_gz(broken);
            let error = case.refused();
            assert!(matches!(error, SourceError::ArchiveCorrupt { .. }), "{error}");
            assert!(error.to_string().contains("gzip -t"), "{error}");
        }
    }
}
