//! Reliability: a soak of consecutive deploys under load, faults at every step of a
//! rollout, bad environments, and what must stay private.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipway::clock::now_ms;

use crate::harness::*;

/// A deployment record: its release, and its statuses as (status, ms since the epoch).
type Record = (Option<u64>, Vec<(String, u64)>);

/// Every deployment record of an app.
fn history(home: &Path, app: &str) -> Vec<Record> {
    let mut records = Vec::new();
    for e in std::fs::read_dir(home.join("apps").join(app).join("deployments"))
        .unwrap()
        .flatten()
    {
        if e.path().extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let value: toml::Value = toml::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        let release = value
            .get("release")
            .and_then(|r| r.as_integer())
            .map(|r| r as u64);
        let statuses = value["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["status"].as_str().unwrap().to_string(),
                    s["at"].as_integer().unwrap() as u64,
                )
            })
            .collect();
        records.push((release, statuses));
    }
    records
}

#[test]
fn soak_twenty_deploys_under_load_lose_nothing_and_serve_only_current_releases() {
    let env = Env::new();
    let app = env.app("python");
    std::fs::write(app.join("VERSION"), "1").unwrap();
    let addr = url_of(&env.deploy(&app, "soak", &["--env", &procfile_only()]).ok());
    let stop = Arc::new(AtomicBool::new(false));
    // (version served, request start ms, request end ms), or a failure.
    let seen: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for keep_alive in [false, true, false, true] {
        let (stop, seen, failures, addr) = (stop.clone(), seen.clone(), failures.clone(), addr.clone());
        clients.push(std::thread::spawn(move || {
            let mut conn = None;
            while !stop.load(Ordering::SeqCst) {
                let t0 = now_ms();
                let body = if keep_alive {
                    keep_alive_get(&addr, &mut conn)
                } else {
                    match get(&addr, "/") {
                        Ok((200, b)) => Ok(b),
                        Ok((s, b)) => Err(format!("{s} {}", b.trim())),
                        Err(e) => Err(format!("new connection: {e}")),
                    }
                };
                let t1 = now_ms();
                let version = body.and_then(|b| {
                    b.split_whitespace()
                        .find_map(|w| w.strip_prefix("version="))
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or(format!("no version in {b:?}"))
                });
                match version {
                    Ok(v) => seen.lock().unwrap().push((v, t0, t1)),
                    Err(e) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{e} (keep_alive={keep_alive}, at {t0})")),
                }
            }
        }));
    }
    for version in 2..=21u64 {
        std::fs::write(app.join("VERSION"), version.to_string()).unwrap();
        env.deploy(&app, "soak", &[]).ok();
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    // Release n serves VERSION n: it became current after its `starting` status and
    // stopped being current before the next release's `success` status.
    let records = history(env.home.path(), "soak");
    let mut starting = std::collections::BTreeMap::new();
    let mut success = std::collections::BTreeMap::new();
    for (release, statuses) in &records {
        let Some(r) = release else { continue };
        for (s, at) in statuses {
            if s == "starting" {
                starting.insert(*r, *at);
            }
            if s == "success" {
                success.insert(*r, *at);
            }
        }
    }
    assert_eq!(success.len(), 21, "every deploy succeeded");
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 100, "the clients hardly ran: {}", seen.len());
    for (v, t0, t1) in seen.iter() {
        let became_current = starting[v];
        let replaced = success.get(&(v + 1)).copied().unwrap_or(u64::MAX);
        assert!(
            became_current <= *t1 && replaced >= *t0,
            "version {v} answered a request made from {t0} to {t1}, outside its time as current release ({became_current}..{replaced})"
        );
    }
}

/// Wait for a deployment of `app` to reach `status`.
fn wait_status(env: &Env, app: &str, status: &str) {
    eventually(Duration::from_secs(30), status, || {
        std::fs::read_dir(env.home.path().join("apps").join(app).join("deployments"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                    .any(|e| {
                        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                        text.contains(&format!("status = \"{status}\""))
                            && !text.contains("status = \"success\"")
                    })
            })
            .unwrap_or(false)
    });
}

