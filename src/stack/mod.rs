//! The platform's stacks (PLATFORM.md §9): which exist, and where their images are kept.
//!
//! A stack is a name (`scalingo-26`) that a deployment resolves to one image, kept
//! unpacked once per image digest under `SHIPWAY_HOME/stacks/` and shared by every app:
//!
//! ```text
//! stacks/images/<algorithm>-<hex>/rootfs/      the image's root filesystem, unpacked
//! stacks/images/<algorithm>-<hex>/image.toml   written last: the unpack is complete
//! stacks/names/<stack>.toml                    the digest a stack name resolves to now
//! stacks/locks/<algorithm>-<hex>.lock          held while that image is unpacked or pruned
//! stacks/tmp/                                  unpacks and imports under way
//! ```
//!
//! The digest is the image manifest's; an old-style `docker save` archive has no
//! manifest, and its image is keyed by its config's digest (Docker's image ID).
//!
//! This module owns the table of stacks and that layout; getting images is in its
//! submodules: `registry` and `pull` (the distribution API), `import` (archives),
//! `install` and `unpack` (onto disk), `prune`.

pub mod choice;
mod error;
pub mod import;
pub mod install;
pub mod prune;
pub mod pull;
pub mod registry;
pub mod unpack;
mod verify;

use std::path::{Path, PathBuf};

pub use choice::Runtime;
pub use error::StackError;
pub use install::{Feedback, ImageRecord, Installed};

use serde::{Deserialize, Serialize};

/// Whether the platform still builds on a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Support {
    Supported,
    Deprecated,
}

/// One of the platform's stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackInfo {
    pub name: &'static str,
    /// The Ubuntu LTS it is built on.
    pub ubuntu: &'static str,
    pub support: Support,
}

/// The platform's stacks, newest first. `scalingo-26` is the default for new apps since
/// 2026-06-22.
pub const STACKS: &[StackInfo] = &[
    StackInfo {
        name: "scalingo-26",
        ubuntu: "26.04",
        support: Support::Supported,
    },
    StackInfo {
        name: "scalingo-24",
        ubuntu: "24.04",
        support: Support::Supported,
    },
    StackInfo {
        name: "scalingo-22",
        ubuntu: "22.04",
        support: Support::Deprecated,
    },
];

/// The explicit choice of the host's own userland instead of an image.
pub const HOST: &str = "host";

/// A platform stack by name.
pub fn info(name: &str) -> Option<&'static StackInfo> {
    STACKS.iter().find(|s| s.name == name)
}

/// `stack` if it is one of the platform's (which have images), else why not.
pub fn check_name(stack: &str) -> Result<&'static StackInfo, StackError> {
    if stack == HOST {
        return Err(StackError::Host);
    }
    info(stack).ok_or_else(|| StackError::Unknown(stack.to_string()))
}

/// What `stacks/names/<stack>.toml` records: the image a stack name resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulled {
    /// The manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// Where it came from: a registry reference or an imported file.
    pub source: String,
    /// Bytes unpacked on disk.
    pub size: u64,
    /// When it was pulled or imported, in milliseconds since the epoch.
    pub at_ms: u64,
}

/// An image unpacked and complete on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub digest: String,
    pub rootfs: PathBuf,
}

