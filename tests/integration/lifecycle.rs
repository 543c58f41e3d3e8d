//! Who may get in, the platform's life (one per home, found through its lock, stopped
//! by one SIGTERM, leaving nothing behind) and the client's signals.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// The uid of `nobody`, the other user of these tests.
const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

/// The statuses of each deployment record of `app`.
fn statuses(env: &Env, app: &str) -> Vec<Vec<String>> {
    let dir = env.home.path().join("apps").join(app).join("deployments");
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let value: toml::Value = toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            value["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["status"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn a_home_or_app_folder_others_may_write_is_refused_with_the_fix() {
    let env = Env::new();
    let home = env.home.path();
    chmod(home, 0o770);
    env.run(&["apps"])
        .code(1)
        .has("writable by group or others (mode 770)")
        .has(&format!("chmod go-w {}", home.display()));
    chmod(home, 0o700);
    env.run(&["create", "shared"]).ok();
    chmod(&home.join("apps/shared/releases"), 0o777);
    env.run(&["env", "-a", "shared"])
        .code(1)
        .has("apps/shared/releases: it is writable by group or others");
    let app = env.app("python");
    env.deploy(&app, "shared", &[])
        .code(1)
        .has("apps/shared/releases: it is writable by group or others");
    chmod(&home.join("apps/shared/releases"), 0o700);
    env.run(&["env", "-a", "shared"]).ok();
}

#[test]
fn a_home_or_socket_owned_by_another_user_is_refused() {
    if !root_or_skip(
        "a_home_or_socket_owned_by_another_user_is_refused",
        "only root can give a folder to another user",
    ) {
        return;
    }
    let env = Env::new();
    let home = env.home.path();
    chown(home, NOBODY);
    env.run(&["apps"])
        .code(1)
        .has(&format!("{}: it is owned by uid {NOBODY}", home.display()))
        .has("SHIPWAY_HOME");
    chown(home, 0);
    // Someone else's listener where the platform's socket should be.
    let socket = home.join("platform.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    chown(&socket, NOBODY);
    let app = env.app("python");
    env.deploy(&app, "victim", &["--env", "SECRET=do-not-send"])
        .code(1)
        .has("platform.sock: it is owned by uid 65534");
    std::fs::remove_file(&socket).unwrap();
}

#[test]
fn the_platform_answers_only_its_own_user() {
    if !root_or_skip(
        "the_platform_answers_only_its_own_user",
        "only root can connect as another user",
    ) {
        return;
    }
    let env = Env::new();
    env.run(&["up", "--detach"]).ok();
    eventually(Duration::from_secs(20), "the socket", || {
        env.home.path().join("platform.sock").exists()
    });
    // Loosen the way in as a careless user could; the platform must still say no.
    chmod(env.home.path(), 0o711);
    chmod(&env.home.path().join("platform.sock"), 0o666);
    let script = "import socket,sys\n\
s=socket.socket(socket.AF_UNIX)\n\
s.connect(sys.argv[1])\n\
try: s.sendall(b'{\"request\":\"status\"}\\n')\n\
except OSError: pass\n\
print(s.makefile().readline())";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(env.home.path().join("platform.sock"))
        .uid(NOBODY)
        .gid(NOBODY)
        .output_within(COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("answers only its own user"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("settings"), "{text}");
    chmod(env.home.path(), 0o700);
}

#[test]
fn a_caller_descriptor_is_not_kept_by_the_platform_it_starts() {
    let env = Env::new();
    let app = env.app("python");
    let line = format!(
        "'{}' deploy '{}' -a fds --env BIND_HOST=127.0.0.1 3>&1 | cat",
        BIN,
        app.display()
    );
    let mut sh = Command::new("bash");
    sh.args(["-c", &line])
        .current_dir(env.work.path())
        .envs(&env.vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut sh = sh.spawn_guarded();
    let mut done = None;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(Duration::from_secs(60), "`deploy 3>&1 | cat` to return", || {
            done = sh.try_wait().unwrap();
            done.is_some()
        })
    }));
    if waited.is_err() {
        let _ = sh.kill();
        let _ = sh.wait_within(COMMAND_LIMIT);
        panic!("`shipway deploy ... 3>&1 | cat` did not return: the platform holds the pipe");
    }
    assert!(done.unwrap().success());
}

#[test]
fn a_deleted_socket_leaves_the_platform_reachable_and_stoppable() {
    let env = Env::new();
    env.run(&["up", "--detach"]).ok();
    let socket = env.home.path().join("platform.sock");
    eventually(Duration::from_secs(20), "the socket", || socket.exists());
    let pid = env.platform_pid().unwrap();
    // A second platform is refused, naming the one that runs.
    env.run(&["up"]).code(1).has(&format!("pid {pid}"));
    std::fs::remove_file(&socket).unwrap();
    // The next deploy reaches the same platform (none other starts).
    let app = env.app("python");
    let run = env
        .deploy(&app, "after-rm", &[])
        .ok()
        .lacks("Started the shipway platform");
    assert_eq!(get(&url_of(&run), "/").unwrap().0, 200);
    assert_eq!(env.platform_pid(), Some(pid));
    // `down` finds it through its lock, even with the socket gone again.
    std::fs::remove_file(&socket).unwrap();
    run_within(&env, &["down"], Duration::from_secs(60))
        .ok()
        .has("Stopped");
    assert!(!alive(pid));
}

#[test]
fn the_platform_stops_at_the_first_sigterm_even_without_its_socket() {
    let env = Env::new();
    env.run(&["up", "--detach"]).ok();
    let socket = env.home.path().join("platform.sock");
    eventually(Duration::from_secs(20), "the socket", || socket.exists());
    let pid = env.platform_pid().unwrap();
    std::fs::remove_file(&socket).unwrap();
    signal(pid, "TERM");
    eventually(Duration::from_secs(30), "the platform to stop", || !alive(pid));
}

#[test]
fn two_first_deploys_of_one_new_app_at_once_both_succeed() {
    let env = Env::new();
    env.run(&["up", "--detach"]).ok();
    let a = env.app_as("python", "one");
    let b = env.app_as("python", "two");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let first = s.spawn(|| env.deploy(&a, "new1", &["--env", "A=1"]));
        let second = s.spawn(|| env.deploy(&b, "new1", &["--env", "B=2"]));
        vec![first.join().unwrap(), second.join().unwrap()]
    });
    for run in runs {
        run.ok();
    }
    // Neither first deploy's config vars were lost to the other's creation of the app.
    env.run(&["env", "-a", "new1"]).ok().has("A=1").has("B=2");
}

