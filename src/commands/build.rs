//! `shipway detect` and `shipway build`: the build half, without a platform.

use std::path::PathBuf;

use serde::Serialize;

use crate::build::{self, Reason};
use crate::buildpack::{ScriptContext, Verdict};
use crate::cli::EnvArgs;
use crate::error::{exit, Error};
use crate::pipeline::{self, Input, ReleaseRequest};
use crate::settings::{render_duration, Settings};
use crate::signals;
use crate::ui::Output;
use crate::units::human_duration;

use super::{env_args, home, source_path, AppChoice};

#[derive(Serialize)]
struct DetectRow {
    buildpack: String,
    verdict: &'static str,
    framework: Option<String>,
    /// The detect script's lines after the name: what the app asks for, what the host has.
    notes: Vec<String>,
    /// How `bin/detect` ended when it failed (`exited with code 2`), as `ps` says it.
    exit: Option<String>,
    stderr: Option<String>,
    duration_ms: u64,
    winner: bool,
}

pub fn detect(
    settings: &Settings,
    dir: Option<PathBuf>,
    flags: Vec<String>,
    app: Option<String>,
    env: &EnvArgs,
    json: bool,
) -> Result<i32, Error> {
    let input = source_path(dir)?;
    let mut vars = env_args(env)?;
    // A new app's stack, unless the app is named.
    let mut stack = crate::platform_numbers::DEFAULT_STACK.to_string();
    if let Some(app) = app {
        // The app's stored config vars (BUILDPACK_URL, BUILDPACK_NAME) apply too.
        let app = home(settings)?.existing_app(&app)?;
        let config = app.load_config()?;
        stack = config.stack().to_string();
        let mut stored = config.config_vars;
        stored.extend(vars);
        vars = stored;
    }
    let scratch = tempfile::tempdir().map_err(|source| Error::io("create", std::env::temp_dir(), source))?;
    let app_dir = scratch.path().join("app");
    crate::source::intake(&input, None, build::project_dir(&vars), &app_dir)
        .map_err(build::BuildError::from)?;

    let selection = build::select(&flags, &vars, &app_dir, &input)?;
    let out = if json { Output::new() } else { Output::stdout() };
    let cancel = signals::cancel_on_interrupt();
    let buildpacks = build::fetch_all(
        &selection,
        &app_dir,
        settings,
        scratch.path(),
        Some(&out),
        &cancel,
    )?;
    let home = build::BuildHome::new(settings, scratch.path(), &out)?;
    // As in a build: the stack's image as `/`, with the app and the buildpacks inside.
    let runtime = crate::stack::choice::on_disk(settings, &stack, &out);
    let mut env = build::build_env(settings, &runtime, "detect", None, "detect", home.seen_at());
    let plan = home.plan(
        &runtime,
        &crate::stack::choice::build_binds(&app_dir, scratch.path()),
    );
    // The bundled buildpacks add notes after the name (the version asked, what the host
    // has) only when asked: a build, which shows only the name, spares that work.
    env.push((build::DETECT_NOTES.to_string(), "1".to_string()));
    let ctx = ScriptContext {
        env: &env,
        deadline: crate::clock::deadline_in(settings.build_timeout),
        limit: render_duration(settings.build_timeout),
        cancel: &cancel,
        sandbox: plan.as_ref(),
    };
    let report = build::detect_all(&buildpacks, &app_dir, &ctx)?;

    // With an explicit selection every listed buildpack must apply; with detection, the first wins.
    let ok = match selection.reason {
        Reason::Detection => report.winner.is_some(),
        _ => report
            .detections
            .iter()
            .all(|d| matches!(d.verdict, Verdict::Detected { .. })),
    };
    if json {
        let rows: Vec<DetectRow> = report
            .detections
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (verdict, framework, notes, exit, stderr) = match &d.verdict {
                    Verdict::Detected { name, notes } => {
                        ("detected", Some(name.clone()), notes.clone(), None, None)
                    }
                    Verdict::NotDetected => ("not-detected", None, Vec::new(), None, None),
                    Verdict::Error { status, stderr } => (
                        "error",
                        None,
                        Vec::new(),
                        Some(status.clone()),
                        Some(stderr.clone()),
                    ),
                };
                DetectRow {
                    buildpack: d.buildpack.clone(),
                    verdict,
                    framework,
                    notes,
                    exit,
                    stderr,
                    duration_ms: u64::try_from(d.elapsed.as_millis()).unwrap_or(u64::MAX),
                    winner: Some(i) == report.winner && selection.reason == Reason::Detection,
                }
            })
            .collect();
        let doc = serde_json::json!({ "selection": selection.reason.to_string(), "candidates": rows, "applies": ok });
        super::tables::print_json(&doc);
        return Ok(if ok { exit::SUCCESS } else { exit::ERROR });
    }

    out.step(&format!(
        "Buildpack selection for {}: {}",
        input.display(),
        selection.reason
    ));
    for (i, d) in report.detections.iter().enumerate() {
        let mut text = match &d.verdict {
            Verdict::Detected { name, .. } => format!("detected: {name}"),
            Verdict::NotDetected => "not detected".to_string(),
            Verdict::Error { status, .. } => format!("error: bin/detect {status}"),
        };
        if selection.reason == Reason::Detection {
            match report.winner {
                Some(w) if w == i => text.push_str("   <- wins"),
                Some(w) if i > w && matches!(d.verdict, Verdict::Detected { .. }) => {
                    text.push_str("   (matches too, but comes later)")
                }
                _ => {}
            }
        }
        out.detail(&format!(
            "{:<12} {:<44} {:>7}",
            d.buildpack,
            text,
            human_duration(d.elapsed)
        ));
        if let Verdict::Detected { notes, .. } = &d.verdict {
            for note in notes {
                out.detail(&format!("             {note}"));
            }
        }
        if let Verdict::Error { stderr, .. } = &d.verdict {
            for line in stderr.lines().take(10) {
                out.detail(&format!("             | {line}"));
            }
        }
    }
    match (&selection.reason, report.winner) {
        (Reason::Detection, Some(w)) => {
            let others = report
                .detections
                .iter()
                .skip(w + 1)
                .filter(|d| matches!(d.verdict, Verdict::Detected { .. }))
                .count();
            let why = if others > 0 {
                format!(
                    ", first of {} that apply in the platform's order (set BUILDPACK_NAME to choose another)",
                    others + 1
                )
            } else {
                String::new()
            };
            out.step(&format!("{} wins{why}", report.detections[w].buildpack));
            // Which buildpack would build it: the official one for that language, or the
            // bundled one (said by `instead_of`).
            let dest = scratch.path().join("official");
            let chosen = crate::official::instead_of(
                buildpacks[w].clone(),
                settings,
                &runtime,
                &dest,
                Some(&out),
                None,
                &cancel,
            )
            .map_err(build::BuildError::from)?;
            if chosen.commit.is_none() {
                out.detail(&format!("built with shipway's bundled {} buildpack", chosen.name));
            }
        }
        (Reason::Detection, None) => {
            out.error("We didn't find the type of technology you are using...");
            out.error(
                "Add the file your language's buildpack looks for, or set BUILDPACK_NAME / BUILDPACK_URL.",
            );
        }
        (reason, _) if ok => out.step(&format!(
            "{} will build this app (chosen by {reason})",
            crate::buildpack_cache::redact(&selection.specs.join(", "))
        )),
        (reason, _) => out.error(&format!(
            "chosen by {reason}, but its bin/detect does not apply: the build would fail"
        )),
    }
    Ok(if ok { exit::SUCCESS } else { exit::ERROR })
}

