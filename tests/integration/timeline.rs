//! `shipway timeline`: the app's events, newest first, from the one record that
//! `logs --filter platform` shows too, with config var names and never their values.

use std::time::Duration;

use crate::harness::*;

/// A value no event may show: it is set as a config var and looked for everywhere.
const SECRET: &str = "s3cr3t-value-7f1e9a";

/// Each event of `timeline --json` is a `[platform]` line of `logs --filter platform`, at
/// its time and with its text, and the log has no platform line the timeline lacks.
fn same_events_in_logs(env: &Env, app: &str, timeline: &serde_json::Value) {
    let logs = env
        .run(&["logs", "-a", app, "-n", "10000", "--filter", "platform"])
        .ok()
        .stdout;
    let mut lines: Vec<String> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} [platform] {}",
                e["created_at"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    // As sets: the platform and a command may each write an event the same moment.
    lines.sort();
    let mut logged: Vec<&str> = logs.lines().collect();
    logged.sort();
    assert_eq!(logged, lines, "logs --filter platform:\n{logs}");
}

#[test]
fn env_set_restart_and_scale_are_on_the_timeline_with_names_and_never_values() {
    let env = Env::new();
    let app = env.app("env-echo");
    env.deploy(&app, "tl", &["--env", &procfile_only()]).ok();
    let pair = format!("API_TOKEN={SECRET}");
    env.run(&["env-set", "-a", "tl", &pair, "GREETING=hi"]).ok();
    env.run(&["env-set", "-a", "tl", "GREETING=hello"]).ok();
    env.run(&["restart", "-a", "tl"]).ok();
    env.run(&["scale", "-a", "tl", "web:2"]).ok();
    env.run(&["run", "-a", "tl", "exit 7"]).code(7);
    env.run(&["env-unset", "-a", "tl", "GREETING"]).ok();

    // The platform writes its events off the supervisor's thread: wait for the last
    // ones, web-2's start (the scale) and the restarted web-1's stop.
    let mut timeline = serde_json::Value::Null;
    eventually(Duration::from_secs(30), "web-2's start and web-1's stop", || {
        timeline = json(&env.run(&["timeline", "-a", "tl", "--json"]).ok());
        let events = timeline.as_array().unwrap();
        let started = events
            .iter()
            .any(|e| e["type"] == "container_started" && e["type_data"]["container"] == "web-2");
        started && events.iter().any(|e| e["type"] == "container_stopped")
    });
    crate::output::check_convention(&timeline, "timeline");
    let kinds = types(&timeline);
    // Newest first: the last command's event leads, the first deployment's comes last.
    assert_eq!(kinds[0], "delete_variable", "{timeline:#}");
    let at = |kind: &str| {
        kinds
            .iter()
            .position(|k| k == kind)
            .unwrap_or_else(|| panic!("no {kind} in {timeline:#}"))
    };
    assert!(at("scale") < at("restart"), "{kinds:?}");
    assert!(at("restart") < at("edit_variable"), "{kinds:?}");
    assert!(at("edit_variable") < at("new_variable"), "{kinds:?}");
    assert!(at("new_variable") < at("deployment"), "{kinds:?}");
    let times: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );

    let entry = |kind: &str| &timeline[at(kind)];
    assert_eq!(
        entry("new_variable")["type_data"]["names"],
        serde_json::json!(["API_TOKEN", "GREETING"])
    );
    assert_eq!(
        entry("edit_variable")["type_data"]["names"],
        serde_json::json!(["GREETING"])
    );
    assert_eq!(
        entry("scale")["type_data"]["containers"],
        serde_json::json!({"web": 2})
    );
    assert_eq!(entry("scale")["type_data"]["release"], 1);
    assert_eq!(
        entry("restart")["type_data"]["scope"],
        serde_json::json!(["web-1"])
    );
    assert_eq!(entry("deployment")["type_data"]["status"], "success");
    assert_eq!(entry("run")["type_data"]["command"], "exit 7");
    assert_eq!(
        entry("run_ended")["detail"],
        "run-1 exited with code 7 (release v1)"
    );
    assert!(
        at("run_ended") < at("run") && at("run") < at("scale"),
        "{kinds:?}"
    );

    // The value is nowhere: not in the timeline, its JSON, the logs nor the record.
    let human = env
        .run(&["timeline", "-a", "tl"])
        .ok()
        .has("- New Variable")
        .has("config vars added: API_TOKEN, GREETING")
        .has("- Scale")
        .has("scaled to web=2 (release v1)")
        .has("restart of web-1 (release v1)")
        .lacks(SECRET);
    assert!(human.stdout.starts_with("* "), "{}", human.stdout);
    let raw = env.run(&["timeline", "-a", "tl", "--json"]).ok();
    assert!(!raw.stdout.contains(SECRET), "{}", raw.stdout);
    env.run(&["logs", "-a", "tl", "-n", "10000"]).ok().lacks(SECRET);
    let record = std::fs::read_to_string(env.home.path().join("apps/tl/events.jsonl")).unwrap();
    assert!(!record.contains(SECRET), "{record}");

    same_events_in_logs(&env, "tl", &timeline);
}

