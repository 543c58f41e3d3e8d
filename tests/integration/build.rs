//! The build (PLATFORM.md §1–3): detection, selection, the script contract, cache, sources, limits, abort.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn write_script(path: &Path, text: &str) {
    write(path, text);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// `$SHIPWAY_HOME/apps/<app>/releases/<number>`.
fn release_dir(env: &Env, app: &str, number: u32) -> PathBuf {
    env.home
        .path()
        .join("apps")
        .join(app)
        .join("releases")
        .join(number.to_string())
}

fn release_toml(dir: &Path) -> toml::Table {
    read(&dir.join("release.toml"))
        .parse()
        .unwrap_or_else(|e| panic!("release.toml of {} does not parse: {e}", dir.display()))
}

fn string_map(table: &toml::Table, key: &str) -> BTreeMap<String, String> {
    match table.get(key) {
        None => BTreeMap::new(),
        Some(toml::Value::Table(t)) => t
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .unwrap_or_else(|| panic!("{key}.{k} is not a string"))
                        .to_string(),
                )
            })
            .collect(),
        Some(other) => panic!("{key} is not a table: {other}"),
    }
}

fn strings(table: &toml::Table, key: &str) -> Vec<String> {
    table
        .get(key)
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("{key} is not an array in {table}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A copy of `fixtures/buildpacks/<name>` in the work folder (shipway copies it again).
fn buildpack(env: &Env, name: &str) -> PathBuf {
    let dest = env.work.path().join(format!("bp-{name}"));
    if !dest.exists() {
        copy_dir(&fixture_buildpack(name), &dest);
    }
    dest
}

/// A buildpack made by the test: detect prints `Custom`, compile runs `compile` in bash.
fn custom_buildpack(env: &Env, name: &str, compile: &str) -> PathBuf {
    let dir = env.work.path().join(name);
    write_script(&dir.join("bin/detect"), "#!/usr/bin/env bash\necho Custom\n");
    write_script(
        &dir.join("bin/compile"),
        &format!("#!/usr/bin/env bash\nset -eu\n{compile}\n"),
    );
    dir
}

/// An app that no official buildpack detects and that has no Procfile.
fn bare_app(env: &Env, name: &str) -> PathBuf {
    let dir = env.work.path().join(name);
    write(&dir.join("index.txt"), "bare\n");
    dir
}

fn url_var(path: &Path) -> String {
    format!("BUILDPACK_URL={}", path.display())
}

/// Every file and folder below `dir`, relative, sorted.
fn tree(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// The PIDS_FILE of `compile-hangs`: on drop, whatever it lists that still lives (and is
/// still the script or its sleep) is killed, so that a failing test leaks nothing.
struct PidsFile(PathBuf);

impl PidsFile {
    fn pids(&self) -> Vec<i32> {
        read_pids(&self.0)
    }
}

impl Drop for PidsFile {
    fn drop(&mut self) {
        kill_strays(&self.pids(), &["compile", "1000000"]);
    }
}

/// `KEY=value` lines (the inspect buildpack's `env` and `envdir` files).
fn pairs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A committed git repository holding a copy of the python fixture with `VERSION` = 1.
fn python_repo(env: &Env, name: &str) -> PathBuf {
    let dir = env.app_as("python", name);
    write(&dir.join("VERSION"), "1\n");
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "one"]);
    dir
}

// ---------------------------------------------------------------------------------------------
// 1. detect

#[test]
fn detect_python_app_python_wins() {
    let env = Env::new();
    let app = env.app("python");
    env.run(&["detect", &s(&app)])
        .ok()
        .has("detected: Python   <- wins")
        .has("-----> python wins")
        .lacks("matches too");
}

#[test]
fn detect_multi_match_names_the_winner_and_the_later_match() {
    let env = Env::new();
    let app = env.app("multi-match");
    let run = env
        .run(&["detect", &s(&app)])
        .ok()
        .has("-----> nodejs wins, first of 2 that apply");
    let python = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("python "))
        .expect("a python row");
    assert!(
        python.contains("detected: Python") && python.contains("matches too"),
        "{}",
        run.all()
    );
    let nodejs = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("nodejs "))
        .expect("a nodejs row");
    assert!(nodejs.contains("<- wins"), "{}", run.all());
}

#[test]
fn detect_on_an_empty_folder_finds_no_technology() {
    let env = Env::new();
    let empty = env.work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    env.run(&["detect", &s(&empty)])
        .code(1)
        .has(" !     We didn't find the type of technology you are using...");
}

#[test]
fn build_without_a_matching_buildpack_is_a_build_error() {
    let env = Env::new();
    let app = bare_app(&env, "unknown");
    env.run(&["build", &s(&app), "-a", "unknown"])
        .code(10)
        .has(" !     We didn't find the type of technology you are using...")
        .has("build-error");
    assert!(!release_dir(&env, "unknown", 1).exists());
}

#[test]
fn detect_error_shows_its_status_and_stderr() {
    let env = Env::new();
    let app = env.app("python");
    let bp = buildpack(&env, "detect-error");
    env.run(&["detect", &s(&app), "--buildpack", &s(&bp)])
        .code(1)
        .has("error: bin/detect exited with code 2")
        .has("cannot read build dir: boom")
        .lacks("compile ran");
}

