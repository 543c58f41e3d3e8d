//! What the router tells of an app's traffic: its router logs (`router-logs`, lines in
//! `logs`) and its metrics (`stats`).

use std::io::{Read, Write};
use std::time::Duration;

use crate::harness::*;

/// The env-echo fixture deployed as `app` (procfile-only buildpack: fast); its router's
/// address.
fn deployed(env: &Env, app: &str) -> String {
    let dir = env.app_as("env-echo", app);
    let run = env.deploy(&dir, app, &["--env", &procfile_only()]).ok();
    url_of(&run)
}

/// GET `path` with an `X-Request-ID`, on a new connection; the status.
fn get_with_id(addr: &str, path: &str, id: &str) -> u16 {
    let limit = Duration::from_secs(10);
    let mut s = connect(addr, limit).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: figures-test\r\nX-Request-ID: {id}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn router_lines(env: &Env, app: &str) -> Vec<String> {
    let run = env
        .run(&["logs", "-a", app, "-n", "1000", "--filter", "router"])
        .ok();
    run.stdout.lines().map(str::to_string).collect()
}

#[test]
fn router_logs_are_off_until_enabled_then_one_line_per_request_until_disabled() {
    let env = Env::new();
    let addr = deployed(&env, "rl");
    env.run(&["router-logs", "-a", "rl"])
        .ok()
        .has("Router logs of rl are disabled");

    // Off by default: requests leave no line.
    assert_eq!(get_with_id(&addr, "/status/200", "before-1"), 200);
    env.run(&["router-logs", "-a", "rl", "--enable"])
        .ok()
        .has("Router logs of rl are enabled");
    env.run(&["router-logs", "-a", "rl"]).ok().has("are enabled");
    assert_eq!(get_with_id(&addr, "/status/204", "on-1"), 204);
    assert_eq!(get_with_id(&addr, "/status/503?x=1", "on-2"), 503);
    eventually(Duration::from_secs(10), "two router log lines", || {
        router_lines(&env, "rl").len() >= 2
    });
    let lines = router_lines(&env, "rl");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("before-1")), "{lines:#?}");
    let line = &lines[1];
    for field in [
        " [router] method=GET path=\"/status/503?x=1\" host=test request_id=on-2 container=web-1 ",
        " status=503 duration=",
        " bytes=",
        " user_agent=\"figures-test\"",
    ] {
        assert!(line.contains(field), "no {field:?} in {line}");
    }
    assert!(
        lines[0].contains("request_id=on-1") && lines[0].contains("status=204"),
        "{lines:#?}"
    );
    // They sit among the app's own lines in `logs`.
    let all = env.run(&["logs", "-a", "rl", "-n", "1000"]).ok();
    all.has("[web-1] env-echo listening")
        .has("[router] method=GET path=\"/status/204\"");

    // The router's own answers are logged too, with no container.
    env.run(&["scale", "-a", "rl", "web:0"]).ok();
    assert_eq!(get_with_id(&addr, "/none", "none-1"), 503);
    eventually(Duration::from_secs(10), "the 503's line", || {
        router_lines(&env, "rl")
            .iter()
            .any(|l| l.contains("request_id=none-1"))
    });
    let lines = router_lines(&env, "rl");
    let line = lines.iter().find(|l| l.contains("request_id=none-1")).unwrap();
    assert!(
        line.contains(" container=false ") && line.contains(" status=503 "),
        "{line}"
    );
    env.run(&["scale", "-a", "rl", "web:1"]).ok();

    // Disabled: no more lines.
    env.run(&["router-logs", "-a", "rl", "--disable"])
        .ok()
        .has("disabled");
    assert_eq!(get_with_id(&addr, "/status/200", "after-1"), 200);
    let before = router_lines(&env, "rl").len();
    // Enabled again, a marker request shows the writer has caught up: the request made
    // while disabled never got a line.
    env.run(&["router-logs", "-a", "rl", "--enable"]).ok();
    assert_eq!(get_with_id(&addr, "/status/200", "marker-1"), 200);
    eventually(Duration::from_secs(10), "the marker's line", || {
        router_lines(&env, "rl")
            .iter()
            .any(|l| l.contains("request_id=marker-1"))
    });
    let lines = router_lines(&env, "rl");
    assert_eq!(lines.len(), before + 1, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("after-1")), "{lines:#?}");
}

