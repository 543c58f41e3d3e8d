//! The build: from a source to a release folder, as the platform builds (PLATFORM.md
//! §1–3). Source intake, buildpack selection (BUILDPACK_URL, BUILDPACK_NAME,
//! `.buildpacks`, then detection in the official order), compile with the app's cache
//! and ENV_DIR, `export` chaining, release YAML, Procfile, `.slugignore`, slug size.
//!
//! It takes the app's files the source step took, and returns what the release records
//! ([`Built`]); it neither takes the source nor writes the release (the pipeline's
//! other steps), and never starts the app: that is the rollout's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::buildpack::{self, Buildpack, BuildpackError, Detection, Locator, ScriptContext, Verdict};
use crate::buildpack_cache::{redact, BuildpackCache, Limits};
use crate::config_vars::ConfigVars;
use crate::io_error::{io, IoError};
use crate::procfile::{Procfile, ProcfileError};
use crate::sandbox::Sandbox;
use crate::settings::{render_duration, Settings};
use crate::shell::shell_quoted;
use crate::source::{self, SourceError};
use crate::state::{self, StateError};
use crate::ui::{Output, Progress};
use crate::units::human_bytes;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Buildpack(#[from] BuildpackError),
    #[error("We didn't find the type of technology you are using...\n{details}")]
    NoMatch { details: String },
    #[error("App not compatible with buildpack: {spec}\n(its bin/detect {verdict})")]
    NotCompatible { spec: String, verdict: String },
    #[error(".buildpacks lists no buildpack: add one URL or path per line")]
    EmptyBuildpacks,
    /// An error about one buildpack the user named: where they named it (`.buildpacks
    /// line 3`, `BUILDPACK_URL`), which is what they fix.
    #[error("{origin}: {source}")]
    Named { origin: String, source: Box<BuildError> },
    #[error(".buildpacks: {0}")]
    BuildpacksFile(#[from] source::AppFileError),
    /// The buildpack the BUILDPACK_URL config var chose failed: the user's next step is
    /// the var itself, which detection then replaces.
    #[error("{source}\nBUILDPACK_URL chose this buildpack: `shipway env-unset -a {app} BUILDPACK_URL` builds with the one detection picks, then deploy again")]
    ByBuildpackUrl { app: String, source: Box<BuildError> },
    #[error(transparent)]
    Procfile(#[from] ProcfileError),
    #[error(transparent)]
    Cron(#[from] crate::cron::CronError),
    #[error(transparent)]
    Slugignore(#[from] crate::slugignore::SlugignoreError),
    /// What the caller's step before the build refused (`pipeline::BeforeBuild`).
    #[error("{0}")]
    BeforeBuild(String),
    #[error(transparent)]
    State(#[from] StateError),
    /// A name stored before every source of config vars was checked (an older shipway
    /// took `scalingo.json`'s keys as they came): it would name a path, not a file of
    /// ENV_DIR.
    #[error("{source}: it was stored before shipway checked every name, and it is not given to the buildpacks. Remove it with `shipway env-unset -a {app} {quoted}` (and set it again under a valid name), then deploy again")]
    StoredName {
        app: String,
        quoted: String,
        source: crate::config_vars::ConfigVarError,
    },
    #[error("{buildpack}'s bin/release: {source}")]
    ReleaseVar {
        buildpack: String,
        source: crate::config_vars::ConfigVarError,
    },
    /// The stack's image is on disk but cannot be entered: what it is and the fix.
    #[error("{0}")]
    Image(String),
    #[error("the image is too large: {size}, more than the {limit} allowed (the slug_limit setting; the platform's limit is 2 GiB); add what the app does not need at run time to .slugignore")]
    SlugTooLarge { size: String, limit: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl BuildError {
    pub fn was_cancelled(&self) -> bool {
        match self {
            BuildError::Buildpack(
                BuildpackError::Cancelled { .. } | BuildpackError::FetchCancelled { .. },
            ) => true,
            BuildError::Named { source, .. } | BuildError::ByBuildpackUrl { source, .. } => {
                source.was_cancelled()
            }
            _ => false,
        }
    }
}

impl From<BuildError> for crate::error::Error {
    fn from(e: BuildError) -> Self {
        crate::error::Error::Build {
            cancelled: e.was_cancelled(),
            source: Box::new(e),
        }
    }
}

/// Why these buildpacks were chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Flag,
    BuildpackUrl,
    BuildpackName,
    DotBuildpacks,
    Detection,
    /// A `.war` or `.jar` file was deployed.
    DeployedFile,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Flag => "--buildpack",
            Reason::BuildpackUrl => "the BUILDPACK_URL config var",
            Reason::BuildpackName => "the BUILDPACK_NAME config var",
            Reason::DotBuildpacks => "the .buildpacks file",
            Reason::Detection => "detection",
            Reason::DeployedFile => "the deployed .war or .jar file",
        })
    }
}

/// The buildpacks a build will run, in order, with the reason.
#[derive(Debug, Clone)]
pub struct Selection {
    pub specs: Vec<String>,
    pub reason: Reason,
    /// For [`Reason::DotBuildpacks`], the line of each spec in the file; empty otherwise.
    pub lines: Vec<usize>,
}

impl Selection {
    fn of(specs: Vec<String>, reason: Reason) -> Selection {
        Selection {
            specs,
            reason,
            lines: Vec::new(),
        }
    }

    /// `error` about the `i`th buildpack, with where the user named it: the `.buildpacks`
    /// line, the config var or the flag. Detected buildpacks were named by nobody.
    fn about(&self, i: usize, error: BuildError) -> BuildError {
        let origin = match (&self.reason, self.lines.get(i)) {
            (Reason::DotBuildpacks, Some(line)) => format!(".buildpacks line {line}"),
            (Reason::BuildpackUrl, _) => "BUILDPACK_URL".to_string(),
            (Reason::BuildpackName, _) => "BUILDPACK_NAME".to_string(),
            (Reason::Flag, _) => "--buildpack".to_string(),
            _ => return error,
        };
        BuildError::Named {
            origin,
            source: Box::new(error),
        }
    }
}

/// Apply the platform's selection rules, first one that applies (PLATFORM.md §2).
/// Detection is not run here: for [`Reason::Detection`], `specs` are the candidates in the
/// platform's order.
pub fn select(
    flags: &[String],
    vars: &ConfigVars,
    app_dir: &Path,
    deployed: &Path,
) -> Result<Selection, BuildError> {
    if !flags.is_empty() {
        return Ok(Selection::of(flags.to_vec(), Reason::Flag));
    }
    if let Some(url) = vars.get("BUILDPACK_URL").filter(|u| !u.trim().is_empty()) {
        return Ok(Selection::of(vec![url.trim().to_string()], Reason::BuildpackUrl));
    }
    if let Some(name) = vars.get("BUILDPACK_NAME").filter(|u| !u.trim().is_empty()) {
        return Ok(Selection::of(
            vec![name.trim().to_string()],
            Reason::BuildpackName,
        ));
    }
    let listed = app_dir.join(".buildpacks");
    if let Some(bytes) = source::read_app_file(&listed, source::APP_FILE_LIMIT)? {
        let text = String::from_utf8_lossy(&bytes);
        let mut selection = Selection::of(Vec::new(), Reason::DotBuildpacks);
        for (i, line) in text.lines().enumerate() {
            let line_text = line.trim_end_matches('\r').trim();
            if !line_text.is_empty() && !line_text.starts_with('#') {
                selection.specs.push(line_text.to_string());
                selection.lines.push(i + 1);
            }
        }
        if selection.specs.is_empty() {
            return Err(BuildError::EmptyBuildpacks);
        }
        return Ok(selection);
    }
    // A deployed .war or .jar is built by the platform's buildpack for it, not detected.
    if let Some(name) = source::java_file_buildpack(deployed) {
        return Ok(Selection::of(vec![name.to_string()], Reason::DeployedFile));
    }
    Ok(Selection::of(
        buildpack::DETECTION_ORDER.iter().map(|s| s.to_string()).collect(),
        Reason::Detection,
    ))
}

/// PROJECT_DIR, when set: the subfolder of the source that is the app (PLATFORM.md §1).
pub fn project_dir(vars: &ConfigVars) -> Option<&str> {
    vars.get("PROJECT_DIR")
        .map(String::as_str)
        .filter(|p| !p.is_empty())
}

/// The clean environment of a buildpack script (PLATFORM.md §2): nothing of the
/// host's but PATH and the variables the user listed.
/// What tells buildpacks that the nearest runtime version found may stand in for the one asked.
pub const NEAREST_VERSION: &str = "SHIPWAY_NEAREST_VERSION";

/// Set for `shipway detect` only: bundled buildpacks print their notes after the name.
pub const DETECT_NOTES: &str = "SHIPWAY_DETECT_NOTES";

pub fn build_env(
    settings: &Settings,
    runtime: &crate::stack::Runtime,
    app: &str,
    version: Option<&str>,
    request_id: &str,
    home: &Path,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), crate::container::system_path(runtime)),
        ("HOME".to_string(), home.display().to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("STACK".to_string(), runtime.stack_var(settings)),
        ("REQUEST_ID".to_string(), request_id.to_string()),
        ("APP".to_string(), app.to_string()),
        ("BUILDPACK_LOG_FILE".to_string(), "/dev/null".to_string()),
    ];
    if let Some(v) = version {
        env.push(("SOURCE_VERSION".to_string(), v.to_string()));
    }
    if settings.nearest_version {
        // Not a platform variable: shipway's own permission for bundled buildpacks to use
        // the nearest runtime version this host has (buildpacks/README.md).
        env.push((NEAREST_VERSION.to_string(), "1".to_string()));
    }
    for name in &settings.pass_env {
        if let Ok(value) = std::env::var(name) {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value));
        }
    }
    env
}

