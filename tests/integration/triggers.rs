//! Every way the platform takes a deployment (PLATFORM.md §1): `git push` to the remote
//! `git-setup` adds, archives (and `shipway archive`), WAR and JAR files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// `shipway ARGS` run in `dir`.
fn run_in(env: &Env, dir: &Path, args: &[&str]) -> Run {
    Run::from(env.command(args).current_dir(dir).output_within(COMMAND_LIMIT))
}

/// `git ARGS` in `dir` with the test's shipway settings in the environment (the hook
/// inherits them, as it would a developer's).
fn git_run(env: &Env, dir: &Path, args: &[&str]) -> Run {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .envs(&env.vars)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output_within(COMMAND_LIMIT);
    Run::from(out)
}

/// The router address a deployment printed, wherever it is (git shows it as `remote:`).
fn url_in(run: &Run) -> String {
    let all = run.all();
    let start = all
        .find("<-- http://")
        .unwrap_or_else(|| panic!("no URL in:\n{all}"))
        + "<-- http://".len();
    let rest = &all[start..];
    rest[..rest.find(" -->").unwrap()].to_string()
}

/// A copy of `fixture` as a git work tree on `main` with one commit; its apps bind
/// 127.0.0.1 through `.profile.d` (a push carries no `--env`).
fn repo_of(env: &Env, fixture: &str, name: &str) -> PathBuf {
    let dir = env.app_as(fixture, name);
    std::fs::create_dir_all(dir.join(".profile.d")).unwrap();
    std::fs::write(
        dir.join(".profile.d/00-loopback.sh"),
        "export BIND_HOST=127.0.0.1\n",
    )
    .unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "first"]);
    dir
}