#[test]
fn platform_killed_mid_rollout_leaves_nothing_and_up_serves_the_last_good_release() {
    let env = Env::new();
    let good = env.app_as("python", "good");
    let addr = url_of(&env.deploy(&good, "killed", &["--env", &procfile_only()]).ok());
    let slow = env.app("slow-postdeploy");
    let mut deploy = env
        .command(&["deploy", slow.to_str().unwrap(), "-a", "killed"])
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    wait_status(&env, "killed", "starting");
    let release2 = env.home.path().join("apps/killed/releases/2/app");
    eventually(Duration::from_secs(20), "the hook to run", || {
        pids_in(&release2).len() >= 2
    });
    let mut app_pids = pids_in(&release2);
    app_pids.extend(pids_in(&env.home.path().join("apps/killed/releases/1/app")));
    let platform = env.platform_pid().unwrap();
    kill(platform);
    let _ = deploy.wait_within(COMMAND_LIMIT);
    eventually(Duration::from_secs(10), "no app process to survive", || {
        app_pids.iter().all(|p| !alive(*p))
    });
    env.run(&["up", "--detach"]).ok();
    eventually(Duration::from_secs(20), "the last good release to serve", || {
        get(&addr, "/")
            .map(|(_, b)| b == "python version=1 container=web-1\n")
            .unwrap_or(false)
    });
    let records = history(env.home.path(), "killed");
    let interrupted = records
        .iter()
        .find(|(r, _)| *r == Some(2))
        .expect("the interrupted deployment's record");
    let statuses: Vec<&str> = interrupted.1.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses.last(), Some(&"aborted"), "{statuses:?}");
}

/// Deploy `fixture` after a good release, send the client `sig` (INT: Ctrl-C) once
/// `ready` holds, and check it is aborted with nothing left and the good release still
/// serving.
fn interrupt(sig: &str, fixture: &str, vars: &[&str], ready: &dyn Fn(&Env) -> bool) {
    let env = Env::new();
    let good = env.app_as("python", "good");
    let addr = url_of(&env.deploy(&good, "intr", &["--env", &procfile_only()]).ok());
    let bad = env.app(fixture);
    let mut args = vec!["deploy", bad.to_str().unwrap(), "-a", "intr"];
    for v in vars {
        args.extend(["--env", v]);
    }
    let child = env
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    eventually(Duration::from_secs(30), "the step to interrupt", || ready(&env));
    let new_pids = pids_in(&env.home.path().join("apps/intr/releases/2/app"));
    signal(child.id(), sig);
    let out = child.output_within(COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("aborted"), "{text}");
    eventually(
        Duration::from_secs(10),
        "the new release's processes to stop",
        || new_pids.iter().all(|p| !alive(*p)),
    );
    assert_eq!(get(&addr, "/").unwrap().1, "python version=1 container=web-1\n");
}

#[test]
fn ctrl_c_during_boot_aborts() {
    interrupt("INT", "never-listens", &[], &|env| {
        !pids_in(&env.home.path().join("apps/intr/releases/2/app")).is_empty()
    });
}

#[test]
fn sigterm_during_boot_aborts_like_ctrl_c() {
    interrupt("TERM", "never-listens", &[], &|env| {
        !pids_in(&env.home.path().join("apps/intr/releases/2/app")).is_empty()
    });
}

#[test]
fn sighup_during_boot_aborts_like_ctrl_c() {
    interrupt("HUP", "never-listens", &[], &|env| {
        !pids_in(&env.home.path().join("apps/intr/releases/2/app")).is_empty()
    });
}

