//! `.slugignore` deletes files, so it is fuzzed on a real folder: an app with a few files,
//! nested folders and links that lead out of it, beside a folder it must never touch.
//! Each run rebuilds the app, applies the input as `.slugignore`, then checks that the
//! outside is byte for byte what it was and that what was reported removed is gone.
#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shipway_fuzz::{names, outside, remove, scratch, snapshot, Node};

struct Fixture {
    root: &'static Path,
    app: PathBuf,
    outside: PathBuf,
    before: std::collections::BTreeMap<PathBuf, Node>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

const FILES: &[&str] = &[
    "Procfile",
    "a.log",
    "keep.txt",
    "tmp-data/x",
    "sub/tmp-data/y",
    "sub/b.log",
    "docs/readme",
    "deep/a/b/c/d.txt",
];

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let root = scratch("slugignore");
        let outside = outside(root, &["sentinel", "dir/x.log"]);
        let before = snapshot(&outside);
        Fixture {
            root,
            app: root.join("app"),
            outside,
            before,
        }
    })
}

fn build_app(app: &Path) {
    for file in FILES {
        let path = app.join(file);
        fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create a folder");
        fs::write(&path, "x").expect("write an app file");
    }
    // A pattern matching these must remove the link, never what it leads to.
    symlink("../outside", app.join("out")).expect("link to the outside folder");
    symlink("../outside/sentinel", app.join("sentinel.log")).expect("link to the sentinel");
    symlink("../../outside/dir", app.join("sub/dir")).expect("link to the outside folder");
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    remove(&f.app);
    build_app(&f.app);
    fs::write(f.app.join(".slugignore"), data).expect("write .slugignore");

    let result = shipway::slugignore::apply(&f.app);

    assert_eq!(
        names(f.root),
        ["app", "outside"],
        "something appeared beside the app"
    );
    assert!(f.app.is_dir(), "the app folder itself was removed");
    assert!(f.before == snapshot(&f.outside), "the outside folder changed");
    if let Ok(removed) = result {
        for entry in &removed.entries {
            let rel = Path::new(entry);
            assert!(rel.is_relative(), "{entry:?}");
            assert!(
                fs::symlink_metadata(f.app.join(rel)).is_err(),
                "{entry:?} reported removed, still there"
            );
        }
    }
});
