//! Processes that leave their container's process group (`setsid`, a double fork) stay
//! owned by it: they are stopped with it, by the hook's end, a restart, `down` or the
//! platform's death, and they never hold a deploy or a build.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::*;

/// A deploy of the `escapes` fixture as `app`; its web container has left two processes
/// outside its group, and its hook a third, whose pids are returned in that order.
fn deploy_escapes(env: &Env, app: &str) -> (PathBuf, Vec<i32>) {
    let dir = env.app("escapes");
    let run = run_within(
        env,
        &[
            "deploy",
            dir.to_str().unwrap(),
            "-a",
            app,
            "--env",
            "BIND_HOST=127.0.0.1",
            "--env",
            &procfile_only(),
            "--env",
            &pids_dir(env),
        ],
        // The hook's daemon would hold its output for 11 days; the hook limit is an hour.
        Duration::from_secs(60),
    )
    .ok()
    .has("hook-done")
    .has("stopping what it left running");
    let pidfile = env.work.path().join("escaped.pid");
    let pids = read_pids(&pidfile);
    assert_eq!(pids.len(), 3, "escaped.pid: {pids:?}\n{}", run.all());
    (pidfile, pids)
}

fn hook_env() -> Env {
    let mut env = Env::new();
    env.set("SHIPWAY_HOOK_TIMEOUT", "1h");
    env
}

/// Kills what a failed test leaves, so that it leaks nothing.
struct Leftovers(Vec<i32>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        kill_strays(&self.0, &["1000000"]);
    }
}

#[test]
fn a_hook_that_leaves_a_setsid_daemon_ends_with_its_main_process() {
    let env = hook_env();
    let (_, pids) = deploy_escapes(&env, "hooked");
    let _guard = Leftovers(pids.clone());
    let hook_daemon = pids[2];
    eventually(Duration::from_secs(5), "the hook's daemon to be gone", || {
        !alive(hook_daemon)
    });
    assert!(
        alive(pids[0]) && alive(pids[1]),
        "the web container's processes stopped: {pids:?}"
    );
}

#[test]
fn processes_that_left_the_group_are_listed_and_stopped_with_their_container_on_restart() {
    let env = hook_env();
    let (pidfile, pids) = deploy_escapes(&env, "restarted");
    let mut _guard = Leftovers(pids.clone());
    let web = &pids[..2];
    env.run(&["ps", "-a", "restarted"])
        .ok()
        .has(&format!("\u{2514} {} sleep 1000000", web[0]))
        .has(&format!("\u{2514} {} ", web[1]))
        .has("python3 -c import os, sys, time")
        .has("(left its process group)");
    env.run(&["restart", "-a", "restarted"]).ok();
    eventually(
        Duration::from_secs(10),
        "the old container's escaped processes to be gone",
        || web.iter().all(|p| !alive(*p)),
    );
    let after = read_pids(&pidfile);
    _guard = Leftovers(after.clone());
    eventually(
        Duration::from_secs(10),
        "the new container's processes to start",
        || read_pids(&pidfile).len() == 5,
    );
    let new = read_pids(&pidfile)[3..].to_vec();
    assert!(new.iter().all(|p| alive(*p)), "{new:?}");
    env.run(&["down"]).ok();
    assert!(new.iter().all(|p| !alive(*p)), "left running after down: {new:?}");
}

#[test]
fn processes_that_left_the_group_die_with_a_platform_killed_with_sigkill() {
    let env = hook_env();
    let (_, pids) = deploy_escapes(&env, "killed");
    let _guard = Leftovers(pids.clone());
    let web = pids[..2].to_vec();
    assert!(web.iter().all(|p| alive(*p)));
    kill(env.platform_pid().unwrap());
    eventually(
        Duration::from_secs(10),
        "escaped processes to die with the platform",
        || web.iter().all(|p| !alive(*p)),
    );
}

#[test]
fn a_one_off_ends_when_its_main_process_ends() {
    let env = hook_env();
    let (_, pids) = deploy_escapes(&env, "oneoff");
    let mut guard = Leftovers(pids);
    let run = run_within(
        &env,
        &[
            "run",
            "-a",
            "oneoff",
            "bash",
            "-c",
            "setsid sleep 1000000 & echo daemon=$!",
        ],
        Duration::from_secs(30),
    )
    .ok();
    let daemon: i32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("daemon="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no daemon pid in:\n{}", run.all()));
    guard.0.push(daemon);
    assert!(!alive(daemon), "the one-off's daemon outlived it");
}

#[test]
fn a_compile_that_leaves_a_daemon_holding_its_output_does_not_hold_the_build() {
    let env = Env::new();
    let app = env.work.path().join("bare");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.txt"), "bare\n").unwrap();
    let pids = env.work.path().join("pids");
    let run = run_within(
        &env,
        &[
            "build",
            app.to_str().unwrap(),
            "-a",
            "bare",
            "--buildpack",
            fixture_buildpack("compile-leaves-daemon").to_str().unwrap(),
            "--env",
            &format!("PIDS_FILE={}", pids.display()),
        ],
        Duration::from_secs(60),
    )
    .ok()
    .has("-----> Compile done");
    let daemon = read_pids(&pids);
    let _guard = Leftovers(daemon.clone());
    assert_eq!(daemon.len(), 1, "{}", run.all());
    assert!(!alive(daemon[0]), "the compile's daemon outlived the build");
}

#[test]
fn the_hook_timeout_holds_whatever_the_hook_leaves_running() {
    let mut env = Env::new();
    env.set("SHIPWAY_HOOK_TIMEOUT", "2s");
    let dir = env.app("escapes");
    // A hook that never ends, whose daemon left the group, ignores SIGTERM and holds the
    // hook's output: only SIGKILL through the shim ends it.
    std::fs::write(
        dir.join("Procfile"),
        "web: bash start.sh\npostdeploy: setsid bash -c 'trap \"\" TERM; echo $$ >>\"$PIDS_DIR/escaped.pid\"; while :; do sleep 1000000; done' & trap '' TERM; sleep 1000000\n",
    )
    .unwrap();
    let run = run_within(
        &env,
        &[
            "deploy",
            dir.to_str().unwrap(),
            "-a",
            "stuck",
            "--env",
            "BIND_HOST=127.0.0.1",
            "--env",
            &procfile_only(),
            "--env",
            &pids_dir(&env),
        ],
        Duration::from_secs(60),
    )
    .code(13)
    .has("hook-error");
    let pids = read_pids(&env.work.path().join("escaped.pid"));
    let _guard = Leftovers(pids.clone());
    assert_eq!(pids.len(), 3, "{pids:?}\n{}", run.all());
    eventually(Duration::from_secs(10), "the hook's daemon to be killed", || {
        !alive(pids[2])
    });
}
