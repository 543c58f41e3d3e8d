//! What verbs print, as people and scripts see it: plain lines when piped or with
//! NO_COLOR, colour and spinners on a pseudo-terminal (`script`), errors on stderr,
//! platform events in `logs`, and one naming convention across every `--json`.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const ESC: char = '\x1b';

/// `shipway ARGS` piped, with NO_COLOR unset (the harness sets it for every other test).
fn piped(env: &Env, args: &[&str]) -> Run {
    Run::from(
        env.command(args)
            .env_remove("NO_COLOR")
            .output_within(COMMAND_LIMIT),
    )
}

/// `shipway ARGS` on a pseudo-terminal, through `script`: what the terminal received
/// (stdout and stderr together, as a person sees them) and the exit status.
fn on_terminal(env: &Env, args: &[&str], no_color: bool) -> Run {
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &quoted.join(" "), "/dev/null"])
        .current_dir(env.work.path())
        .envs(&env.vars)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    Run::from(cmd.output_within(COMMAND_LIMIT))
}

#[track_caller]
fn no_escapes(run: &Run, what: &str) {
    assert!(
        !run.all().contains(ESC),
        "{what}: escape sequences in piped or NO_COLOR output:\n{:?}",
        run.all()
    );
}

#[test]
fn piped_output_is_plain_lines_and_errors_go_to_stderr() {
    let env = Env::new();
    let app = env.app("python");
    let bind = "BIND_HOST=127.0.0.1";
    let ok = piped(
        &env,
        &["deploy", app.to_str().unwrap(), "-a", "plain", "--env", bind],
    )
    .ok();
    no_escapes(&ok, "deploy");
    let ok = ok
        .has("Deployment success")
        .lacks("waiting for")
        .lacks("compile: ");
    assert!(
        ok.stderr.is_empty(),
        "a successful deploy wrote to stderr:\n{}",
        ok.stderr
    );

    // A failed deployment: its errors on stderr, its stream and status line on stdout.
    let bad = env.app("crash-at-boot");
    let bp = procfile_only();
    let args = [
        "deploy",
        bad.to_str().unwrap(),
        "-a",
        "plain",
        "--env",
        bind,
        "--env",
        &bp,
    ];
    let failed = piped(&env, &args).code(11);
    no_escapes(&failed, "failed deploy");
    assert!(
        failed.stderr.lines().all(|l| l.starts_with(" !"))
            && failed.stderr.contains("web-1 exited with code 3"),
        "stderr should hold the ` !` errors:\n{}",
        failed.stderr
    );
    assert!(
        !failed.stdout.lines().any(|l| l.starts_with(" !")),
        "errors on stdout:\n{}",
        failed.stdout
    );
    assert!(
        failed.stdout.contains("<-- Deployment crashed-error"),
        "{}",
        failed.stdout
    );

    for verb in [
        &["ps", "-a", "plain"][..],
        &["apps"],
        &["deployments", "-a", "plain"],
        &["logs", "-a", "plain"],
    ] {
        no_escapes(&piped(&env, verb).ok(), verb[0]);
    }
    // Another verb's error: stderr only.
    let missing = piped(&env, &["logs", "-a", "nosuchapp"]).code(1);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert!(missing.stderr.starts_with(" !     "), "{}", missing.stderr);
    no_escapes(&missing, "an error");
}

#[test]
fn a_terminal_gets_spinners_with_limits_colours_and_step_durations() {
    let mut env = Env::new();
    env.set("SHIPWAY_HOOK_TIMEOUT", "2s");
    let app = env.app("python");
    let bind = "BIND_HOST=127.0.0.1";
    let run = on_terminal(
        &env,
        &["deploy", app.to_str().unwrap(), "-a", "tty", "--env", bind],
        false,
    )
    .ok();
    let text = run.all();
    assert!(
        text.contains("\x1b[32m Deployment success"),
        "no green status:\n{text:?}"
    );
    for step in ["source: ", "detect: ", "compile: "] {
        assert!(text.contains(step), "no duration for {step:?}:\n{text:?}");
    }
    let ps = on_terminal(&env, &["ps", "-a", "tty"], false).ok();
    assert!(ps.all().contains("\x1b[32mrunning"), "{:?}", ps.all());

    // The hook's wait: a spinner with the hook timeout, then the error in red.
    let slow = env.app("slow-postdeploy");
    let bp = procfile_only();
    let args = [
        "deploy",
        slow.to_str().unwrap(),
        "-a",
        "tty",
        "--env",
        bind,
        "--env",
        &bp,
    ];
    let hook = on_terminal(&env, &args, false).code(13);
    let text = hook.all();
    assert!(text.contains("waiting for the postdeploy hook"), "{text:?}");
    assert!(text.contains("(timeout 2s)"), "{text:?}");
    assert!(
        text.contains("\x1b[2K"),
        "the spinner was never redrawn: {text:?}"
    );
    assert!(
        text.contains("\x1b[31m !     the postdeploy hook"),
        "no red error:\n{text:?}"
    );
}

