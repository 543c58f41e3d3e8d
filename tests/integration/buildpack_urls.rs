//! Buildpacks named by URL, fetched from a git server on this machine (git's dumb HTTP
//! protocol, served by python's http.server), cached by URL and ref, and used from the
//! cache when the server is gone.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::harness::*;

/// A folder served over HTTP on 127.0.0.1; killed on drop. Its requests go to `log`.
struct Server {
    /// Killed and reaped on drop.
    _child: Guarded,
    port: u16,
    log: PathBuf,
}

const SERVE: &str = r#"
import http.server, os, sys
os.chdir(sys.argv[1])
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;

impl Server {
    fn start(root: &Path, log: PathBuf) -> Server {
        let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
        let (child, port) = python_server(SERVE, &[root.to_str().unwrap()], stderr);
        Server {
            _child: child,
            port,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// How many requests it has answered so far.
    fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("\"GET ")
            .count()
    }
}

/// A buildpack repository (procfile-only, printing `marker` at compile) with a `main`
/// branch and a tag `v1`, published as `<served>/bp.git` for the dumb protocol.
fn publish(env: &Env, marker: &str) -> (PathBuf, PathBuf) {
    publish_as(env, marker, "bp.git")
}

fn publish_as(env: &Env, marker: &str, name: &str) -> (PathBuf, PathBuf) {
    let work = env.work.path().join(format!("{name}-work"));
    copy_dir(&fixture_buildpack("procfile-only"), &work);
    write_marker(&work, marker);
    serve_repo(env, &work, name)
}

/// `work` committed (tagged `v1`) and published as `<served>/<name>` for the dumb protocol.
fn serve_repo(env: &Env, work: &Path, name: &str) -> (PathBuf, PathBuf) {
    let work = work.to_path_buf();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "first"]);
    git(&work, &["tag", "v1"]);
    let served = env.work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let bare = served.join(name);
    git(
        env.work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["update-server-info"]);
    (work, served)
}

fn write_marker(work: &Path, marker: &str) {
    std::fs::write(
        work.join("bin/compile"),
        format!("#!/usr/bin/env bash\necho \"-----> Built by {marker}\"\n"),
    )
    .unwrap();
}

/// A new commit on `main`, pushed to the served repository.
fn push_change(work: &Path, served: &Path, marker: &str) {
    write_marker(work, marker);
    git(work, &["commit", "-qam", marker]);
    let bare = served.join("bp.git");
    git(work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    git(&bare, &["update-server-info"]);
}

/// A port of 127.0.0.1 nothing listens on: bound, then closed.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn deploy(env: &Env, app: &Path, url: &str) -> Run {
    env.deploy(app, "fetched", &["--env", &format!("BUILDPACK_URL={url}")])
}

#[test]
fn a_buildpack_by_url_is_fetched_once_per_tag_again_per_branch_and_used_from_the_cache_offline() {
    let env = Env::new();
    let (work, served) = publish(&env, "first");
    let app = env.app("python");
    let server = Server::start(&served, env.work.path().join("server.log"));
    let branch = format!("{}#main", server.url("bp.git"));
    let tag = format!("{}#v1", server.url("bp.git"));

    deploy(&env, &app, &branch)
        .ok()
        .has(&format!("Cloning custom buildpack: {branch}"))
        .has("Built by first")
        .has("at commit ");
    deploy(&env, &app, &tag).ok().has("Built by first");

    // A branch is fetched again: a new commit is used at once.
    push_change(&work, &served, "second");
    deploy(&env, &app, &branch).ok().has("Built by second");

    // A tag already cached is not fetched again.
    let before = server.requests();
    deploy(&env, &app, &tag).ok().has("Built by first");
    assert_eq!(server.requests(), before, "the tag was fetched again");

    // The server is gone: both are built from the cache, the branch saying so.
    drop(server);
    deploy(&env, &app, &branch)
        .ok()
        .has("Built by second")
        .has("cannot be reached (the connection was refused): using the cached copy at ");
    deploy(&env, &app, &tag)
        .ok()
        .has("Built by first")
        .lacks("cannot be reached");

    // The deployment record names the commit.
    let head = git(&work, &["rev-parse", "HEAD"]);
    let records = std::fs::read_dir(env.home.path().join("apps/fetched/deployments"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(records.contains(&format!("(commit {head})")), "{records}");

    let list = env.run(&["buildpacks"]).ok();
    let list = list.has("main").has("v1").has(&head[..12]);
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["buildpacks", "--json"]).ok().stdout).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{}", list.all());
    crate::output::check_convention(&json, "buildpacks");
    env.run(&["buildpacks", "--clear"])
        .ok()
        .has("Removed 2 cached buildpack(s)");
    env.run(&["buildpacks"])
        .ok()
        .has("No buildpack fetched by URL yet");
}

#[test]
fn a_buildpack_url_that_cannot_be_fetched_with_nothing_cached_is_a_build_error_saying_why() {
    let env = Env::new();
    let app = env.app("python");
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/bp.git");
    deploy(&env, &app, &url)
        .code(10)
        .has(&format!(
            "BUILDPACK_URL: cannot fetch buildpack {url}: the connection was refused"
        ))
        .has("build-error");
    let (_, served) = publish(&env, "first");
    let server = Server::start(&served, env.work.path().join("server.log"));
    deploy(&env, &app, &server.url("nothing-here.git"))
        .code(10)
        .has("no repository at that URL");
    deploy(&env, &app, &format!("{}#no-such-ref", server.url("bp.git")))
        .code(10)
        .has("has no ref no-such-ref");
}