/// The stacks' part of a shipway home.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    /// The store of the home at `home` (nothing is created).
    pub fn of(home: &Path) -> Store {
        Store {
            root: home.join("stacks"),
        }
    }

    /// The folder of the image with manifest digest `digest` (`sha256:<hex>`).
    pub fn image_dir(&self, digest: &str) -> PathBuf {
        self.root.join("images").join(digest.replacen(':', "-", 1))
    }

    /// The file naming the digest a stack name resolves to.
    pub fn name_file(&self, stack: &str) -> PathBuf {
        self.root.join("names").join(format!("{stack}.toml"))
    }

    /// What `stack` resolves to, if it was pulled or imported.
    pub fn pulled(&self, stack: &str) -> Option<Pulled> {
        crate::state::read_toml(&self.name_file(stack)).ok().flatten()
    }

    /// What `image.toml` records about the image `digest`, if it is complete on disk.
    pub fn image(&self, digest: &str) -> Option<ImageRecord> {
        crate::state::read_toml(&self.image_dir(digest).join("image.toml"))
            .ok()
            .flatten()
    }

    /// The digests of the images on disk, complete or not.
    pub fn digests(&self) -> Vec<String> {
        let mut all: Vec<String> = std::fs::read_dir(self.root.join("images"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(|n| n.replacen('-', ":", 1)))
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        all
    }

    /// The stack names that resolve to an image.
    pub fn names(&self) -> Vec<String> {
        let mut all: Vec<String> = std::fs::read_dir(self.root.join("names"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml").map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        all
    }

    /// Make the store's folders (this user's alone, as the rest of the home).
    pub fn prepare(&self) -> Result<(), StackError> {
        for sub in ["images", "names", "locks", "tmp"] {
            crate::state::private_dir(&self.root.join(sub))?;
        }
        Ok(())
    }

    /// The store, the digest and the stack names of the image unpacked at `rootfs`
    /// (`<store>/images/<algorithm>-<hex>/rootfs`), as far as they can be told.
    fn of_rootfs(rootfs: &Path) -> Option<(Store, String, Vec<String>)> {
        let dir = rootfs.parent()?;
        let digest = dir.file_name()?.to_str()?.replacen('-', ":", 1);
        let store = Store {
            root: dir.parent()?.parent()?.to_path_buf(),
        };
        let names = store
            .names()
            .into_iter()
            .filter(|n| store.pulled(n).is_some_and(|p| p.digest == digest))
            .collect();
        Some((store, digest, names))
    }

    /// The complete image `stack` resolves to, if there is one on disk.
    pub fn installed(&self, stack: &str) -> Option<Image> {
        let pulled = self.pulled(stack)?;
        let dir = self.image_dir(&pulled.digest);
        dir.join("image.toml").is_file().then(|| Image {
            rootfs: dir.join("rootfs"),
            digest: pulled.digest,
        })
    }
}

/// What a build or a container says when the image unpacked at `rootfs` cannot be
/// entered (`why`): the image, and what fixes each cause. Nothing falls back to the host
/// then: the release was built for that image, and the host's userland would run it with
/// other libraries than the ones it was built against.
pub fn cannot_enter(rootfs: &Path, why: &str) -> String {
    let (digest, dir, stack) = match Store::of_rootfs(rootfs) {
        Some((store, digest, names)) => {
            let stack = names.first().cloned().unwrap_or_else(|| "STACK".to_string());
            let dir = store.image_dir(&digest);
            (digest, dir, stack)
        }
        None => (String::new(), rootfs.to_path_buf(), "STACK".to_string()),
    };
    format!(
        "cannot enter the stack image {digest} at {root} ({why}). If its files were damaged or removed: `rm -rf {dir}` then `shipway stacks-pull {stack}` (or `stacks-import`) unpacks it again. If this machine refuses overlays (a user namespace before Linux 5.11): run shipway as root, or `shipway stacks-set host -a APP` and deploy again to run on this machine's own userland",
        root = rootfs.display(),
        dir = dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_supported_stack() {
        assert_eq!(
            info(crate::platform_numbers::DEFAULT_STACK).map(|s| s.support),
            Some(Support::Supported)
        );
        assert_eq!(info("scalingo-22").map(|s| s.support), Some(Support::Deprecated));
        assert!(info(HOST).is_none());
    }

    #[test]
    fn an_image_counts_only_once_complete() {
        let home = tempfile::tempdir().expect("tempdir");
        let store = Store::of(home.path());
        assert_eq!(store.installed("scalingo-26"), None);
        let pulled = Pulled {
            digest: "sha256:abc".into(),
            source: "test".into(),
            size: 1,
            at_ms: 0,
        };
        std::fs::create_dir_all(store.root.join("names")).expect("mkdir");
        crate::state::write_toml(&store.name_file("scalingo-26"), &pulled, 0o600).expect("write");
        std::fs::create_dir_all(store.image_dir("sha256:abc").join("rootfs")).expect("mkdir");
        assert_eq!(store.installed("scalingo-26"), None);
        std::fs::write(store.image_dir("sha256:abc").join("image.toml"), "").expect("write");
        let image = store.installed("scalingo-26").expect("installed");
        assert_eq!(image.rootfs, home.path().join("stacks/images/sha256-abc/rootfs"));
    }
}
