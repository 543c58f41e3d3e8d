//! The Scalingo CLI verbs and behaviours of issue #20 that came last: per-app router
//! ports, and the verbs that act on one container or one deployment.

use std::time::Duration;

use crate::harness::*;

/// A port the OS gives and takes back at once: free for the test to ask shipway for.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `deploy` of the env-echo fixture as `app` (fast: the procfile-only buildpack).
fn deploy_echo(env: &Env, app: &str, extra: &[&str]) -> Run {
    let dir = env.app_as("env-echo", app);
    let only = procfile_only();
    let mut args = vec!["--env", only.as_str()];
    args.extend_from_slice(extra);
    env.deploy(&dir, app, &args)
}

#[test]
fn each_app_keeps_its_own_router_port_whatever_port_started_the_platform() {
    let mut env = Env::new();
    let pinned = free_port();
    env.set("SHIPWAY_PORT", &pinned.to_string());
    // The first deploy starts the platform, in an environment with a port setting.
    let first = deploy_echo(&env, "first", &[]).ok();
    assert_eq!(url_of(&first), format!("127.0.0.1:{pinned}"));

    // A later app deployed without a port setting takes a free one: the platform's
    // start setting does not pin it to the first app's port.
    env.vars.remove("SHIPWAY_PORT");
    let second = deploy_echo(&env, "second", &[])
        .ok()
        .lacks("the running platform has port")
        .lacks("keeps the settings it started with");
    let second_url = url_of(&second);
    assert_ne!(second_url, format!("127.0.0.1:{pinned}"));
    assert!(body(&second_url).contains("\"PORT\""), "second app serves");

    // A port setting on a later deploy of an app applies only to a new app: the app keeps
    // its URL, and says so.
    let again = deploy_echo(&env, "second", &["--port", &free_port().to_string()])
        .ok()
        .has("note: second keeps its router port");
    assert_eq!(url_of(&again), second_url);

    // A port another app of this platform holds names that app, not "another program".
    deploy_echo(&env, "third", &["--port", &pinned.to_string()])
        .code(1)
        .has("shipway itself holds it, as the router of app `first`")
        .lacks("Another program holds it");

    // Each app's URL is shown by `apps`, as chosen once.
    env.run(&["apps"])
        .ok()
        .has(&format!("http://127.0.0.1:{pinned}"))
        .has(&format!("http://{second_url}"));

    // A setting the running platform ignores is named, and the port is said to apply.
    env.set("SHIPWAY_PORT", "0");
    env.set("SHIPWAY_GRACE_PERIOD", "2s");
    deploy_echo(&env, "fourth", &[])
        .ok()
        .has("keeps the settings it started with, grace_period = 1s (not 2s)")
        .has("This deploy's port setting applies")
        .lacks("port = ");
}

#[test]
fn one_off_stop_stops_a_detached_one_off_by_name_or_number() {
    let env = Env::new();
    deploy_echo(&env, "oneoffs", &[]).ok();
    let app = |args: &[&str]| {
        let mut all = vec!["-a", "oneoffs"];
        all.extend_from_slice(args);
        env.run(&all)
    };
    app(&[
        "run",
        "-d",
        "trap 'echo told to stop; exit 0' TERM; while true; do sleep 0.1; done",
    ])
    .ok()
    .has("one-off-1");
    app(&["run", "-d", "while true; do sleep 0.1; done"])
        .ok()
        .has("one-off-2");
    eventually(Duration::from_secs(30), "both one-offs to run", || {
        let ps = app(&["ps"]).stdout;
        ps.contains("one-off-1") && ps.contains("one-off-2")
    });
    app(&["one-off-stop", "one-off-1"])
        .ok()
        .has("Container one-off one-off-1 of the app oneoffs is being stopped");
    // A bare number names a one-off, as the Scalingo CLI reads it.
    app(&["one-off-stop", "2"]).ok().has("one-off-2");
    eventually(Duration::from_secs(30), "the one-offs to be gone", || {
        !app(&["ps"]).stdout.contains("one-off-")
    });
    let logs = app(&["logs", "-n", "200"]).ok();
    logs.has("[one-off-1] told to stop")
        .has("[platform] one-off-1 stopped by one-off-stop (release v1)");
    // The formation is left as it was; web-1 is not a one-off; a gone one-off is named.
    app(&["ps"]).ok().has("web-1");
    app(&["one-off-stop", "web-1"])
        .code(1)
        .has("The container 'web-1' does not exist");
    app(&["one-off-stop", "one-off-1"])
        .code(1)
        .has("The container 'one-off-1' does not exist");
}

