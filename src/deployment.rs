//! A deployment's record (PLATFORM.md §4): id, source and git ref, status history with
//! times, duration, image size, buildpacks, and its full output in `<id>.log` beside.
//! Every change is written atomically, so a kill at any moment leaves it readable.
//!
//! It records; it does not decide the next status.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::exit;
use crate::state::{self, AppDir, StateError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Building,
    Pushing,
    Starting,
    Success,
    BuildError,
    CrashedError,
    TimeoutError,
    HookError,
    Aborted,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Building => "building",
            Status::Pushing => "pushing",
            Status::Starting => "starting",
            Status::Success => "success",
            Status::BuildError => "build-error",
            Status::CrashedError => "crashed-error",
            Status::TimeoutError => "timeout-error",
            Status::HookError => "hook-error",
            Status::Aborted => "aborted",
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, Status::Building | Status::Pushing | Status::Starting)
    }

    /// `shipway deploy`'s exit status for this final status.
    pub fn exit_code(&self) -> i32 {
        match self {
            Status::Success => exit::SUCCESS,
            Status::BuildError => exit::BUILD_ERROR,
            Status::CrashedError => exit::CRASHED_ERROR,
            Status::TimeoutError => exit::TIMEOUT_ERROR,
            Status::HookError => exit::HOOK_ERROR,
            Status::Aborted => exit::ABORTED,
            _ => exit::ERROR,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusChange {
    pub status: Status,
    /// Milliseconds since the epoch.
    pub at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deployment {
    pub id: String,
    pub app: String,
    pub source: String,
    pub git_ref: Option<String>,
    pub version: Option<String>,
    pub statuses: Vec<StatusChange>,
    pub duration_ms: Option<u64>,
    pub slug_bytes: Option<u64>,
    pub buildpacks: Vec<String>,
    pub release: Option<u32>,
    /// The stack it built on, and the image digest it used (none: the host's userland).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_digest: Option<String>,
    /// The phases' durations in milliseconds (intake, detect, compile, boot, hook, switch).
    #[serde(default)]
    pub timings: std::collections::BTreeMap<String, u64>,
}

impl Deployment {
    /// Records what this deployment rolls out: the release, its version, buildpacks and
    /// slug size.
    pub fn record_release(&mut self, release: &crate::release::Release) {
        self.release = Some(release.number);
        self.version = release.version.clone();
        self.buildpacks = release.buildpacks.clone();
        self.slug_bytes = Some(release.slug_bytes);
        self.stack = Some(release.stack.clone()).filter(|s| !s.is_empty());
        self.stack_digest = release.stack_digest.clone();
    }

    /// A new deployment, with an id that sorts by time.
    pub fn new(app: &str, source: &str, git_ref: Option<&str>) -> Deployment {
        let now = crate::clock::now_ms();
        Deployment {
            id: format!(
                "{now}-{:04x}",
                std::process::id() as u16 ^ (now as u16).rotate_left(7)
            ),
            app: app.to_string(),
            source: source.to_string(),
            git_ref: git_ref.map(String::from),
            version: None,
            statuses: Vec::new(),
            duration_ms: None,
            slug_bytes: None,
            buildpacks: Vec::new(),
            release: None,
            stack: None,
            stack_digest: None,
            timings: Default::default(),
        }
    }

    pub fn status(&self) -> Option<Status> {
        self.statuses.last().map(|s| s.status)
    }

    pub fn path(app: &AppDir, id: &str) -> PathBuf {
        app.deployments().join(format!("{id}.toml"))
    }

    pub fn log_path(app: &AppDir, id: &str) -> PathBuf {
        app.deployments().join(format!("{id}.log"))
    }

    /// Record a new status and save at once.
    pub fn set_status(&mut self, status: Status, app: &AppDir) -> Result<(), StateError> {
        let at = crate::clock::now_ms();
        self.statuses.push(StatusChange { status, at });
        if status.is_final() {
            if let Some(first) = self.statuses.first() {
                self.duration_ms = Some(at.saturating_sub(first.at));
            }
            return self.save(app);
        }
        // A status the deployment moves on from within moments is not waited onto the disk.
        state::write_toml_unsynced(&Deployment::path(app, &self.id), self, 0o600)
    }

    pub fn save(&self, app: &AppDir) -> Result<(), StateError> {
        state::write_toml(&Deployment::path(app, &self.id), self, 0o600)
    }

    pub fn load(path: &Path) -> Result<Option<Deployment>, StateError> {
        state::read_toml(path)
    }

    /// The app's last deployment (ids sort by time), read alone: what a follower polls.
    pub fn latest(app: &AppDir) -> Option<Deployment> {
        let newest = std::fs::read_dir(app.deployments())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .max()?;
        Deployment::load(&newest).ok().flatten()
    }

    /// Every deployment of the app, oldest first.
    pub fn list(app: &AppDir) -> Vec<Deployment> {
        let mut all: Vec<Deployment> = std::fs::read_dir(app.deployments())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                    .filter_map(|e| Deployment::load(&e.path()).ok().flatten())
                    .collect()
            })
            .unwrap_or_default();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips_and_measures_duration() {
        let dir = tempfile::tempdir().unwrap();
        let home = crate::state::Home::open(dir.path()).unwrap();
        let app = home.app("demo").unwrap();
        app.create().unwrap();
        let mut d = Deployment::new("demo", "folder /x", Some("main"));
        d.set_status(Status::Building, &app).unwrap();
        d.set_status(Status::TimeoutError, &app).unwrap();
        let back = Deployment::list(&app);
        assert_eq!(back, vec![d.clone()]);
        assert!(d.duration_ms.is_some());
        assert_eq!(Status::TimeoutError.exit_code(), exit::TIMEOUT_ERROR);
        let text = std::fs::read_to_string(Deployment::path(&app, &d.id)).unwrap();
        assert!(text.contains("timeout-error"), "{text}");
    }
}
