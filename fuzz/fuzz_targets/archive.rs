//! Archive extraction on any bytes. The first byte picks the variant: bit 0 set means the
//! rest is a tar stream that is gzipped here, so that the tar parser and the extraction
//! rules are reached rather than gzip's checksum; bit 1 picks `extract_tar_gz` (one top
//! folder, the platform's archives) over `unpack_tar_gz` (buildpack tarballs).
//!
//! Whatever the bytes, the call must not panic, nothing beside the destination may change
//! or appear, a refused archive leaves no destination, and an accepted one holds no link
//! leading out of it and no more bytes than the limit.
#![no_main]

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use shipway_fuzz::{assert_links_stay_inside, names, outside, remove, scratch, snapshot, Node};

/// Small, so that the size limit is reached by inputs libFuzzer can write.
const LIMIT: u64 = 64 * 1024;

struct Fixture {
    root: &'static Path,
    archive: PathBuf,
    work: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
    before: BTreeMap<PathBuf, Node>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let root = scratch("archive");
        let outside = outside(root, &["sentinel"]);
        let work = root.join("work");
        fs::create_dir(&work).expect("create the destination's parent");
        Fixture {
            root,
            archive: root.join("archive.tar.gz"),
            dest: work.join("app"),
            work,
            before: snapshot(&outside),
            outside,
        }
    })
}

/// Bytes of distinct regular files under `dir`: hard links share theirs.
fn stored_bytes(dir: &Path) -> u64 {
    let mut inodes = HashSet::new();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk the extracted tree"))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().expect("stat an extracted file"))
        .filter(|m| inodes.insert(m.ino()))
        .map(|m| m.len())
        .sum()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let gzipped = mode & 1 == 1;
    let single_top = mode & 2 == 2;
    if gzipped {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(body).expect("gzip into memory");
        fs::write(&f.archive, gz.finish().expect("gzip into memory")).expect("write the archive");
    } else {
        fs::write(&f.archive, body).expect("write the archive");
    }

    let result = if single_top {
        shipway::source::extract_tar_gz(&f.archive, &f.dest, LIMIT)
    } else {
        shipway::source::unpack_tar_gz(&f.archive, &f.dest, LIMIT)
    };

    assert_eq!(
        names(f.root),
        ["archive.tar.gz", "outside", "work"],
        "something appeared outside"
    );
    assert!(f.before == snapshot(&f.outside), "the outside folder changed");
    match result {
        Ok(stats) => {
            assert_eq!(names(&f.work), ["app"], "the staging folder was left behind");
            assert!(f.dest.is_dir() && !f.dest.is_symlink());
            assert_links_stay_inside(&f.dest);
            let stored = stored_bytes(&f.dest);
            assert!(stored <= LIMIT, "{stored} bytes extracted, limit {LIMIT}");
            assert!(stats.bytes <= LIMIT, "{stats:?}");
        }
        Err(_) => assert!(names(&f.work).is_empty(), "a refused archive left files behind"),
    }
    remove(&f.dest);
});