/// HOME of a build's scripts: `/app` as on the platform, a folder of this build's own
/// that they see there, so that what buildpacks leave in it (links to BUILD_DIR, caches)
/// reaches neither the host's `/app` nor another build. Without a sandbox, HOME is that
/// folder itself.
pub struct BuildHome {
    dir: PathBuf,
    sandboxed: bool,
}

impl BuildHome {
    /// In `scratch`; says once why there is no sandbox when the machine is the reason.
    pub fn new(settings: &Settings, scratch: &Path, out: &Output) -> Result<BuildHome, BuildError> {
        let sandbox = Sandbox::resolve(settings.sandbox)?;
        for warning in [sandbox.warning(), sandbox.layer_warning()].into_iter().flatten() {
            out.detail(&format!("note: {warning}"));
        }
        let dir = scratch.join("app");
        state::private_dir(&dir)?;
        Ok(BuildHome {
            dir,
            sandboxed: sandbox.is_on(),
        })
    }

    /// What scripts see, when sandboxed: this folder at `/app`, and the image of
    /// `runtime` as `/` with `binds` (the build's folders) at their own paths.
    pub fn plan(&self, runtime: &crate::stack::Runtime, binds: &[PathBuf]) -> Option<crate::process::Plan> {
        self.sandboxed.then(|| crate::process::Plan {
            app: self.dir.clone(),
            layer: false,
            root: runtime.rootfs().map(Path::to_path_buf),
            binds: match runtime.image {
                Some(_) => binds.to_vec(),
                None => Vec::new(),
            },
        })
    }