#[test]
fn a_terminal_shows_the_boot_wait_with_its_timeout() {
    let mut env = Env::new();
    env.set("SHIPWAY_BOOT_TIMEOUT", "2s");
    let app = env.app("never-listens");
    let bp = procfile_only();
    let args = ["deploy", app.to_str().unwrap(), "-a", "boot", "--env", &bp];
    let text = on_terminal(&env, &args, false).code(12).all();
    assert!(text.contains("waiting for the app to boot"), "{text:?}");
    assert!(text.contains("(timeout 2s)"), "{text:?}");
}

#[test]
fn no_color_on_a_terminal_sends_no_escape_sequence() {
    let env = Env::new();
    let app = env.app("python");
    let bind = "BIND_HOST=127.0.0.1";
    let run = on_terminal(
        &env,
        &["deploy", app.to_str().unwrap(), "-a", "nocolor", "--env", bind],
        true,
    )
    .ok();
    no_escapes(&run, "deploy under NO_COLOR");
    // Still a terminal: each build step's duration is said, in plain text.
    run.has("compile: ");
    no_escapes(
        &on_terminal(&env, &["ps", "-a", "nocolor"], true).ok(),
        "ps under NO_COLOR",
    );
}

#[test]
fn platform_events_are_in_the_logs_with_their_release() {
    let mut env = Env::new();
    env.set("SHIPWAY_CRASH_BACKOFF", "50ms")
        .set("SHIPWAY_CRASH_LIMIT", "2");
    let app = env.app("crash-loop-worker");
    let bp = procfile_only();
    env.deploy(&app, "events", &["--env", &bp]).ok();
    env.run(&["scale", "-a", "events", "web=2", "worker=1"]).ok();
    // A worker that crashes at once fails the next deployment's boot.
    env.deploy(&app, "events", &["--env", &bp]).code(11);
    env.run(&["scale", "-a", "events", "worker=0"]).ok();
    env.deploy(&app, "events", &["--env", &bp]).ok();
    let expected = [
        "[platform] web-1 started (release v1)",
        "[platform] scaled to web=2 worker=1 (release v1)",
        "[platform] web-2 started (release v1)",
        "[platform] worker-1 crashed: exited with code 1 (release v1)",
        " crashed-error (release v2)",
        "[platform] scaled to worker=0 (release v1)",
        "[platform] web-1 started (release v3)",
        "[platform] web-1 stopped (release v1)",
        "[platform] web-2 stopped (release v1)",
    ];
    let mut log = String::new();
    eventually(Duration::from_secs(20), "every platform event in the log", || {
        log = env.run(&["logs", "-a", "events", "-n", "1000"]).ok().stdout;
        expected.iter().all(|e| log.contains(e))
    });
    let deployed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[platform] deployment ") && l.contains(" success (release v"))
        .collect();
    assert_eq!(deployed.len(), 2, "{log}");

    let only = env
        .run(&["logs", "-a", "events", "-n", "1000", "--filter", "platform"])
        .ok()
        .stdout;
    assert!(
        !only.is_empty() && only.lines().all(|l| l.contains(" [platform] ")),
        "{only}"
    );
    let web1 = env
        .run(&["logs", "-a", "events", "-n", "1000", "--filter", "web-1"])
        .ok()
        .stdout;
    assert!(web1.contains("[platform] web-1 started (release v3)"), "{web1}");
    assert!(!web1.contains("web-2"), "{web1}");
}

/// Every key of a `--json` document follows the units convention of docs/cli.md. A list
/// must hold something: the check of an empty one would pass over nothing.
pub fn check_convention(value: &serde_json::Value, verb: &str) {
    if let Some(items) = value.as_array() {
        assert!(
            !items.is_empty(),
            "{verb} --json gave an empty list: nothing to check"
        );
    }
    check_keys(value, verb);
}

fn check_keys(value: &serde_json::Value, verb: &str) {
    match value {
        serde_json::Value::Array(items) => items.iter().for_each(|v| check_keys(v, verb)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if verb != "env" {
                    for old in [
                        "millis",
                        "date",
                        "bytes",
                        "uptime_secs",
                        "slug_bytes",
                        "last_used",
                        "started",
                        "next_run",
                    ] {
                        assert_ne!(key, old, "{verb}: {key} is not a name of the JSON convention");
                    }
                    // Memory figures keep the names `scalingo stats` gives them.
                    let memory = ["memory_bytes", "memory_limit_bytes", "memory_max_bytes"];
                    assert!(
                        !key.ends_with("_secs")
                            && (!key.ends_with("_bytes") || memory.contains(&key.as_str())),
                        "{verb}: {key}"
                    );
                    if memory.contains(&key.as_str()) {
                        assert!(v.is_u64() || v.is_null(), "{verb}: {key} = {v} is not an integer");
                    }
                    if key.ends_with("_ms") || key.ends_with("_size") {
                        assert!(v.is_u64() || v.is_null(), "{verb}: {key} = {v} is not an integer");
                    }
                    assert!(!key.ends_with("_unix"), "{verb}: {key}: times are RFC 3339");
                    if key.ends_with("_at") {
                        let t = v.as_str().unwrap_or_else(|| panic!("{verb}: {key} = {v}"));
                        let b = t.as_bytes();
                        assert!(
                            t.len() == 24 && b[4] == b'-' && b[10] == b'T' && t.ends_with('Z'),
                            "{verb}: {key} = {t} is not RFC 3339"
                        );
                    }
                }
                check_keys(v, verb);
            }
        }
        _ => {}
    }
}

