//! What shipway shows and reads on the user's side, against hostile input: an app's escape
//! sequences never drive the terminal, the home's files never hang or betray a command,
//! and `down` always stops what this user started.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

/// The probe's bytes (issue 21): OSC 52 sets the clipboard, OSC 0 the window's title,
/// `ESC[2J` clears the screen, a bare CR writes over the line; the red is a colour.
const HOSTILE_PRINTF: &str =
    r"printf '\033]52;c;cHduZWQ=\007\033]0;pwned\007\033[2J\033[31mred\033[0m\rover\n'";
/// How a pipe is shown those bytes: every control character but tab escaped.
const ESCAPED: &str = r"\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\rover";
const RAW: &str = "\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\rover";

/// No byte of `text` would drive a terminal: no control character but tab and newline.
#[track_caller]
fn inert(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n'))
        .collect();
    assert!(
        bad.is_empty(),
        "control characters {bad:?} reached the output:\n{text}"
    );
}

/// `shipway ARGS` with its stdout and stderr on a pseudo-terminal (`script`), colour
/// allowed: what a user at a terminal sees.
fn on_a_terminal(env: &Env, args: &[&str]) -> String {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(env.work.path())
        .envs(&env.vars)
        .env_remove("NO_COLOR")
        .env_remove("SHIPWAY_APP")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output_within(COMMAND_LIMIT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_apps_escape_sequences_are_shown_escaped_in_the_crash_excerpt_logs_and_deployment_logs() {
    let env = Env::new();
    let app = env.work.path().join("osc");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Procfile"), format!("web: {HOSTILE_PRINTF}; exit 1\n")).unwrap();
    // Piped, as the probe ran it: the crash excerpt of the deploy's output.
    let deploy = env.deploy(&app, "osc", &["--env", &procfile_only()]).code(11);
    inert(&deploy.all());
    deploy.has(ESCAPED).has("exited with code 1");
    let logs = env.run(&["logs", "-a", "osc"]).ok();
    inert(&logs.all());
    logs.has(&format!("[web-1] {ESCAPED}"));
    let history = env.run(&["deployment-logs", "-a", "osc"]);
    inert(&history.all());
    history.has(ESCAPED);
    // `--raw`: the bytes as the app wrote them.
    env.run(&["logs", "-a", "osc", "--raw"])
        .ok()
        .has(&format!("[web-1] {RAW}\n"));
    // On a terminal the colour passes (and is reset at the line's end); nothing else does.
    let seen = on_a_terminal(&env, &["logs", "-a", "osc"]);
    assert!(
        seen.contains("\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;pwned\\x07\\x1b[2J\x1b[31mred\x1b[0m\\rover\x1b[0m"),
        "{seen:?}"
    );
    for raw in ["\x1b]", "\x07", "\x1b[2J"] {
        assert!(!seen.contains(raw), "{raw:?} reached the terminal: {seen:?}");
    }
}

fn mkfifo(path: &std::path::Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_fifo_where_the_home_keeps_a_file_is_refused_at_once_never_waited_on() {
    // The probe's case: a FIFO at config.toml hung every command, in the user's own home.
    let env = Env::new();
    let home = env.home.path();
    mkfifo(&home.join("config.toml"));
    let fifo = format!(
        "{}: it is a FIFO, not a regular file",
        home.join("config.toml").display()
    );
    // `down` says so and goes on: it reads no setting from a home that failed its checks.
    run_within(&env, &["down"], Duration::from_secs(10))
        .ok()
        .has(&format!("warning: refusing to read {fifo}"))
        .has("No shipway platform runs");
    for args in [&["apps"][..], &["create", "fifo"], &["up", "--detach"]] {
        run_within(&env, args, Duration::from_secs(10)).code(1).has(&fifo);
    }
    std::fs::remove_file(home.join("config.toml")).unwrap();
    // Where an app keeps its files, and its log.
    env.run(&["create", "fifo"]).ok();
    let app = home.join("apps/fifo");
    std::fs::remove_file(app.join("app.toml")).unwrap();
    mkfifo(&app.join("app.toml"));
    run_within(&env, &["env", "-a", "fifo"], Duration::from_secs(10))
        .code(1)
        .has("app.toml: it is a FIFO");
    std::fs::remove_file(app.join("app.toml")).unwrap();
    env.run(&["create", "fifo"]).ok();
    mkfifo(&app.join("app.log"));
    run_within(&env, &["logs", "-a", "fifo"], Duration::from_secs(10))
        .code(1)
        .has("app.log: it is a FIFO");
    mkfifo(&home.join("platform.log"));
    run_within(&env, &["up", "--detach"], Duration::from_secs(10))
        .code(1)
        .has("platform.log is a FIFO");
}

#[test]
fn a_foreign_home_is_refused_before_anything_in_it_is_opened_or_created() {
    if !root_or_skip(
        "a foreign home is refused",
        "only root can give a folder to another user",
    ) {
        return;
    }
    let env = Env::new();
    let home = env.home.path();
    // Another user's home, holding a FIFO where config.toml goes: refused for its owner
    // at once, and no `apps/` appears in it.
    mkfifo(&home.join("config.toml"));
    std::os::unix::fs::chown(home, Some(65534), Some(65534)).unwrap();
    run_within(&env, &["apps"], Duration::from_secs(10))
        .code(1)
        .has(&format!("{}: it is owned by uid 65534", home.display()))
        .lacks("FIFO");
    assert!(
        !home.join("apps").exists(),
        "apps/ was created in another user's home"
    );
    std::os::unix::fs::chown(home, Some(0), Some(0)).unwrap();
    // config.toml decides what runs as this user: another user's is refused, on the file
    // that was opened.
    std::fs::remove_file(home.join("config.toml")).unwrap();
    std::fs::write(home.join("config.toml"), "boot_timeout = \"5s\"\n").unwrap();
    std::os::unix::fs::chown(home.join("config.toml"), Some(65534), None).unwrap();
    env.run(&["apps"])
        .code(1)
        .has("config.toml: it is owned by uid 65534");
}

#[test]
fn a_home_under_a_folder_anyone_may_write_without_the_sticky_bit_is_refused() {
    let mut env = Env::new();
    let shared = env.work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let home = shared.join("home");
    env.set("SHIPWAY_HOME", home.to_str().unwrap());
    env.run(&["apps"])
        .code(1)
        .has(&format!("refusing to use {}", shared.display()))
        .has("without the sticky bit (mode 777)")
        .has(&format!("chmod +t {}", shared.display()));
    assert!(!home.exists(), "the home was created under {}", shared.display());
    // Sticky, as /tmp is: nobody may rename what is not theirs.
    chmod(&shared, 0o1777);
    env.run(&["apps"]).ok();
    env.run(&["down"]).ok();
}

#[test]
fn down_stops_the_platform_this_user_started_whatever_became_of_the_permissions() {
    let env = Env::new();
    let home = env.home.path();
    for loosened in [home.join("apps"), home.to_path_buf()] {
        env.run(&["up", "--detach"]).ok();
        let pid = env.platform_pid().expect("the platform's pid");
        // The probe's case: a folder of the home became group-writable, then the home.
        chmod(&loosened, 0o770);
        env.run(&["apps"]).code(1).has("writable by group or others");
        run_within(&env, &["down"], Duration::from_secs(30))
            .ok()
            .has(&format!("warning: refusing to use {}", loosened.display()))
            .has("writable by group or others (mode 770)")
            .has("Stopped");
        eventually(Duration::from_secs(10), "the platform to be gone", || !alive(pid));
        chmod(&loosened, 0o700);
    }
}

#[test]
fn down_in_a_loosened_home_signals_no_process_but_a_shipway_of_this_user() {
    // Whoever may write the home may write platform.pid: `down` checks what it names.
    let env = Env::new();
    let home = env.home.path();
    env.run(&["up", "--detach"]).ok();
    let platform = env.platform_pid().expect("the platform's pid");
    let bystander = Guarded(Command::new("sleep").arg("1000").spawn().unwrap());
    // A lock held by another program, its pid file naming the bystander.
    let pid_file = home.join("platform.pid");
    env.run(&["down"]).ok();
    eventually(Duration::from_secs(10), "the platform to be gone", || {
        !alive(platform)
    });
    // flock forks its sleep: both get a group of their own, killed as one, and no pipe of
    // the test's, so that the sleep does not outlive the test.
    let _holder = Guarded(
        Command::new("flock")
            .arg(&pid_file)
            .args(["sleep", "1000"])
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually(Duration::from_secs(10), "flock to hold the lock", || {
        let free = Command::new("flock")
            .arg("-n")
            .arg(&pid_file)
            .arg("true")
            .status_within(COMMAND_LIMIT);
        !free.success()
    });
    std::fs::write(&pid_file, format!("{}\n", bystander.0.id())).unwrap();
    chmod(home, 0o770);
    let run = run_within(&env, &["down"], Duration::from_secs(30)).code(1);
    run.has("is not a shipway platform of yours: nothing was stopped");
    assert!(
        alive(bystander.0.id() as i32),
        "down signalled the process the pid file named"
    );
    chmod(home, 0o700);
}
