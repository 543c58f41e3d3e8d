//! Container sizes enforced (memory with no swap, processes, CPU weight) and measured
//! (`stats`, `ps`'s MEM), on the `sizes` fixture. Limits need a cgroup shipway can make:
//! root's (CI runs as root, on cgroup v1) or a delegated one; elsewhere these tests say
//! they were skipped.

use std::time::Duration;

use crate::harness::*;

const S_MEMORY: u64 = 268_435_456;

/// The `sizes` fixture deployed as `app`, its web container of size S; None (said) where
/// no cgroup can be made here.
fn deployed(env: &Env, app: &str, what: &str) -> Option<()> {
    if !root_or_skip(what, "container limits need a cgroup of root's here") {
        return None;
    }
    let dir = env.app_as("sizes", app);
    env.deploy(&dir, app, &["--env", &procfile_only(), "--env", &pids_dir(env)])
        .ok();
    let stats = json(&env.run(&["stats", "-a", app, "--json"]).ok());
    if let Some(why) = stats["unmeasured"].as_str() {
        skipped(what, why);
        return None;
    }
    Some(())
}

fn container<'a>(stats: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stats["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[test]
fn stats_and_ps_give_an_s_containers_memory_against_its_limit() {
    let env = Env::new();
    if deployed(
        &env,
        "measured",
        "stats_and_ps_give_an_s_containers_memory_against_its_limit",
    )
    .is_none()
    {
        return;
    }
    let web = container(
        &json(&env.run(&["stats", "-a", "measured", "--json"]).ok()),
        "web-1",
    )
    .clone();
    assert_eq!(web["size"], "M", "M unless scaled: {web}");
    assert_eq!(web["memory_limit_bytes"], 2 * S_MEMORY, "{web}");
    env.run(&["scale", "-a", "measured", "web:1:S"])
        .ok()
        .has("web: 1 - S");
    let stats = json(&env.run(&["stats", "-a", "measured", "--json"]).ok());
    assert_eq!(stats["app"], "measured");
    let web = container(&stats, "web-1");
    assert_eq!(web["status"], "running");
    assert_eq!(web["size"], "S");
    assert_eq!(web["memory_limit_bytes"], S_MEMORY, "{web}");
    let used = web["memory_bytes"].as_u64().unwrap_or(0);
    // A Python server holds a few MB: measured, and below its limit.
    assert!(used > 1024 * 1024 && used < S_MEMORY, "{web}");
    assert!(web["memory_max_bytes"].as_u64().unwrap_or(0) >= used, "{web}");
    assert!(web["cpu_percent"].as_f64().is_some(), "{web}");
    env.run(&["stats", "-a", "measured"])
        .ok()
        .has("MEMORY")
        .has("256.0 MiB");
    let ps = env.run(&["ps", "-a", "measured"]).ok();
    assert!(
        ps.stdout.lines().next().unwrap_or_default().contains("MEM"),
        "{}",
        ps.stdout
    );
    ps.has(" / 256.0 MiB");
    let rows = json(&env.run(&["ps", "-a", "measured", "--json"]).ok());
    assert_eq!(rows[0]["memory_limit_bytes"], S_MEMORY, "{rows}");
    // The container sees its size.
    env.run(&[
        "run",
        "-a",
        "measured",
        "--size",
        "L",
        "echo $CONTAINER_SIZE $CONTAINER_MEMORY",
    ])
    .ok()
    .has("L 1073741824");
}

#[test]
fn an_s_container_holds_no_more_than_128_processes() {
    let env = Env::new();
    if deployed(&env, "forks", "an_s_container_holds_no_more_than_128_processes").is_none() {
        return;
    }
    env.run(&["scale", "-a", "forks", "forks:1:S"]).ok();
    let report = env.work.path().join("forks-forks-1.txt");
    eventually(Duration::from_secs(60), "forks-1 to report its threads", || {
        report.exists()
    });
    let text = std::fs::read_to_string(&report).unwrap();
    let started: u32 = text.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        text.contains("can't start new thread") || text.contains("can't create"),
        "the kernel refused a thread: {text}"
    );
    // 128 tasks at most: the thread's own process, maybe bash, and what it started.
    assert!((100..128).contains(&started), "{text}");
}