#[test]
fn json_names_and_units_are_one_convention_across_verbs() {
    let env = Env::new();
    let app = env.app("python");
    // A job, so that cron-tasks lists one (`buildpacks --json` is checked where the cache
    // holds some: buildpack_urls.rs).
    std::fs::write(
        app.join("cron.json"),
        r#"{"jobs": [{"command": "0 4 * * * true"}]}"#,
    )
    .unwrap();
    env.deploy(&app, "shape", &[]).ok();

    let deployments = json(&env.run(&["deployments", "-a", "shape", "--json"]).ok());
    let d = &deployments[0];
    for key in [
        "id",
        "created_at",
        "duration_ms",
        "git_ref",
        "status",
        "image_size",
        "release",
        "source",
    ] {
        assert!(d.get(key).is_some(), "deployments lacks {key}: {d}");
    }
    assert_eq!(d["status"], "success");
    assert!(d["image_size"].as_u64().unwrap() > 0, "{d}");

    let ps = json(&env.run(&["ps", "-a", "shape", "--json"]).ok());
    let row = &ps[0];
    for key in [
        "name",
        "status",
        "command",
        "port",
        "pid",
        "uptime_ms",
        "restarts",
        "release",
        "exit",
        "processes",
        "memory_bytes",
        "memory_limit_bytes",
    ] {
        assert!(row.get(key).is_some(), "ps lacks {key}: {row}");
    }
    let stats = json(&env.run(&["stats", "-a", "shape", "--json"]).ok());
    for key in [
        "name",
        "status",
        "size",
        "cpu_percent",
        "memory_bytes",
        "memory_limit_bytes",
        "memory_max_bytes",
    ] {
        assert!(
            stats["containers"][0].get(key).is_some(),
            "stats lacks {key}: {stats}"
        );
    }

    let apps = json(&env.run(&["apps", "--json"]).ok());
    for key in ["name", "release", "url", "status"] {
        assert!(apps[0].get(key).is_some(), "apps lacks {key}: {apps}");
    }

    let detect = json(&env.run(&["detect", app.to_str().unwrap(), "--json"]).ok());
    let python = detect["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["buildpack"] == "python")
        .unwrap();
    for key in [
        "buildpack",
        "verdict",
        "framework",
        "notes",
        "exit",
        "stderr",
        "duration_ms",
        "winner",
    ] {
        assert!(python.get(key).is_some(), "detect lacks {key}: {python}");
    }

    let env_vars = json(&env.run(&["env", "-a", "shape", "--json"]).ok());
    let cron = json(&env.run(&["cron-tasks", "-a", "shape", "--json"]).ok());
    for (verb, doc) in [
        ("deployments", &deployments),
        ("ps", &ps),
        ("stats", &stats),
        ("apps", &apps),
        ("detect", &detect),
        ("env", &env_vars),
        ("cron-tasks", &cron),
    ] {
        check_convention(doc, verb);
    }
}
