//! intake end to end: folders, git work trees, commits, archives and PROJECT_DIR, each
//! against real files and a real `git`, never the user's git configuration.

use super::*;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

/// A scratch folder with a repository (or a plain folder) at `src` and room for `dest`.
struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("src")).unwrap();
        Scratch { tmp }
    }

    fn repo() -> Scratch {
        let scratch = Scratch::new();
        scratch.git(&["init", "-q", "-b", "main"]);
        scratch
    }

    fn src(&self) -> PathBuf {
        self.tmp.path().join("src")
    }

    fn dest(&self) -> PathBuf {
        self.tmp.path().join("dest")
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.src().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dest().join(rel)).unwrap()
    }

    fn has(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.dest().join(rel)).is_ok()
    }

    /// git with a fixed identity and no global or system configuration.
    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .current_dir(self.src())
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", self.tmp.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn intake(&self, git_ref: Option<&str>, project_dir: Option<&str>) -> Result<SourceInfo, SourceError> {
        intake(&self.src(), git_ref, project_dir, &self.dest())
    }

    /// After a refusal: no destination and no temporary folder beside it.
    fn assert_nothing_written(&self) {
        let mut names: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".gitconfig")
            .collect();
        names.sort();
        assert_eq!(names, ["src"], "left behind");
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// A repository with every kind of file a work tree can hold, one commit made.
fn busy_repo() -> (Scratch, String) {
    let s = Scratch::repo();
    s.write(".gitignore", "*.log\n/build/\n");
    s.write("app.py", "print('v1')\n");
    s.write("gone.txt", "deleted after the commit\n");
    s.write("bin/run", "#!/bin/sh\necho run\n");
    fs::set_permissions(s.src().join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("bin/run", s.src().join("start")).unwrap();
    s.write("ignored-but-tracked.log", "tracked wins over ignored\n");
    s.git(&["add", "-f", "ignored-but-tracked.log"]);
    let head = s.commit_all("first");
    fs::remove_file(s.src().join("gone.txt")).unwrap();
    s.write("debug.log", "ignored\n");
    s.write("build/out.bin", "ignored folder\n");
    s.write("notes/new.txt", "untracked\n");
    (s, head)
}

#[test]
fn work_tree_gives_tracked_and_untracked_files_but_not_ignored_ones() {
    let (s, head) = busy_repo();
    let info = s.intake(None, None).unwrap();
    assert_eq!(s.read("app.py"), "print('v1')\n");
    assert_eq!(s.read("notes/new.txt"), "untracked\n");
    assert!(s.has("ignored-but-tracked.log"));
    assert!(!s.has("debug.log"));
    assert!(!s.has("build"));
    assert!(!s.has("gone.txt"));
    assert!(!s.has(".git"));
    assert_eq!(mode(&s.dest().join("bin/run")), 0o755);
    assert_eq!(
        fs::read_link(s.dest().join("start")).unwrap(),
        Path::new("bin/run")
    );
    assert_eq!(info.version.as_deref(), Some(head.as_str()));
    assert_eq!(info.git_ref.as_deref(), Some("main"));
    assert!(
        info.description.contains("with uncommitted changes"),
        "{}",
        info.description
    );
    assert!(info.description.contains(&head[..12]), "{}", info.description);
    // .gitignore, app.py, bin/run, ignored-but-tracked.log, notes/new.txt
    assert_eq!(info.files, 5);
    assert!(
        fs::read_dir(s.tmp.path()).unwrap().count() == 2,
        "staging left behind"
    );
}

#[test]
fn clean_work_tree_is_described_as_its_commit() {
    let s = Scratch::repo();
    s.write("index.php", "<?php");
    let head = s.commit_all("first");
    let info = s.intake(None, None).unwrap();
    assert_eq!(info.version, Some(head));
    assert!(!info.description.contains("uncommitted"), "{}", info.description);
    assert_eq!((info.files, info.bytes), (1, 5));
}

#[test]
fn work_tree_before_the_first_commit_has_no_version() {
    let s = Scratch::repo();
    s.write("index.php", "<?php");
    let info = s.intake(None, None).unwrap();
    assert_eq!(info.version, None);
    assert!(s.has("index.php"));
}

#[test]
fn ref_takes_exactly_an_older_commit() {
    let (s, first) = busy_repo();
    s.git(&["tag", "v1"]);
    s.write("app.py", "print('v2')\n");
    s.write("added-later.txt", "x");
    let second = s.commit_all("second");
    assert_ne!(first, second);
    let info = s.intake(Some("v1"), None).unwrap();
    assert_eq!(s.read("app.py"), "print('v1')\n");
    // The commit's tree: what was deleted since is there, untracked and later files are not.
    assert!(s.has("gone.txt"));
    assert!(!s.has("added-later.txt"));
    assert!(!s.has("notes/new.txt"));
    assert!(!s.has("pax_global_header"));
    assert_eq!(mode(&s.dest().join("bin/run")), 0o755);
    assert_eq!(
        fs::read_link(s.dest().join("start")).unwrap(),
        Path::new("bin/run")
    );
    assert_eq!(info.version.as_deref(), Some(first.as_str()));
    assert_eq!(info.git_ref.as_deref(), Some("v1"));
    assert!(info.description.contains("git ref v1"), "{}", info.description);
}

#[test]
fn unknown_ref_says_how_to_list_refs() {
    let (s, _) = busy_repo();
    let error = s.intake(Some("no-such-branch"), None).unwrap_err();
    assert!(matches!(error, SourceError::UnknownRef { .. }), "{error}");
    assert!(error.to_string().contains("show-ref"), "{error}");
    s.assert_nothing_written();
    // An option-looking ref is a name, not an option.
    let error = s.intake(Some("--output=/tmp/x"), None).unwrap_err();
    assert!(matches!(error, SourceError::UnknownRef { .. }), "{error}");
}

#[test]
fn ref_outside_a_repository_is_refused() {
    let s = Scratch::new();
    s.write("index.php", "<?php");
    let error = s.intake(Some("main"), None).unwrap_err();
    assert!(matches!(error, SourceError::NotAGitRepository { .. }), "{error}");
    s.assert_nothing_written();
}

#[test]
fn subfolder_of_a_repository_gives_that_subfolder() {
    let s = Scratch::repo();
    s.write("api/main.go", "package main");
    s.write("web/index.js", "x");
    let head = s.commit_all("first");
    s.write("api/untracked.txt", "y");
    let info = intake(&s.src().join("api"), None, None, &s.dest()).unwrap();
    assert!(s.has("main.go") && s.has("untracked.txt") && !s.has("web"));
    assert_eq!(info.version.as_deref(), Some(head.as_str()));
    fs::remove_dir_all(s.dest()).unwrap();
    intake(&s.src().join("api"), Some("HEAD"), None, &s.dest()).unwrap();
    assert!(s.has("main.go") && !s.has("untracked.txt") && !s.has("web"));
}

#[test]
fn folder_outside_git_is_copied_whole_except_git() {
    let s = Scratch::new();
    s.write("index.php", "<?php");
    s.write("debug.log", "kept: no git, no ignore rules");
    s.write(".git/HEAD", "not a real repository");
    fs::create_dir(s.src().join("empty")).unwrap();
    let info = s.intake(None, None).unwrap();
    assert!(s.has("index.php") && s.has("debug.log") && s.has("empty"));
    assert!(!s.has(".git"));
    assert_eq!(info.version, None);
    assert!(info.description.starts_with("folder "), "{}", info.description);
}

#[test]
fn destination_inside_the_source_folder_is_not_copied_into_itself() {
    let s = Scratch::new();
    s.write("index.php", "<?php");
    let dest = s.src().join("out");
    intake(&s.src(), None, None, &dest).unwrap();
    assert!(dest.join("index.php").is_file());
    let inside: Vec<_> = fs::read_dir(&dest).unwrap().collect();
    assert_eq!(inside.len(), 1, "{inside:?}");
}

#[test]
fn project_dir_picks_a_subfolder_of_every_kind_of_source() {
    let s = Scratch::repo();
    s.write("api/Procfile", "web: ./api");
    s.write("web/package.json", "{}");
    s.commit_all("first");
    s.write("api/new.txt", "z");

    let info = s.intake(None, Some("api")).unwrap();
    assert!(s.has("Procfile") && s.has("new.txt") && !s.has("api") && !s.has("web"));
    assert_eq!(info.files, 2);
    assert!(
        info.description.ends_with(", PROJECT_DIR=api"),
        "{}",
        info.description
    );
    fs::remove_dir_all(s.dest()).unwrap();

    let info = s.intake(Some("main"), Some("/api/")).unwrap();
    assert!(s.has("Procfile") && !s.has("new.txt") && !s.has("web"));
    assert_eq!(info.files, 1);
}

#[test]
fn project_dir_missing_invalid_or_a_file_is_refused() {
    let s = Scratch::new();
    s.write("api/Procfile", "web: ./api");
    let error = s.intake(None, Some("backend")).unwrap_err();
    assert!(matches!(error, SourceError::ProjectDirMissing { .. }), "{error}");
    assert!(
        error.to_string().contains("PROJECT_DIR `backend` does not exist"),
        "{error}"
    );
    s.assert_nothing_written();

    let error = s.intake(None, Some("api/../..")).unwrap_err();
    assert!(matches!(error, SourceError::ProjectDirInvalid { .. }), "{error}");

    let error = s.intake(None, Some("api/Procfile")).unwrap_err();
    assert!(
        matches!(error, SourceError::ProjectDirNotFolder { kind: "file", .. }),
        "{error}"
    );

    symlink("/etc", s.src().join("etc")).unwrap();
    let error = s.intake(None, Some("etc")).unwrap_err();
    assert!(
        matches!(
            error,
            SourceError::ProjectDirNotFolder {
                kind: "symbolic link",
                ..
            }
        ),
        "{error}"
    );
    s.assert_nothing_written();
}

/// Writes `src/app.tar.gz` holding the given (path, content) files, then the given (path,
/// target) symbolic links.
fn archive(s: &Scratch, files: &[(&str, &str)], links: &[(&str, &str)]) -> PathBuf {
    let path = s.src().join("app.tar.gz");
    let gz = flate2::write::GzEncoder::new(fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn archive_with_one_top_folder_and_project_dir() {
    let s = Scratch::new();
    let path = archive(&s, &[("mono/api/Procfile", "web: x"), ("mono/web/a", "y")], &[]);
    let info = intake(&path, None, None, &s.dest()).unwrap();
    assert!(s.has("api/Procfile") && s.has("web/a"));
    assert!(
        info.description.contains("(folder mono/)"),
        "{}",
        info.description
    );
    assert_eq!((info.files, info.bytes), (2, 7));
    fs::remove_dir_all(s.dest()).unwrap();

    let info = intake(&path, None, Some("api"), &s.dest()).unwrap();
    assert!(s.has("Procfile") && !s.has("web"));
    assert_eq!((info.files, info.bytes), (1, 6));
    fs::remove_dir_all(s.dest()).unwrap();

    let error = intake(&path, None, Some("worker"), &s.dest()).unwrap_err();
    assert!(matches!(error, SourceError::ProjectDirMissing { .. }), "{error}");
    s.assert_nothing_written();
}

#[test]
fn archive_link_leading_out_of_the_app_folder_is_refused() {
    // Inside the archive, but not inside what becomes the app: the top folder, or the
    // PROJECT_DIR subfolder of it (the fuzz target `archive` found the first).
    for (name, target, project_dir, entry) in [
        ("mono/up", "..", None, "mono/up"),
        ("mono/api/lib", "../lib", Some("api"), "mono/api/lib"),
    ] {
        let s = Scratch::new();
        let path = archive(&s, &[], &[(name, target)]);
        let error = intake(&path, None, project_dir, &s.dest()).unwrap_err();
        assert!(
            matches!(error, SourceError::ArchiveLinkOutside { entry: ref e, .. } if e == entry),
            "{error}"
        );
        s.assert_nothing_written();
    }
}

#[test]
fn archive_with_two_top_entries_is_refused() {
    let s = Scratch::new();
    let path = archive(&s, &[("app/index.php", "<?php"), ("notes.txt", "x")], &[]);
    let error = intake(&path, None, None, &s.dest()).unwrap_err();
    assert!(
        matches!(error, SourceError::ArchiveNotSingleFolder { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("app/, notes.txt"), "{error}");
    s.assert_nothing_written();
}

#[test]
fn war_file_is_wrapped_in_the_app_folder() {
    let s = Scratch::new();
    s.write("shop.war", "PK");
    let info = intake(&s.src().join("shop.war"), None, None, &s.dest()).unwrap();
    assert_eq!(s.read("shop.war"), "PK");
    assert_eq!((info.files, info.bytes), (1, 2));
}

#[test]
fn remote_missing_and_unknown_inputs_are_refused_clearly() {
    let s = Scratch::new();
    for url in [
        "https://github.com/org/app.git",
        "http://example.com/app.tar.gz",
        "git@github.com:org/app.git",
    ] {
        let error = intake(Path::new(url), None, None, &s.dest()).unwrap_err();
        assert!(matches!(error, SourceError::RemoteInput { .. }), "{error}");
        assert!(error.to_string().contains("offline"), "{error}");
    }
    let error = intake(&s.src().join("nope"), None, None, &s.dest()).unwrap_err();
    assert!(matches!(error, SourceError::InputNotFound { .. }), "{error}");
    s.write("app.zip", "PK");
    let error = intake(&s.src().join("app.zip"), None, None, &s.dest()).unwrap_err();
    assert!(matches!(error, SourceError::UnsupportedInput { .. }), "{error}");
    s.assert_nothing_written();
}

#[test]
fn existing_destination_is_never_touched() {
    let s = Scratch::new();
    s.write("index.php", "<?php");
    fs::create_dir(s.dest()).unwrap();
    fs::write(s.dest().join("keep"), "mine").unwrap();
    let error = s.intake(None, None).unwrap_err();
    assert!(matches!(error, SourceError::DestinationExists { .. }), "{error}");
    assert_eq!(s.read("keep"), "mine");
}
