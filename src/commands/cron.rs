//! `shipway cron-tasks` (the jobs of the current release's `cron.json`, their last and
//! next runs) and `shipway cron-run JOB` (one job now, through the platform, recorded
//! like a scheduled run; its exit status is passed through).

use super::tables::{self, CronTaskRow, LastRunRow};
use crate::cron::{self, schedule};
use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::Request;
use crate::settings::Settings;

pub fn tasks(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let jobs = match app.current() {
        Some(n) => cron::load(&app.release(n)).map_err(|e| Error::Platform {
            message: e.to_string(),
        })?,
        None => Vec::new(),
    };
    // Next runs are the running platform's: without one, nothing runs.
    let platform = client::ask(&home, &Request::Status)?.is_some();
    let runs = cron::Runs::load(&app.root);
    let now = cron::now(settings.cron_clock_ahead);
    let rows: Vec<CronTaskRow> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let next = platform.then(|| j.schedule.next_after(now)).flatten();
            CronTaskRow {
                job: i + 1,
                schedule: j.schedule_text.clone(),
                command: j.command.clone(),
                size: j.size.clone(),
                last_run: runs.last.get(&j.line).map(|r| LastRunRow {
                    started: schedule::render(r.started),
                    started_at: rfc3339(r.started),
                    exit: r.exit.clone(),
                    code: r.code,
                    duration_ms: r.duration_ms,
                    trigger: r.trigger.clone(),
                }),
                next_run: next.map(schedule::render),
                next_run_at: next.map(rfc3339),
            }
        })
        .collect();
    if json {
        tables::print_json(&rows);
    } else {
        tables::cron_tasks(&app.name, &rows, platform);
    }
    Ok(exit::SUCCESS)
}

/// Unix seconds as every `--json` gives a time (docs/cli.md).
fn rfc3339(time: schedule::UnixTime) -> String {
    let secs = u64::try_from(time).unwrap_or(0);
    crate::units::utc(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

pub fn run(settings: &Settings, choice: &super::AppChoice, job: String) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    client::stream(&home, Request::CronRun { app: app.name, job })
}
