//! `/app`, as on the platform: builds see a folder of their own at /app, containers see
//! their slug there, and the host's /app is never created or changed.

use std::time::Duration;

use crate::harness::*;

/// What the host's /app is now: whether it exists, and what it holds.
fn host_app() -> Option<Vec<String>> {
    let entries = std::fs::read_dir("/app").ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Some(names)
}

/// The python sample without its Procfile, so that the buildpack's web command runs.
fn app_paths_app(env: &Env) -> std::path::PathBuf {
    let app = env.app_as("python", "tooled");
    std::fs::remove_file(app.join("Procfile")).unwrap();
    app
}

fn app_paths() -> String {
    format!("BUILDPACK_URL={}", fixture_buildpack("app-paths").display())
}

#[test]
fn a_buildpack_that_writes_app_paths_deploys_scales_and_runs_at_app() {
    let before = host_app();
    let env = Env::new();
    let app = app_paths_app(&env);
    let run = env.deploy(&app, "tooled", &["--env", &app_paths()]).ok();
    let run = run
        .has("tool runs from /app/.scalingo/tool")
        .has("HOME=/app, in ")
        .lacks("No /app sandbox");
    let addr = url_of(&run);
    assert_eq!(body(&addr), "python version=1 container=web-1\n");
    env.run(&["scale", "-a", "tooled", "web=2"]).ok();
    eventually(Duration::from_secs(20), "both web containers to answer", || {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..8 {
            if let Ok((200, b)) = get(&addr, "/") {
                seen.insert(b);
            }
        }
        seen.len() == 2
    });
    env.run(&["run", "-a", "tooled", "pwd"]).ok().has("/app\n");
    env.run(&[
        "run",
        "-a",
        "tooled",
        "echo home=$HOME; ls /app/.scalingo/tool/bin",
    ])
    .ok()
    .has("home=/app\n")
    .has("serve");
    // The release folder is what containers see at /app; the host's /app is as it was.
    assert!(env
        .home
        .path()
        .join("apps/tooled/releases/1/app/.scalingo/tool/bin/serve")
        .is_file());
    assert_eq!(host_app(), before, "the host's /app changed");
}

#[test]
fn with_the_sandbox_off_containers_run_in_their_release_folder() {
    let mut env = Env::new();
    env.set("SHIPWAY_SANDBOX", "off");
    let app = env.app("python");
    env.deploy(&app, "unsandboxed", &[]).ok();
    let release = env.home.path().join("apps/unsandboxed/releases/1/app");
    let release = release.canonicalize().unwrap();
    env.run(&["run", "-a", "unsandboxed", "pwd"])
        .ok()
        .has(&format!("{}\n", release.display()));
}

#[test]
fn an_unknown_sandbox_setting_is_refused_with_the_choices() {
    let mut env = Env::new();
    env.set("SHIPWAY_SANDBOX", "maybe");
    env.run(&["apps"]).code(1).has("auto, off or required");
}

/// As an unprivileged user (nobody), where the machine has one and this runs as root:
/// the sandbox goes through a user namespace.
#[test]
fn an_unprivileged_user_builds_with_app_paths_too() {
    let env = Env::new();
    let Some(home) = nobody_home(&env, "an_unprivileged_user_builds_with_app_paths_too") else {
        return;
    };
    let app = app_paths_app(&env);
    let out = env.work.path().join("out");
    let (app, out) = (app.to_str().unwrap(), out.to_str().unwrap());
    run_as_nobody(
        &env,
        &home,
        &["build", app, "-a", "tooled", "--out", out, "--env", &app_paths()],
    )
    .ok()
    .has("tool runs from /app/.scalingo/tool")
    .lacks("No /app sandbox");
}
