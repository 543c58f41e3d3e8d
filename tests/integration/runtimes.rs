//! Runtime versions and package managers, as the official buildpacks choose them: what the
//! bundled buildpacks read (version files, lock files), what `detect` and the build say
//! they asked, found and used, and builds that install from PyPI and serve.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::*;

fn s(path: &Path) -> String {
    path.display().to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// `shipway detect --json` of `dir`: the notes of the buildpack named `buildpack`.
fn notes(env: &Env, dir: &Path, buildpack: &str) -> Vec<String> {
    let run = env.run(&["detect", &s(dir), "--json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    let candidates = doc["candidates"].as_array().expect("candidates");
    let found = candidates
        .iter()
        .find(|c| c["buildpack"] == buildpack)
        .unwrap_or_else(|| panic!("no {buildpack} in:\n{}", run.all()));
    assert_eq!(found["verdict"], "detected", "{}", run.all());
    found["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

fn has_note(notes: &[String], text: &str) {
    assert!(
        notes.iter().any(|n| n.contains(text)),
        "no note contains {text:?}: {notes:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Package managers from PyPI: the tools that write lock files, once per test run

/// A pin of the bundled Python buildpack (`PIPENV_PIN=...` in its lib/runtime.sh), so that
/// the lock files are written by the versions that install them.
fn pin(name: &str) -> String {
    let lib = std::fs::read_to_string(repo().join("buildpacks/python/lib/runtime.sh")).unwrap();
    lib.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in buildpacks/python/lib/runtime.sh"))
        .to_string()
}

/// The host's trust store for the tools, as the buildpack gives it to them (a network that
/// inspects TLS reaches PyPI only so).
fn with_host_certs(cmd: &mut Command) -> &mut Command {
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(bundle).is_file() {
        cmd.env("SSL_CERT_FILE", bundle)
            .env("REQUESTS_CA_BUNDLE", bundle)
            .env("UV_SYSTEM_CERTS", "1");
    }
    cmd
}

/// pipenv, poetry and uv at the buildpack's pins, in one venv below the target folder, made
/// once and kept between runs (its name carries the pins).
fn python_tools() -> &'static Path {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let (pipenv, poetry, uv) = (pin("PIPENV_PIN"), pin("POETRY_PIN"), pin("UV_PIN"));
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("python-tools-{pipenv}-{poetry}-{uv}"));
        let done = dir.join("installed");
        // nextest runs each test in a process of its own: the first to come makes the venv,
        // the others wait on this lock for it (released when the lock file is closed).
        let lock = std::fs::File::create(dir.with_extension("lock")).unwrap();
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
        if done.is_file() {
            return dir;
        }
        // A venv names its own path inside: it is made where it stays, and counts once marked.
        let _ = std::fs::remove_dir_all(&dir);
        run_ok(Path::new("/"), "python3", &["-m", "venv", &s(&dir)]);
        let out = with_host_certs(Command::new(dir.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("pipenv=={pipenv}"),
            &format!("poetry=={poetry}"),
            &format!("uv=={uv}"),
        ]))
        .output_within(COMMAND_LIMIT);
        assert!(
            out.status.success(),
            "pip install of the lock tools failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        write(&done, "");
        dir
    })
}

/// Write the app's lock file with `tool` (`pipenv`, `poetry`, `uv`), as its developer would.
fn lock(env: &Env, app: &Path, tool: &str) {
    let tools = python_tools();
    let scratch = env.work.path().join(format!("{tool}-home"));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut cmd = Command::new(tools.join("bin").join(tool));
    cmd.current_dir(app)
        .env("HOME", &scratch)
        .env("WORKON_HOME", scratch.join("venvs"))
        .env("PIPENV_VERBOSITY", "-1")
        .env("PIPENV_YES", "1")
        .env("POETRY_CACHE_DIR", scratch.join("poetry"))
        .env("UV_CACHE_DIR", scratch.join("uv"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .arg("lock");
    let out = with_host_certs(&mut cmd).output_within(COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "{tool} lock failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deploy `fixture` after writing its lock file with `tool`; it must serve `expected`.
/// Returns the environment and the app's folder, for more deploys.
fn deploys_and_serves(fixture: &str, tool: &str, says: &[&str], expected: &str) -> (Env, PathBuf) {
    let env = Env::new();
    let app = env.app(fixture);
    lock(&env, &app, tool);
    let mut run = env.deploy(&app, fixture, &[]);
    run = run.ok();
    for text in says {
        run = run.has(text);
    }
    let addr = url_of(&run);
    let mut last = String::new();
    eventually(Duration::from_secs(30), "the app to answer", || {
        last = get(&addr, "/").map(|(_, b)| b).unwrap_or_default();
        last.contains(expected)
    });
    (env, app)
}

#[test]
fn a_pipfile_app_like_scalingos_flask_sample_is_installed_by_pipenv_and_serves() {
    let (env, app) = deploys_and_serves(
        "python-pipenv",
        "pipenv",
        &[
            "-----> Using Python 3.11 specified in Pipfile.lock",
            &format!("-----> Installing Pipenv {}", pin("PIPENV_PIN")),
            "-----> Installing dependencies using 'pipenv install --deploy'",
        ],
        "flask on python 3.11.",
    );
    // Pipenv's own files are kept without write bits, so that each build links them into
    // its copy of the cache instead of copying them.
    let tools = env
        .home
        .path()
        .join("apps/python-pipenv/cache/.shipway-python/tools");
    let files: Vec<_> = walkdir::WalkDir::new(&tools)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .collect();
    assert!(!files.is_empty(), "no tool in {}", tools.display());
    for f in &files {
        let mode = f.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "{} is writable", f.path().display());
    }
    // A changed lock file: the virtualenv is restored and Pipenv, run from those linked
    // files, installs again.
    let lock_file = app.join("Pipfile.lock");
    let text = std::fs::read_to_string(&lock_file).unwrap();
    std::fs::write(&lock_file, format!("{text}\n")).unwrap();
    env.deploy(&app, "python-pipenv", &[])
        .ok()
        .has("Pipfile.lock changed")
        .has("-----> Installing dependencies using 'pipenv install --deploy'");
}

#[test]
fn a_poetry_app_is_installed_by_poetry_and_serves() {
    deploys_and_serves(
        "python-poetry",
        "poetry",
        &[
            "-----> Using Python 3.12 specified in .python-version",
            &format!("-----> Installing Poetry {}", pin("POETRY_PIN")),
            "-----> Installing dependencies using 'poetry sync --only main'",
        ],
        "flask on python 3.12.",
    );
}

#[test]
fn a_uv_app_is_installed_by_uv_and_serves() {
    deploys_and_serves(
        "python-uv",
        "uv",
        &[
            "-----> Using Python 3.13 specified in .python-version",
            "requires-python = \">=3.11\"",
            &format!("-----> Installing uv {}", pin("UV_PIN")),
            "-----> Installing dependencies using 'uv sync --locked --no-default-groups'",
        ],
        "flask on python 3.13.",
    );
}

// ---------------------------------------------------------------------------------------------
// Python versions: asked, found, used; none found fails

#[test]
fn an_impossible_python_version_fails_the_build_naming_what_was_asked_and_found() {
    let env = Env::new();
    let app = env.app("python-missing-version");
    env.run(&["build", &s(&app), "-a", "impossible"])
        .code(10)
        .has("-----> Using Python 3.99 specified in .python-version")
        .has("Python 3.99 is not a version the platform's buildpack knows (3.10 to 3.14)")
        .has("Found on this host: ")
        .has("Change the version in .python-version")
        .lacks("Build complete");
    has_note(
        &notes(&env, &app, "python"),
        "Python asked: 3.99 (.python-version)",
    );
}

/// A `uv` that fails as one does without the network: the fetch of a missing version.
fn offline_uv(env: &Env) -> String {
    let bin = env.work.path().join("offline-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let uv = bin.join("uv");
    write(
        &uv,
        "#!/bin/sh\necho 'error: Failed to download https://github.com/astral-sh/python-build-standalone/...: dns error' >&2\nexit 2\n",
    );
    std::fs::set_permissions(&uv, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn a_python_the_host_lacks_is_fetched_by_uv_else_fails_or_with_the_setting_uses_the_nearest() {
    let mut env = Env::new();
    let path = offline_uv(&env);
    env.set("PATH", &path);
    // 3.12.2 is a real release; the host has 3.12.1 (pyenv) at most.
    let app = env.app_as("python-runtime-txt", "needs-3-12-2");
    std::fs::remove_file(app.join("runtime.txt")).unwrap();
    write(&app.join(".python-version"), "3.12.2\n");
    let found = |run: &Run| {
        run.all()
            .lines()
            .find_map(|l| l.strip_prefix(" !     Found: "))
            .map(String::from)
            .unwrap_or_else(|| panic!("no list of what was found in:\n{}", run.all()))
    };
    let run = env
        .run(&["build", &s(&app), "-a", "needs"])
        .code(10)
        .has("-----> Python 3.12.2 is not on this host: trying `uv python install 3.12.2` into the build cache")
        .has("uv could not fetch it: error: Failed to download")
        .has("Python 3.12.2 is asked (.python-version), and this host has no Python 3.12.2.")
        .has("Install it:  ")
        .has("The platform never runs another version than the one asked");
    let listed = found(&run);
    assert!(!listed.contains("3.12.2 "), "{listed}");

    // The setting: the nearest found, said by a warning line, and the build goes on.
    env.set("SHIPWAY_NEAREST_VERSION", "1");
    let run = env.run(&["build", &s(&app), "-a", "needs"]).ok();
    let warning = run
        .all()
        .lines()
        .find(|l| {
            l.starts_with(" !     Python 3.12.2 (.python-version) is not on this host: using the nearest, ")
        })
        .unwrap_or_else(|| panic!("no warning in:\n{}", run.all()))
        .to_string();
    assert!(
        warning.ends_with("since SHIPWAY_NEAREST_VERSION=1. The platform would use Python 3.12.2."),
        "{warning}"
    );
    let used = warning
        .split("using the nearest, ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_string();
    run.has(&format!("-----> Using Python {used} ("));
    has_note(
        &notes(&env, &app, "python"),
        &format!("used: {used}, the nearest"),
    );
}

#[test]
fn python_version_and_package_manager_files_are_read_as_upstream_reads_them() {
    let env = Env::new();
    // Nothing asked: the platform's default, and the next build keeps the major it used.
    let sample = env.app("python");
    let python = notes(&env, &sample, "python");
    has_note(&python, "package manager: pip (requirements.txt)");
    has_note(&python, "Python asked: nothing, so the platform's default, 3.13");
    has_note(&python, "found on this host: ");
    has_note(&python, "used: ");
    env.run(&["build", &s(&sample), "-a", "sample"])
        .ok()
        .has("-----> No Python version was specified. Using the buildpack default: Python 3.13");
    env.run(&["build", &s(&sample), "-a", "sample"]).ok().has(
        "-----> No Python version was specified. Using the same major version as the last build: Python 3.13",
    );

    // runtime.txt comes before .python-version, as upstream.
    let runtime = env.app("python-runtime-txt");
    has_note(
        &notes(&env, &runtime, "python"),
        "Python asked: 3.12 (runtime.txt)",
    );
    write(&runtime.join(".python-version"), "3.11\n");
    has_note(
        &notes(&env, &runtime, "python"),
        "Python asked: 3.12 (runtime.txt)",
    );

    // uv: .python-version, with requires-python beside it; uv.lock names the manager.
    let uv = env.app("python-uv");
    write(&uv.join("uv.lock"), "version = 1\n");
    let uv_notes = notes(&env, &uv, "python");
    has_note(&uv_notes, "package manager: uv (uv.lock)");
    has_note(&uv_notes, "Python asked: 3.13 (.python-version)");
    has_note(&uv_notes, "requires-python: >=3.11 (pyproject.toml)");
    // uv without .python-version: an error upstream, said by detect and the build.
    std::fs::remove_file(uv.join(".python-version")).unwrap();
    has_note(
        &notes(&env, &uv, "python"),
        "with uv the platform requires a .python-version file",
    );

    // Pipfile.lock: python_full_version, else python_version; a Pipfile alone fails.
    let pipenv = env.app("python-pipenv");
    has_note(
        &notes(&env, &pipenv, "python"),
        "package manager: none: A Pipfile was found without its Pipfile.lock",
    );
    env.run(&["build", &s(&pipenv), "-a", "unlocked"])
        .code(10)
        .has("A Pipfile was found without its Pipfile.lock");
    write(
        &pipenv.join("Pipfile.lock"),
        r#"{"_meta": {"requires": {"python_version": "3.11", "python_full_version": "3.11.7"}}, "default": {}}"#,
    );
    let lock_notes = notes(&env, &pipenv, "python");
    has_note(&lock_notes, "package manager: pipenv (Pipfile.lock)");
    has_note(&lock_notes, "Python asked: 3.11.7 (Pipfile.lock)");

    // Two package managers, or a pyproject.toml alone: upstream refuses to guess.
    let poetry = env.app("python-poetry");
    has_note(
        &notes(&env, &poetry, "python"),
        "pyproject.toml alone names no package manager",
    );
    write(&poetry.join("poetry.lock"), "");
    write(&poetry.join("requirements.txt"), "flask\n");
    has_note(
        &notes(&env, &poetry, "python"),
        "Several package manager files (requirements.txt, poetry.lock)",
    );
}

// ---------------------------------------------------------------------------------------------
// Ruby, PHP, Go, Java: the version files read as upstream reads them, and said

#[test]
fn ruby_php_go_and_java_versions_are_read_as_upstream_reads_them() {
    let env = Env::new();
    // Ruby: RUBY VERSION of Gemfile.lock; the Gemfile's `ruby` line and .ruby-version shown.
    let ruby = notes(&env, &env.app("ruby-version"), "ruby");
    has_note(&ruby, "Ruby asked: 3.4.1 (Gemfile.lock)");
    has_note(
        &ruby,
        "Gemfile: ruby file: .ruby-version (the platform reads RUBY VERSION in Gemfile.lock)",
    );
    has_note(&ruby, ".ruby-version: 3.4.1");
    has_note(&ruby, "found on this host: ");
    let sample = notes(&env, &env.app("ruby"), "ruby");
    has_note(&sample, "Ruby asked: 3.1.2 (Gemfile.lock)");
    has_note(&sample, "used: 3.1.2 (");
    let unlocked = env.app_as("ruby", "ruby-unlocked");
    std::fs::remove_file(unlocked.join("Gemfile.lock")).unwrap();
    has_note(&notes(&env, &unlocked, "ruby"), "Gemfile.lock required");

    // PHP: require.php before config.platform.php; nothing asked is the platform's newest.
    let php = notes(&env, &env.app("php-version"), "php");
    has_note(&php, "PHP asked: >=8.2 <8.5 (composer.json require.php)");
    has_note(
        &notes(&env, &env.app("php-classic"), "php"),
        "PHP asked: * (nothing asked",
    );
    has_note(
        &notes(&env, &env.app("php"), "php"),
        "PHP asked: ^8.2 (composer.json require.php)",
    );

    // Go: the go line, expanded as the platform expands it; toolchain is not read upstream.
    let go = notes(&env, &env.app("go-toolchain"), "go");
    has_note(
        &go,
        "Go asked: go1.22.3 (the go line of go.mod); the platform installs go1.22.3",
    );
    has_note(
        &go,
        "toolchain go1.23.4 in go.mod: not read by the platform's buildpack",
    );
    has_note(
        &notes(&env, &env.app("go"), "go"),
        "Go asked: go1.19 (the go line of go.mod); the platform installs go1.19.13",
    );
    let comment = env.app_as("go-toolchain", "go-comment");
    let mod_text = std::fs::read_to_string(comment.join("go.mod")).unwrap();
    write(
        &comment.join("go.mod"),
        &format!("// +scalingo goVersion go1.20\n{mod_text}"),
    );
    has_note(
        &notes(&env, &comment, "go"),
        "Go asked: go1.20 (the +scalingo goVersion comment of go.mod)",
    );

    // Java: java.runtime.version, 1.8 meaning 8, a distribution prefix ignored.
    let java = env.app("java-version");
    has_note(
        &notes(&env, &java, "java"),
        "Java asked: 21 (system.properties java.runtime.version=21)",
    );
    write(
        &java.join("system.properties"),
        "java.runtime.version = zulu-1.8\n",
    );
    has_note(
        &notes(&env, &java, "java"),
        "Java asked: 8 (system.properties java.runtime.version=zulu-1.8)",
    );
    has_note(
        &notes(&env, &env.app("java-maven"), "java"),
        "Java asked: 25 (nothing asked",
    );
}

#[test]
fn a_runtime_version_the_host_lacks_fails_the_build_naming_asked_found_and_how_to_install() {
    let mut env = Env::new();
    env.run(&["build", &s(&env.app("ruby-version")), "-a", "rb"])
        .code(10)
        .has("-----> Using Ruby 3.4.1 specified in Gemfile.lock")
        .has("Ruby 3.4.1 is asked (Gemfile.lock), and this host has no Ruby 3.4.1.")
        .has("Found: ")
        .has("Install it:  ");
    env.run(&["build", &s(&env.app("go-toolchain")), "-a", "gotc"])
        .code(10)
        .has("-----> Go go1.22.3 asked (the go line of go.mod): the platform installs go1.22.3")
        .has("go.mod names toolchain go1.23.4: the platform's buildpack does not read it")
        .has("Found: ")
        .has("Install it:  go install golang.org/dl/go1.22.3@latest");
    // A PHP constraint no PHP of Debian's satisfies.
    let php = env.app_as("php", "php-old");
    write(
        &php.join("composer.json"),
        r#"{"name": "shipway/php-old", "require": {"php": "^7.4"}}"#,
    );
    env.run(&["build", &s(&php), "-a", "phpold"])
        .code(10)
        .has("-----> PHP ^7.4 asked (composer.json require.php)")
        .has("PHP ^7.4 is asked (composer.json require.php), and this host has no PHP that satisfies it.")
        .has("Install it:  sudo apt-get install php-cli");
    // A JDK no host is likely to have: Java 19, a short-lived release.
    let java = env.app("java-version");
    write(&java.join("system.properties"), "java.runtime.version=19\n");
    env.run(&["build", &s(&java), "-a", "jdk"])
        .code(10)
        .has("-----> Java 19 asked (system.properties java.runtime.version=19)")
        .has("Java 19 is asked (system.properties java.runtime.version=19), and this host has no such JDK (with javac).")
        .has("Found: ")
        .has("Install it:  sudo apt-get install openjdk-19-jdk-headless");
    for (app, buildpack) in [("ruby-version", "ruby"), ("go-toolchain", "go")] {
        has_note(
            &notes(&env, &env.work.path().join(app), buildpack),
            "the build fails (install it: ",
        );
    }
    has_note(&notes(&env, &java, "java"), "used: none matches 19");

    // The setting: every buildpack's detect says the nearest is used, as its build does.
    env.set("SHIPWAY_NEAREST_VERSION", "1");
    for (app, buildpack) in [
        ("ruby-version", "ruby"),
        ("go-toolchain", "go"),
        ("java-version", "java"),
    ] {
        has_note(
            &notes(&env, &env.work.path().join(app), buildpack),
            ", since SHIPWAY_NEAREST_VERSION=1",
        );
    }
    env.run(&["build", &s(&java), "-a", "jdk"])
        .has(" !     Java 19 (system.properties java.runtime.version=19) is not on this host: using the nearest, ")
        .has("since SHIPWAY_NEAREST_VERSION=1. The platform would use Java 19.");
}

#[test]
fn an_app_that_asks_no_python_builds_with_the_nearest_when_the_host_lacks_the_default() {
    let mut env = Env::new();
    // The host's pyenv Pythons hidden: what is left is on PATH (Debian's python3).
    let empty = env.work.path().join("no-pyenv");
    std::fs::create_dir_all(&empty).unwrap();
    env.set("SHIPWAY_PASS_ENV", "PYENV_ROOT")
        .set("PYENV_ROOT", &s(&empty));
    let app = env.app("python");
    let run = env.run(&["build", &s(&app), "-a", "nodefault"]).ok();
    if !run.all().contains("-----> Using Python 3.13.") {
        let run = run.has(
            " !     No Python version is asked: the platform would use Python 3.13 (its default), which this host lacks; using the nearest found, ",
        );
        let used = run
            .all()
            .lines()
            .find_map(|l| l.split("using the nearest found, ").nth(1))
            .and_then(|r| r.split(". Pin").next())
            .unwrap()
            .to_string();
        run.has(&format!("-----> Using Python {used} ("))
            .lacks("uv python install");
    }
}

/// A private index in the Pipfile's `[[source]]` that this machine cannot reach: the
/// failure names it, its credentials hidden.
#[test]
fn a_pipfile_index_that_cannot_be_reached_is_named_without_its_credentials() {
    let env = Env::new();
    let app = env.app("python-pipenv");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let index = format!("http://deploy:s3cret@127.0.0.1:{closed}/simple");
    write(
        &app.join("Pipfile"),
        &format!(
            "[[source]]\nurl = \"{index}\"\nverify_ssl = false\nname = \"private\"\n\n[packages]\nflask = \"*\"\n\n[requires]\npython_version = \"3.11\"\n"
        ),
    );
    // The lock Pipenv would write, its hash over the Pipfile as Pipenv computes it.
    let script = r#"
import hashlib, json, tomllib
data = tomllib.load(open("Pipfile", "rb"))
meta = {"sources": data["source"], "requires": data.get("requires", {})}
hashed = {"_meta": meta, "default": data.get("packages", {}), "develop": data.get("dev-packages", {})}
digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
lock = {
    "_meta": {"hash": {"sha256": digest}, "pipfile-spec": 6, "requires": meta["requires"], "sources": meta["sources"]},
    "default": {"flask": {"hashes": ["sha256:" + "0" * 64], "index": "private", "version": "==3.0.0"}},
    "develop": {},
}
open("Pipfile.lock", "w").write(json.dumps(lock, indent=4) + "\n")
"#;
    run_ok(&app, "python3", &["-c", script]);
    let run = env.deploy(&app, "private-index", &[]).code(10);
    run.has("Unable to install dependencies using Pipenv")
        .has(&format!(
            "The Pipfile's [[source]] index http://***@127.0.0.1:{closed}/simple cannot be reached from this machine"
        ))
        .lacks("s3cret");
}