    /// HOME, as the scripts see it.
    pub fn seen_at(&self) -> &Path {
        if self.sandboxed {
            Path::new(crate::container::APP)
        } else {
            &self.dir
        }
    }
}

/// The outcome of running every candidate's detect.
pub struct DetectReport {
    pub detections: Vec<Detection>,
    /// Index of the winner in `detections`.
    pub winner: Option<usize>,
}

/// Run `bin/detect` of each buildpack in order; the first that applies wins.
pub fn detect_all(
    buildpacks: &[Buildpack],
    app_dir: &Path,
    ctx: &ScriptContext<'_>,
) -> Result<DetectReport, BuildError> {
    // Every candidate's verdict is reported, so they all run: side by side, since each
    // only reads BUILD_DIR. The winner is still the first in the platform's order.
    let detections = std::thread::scope(|scope| {
        let running: Vec<_> = buildpacks
            .iter()
            .map(|bp| scope.spawn(move || bp.detect(app_dir, ctx)))
            .collect();
        running
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let winner = detections
        .iter()
        .position(|d| matches!(d.verdict, Verdict::Detected { .. }));
    Ok(DetectReport { detections, winner })
}

/// Fetch fresh copies of the selected buildpacks into `scratch`, saying so for custom ones
/// (credentials redacted). `cancel` calls every fetch off.
pub fn fetch_all(
    selection: &Selection,
    app_dir: &Path,
    settings: &Settings,
    scratch: &Path,
    out: Option<&Output>,
    cancel: &Receiver<()>,
) -> Result<Vec<Buildpack>, BuildError> {
    let cache = BuildpackCache::with_limits(&settings.home, Limits::of_build(settings, cancel));
    let mut buildpacks = Vec::new();
    for (i, spec) in selection.specs.iter().enumerate() {
        let locator = Locator::parse(
            spec,
            &std::env::current_dir().unwrap_or_else(|_| app_dir.to_path_buf()),
        );
        if let (Some(out), true) = (out, locator.is_custom()) {
            out.step(&format!("Cloning custom buildpack: {}", redact(spec)));
        }
        let dest = scratch.join(format!("buildpack-{i}"));
        let bp = buildpack::fetch(spec, &locator, settings.buildpacks_dir.as_deref(), &cache, &dest)
            .map_err(|e| selection.about(i, e.into()))?;
        if let Some(out) = out {
            if let Some(commit) = &bp.commit {
                out.detail(&format!("at commit {}", source::short(commit)));
            }
            if let Some(note) = &bp.note {
                out.detail(&format!("note: {note}"));
            }
        }
        buildpacks.push(bp);
    }
    Ok(buildpacks)
}

/// What to build: an app's files, already taken from its source.
pub struct BuildRequest {
    pub app: String,
    /// The app's files (the source step's value): compiled in place into the slug.
    pub app_dir: PathBuf,
    /// What was deployed (a folder, an archive, a .war/.jar): selection looks at it.
    pub deployed: PathBuf,
    /// SOURCE_VERSION, when the source knows its commit.
    pub version: Option<String>,
    /// `--buildpack` flags: they replace every other selection rule.
    pub buildpacks: Vec<String>,
    pub config_vars: ConfigVars,
    pub cache_dir: PathBuf,
    /// Where the build's scratch folder goes: beside the release, so that renames stay
    /// on one filesystem.
    pub scratch_in: PathBuf,
    pub request_id: String,
    /// The stack it builds on: the image its scripts see as `/`, or the host's.
    pub runtime: crate::stack::Runtime,
}

/// Time spent, for the deploy overhead report.
#[derive(Debug, Default, Clone)]
pub struct BuildTimings {
    pub detect: Duration,
    pub compile: Duration,
}

/// What a build makes of the app's files (the slug, in place), for the release.
pub struct Built {
    /// The buildpacks that built it, as the release records them.
    pub buildpacks: Vec<String>,
    /// The Procfile's types over the buildpack's defaults.
    pub process_types: BTreeMap<String, String>,
    /// `config_vars` from bin/release.
    pub config_defaults: BTreeMap<String, String>,
    pub addons: Vec<String>,
    pub slug_bytes: u64,
    pub timings: BuildTimings,
    /// The build's scratch folder (the buildpacks' copies, the build's `/app`), removed
    /// when dropped. It is handed back rather than removed here so that a deploy can
    /// remove it off its critical path: a few milliseconds for the nine bundled
    /// buildpacks.
    pub scratch: tempfile::TempDir,
}

/// Build the app's files of `req` into a slug, in place. On failure the cache is left
/// as it was before the build.
pub fn build(
    req: &BuildRequest,
    settings: &Settings,
    out: &Output,
    cancel: &Receiver<()>,
) -> Result<Built, BuildError> {
    build_selected(req, settings, out, cancel).map_err(|e| {
        let by_url = req.buildpacks.is_empty()
            && req
                .config_vars
                .get("BUILDPACK_URL")
                .is_some_and(|u| !u.trim().is_empty());
        // The buildpack's own failures: fetching it, its detect, compile or release.
        let of_the_buildpack = matches!(
            e,
            BuildError::Buildpack(_)
                | BuildError::Named { .. }
                | BuildError::NotCompatible { .. }
                | BuildError::ReleaseVar { .. }
        );
        if by_url && of_the_buildpack && !e.was_cancelled() {
            BuildError::ByBuildpackUrl {
                app: req.app.clone(),
                source: Box::new(e),
            }
        } else {
            e
        }
    })
}

fn build_selected(
    req: &BuildRequest,
    settings: &Settings,
    out: &Output,
    cancel: &Receiver<()>,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    let mut timings = BuildTimings::default();
    let parent = req.scratch_in.as_path();
    state::private_dir(parent)?;
    let scratch = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(parent)
        .map_err(io("create a folder in", parent))?;
    let app_dir = req.app_dir.clone();

    let home = BuildHome::new(settings, scratch.path(), out)?;
    let plan = home.plan(
        &req.runtime,
        &crate::stack::choice::build_binds(&app_dir, scratch.path()),
    );
    let env = build_env(
        settings,
        &req.runtime,
        &req.app,
        req.version.as_deref(),
        &req.request_id,
        home.seen_at(),
    );
    let deadline = crate::clock::saturating_add(started, settings.build_timeout);
    let ctx = ScriptContext {
        env: &env,
        deadline,
        limit: render_duration(settings.build_timeout),
        cancel,
        sandbox: plan.as_ref(),
    };

    // Selection, then detection where the platform detects.
    let detect_started = Instant::now();
    // Beside the app's cache: the note on the official buildpack is said once per app.
    let noted = req
        .cache_dir
        .parent()
        .map(|app| app.join("official-buildpack-note"));
    out.progress(Progress::Step {
        name: "detect".into(),
    });
    let selection = select(&req.buildpacks, &req.config_vars, &app_dir, &req.deployed)?;
    if selection.reason == Reason::DeployedFile {
        out.step(&format!(
            "Using buildpack {} for the deployed file (BUILDPACK_NAME or BUILDPACK_URL chooses another)",
            selection.specs[0]
        ));
    }
    let mut buildpacks;
    let mut detect_each = false;
    match selection.reason {
        Reason::Detection => {
            let candidates = fetch_all(&selection, &app_dir, settings, scratch.path(), None, cancel)?;
            let report = detect_all(&candidates, &app_dir, &ctx)?;
            let winner = report.winner.and_then(|w| match &report.detections[w].verdict {
                Verdict::Detected { name, .. } => Some((w, name.clone())),
                _ => None,
            });
            let Some((w, framework)) = winner else {
                return Err(BuildError::NoMatch {
                    details: no_match_details(&report),
                });
            };
            out.step(&format!("{framework} app detected"));
            let others: Vec<String> = report
                .detections
                .iter()
                .skip(w + 1)
                .filter_map(|d| match &d.verdict {
                    Verdict::Detected { name, .. } => Some(format!("{} ({name})", d.buildpack)),
                    _ => None,
                })
                .collect();
            if !others.is_empty() {
                out.detail(&format!(
                    "note: {} matched too; {} wins because it comes first in the platform's order. Set BUILDPACK_NAME to choose.",
                    others.join(", "),
                    report.detections[w].buildpack
                ));
            }
            buildpacks = candidates;
            let winner = buildpacks.swap_remove(w);
            let dest = scratch.path().join("official");
            buildpacks = vec![crate::official::instead_of(
                winner,
                settings,
                &req.runtime,
                &dest,
                Some(out),
                noted.as_deref(),
                cancel,
            )?];
        }
        Reason::BuildpackName => {
            let named = fetch_all(&selection, &app_dir, settings, scratch.path(), Some(out), cancel)?;
            out.step(&format!("Using buildpack {} (BUILDPACK_NAME)", named[0].name));
            let dest = scratch.path().join("official");
            buildpacks = named
                .into_iter()
                .map(|bp| {
                    crate::official::instead_of(
                        bp,
                        settings,
                        &req.runtime,
                        &dest,
                        Some(out),
                        noted.as_deref(),
                        cancel,
                    )
                })
                .collect::<Result<_, _>>()?;
        }
        _ => {
            // Each listed buildpack's detect runs just before its compile (below), so that
            // it sees what the previous ones built, as the platform's multi-buildpack does.
            buildpacks = fetch_all(&selection, &app_dir, settings, scratch.path(), Some(out), cancel)?;
            detect_each = true;
        }
    }
    timings.detect = detect_started.elapsed();

    // Compile with a working copy of the cache: a failed build must not leave it half-written.
    let compile_started = Instant::now();
    out.progress(Progress::Step {
        name: "compile".into(),
    });
    let cache_work = scratch.path().join("cache");
    if req.cache_dir.is_dir() {
        out.line("Fetching deployment cache");
        // Files the buildpacks marked read-only (runtimes) are linked, not copied.
        source::copy_cache(&req.cache_dir, &cache_work)?;
    } else {
        state::private_dir(&cache_work)?;
    }
    let env_dir = scratch.path().join("env");
    write_env_dir(&env_dir, &req.config_vars, &req.app)?;

    let mut compile_env = env.clone();
    for (i, bp) in buildpacks.iter().enumerate() {
        let ctx = ctx.with_env(&compile_env);
        if detect_each {
            match bp.detect(&app_dir, &ctx)?.verdict {
                Verdict::Detected { name, .. } => out.step(&format!("{name} app detected")),
                other => {
                    let error = BuildError::NotCompatible {
                        spec: bp.spec.clone(),
                        verdict: describe_verdict(&other),
                    };
                    return Err(selection.about(i, error));
                }
            }
        }
        bp.compile(&app_dir, &cache_work, &env_dir, &ctx, out.sink())?;
        if let Some(exported) = bp.exported_env(&compile_env)? {
            compile_env = exported;
        }
    }
    let Some(last) = buildpacks.last() else {
        return Err(BuildError::EmptyBuildpacks);
    };
    let release_ctx = ctx.with_env(&compile_env);
    let release_yaml = last.release(&app_dir, &release_ctx, out.sink())?;
    for name in release_yaml.config_vars.keys() {
        crate::config_vars::check_name(name).map_err(|source| BuildError::ReleaseVar {
            buildpack: last.name.clone(),
            source,
        })?;
    }
    timings.compile = compile_started.elapsed();

    for addon in &release_yaml.addons {
        out.detail(&format!(
            "addon {addon} requested by the buildpack: provisioned at the app's first deployment"
        ));
    }
    let process_types = process_types(&app_dir, &release_yaml.default_process_types, out)?;

    let removed = crate::slugignore::apply(&app_dir)?;
    if !removed.entries.is_empty() {
        out.step(&format!(
            "Removed {} entries listed in .slugignore",
            removed.entries.len()
        ));
    }

    // An unreadable part of the slug fails the build rather than escaping the limit.
    let (_, slug_bytes) = source::count_files(&app_dir)?;
    if slug_bytes > settings.slug_limit {
        return Err(BuildError::SlugTooLarge {
            size: human_bytes(slug_bytes),
            limit: human_bytes(settings.slug_limit),
        });
    }
    out.step(&format!("Image size is {}", human_bytes(slug_bytes)));

    // Only now has the build succeeded, every check included: its cache replaces the
    // previous one. Any earlier, and a failure (the slug size, say) would leave the next
    // build a cache that no successful build wrote.
    out.step("Build complete, uploading deployment cache.");
    // The previous cache goes with the scratch folder, removed beside the boot: a cache of
    // thousands of linked runtime files takes a while to unlink.
    replace_dir(
        &cache_work,
        &req.cache_dir,
        &scratch.path().join("previous-cache"),
    )?;

    Ok(Built {
        // A buildpack fetched by URL is recorded with the commit that built the slug.
        buildpacks: buildpacks
            .iter()
            .map(|b| match &b.commit {
                Some(commit) => format!("{} (commit {commit})", b.spec),
                None => b.spec.clone(),
            })
            .collect(),
        process_types,
        config_defaults: release_yaml.config_vars,
        addons: release_yaml.addons,
        slug_bytes,
        timings,
        scratch,
    })
}

/// The Procfile's types over the buildpack's defaults, reported the platform's way.
fn process_types(
    app_dir: &Path,
    defaults: &BTreeMap<String, String>,
    out: &Output,
) -> Result<BTreeMap<String, String>, BuildError> {
    let mut types = defaults.clone();
    match Procfile::load(app_dir)? {
        Some(procfile) => {
            for (name, command) in procfile.types {
                types.insert(name, command);
            }
        }
        None if !defaults.is_empty() => {
            out.step(&format!(
                "Default types for buildpack -> {}",
                defaults.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        None => {}
    }
    if types.remove("release").is_some() {
        out.detail("note: the Procfile's `release:` type means nothing on this platform; it is ignored (use `postdeploy:`)");
    }
    if types.is_empty() {
        out.detail("warning: no process type declared (no Procfile, no buildpack default): nothing will run");
    } else {
        out.step(&format!(
            "Procfile declares types -> {}",
            types.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(types)
}

/// ENV_DIR: one file per config var, content = value, no newline added (0600 in 0700).
/// It lives as long as the build, so nothing is waited onto the disk. shipway's own
/// variables of the scripts' environment are settings: a config var of that name is left
/// out, so that a buildpack exporting ENV_DIR (as the Node.js one does) cannot turn one on.
/// Every name is checked by the one rule before anything is written: it is the only
/// writer of ENV_DIR, and a name that fails it (stored by an older shipway) could name a
/// path outside.
fn write_env_dir(dir: &Path, vars: &ConfigVars, app: &str) -> Result<(), BuildError> {
    for name in vars.keys() {
        crate::config_vars::check_name(name).map_err(|source| BuildError::StoredName {
            app: app.to_string(),
            quoted: shell_quoted(name),
            source,
        })?;
    }
    state::private_dir(dir)?;
    for (name, value) in vars {
        if name == NEAREST_VERSION || name == DETECT_NOTES {
            continue;
        }
        state::write_atomic_unsynced(&dir.join(name), value.as_bytes(), 0o600)?;
    }
    Ok(())
}

/// Replace `target` with `new` (same filesystem): rename aside, rename in, then move the
/// old one to `trash` for its owner to remove (or remove it, where it cannot be moved).
fn replace_dir(new: &Path, target: &Path, trash: &Path) -> Result<(), BuildError> {
    let old = target.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(target, &old).map_err(io("move aside", target))?;
    }
    std::fs::rename(new, target).map_err(io("replace", target))?;
    if std::fs::rename(&old, trash).is_err() {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

pub fn describe_verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Detected { name, .. } => format!("detected {name}"),
        Verdict::NotDetected => "did not detect it (exit 1)".into(),
        Verdict::Error { status, stderr } if stderr.is_empty() => format!("failed: {status}"),
        Verdict::Error { status, stderr } => format!("failed: {status}: {}", stderr.trim()),
    }
}

fn no_match_details(report: &DetectReport) -> String {
    let mut lines = vec!["No buildpack's bin/detect applies to this app:".to_string()];
    for d in &report.detections {
        lines.push(format!("  {:<8} {}", d.buildpack, describe_verdict(&d.verdict)));
    }
    lines.push(
        "Add the file your language's buildpack looks for (package.json, requirements.txt, ...),".into(),
    );
    lines.push("or choose a buildpack with the BUILDPACK_NAME or BUILDPACK_URL config var.".into());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_dir_holds_the_config_vars_but_not_shipways_own_settings() {
        let dir = tempfile::tempdir().unwrap();
        let env_dir = dir.path().join("env");
        let vars: ConfigVars = [
            ("GREETING".to_string(), "hi".to_string()),
            (NEAREST_VERSION.to_string(), "1".to_string()),
            (DETECT_NOTES.to_string(), "1".to_string()),
        ]
        .into();
        write_env_dir(&env_dir, &vars, "app").unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&env_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["GREETING"]);
        assert_eq!(std::fs::read_to_string(env_dir.join("GREETING")).unwrap(), "hi");
    }

    #[test]
    fn a_stored_name_that_is_a_path_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("outside");
        let env_dir = dir.path().join("env");
        let vars: ConfigVars = [
            ("A".to_string(), "1".to_string()),
            (target.display().to_string(), "pwned".to_string()),
            ("../escaped".to_string(), "pwned".to_string()),
        ]
        .into();
        let e = write_env_dir(&env_dir, &vars, "demo").unwrap_err().to_string();
        assert!(e.contains("shipway env-unset -a demo ../escaped"), "{e}");
        assert!(!target.exists() && !dir.path().join("escaped").exists());
        assert!(!env_dir.exists());
    }
}