#[test]
fn a_process_over_its_memory_is_stopped_with_the_event_and_restarted() {
    let env = Env::new();
    let what = "a_process_over_its_memory_is_stopped_with_the_event_and_restarted";
    if deployed(&env, "hungry", what).is_none() {
        return;
    }
    // hog.py holds 400 MB, 10 MB at a time: an S container has 256 MB and no swap.
    env.run(&["scale", "-a", "hungry", "hog:1:S"]).ok();
    let event = "[platform] hog-1 stopped: out of memory (limit 256 MB, size S)";
    let mut log = String::new();
    eventually(
        Duration::from_secs(60),
        "hog-1 to be stopped for memory, then started again",
        || {
            log = env.run(&["logs", "-a", "hungry", "-n", "1000"]).ok().stdout;
            log.lines()
                .skip_while(|l| !l.contains(event))
                .any(|l| l.contains("[platform] hog-1 started"))
        },
    );
    assert!(!log.contains("held it all"), "it never held 400 MB:\n{log}");
    assert!(
        log.contains("holding 200 MB"),
        "it held what its size allows:\n{log}"
    );
    let rows = json(&env.run(&["ps", "-a", "hungry", "--json"]).ok());
    let hog = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "hog-1")
        .unwrap();
    assert!(hog["restarts"].as_u64().unwrap_or(0) >= 1, "{hog}");
    // One record: the timeline has the same event, with the size and its limit.
    let timeline = env.run(&["timeline", "-a", "hungry", "--json"]).ok().stdout;
    assert!(
        timeline.contains("\"out_of_memory\"") && timeline.contains("268435456"),
        "{timeline}"
    );
    // A one-off of the same size, attached, says so too.
    env.run(&["run", "-a", "hungry", "--size", "S", "python3 hog.py"])
        .has("out of memory (limit 256 MB, size S)")
        .lacks("held it all");
}

#[test]
fn a_deploy_whose_container_runs_out_of_memory_before_ready_fails() {
    let env = Env::new();
    let what = "a_deploy_whose_container_runs_out_of_memory_before_ready_fails";
    if !root_or_skip(what, "container limits need a cgroup of root's here") {
        return;
    }
    let dir = env.app_as("sizes", "greedy");
    // scalingo.json gives web size S at the first deployment; the server holds 400 MB
    // before it listens.
    std::fs::write(
        dir.join("scalingo.json"),
        r#"{"formation": {"web": {"amount": 1, "size": "S"}}}"#,
    )
    .unwrap();
    let run = env.deploy(
        &dir,
        "greedy",
        &["--env", &procfile_only(), "--env", "HOG_AT_BOOT=400"],
    );
    if run.all().contains("container sizes are not enforced") {
        skipped(what, "no cgroup can be made here");
        return;
    }
    run.code(11)
        .has("web-1 stopped: out of memory (limit 256 MB, size S) before it accepted connections")
        .has("crashed-error");
    // Within M's 512 MB it deploys.
    std::fs::write(dir.join("scalingo.json"), "{}").unwrap();
    env.run(&["scale", "-a", "greedy", "web:1:M"]).ok();
    env.deploy(
        &dir,
        "greedy",
        &["--env", &procfile_only(), "--env", "HOG_AT_BOOT=300"],
    )
    .ok();
}