#[test]
fn send_signal_reaches_each_container_named_or_every_one_of_a_type() {
    let env = Env::new();
    let dir = env.app_as("env-echo", "signals");
    std::fs::write(
        dir.join("Procfile"),
        "web: python3 server.py\nworker: trap 'echo $CONTAINER got USR1' USR1; trap 'echo $CONTAINER got USR2' USR2; echo $CONTAINER traps set; while true; do sleep 0.1; done\n",
    )
    .unwrap();
    env.deploy(&dir, "signals", &["--env", &procfile_only()]).ok();
    let app = |args: &[&str]| {
        let mut all = vec!["-a", "signals"];
        all.extend_from_slice(args);
        env.run(&all)
    };
    app(&["scale", "worker:2"]).ok();
    // Running is not enough: a USR1 that comes before the shell's trap ends the shell (its
    // default action), which a loaded machine made happen.
    eventually(Duration::from_secs(30), "two workers to set their traps", || {
        let logs = app(&["logs", "-n", "500"]).stdout;
        logs.contains("worker-1 traps set") && logs.contains("worker-2 traps set")
    });
    // A type reaches each of its containers.
    app(&["send-signal", "--signal", "SIGUSR1", "worker"])
        .ok()
        .has("Sent signal 'SIGUSR1' to 'worker-1' container.")
        .has("Sent signal 'SIGUSR1' to 'worker-2' container.");
    // `kill` is its alias; a name selects one container; a name that selects none is said.
    app(&["kill", "-s", "usr2", "worker-2", "clock"])
        .ok()
        .has("Sent signal 'SIGUSR2' to 'worker-2' container.")
        .has("'clock' did not match any running container of signals")
        .lacks("worker-1");
    eventually(
        Duration::from_secs(30),
        "the workers to handle the signals",
        || {
            let logs = app(&["logs", "-n", "500"]).stdout;
            logs.contains("worker-1 got USR1")
                && logs.contains("worker-2 got USR1")
                && logs.contains("worker-2 got USR2")
        },
    );
    assert!(!app(&["logs", "-n", "500"]).stdout.contains("worker-1 got USR2"));
    // The workers handled them and run on: nothing crashed.
    let ps = app(&["ps"]).ok();
    assert!(!ps.stdout.contains("crashed"), "{}", ps.all());
    // Only the two signals the platform lets users send; none reached: exit 1.
    app(&["send-signal", "-s", "SIGKILL", "worker"])
        .code(1)
        .has("SIGUSR1 or SIGUSR2 only");
    app(&["send-signal", "-s", "SIGUSR1", "clock"])
        .code(1)
        .has("'clock' did not match");
}