#[test]
fn ctrl_c_during_the_hook_aborts() {
    interrupt("INT", "slow-postdeploy", &[], &|env| {
        let log = std::fs::read_dir(env.home.path().join("apps/intr/deployments"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>();
        log.contains("Running postdeploy hook")
            && pids_in(&env.home.path().join("apps/intr/releases/2/app")).len() >= 2
    });
}

/// #21 item 10, as the probe did it: `destroy` while the postdeploy hook sleeps 100 s calls
/// the deployment off, as Ctrl-C would, instead of waiting for the hook; the deployment
/// says it was aborted, never "Deployment success" with the gone app's URL.
#[test]
fn destroy_during_the_hook_calls_the_deployment_off() {
    let env = Env::new();
    let app = env.app_as("python", "doomed-hook");
    std::fs::write(
        app.join("Procfile"),
        "web: python app.py\npostdeploy: echo \"postdeploy: sleeping\"; sleep 100\n",
    )
    .unwrap();
    let (dir, bp) = (app.display().to_string(), procfile_only());
    let mut deploy = Spawned::start(
        &env,
        &[
            "deploy",
            &dir,
            "-a",
            "doomed",
            "--env",
            "BIND_HOST=127.0.0.1",
            "--env",
            &bp,
        ],
    );
    let release = env.home.path().join("apps/doomed/releases/1/app");
    let deployments = env.home.path().join("apps/doomed/deployments");
    eventually(Duration::from_secs(60), "the hook to sleep", || {
        let log = std::fs::read_dir(&deployments)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect::<String>()
            })
            .unwrap_or_default();
        log.contains("postdeploy: sleeping") && pids_in(&release).len() >= 2
    });
    let pids = pids_in(&release);
    // Far below the hook's 100 s: a destroy that waited for it fails here.
    run_within(&env, &["destroy", "doomed", "--force"], Duration::from_secs(30)).ok();
    let out = deploy.finish(Duration::from_secs(10));
    assert_eq!(out.code, 130, "{}", out.all());
    out.has("Deployment aborted: doomed is being destroyed")
        .lacks("Deployment success")
        .lacks("<-- http://");
    assert!(!env.home.path().join("apps/doomed").exists());
    eventually(Duration::from_secs(10), "the app's processes to stop", || {
        pids.iter().all(|p| !alive(*p))
    });
}

#[test]
fn a_router_port_held_by_another_program_is_a_clear_error() {
    let env = Env::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let app = env.app("python");
    env.deploy(&app, "blocked", &["--port", &port])
        .code(1)
        .has(&format!("cannot listen on 127.0.0.1:{port}"))
        .has("Another program holds it");
    // Nothing was built or recorded as deployed.
    assert!(!env.home.path().join("apps/blocked/current").exists());
}

#[test]
fn a_read_only_shipway_home_is_a_clear_error() {
    let mut env = Env::new();
    let ro = env.work.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&ro)
        .spawn()
        .ok()
        .and_then(|c| Guarded(c).wait_or_kill(COMMAND_LIMIT))
        .is_some_and(|s| s.success());
    // Without the right to mount, a folder under /proc is as unwritable.
    let home = if mounted {
        ro.join("home")
    } else {
        Path::new("/proc/self/shipway-home").to_path_buf()
    };
    env.set("SHIPWAY_HOME", home.to_str().unwrap());
    let app = env.app("python");
    let run = env.deploy(&app, "nowhere", &[]);
    if mounted {
        let _ = std::process::Command::new("umount")
            .arg(&ro)
            .status_within(COMMAND_LIMIT);
    }
    run.code(1)
        .has("cannot write shipway's state in")
        .has("Set SHIPWAY_HOME")
        .lacks("panicked");
}

#[test]
fn an_app_flooding_stdout_loses_no_line_and_blocks_nothing() {
    let env = Env::new();
    let app = env.app("flood-stdout");
    let addr = url_of(&env.deploy(&app, "flood", &["--env", &procfile_only()]).ok());
    assert_eq!(get(&addr, "/").unwrap().0, 200);
    let log = env.home.path().join("apps/flood/app.log");
    eventually(Duration::from_secs(30), "every flood line in the log", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("flood line 200000\n")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("] flood line ").count(), 200_000);
}

