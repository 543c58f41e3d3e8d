//! The everyday verbs on a deployed app: create, env*, apps, ps, scale, restart, crash
//! policy, logs, deployments, rollback, run, destroy, and up restoring releases.

use std::time::Duration;

use crate::harness::*;

/// Crash the first container `ps` lists for `app` with SIGKILL: its pid.
fn kill_first_container(env: &Env, app: &str) -> i64 {
    let rows = json(&env.run(&["ps", "-a", app, "--json"]).ok());
    let pid = rows[0]["pid"].as_i64().unwrap();
    kill(pid);
    pid
}

fn containers_seen(addr: &str, requests: usize) -> std::collections::BTreeSet<String> {
    (0..requests)
        .filter_map(|_| get(addr, "/").ok())
        .filter_map(|(_, b)| b.trim().rsplit("container=").next().map(String::from))
        .collect()
}

#[test]
fn config_vars_are_set_before_the_first_deploy_and_validated() {
    let env = Env::new();
    env.run(&["env-set", "-a", "early", "A=1"])
        .code(1)
        .has("shipway create early");
    env.run(&["create", "early"]).ok();
    env.run(&["create", "early"]).code(1).has("exists already");
    env.run(&["env-set", "-a", "early", &procfile_only(), "GREETING=hello world"])
        .ok()
        .has("shipway restart");
    env.run(&["env-set", "-a", "early", "_BAD=1", "GOOD=1"])
        .code(1)
        .has("_BAD");
    let envfile = env.work.path().join("bad.env");
    std::fs::write(&envfile, "OK=1\nthis is not a pair\n").unwrap();
    env.run(&["env-set", "-a", "early", "--file", envfile.to_str().unwrap()])
        .code(1)
        .has("line 2");
    let vars = json(&env.run(&["env", "-a", "early", "--json"]).ok());
    assert_eq!(vars["GREETING"], "hello world");
    assert!(
        vars.get("GOOD").is_none() && vars.get("OK").is_none(),
        "a failed env-set changed nothing: {vars}"
    );
    env.run(&["env-get", "-a", "early", "GREETING"])
        .ok()
        .has("hello world");
    env.run(&["env-unset", "-a", "early", "GREETING"]).ok();
    env.run(&["env-get", "-a", "early", "GREETING"]).code(1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.home.path().join("apps/early/app.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "config vars are secrets");
    // BUILDPACK_URL set before the first build is used by it.
    let good = env.app_as("python", "early");
    env.deploy(&good, "early", &[])
        .ok()
        .has("Cloning custom buildpack")
        .has("Nothing to compile");
}

#[test]
fn apps_and_ps_describe_what_runs() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "listed", &[]).ok());
    let apps = json(&env.run(&["apps", "--json"]).ok());
    assert_eq!(apps[0]["name"], "listed");
    assert_eq!(apps[0]["status"], "running");
    assert_eq!(apps[0]["url"], format!("http://{addr}"));
    let rows = json(&env.run(&["ps", "-a", "listed", "--json"]).ok());
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["name"], "web-1");
    assert_eq!(rows[0]["status"], "running");
    let pid = rows[0]["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid));
    assert!(rows[0]["port"].as_u64().is_some());
    env.run(&["ps", "-a", "nosuchapp"])
        .code(1)
        .has("shipway create nosuchapp");
}

#[test]
fn scale_balances_round_robin_and_zero_answers_503() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "scaled", &[]).ok());
    env.run(&["scale", "-a", "scaled", "web=2"]).ok();
    let seen = containers_seen(&addr, 40);
    assert!(
        seen.contains("web-1") && seen.contains("web-2"),
        "round-robin reached {seen:?}"
    );
    env.run(&["scale", "-a", "scaled", "web=x"])
        .code(1)
        .has("TYPE:AMOUNT");
    env.run(&["scale", "-a", "scaled", "web=11"])
        .code(1)
        .has("10 containers per type");
    env.run(&["scale", "-a", "scaled", "nope=1"])
        .code(1)
        .has("no process type nope");
    let rows = json(&env.run(&["ps", "-a", "scaled", "--json"]).ok());
    let running = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "running")
        .count();
    assert_eq!(running, 2, "a refused scale changed nothing: {rows}");
    env.run(&["scale", "-a", "scaled", "web:0"]).ok().has("503");
    assert_eq!(get(&addr, "/").unwrap().0, 503);
    env.run(&["scale", "-a", "scaled", "web=1"]).ok();
    assert_eq!(get(&addr, "/").unwrap().0, 200);
}

