//! `stacks-import`: an image from a file, for a machine that cannot reach a registry.
//! Two formats, told apart by what they hold:
//! - an OCI archive (`oci-layout`, `index.json`, `blobs/sha256/...`), which is also what
//!   `docker save` writes since Docker 25: every blob is checked against its digest;
//! - the older `docker save` archive (`manifest.json`, `<id>.json`, `<id>/layer.tar`):
//!   the config is checked against the digest its name carries, each layer against the
//!   config's `diff_ids`, and the image is keyed by its config digest (its image ID), as
//!   it has no manifest.
//!
//! The archive (a file or stdin, plain, gzip or zstd) is first copied into a scratch
//! folder, since `docker save` writes its `manifest.json` last. Unpacking is `install.rs`'s.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::error::StackError;
use super::install::{self, Check, Feedback, Installed, Layer, Resolved, Scratch};
use super::pull::{choose, parse_config, Kind};
use super::{verify, Store};
use crate::io_error::{io, IoError};

const MAX_INDEX_DEPTH: usize = 4;

/// Import the archive at `input` (`-`: stdin) as `stack`'s image.
pub fn import(
    store: &Store,
    stack: &str,
    input: &Path,
    feedback: &Feedback,
) -> Result<Installed, StackError> {
    super::check_name(stack)?;
    store.prepare()?;
    let shown = if input == Path::new("-") {
        "stdin".to_string()
    } else {
        input.display().to_string()
    };
    feedback.out.step(&format!("Importing {stack} from {shown}"));
    let scratch = Scratch::new(store, "import")?;
    let staged = if input == Path::new("-") {
        stage(std::io::stdin().lock(), scratch.path(), &shown)?
    } else {
        let file = File::open(input).map_err(io("open", input))?;
        stage(file, scratch.path(), &shown)?
    };
    let source = format!("imported from {shown}");
    let (image, paths) = if staged.exists("index.json") {
        oci(&staged, source, stack)?
    } else if staged.exists("manifest.json") {
        docker_save(&staged, source, stack)?
    } else {
        return Err(StackError::Invalid {
            what: shown,
            problem: "neither an OCI archive (oci-layout, index.json, blobs/) nor a `docker save` archive (manifest.json): make one with `docker save scalingo/scalingo-26 > scalingo-26.tar`".into(),
        });
    };
    let mut open = |index: usize, _: &Layer| -> Result<Box<dyn Read + Send>, StackError> {
        let path = &paths[index];
        Ok(Box::new(File::open(path).map_err(io("open", path))?))
    };
    install::lock(store, &image.digest)?.install(stack, &image, &mut open, feedback)
}

/// An archive copied into a folder: its files, and its symlinks (`docker save` links a
/// layer shared by two images), resolved by name, never outside.
struct Staged {
    root: PathBuf,
    links: BTreeMap<PathBuf, PathBuf>,
    what: String,
}

impl Staged {
    /// The file `name` (relative) stands for.
    fn locate(&self, name: &str) -> Result<PathBuf, StackError> {
        let mut rel = normal(Path::new(name))
            .ok_or_else(|| self.invalid(format!("names {name:?}, outside the archive")))?;
        for _ in 0..40 {
            let Some(target) = self.links.get(&rel) else {
                return Ok(self.root.join(rel));
            };
            let joined = rel.parent().unwrap_or(Path::new("")).join(target);
            rel = normal(&joined)
                .ok_or_else(|| self.invalid(format!("links {} outside the archive", rel.display())))?;
        }
        Err(self.invalid(format!("{name:?} is a loop of links")))
    }

