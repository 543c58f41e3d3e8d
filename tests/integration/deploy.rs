//! Deploy and rollout (PLATFORM.md §4): readiness, failure statuses with the previous
//! release still serving, postdeploy, switch with no lost request, graceful stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;

#[test]
fn first_deploy_serves_through_the_router_and_history_is_kept() {
    let env = Env::new();
    let app = env.app("python");
    let run = env
        .deploy(&app, "hello", &[])
        .ok()
        .has("Waiting for your application to boot...");
    let addr = url_of(&run);
    assert_eq!(body(&addr), "python version=1 container=web-1\n");
    let deployments = env.home.path().join("apps/hello/deployments");
    let records: Vec<_> = std::fs::read_dir(&deployments)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .collect();
    assert_eq!(records.len(), 1);
    let text = std::fs::read_to_string(records[0].path()).unwrap();
    for status in ["building", "pushing", "starting", "success"] {
        assert!(
            text.contains(&format!("status = \"{status}\"")),
            "{status} missing in {text}"
        );
    }
    let log = std::fs::read_to_string(records[0].path().with_extension("log")).unwrap();
    assert!(log.contains("Python app detected"), "{log}");
}

#[test]
fn router_answers_404_before_any_successful_deploy() {
    let env = Env::new();
    let app = env.app("crash-at-boot");
    let run = env.deploy(&app, "crashy", &["--env", &procfile_only()]).code(11);
    let port = std::fs::read_to_string(env.home.path().join("apps/crashy/app.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("router_port = ").map(|p| p.trim().to_string()))
        .unwrap_or_else(|| panic!("no router port:\n{}", run.all()));
    let (status, text) = get(&format!("127.0.0.1:{port}"), "/").unwrap();
    assert_eq!(status, 404);
    assert!(text.contains("no release"), "{text}");
}

/// Deploy `fixture` after a good release of `python`: it must fail with `code` and the
/// good release must keep answering.
fn fails_keeping_old(env: &Env, fixture: &str, code: i32, expect: &[&str]) {
    fails_keeping_old_with(env, fixture, &[], code, expect)
}

/// The same, with config vars (`NAME=value`) given to the failing deploy.
fn fails_keeping_old_with(env: &Env, fixture: &str, vars: &[&str], code: i32, expect: &[&str]) {
    let good = env.app_as("python", "good");
    let addr = url_of(&env.deploy(&good, "keeper", &[]).ok());
    let bad = env.app(fixture);
    let bp = procfile_only();
    let mut args = vec!["--env", bp.as_str()];
    for v in vars {
        args.extend(["--env", v]);
    }
    let mut run = env.deploy(&bad, "keeper", &args).code(code);
    for e in expect {
        run = run.has(e);
    }
    assert_eq!(
        body(&addr),
        "python version=1 container=web-1\n",
        "old release must keep serving"
    );
}

#[test]
fn crash_at_boot_is_crashed_error_with_exit_status_and_output() {
    let env = Env::new();
    fails_keeping_old(
        &env,
        "crash-at-boot",
        11,
        &["web-1 exited with code 3", "boot line 25", "crashed-error"],
    );
}

#[test]
fn never_listening_is_timeout_error_with_a_diagnosis() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "2s");
    fails_keeping_old(
        &env,
        "never-listens",
        12,
        &["timeout-error", "listens on no TCP port at all", "within 2s"],
    );
}

#[test]
fn wrong_port_is_named_in_the_timeout() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "2s");
    // A free port below the range the OS hands out for port 0 (32768 and up here), so
    // that no other test's listener can take it between this check and the app's bind.
    let wrong = (20_000 + std::process::id() % 5_000..30_000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p as u16)).is_ok())
        .expect("a free port below 30000") as u16;
    let var = format!("WRONG_PORT={wrong}");
    let expect = format!("but listens on 127.0.0.1:{wrong} instead");
    fails_keeping_old_with(
        &env,
        "wrong-port",
        &[&var],
        12,
        &[&expect, "read the port from the PORT"],
    );
}

#[test]
fn loopback_only_bind_fails_like_the_platform_unless_allowed() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "2s")
        .set("SHIPWAY_LOOPBACK_BIND", "fail");
    let app = env.app("loopback-only");
    let bp = procfile_only();
    env.deploy(&app, "lo", &["--env", &bp])
        .code(12)
        .has("listens on 127.0.0.1:")
        .has("bind 0.0.0.0");
}

#[test]
fn failing_postdeploy_is_hook_error() {
    let env = Env::new();
    fails_keeping_old(
        &env,
        "failing-postdeploy",
        13,
        &[
            "migration failed: table missing",
            "hook-error",
            "exited with code 4",
        ],
    );
}

#[test]
fn postdeploy_runs_once_without_port() {
    let env = Env::new();
    let app = env.app("postdeploy-ok");
    let bp = procfile_only();
    env.deploy(&app, "hooked", &["--env", &bp, "--env", &pids_dir(&env)])
        .ok()
        .has("postdeploy done");
    let ran = std::fs::read_to_string(env.work.path().join("postdeploy.ran")).unwrap();
    assert_eq!(ran.trim(), "PORT=unset");
}