#[test]
fn deployments_and_a_rollback_are_on_the_timeline() {
    let env = Env::new();
    let app = env.app("env-echo");
    let bp = procfile_only();
    env.deploy(&app, "back", &["--env", &bp]).ok();
    env.deploy(&app, "back", &["--env", &bp]).ok();
    env.run(&["rollback", "-a", "back"]).ok();

    let history = json(&env.run(&["deployments", "-a", "back", "--json"]).ok());
    let first = history[2]["id"].as_str().unwrap().to_string();
    let rollback = history[0]["id"].as_str().unwrap().to_string();
    let mut timeline = serde_json::Value::Null;
    // Each of the three started a web-1; the last two stopped the one before.
    eventually(Duration::from_secs(30), "three starts and two stops", || {
        timeline = json(&env.run(&["timeline", "-a", "back", "--json"]).ok());
        let count = |kind: &str| {
            let events = timeline.as_array().unwrap().iter();
            events.filter(|e| e["type"] == kind).count()
        };
        count("container_started") == 3 && count("container_stopped") == 2
    });
    let deploys: Vec<&serde_json::Value> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "deployment" || e["type"] == "rollback")
        .collect();
    assert_eq!(deploys.len(), 3, "{timeline:#}");
    let r = &deploys[0]["type_data"];
    assert_eq!(deploys[0]["type"], "rollback");
    assert_eq!(r["deployment_id"], rollback.as_str());
    assert_eq!(r["rollback_to"], first.as_str());
    assert_eq!(r["status"], "success");
    assert_eq!(r["release"], 1);
    assert_eq!(deploys[1]["type_data"]["release"], 2);
    assert_eq!(deploys[2]["type_data"]["deployment_id"], first.as_str());
    assert_eq!(deploys[2]["type_data"]["release"], 1);
    // The same `--env` at each deploy changed nothing the second time: one event.
    let vars = types(&timeline)
        .iter()
        .filter(|k| k.ends_with("_variable"))
        .count();
    assert_eq!(vars, 1, "{timeline:#}");

    env.run(&["timeline", "-a", "back"])
        .ok()
        .has("- Rollback ")
        .has(&format!(
            "rollback {rollback} success (release v1, of deployment {first})"
        ))
        .has("- Deployment ")
        .has(&format!("deployment {first} success (release v1)"));
    same_events_in_logs(&env, "back", &timeline);
}

#[test]
fn a_stack_change_is_on_the_timeline_without_a_platform() {
    let env = Env::new();
    env.run(&["create", "fresh"]).ok();
    env.run(&["timeline", "-a", "fresh"])
        .ok()
        .has("fresh has no event yet");
    assert_eq!(
        json(&env.run(&["timeline", "-a", "fresh", "--json"]).ok()),
        serde_json::json!([])
    );
    env.run(&["stacks-set", "-a", "fresh", "scalingo-24"]).ok();
    let timeline = json(&env.run(&["timeline", "-a", "fresh", "--json"]).ok());
    assert_eq!(types(&timeline), ["stack_changed"]);
    assert_eq!(timeline[0]["type_data"]["to"], "scalingo-24");
    env.run(&["timeline", "-a", "nope"]).code(1);
}

#[test]
fn crashes_and_the_crash_policy_giving_up_are_on_the_timeline() {
    let env = crash_looping_worker("loopy");
    let mut timeline = serde_json::Value::Null;
    eventually(Duration::from_secs(20), "the crash policy to give up", || {
        timeline = json(&env.run(&["timeline", "-a", "loopy", "--json"]).ok());
        types(&timeline).iter().any(|k| k == "repeated_crash")
    });
    let kinds = types(&timeline);
    // SHIPWAY_CRASH_LIMIT=3: three crashes, the last one left crashed.
    assert_eq!(kinds[0], "repeated_crash", "{timeline:#}");
    assert_eq!(kinds[1], "crash", "{timeline:#}");
    assert_eq!(kinds.iter().filter(|k| *k == "crash").count(), 3, "{kinds:?}");
    let given_up = &timeline[0]["type_data"];
    assert_eq!(given_up["container"], "worker-1");
    assert_eq!(given_up["crashes"], 3);
    assert_eq!(given_up["reason"], "exited with code 1");
    assert_eq!(timeline[1]["type_data"]["container"], "worker-1");
    env.run(&["timeline", "-a", "loopy"])
        .ok()
        .has("- Repeated Crash ")
        .has("worker-1 crashed 3 times in a row");
    env.run(&["logs", "-a", "loopy", "--filter", "worker-1", "-n", "1000"])
        .ok()
        .has("[platform] worker-1 crashed 3 times in a row");
}