#[test]
fn a_crash_looping_worker_ends_crashed() {
    let env = crash_looping_worker("loopy");
    eventually(Duration::from_secs(20), "worker-1 to be left crashed", || {
        let rows = json(&env.run(&["ps", "-a", "loopy", "--json"]).ok());
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "worker-1" && r["status"] == "crashed")
    });
    let log = env
        .run(&["logs", "-a", "loopy", "--filter", "worker", "-n", "1000"])
        .ok();
    assert!(
        log.stdout.contains("restarting it in "),
        "growing pauses: {}",
        log.stdout
    );
    assert!(log.stdout.contains("left crashed"), "{}", log.stdout);
    // SHIPWAY_CRASH_LIMIT=3: restarted at once, then after a pause, then left crashed.
    assert!(log.stdout.contains("crashed 3 times in a row"), "{}", log.stdout);
    assert!(
        !log.stdout.contains("[web-1]"),
        "--filter keeps worker lines only"
    );
}

#[test]
fn a_restart_that_times_out_is_reported_as_a_timeout_not_an_exit() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "2s")
        .set("SHIPWAY_CRASH_BACKOFF", "50ms")
        .set("SHIPWAY_CRASH_LIMIT", "2");
    let app = env.app_as("crash-loop-worker", "stalls");
    // Serves until NEVER_LISTEN is set; a restart then reads the new config and stalls.
    std::fs::write(
        app.join("Procfile"),
        "web: test -n \"$NEVER_LISTEN\" && exec sleep 60; exec python3 server.py\n",
    )
    .unwrap();
    env.deploy(&app, "stalls", &["--env", &procfile_only()]).ok();
    env.run(&["env-set", "-a", "stalls", "NEVER_LISTEN=1"]).ok();
    kill_first_container(&env, "stalls");
    let mut crashed = serde_json::Value::Null;
    eventually(Duration::from_secs(20), "web-1 to be left crashed", || {
        let rows = json(&env.run(&["ps", "-a", "stalls", "--json"]).ok());
        match rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "web-1" && r["status"] == "crashed")
        {
            Some(r) => {
                crashed = r.clone();
                true
            }
            None => false,
        }
    });
    let why = crashed["exit"].as_str().unwrap_or_default();
    assert!(
        why.contains("did not accept connections on PORT") && why.contains("within 2s"),
        "ps says why the restart failed: {crashed}"
    );
    let log = env
        .run(&["logs", "-a", "stalls", "--filter", "web-1", "-n", "1000"])
        .ok();
    // The crash itself, then the failed restart with the probe's diagnosis.
    assert!(
        log.stdout.contains("web-1 killed by SIGKILL: restarting it"),
        "{}",
        log.stdout
    );
    assert!(
        log.stdout.contains("did not accept connections on PORT")
            && log.stdout.contains("listens on no TCP port at all"),
        "{}",
        log.stdout
    );
    assert!(log.stdout.contains("crashed 2 times in a row"), "{}", log.stdout);
    assert!(
        !log.stdout.contains("code 255"),
        "no made-up exit: {}",
        log.stdout
    );
}

#[test]
fn a_crashed_web_container_is_restarted_and_served_again() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "phoenix", &[]).ok());
    let pid = kill_first_container(&env, "phoenix");
    eventually(Duration::from_secs(20), "web-1 to be restarted", || {
        let rows = json(&env.run(&["ps", "-a", "phoenix", "--json"]).ok());
        rows[0]["status"] == "running" && rows[0]["restarts"] == 1 && rows[0]["pid"].as_i64() != Some(pid)
    });
    assert_eq!(get(&addr, "/").unwrap().0, 200);
}

#[test]
fn ps_answers_and_a_crash_is_handled_while_a_deployment_of_the_app_runs() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "busy", &[]).ok());
    // The second deployment hangs in its build until it is interrupted.
    let (mut deploy, compile) = start_hanging_deploy(&env, &app, "busy");
    let rows = json(&run_within(&env, &["ps", "-a", "busy", "--json"], Duration::from_secs(10)).ok());
    assert_eq!(rows[0]["status"], "running", "{rows}");
    let pid = kill_first_container(&env, "busy");
    eventually(
        Duration::from_secs(20),
        "web-1 to be restarted during the deploy",
        || {
            let rows = json(&run_within(&env, &["ps", "-a", "busy", "--json"], Duration::from_secs(10)).ok());
            rows[0]["status"] == "running" && rows[0]["restarts"] == 1 && rows[0]["pid"].as_i64() != Some(pid)
        },
    );
    assert_eq!(get(&addr, "/").unwrap().0, 200);
    assert!(
        deploy.try_wait().unwrap().is_none() && compile.iter().all(|p| alive(*p)),
        "the deployment ended before the crash was handled"
    );
    ctrl_c(deploy.id());
    assert_eq!(deploy.wait_within(COMMAND_LIMIT).code(), Some(130));
}

