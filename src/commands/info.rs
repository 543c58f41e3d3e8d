//! `open`, `apps-info` and `addons-info`: what an app is and where it answers, in the
//! Scalingo CLI's shapes (a `Settings | Value` table, `--json`). They read the app's
//! files, and the running platform for what runs; they change nothing.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use serde::Serialize;

use super::tables;
use crate::error::{exit, Error};
use crate::platform::protocol::AddonRow;
use crate::release::Release;
use crate::settings::Settings;
use crate::state::AppConfig;

/// The app's URL, opened in a browser when a person runs it on a terminal: `$BROWSER`
/// (a `:`-separated list, tried in turn, as `man` and `git` read it), else `xdg-open`.
/// Elsewhere (a script, a pipe) the URL is printed, as a value.
pub fn open(settings: &Settings, choice: &super::AppChoice) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let url = url(&app.load_config()?).ok_or_else(|| {
        Error::Usage(format!(
            "{} has no URL yet: `shipway deploy` gives it its router port",
            app.name
        ))
    })?;
    if !std::io::stdout().is_terminal() {
        tables::value(&url);
        return Ok(exit::SUCCESS);
    }
    match in_browser(&url) {
        Ok(browser) => {
            println!("Opened {url} with {browser}");
            Ok(exit::SUCCESS)
        }
        Err(tried) => {
            tables::value(&url);
            Err(Error::Usage(format!(
                "could not open it in a browser: {} (set BROWSER to one)",
                tried.join(", ")
            )))
        }
    }
}

/// Open `url` with `$BROWSER` (a `:`-separated list, tried in turn), else `xdg-open`:
/// the browser that did, or what each tried said.
pub fn in_browser(url: &str) -> Result<String, Vec<String>> {
    let browsers = std::env::var("BROWSER").unwrap_or_default();
    let mut tried = Vec::new();
    for browser in browsers
        .split(':')
        .filter(|b| !b.trim().is_empty())
        .chain(["xdg-open"])
    {
        // A `%s` in the command is where the URL goes (the BROWSER convention).
        let line = if browser.contains("%s") {
            browser.replace("%s", url)
        } else {
            format!("{browser} {}", crate::shell::shell_quoted(url))
        };
        match std::process::Command::new("sh").args(["-c", &line]).status() {
            Ok(s) if s.success() => return Ok(browser.trim().to_string()),
            Ok(s) => tried.push(format!("{} ({s})", browser.trim())),
            Err(e) => tried.push(format!("{} ({e})", browser.trim())),
        }
    }
    Err(tried)
}

/// `http://127.0.0.1:PORT/`, once the app has a router port.
fn url(config: &AppConfig) -> Option<String> {
    config.url().map(|u| u + "/")
}

#[derive(Serialize)]
struct AppInfo {
    name: String,
    stack: String,
    status: &'static str,
    url: Option<String>,
    release: Option<u32>,
    git_ref: Option<String>,
    formation: BTreeMap<String, u32>,
    addons: Vec<AddonRow>,
}

/// `apps-info`: stack, status, URL, formation, release and addons of the app.
pub fn apps_info(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let config = app.load_config()?;
    let containers = super::ps::containers(&home, &app.name)?.unwrap_or_default();
    let release = match app.current() {
        Some(n) => Some(Release::load(&app.release(n))?),
        None => None,
    };
    let formation = match &release {
        Some(r) => crate::rollout::amounts(r, &config.formation)
            .into_iter()
            .collect(),
        None => config.formation.clone(),
    };
    let info = AppInfo {
        name: app.name.clone(),
        stack: config.stack().to_string(),
        status: crate::platform::protocol::app_status(&containers),
        url: url(&config),
        release: release.as_ref().map(|r| r.number),
        git_ref: release.as_ref().and_then(|r| r.git_ref.clone()),
        formation,
        addons: super::addons::rows_or_stored(&home, &app)?,
    };
    if json {
        tables::print_json(&info);
        return Ok(exit::SUCCESS);
    }
    let formation = if info.formation.is_empty() {
        "-".to_string()
    } else {
        let amounts: Vec<String> = info.formation.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        amounts.join(", ")
    };
    let release = match (&info.release, &info.git_ref) {
        (Some(n), Some(r)) => format!("{n} ({})", crate::source::short(r)),
        (Some(n), None) => n.to_string(),
        _ => "- (not deployed yet)".to_string(),
    };
    let addons = if info.addons.is_empty() {
        "-".to_string()
    } else {
        let names: Vec<String> = info
            .addons
            .iter()
            .map(|a| format!("{} {} ({})", a.addon, a.id, a.status))
            .collect();
        names.join(", ")
    };
    tables::settings(&[
        ("Stack", info.stack.clone()),
        ("Status", info.status.to_string()),
        ("URL", info.url.clone().unwrap_or_else(|| "-".into())),
        ("Release", release),
        ("Formation", formation),
        ("Addons", addons),
    ]);
    Ok(exit::SUCCESS)
}

#[derive(Serialize)]
struct AddonInfo {
    #[serde(flatten)]
    row: AddonRow,
    config_vars: Vec<&'static str>,
}

/// `addons-info ID`: one addon (by its ID or its kind), its plan, status, port and the
/// config vars it sets.
pub fn addons_info(
    settings: &Settings,
    choice: &super::AppChoice,
    id: String,
    json: bool,
) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let addon = crate::addon::find(&app, &id).map_err(|e| Error::Usage(e.to_string()))?;
    let row = super::addons::rows_or_stored(&home, &app)?
        .into_iter()
        .find(|r| r.id == addon.id)
        .ok_or_else(|| Error::Usage(format!("{} has no addon {id}", app.name)))?;
    let info = AddonInfo {
        row,
        config_vars: addon.kind.vars().to_vec(),
    };
    if json {
        tables::print_json(&info);
        return Ok(exit::SUCCESS);
    }
    tables::settings(&[
        ("Addon Provider", info.row.addon.clone()),
        ("Plan", info.row.plan.clone()),
        ("Status", info.row.status.clone()),
        ("ID", info.row.id.clone()),
        ("Address", format!("127.0.0.1:{}", info.row.port)),
        ("Config vars", info.config_vars.join(", ")),
    ]);
    Ok(exit::SUCCESS)
}