#[test]
fn detect_json_parses_with_one_winner() {
    let env = Env::new();
    let app = env.app("multi-match");
    let run = env.run(&["detect", &s(&app), "--json"]).ok();
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    assert_eq!(doc["applies"], serde_json::Value::Bool(true));
    let candidates = doc["candidates"].as_array().expect("candidates");
    let names: Vec<&str> = candidates
        .iter()
        .map(|c| c["buildpack"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["clojure", "go", "gradle", "java", "nodejs", "php", "python", "ruby", "scala"]
    );
    let winners: Vec<&str> = candidates
        .iter()
        .filter(|c| c["winner"] == serde_json::Value::Bool(true))
        .map(|c| c["buildpack"].as_str().unwrap())
        .collect();
    assert_eq!(winners, ["nodejs"]);
    let python = candidates.iter().find(|c| c["buildpack"] == "python").unwrap();
    assert_eq!(python["verdict"], "detected");
    assert_eq!(python["framework"], "Python");
}

#[test]
fn detect_shows_the_lines_after_the_name_as_notes_and_a_build_shows_only_the_name() {
    let env = Env::new();
    let app = env.app("python");
    let bp = custom_buildpack(&env, "noted", "true");
    write_script(
        &bp.join("bin/detect"),
        "#!/usr/bin/env bash\necho Noted\necho 'asks for 9.9 (a file)'\necho 'found: 9.8'\n",
    );
    env.run(&["detect", &s(&app), "--buildpack", &s(&bp)])
        .ok()
        .has("detected: Noted")
        .has("\n                    asks for 9.9 (a file)\n")
        .has("found: 9.8");
    let run = env
        .run(&["detect", &s(&app), "--buildpack", &s(&bp), "--json"])
        .ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["candidates"][0]["framework"], "Noted");
    assert_eq!(
        doc["candidates"][0]["notes"],
        serde_json::json!(["asks for 9.9 (a file)", "found: 9.8"])
    );
    env.run(&["build", &s(&app), "-a", "noted", "--env", &url_var(&bp)])
        .ok()
        .has("Noted app detected")
        .lacks("asks for 9.9");
}

// ---------------------------------------------------------------------------------------------
// 2. selection rules

#[test]
fn buildpack_url_folder_is_cloned_and_used_from_a_copy() {
    let env = Env::new();
    let app = env.app("python");
    let bp = buildpack(&env, "writes-export");
    env.run(&["build", &s(&app), "-a", "urlfolder", "--env", &url_var(&bp)])
        .ok()
        .has(&format!("-----> Cloning custom buildpack: {}", bp.display()))
        .has("WritesExport app detected")
        .lacks("Python app detected");
    let release = release_dir(&env, "urlfolder", 1);
    assert!(
        release.join("app/first-ran").is_file(),
        "the custom buildpack's compile did not run"
    );
    assert!(
        !release.join("app/.heroku").exists(),
        "the python buildpack ran too"
    );
    assert!(
        !bp.join("export").exists(),
        "compile wrote into the given folder, not into a fresh copy"
    );
    assert_eq!(strings(&release_toml(&release), "buildpacks"), [s(&bp)]);
}

#[test]
fn buildpack_url_git_ref_builds_with_that_ref() {
    let env = Env::new();
    let repo = env.work.path().join("bp-repo");
    copy_dir(&fixture_buildpack("procfile-only"), &repo);
    let compile = |v: &str| {
        format!("#!/usr/bin/env bash\necho \"-----> buildpack {v}\"\necho {v} >\"$1/bp-version\"\n")
    };
    write_script(&repo.join("bin/compile"), &compile("v1"));
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    write_script(&repo.join("bin/compile"), &compile("v2"));
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let app = env.app("python");

    let cases = [
        (format!("file://{}#v1", repo.display()), "v1"),
        (format!("file://{}#{first}", repo.display()), "v1"),
        (format!("file://{}", repo.display()), "v2"),
    ];
    for (n, (url, version)) in cases.iter().enumerate() {
        let out = env.work.path().join(format!("out-{n}"));
        env.run(&[
            "build",
            &s(&app),
            "-a",
            "gitbp",
            "--out",
            &s(&out),
            "--env",
            &format!("BUILDPACK_URL={url}"),
        ])
        .ok()
        .has(&format!("-----> Cloning custom buildpack: {url}"))
        .has(&format!("-----> buildpack {version}"));
        assert_eq!(read(&out.join("app/bp-version")), format!("{version}\n"), "{url}");
    }
}