#[test]
fn a_buildpack_archive_by_url_is_downloaded_and_kept_for_when_the_server_is_gone() {
    let env = Env::new();
    let served = env.work.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let bp = env.work.path().join("bp");
    copy_dir(&fixture_buildpack("procfile-only"), &bp);
    write_marker(&bp, "the archive");
    run_ok(
        env.work.path(),
        "tar",
        &[
            "-czf",
            served.join("bp.tgz").to_str().unwrap(),
            "-C",
            bp.to_str().unwrap(),
            ".",
        ],
    );
    let app = env.app("python");
    let server = Server::start(&served, env.work.path().join("server.log"));
    let url = server.url("bp.tgz");
    deploy(&env, &app, &url).ok().has("Built by the archive");
    drop(server);
    deploy(&env, &app, &url)
        .ok()
        .has("Built by the archive")
        .has("cannot be reached (the connection was refused): using the copy downloaded ");
}

/// Detection and BUILDPACK_NAME build with Scalingo's buildpack for the language, here
/// from a mirror (the `official_buildpacks_url` setting) served on 127.0.0.1.
#[test]
fn official_buildpacks_build_detected_and_named_apps_and_are_kept_for_when_the_server_is_gone() {
    let mut env = Env::new();
    env.set("SHIPWAY_OFFICIAL_BUILDPACKS", "always");
    let (_, served) = publish_as(&env, "the official python buildpack", "python-buildpack");
    let server = Server::start(&served, env.work.path().join("server.log"));
    env.set("SHIPWAY_OFFICIAL_BUILDPACKS_URL", &server.url(""));
    let app = env.app("python");
    env.deploy(&app, "official", &[])
        .ok()
        .has("-----> Python app detected")
        .has("Using Scalingo's official python buildpack: ")
        .has("Built by the official python buildpack");
    env.run(&["detect", app.to_str().unwrap()])
        .ok()
        .has("Using Scalingo's official python buildpack");
    // Gone, but cached: still the official one, saying which copy.
    drop(server);
    env.deploy(&app, "official", &["--env", "BUILDPACK_NAME=python"])
        .ok()
        .has("Built by the official python buildpack")
        .has("using the cached copy at ");
    // Never fetched (nodejs), and `always`: the build fails, saying why.
    let node = env.app("nodejs");
    env.run(&["build", node.to_str().unwrap(), "-a", "node"])
        .code(10)
        .has("/nodejs-buildpack: the connection was refused");
}

/// `auto` (the default) takes the official buildpack only on the stack's own Ubuntu,
/// where the runtimes it downloads run; elsewhere the bundled one, saying why.
#[test]
fn official_buildpacks_auto_follows_the_host() {
    let mut env = Env::new();
    env.set("SHIPWAY_OFFICIAL_BUILDPACKS", "auto");
    let (_, served) = publish_as(&env, "the official python buildpack", "python-buildpack");
    let server = Server::start(&served, env.work.path().join("server.log"));
    env.set("SHIPWAY_OFFICIAL_BUILDPACKS_URL", &server.url(""));
    let app = env.app("python");
    let run = env.run(&["build", app.to_str().unwrap(), "-a", "auto"]).ok();
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    // A new app is on scalingo-26; with no image of it, the host decides.
    let stack_ubuntu = os.lines().any(|l| l == "ID=ubuntu") && os.contains("VERSION_ID=\"26.04\"");
    if stack_ubuntu {
        run.has("Built by the official python buildpack");
    } else {
        run.has("not Scalingo's official python buildpack: they download runtimes built for scalingo-26 (Ubuntu 26.04), and this host is ")
            .lacks("Built by the official python buildpack");
        assert_eq!(server.requests(), 0, "the mirror was asked");
    }
}

#[test]
fn official_buildpacks_always_fails_a_build_where_none_can_be_had() {
    let mut env = Env::new();
    env.set("SHIPWAY_OFFICIAL_BUILDPACKS", "always");
    let port = closed_port();
    env.set(
        "SHIPWAY_OFFICIAL_BUILDPACKS_URL",
        &format!("http://127.0.0.1:{port}"),
    );
    let app = env.app("python");
    env.run(&["build", app.to_str().unwrap(), "-a", "strict"])
        .code(10)
        .has(&format!(
            "cannot fetch buildpack http://127.0.0.1:{port}/python-buildpack: the connection was refused"
        ));
}

/// As an unprivileged user (nobody), where this runs as root: a buildpack fetched by URL
/// into nobody's own cache, building with its private /app through a user namespace.
#[test]
fn an_unprivileged_user_fetches_a_buildpack_by_url_and_builds_with_app() {
    let env = Env::new();
    let Some(home) = nobody_home(
        &env,
        "an_unprivileged_user_fetches_a_buildpack_by_url_and_builds_with_app",
    ) else {
        return;
    };
    let work = env.work.path().join("app-paths-work");
    copy_dir(&fixture_buildpack("app-paths"), &work);
    let (_, served) = serve_repo(&env, &work, "app-paths.git");
    let server = Server::start(&served, env.work.path().join("server.log"));
    let app = env.app_as("python", "tooled");
    std::fs::remove_file(app.join("Procfile")).unwrap();
    let url = format!("BUILDPACK_URL={}#v1", server.url("app-paths.git"));
    let out = env.work.path().join("out");
    let (app, out) = (app.to_str().unwrap(), out.to_str().unwrap());
    run_as_nobody(
        &env,
        &home,
        &["build", app, "-a", "tooled", "--out", out, "--env", &url],
    )
    .ok()
    .has("at commit ")
    .has("tool runs from /app/.scalingo/tool")
    .lacks("No /app sandbox");
    assert!(
        home.join("buildpacks").is_dir(),
        "nothing cached in nobody's home"
    );
}