fn commit(dir: &Path, file: &str, content: &str, message: &str) -> String {
    std::fs::write(dir.join(file), content).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn remote_ref(env: &Env, app: &str, branch: &str) -> Option<String> {
    let repo = env.home.path().join(format!("apps/{app}/repo.git"));
    let out = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(&repo)
        .output_within(COMMAND_LIMIT);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn container_version(addr: &str) -> String {
    let env: serde_json::Value = serde_json::from_str(&body(addr)).unwrap();
    env["CONTAINER_VERSION"].as_str().unwrap_or_default().to_string()
}

#[test]
fn git_push_deploys_the_commit_and_a_failed_deployment_refuses_the_push() {
    let env = Env::new();
    let dir = repo_of(&env, "env-echo", "echo");
    let first = git(&dir, &["rev-parse", "HEAD"]);
    run_in(&env, &dir, &["git-setup", "-a", "echo"])
        .ok()
        .has("Added the git remote shipway");
    let repo = env.home.path().join("apps/echo/repo.git");
    run_in(&env, &dir, &["git-show"])
        .ok()
        .has(&repo.display().to_string());

    let push = git_run(&env, &dir, &["push", "shipway", "main"]).ok();
    let push = push
        .has("remote: <-- Start deployment of echo")
        .has(&format!("SOURCE_VERSION={first}"));
    let addr = url_in(&push);
    assert_eq!(container_version(&addr), first);
    assert_eq!(remote_ref(&env, "echo", "main").as_deref(), Some(first.as_str()));
    let history = run_in(&env, &dir, &["deployments", "--json"]).ok();
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(
        history[0]["source"],
        format!("git push of {first} to {}", repo.display()),
        "the record names the push, not the hook's temporary view"
    );

    // A deployment that fails refuses the push: the remote keeps the deployed commit.
    let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap();
    commit(&dir, "Procfile", "web: exit 3\n", "broken");
    git_run(&env, &dir, &["push", "shipway", "main"])
        .code(1)
        .has("crashed-error")
        .has(&format!("shipway/main stays at {}", &first[..12]))
        .has("pre-receive hook declined");
    assert_eq!(remote_ref(&env, "echo", "main").as_deref(), Some(first.as_str()));
    assert_eq!(container_version(&addr), first);

    // The fix is deployed, then a force-push of the older commit deploys it again.
    let fixed = commit(&dir, "Procfile", &procfile, "fixed");
    git_run(&env, &dir, &["push", "shipway", "main"]).ok();
    assert_eq!(container_version(&addr), fixed);
    assert_eq!(remote_ref(&env, "echo", "main").as_deref(), Some(fixed.as_str()));
    git_run(
        &env,
        &dir,
        &["push", "--force", "shipway", &format!("{first}:main")],
    )
    .ok()
    .has(&format!("SOURCE_VERSION={first}"));
    assert_eq!(container_version(&addr), first);
    assert_eq!(remote_ref(&env, "echo", "main").as_deref(), Some(first.as_str()));
}

#[test]
fn git_push_takes_main_and_master_only_and_refuses_shallow_history() {
    let env = Env::new();
    let dir = repo_of(&env, "python", "py");
    commit(&dir, "VERSION", "2\n", "second");
    run_in(&env, &dir, &["git-setup"]).ok();
    git_run(&env, &dir, &["push", "shipway", "main:feature"])
        .code(1)
        .has("only the main and master branches are deployed")
        .has("git push shipway feature:main")
        .has("pre-receive hook declined")
        .lacks("Start deployment");
    assert_eq!(remote_ref(&env, "py", "feature"), None);

    // A shallow clone's push would leave the remote without the history it refers to.
    let shallow = env.work.path().join("shallow");
    let url = format!("file://{}", dir.display());
    git(
        env.work.path(),
        &["clone", "-q", "--depth", "1", &url, shallow.to_str().unwrap()],
    );
    run_in(&env, &shallow, &["git-setup", "-a", "shallow-app"]).ok();
    git_run(&env, &shallow, &["push", "shipway", "main"])
        .code(1)
        .has("Push rejected, source repository is a shallow clone. Unshallow it with `git fetch --all --unshallow` and try pushing again.")
        .lacks("Start deployment");
    assert_eq!(remote_ref(&env, "shallow-app", "main"), None);
}

#[test]
fn git_setup_explains_what_it_cannot_do() {
    let env = Env::new();
    let plain = env.app("python");
    run_in(&env, &plain, &["git-setup"])
        .code(1)
        .has("is not in a git work tree");
    let dir = repo_of(&env, "python", "py");
    git(&dir, &["remote", "add", "shipway", "/elsewhere.git"]);
    run_in(&env, &dir, &["git-setup"])
        .code(1)
        .has("already points to /elsewhere.git; add --force");
    run_in(&env, &dir, &["git-setup", "--force"])
        .ok()
        .has("was /elsewhere.git");
    run_in(&env, &dir, &["git-setup"]).ok().has("already points to");
    run_in(&env, &dir, &["git-show", "-r", "other"])
        .code(1)
        .has("no remote named `other`");
}

#[test]
fn archive_written_by_shipway_deploys_with_the_same_result() {
    let env = Env::new();
    let app = env.app("python");
    std::fs::write(app.join("VERSION"), "7\n").unwrap();
    let first = env.deploy(&app, "py", &[]).ok();
    let addr = url_of(&first);
    assert_eq!(body(&addr), "python version=7 container=web-1\n");

    let archive = env.work.path().join("py.tgz");
    let out = archive.display().to_string();
    run_in(&env, &app, &["archive", "-a", "py", "-o", &out])
        .ok()
        .has("folder py/ with");
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output_within(COMMAND_LIMIT);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        listing.lines().all(|l| l == "py/" || l.starts_with("py/")),
        "{listing}"
    );
    assert!(listing.contains("py/VERSION"), "{listing}");

    // The same app, from the archive: the same build and the same answer.
    std::fs::remove_dir_all(&app).unwrap();
    let again = env
        .deploy(&archive, "py", &[])
        .ok()
        .has("archive")
        .has("folder py/");
    let types = |run: &Run| {
        run.stdout
            .lines()
            .find(|l| l.contains("Procfile declares types"))
            .map(String::from)
    };
    assert_eq!(types(&first), types(&again));
    assert_eq!(url_of(&again), addr);
    assert_eq!(body(&addr), "python version=7 container=web-1\n");
}

#[test]
fn archives_follow_the_platform_rules_and_urls_are_refused_offline() {
    let env = Env::new();
    env.app("python");
    env.app("static");
    let two = env.work.path().join("two.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&two)
        .args(["python", "static"])
        .current_dir(env.work.path())
        .status_within(COMMAND_LIMIT);
    assert!(status.success());
    env.deploy(&two, "two", &[])
        .code(10)
        .has("must hold a single folder at its root");
    env.run(&["deploy", "https://example.com/app.tar.gz", "-a", "remote"])
        .code(1)
        .has("shipway works offline")
        .has("curl -LO https://example.com/app.tar.gz")
        .lacks("Started the shipway platform");
}

/// Tomcat's servlet API from Debian's tomcat10-common (.ci/run installs it).
const SERVLET_API: &str = "/usr/share/tomcat10/lib/servlet-api.jar";

/// `fixtures/apps/war` built into `<copy>/app.war` (see its README).
fn build_war(env: &Env) -> PathBuf {
    assert!(
        Path::new(SERVLET_API).exists(),
        "{SERVLET_API} is missing: install Debian's tomcat10-common (.ci/run does)"
    );
    let dir = env.app("war");
    run_ok(
        &dir,
        "javac",
        &["-cp", SERVLET_API, "-d", "WEB-INF/classes", "Hello.java"],
    );
    run_ok(
        &dir,
        "jar",
        &["--create", "--file", "app.war", "WEB-INF", "static.txt"],
    );
    dir.join("app.war")
}

/// `fixtures/apps/jar` built into `<copy>/app.jar` (see its README).
fn build_jar(env: &Env, name: &str) -> PathBuf {
    let dir = env.app_as("jar", name);
    run_ok(&dir, "javac", &["-d", "classes", "Main.java"]);
    run_ok(
        &dir,
        "jar",
        &[
            "--create",
            "--file",
            "app.jar",
            "--main-class",
            "Main",
            "-C",
            "classes",
            ".",
        ],
    );
    dir.join("app.jar")
}

#[test]
fn war_file_is_served_by_the_hosts_tomcat() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "60s");
    let war = build_war(&env);
    let run = env
        .deploy(&war, "shop", &[])
        .ok()
        .has("Using buildpack java-war for the deployed file")
        .has("WAR app detected")
        .has("Using the host's Tomcat");
    let addr = url_of(&run);
    let first = get_within(&addr, "/", Duration::from_secs(60)).unwrap();
    assert_eq!(first.1, "war version=1 container=web-1\n");
    assert_eq!(get(&addr, "/static.txt").unwrap(), (200, "static\n".to_string()));
    // The platform wraps the file as <app>/<file>.war.
    let release = env.home.path().join("apps/shop/releases/1");
    assert!(release.join("app/app.war").is_file());
    let toml = std::fs::read_to_string(release.join("release.toml")).unwrap();
    assert!(toml.contains("JAVA_OPTS"), "{toml}");
    assert!(toml.contains("catalina.sh\" run"), "{toml}");
}