#[test]
fn buildpack_url_tgz_is_unpacked_and_used() {
    let env = Env::new();
    let bp = buildpack(&env, "writes-export");
    let tgz = env.work.path().join("bp.tgz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&bp)
        .arg("bin")
        .status_within(COMMAND_LIMIT);
    assert!(status.success());
    let app = env.app("python");
    for (n, url) in [s(&tgz), format!("file://{}", tgz.display())].iter().enumerate() {
        let out = env.work.path().join(format!("out-{n}"));
        env.run(&[
            "build",
            &s(&app),
            "-a",
            "tgz",
            "--out",
            &s(&out),
            "--env",
            &format!("BUILDPACK_URL={url}"),
        ])
        .ok()
        .has(&format!("Cloning custom buildpack: {url}"))
        .has("WritesExport app detected");
        assert!(
            out.join("app/first-ran").is_file(),
            "{url}: the tarball's compile did not run"
        );
    }
}

#[test]
fn buildpack_url_whose_host_does_not_resolve_fails_at_once_saying_so() {
    let env = Env::new();
    let app = env.app("python");
    for url in ["https://example.invalid/bp.git", "https://example.invalid/bp.tgz"] {
        let args = [
            "build",
            &s(&app),
            "-a",
            "offline",
            "--env",
            &format!("BUILDPACK_URL={url}"),
        ];
        run_within(&env, &args, Duration::from_secs(60))
            .code(10)
            .has(&format!("Cloning custom buildpack: {url}"))
            .has(&format!(
                "cannot fetch buildpack {url}: the host name does not resolve"
            ))
            .has("build-error");
        assert!(!release_dir(&env, "offline", 1).exists());
    }
}

#[test]
fn buildpack_name_static_builds_without_detection() {
    let env = Env::new();
    let app = env.app("static");
    env.run(&["build", &s(&app), "-a", "site", "--env", "BUILDPACK_NAME=static"])
        .ok()
        .has("Using buildpack static (BUILDPACK_NAME)")
        .lacks("Cloning custom buildpack");
    let release = release_dir(&env, "site", 1);
    assert_eq!(read(&release.join("app/index.html")), "static\n");
    let toml = release_toml(&release);
    assert_eq!(strings(&toml, "buildpacks"), ["static"]);
    let types = string_map(&toml, "process_types");
    assert_eq!(types.keys().collect::<Vec<_>>(), ["web"]);
    assert!(types["web"].starts_with("python3 -m http.server"), "{types:?}");
}

/// An app whose `.buildpacks` lists copies of writes-export then reads-export, with a
/// comment, a blank line and CRLF endings.
fn chained_app(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    let first = buildpack(env, "writes-export");
    let second = buildpack(env, "reads-export");
    let app = bare_app(env, "chained");
    write(
        &app.join(".buildpacks"),
        &format!(
            "# the first one exports\r\n{}\r\n\r\n{}\r\n",
            first.display(),
            second.display()
        ),
    );
    (app, first, second)
}

#[test]
fn dot_buildpacks_chain_through_export_and_the_last_release_wins() {
    let env = Env::new();
    let (app, first, second) = chained_app(&env);
    env.run(&["build", &s(&app), "-a", "chain"])
        .ok()
        .has("WritesExport app detected")
        .has("ReadsExport app detected")
        .has("CHAINED_VAR is from-first");
    let release = release_dir(&env, "chain", 1);
    assert_eq!(read(&release.join("app/chained.txt")), "from-first\n");
    assert!(release.join("app/first-ran").is_file());
    let toml = release_toml(&release);
    assert_eq!(
        string_map(&toml, "process_types"),
        map(&[("web", "cat chained.txt")])
    );
    assert_eq!(
        string_map(&toml, "config_defaults"),
        map(&[("FROM_RELEASE", "yes")])
    );
    assert_eq!(strings(&toml, "buildpacks"), [s(&first), s(&second)]);
    assert!(
        !first.join("export").exists(),
        "export was written into the listed folder, not a copy"
    );
}

/// Scalingo's multi-buildpack runs each buildpack's detect right before its compile: a
/// later detect sees what an earlier compile made (Scalingo/multi-buildpack bin/compile).
#[test]
fn dot_buildpacks_detect_each_buildpack_after_the_previous_compile() {
    let env = Env::new();
    let first = buildpack(&env, "writes-export");
    let second = env.work.path().join("needs-first");
    write_script(
        &second.join("bin/detect"),
        "#!/usr/bin/env bash\n[ -e \"$1/first-ran\" ] && echo NeedsFirst && exit 0\necho 'first-ran missing' >&2\nexit 1\n",
    );
    write_script(
        &second.join("bin/compile"),
        "#!/usr/bin/env bash\ntouch \"$1/second-ran\"\n",
    );
    let app = bare_app(&env, "sequential");
    write(
        &app.join(".buildpacks"),
        &format!("{}\n{}\n", first.display(), second.display()),
    );
    env.run(&["build", &s(&app), "-a", "sequential"])
        .ok()
        .has("NeedsFirst app detected");
    let slug = release_dir(&env, "sequential", 1).join("app");
    assert!(
        slug.join("first-ran").is_file() && slug.join("second-ran").is_file(),
        "{:?}",
        tree(&slug)
    );
}

/// A line naming a file (a script, say) is said to be a file, with its line: it used to
/// read "does not exist", which sends the user looking for a path that is there.
#[test]
fn dot_buildpacks_errors_name_the_line_and_what_a_file_is_not() {
    let env = Env::new();
    let first = buildpack(&env, "writes-export");
    let script = env.work.path().join("compile.sh");
    write_script(&script, "#!/bin/sh\n");
    let app = bare_app(&env, "listed");
    write(
        &app.join(".buildpacks"),
        &format!("# two buildpacks\n{}\n\n{}\n", first.display(), script.display()),
    );
    env.run(&["build", &s(&app), "-a", "listed"])
        .code(10)
        .has(&format!(
            ".buildpacks line 4: buildpack {0}: {0} is a file, not a buildpack folder",
            script.display()
        ))
        .has("a folder holding bin/detect and bin/compile")
        .lacks("does not exist");

    // An entry whose detect does not apply names its line too.
    let ruby = env.work.path().join("ruby-bp");
    copy_dir(&repo().join("buildpacks/ruby"), &ruby);
    write(&app.join(".buildpacks"), &format!("\n{}\n", ruby.display()));
    env.run(&["build", &s(&app), "-a", "listed"])
        .code(10)
        .has(".buildpacks line 2: App not compatible with buildpack");
}

#[test]
fn buildpack_url_wins_over_dot_buildpacks() {
    let env = Env::new();
    let (app, _, _) = chained_app(&env);
    let inspect = buildpack(&env, "inspect");
    env.run(&["build", &s(&app), "-a", "urlwins", "--env", &url_var(&inspect)])
        .ok()
        .has("Inspect app detected")
        .lacks("WritesExport")
        .lacks("ReadsExport");
    let slug = release_dir(&env, "urlwins", 1).join("app");
    assert!(slug.join(".inspect/cwd").is_file());
    assert!(!slug.join("first-ran").exists());
    assert!(!slug.join("chained.txt").exists());
}

#[test]
fn buildpack_url_whose_detect_does_not_apply_is_not_compatible() {
    let env = Env::new();
    let app = env.app("python");
    let ruby = env.work.path().join("ruby-bp");
    copy_dir(&repo().join("buildpacks/ruby"), &ruby);
    env.run(&["build", &s(&app), "-a", "incompat", "--env", &url_var(&ruby)])
        .code(10)
        .has("App not compatible with buildpack")
        .has("did not detect it")
        .has("build-error");
    assert!(!release_dir(&env, "incompat", 1).exists());

    // A detect that fails (exit 2) is not compatible either, and compile never runs.
    let broken = buildpack(&env, "detect-error");
    env.run(&["build", &s(&app), "-a", "incompat", "--env", &url_var(&broken)])
        .code(10)
        .has("App not compatible with buildpack")
        .has("exited with code 2")
        .has("boom")
        .lacks("compile ran");
}

// ---------------------------------------------------------------------------------------------
// 3. the script contract

#[test]
fn compile_runs_in_a_fresh_copy_with_the_three_folders_and_a_clean_environment() {
    let mut env = Env::new();
    env.set("SHIPWAY_TEST_HOST_SECRET", "leaked");
    env.set("HOST_LISTED", "passed");
    env.set("SHIPWAY_PASS_ENV", "HOST_LISTED");
    let app = bare_app(&env, "contract");
    let bp = buildpack(&env, "inspect");
    let out = env.work.path().join("release");
    env.run(&[
        "build",
        &s(&app),
        "-a",
        "contract",
        "--buildpack",
        &s(&bp),
        "--env",
        "SECRET_X=value",
        "--out",
        &s(&out),
    ])
    .ok()
    .has("-----> Inspecting the build contract")
    .has("inspect: a line on stderr");
    let facts = out.join("app/.inspect");

    let cwd = PathBuf::from(read(&facts.join("cwd")).trim());
    assert_ne!(cwd, bp, "compile ran in the given folder");
    assert_ne!(cwd, fixture_buildpack("inspect"));
    assert!(
        !cwd.starts_with(repo()),
        "compile ran in the fixture: {}",
        cwd.display()
    );
    assert_eq!(read(&facts.join("buildpack-dir-writable")), "yes\n");
    // inspect copies its own server.py from its cwd: the cwd held the buildpack's files.
    assert_eq!(read(&facts.join("server.py")), read(&bp.join("server.py")));

    let args: Vec<String> = read(&facts.join("args")).lines().map(String::from).collect();
    assert_eq!(args.len(), 3, "{args:?}");
    assert_eq!(
        args[0],
        s(&out.join("app")),
        "BUILD_DIR is the release's app folder"
    );
    let (cache, env_dir) = (Path::new(&args[1]), Path::new(&args[2]));
    assert!(
        cache.is_absolute() && env_dir.is_absolute() && cache != env_dir,
        "{args:?}"
    );
    assert!(
        !cache.starts_with(&args[0]) && !env_dir.starts_with(&args[0]),
        "{args:?}"
    );
    // The cache this build wrote is the app's, kept for the next build.
    assert_eq!(read(&env.home.path().join("apps/contract/cache/count")), "1\n");
    assert_eq!(read(&facts.join("cache-count")), "1\n");

    let envdir = pairs(&read(&facts.join("envdir")));
    assert_eq!(envdir, map(&[("SECRET_X", "value")]));

    let vars = pairs(&read(&facts.join("env")));
    let names: Vec<&str> = vars.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "APP",
            "BUILDPACK_LOG_FILE",
            "HOME",
            "HOST_LISTED",
            "LANG",
            "PATH",
            "REQUEST_ID",
            "STACK"
        ],
        "the build environment is not clean: {vars:?}"
    );
    assert_eq!(vars["APP"], "contract");
    assert_eq!(vars["STACK"], "scalingo-26", "a new app's stack");
    assert_eq!(vars["BUILDPACK_LOG_FILE"], "/dev/null");
    assert_eq!(vars["HOST_LISTED"], "passed");
    assert!(!vars["REQUEST_ID"].is_empty() && !vars["HOME"].is_empty() && !vars["PATH"].is_empty());
}