#[test]
fn without_a_cgroup_sizes_are_not_enforced_and_it_is_said_once() {
    let env = Env::new();
    let what = "without_a_cgroup_sizes_are_not_enforced_and_it_is_said_once";
    let Some(home) = nobody_home(&env, what) else {
        return;
    };
    // nobody has no delegated cgroup here (CI runs as root, on cgroup v1, whose trees are
    // root's), unless a systemd user session gave it one.
    let dir = env.app_as("sizes", "plain");
    std::fs::write(
        dir.join("scalingo.json"),
        r#"{"formation": {"web": {"amount": 2, "size": "S"}, "forks": {"amount": 0}}}"#,
    )
    .unwrap();
    let d = dir.display().to_string();
    let run = |args: &[&str]| run_as_nobody(&env, &home, args);
    let deployed = run(&[
        "deploy",
        &d,
        "-a",
        "plain",
        "--env",
        "BIND_HOST=127.0.0.1",
        "--env",
        &procfile_only(),
    ]);
    let stats = run(&["stats", "-a", "plain", "--json"]).ok();
    let stats: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    let Some(why) = stats["unmeasured"].as_str() else {
        run(&["down"]);
        skipped(
            what,
            "nobody has a delegated cgroup here: its sizes are enforced, so the path where they are not cannot be shown",
        );
        return;
    };
    deployed.ok();
    assert!(
        why.contains("not enforced") && why.contains("To enforce them"),
        "{why}"
    );
    let web = container(&stats, "web-1");
    assert_eq!(web["status"], "running", "it runs as today: {stats}");
    assert!(web["memory_limit_bytes"].is_null(), "{stats}");
    let log = run(&["logs", "-a", "plain", "-n", "1000"]).ok().stdout;
    assert_eq!(
        log.matches("container sizes are not enforced on this machine")
            .count(),
        1,
        "said once for two containers:\n{log}"
    );
    run(&["ps", "-a", "plain"]).ok().has("web-2");
    run(&["down"]).ok();
}

#[test]
fn stats_stream_piped_prints_one_record_per_interval() {
    let env = Env::new();
    let what = "stats_stream_piped_prints_one_record_per_interval";
    if deployed(&env, "streamed", what).is_none() {
        return;
    }
    let mut child = env
        .command(&["stats", "-a", "streamed", "--stream", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut guard = Guarded(child);
    let (tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    for n in 1..=2 {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("record {n} of --stream never came"));
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(record["app"], "streamed", "{line}");
        assert!(
            container(&record, "web-1")["memory_bytes"].as_u64().is_some(),
            "{line}"
        );
    }
    // Until Ctrl-C, which ends it.
    ctrl_c(guard.0.id());
    let status = guard.wait_within(Duration::from_secs(30));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGINT),
        "{status:?}"
    );
}

/// The cgroups the shipway process `pid` made (`label.PID.N`), in every tree mounted.
fn cgroups_of(pid: i32) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, depth: u32, mark: &str, found: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().contains(mark) {
                found.push(path);
            } else if depth > 0 {
                walk(&path, depth - 1, mark, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        std::path::Path::new("/sys/fs/cgroup"),
        4,
        &format!(".{pid}."),
        &mut found,
    );
    found
}

#[test]
fn a_platform_killed_with_sigkill_leaves_no_cgroup_behind() {
    let env = Env::new();
    let what = "a_platform_killed_with_sigkill_leaves_no_cgroup_behind";
    if deployed(&env, "orphaned", what).is_none() {
        return;
    }
    env.run(&["scale", "-a", "orphaned", "web:2:S"]).ok();
    let platform = env.platform_pid().unwrap();
    assert!(
        !cgroups_of(platform).is_empty(),
        "the containers' cgroups are there"
    );
    kill(platform);
    // Its watchdog kills the containers, then removes their cgroups.
    eventually(
        Duration::from_secs(20),
        "the cgroups of the killed platform to go",
        || cgroups_of(platform).is_empty(),
    );
    // Stopped in order, nothing is left either.
    let dir = env.work.path().join("orphaned");
    env.deploy(&dir, "orphaned", &["--env", &procfile_only()]).ok();
    let platform = env.platform_pid().unwrap();
    assert!(!cgroups_of(platform).is_empty());
    env.run(&["down"]).ok();
    assert_eq!(cgroups_of(platform), Vec::<std::path::PathBuf>::new());
}
