//! The deploy pipeline up to a release (DESIGN.md "The deploy pipeline"), in one place:
//! source (intake) -> build (select, detect, compile) -> release (the slug folder,
//! `release.toml`, and `cron.toml`: the jobs of `cron.json`, checked after intake).
//! Each step takes the previous step's value and returns its own; the rollout then
//! takes the release. `deploy` and `build` both go through here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};

use crate::build::{self, BuildError, BuildRequest, Built};
use crate::config_vars::ConfigVars;
use crate::release::Release;
use crate::settings::Settings;
use crate::source::{self, SourceInfo};
use crate::state;
use crate::ui::{Output, Progress};

/// What to make a release of, as the user named it. One value from the client's request
/// (`protocol::DeployArgs`) through the deploy job to here, never copied field by field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    /// What was deployed: a folder, an archive, a .war/.jar.
    #[serde(rename = "input")]
    pub path: PathBuf,
    pub git_ref: Option<String>,
}

/// What to make a release of, and where.
pub struct ReleaseRequest {
    pub app: String,
    pub input: Input,
    /// `--buildpack` flags: they replace every other selection rule.
    pub buildpacks: Vec<String>,
    pub config_vars: ConfigVars,
    /// The release folder to create: the slug goes to `app/` inside it.
    pub release_dir: PathBuf,
    pub number: u32,
    pub cache_dir: PathBuf,
    pub request_id: String,
    /// The app's stack: resolved to its image (or the host) before the build.
    pub stack: String,
}

/// Time spent in each step, for the deploy overhead report.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    pub intake: Duration,
    pub detect: Duration,
    pub compile: Duration,
    pub total: Duration,
}

pub struct Released {
    pub release: Release,
    pub timings: Timings,
    /// See `Built::scratch`.
    pub scratch: tempfile::TempDir,
}

/// Take the source, build it, and write the release. On failure the release folder
/// is removed (and the build left the cache as it was).
pub fn release(
    req: &ReleaseRequest,
    settings: &Settings,
    out: &Output,
    cancel: &Receiver<()>,
    before_build: Option<BeforeBuild<'_>>,
) -> Result<Released, BuildError> {
    let result = run(req, settings, out, cancel, before_build);
    // The last build step ends here, failed or not, before anything else is said.
    out.progress(Progress::Done);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&req.release_dir);
    }
    result
}

/// A step of the caller's between the source step and the build, given the app's files
/// and what the source step found (its commit, for the deployment's record): what the
/// build is to use instead of the request's, when it changed it (an app's first
/// deployment applies scalingo.json's env and stack there), or why the deployment stops.
pub type BeforeBuild<'a> = &'a dyn Fn(&std::path::Path, &SourceInfo) -> Result<Changed, String>;

/// What a [`BeforeBuild`] step changed for the build.
#[derive(Debug, Default)]
pub struct Changed {
    pub config_vars: Option<ConfigVars>,
    pub stack: Option<String>,
}

fn run(
    req: &ReleaseRequest,
    settings: &Settings,
    out: &Output,
    cancel: &Receiver<()>,
    before_build: Option<BeforeBuild<'_>>,
) -> Result<Released, BuildError> {
    let started = Instant::now();
    let parent = req.release_dir.parent().unwrap_or(std::path::Path::new("/"));
    state::private_dir(parent)?;
    state::private_dir(&req.release_dir)?;
    let app_dir = Release::app_dir(&req.release_dir);

    let source = intake(req, &app_dir, out)?;
    // Checked before the build: a file the platform refuses fails in seconds.
    let jobs = scheduled_jobs(&app_dir, settings.cron_min_interval, out)?;
    let intake_time = started.elapsed();
    let changed = match before_build {
        Some(step) => step(&app_dir, &source).map_err(BuildError::BeforeBuild)?,
        None => Changed::default(),
    };
    let config_vars = changed.config_vars.unwrap_or_else(|| req.config_vars.clone());
    let stack = changed.stack.as_deref().unwrap_or(&req.stack);
    let runtime = crate::stack::choice::resolve(settings, stack, out).map_err(BuildError::Image)?;
    let built = build::build(
        &BuildRequest {
            app: req.app.clone(),
            app_dir,
            deployed: req.input.path.clone(),
            version: source.version.clone(),
            buildpacks: req.buildpacks.clone(),
            config_vars,
            cache_dir: req.cache_dir.clone(),
            scratch_in: parent.to_path_buf(),
            request_id: req.request_id.clone(),
            runtime: runtime.clone(),
        },
        settings,
        out,
        cancel,
    )?;
    let timings = Timings {
        intake: intake_time,
        detect: built.timings.detect,
        compile: built.timings.compile,
        total: Duration::ZERO,
    };
    let (release, scratch) = write_release(req, source, built, &runtime)?;
    crate::cron::save(&req.release_dir, &jobs)?;
    Ok(Released {
        release,
        scratch,
        timings: Timings {
            total: started.elapsed(),
            ..timings
        },
    })
}

/// The source step: the app's files into `app_dir`.
fn intake(req: &ReleaseRequest, app_dir: &std::path::Path, out: &Output) -> Result<SourceInfo, BuildError> {
    out.progress(Progress::Step {
        name: "source".into(),
    });
    let source = source::intake(
        &req.input.path,
        req.input.git_ref.as_deref(),
        build::project_dir(&req.config_vars),
        app_dir,
    )?;
    out.step(&format!("Source: {}", source.description));
    if let Some(v) = &source.version {
        out.detail(&format!("SOURCE_VERSION={v}"));
    }
    if let Some(ignored) = &source.ignored {
        out.detail(&format!("note: {}", ignored.describe()));
    }
    if !source.skipped.is_empty() {
        let shown: Vec<String> = source
            .skipped
            .iter()
            .take(10)
            .map(|p| p.display().to_string())
            .collect();
        let more = source.skipped.len() - shown.len();
        out.detail(&format!(
            "note: left out {} FIFO, socket or device file(s), which git cannot carry either: {}{}",
            source.skipped.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    Ok(source)
}

/// `cron.json`'s jobs, checked against the platform's rules; said when there are some.
fn scheduled_jobs(
    app_dir: &std::path::Path,
    min_interval: Duration,
    out: &Output,
) -> Result<Vec<crate::cron::Job>, BuildError> {
    let file = crate::cron::read(app_dir, min_interval)?;
    for note in &file.notes {
        out.detail(&format!("note: {note}"));
    }
    if !file.jobs.is_empty() {
        out.step(&format!(
            "Scheduler: {} job(s) from cron.json, times in UTC",
            file.jobs.len()
        ));
        for job in &file.jobs {
            out.detail(&format!(
                "{}  {}  (size {})",
                job.schedule_text, job.command, job.size
            ));
        }
    }
    Ok(file.jobs)
}

/// The release step: what starts the slug, beside it. The build's scratch folder is
/// handed on.
fn write_release(
    req: &ReleaseRequest,
    source: SourceInfo,
    built: Built,
    runtime: &crate::stack::Runtime,
) -> Result<(Release, tempfile::TempDir), BuildError> {
    let release = Release {
        number: req.number,
        created: crate::clock::now_secs(),
        app: req.app.clone(),
        source: source.description,
        git_ref: source.git_ref,
        version: source.version,
        buildpacks: built.buildpacks,
        process_types: built.process_types,
        config_defaults: built.config_defaults,
        addons: built.addons,
        slug_bytes: built.slug_bytes,
        stack: runtime.stack.clone(),
        stack_digest: runtime.digest().map(String::from),
    };
    release.save(&req.release_dir)?;
    Ok((release, built.scratch))
}
