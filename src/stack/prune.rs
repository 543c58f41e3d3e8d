//! `stacks --prune`: remove the images no app uses. An image is used when a stack name
//! points at it and an app is on that stack (`stack` in its app.toml, `scalingo-24` when
//! absent: `state::AppConfig::stack`), or when a release recorded it (`stack_digest` in its release.toml), since a
//! rollback runs that release in that image. Scratch folders of unpacks that died are
//! removed too, once no unpack holds their image's lock.
//!
//! It reads apps' files as plain TOML and never writes them.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::StackError;
use super::unpack::remove_tree;
use super::Store;
use crate::io_error::io;
use crate::state::Home;

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// (digest, bytes) of each image removed.
    pub images: Vec<(String, u64)>,
    /// Stack names that pointed at a removed image.
    pub names: Vec<String>,
    /// Leftover scratch folders.
    pub scratch: usize,
}

/// Remove from `store` the images no app of `home` uses.
pub fn prune(store: &Store, home: &Home) -> Result<Pruned, StackError> {
    let (stacks_used, digests_used) = used(home);
    let mut pruned = Pruned::default();
    let mut keep: BTreeSet<String> = digests_used;
    for stack in store.names() {
        if let Some(pulled) = store.pulled(&stack) {
            if stacks_used.contains(&stack) {
                keep.insert(pulled.digest);
            }
        }
    }
    for digest in store.digests() {
        if keep.contains(&digest) {
            continue;
        }
        let key = digest.replacen(':', "-", 1);
        // An unpack or a pull of this very image waits for us, or we for it.
        let _lock = crate::state::exclusive_lock(&store.root.join("locks").join(format!("{key}.lock")))?;
        let size = store.image(&digest).map_or(0, |r| r.size);
        remove_tree(&store.image_dir(&digest))?;
        let lock = store.root.join("locks").join(format!("{key}.lock"));
        let _ = std::fs::remove_file(&lock);
        pruned.images.push((digest, size));
    }
    for stack in store.names() {
        if let Some(pulled) = store.pulled(&stack) {
            if pruned.images.iter().any(|(d, _)| *d == pulled.digest) {
                let file = store.name_file(&stack);
                std::fs::remove_file(&file).map_err(io("remove", &file))?;
                pruned.names.push(stack);
            }
        }
    }
    pruned.scratch = sweep_scratch(store)?;
    Ok(pruned)
}

/// The stacks apps are on, and the image digests releases recorded.
fn used(home: &Home) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut stacks = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for name in home.apps() {
        let Ok(app) = home.app(&name) else { continue };
        let config = read(&app.root.join("app.toml"));
        let stack = config
            .as_ref()
            .and_then(|c| c.get("stack"))
            .and_then(|s| s.as_str())
            .unwrap_or(crate::platform_numbers::BEFORE_STACKS)
            .to_string();
        stacks.insert(stack);
        for number in app.release_numbers() {
            let release = read(&app.release(number).join("release.toml"));
            if let Some(d) = release
                .as_ref()
                .and_then(|r| r.get("stack_digest"))
                .and_then(|d| d.as_str())
            {
                digests.insert(d.to_string());
            }
        }
    }
    (stacks, digests)
}

fn read(path: &Path) -> Option<toml::Table> {
    let bytes = crate::state::read_regular(path).ok()??;
    String::from_utf8(bytes).ok()?.parse().ok()
}

/// Remove scratch folders whose unpack is over (its lock is free).
fn sweep_scratch(store: &Store) -> Result<usize, StackError> {
    let tmp = store.root.join("tmp");
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `<key>.<random>`: an image's unpack; `import.<random>`: an import's staging,
        // whose owner is alive as long as its process is (no lock: skip those younger
        // than a day).
        let key = name.split('.').next().unwrap_or("");
        let free = if key == "import" {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 24 * 3600))
        } else {
            crate::state::try_exclusive_lock(&store.root.join("locks").join(format!("{key}.lock")))?.is_some()
        };
        if free {
            remove_tree(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_in_place_of_an_apps_record_reads_as_nothing_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("app.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(read(&fifo), None);
        std::fs::write(dir.path().join("release.toml"), "stack = \"scalingo-26\"\n").unwrap();
        let table = read(&dir.path().join("release.toml")).unwrap();
        assert_eq!(table.get("stack").and_then(|s| s.as_str()), Some("scalingo-26"));
    }
}