#[test]
fn restart_replaces_containers_with_no_downtime() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "restarted", &[]).ok());
    let before = json(&env.run(&["ps", "-a", "restarted", "--json"]).ok())[0]["pid"].clone();
    env.run(&["env-set", "-a", "restarted", "VERSIONLESS=1"]).ok();
    // Traffic before, during and after the restart: not one request may fail.
    let traffic = Traffic::start(&addr, |b| b.starts_with("python version=1"));
    eventually(Duration::from_secs(10), "traffic to flow", || {
        traffic.served() >= 5
    });
    let at_start = traffic.served();
    env.run(&["restart", "-a", "restarted", "web"]).ok();
    let at_end = traffic.served();
    assert!(at_end > at_start, "no request was answered while the restart ran");
    eventually(Duration::from_secs(10), "traffic to the new container", || {
        traffic.served() >= at_end + 5
    });
    let failures = traffic.stop();
    assert!(
        failures.is_empty(),
        "requests failed during the restart: {failures:#?}"
    );
    let rows = json(&env.run(&["ps", "-a", "restarted", "--json"]).ok());
    let running: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "running")
        .collect();
    assert_eq!(running.len(), 1);
    assert_ne!(running[0]["pid"], before);
    assert_eq!(get(&addr, "/").unwrap().0, 200);
    env.run(&["restart", "-a", "restarted", "worker-9"])
        .code(1)
        .has("no container or type");
}

#[test]
fn rollback_serves_the_previous_release_without_building() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "back", &[]).ok());
    std::fs::write(app.join("VERSION"), "2").unwrap();
    env.deploy(&app, "back", &[]).ok();
    assert_eq!(get(&addr, "/").unwrap().1, "python version=2 container=web-1\n");
    env.run(&["rollback", "-a", "back"])
        .ok()
        .has("release 1")
        .lacks("Python app detected");
    assert_eq!(get(&addr, "/").unwrap().1, "python version=1 container=web-1\n");
    let history = json(&env.run(&["deployments", "-a", "back", "--json"]).ok());
    assert_eq!(history.as_array().unwrap().len(), 3);
    assert!(
        history[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("rollback to release 1"),
        "{history}"
    );
    assert_eq!(history[0]["status"], "success");
    let first = history[2]["id"].as_str().unwrap().to_string();
    env.run(&["deployment-logs", "-a", "back", &first])
        .ok()
        .has("Python app detected");
    env.run(&["deployment-logs", "-a", "back", "nonexistent"])
        .code(1)
        .has("no deployment");
    env.run(&["rollback", "-a", "back", "nonexistent"]).code(1);
}

#[test]
fn run_is_a_one_off_container_that_passes_its_exit_status() {
    let env = Env::new();
    let app = env.app("env-echo");
    env.run(&["run", "-a", "oneoff", "true"])
        .code(1)
        .has("shipway create oneoff");
    env.deploy(&app, "oneoff", &["--env", &procfile_only()]).ok();
    let run = env
        .run(&[
            "run",
            "-a",
            "oneoff",
            "echo \"c=$CONTAINER p=${PORT-none} r=$PROFILE_RAN\"; exit 7",
        ])
        .code(7);
    assert!(run.stdout.contains("c=run-1 p=none r=yes"), "{}", run.all());
}

#[test]
fn deployment_delete_cache_and_destroy() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "doomed", &[]).ok());
    assert!(env.home.path().join("apps/doomed/cache").exists());
    env.run(&["deployment-delete-cache", "-a", "doomed"]).ok();
    assert!(!env.home.path().join("apps/doomed/cache").exists());
    let pids = pids_in(&env.home.path().join("apps/doomed/releases/1/app"));
    // Else "every pid is gone" below would hold of nothing.
    assert!(!pids.is_empty(), "the app's container was not found running");
    env.run(&["destroy", "doomed"]).code(1).has("--force");
    env.run(&["destroy", "doomed", "--force"]).ok();
    assert!(!env.home.path().join("apps/doomed").exists());
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "destroy stops the app's containers"
    );
    assert!(get(&addr, "/").is_err(), "its router is closed");
}

#[test]
fn up_brings_current_releases_back_after_down() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "phoenix", &[]).ok());
    env.run(&["down"]).ok();
    assert!(get(&addr, "/").is_err());
    env.run(&["up", "--detach"]).ok();
    eventually(Duration::from_secs(20), "the release to serve again", || {
        get(&addr, "/").map(|(s, _)| s == 200).unwrap_or(false)
    });
}

#[test]
fn logs_follow_prints_new_lines_until_stopped() {
    use std::io::BufRead;
    let env = Env::new();
    let app = env.app("python");
    env.deploy(&app, "tail", &[]).ok();
    let mut follow = env
        .command(&["logs", "-a", "tail", "-f", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    let stdout = follow.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    env.run(&["restart", "-a", "tail"]).ok();
    eventually(
        Duration::from_secs(20),
        "the new container's output to be followed",
        || {
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("[web-1] python listening"))
        },
    );
    follow.kill().unwrap();
    follow.wait_within(COMMAND_LIMIT);
    joined(reader, "the stdout of `logs -f`");
}