#[test]
fn hook_timeout_is_hook_error() {
    let mut env = Env::new();
    env.set("SHIPWAY_HOOK_TIMEOUT", "1s");
    let app = env.app("slow-postdeploy");
    let bp = procfile_only();
    env.deploy(&app, "slowhook", &["--env", &bp])
        .code(13)
        .has("did not finish within 1s");
}

#[test]
fn build_error_keeps_the_old_release() {
    let env = Env::new();
    let good = env.app_as("python", "good");
    let addr = url_of(&env.deploy(&good, "stays", &[]).ok());
    std::fs::write(good.join("Procfile"), "web python app.py\n").unwrap();
    env.deploy(&good, "stays", &[])
        .code(10)
        .has("Procfile line 1")
        .has("build-error");
    assert_eq!(body(&addr), "python version=1 container=web-1\n");
}

#[test]
fn redeploy_switches_with_no_failed_request() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "zero", &[]).ok());
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for keep_alive in [false, true] {
        let (stop, failures, served, addr) = (stop.clone(), failures.clone(), served.clone(), addr.clone());
        clients.push(std::thread::spawn(move || {
            let mut conn: Option<BufReader<TcpStream>> = None;
            while !stop.load(Ordering::SeqCst) {
                let ok = if keep_alive {
                    keep_alive_get(&addr, &mut conn).is_ok_and(|b| b.starts_with("python"))
                } else {
                    get(&addr, "/")
                        .map(|(s, b)| s == 200 && b.starts_with("python"))
                        .unwrap_or(false)
                };
                if ok {
                    served.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for version in ["2", "3"] {
        std::fs::write(app.join("VERSION"), version).unwrap();
        env.deploy(&app, "zero", &[]).ok();
        assert_eq!(body(&addr), format!("python version={version} container=web-1\n"));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    assert!(served.load(Ordering::SeqCst) > 10, "the clients hardly ran");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "requests failed during the switch"
    );
}

#[test]
fn sigterm_ignoring_container_is_killed_after_the_grace_period() {
    let env = Env::new();
    let bp = procfile_only();
    let stubborn = env.app("ignores-sigterm");
    env.deploy(&stubborn, "stubborn", &["--env", &bp]).ok();
    let old = pids_in(&env.home.path().join("apps/stubborn/releases/1/app"));
    assert!(!old.is_empty(), "no process runs in release 1");
    std::fs::write(stubborn.join("VERSION"), "2").unwrap();
    env.deploy(&stubborn, "stubborn", &[]).ok();
    let log = env.home.path().join("apps/stubborn/app.log");
    eventually(
        Duration::from_secs(10),
        "the old container to report SIGTERM",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("got SIGTERM, ignoring")
        },
    );
    // Grace period 1s: SIGKILL follows, well before this limit.
    eventually(Duration::from_secs(10), "the old container to be killed", || {
        old.iter().all(|p| !alive(*p))
    });
    assert_eq!(
        body(&url_of(&env.deploy(&stubborn, "stubborn", &[]).ok())),
        "ignores-sigterm version=2 container=web-1\n"
    );
}

#[test]
fn grandchildren_do_not_survive_a_redeploy() {
    let env = Env::new();
    let bp = procfile_only();
    let app = env.app("forks-grandchild");
    env.deploy(&app, "forky", &["--env", &bp, "--env", &pids_dir(&env)])
        .ok();
    let pidfile = env.work.path().join("grandchild.pid");
    eventually(Duration::from_secs(10), "the grandchildren to start", || {
        read_pids(&pidfile).len() == 2
    });
    let grandchildren = read_pids(&pidfile);
    assert!(grandchildren.iter().all(|p| alive(*p)));
    std::fs::write(app.join("VERSION"), "2").unwrap();
    env.deploy(&app, "forky", &[]).ok();
    eventually(
        Duration::from_secs(10),
        "the old grandchildren to be gone",
        || grandchildren.iter().all(|p| !alive(*p)),
    );
}

#[test]
fn no_app_process_outlives_a_platform_killed_with_sigkill() {
    let env = Env::new();
    let bp = procfile_only();
    let app = env.app("forks-grandchild");
    env.deploy(&app, "orphan", &["--env", &bp, "--env", &pids_dir(&env)])
        .ok();
    let pidfile = env.work.path().join("grandchild.pid");
    eventually(Duration::from_secs(10), "the grandchildren to start", || {
        read_pids(&pidfile).len() == 2
    });
    let mut app_pids = read_pids(&pidfile);
    app_pids.extend(pids_in(&env.home.path().join("apps/orphan/releases/1/app")));
    let platform = env.platform_pid().unwrap();
    kill(platform);
    eventually(
        Duration::from_secs(10),
        "app processes to die with the platform",
        || app_pids.iter().all(|p| !alive(*p)),
    );
}

#[test]
fn concurrent_deploys_of_one_app_are_queued() {
    let mut env = Env::new();
    // The platform reads its settings when it starts, with the first deploy.
    env.set("SHIPWAY_HOOK_TIMEOUT", "3s");
    let app = env.app("python");
    env.deploy(&app, "queue", &[]).ok();
    let slow = env.app("slow-postdeploy");
    let first = {
        let bp = procfile_only();
        let mut cmd = env.command(&["deploy", slow.to_str().unwrap(), "-a", "queue", "--env", &bp]);
        cmd.stdout(std::process::Stdio::piped()).spawn_guarded()
    };
    // Wait until the first deployment is running, then start the second.
    let deployments = env.home.path().join("apps/queue/deployments");
    eventually(Duration::from_secs(20), "the first deployment to start", || {
        std::fs::read_dir(&deployments)
            .map(|d| d.count() >= 4)
            .unwrap_or(false)
    });
    let second = env.deploy(&app, "queue", &[]);
    let first = first.output_within(COMMAND_LIMIT);
    let first_out = String::from_utf8_lossy(&first.stdout);
    assert!(
        second.all().contains("queued"),
        "second deploy did not say queued:\n{}\nfirst:\n{first_out}",
        second.all()
    );
    assert_eq!(
        first.status.code(),
        Some(13),
        "the slow hook times out: {first_out}"
    );
    second.ok();
}

#[test]
fn tcp_process_type_is_probed_and_routed() {
    let env = Env::new();
    let bp = procfile_only();
    let app = env.app("tcp-echo");
    let run = env.deploy(&app, "echo", &["--env", &bp]).ok();
    let tcp = run
        .stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("<-- tcp://")
                .and_then(|r| r.strip_suffix(" (tcp) -->"))
        })
        .map(String::from)
        .unwrap_or_else(|| panic!("no tcp address in {}", run.all()));
    let mut s = TcpStream::connect(&tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping\n");
}

#[test]
fn down_stops_every_app_process() {
    let env = Env::new();
    let app = env.app("python");
    let addr = url_of(&env.deploy(&app, "downer", &[]).ok());
    assert_eq!(get(&addr, "/").unwrap().0, 200);
    let platform = env.platform_pid().unwrap();
    env.run(&["down"]).ok().has("Stopped");
    assert!(!alive(platform));
    assert!(get(&addr, "/").is_err(), "the router still answers after down");
}

#[test]
fn ctrl_c_aborts_the_deployment_and_stops_what_it_started() {
    let env = Env::new();
    let good = env.app_as("python", "good");
    let addr = url_of(&env.deploy(&good, "abort", &[]).ok());
    let (child, compile_pids) = start_hanging_deploy(&env, &good, "abort");
    ctrl_c(child.id());
    let out = child.output_within(COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("aborted"), "{text}");
    eventually(Duration::from_secs(10), "compile processes to be gone", || {
        compile_pids.iter().all(|p| !alive(*p))
    });
    assert_eq!(
        body(&addr),
        "python version=1 container=web-1\n",
        "the old release keeps serving"
    );
    let history = std::fs::read_dir(env.home.path().join("apps/abort/deployments")).unwrap();
    let aborted = history
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .any(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .contains("status = \"aborted\"")
        });
    assert!(aborted, "the deployment is recorded as aborted");
}

#[test]
fn up_runs_in_the_foreground_with_prefixed_logs_and_stops_on_ctrl_c() {
    let env = Env::new();
    let mut up = env
        .command(&["up"])
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    let stdout = up.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    eventually(Duration::from_secs(10), "the platform to listen", || {
        env.platform_pid().is_some()
    });
    let app = env.app("python");
    let run = env
        .deploy(&app, "fg", &[])
        .ok()
        .lacks("Started the shipway platform");
    let addr = url_of(&run);
    assert_eq!(get(&addr, "/").unwrap().0, 200);
    let app_pids = pids_in(&env.home.path().join("apps/fg/releases/1/app"));
    assert!(!app_pids.is_empty());
    eventually(
        Duration::from_secs(10),
        "the container's output on the terminal",
        || lines.lock().unwrap().iter().any(|l| l.starts_with("fg [web-1] ")),
    );
    ctrl_c(up.id());
    let status = up.wait_within(COMMAND_LIMIT);
    joined(reader, "the stdout of `up`");
    assert!(status.success(), "up exits 0 after a graceful stop");
    assert!(
        app_pids.iter().all(|p| !alive(*p)),
        "app processes stopped with the platform"
    );
}

#[test]
fn deploy_says_when_the_running_platform_has_other_settings() {
    let mut env = Env::new();
    let app = env.app("python");
    env.deploy(&app, "stale", &[])
        .ok()
        .lacks("the running platform keeps");
    env.set("SHIPWAY_BOOT_TIMEOUT", "3s");
    env.deploy(&app, "stale", &[])
        .ok()
        .has("the running platform keeps the settings it started with, boot_timeout = 10s (not 3s)");
}