#[test]
fn a_wrong_port_is_said_as_soon_as_seen_while_the_boot_timeout_runs() {
    use std::io::BufRead;
    let mut env = Env::new();
    // Long enough that the note can only come from the early look, never the timeout.
    env.set("SHIPWAY_BOOT_TIMEOUT", "5m");
    // Below the range the OS hands out for port 0, so no other test's socket takes it.
    let wrong = (21_000 + std::process::id() % 5_000..31_000)
        .find(|p| std::net::TcpListener::bind(("0.0.0.0", *p as u16)).is_ok())
        .expect("a free port below 31000") as u16;
    let dir = env.app("wrong-port");
    let var = format!("WRONG_PORT={wrong}");
    let d = dir.display().to_string();
    let mut deploy = env
        .command(&[
            "deploy",
            &d,
            "-a",
            "early",
            "--env",
            &procfile_only(),
            "--env",
            &var,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    let (tx, rx) = crossbeam_channel::unbounded();
    let stdout = deploy.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let note = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no wrong-port note in:\n{}", seen.join("\n")));
        if line.contains("not on its PORT") {
            break line;
        }
        seen.push(line);
    };
    assert!(
        note.contains(&format!("web-1 listens on 0.0.0.0:{wrong}, not on its PORT")),
        "{note}"
    );
    assert!(note.contains("Listen on $PORT, on 0.0.0.0"), "{note}");
    // The deployment is still waiting: the platform's boot timeout is waited out.
    assert!(deploy.try_wait().unwrap().is_none(), "the deploy still runs");
    assert!(!seen.iter().any(|l| l.contains("timeout")), "{seen:?}");
    // Ctrl-C ends the wait; nothing is switched.
    ctrl_c(deploy.id());
    let status = deploy.wait_within(Duration::from_secs(60));
    assert_ne!(status.code(), Some(0));
}

/// The deployments of `app` as `deployments --json` gives them, newest first.
fn deployments(env: &Env, app: &str) -> Vec<serde_json::Value> {
    let run = env.run(&["-a", app, "deployments", "--json"]).ok();
    serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout).unwrap()
}

#[test]
fn a_folder_deploy_records_its_commit_sha_as_git_ref_and_none_outside_git() {
    let env = Env::new();
    let dir = env.app_as("env-echo", "shas");
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "one"]);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    env.deploy(&dir, "shas", &["--env", &procfile_only()]).ok();
    assert_eq!(deployments(&env, "shas")[0]["git_ref"], head.as_str());

    // A build that fails still records the commit it built.
    std::fs::write(dir.join("Procfile"), "web python3 server.py\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "broken Procfile"]);
    let broken = git(&dir, &["rev-parse", "HEAD"]);
    env.deploy(&dir, "shas", &[]).code(10);
    let last = &deployments(&env, "shas")[0];
    assert_eq!(last["status"], "build-error", "{last}");
    assert_eq!(last["git_ref"], broken.as_str());

    // --ref: the SHA of the commit it names, not the name.
    env.deploy(&dir, "shas", &["--ref", "HEAD~1"]).ok();
    assert_eq!(deployments(&env, "shas")[0]["git_ref"], head.as_str());

    // A folder outside git has no commit: no git_ref.
    let plain = env.app_as("env-echo", "plain");
    env.deploy(&plain, "plain", &["--env", &procfile_only()]).ok();
    assert!(deployments(&env, "plain")[0]["git_ref"].is_null());
}

#[test]
fn the_official_buildpack_note_is_said_once_per_app() {
    let mut env = Env::new();
    env.set("SHIPWAY_OFFICIAL_BUILDPACKS", "auto");
    // Nothing listens there: where the host would take the official buildpack, it cannot
    // be had; elsewhere the host is not the stack's Ubuntu. A note either way.
    let closed = free_port();
    env.set(
        "SHIPWAY_OFFICIAL_BUILDPACKS_URL",
        &format!("http://127.0.0.1:{closed}"),
    );
    let dir = env.app("python");
    let note = "not Scalingo's official python buildpack";
    env.deploy(&dir, "noted", &[]).ok().has(note);
    env.deploy(&dir, "noted", &[]).ok().lacks(note).has("python");
    // Another app gets it once too.
    env.deploy(&dir, "other", &[]).ok().has(note);
}

#[test]
fn a_failing_buildpack_url_names_the_next_step() {
    let env = Env::new();
    let dir = env.app("python");
    let fails = format!("BUILDPACK_URL={}", fixture_buildpack("compile-fails").display());
    let next = "BUILDPACK_URL chose this buildpack: `shipway env-unset -a bpurl BUILDPACK_URL` builds with the one detection picks";
    env.deploy(&dir, "bpurl", &["--env", &fails]).code(10).has(next);
    // A buildpack that cannot be had gets the same next step.
    let missing = format!(
        "BUILDPACK_URL={}",
        env.work.path().join("no-such-buildpack").display()
    );
    env.deploy(&dir, "bpurl", &["--env", &missing]).code(10).has(next);
    // Which works: detection builds it.
    env.run(&["-a", "bpurl", "env-unset", "BUILDPACK_URL"]).ok();
    env.deploy(&dir, "bpurl", &[]).ok().lacks("BUILDPACK_URL chose");
    // A failure that is not the buildpack's does not blame it.
    std::fs::write(dir.join("Procfile"), "web python3 app.py\nweb: twice\n").unwrap();
    env.deploy(&dir, "bpurl", &["--env", &procfile_only()])
        .code(10)
        .lacks("BUILDPACK_URL chose");
}

