//! cron.json, the scheduler: checked at every deploy, listed by `cron-tasks`, a job run
//! now by `cron-run` (its output in the logs, its exit status recorded), and no run
//! outliving the platform.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(30);

/// The `cron` fixture deployed as `app`, with GREETING and MARKER config vars.
fn deployed(env: &Env, app: &str) -> std::path::PathBuf {
    let dir = env.app_as("cron", app);
    let marker = format!("MARKER={}", marker(env, app));
    env.deploy(
        &dir,
        app,
        &[
            "--env",
            &procfile_only(),
            "--env",
            "GREETING=hi",
            "--env",
            &marker,
        ],
    )
    .ok()
    .has("Scheduler: 3 job(s) from cron.json, times in UTC")
    .has("*/10 * * * *  echo");
    dir
}

/// What the lingering job names its process after: unique to this test's home.
fn marker(env: &Env, app: &str) -> String {
    let home = env
        .home
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    format!("{app}-{home}")
}

/// The live processes whose command line starts with `linger-<marker>`.
fn lingering(marker: &str) -> Vec<i32> {
    let want = format!("linger-{marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.starts_with(want.as_bytes()) && alive(*pid)
        })
        .collect()
}

/// Kills what a failed test left of the lingering job.
struct Strays(String);

impl Drop for Strays {
    fn drop(&mut self) {
        let pids = lingering(&self.0);
        kill_strays(&pids, &[&format!("linger-{}", self.0)]);
    }
}

fn write_cron(dir: &Path, text: &str) {
    std::fs::write(dir.join("cron.json"), text).unwrap();
}

/// An RFC 3339 time of `--json` (`2026-12-04T03:00:00.000Z`) in Unix seconds.
fn unix(rfc3339: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| rfc3339[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

#[test]
fn an_invalid_cron_json_fails_the_deploy_and_names_the_job() {
    let env = Env::new();
    let dir = deployed(&env, "cronbad");
    write_cron(
        &dir,
        r#"{"jobs": [
            {"command": "0 4 * * * bin/fine"},
            {"command": "*/5 * * * * rails orders:check"},
            {"command": "0 7 * * * bin/report", "size": "4XL"}
        ]}"#,
    );
    let run = env
        .deploy(&dir, "cronbad", &[])
        .code(10)
        .has("cron.json is invalid, and the platform fails a deployment that carries it")
        .has("job 2 (\"*/5 * * * * rails orders:check\"): it runs 5 minute(s) apart (at 00:00 and 00:05): the platform's smallest interval is 10 minutes")
        .has("job 3 (\"0 7 * * * bin/report\"): \"size\": \"4XL\" is not a container size of the platform (the sizes are S, M, L, XL, 2XL, 3XL)")
        .lacks("job 1")
        .lacks("Nothing to compile");
    assert!(run.stdout.contains("Deployment build-error"), "{}", run.all());
    // The release that served keeps its jobs.
    let tasks = json(&env.run(&["cron-tasks", "-a", "cronbad", "--json"]).ok());
    assert_eq!(tasks.as_array().unwrap().len(), 3, "{tasks}");

    write_cron(&dir, "{\"jobs\": [{\"command\": \"0 4 * * *\"}");
    env.deploy(&dir, "cronbad", &[])
        .code(10)
        .has("it is not valid JSON (line 1");
    let six: Vec<String> = (0..6)
        .map(|i| format!("{{\"command\": \"{i} 4 * * * bin/job{i}\"}}"))
        .collect();
    write_cron(&dir, &format!("{{\"jobs\": [{}]}}", six.join(",")));
    env.deploy(&dir, "cronbad", &[])
        .code(10)
        .has("it has 6 jobs: the platform schedules 5 at most per app");

    // Without cron.json, a deploy schedules nothing.
    std::fs::remove_file(dir.join("cron.json")).unwrap();
    env.deploy(&dir, "cronbad", &[]).ok().lacks("Scheduler:");
    env.run(&["cron-tasks", "-a", "cronbad"])
        .ok()
        .has("cronbad has no scheduled job");
}