#[test]
fn config_vars_reach_compile_only_through_env_dir_byte_for_byte() {
    let env = Env::new();
    let app = bare_app(&env, "envdir");
    let bp = custom_buildpack(
        &env,
        "copy-env-dir",
        "cp -a \"$3\" \"$1/env-dir\"\nenv >\"$1/env-seen\"\necho \"SECRET_X=${SECRET_X-unset}\"",
    );
    let out = env.work.path().join("release");
    env.run(&[
        "build",
        &s(&app),
        "--buildpack",
        &s(&bp),
        "--env",
        "SECRET_X=s3cr3t value",
        "--env",
        "EMPTY=",
        "--out",
        &s(&out),
    ])
    .ok()
    .has("SECRET_X=unset");
    let dir = out.join("app/env-dir");
    let files: BTreeSet<String> = tree(&dir);
    assert_eq!(
        files,
        ["EMPTY", "SECRET_X"].iter().map(|f| f.to_string()).collect()
    );
    assert_eq!(
        std::fs::read(dir.join("SECRET_X")).unwrap(),
        b"s3cr3t value",
        "no newline may be added"
    );
    assert_eq!(std::fs::read(dir.join("EMPTY")).unwrap(), b"");
    let seen = read(&out.join("app/env-seen"));
    assert!(
        !seen.contains("s3cr3t"),
        "a config var leaked into compile's environment:\n{seen}"
    );
}

#[test]
fn source_version_is_the_commit_of_a_git_source() {
    let env = Env::new();
    let repo = python_repo(&env, "versioned");
    let head = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(head.len(), 40);
    let bp = buildpack(&env, "inspect");
    let out = env.work.path().join("release");
    env.run(&["build", &s(&repo), "--buildpack", &s(&bp), "--out", &s(&out)])
        .ok()
        .has(&format!("SOURCE_VERSION={head}"));
    let vars = pairs(&read(&out.join("app/.inspect/env")));
    assert_eq!(vars.get("SOURCE_VERSION"), Some(&head), "{vars:?}");
    assert_eq!(
        release_toml(&out).get("version").and_then(|v| v.as_str()),
        Some(head.as_str())
    );

    // A plain folder has no commit: no SOURCE_VERSION at all.
    let plain = bare_app(&env, "plain");
    let out = env.work.path().join("release-plain");
    env.run(&["build", &s(&plain), "--buildpack", &s(&bp), "--out", &s(&out)])
        .ok()
        .lacks("SOURCE_VERSION");
    assert!(!pairs(&read(&out.join("app/.inspect/env"))).contains_key("SOURCE_VERSION"));
}