pub fn build(
    settings: &Settings,
    source: Option<PathBuf>,
    choice: &AppChoice,
    git_ref: Option<String>,
    flags: Vec<String>,
    out_dir: Option<PathBuf>,
    env: &EnvArgs,
) -> Result<i32, Error> {
    let input = source_path(source)?;
    let name = choice.for_source(&input)?.name;
    let extra = env_args(env)?;
    let home = home(settings)?;
    let app = home.app(&name)?;
    app.create()?;
    let _lock = app.lock()?;
    let config = app.load_config()?;
    let stack = config.stack().to_string();
    let mut vars = config.config_vars;
    vars.extend(extra);

    let number = app.release_numbers().last().copied().unwrap_or(0) + 1;
    let release_dir = match &out_dir {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return Err(Error::Usage(format!(
                    "{} exists and is not empty: give --out a new folder",
                    dir.display()
                )));
            }
            let _ = std::fs::remove_dir(dir);
            std::path::absolute(dir).map_err(|source| Error::io("resolve", dir.clone(), source))?
        }
        None => app.release(number),
    };
    let out = Output::stdout();
    out.line(&format!("<-- Start build of {name} -->"));
    let request = ReleaseRequest {
        app: name.clone(),
        input: Input { path: input, git_ref },
        buildpacks: flags,
        config_vars: vars,
        release_dir: release_dir.clone(),
        number,
        cache_dir: app.cache(),
        request_id: format!("build-{name}-{number}"),
        stack,
    };
    let cancel = signals::cancel_on_interrupt();
    match pipeline::release(&request, settings, &out, &cancel, None) {
        Ok(released) => {
            out.line(&format!(
                "<-- Build complete: release {} in {} ({}) -->",
                released.release.number,
                release_dir.display(),
                human_duration(released.timings.total)
            ));
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            out.error(&e.to_string());
            let code = Error::from(e).exit_code();
            out.line(if code == exit::ABORTED {
                "<-- Build aborted -->"
            } else {
                "<-- Build failed: build-error -->"
            });
            Ok(code)
        }
    }
}