#[test]
fn cron_tasks_lists_the_jobs_of_the_current_release() {
    let env = Env::new();
    deployed(&env, "crontab");
    let tasks = json(&env.run(&["cron-tasks", "-a", "crontab", "--json"]).ok());
    let rows = tasks.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{tasks}");
    assert_eq!(rows[0]["job"], 1);
    assert_eq!(rows[0]["schedule"], "*/10 * * * *");
    assert_eq!(rows[0]["size"], "M");
    assert_eq!(rows[1]["size"], "2XL");
    assert_eq!(
        rows[1]["command"],
        "echo \"failing on purpose as $CONTAINER_SIZE $CONTAINER_MEMORY\" >&2; exit 3"
    );
    assert_eq!(rows[2]["schedule"], "@hourly");
    assert!(rows[0]["last_run"].is_null());
    // The next run of */10 is the next minute that is a multiple of 10, after now.
    let now = shipway::clock::now_secs() as i64;
    let next = unix(rows[0]["next_run_at"].as_str().unwrap());
    assert!(
        next > now - 5 && next <= now + 600 && next % 600 == 0,
        "{next} vs {now}"
    );
    let next = rows[1]["next_run_at"].as_str().unwrap();
    assert!(next.ends_with("T03:00:00.000Z"), "{next}");

    env.run(&["cron-tasks", "-a", "crontab"])
        .ok()
        .has("JOB  SCHEDULE")
        .has("2XL")
        .has("last run: never run");
    env.run(&["down"]).ok();
    env.run(&["cron-tasks", "-a", "crontab"])
        .ok()
        .has("No shipway platform runs: no job runs");
    let tasks = json(&env.run(&["cron-tasks", "-a", "crontab", "--json"]).ok());
    assert!(
        tasks[0]["next_run_at"].is_null(),
        "nothing runs without a platform: {tasks}"
    );
}

#[test]
fn a_job_run_on_demand_is_logged_and_its_exit_status_recorded() {
    let env = Env::new();
    deployed(&env, "cronrun");
    env.run(&["cron-run", "-a", "cronrun", "1"])
        .ok()
        .has("Starting job 1 (cron-run) of release 1, size M")
        .has("report from cron-1 size=M memory=536870912 greeting=hi profile=yes port=unset")
        .has("cron-1 exited with code 0");
    let logs = env.run(&["logs", "-a", "cronrun"]).ok();
    assert!(
        logs.stdout
            .lines()
            .any(|l| l.contains(" [cron-1] report from cron-1 size=M")),
        "{}",
        logs.all()
    );
    env.run(&["logs", "-a", "cronrun", "--filter", "cron-1"])
        .ok()
        .has("[cron-1] cron-1 exited with code 0")
        .lacks("[web-1]");

    // A failing job: its status is passed through, and recorded; a job is found by its
    // command too.
    let second = "echo \"failing on purpose as $CONTAINER_SIZE $CONTAINER_MEMORY\" >&2; exit 3";
    env.run(&["cron-run", "-a", "cronrun", second])
        .code(3)
        .has("failing on purpose as 2XL 4294967296")
        .has("size 2XL")
        .has("cron-2 exited with code 3");
    let tasks = json(&env.run(&["cron-tasks", "-a", "cronrun", "--json"]).ok());
    let (first, second) = (&tasks[0]["last_run"], &tasks[1]["last_run"]);
    assert_eq!(first["code"], 0, "{tasks}");
    assert_eq!(first["exit"], "exited with code 0");
    assert_eq!(first["trigger"], "cron-run");
    assert!(first["duration_ms"].is_u64());
    assert_eq!(second["code"], 3, "{tasks}");
    assert_eq!(second["exit"], "exited with code 3");
    assert!(tasks[2]["last_run"].is_null());
    env.run(&["cron-tasks", "-a", "cronrun"])
        .ok()
        .has("(cron-run): exited with code 3 after");

    env.run(&["cron-run", "-a", "cronrun", "9"])
        .code(1)
        .has("cronrun has no job \"9\": give its number (1 to 3) or its command");
    env.run(&["cron-run", "-a", "nosuch", "1"]).code(1).has("nosuch");
}