#[test]
fn scripts_without_execute_bits_still_run() {
    let env = Env::new();
    let bp = buildpack(&env, "no-exec-bits");
    for script in ["detect", "compile", "release"] {
        let mode = std::fs::metadata(bp.join("bin").join(script))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0, "the fixture {script} must lack execute bits");
    }
    let app = bare_app(&env, "noexec");
    env.run(&["build", &s(&app), "-a", "noexec", "--buildpack", &s(&bp)])
        .ok()
        .has("NoExec app detected")
        .has("-----> Compiling without execute bits");
    let release = release_dir(&env, "noexec", 1);
    assert_eq!(read(&release.join("app/no-exec-compiled")), "compiled\n");
    assert_eq!(
        string_map(&release_toml(&release), "config_defaults"),
        map(&[("NO_EXEC_RELEASE", "ran")])
    );
}

#[test]
fn a_missing_or_empty_release_means_no_default_process_types() {
    let env = Env::new();
    let app = bare_app(&env, "nothing");
    for (n, name) in [
        "no-release",
        "release-empty",
        "release-dashes",
        "release-empty-map",
    ]
    .iter()
    .enumerate()
    {
        let bp = buildpack(&env, name);
        let out = env.work.path().join(format!("out-{n}"));
        env.run(&[
            "build",
            &s(&app),
            "-a",
            "nothing",
            "--buildpack",
            &s(&bp),
            "--out",
            &s(&out),
        ])
        .ok()
        .has("no process type declared");
        let toml = release_toml(&out);
        assert!(string_map(&toml, "process_types").is_empty(), "{name}: {toml}");
        assert!(string_map(&toml, "config_defaults").is_empty(), "{name}: {toml}");
        assert!(strings(&toml, "addons").is_empty(), "{name}: {toml}");
    }
}

#[test]
fn release_yaml_gives_defaults_and_addons_are_reported_for_the_first_deployment() {
    let env = Env::new();
    let app = bare_app(&env, "released");
    let bp = buildpack(&env, "inspect");
    env.run(&["build", &s(&app), "-a", "released", "--buildpack", &s(&bp)])
        .ok()
        .has("addon heroku-postgresql:hobby-dev requested by the buildpack: provisioned at the app's first deployment")
        .has("Default types for buildpack -> web, worker");
    let toml = release_toml(&release_dir(&env, "released", 1));
    assert_eq!(
        string_map(&toml, "process_types"),
        map(&[("web", "python3 .inspect/server.py"), ("worker", "sleep 1000000")])
    );
    assert_eq!(
        string_map(&toml, "config_defaults"),
        map(&[
            ("FROM_RELEASE", "release-default"),
            ("OVERRIDDEN", "release-value")
        ])
    );
    assert_eq!(strings(&toml, "addons"), ["heroku-postgresql:hobby-dev"]);

    // A Procfile type overrides the buildpack's default of the same name.
    write(&app.join("Procfile"), "web: echo mine\n");
    env.run(&["build", &s(&app), "-a", "released", "--buildpack", &s(&bp)])
        .ok();
    let toml = release_toml(&release_dir(&env, "released", 2));
    assert_eq!(
        string_map(&toml, "process_types"),
        map(&[("web", "echo mine"), ("worker", "sleep 1000000")])
    );
}

// ---------------------------------------------------------------------------------------------
// 4. cache

#[test]
fn cache_persists_between_builds_and_a_failed_build_leaves_it_untouched() {
    let env = Env::new();
    let app = bare_app(&env, "cached");
    let bp = buildpack(&env, "cache-counter");
    let build = |n: u32, extra: &[&str]| {
        let out = env.work.path().join(format!("out-{n}"));
        let mut args = vec![
            "build",
            app.to_str().unwrap(),
            "-a",
            "cached",
            "--buildpack",
            bp.to_str().unwrap(),
        ];
        let out_s = s(&out);
        args.extend_from_slice(&["--out", &out_s]);
        args.extend_from_slice(extra);
        (env.run(&args), out)
    };
    let (run, out) = build(1, &[]);
    run.ok()
        .has("-----> cache count: 1")
        .has("-----> Build complete, uploading deployment cache.")
        .lacks("Fetching deployment cache");
    assert_eq!(read(&out.join("app/cache-count")), "1\n");

    let (run, out) = build(2, &[]);
    run.ok()
        .has("Fetching deployment cache")
        .has("-----> cache count: 2");
    assert_eq!(read(&out.join("app/cache-count")), "2\n");

    let (run, out) = build(3, &["--env", "FAIL_AFTER_CACHE=1"]);
    run.code(10)
        .has("failing on purpose before saving the cache count (3)")
        .has("build-error")
        .lacks("uploading deployment cache");
    assert!(!out.exists(), "a failed build left its release folder");
    let cache = env.home.path().join("apps/cached/cache");
    assert_eq!(read(&cache.join("count")), "2\n");
    assert!(
        !cache.join("count.tmp").exists(),
        "the failed build's cache writes were kept"
    );

    let (run, out) = build(4, &[]);
    run.ok().has("-----> cache count: 3");
    assert_eq!(read(&out.join("app/cache-count")), "3\n");
}