#[test]
fn the_platform_is_private_to_this_user_and_machine() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let app = env.app("python");
    let secret = "s3cr3t-value-7f9a";
    let run = env
        .deploy(&app, "private", &["--env", &format!("API_TOKEN={secret}")])
        .ok();
    let port: u16 = url_of(&run).rsplit(':').next().unwrap().parse().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.home.path().join("platform.sock")), 0o600);
    assert_eq!(mode(&env.home.path().join("apps")), 0o700);
    assert_eq!(mode(&env.home.path().join("apps/private")), 0o700);
    assert_eq!(mode(&env.home.path().join("apps/private/app.toml")), 0o600);
    // Logs hold what apps print, secrets included.
    assert_eq!(mode(&env.home.path().join("platform.log")), 0o600);
    assert_eq!(mode(&env.home.path().join("apps/private/app.log")), 0o600);
    for log in walkdir(&env.home.path().join("apps/private/deployments")) {
        assert_eq!(mode(&log), 0o600, "{log:?}");
    }
    // The router listens on 127.0.0.1 only.
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex_port = format!(":{port:04X}");
    let listening: Vec<&str> = tcp
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&hex_port))
        })
        .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
        .collect();
    assert!(!listening.is_empty(), "router not found in /proc/net/tcp");
    assert!(
        listening
            .iter()
            .all(|l| l.split_whitespace().nth(1).unwrap().starts_with("0100007F")),
        "{listening:?}"
    );
    // Config vars are in no process's command line (what `ps` shows other users), and in no log.
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmd).contains(secret),
                "secret in the command line of {:?}",
                e.path()
            );
        }
    }
    for e in walkdir(&env.home.path().join("apps/private/deployments")) {
        assert!(
            !std::fs::read_to_string(&e).unwrap_or_default().contains(secret),
            "secret in {e:?}"
        );
    }
    let platform_log = std::fs::read_to_string(env.home.path().join("platform.log")).unwrap_or_default();
    assert!(!platform_log.contains(secret));
    assert!(
        !std::fs::read_to_string(env.home.path().join("apps/private/app.log"))
            .unwrap()
            .contains(secret)
    );
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn down_during_a_deployment_aborts_it_and_stops_promptly() {
    let env = Env::new();
    let app = env.app("python");
    let (deploy, compile) = start_hanging_deploy(&env, &app, "stuck");
    let started = std::time::Instant::now();
    env.run(&["down"]).ok().has("Stopped");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "down waited for the hanging build"
    );
    let out = deploy.output_within(COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        compile.iter().all(|p| !alive(*p)),
        "the build's processes outlived the platform"
    );
}

#[test]
fn output_without_newlines_is_split_into_bounded_lines_in_bounded_memory() {
    let env = Env::new();
    let app = env.app("no-newline");
    env.deploy(&app, "nonl", &["--env", &procfile_only()]).ok();
    let platform = env.platform_pid().unwrap();
    let log = env.home.path().join("apps/nonl/app.log");
    eventually(Duration::from_secs(120), "the whole flood in the log", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("] flood done\n")
    });
    // The peak, not a sample: VmHWM is the most the platform ever held.
    let status = std::fs::read_to_string(format!("/proc/{platform}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        peak_kib < 100 * 1024,
        "the platform's RSS peaked at {peak_kib} KiB"
    );
    // The log was rotated many times (16 MiB each); what is left is whole bounded lines.
    let text = std::fs::read_to_string(&log).unwrap();
    let floods: Vec<&str> = text.lines().filter(|l| l.contains("] xxxx")).collect();
    assert!(!floods.is_empty(), "no line of the flood in app.log");
    for line in floods {
        let x = line.rsplit(' ').next().unwrap();
        assert!(
            x.len() <= 64 * 1024 && x.bytes().all(|b| b == b'x'),
            "a line of {} bytes",
            x.len()
        );
    }
}
