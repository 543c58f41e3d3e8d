//! `shipway dashboard`: the platform's read-only web page, its JSON and what it never
//! shows, and the page itself loaded in headless Chromium.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const SECRET: &str = "tok-5f1e2d3c4b5a";
const PASSWORD: &str = "pw-9a8b7c6d5e";

/// Requests through the router: 5xx among them.
const OK_REQUESTS: usize = 12;
const ERROR_REQUESTS: usize = 3;

/// env-echo deployed as `demo` with a secret config var and an addon-like URL, which a
/// detached one-off then prints into the app's log, then requests through its router.
/// Returns the deployment's id.
fn demo(env: &Env) -> String {
    let dir = env.app_as("env-echo", "demo");
    let token = format!("API_TOKEN={SECRET}");
    let url = format!("DATABASE_URL=postgres://demo:{PASSWORD}@127.0.0.1:5432/demo");
    let deployed = env
        .deploy(
            &dir,
            "demo",
            &["--env", &procfile_only(), "--env", &token, "--env", &url],
        )
        .ok();
    let app = url_of(&deployed);
    for _ in 0..OK_REQUESTS {
        assert_eq!(get(&app, "/profile").unwrap().0, 200);
    }
    for _ in 0..ERROR_REQUESTS {
        assert_eq!(get(&app, "/status/503").unwrap().0, 503);
    }
    env.run(&[
        "-a",
        "demo",
        "run",
        "-d",
        "bash",
        "-c",
        "echo token $API_TOKEN; echo database $DATABASE_URL",
    ])
    .ok();
    eventually(Duration::from_secs(30), "the one-off's lines in the log", || {
        let logs = env.run(&["-a", "demo", "logs", "-n", "1000"]).ok().stdout;
        logs.contains(&format!("token {SECRET}")) && logs.contains(PASSWORD)
    });
    // Events for the timeline, and marks on the charts.
    env.run(&["-a", "demo", "env-set", &format!("SESSION_SECRET={SECRET}-2")])
        .ok();
    env.run(&["-a", "demo", "restart"]).ok();
    env.run(&["-a", "demo", "scale", "web:2"]).ok();
    let list = env.run(&["-a", "demo", "deployments", "--json"]).ok().stdout;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    list[0]["id"].as_str().unwrap().to_string()
}

/// `shipway dashboard` (not on a terminal: the URL alone on stdout).
fn dashboard_url(env: &Env, extra: &[&str]) -> String {
    let mut args = vec!["dashboard"];
    args.extend_from_slice(extra);
    let run = env.run(&args).ok();
    let url = run.stdout.trim_end().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{}", run.all());
    url
}