#[test]
fn router_logs_stay_enabled_when_the_platform_starts_again() {
    let env = Env::new();
    let addr = deployed(&env, "rlkeep");
    env.run(&["router-logs", "-a", "rlkeep", "--enable"]).ok();
    env.run(&["down"]).ok();
    // No platform runs: the setting is the app's, kept for the next one.
    env.run(&["router-logs", "-a", "rlkeep"]).ok().has("are enabled");
    env.run(&["up", "--detach"]).ok();
    eventually(Duration::from_secs(20), "the app served again", || {
        get(&addr, "/status/200").is_ok_and(|(status, _)| status == 200)
    });
    assert_eq!(get_with_id(&addr, "/status/200", "kept-1"), 200);
    eventually(Duration::from_secs(10), "the request's line", || {
        router_lines(&env, "rlkeep")
            .iter()
            .any(|l| l.contains("request_id=kept-1"))
    });
}

/// The platform's answer to one JSON request line on its socket.
fn ask_platform(env: &Env, request: &str) -> serde_json::Value {
    use std::io::BufRead;
    let mut s = std::os::unix::net::UnixStream::connect(env.home.path().join("platform.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    writeln!(s, "{request}").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn the_router_counts_requests_5xx_and_response_times_per_minute() {
    let env = Env::new();
    let addr = deployed(&env, "rm");
    let ask = || ask_platform(&env, r#"{"request":"router_metrics","app":"rm","minutes":true}"#);
    let before = ask();
    assert_eq!(before["event"], "router_metrics", "{before}");
    let counted = before["figures"]["requests"].as_u64().unwrap();
    for i in 0..20 {
        assert_eq!(get_with_id(&addr, "/status/200", &format!("m-{i}")), 200);
    }
    assert_eq!(get_with_id(&addr, "/status/500", "m-500"), 500);
    assert_eq!(get_with_id(&addr, "/slow/50", "m-slow"), 200);
    let after = ask();
    let figures = &after["figures"];
    assert_eq!(figures["requests"].as_u64().unwrap(), counted + 22, "{after}");
    assert_eq!(figures["5xx"].as_u64().unwrap(), 1, "{after}");
    let times = &figures["response_time_ms"];
    let p = |q: &str| times[q].as_f64().unwrap_or_else(|| panic!("no {q} in {after}"));
    // The request that took 50 ms or more is the slowest of 22, the one p99 reads (give or
    // take the histogram's 12.5%).
    assert!(p("p99") >= 44.0, "{after}");
    assert!(p("p50") <= p("p95") && p("p95") <= p("p99"), "{after}");
    assert!(figures["requests_per_minute"].as_f64().unwrap() > 0.0, "{after}");
    // The minutes add up to the whole.
    let minutes = figures["minutes"].as_array().unwrap();
    let sum: u64 = minutes.iter().map(|m| m["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, counted + 22, "{after}");
    // An app without a router has zeros, not an error.
    let none = ask_platform(&env, r#"{"request":"router_metrics","app":"nothing"}"#);
    assert_eq!(none["figures"]["requests"], 0, "{none}");
}

#[test]
fn stats_shows_the_routers_figures_after_n_requests() {
    let env = Env::new();
    let addr = deployed(&env, "rs");
    let n = 12;
    for i in 0..n - 1 {
        assert_eq!(get_with_id(&addr, "/status/200", &format!("s-{i}")), 200);
    }
    assert_eq!(get_with_id(&addr, "/status/502", "s-502"), 502);
    let run = env.run(&["stats", "-a", "rs", "--json"]).ok();
    let stats: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let router = &stats["router"];
    assert_eq!(router["requests"], n, "{stats}");
    assert_eq!(router["5xx"], 1, "{stats}");
    for p in ["p50", "p95", "p99"] {
        assert!(
            router["response_time_ms"][p].as_f64().is_some(),
            "no {p}: {stats}"
        );
    }
    assert!(router["requests_per_minute"].as_f64().unwrap() > 0.0, "{stats}");
    env.run(&["stats", "-a", "rs"])
        .ok()
        .has(&format!("router (72 h): {n} requests"))
        .has(", 1 5xx, response time p50 ");
}