    fn exists(&self, name: &str) -> bool {
        self.locate(name).is_ok_and(|p| p.is_file())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, StackError> {
        let path = self.locate(name)?;
        std::fs::read(&path).map_err(|_| self.invalid(format!("has no {name}")))
    }

    fn invalid(&self, problem: String) -> StackError {
        StackError::Invalid {
            what: self.what.clone(),
            problem,
        }
    }
}

/// A relative path with `.` and `..` worked out, `None` if it climbs out.
fn normal(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn stage(input: impl Read, dir: &Path, what: &str) -> Result<Staged, StackError> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let head = input.fill_buf().map_err(|e| StackError::Invalid {
        what: what.to_string(),
        problem: format!("cannot be read ({e})"),
    })?;
    let decoded: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(input).map_err(|e| StackError::Invalid {
                what: what.to_string(),
                problem: format!("zstd: {e}"),
            })?,
        )
    } else {
        Box::new(input)
    };
    let bad = |e: std::io::Error| StackError::Invalid {
        what: what.to_string(),
        problem: format!("not a readable tar archive ({e})"),
    };
    let mut staged = Staged {
        root: dir.to_path_buf(),
        links: BTreeMap::new(),
        what: what.to_string(),
    };
    let mut archive = tar::Archive::new(decoded);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let rel = normal(&name)
            .ok_or_else(|| staged.invalid(format!("entry {} is outside the archive", name.display())))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = dir.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
                }
                let mut file = File::create(&dest).map_err(io("create", &dest))?;
                std::io::copy(&mut entry, &mut file).map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => bad(e),
                    _ => StackError::Io(IoError::new("write", &dest, e)),
                })?;
            }
            tar::EntryType::Directory => std::fs::create_dir_all(&dest).map_err(io("create", &dest))?,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Some(target) = entry.link_name().map_err(bad)? {
                    let target = target.into_owned();
                    // A hard link's name is from the archive's root; a symlink's from its folder.
                    let target = if entry.header().entry_type() == tar::EntryType::Link {
                        let depth = rel.components().count().saturating_sub(1);
                        (0..depth).fold(PathBuf::new(), |p, _| p.join("..")).join(target)
                    } else {
                        target
                    };
                    staged.links.insert(rel, target);
                }
            }
            _ => {}
        }
    }
    Ok(staged)
}