/// The slug size is checked after compile, so a cache written by a compile that succeeded
/// must still not be kept when the image turns out too large.
#[test]
fn a_slug_over_the_limit_fails_the_build_and_leaves_the_cache_as_it_was() {
    let mut env = Env::new();
    let app = bare_app(&env, "heavy");
    let bp = buildpack(&env, "cache-counter");
    let (app_s, bp_s) = (s(&app), s(&bp));
    let args = ["build", &app_s, "-a", "heavy", "--buildpack", &bp_s];
    env.run(&args).ok().has("-----> cache count: 1");
    let cache = env.home.path().join("apps/heavy/cache");
    assert_eq!(read(&cache.join("count")), "1\n");

    env.set("SHIPWAY_SLUG_LIMIT", "4");
    env.run(&args)
        .code(10)
        .has("-----> cache count: 2")
        .has("the image is too large")
        .has("more than the 4 B allowed")
        .has("build-error")
        .lacks("uploading deployment cache");
    assert_eq!(
        read(&cache.join("count")),
        "1\n",
        "the failed build's cache was kept"
    );
    assert!(!release_dir(&env, "heavy", 2).exists());

    env.set("SHIPWAY_SLUG_LIMIT", "1MiB");
    env.run(&args).ok().has("-----> cache count: 2");
}

// ---------------------------------------------------------------------------------------------
// 5. --ref and git work trees

#[test]
fn ref_builds_exactly_that_commit() {
    let env = Env::new();
    let repo = python_repo(&env, "refapp");
    let old = git(&repo, &["rev-parse", "HEAD"]);
    write(&repo.join("VERSION"), "2\n");
    git(&repo, &["commit", "-q", "-am", "two"]);
    let bp = buildpack(&env, "procfile-only");
    env.run(&[
        "build",
        &s(&repo),
        "-a",
        "refapp",
        "--ref",
        "HEAD~1",
        "--buildpack",
        &s(&bp),
    ])
    .ok()
    .has(&format!("SOURCE_VERSION={old}"));
    let release = release_dir(&env, "refapp", 1);
    assert_eq!(read(&release.join("app/VERSION")), "1\n");
    assert!(!release.join("app/.git").exists());
    let toml = release_toml(&release);
    assert_eq!(toml.get("version").and_then(|v| v.as_str()), Some(old.as_str()));
    assert_eq!(toml.get("git_ref").and_then(|v| v.as_str()), Some("HEAD~1"));
}

#[test]
fn an_unknown_ref_is_a_clear_error() {
    let env = Env::new();
    let repo = python_repo(&env, "badref");
    let bp = buildpack(&env, "procfile-only");
    let run = env.run(&[
        "build",
        &s(&repo),
        "-a",
        "badref",
        "--ref",
        "no-such-branch",
        "--buildpack",
        &s(&bp),
    ]);
    assert_ne!(run.code, 0, "{}", run.all());
    run.has("unknown git ref `no-such-branch`");
    assert!(!release_dir(&env, "badref", 1).exists());
}