/// One request as a browser of the dashboard sends it: (status, head, body).
fn request(addr: &str, method: &str, path: &str, host: &str) -> (u16, String, String) {
    let mut s = connect(addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

#[test]
fn the_dashboard_answers_gets_only_and_never_shows_a_secret_value() {
    let env = Env::new();
    let deployment = demo(&env);
    let url = dashboard_url(&env, &[]);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // Asked again, the same dashboard; `-a` points at the app's page.
    assert_eq!(dashboard_url(&env, &[]), url);
    assert_eq!(dashboard_url(&env, &["-a", "demo"]), format!("{url}apps/demo"));
    env.run(&["-a", "nope", "dashboard"])
        .code(1)
        .has("app \"nope\" does not exist");

    let get = |path: &str| request(&addr, "GET", path, &addr);
    let paths = [
        "/".to_string(),
        "/apps/demo".to_string(),
        "/dashboard.css".to_string(),
        "/dashboard.js".to_string(),
        "/api/apps".to_string(),
        "/api/apps/demo".to_string(),
        "/api/apps/demo/logs".to_string(),
        "/api/apps/demo/logs?from=0".to_string(),
        "/api/apps/demo/metrics".to_string(),
        "/api/apps/demo/timeline".to_string(),
        "/api/apps/demo/stats".to_string(),
        "/api/apps/demo/metrics?hours=72".to_string(),
        format!("/api/apps/demo/deployments/{deployment}/output"),
    ];
    for path in &paths {
        let (status, _, body) = get(path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains(SECRET), "{path} shows the token:\n{body}");
        assert!(!body.contains(PASSWORD), "{path} shows the password:\n{body}");
    }
    // The app's config vars by name; the log with the secrets hidden.
    let (_, _, app) = get("/api/apps/demo");
    let app: serde_json::Value = serde_json::from_str(&app).unwrap();
    assert_eq!(app["name"], "demo");
    assert!(
        app["config_vars"]
            .as_array()
            .unwrap()
            .contains(&"API_TOKEN".into()),
        "{app}"
    );
    assert_eq!(app["deployments"][0]["id"], deployment.as_str());
    assert_eq!(app["containers"][0]["name"], "web-1");
    assert_eq!(app["containers"][0]["status"], "running");
    let (_, _, logs) = get("/api/apps/demo/logs?from=0");
    assert!(logs.contains("token [API_TOKEN hidden]"), "{logs}");
    assert!(logs.contains("database [DATABASE_URL hidden]"), "{logs}");
    let (_, _, output) = get(&format!("/api/apps/demo/deployments/{deployment}/output"));
    let output: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(output["status"], "success");
    assert_eq!(output["finished"], true);
    assert!(
        output["text"].as_str().unwrap().contains("Deployment success"),
        "{output}"
    );
    // The timeline, newest first, with names but no value.
    let (_, _, timeline) = get("/api/apps/demo/timeline");
    let timeline: serde_json::Value = serde_json::from_str(&timeline).unwrap();
    let kinds = types(&timeline);
    for kind in ["scale", "restart", "new_variable", "deployment"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {timeline}");
    }
    assert!(timeline.to_string().contains("SESSION_SECRET"), "{timeline}");
    // The containers' figures, as `stats` has them, and their memory since the dashboard
    // started.
    let (_, _, stats) = get("/api/apps/demo/stats");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let containers = stats["stats"]["containers"].as_array().unwrap();
    let names: Vec<&str> = containers.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web-1", "web-2"], "{stats}");
    if let Some(why) = stats["stats"]["unmeasured"].as_str() {
        skipped("the dashboard's memory figures", why);
    } else {
        for c in containers {
            let used = c["memory_bytes"].as_u64().unwrap();
            let limit = c["memory_limit_bytes"].as_u64().unwrap();
            assert!(used > 0 && used < limit, "{stats}");
        }
        let mut samples = serde_json::Value::Null;
        eventually(
            Duration::from_secs(20),
            "memory samples of both containers",
            || {
                samples = serde_json::from_str::<serde_json::Value>(&get("/api/apps/demo/stats").2).unwrap()
                    ["memory"]
                    .clone();
                ["web-1", "web-2"]
                    .iter()
                    .all(|n| samples[n].as_array().is_some_and(|a| !a.is_empty()))
            },
        );
        assert!(
            samples["web-1"][0]["memory_bytes"].as_u64().unwrap() > 0,
            "{samples}"
        );
    }
    // The router's figures, minute by minute, as `stats` has them.
    let mut metrics = serde_json::Value::Null;
    eventually(
        Duration::from_secs(10),
        "the requests in the router's figures",
        || {
            metrics = serde_json::from_str(&get("/api/apps/demo/metrics").2).unwrap();
            metrics["requests"] == OK_REQUESTS + ERROR_REQUESTS
        },
    );
    assert_eq!(metrics["5xx"], ERROR_REQUESTS, "{metrics}");
    let minutes = metrics["minutes"].as_array().unwrap();
    let counted: u64 = minutes.iter().map(|m| m["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, (OK_REQUESTS + ERROR_REQUESTS) as u64, "{metrics}");
    assert!(
        minutes[0]["response_time_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{metrics}"
    );
    // Read from where it ended, nothing more.
    let next = output["next"].as_u64().unwrap();
    let (_, _, rest) = get(&format!(
        "/api/apps/demo/deployments/{deployment}/output?from={next}"
    ));
    assert!(rest.contains("\"text\":\"\""), "{rest}");

    // Read-only: anything but GET (and HEAD) is refused, and changes nothing.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, head, _) = request(&addr, method, "/api/apps/demo", &addr);
        assert_eq!(status, 405, "{method}: {head}");
        assert!(head.contains("Allow: GET, HEAD"), "{head}");
    }
    let (status, head, body) = request(&addr, "HEAD", "/api/apps", &addr);
    assert_eq!((status, body.as_str()), (200, ""), "{head}");
    // A page of another site reaching the port through a name of its own.
    let (status, _, _) = request(&addr, "GET", "/api/apps", "rebound.example:80");
    assert_eq!(status, 403);
    assert_eq!(get("/api/apps/nope").0, 404);
    assert_eq!(get("/api/apps/demo/deployments/..%2Fapp/output").0, 404);
    assert_eq!(get("/nothing").0, 404);
    env.run(&["-a", "demo", "ps"]).ok().has("running");
}

/// Headless Chromium in a process group of its own, killed whole (SIGKILL) when
/// dropped: none of its processes outlives the test, even one that fails.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Run Chromium headless on `url` with `args` (its own profile in `profile`), at most
/// two minutes: its stdout.
fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new("chromium");
    child
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--window-size=1280,900",
            // Time as the page sees it: its polls and fetches run, then the page is taken.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    let mut browser = Browser(child.spawn().expect("start chromium"));
    let mut stdout = browser.0.stdout.take().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if browser.0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not finish within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(browser);
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default()
}

/// The pids of processes whose command line names `marker`.
fn processes_naming(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

#[test]
fn the_dashboard_in_headless_chromium_shows_the_app_its_deployment_timeline_and_charts() {
    // Whether it starts says whether it is installed; a browser that then hangs on
    // `--version` fails the test at the deadline, named.
    match Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => {
            Guarded(child).wait_for(Duration::from_secs(60), "chromium --version");
        }
        Err(_) => {
            skipped(
                "the dashboard in headless chromium",
                "chromium is not installed (`apt-get install chromium`; .ci/run does)",
            );
            return;
        }
    }
    let env = Env::new();
    let deployment = demo(&env);
    let url = dashboard_url(&env, &["-a", "demo"]);
    let profile = env.work.path().join("chromium-profile");

    let dom = chromium(&profile, &["--dump-dom"], &url);
    assert!(dom.contains("<h1>demo</h1>"), "no app heading in:\n{dom}");
    assert!(
        dom.contains(&format!("data-deployment=\"{deployment}\"")),
        "no deployment row in:\n{dom}"
    );
    assert!(
        dom.contains("Deployment success"),
        "no deployment output in:\n{dom}"
    );
    assert!(dom.contains("web-1"), "no container in:\n{dom}");
    assert!(dom.contains("[API_TOKEN hidden]"), "no log in:\n{dom}");
    assert!(
        !dom.contains(SECRET) && !dom.contains(PASSWORD),
        "a secret in:\n{dom}"
    );
    // The charts: requests per minute with the 5xx in red, response times, and the
    // deployment, the restart and the scale marked on them.
    let charts = dom.matches("<svg class=\"chart\"").count();
    if dom.contains("Not measured on this machine") {
        skipped(
            "the dashboard's memory chart",
            "containers are not measured on this machine",
        );
        assert_eq!(charts, 2, "charts in:\n{dom}");
    } else {
        // Memory per container, a line each, against its limit in the table.
        assert_eq!(charts, 3, "charts in:\n{dom}");
        assert!(
            dom.contains("class=\"line c0\"") || dom.contains("class=\"dot c0\""),
            "no memory line in:\n{dom}"
        );
        assert!(
            dom.contains(" / 512 MB"),
            "no memory against its limit in:\n{dom}"
        );
    }
    assert!(!dom.contains("data-points=\"0\""), "an empty chart in:\n{dom}");
    assert!(dom.contains("class=\"bar err\""), "no 5xx bar in:\n{dom}");
    assert!(dom.contains("class=\"line p99\""), "no p99 line in:\n{dom}");
    assert!(dom.contains("15 requests, 3 5xx"), "no request count in:\n{dom}");
    for mark in ["deploy", "restart", "scale"] {
        assert!(
            dom.contains(&format!("class=\"mark {mark}\"")),
            "no {mark} mark in:\n{dom}"
        );
    }
    // The timeline.
    for kind in ["scale", "restart", "new_variable", "deployment"] {
        assert!(
            dom.contains(&format!("data-event=\"{kind}\"")),
            "no {kind} event in:\n{dom}"
        );
    }

    let shot = env.work.path().join("dashboard.png");
    chromium(&profile, &[&format!("--screenshot={}", shot.display())], &url);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("SHIPWAY_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let left = processes_naming(&profile.display().to_string());
    assert!(left.is_empty(), "chromium processes left: {left:?}");
}

#[test]
fn the_dashboard_starts_a_platform_where_none_runs_and_prints_the_url_alone() {
    let env = Env::new();
    let run = env.run(&["dashboard"]).ok();
    assert!(
        run.stderr.contains("Started the shipway platform"),
        "{}",
        run.all()
    );
    let url = run.stdout.trim_end();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains('\n'),
        "{}",
        run.all()
    );
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let (status, _, body) = request(addr, "GET", "/api/apps", addr);
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, head, body) = request(addr, "GET", "/", addr);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(body.contains("<script src=\"/dashboard.js\""), "{body}");
}