/// The blob `digest` of an OCI layout.
fn blob_name(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn read_blob(staged: &Staged, digest: &str, what: &str) -> Result<Vec<u8>, StackError> {
    let bytes = staged.read(&blob_name(digest))?;
    verify::check(what, digest, &bytes)?;
    Ok(bytes)
}

type Plan = (Resolved, Vec<PathBuf>);

fn oci(staged: &Staged, source: String, stack: &str) -> Result<Plan, StackError> {
    let what = staged.what.clone();
    let index_bytes = staged.read("index.json")?;
    let mut kind_and_bytes = (Kind::Index, index_bytes);
    let mut digest = String::new();
    for _ in 0..MAX_INDEX_DEPTH {
        match kind_and_bytes {
            (Kind::Index, bytes) => {
                let index = ImageIndex::from_reader(&bytes[..])
                    .map_err(|e| staged.invalid(format!("its index cannot be read ({e})")))?;
                // The layout's own index.json lists images by name (several when more
                // than one image was saved): the stack's; below it, the platform's entry
                // of a multi-platform index.
                let named =
                    index.manifests().len() > 1 && index.manifests().iter().all(|d| d.platform().is_none());
                let chosen = if named {
                    by_name(staged, &index, stack)?
                } else if index.manifests().len() > 1
                    || index.manifests().iter().any(|d| d.platform().is_some())
                {
                    choose(&index, &what)?
                } else {
                    index
                        .manifests()
                        .first()
                        .ok_or_else(|| staged.invalid("its index lists no image".into()))?
                };
                digest = verify::parse(chosen.digest().as_ref(), &what)?;
                let bytes = read_blob(staged, &digest, "manifest")?;
                let media = chosen.media_type().to_string();
                kind_and_bytes = (Kind::of(&media, &bytes), bytes);
            }
            (Kind::Manifest, bytes) => {
                let manifest = ImageManifest::from_reader(&bytes[..])
                    .map_err(|e| staged.invalid(format!("manifest {digest} cannot be read ({e})")))?;
                let config_digest = verify::parse(manifest.config().digest().as_ref(), &what)?;
                let config = parse_config(&read_blob(staged, &config_digest, "config")?, &config_digest)?;
                let mut layers = Vec::new();
                let mut paths = Vec::new();
                for l in manifest.layers() {
                    let d = verify::parse(l.digest().as_ref(), &what)?;
                    paths.push(staged.locate(&blob_name(&d))?);
                    layers.push(Layer {
                        digest: d,
                        size: Some(l.size()),
                        check: Check::Stored,
                    });
                }
                let image = Resolved {
                    digest,
                    source,
                    config_digest,
                    config,
                    layers,
                };
                return Ok((image, paths));
            }
        }
    }
    Err(staged.invalid(format!("its indexes nest deeper than {MAX_INDEX_DEPTH}")))
}

/// The entry of an archive's index named `scalingo/<stack>` (Docker's
/// `io.containerd.image.name`, or the OCI `ref.name` other tools write).
fn by_name<'a>(staged: &Staged, index: &'a ImageIndex, stack: &str) -> Result<&'a Descriptor, StackError> {
    let name = |d: &Descriptor| -> Option<String> {
        let a = d.annotations().as_ref()?;
        a.get("io.containerd.image.name")
            .or_else(|| a.get("org.opencontainers.image.ref.name"))
            .cloned()
    };
    let wanted = format!("scalingo/{stack}");
    let names: Vec<String> = index.manifests().iter().filter_map(name).collect();
    index
        .manifests()
        .iter()
        .find(|d| name(d).is_some_and(|n| n.contains(&wanted)))
        .ok_or_else(|| {
            staged.invalid(format!(
                "it holds {} images ({}) and none is {wanted}: save that one alone",
                index.manifests().len(),
                if names.is_empty() {
                    "unnamed".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })
}

/// One image of a `docker save` manifest.json.
#[derive(serde::Deserialize)]
struct Saved {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn docker_save(staged: &Staged, source: String, stack: &str) -> Result<Plan, StackError> {
    let list: Vec<Saved> = serde_json::from_slice(&staged.read("manifest.json")?)
        .map_err(|e| staged.invalid(format!("its manifest.json cannot be read ({e})")))?;
    let tagged = |s: &&Saved| {
        s.repo_tags.iter().flatten().any(|t| {
            t.split(':')
                .next()
                .is_some_and(|r| r.ends_with(&format!("scalingo/{stack}")) || r == stack)
        })
    };
    let saved = match list.as_slice() {
        [only] => only,
        many => many.iter().find(tagged).ok_or_else(|| {
            staged.invalid(format!(
                "it holds {} images and none is tagged scalingo/{stack}: save that one alone",
                many.len()
            ))
        })?,
    };
    let config_bytes = staged.read(&saved.config)?;
    let config_digest = verify::sha256(&config_bytes);
    // The config's name is its digest (`<hex>.json`, or `blobs/sha256/<hex>`).
    let named = Path::new(&saved.config)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
        .unwrap_or_default();
    if named.len() == 64 {
        verify::check("config", &format!("sha256:{named}"), &config_bytes)?;
    }
    let config = parse_config(&config_bytes, &config_digest)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != saved.layers.len() {
        return Err(staged.invalid(format!(
            "its config lists {} layers and its manifest.json {}",
            diff_ids.len(),
            saved.layers.len()
        )));
    }
    let mut layers = Vec::new();
    let mut paths = Vec::new();
    for (name, diff_id) in saved.layers.iter().zip(diff_ids) {
        paths.push(staged.locate(name)?);
        layers.push(Layer {
            digest: verify::parse(diff_id, &staged.what)?,
            size: None,
            check: Check::Uncompressed,
        });
    }
    let image = Resolved {
        digest: config_digest.clone(),
        source,
        config_digest,
        config,
        layers,
    };
    Ok((image, paths))
}