#[test]
fn the_platform_sweeps_what_an_interrupted_build_left() {
    let env = Env::new();
    let app = env.app("python");
    let (deploy, compile_pids) = start_hanging_deploy(&env, &app, "swept");
    let platform = env.platform_pid().unwrap();
    kill(platform);
    let _ = deploy.output_within(COMMAND_LIMIT);
    // The client sees the socket close while the dying platform may still be closing its
    // other files, its locks among them: until it is gone, `up` would find them held.
    // And the compile's shim kills its tree only once it sees the platform gone: until
    // then the compile may still write into the scratch folder that `up` sweeps.
    eventually(
        Duration::from_secs(10),
        "the killed platform and its compile to be gone",
        || !alive(platform) && compile_pids.iter().all(|p| !alive(*p)),
    );
    let releases = env.home.path().join("apps/swept/releases");
    let left: Vec<String> = std::fs::read_dir(&releases)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().any(|n| n.starts_with(".build-")), "{left:?}");
    assert!(left.iter().any(|n| n == "1"), "{left:?}");
    // What a write interrupted by a full disk or a kill leaves (a writer long gone).
    let tmp_app = env.home.path().join("apps/swept/.app.toml.999999999-0.tmp");
    let tmp_record = env
        .home
        .path()
        .join("apps/swept/deployments/.x.toml.999999999.tmp");
    std::fs::write(&tmp_app, "").unwrap();
    std::fs::write(&tmp_record, "").unwrap();
    // A finished build (its release.toml written) stays.
    std::fs::create_dir_all(releases.join("7/app")).unwrap();
    std::fs::write(releases.join("7/release.toml"), "number = 7\n").unwrap();
    env.run(&["up", "--detach"]).ok();
    eventually(Duration::from_secs(30), "the debris to go", || {
        std::fs::read_dir(&releases)
            .unwrap()
            .flatten()
            .all(|e| e.file_name() == "7")
            && !tmp_app.exists()
            && !tmp_record.exists()
    });
    assert!(releases.join("7/release.toml").exists());
}

/// Start a deploy whose stdout goes to a file, to read it while it runs.
fn deploy_to_file(env: &Env, dir: &Path, app: &str, out: &Path) -> Guarded {
    let file = std::fs::File::create(out).unwrap();
    env.command(&["deploy", dir.to_str().unwrap(), "-a", app])
        .stdout(file)
        .stderr(Stdio::null())
        .spawn_guarded()
}

#[test]
fn sigterm_ends_a_deploy_queued_behind_another_and_records_it_aborted() {
    let env = Env::new();
    let app = env.app("python");
    let (mut first, _) = start_hanging_deploy(&env, &app, "queue");
    let out = env.work.path().join("second.out");
    let mut second = deploy_to_file(&env, &app, "queue", &out);
    eventually(Duration::from_secs(30), "the second deploy to queue", || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("queued")
    });
    signal(second.id(), "TERM");
    let mut status = None;
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(Duration::from_secs(20), "the queued deploy to end", || {
            status = second.try_wait().unwrap();
            status.is_some()
        })
    }));
    if ended.is_err() {
        let _ = second.kill();
        let _ = second.wait_within(COMMAND_LIMIT);
    }
    let _ = first.kill();
    let _ = first.wait_within(COMMAND_LIMIT);
    assert!(ended.is_ok(), "SIGTERM did not end a queued deploy");
    assert_eq!(
        status.unwrap().code(),
        Some(130),
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );
    let records = statuses(&env, "queue");
    assert!(
        records
            .iter()
            .any(|s| s.last().map(String::as_str) == Some("aborted")),
        "{records:?}"
    );
}

#[test]
fn timeout_ends_a_deploy_waiting_on_a_boot_with_130() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "10m");
    let app = env.app("never-listens");
    let mut cmd = Command::new("timeout");
    cmd.args(["--preserve-status", "-s", "TERM", "8", BIN, "deploy"])
        .arg(&app)
        .args(["-a", "slowboot", "--env", &procfile_only()])
        .current_dir(env.work.path())
        .envs(&env.vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn_guarded();
    let mut status = None;
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(Duration::from_secs(60), "timeout(1) to end the deploy", || {
            status = child.try_wait().unwrap();
            status.is_some()
        })
    }));
    if ended.is_err() {
        let _ = child.kill();
        let _ = child.wait_within(COMMAND_LIMIT);
        panic!("the deploy outlived timeout(1)'s SIGTERM");
    }
    assert_eq!(status.unwrap().code(), Some(130));
    eventually(Duration::from_secs(20), "the record to say aborted", || {
        statuses(&env, "slowboot")
            .iter()
            .any(|s| s.last().map(String::as_str) == Some("aborted"))
    });
}