#[test]
fn a_work_tree_build_skips_ignored_files_and_keeps_untracked_ones() {
    let env = Env::new();
    let repo = python_repo(&env, "worktree");
    write(&repo.join(".gitignore"), "ignored.txt\n");
    git(&repo, &["add", ".gitignore"]);
    git(&repo, &["commit", "-q", "-m", "ignore"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    write(&repo.join("ignored.txt"), "secret\n");
    write(&repo.join("untracked.txt"), "new\n");
    let bp = buildpack(&env, "procfile-only");
    env.run(&["build", &s(&repo), "-a", "worktree", "--buildpack", &s(&bp)])
        .ok();
    let release = release_dir(&env, "worktree", 1);
    let slug = release.join("app");
    assert_eq!(read(&slug.join("untracked.txt")), "new\n");
    assert!(!slug.join("ignored.txt").exists(), "an ignored file was deployed");
    assert!(!slug.join(".git").exists());
    assert!(slug.join("app.py").is_file());
    assert_eq!(
        release_toml(&release).get("version").and_then(|v| v.as_str()),
        Some(head.as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// 6. .slugignore

#[test]
fn slugignore_removes_matching_files_after_the_build() {
    let env = Env::new();
    let app = env.app("slugignore");
    // Files listed in .slugignore are there during compile; what compile makes is filtered too.
    let bp = custom_buildpack(
        &env,
        "sees-docs",
        "cat \"$1/docs/guide.md\" >\"$1/seen-docs.txt\"\necho built >\"$1/build.log\"",
    );
    env.run(&["build", &s(&app), "-a", "slim", "--buildpack", &s(&bp)])
        .ok()
        .has("entries listed in .slugignore");
    let slug = release_dir(&env, "slim", 1).join("app");
    for removed in [
        "app.log",
        "logs/deep/trace.log",
        "tmp-data",
        "docs",
        "sub/docs",
        "build.log",
    ] {
        assert!(
            !slug.join(removed).exists(),
            "{removed} should be removed; slug: {:?}",
            tree(&slug)
        );
    }
    for kept in [
        "sub/tmp-data/keep.txt",
        "app.log.txt",
        "keep.txt",
        "logs/README",
        "server.py",
        "Procfile",
    ] {
        assert!(
            slug.join(kept).is_file(),
            "{kept} should be kept; slug: {:?}",
            tree(&slug)
        );
    }
    assert_eq!(
        read(&slug.join("seen-docs.txt")),
        read(&app.join("docs/guide.md"))
    );
}

// ---------------------------------------------------------------------------------------------
// 7. archives

fn tar_gz(archive: &Path, dir: &Path, entries: &[&str]) {
    let status = Command::new("tar")
        .arg("czf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .args(entries)
        .status_within(COMMAND_LIMIT);
    assert!(status.success());
}

#[test]
fn an_archive_with_one_top_folder_builds() {
    let env = Env::new();
    env.app_as("python", "packed");
    let archive = env.work.path().join("app.tar.gz");
    tar_gz(&archive, env.work.path(), &["packed"]);
    env.run(&["build", &s(&archive), "-a", "packed"])
        .ok()
        .has("Python app detected");
    let slug = release_dir(&env, "packed", 1).join("app");
    assert!(
        slug.join("app.py").is_file() && slug.join("Procfile").is_file(),
        "{:?}",
        tree(&slug)
    );
    assert!(!slug.join("packed").exists());
}

#[test]
fn an_archive_with_two_top_level_entries_is_refused() {
    let env = Env::new();
    env.app_as("python", "one");
    write(&env.work.path().join("two.txt"), "two\n");
    let archive = env.work.path().join("two.tgz");
    tar_gz(&archive, env.work.path(), &["one", "two.txt"]);
    env.run(&["build", &s(&archive), "-a", "twotop"])
        .code(10)
        .has("must hold a single folder at its root")
        .has("one")
        .has("two.txt");
    assert!(!release_dir(&env, "twotop", 1).exists());
}

#[test]
fn an_archive_over_300_mb_unpacked_is_too_heavy() {
    let env = Env::new();
    let big = env.work.path().join("big");
    write(&big.join("Procfile"), "web: true\n");
    // Sparse: no disk used; zeros compress to a few hundred KiB.
    let blob = std::fs::File::create(big.join("blob")).unwrap();
    blob.set_len(314_572_801).unwrap();
    let archive = env.work.path().join("big.tgz");
    let status = Command::new("bash")
        .args(["-c", "tar -cf - -C \"$1\" big | gzip -1 >\"$2\"", "bash"])
        .arg(env.work.path())
        .arg(&archive)
        .status_within(COMMAND_LIMIT);
    assert!(status.success());
    let bp = buildpack(&env, "procfile-only");
    env.run(&["build", &s(&archive), "-a", "big", "--buildpack", &s(&bp)])
        .code(10)
        .has("The archive is too heavy (more than 314572800 bytes)");
    assert!(!release_dir(&env, "big", 1).exists());
}

#[test]
fn an_archive_entry_with_dot_dot_is_refused_and_nothing_is_written_outside() {
    let env = Env::new();
    let token = format!("evil-{}", std::process::id());
    let archive = env.work.path().join("evil.tar.gz");
    let script = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add("app/Procfile", b"web: true\n")
    for depth in range(1, 9):
        add("../" * depth + sys.argv[2] + "-" + str(depth), b"pwned\n")
    add("app/../../" + sys.argv[2] + "-nested", b"pwned\n")
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&archive)
        .arg(&token)
        .status_within(COMMAND_LIMIT);
    assert!(status.success());
    let bp = buildpack(&env, "procfile-only");
    env.run(&["build", &s(&archive), "-a", "evil", "--buildpack", &s(&bp)])
        .code(10)
        .has("contains `..`")
        .has(&token);
    assert!(!release_dir(&env, "evil", 1).exists());
    // Nowhere below the two test folders, nor in any folder above where it unpacked.
    for root in [env.home.path(), env.work.path()] {
        let hits: Vec<String> = tree(root).into_iter().filter(|p| p.contains(&token)).collect();
        assert!(hits.is_empty(), "written: {hits:?}");
    }
    let deepest = release_dir(&env, "evil", 1).join("app/a/b/c");
    for dir in deepest.ancestors() {
        let hits: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(&token))
            .map(|e| e.path())
            .collect();
        assert!(hits.is_empty(), "written outside: {hits:?}");
    }
}

/// A FIFO named like an archive: opening it for reading waits for a writer that never
/// comes. It must be refused at once, by `build` and by `deploy`, before anything opens it;
/// the runs have a deadline, so a regression fails the test instead of hanging it.
#[test]
fn a_fifo_given_as_the_source_is_refused_at_once() {
    let env = Env::new();
    let fifo = env.work.path().join("x.tgz");
    let made = Command::new("mkfifo").arg(&fifo).status_within(COMMAND_LIMIT);
    assert!(made.success());
    let fifo_s = s(&fifo);
    for args in [
        vec!["build", fifo_s.as_str(), "-a", "fifo"],
        vec!["deploy", fifo_s.as_str(), "-a", "fifo"],
    ] {
        run_within(&env, &args, Duration::from_secs(60))
            .code(1)
            .has(&format!(
                "source {fifo_s} is a FIFO (named pipe); a source must be a folder or a regular file"
            ));
    }
}

/// Inside a folder source, a FIFO is left out with a note (git would not carry it), and a
/// Procfile that links to /dev/zero is refused instead of being read forever.
#[test]
fn special_files_in_a_folder_source_never_block_the_build() {
    let env = Env::new();
    let app = bare_app(&env, "specials");
    let made = Command::new("mkfifo")
        .arg(app.join("pipe"))
        .status_within(COMMAND_LIMIT);
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", app.join("Procfile")).unwrap();
    let args = ["build", &s(&app), "-a", "specials", "--env", &procfile_only()];
    run_within(&env, &args, Duration::from_secs(60))
        .code(10)
        .has("note: left out 1 FIFO, socket or device file(s), which git cannot carry either: pipe")
        .has("Procfile: ")
        .has("is a character device, not a regular file");

    // A regular Procfile, and the FIFO still never blocks.
    std::fs::remove_file(app.join("Procfile")).unwrap();
    write(&app.join("Procfile"), "web: cat index.txt\n");
    run_within(&env, &args, Duration::from_secs(60))
        .ok()
        .has("left out 1 FIFO")
        .has("Procfile declares types -> web");
    let releases: Vec<PathBuf> = std::fs::read_dir(env.home.path().join("apps/specials/releases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("app/index.txt").is_file())
        .collect();
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert!(std::fs::symlink_metadata(releases[0].join("app/pipe")).is_err());
}

// ---------------------------------------------------------------------------------------------
// 8. build timeout

#[test]
fn a_hanging_compile_is_stopped_at_the_build_timeout_with_its_children() {
    let mut env = Env::new();
    env.set("SHIPWAY_BUILD_TIMEOUT", "2s");
    let app = bare_app(&env, "hangs");
    let bp = buildpack(&env, "compile-hangs");
    let pids = PidsFile(env.work.path().join("pids"));
    let started = Instant::now();
    let run = run_within(
        &env,
        &[
            "build",
            &s(&app),
            "-a",
            "hangs",
            "--buildpack",
            &s(&bp),
            "--env",
            &format!("PIDS_FILE={}", pids.0.display()),
        ],
        Duration::from_secs(60),
    )
    .code(10)
    .has("-----> Hanging forever")
    .has("did not finish within 2s")
    .has("build-error");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "stopped before the limit:\n{}",
        run.all()
    );
    let listed = pids.pids();
    assert_eq!(listed.len(), 2, "PIDS_FILE: {listed:?}");
    eventually(
        Duration::from_secs(5),
        "the compile script and its sleep to die",
        || listed.iter().all(|&p| !alive(p)),
    );
    assert!(
        !release_dir(&env, "hangs", 1).exists(),
        "the release folder of a failed build was kept"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. PROJECT_DIR

#[test]
fn project_dir_builds_only_that_subfolder() {
    let env = Env::new();
    let mono = env.work.path().join("mono");
    write(&mono.join("README.md"), "monorepo\n");
    copy_dir(&repo().join("fixtures/apps/python"), &mono.join("sub"));
    env.run(&["build", &s(&mono), "-a", "mono", "--env", "PROJECT_DIR=sub"])
        .ok()
        .has("Python app detected");
    let slug = release_dir(&env, "mono", 1).join("app");
    assert!(slug.join("app.py").is_file(), "{:?}", tree(&slug));
    assert!(
        !slug.join("README.md").exists() && !slug.join("sub").exists(),
        "{:?}",
        tree(&slug)
    );
}

#[test]
fn a_missing_project_dir_is_a_clear_error() {
    let env = Env::new();
    let mono = env.work.path().join("mono");
    std::fs::create_dir(&mono).unwrap();
    copy_dir(&repo().join("fixtures/apps/python"), &mono.join("sub"));
    env.run(&["build", &s(&mono), "-a", "mono", "--env", "PROJECT_DIR=nope"])
        .code(10)
        .has("PROJECT_DIR `nope` does not exist");
    assert!(!release_dir(&env, "mono", 1).exists());
}

// ---------------------------------------------------------------------------------------------
// 10. Procfile and --out

#[test]
fn a_malformed_procfile_fails_with_its_line_number() {
    let env = Env::new();
    let app = bare_app(&env, "badproc");
    write(
        &app.join("Procfile"),
        "web: echo ok\n# a comment\nworker echo no colon\n",
    );
    let bp = buildpack(&env, "procfile-only");
    env.run(&["build", &s(&app), "-a", "badproc", "--buildpack", &s(&bp)])
        .code(10)
        .has("Procfile line 3")
        .has("build-error");
    assert!(!release_dir(&env, "badproc", 1).exists());
}

#[test]
fn a_procfile_release_line_is_ignored_and_said_so() {
    let env = Env::new();
    let app = env.app("worker");
    let bp = buildpack(&env, "procfile-only");
    env.run(&["build", &s(&app), "-a", "worker", "--buildpack", &s(&bp)])
        .ok()
        .has("`release:` type")
        .has("ignored");
    let types = string_map(&release_toml(&release_dir(&env, "worker", 1)), "process_types");
    assert!(!types.contains_key("release"), "{types:?}");
    assert!(
        types.contains_key("web") && types.contains_key("worker"),
        "{types:?}"
    );
}

#[test]
fn out_writes_the_release_folder_there_and_refuses_a_non_empty_one() {
    let env = Env::new();
    let app = env.app("python");
    let out = env.work.path().join("elsewhere");
    env.run(&["build", &s(&app), "-a", "outapp", "--out", &s(&out)])
        .ok()
        .has(&s(&out));
    assert!(out.join("app/app.py").is_file());
    let toml = release_toml(&out);
    assert_eq!(
        string_map(&toml, "process_types"),
        map(&[("web", "python app.py")])
    );
    assert_eq!(toml.get("app").and_then(|v| v.as_str()), Some("outapp"));
    assert!(
        !release_dir(&env, "outapp", 1).exists(),
        "--out also wrote into the app's releases"
    );

    env.run(&["build", &s(&app), "-a", "outapp", "--out", &s(&out)])
        .code(1)
        .has("not empty");
    assert!(
        out.join("release.toml").is_file(),
        "the existing folder was touched"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Ctrl-C

#[test]
fn ctrl_c_aborts_the_build_and_kills_its_processes() {
    let env = Env::new();
    let app = bare_app(&env, "interrupted");
    let bp = buildpack(&env, "compile-hangs");
    let pids = PidsFile(env.work.path().join("pids"));
    let mut build = Spawned::start(
        &env,
        &[
            "build",
            &s(&app),
            "-a",
            "interrupted",
            "--buildpack",
            &s(&bp),
            "--env",
            &format!("PIDS_FILE={}", pids.0.display()),
        ],
    );
    eventually(
        Duration::from_secs(30),
        "compile-hangs to write its 2 pids",
        || pids.pids().len() == 2,
    );
    let listed = pids.pids();
    assert!(listed.iter().all(|&p| alive(p)));
    ctrl_c(build.pid());
    build
        .finish(Duration::from_secs(30))
        .code(130)
        .has("aborted")
        .lacks("build-error");
    eventually(
        Duration::from_secs(5),
        "the compile script and its sleep to die",
        || listed.iter().all(|&p| !alive(p)),
    );
    assert!(!release_dir(&env, "interrupted", 1).exists());
}
