//! A release: a built app folder (the slug) plus what starts it: the process types
//! (Procfile over the buildpack's defaults), the buildpack's config var defaults, and
//! where it came from. Stored as `release.toml` beside the `app/` folder, so a later
//! deploy or rollback starts it as is.
//!
//! It describes a release; starting one is the rollout's business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{self, StateError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Release {
    pub number: u32,
    /// Seconds since the epoch.
    pub created: u64,
    pub app: String,
    pub source: String,
    pub git_ref: Option<String>,
    /// SOURCE_VERSION: the commit's full SHA when known.
    pub version: Option<String>,
    pub buildpacks: Vec<String>,
    pub process_types: BTreeMap<String, String>,
    /// `config_vars` from bin/release: defaults that the app's config vars override.
    pub config_defaults: BTreeMap<String, String>,
    pub addons: Vec<String>,
    pub slug_bytes: u64,
    /// The app's stack when it was built: STACK, in the build and in its containers.
    /// Empty for a release made before stacks (the `stack` setting then).
    #[serde(default)]
    pub stack: String,
    /// The image it was built in, which its containers run in (a restart or a rollback
    /// too); none for the host's own userland.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_digest: Option<String>,
}

impl Release {
    /// The app folder of a release folder.
    pub fn app_dir(release_dir: &Path) -> PathBuf {
        release_dir.join("app")
    }

    pub fn load(release_dir: &Path) -> Result<Release, StateError> {
        let path = release_dir.join("release.toml");
        state::read_toml(&path)?.ok_or(StateError::Corrupt {
            path,
            message: "missing: this release was never finished; deploy again".into(),
        })
    }

    pub fn save(&self, release_dir: &Path) -> Result<(), StateError> {
        state::write_toml(&release_dir.join("release.toml"), self, 0o600)
    }

    /// CONTAINER_VERSION: the commit when known, else the release number.
    pub fn container_version(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| format!("v{}", self.number))
    }
}