/// `shipway ARGS` in the background, each line of its stdout sent as it comes.
fn spawn_lines(env: &Env, args: &[&str]) -> (Guarded, crossbeam_channel::Receiver<String>) {
    use std::io::BufRead;
    let mut child = env
        .command(args)
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The lines read until one contains `text` (which ends the list), within a minute.
#[track_caller]
fn read_until(rx: &crossbeam_channel::Receiver<String>, text: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let found = line.contains(text);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("no {text:?} in:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn deployment_follow_and_logs_f_show_a_running_deployment_as_it_happens() {
    let env = Env::new();
    deploy_echo(&env, "followed", &[]).ok();
    // A buildpack that says a line, waits for the test's gate, then says another.
    let bp = env.work.path().join("gated");
    std::fs::create_dir_all(bp.join("bin")).unwrap();
    let script = |name: &str, body: &str| {
        let path = bp.join("bin").join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    script("detect", "echo gated");
    script(
        "compile",
        "echo '-----> first half'\ngate=$(cat \"$3/GATE\")\nfor _ in $(seq 1200); do [ -f \"$gate\" ] && break; sleep 0.05; done\necho '-----> second half'",
    );
    script("release", "echo '--- {}'");
    let gate = env.work.path().join("gate");
    let (mut logs, logs_rx) = spawn_lines(&env, &["-a", "followed", "logs", "-f", "-n", "0"]);
    let bp_var = format!("BUILDPACK_URL={}", bp.display());
    let gate_var = format!("GATE={}", gate.display());
    let dir = env.work.path().join("followed");
    let d = dir.display().to_string();
    let mut deploy = env
        .command(&[
            "deploy", &d, "-a", "followed", "--env", &bp_var, "--env", &gate_var,
        ])
        .stdout(std::process::Stdio::null())
        .spawn_guarded();

    // `logs -f` shows the build output as it happens.
    read_until(&logs_rx, "[deployment] -----> first half");
    // `deployment-follow` shows the running deployment from its start, and waits for it.
    let (mut follow, follow_rx) = spawn_lines(&env, &["-a", "followed", "deployment-follow"]);
    let first = read_until(&follow_rx, "[LOG] -----> first half");
    assert!(
        first.iter().any(|l| l == "[STATUS] New status: building"),
        "{first:?}"
    );
    assert!(
        follow.try_wait().unwrap().is_none(),
        "deployment-follow waits for the end"
    );
    std::fs::write(&gate, "").unwrap();
    let rest = read_until(&follow_rx, "[STATUS] New status: starting → success");
    assert!(rest.iter().any(|l| l == "[LOG] -----> second half"), "{rest:?}");
    assert!(follow.wait_within(Duration::from_secs(60)).success());
    assert!(deploy.wait_within(Duration::from_secs(60)).success());
    read_until(&logs_rx, "[deployment] -----> second half");
    assert!(logs.try_wait().unwrap().is_none(), "logs -f goes on");

    // With none running, the last one's output and status, and its exit code.
    let fails = format!("BUILDPACK_URL={}", fixture_buildpack("compile-fails").display());
    env.deploy(&dir, "followed", &["--env", &fails]).code(10);
    env.run(&["-a", "followed", "deployment-follow"])
        .code(10)
        .has("[STATUS] New status: building → build-error")
        .has("[LOG] ");
}

/// `shipway ARGS` in `dir` with `answer` on its standard input.
fn run_answering(env: &Env, dir: &std::path::Path, args: &[&str], answer: &str) -> Run {
    use std::io::Write;
    let mut child = env
        .command(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_guarded();
    // A refusal made before the question (a bad new name) may exit before the answer is
    // written: the pipe is then closed, and the output says what happened.
    let _ = child.stdin.take().unwrap().write_all(answer.as_bytes());
    Run::from(child.output_within(Duration::from_secs(120)))
}

#[test]
fn rename_moves_the_remote_the_router_port_and_the_addons() {
    use crate::addons::{env_get, redis, DestroyApps};
    let env = Env::new();
    let _destroy = DestroyApps(&env, &["before", "after", "last"]);
    let dir = env.app_as("env-echo", "renamed");
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "one"]);
    env.run_in(&dir, &["-a", "before", "git-setup"]).ok();
    let url = url_of(&deploy_echo(&env, "before", &[]).ok());
    env.run(&["addons-add", "redis", "redis-starter-256", "-a", "before"])
        .ok();
    let redis_url = env_get(&env, "before", "SCALINGO_REDIS_URL");
    assert!(redis(&redis_url, &["SET", "kept", "yes"], "+OK").contains("+OK"));

    // Confirmed by typing the app's name, as on Scalingo.
    run_answering(
        &env,
        &dir,
        &["-a", "before", "rename", "--new-name", "after"],
        "wrong\n",
    )
    .code(1)
    .has("'wrong' is not 'before': nothing was renamed");
    run_answering(
        &env,
        &dir,
        &["-a", "before", "rename", "--new-name", "x_bad"],
        "before\n",
    )
    .code(1)
    .has("invalid");
    run_answering(
        &env,
        &dir,
        &["-a", "before", "rename", "--new-name", "after"],
        "before\n",
    )
    .ok()
    .has("App before has been renamed to after")
    .has(&format!("its URL stays http://{url}"))
    .has("the git remote `shipway` of this work tree now points at it");
    env.run(&["apps"]).ok().has("after").lacks("before");
    env.run(&["-a", "before", "ps"]).code(1).has("does not exist");

    // The same URL serves the app under its new name; the addon kept its data and URL.
    eventually(Duration::from_secs(60), "the renamed app to serve", || {
        get(&url, "/").is_ok_and(|(_, body)| body.contains("\"APP\": \"after\""))
    });
    assert_eq!(env_get(&env, "after", "SCALINGO_REDIS_URL"), redis_url);
    eventually(Duration::from_secs(60), "the addon to serve again", || {
        std::panic::catch_unwind(|| redis(&redis_url, &["GET", "kept"], "yes"))
            .is_ok_and(|got| got.contains("yes"))
    });

    // The remote deploys the app under its new name.
    std::fs::write(dir.join("VERSION"), "2\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "two"]);
    let remote = git(&dir, &["remote", "get-url", "shipway"]);
    assert!(remote.ends_with("apps/after/repo.git"), "{remote}");
    let push = std::process::Command::new("git")
        .args(["push", "-q", "shipway", "HEAD:main"])
        .current_dir(&dir)
        .envs(&env.vars)
        .stdin(std::process::Stdio::null())
        .output_within(Duration::from_secs(120));
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    assert_eq!(deployments(&env, "after")[0]["status"], "success");

    // Without a platform, nothing runs: the folder, the hook and the remote move alone.
    env.run(&["down"]).ok();
    run_answering(
        &env,
        &dir,
        &["-a", "after", "rename", "--new-name", "last"],
        "after\n",
    )
    .ok()
    .has("App after has been renamed to last");
    let hook = std::fs::read_to_string(env.home.path().join("apps/last/repo.git/hooks/pre-receive")).unwrap();
    assert!(hook.contains("--app 'last' --remote 'shipway'"), "{hook}");
    env.run(&["-a", "last", "deployments"]).ok().has("success");
}

#[test]
fn a_router_port_another_shipway_platform_holds_is_named_with_its_home() {
    let other = Env::new();
    let port = free_port();
    deploy_echo(&other, "elsewhere", &["--port", &port.to_string()]).ok();
    let env = Env::new();
    deploy_echo(&env, "here", &["--port", &port.to_string()])
        .code(1)
        .has(&format!(
            "shipway itself holds it: the platform of SHIPWAY_HOME={} (pid {})",
            other.home.path().display(),
            other.platform_pid().unwrap()
        ))
        .lacks("Another program holds it");
}