#[test]
fn war_file_without_a_servlet_container_names_every_way_to_get_one() {
    let env = Env::new();
    let dir = env.app("war");
    std::fs::write(dir.join("app.war"), "not built: compile fails first").unwrap();
    env.deploy(
        &dir.join("app.war"),
        "shop",
        &[
            "--env",
            "CATALINA_HOME=/nonexistent",
            "--env",
            "JETTY_HOME=/nonexistent",
        ],
    )
    .code(10)
    .has("No servlet container to run the WAR")
    .has("sudo apt-get install tomcat10-common")
    .has("sudo apt-get install jetty9")
    .has("JAVA_WEBAPP_RUNNER_JAR");
}

#[test]
fn war_file_runs_on_the_runner_jar_the_user_points_to_the_platforms_way() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "60s");
    // Any executable JAR that reads $PORT stands for webapp-runner: the test checks that
    // it is copied into the app and started with the platform's command.
    let runner = build_jar(&env, "runner");
    let dir = env.app("war");
    std::fs::write(dir.join("app.war"), "a WAR the runner is given").unwrap();
    let setting = format!("JAVA_WEBAPP_RUNNER_JAR={}", runner.display());
    let run = env
        .deploy(&dir.join("app.war"), "shop", &["--env", &setting])
        .ok()
        .has("(JAVA_WEBAPP_RUNNER_JAR)");
    assert_eq!(body(&url_of(&run)), "jar version=1 container=web-1\n");
    let release = env.home.path().join("apps/shop/releases/1");
    assert!(release.join("app/webapp-runner.jar").is_file());
    let toml = std::fs::read_to_string(release.join("release.toml")).unwrap();
    assert!(
        toml.contains(r#"java $JAVA_OPTS -jar webapp-runner.jar --port $PORT "./app.war""#),
        "{toml}"
    );
}

#[test]
fn detect_of_a_jar_file_names_the_buildpack_deploy_uses() {
    let env = Env::new();
    let jar = build_jar(&env, "jar");
    let d = jar.display().to_string();
    env.run(&["detect", &d])
        .ok()
        .has("jvm-common")
        .has("the deployed .war or .jar file");
}

#[test]
fn jar_file_is_run_by_the_jvm_common_buildpack() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "60s");
    let jar = build_jar(&env, "jar");
    let run = env
        .deploy(&jar, "api", &[])
        .ok()
        .has("Using buildpack jvm-common for the deployed file")
        .has("JVM app detected");
    let addr = url_of(&run);
    assert_eq!(body(&addr), "jar version=1 container=web-1\n");
    let toml = std::fs::read_to_string(env.home.path().join("apps/api/releases/1/release.toml")).unwrap();
    assert!(toml.contains("$JAVA_OPTS -jar \"./app.jar\""), "{toml}");
    assert!(toml.contains("-Dserver.port=$PORT"), "{toml}");
}