#[test]
fn a_running_job_does_not_outlive_the_platform() {
    let env = Env::new();
    deployed(&env, "cronlong");
    let marker = marker(&env, "cronlong");
    let _strays = Strays(marker.clone());
    let client = env
        .command(&["cron-run", "-a", "cronlong", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    eventually(LIMIT, "the lingering job to start", || {
        !lingering(&marker).is_empty()
    });
    let tasks = json(&env.run(&["cron-tasks", "-a", "cronlong", "--json"]).ok());
    assert!(tasks[2]["last_run"]["exit"].is_null(), "running: {tasks}");
    env.run(&["down"]).ok();
    assert!(lingering(&marker).is_empty(), "the job outlived `down`");
    let out = client.output_within(COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "SIGTERM: 128 + 15\n{text}");
    assert!(text.contains("cron-3 killed by SIGTERM"), "{text}");
    let tasks = json(&env.run(&["cron-tasks", "-a", "cronlong", "--json"]).ok());
    assert_eq!(tasks[2]["last_run"]["exit"], "killed by SIGTERM", "{tasks}");
}

#[test]
fn a_running_job_dies_with_a_killed_platform() {
    let env = Env::new();
    deployed(&env, "cronkill");
    let marker = marker(&env, "cronkill");
    let _strays = Strays(marker.clone());
    let mut client = env
        .command(&["cron-run", "-a", "cronkill", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    eventually(LIMIT, "the lingering job to start", || {
        !lingering(&marker).is_empty()
    });
    kill(env.platform_pid().unwrap());
    eventually(LIMIT, "the watchdog to kill the job", || {
        lingering(&marker).is_empty()
    });
    let _ = client.wait_within(COMMAND_LIMIT);
}

#[test]
fn a_job_runs_on_its_schedule_while_the_platform_runs() {
    // The platform's smallest interval is 10 minutes: lowered so that a job runs every
    // minute (the deploy says the platform would refuse it).
    let mut env = Env::new();
    env.set("SHIPWAY_CRON_MIN_INTERVAL", "1m");
    let dir = env.app_as("cron", "cronclock");
    write_cron(
        &dir,
        r#"{"jobs": [{"command": "* * * * * echo \"tick from $CONTAINER\""}]}"#,
    );
    env.deploy(&dir, "cronclock", &["--env", &procfile_only()])
        .ok()
        .has("note: cron.json job 1: it runs 1 minute(s) apart (at 00:00 and 00:01): the platform fails a deployment with it");
    // No minute is waited for: the platform comes back with its scheduler's clock
    // (`cron_clock_ahead`) a few seconds before a minute. Should `up` take longer than
    // that, the run comes a minute later, within the guard below.
    run_within(&env, &["down"], LIMIT).ok();
    const LEAD: u64 = 6;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ahead = (60 - (now + LEAD) % 60) % 60;
    env.set("SHIPWAY_CRON_CLOCK_AHEAD", &format!("{ahead}s"));
    run_within(&env, &["up", "--detach"], LIMIT).ok();
    eventually(Duration::from_secs(150), "a scheduled run", || {
        let logs = env.run(&["logs", "-a", "cronclock", "--filter", "cron-1"]);
        logs.stdout.contains("[cron-1] cron-1 exited with code 0")
    });
    env.run(&["logs", "-a", "cronclock"])
        .ok()
        .has("[cron-1] Starting job 1 (schedule) of release 1, size M")
        .has("[cron-1] tick from cron-1");
    let tasks = json(&env.run(&["cron-tasks", "-a", "cronclock", "--json"]).ok());
    let last = &tasks[0]["last_run"];
    assert_eq!(last["trigger"], "schedule", "{tasks}");
    assert_eq!(last["code"], 0, "{tasks}");
    // It started on a minute of the scheduler's clock, within the few seconds a busy
    // machine may add.
    assert!(unix(last["started_at"].as_str().unwrap()) % 60 < 10, "{tasks}");
}

#[test]
fn destroying_the_app_stops_its_running_job() {
    let env = Env::new();
    deployed(&env, "crongone");
    let marker = marker(&env, "crongone");
    let _strays = Strays(marker.clone());
    let client = env
        .command(&["cron-run", "-a", "crongone", "linger"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    eventually(LIMIT, "the lingering job to start", || {
        !lingering(&marker).is_empty()
    });
    env.run(&["destroy", "crongone", "--force"]).ok();
    eventually(LIMIT, "the job to be stopped", || lingering(&marker).is_empty());
    assert_eq!(client.output_within(COMMAND_LIMIT).status.code(), Some(143));
}
