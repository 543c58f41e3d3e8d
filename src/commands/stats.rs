//! `shipway stats [--stream] [--json]`, as `scalingo stats`: each container's CPU and
//! memory (now, its size's limit, and the most since it started), as the running
//! platform measures them in the containers' cgroups.

use std::io::IsTerminal;
use std::time::Duration;

use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{AppStats, ContainerStats, Event, Request, RouterFigures};
use crate::settings::Settings;
use crate::state::Home;
use crate::units::human_bytes;

/// How often `--stream` measures again.
const STREAM_INTERVAL: Duration = Duration::from_secs(3);

pub fn run(settings: &Settings, choice: &super::AppChoice, stream: bool, json: bool) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    // A terminal is redrawn in place; anything else gets one record per interval.
    let redraw = stream && std::io::stdout().is_terminal();
    loop {
        let stats = measure(&home, &app.name)?;
        match (&stats, json) {
            (None, true) => println!(
                "{}",
                serde_json::json!({"app": app.name, "containers": [], "router": null})
            ),
            (None, false) => {
                println!("No shipway platform runs: nothing of {} is running (`shipway up` brings the current releases back)", app.name);
                return Ok(exit::SUCCESS);
            }
            (Some(s), true) if stream => println!("{}", serde_json::to_string(s).unwrap_or_default()),
            (Some(s), true) => super::tables::print_json(s),
            (Some(s), false) => {
                if redraw {
                    // Home and clear: the table is drawn again in place.
                    print!("\x1b[H\x1b[2J");
                }
                print!("{}", table(s, stream && !redraw));
            }
        }
        if !stream || stats.is_none() {
            return Ok(exit::SUCCESS);
        }
        std::thread::sleep(STREAM_INTERVAL);
    }
}

/// The app's figures from the running platform, or None when no platform runs.
pub fn measure(home: &Home, app: &str) -> Result<Option<AppStats>, Error> {
    match client::ask(home, &Request::Stats { app: app.to_string() })? {
        Some(Event::Stats { stats }) => Ok(Some(stats)),
        Some(Event::Error { message }) => Err(Error::Platform { message }),
        _ => Ok(None),
    }
}

/// The table of `stats`; `timed`: each row starts with the time, for a log of them.
fn table(stats: &AppStats, timed: bool) -> String {
    let mut out = String::new();
    let when = if timed {
        format!("{} ", crate::units::utc(std::time::SystemTime::now()))
    } else {
        String::new()
    };
    if stats.containers.is_empty() {
        out.push_str(&format!("{when}{} has no container running\n", stats.app));
        if let Some(router) = &stats.router {
            out.push_str(&format!("{when}{}\n", router_line(router)));
        }
        return out;
    }
    if !timed {
        out.push_str(&format!(
            "{:<12} {:<9} {:<5} {:>6} {:>10} {:>10} {:>10}\n",
            "NAME", "STATUS", "SIZE", "CPU", "MEMORY", "LIMIT", "HIGHEST"
        ));
    }
    for c in &stats.containers {
        out.push_str(&format!("{when}{}\n", row(c)));
    }
    if let Some(why) = &stats.unmeasured {
        out.push_str(&format!("{when}{why}\n"));
    }
    if let Some(router) = &stats.router {
        out.push_str(&format!("{when}{}\n", router_line(router)));
    }
    out
}

/// The router's figures in one line: `router (72 h): 1204 requests (12.5/min over 5 min), 3 5xx, response
/// time p50 1.2 ms, p95 4.8 ms, p99 31.0 ms`.
fn router_line(r: &RouterFigures) -> String {
    let times = r.response_time_ms.map_or_else(
        || "no response time yet".to_string(),
        |p| {
            format!(
                "response time p50 {}, p95 {}, p99 {}",
                ms(p.p50),
                ms(p.p95),
                ms(p.p99)
            )
        },
    );
    let plural = if r.requests == 1 { "" } else { "s" };
    format!(
        "router (72 h): {} request{plural} ({}/min over 5 min), {} 5xx, {times}",
        r.requests, r.requests_per_minute, r.errors
    )
}

/// A response time as a person reads it: 0.42 ms, 12.3 ms, 1,250 ms.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 1000.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn row(c: &ContainerStats) -> String {
    let bytes = |b: Option<u64>| b.map_or("-".to_string(), human_bytes);
    format!(
        "{:<12} {:<9} {:<5} {:>6} {:>10} {:>10} {:>10}",
        c.name,
        c.status,
        c.size.as_deref().unwrap_or("-"),
        c.cpu_percent.map_or("-".to_string(), |p| format!("{p:.1}%")),
        bytes(c.memory_bytes),
        bytes(c.memory_limit_bytes),
        bytes(c.memory_max_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_without_figures_shows_dashes() {
        let stats = AppStats {
            app: "demo".into(),
            containers: vec![
                ContainerStats {
                    name: "web-1".into(),
                    status: "running".into(),
                    size: Some("S".into()),
                    cpu_percent: Some(12.5),
                    memory_bytes: Some(64 * 1024 * 1024),
                    memory_limit_bytes: Some(256 * 1024 * 1024),
                    memory_max_bytes: Some(100 * 1024 * 1024),
                },
                ContainerStats {
                    name: "worker-1".into(),
                    status: "crashed".into(),
                    size: None,
                    cpu_percent: None,
                    memory_bytes: None,
                    memory_limit_bytes: None,
                    memory_max_bytes: None,
                },
            ],
            unmeasured: None,
            router: None,
        };
        let text = table(&stats, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(
            lines[1].contains("12.5%") && lines[1].contains("256.0 MiB"),
            "{text}"
        );
        assert!(lines[2].contains("crashed") && lines[2].ends_with('-'), "{text}");
        let timed = table(&stats, true);
        assert_eq!(timed.lines().count(), 2, "no header in a log: {timed}");
    }

    #[test]
    fn the_router_is_one_line_under_the_containers() {
        let router = RouterFigures {
            requests: 1204,
            errors: 3,
            requests_per_minute: 12.5,
            response_time_ms: Some(crate::platform::protocol::Percentiles {
                p50: 0.421,
                p95: 48.125,
                p99: 1250.0,
            }),
            ..RouterFigures::default()
        };
        let stats = AppStats {
            app: "demo".into(),
            containers: Vec::new(),
            unmeasured: None,
            router: Some(router.clone()),
        };
        let text = table(&stats, false);
        assert!(
            text.ends_with("router (72 h): 1204 requests (12.5/min over 5 min), 3 5xx, response time p50 0.42 ms, p95 48.1 ms, p99 1250 ms\n"),
            "{text}"
        );
        let idle = RouterFigures::default();
        assert!(
            router_line(&idle).ends_with("0 5xx, no response time yet"),
            "{}",
            router_line(&idle)
        );
    }
}
