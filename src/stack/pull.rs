//! `stacks-pull`: a stack's image from its registry, `scalingo/<stack>:latest` on Docker
//! Hub unless SHIPWAY_STACK_REGISTRY names another. The tag's manifest is read first (an
//! index leads to this machine's platform); every blob is verified against its digest.
//!
//! Choosing among manifests is shared with OCI archives (`import.rs`); unpacking is
//! `install.rs`'s.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::error::StackError;
use super::install::{self, Check, Feedback, Installed, Layer, Resolved};
use super::registry::Registry;
use super::verify;
use super::Store;

/// How deep indexes may nest before the image is refused.
const MAX_INDEX_DEPTH: usize = 4;

/// The OCI name of this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// Pull `stack` from the registry at `base` and make it what the stack resolves to.
pub fn pull(store: &Store, stack: &str, base: &str, feedback: &Feedback) -> Result<Installed, StackError> {
    super::check_name(stack)?;
    let mut registry = Registry::new(base, &format!("scalingo/{stack}"), stack)?;
    let reference = registry.reference.clone();
    // Said once the registry has answered, with what is to come: a registry that cannot
    // be reached leaves one line (the error, or a deployment's fallback), not two.
    let (digest, manifest) = resolve(&mut registry, &reference)?;
    let bytes: u64 = manifest.layers().iter().map(|l| l.size()).sum();
    feedback.out.step(&format!(
        "Pulling {stack} ({reference}): {} layers, {}",
        manifest.layers().len(),
        crate::units::human_bytes(bytes)
    ));
    let locked = install::lock(store, &digest)?;
    if let Some(done) = locked.existing(stack, &reference)? {
        return Ok(done);
    }
    let config_digest = verify::parse(manifest.config().digest().as_ref(), &reference)?;
    let config_bytes = registry.small_blob(&config_digest)?;
    verify::check("config", &config_digest, &config_bytes)?;
    let config = parse_config(&config_bytes, &config_digest)?;
    let layers = manifest
        .layers()
        .iter()
        .map(|l| {
            Ok(Layer {
                digest: verify::parse(l.digest().as_ref(), &reference)?,
                size: Some(l.size()),
                check: Check::Stored,
            })
        })
        .collect::<Result<Vec<_>, StackError>>()?;
    let image = Resolved {
        digest,
        source: reference,
        config_digest,
        config,
        layers,
    };
    locked.install(
        stack,
        &image,
        &mut |_, layer| registry.blob(&layer.digest),
        feedback,
    )
}

/// The tag's manifest for this machine, and its digest.
fn resolve(registry: &mut Registry, reference: &str) -> Result<(String, ImageManifest), StackError> {
    let mut wanted = "latest".to_string();
    let mut expected: Option<String> = None;
    for _ in 0..MAX_INDEX_DEPTH {
        let served = registry.manifest(&wanted)?;
        let digest = verify::sha256(&served.bytes);
        // Fetched by digest, the bytes must be that digest; by tag, what the registry
        // announced (a mirror may announce nothing).
        if let Some(claimed) = expected.take().or(served.announced.clone()) {
            verify::check("manifest", &claimed, &served.bytes)?;
        }
        match Kind::of(&served.media_type, &served.bytes) {
            Kind::Index => {
                let index = ImageIndex::from_reader(&served.bytes[..]).map_err(|e| invalid(reference, &e))?;
                let chosen = choose(&index, reference)?;
                let next = verify::parse(chosen.digest().as_ref(), reference)?;
                wanted = next.clone();
                expected = Some(next);
            }
            Kind::Manifest => {
                let manifest =
                    ImageManifest::from_reader(&served.bytes[..]).map_err(|e| invalid(reference, &e))?;
                return Ok((digest, manifest));
            }
        }
    }
    Err(StackError::Invalid {
        what: reference.to_string(),
        problem: format!("its indexes nest deeper than {MAX_INDEX_DEPTH}"),
    })
}

/// Whether a manifest is an index: by media type, else by its shape.
pub(crate) enum Kind {
    Index,
    Manifest,
}

impl Kind {
    pub(crate) fn of(media_type: &str, bytes: &[u8]) -> Kind {
        let media_type = media_type.split(';').next().unwrap_or("").trim();
        if media_type.ends_with("image.index.v1+json") || media_type.ends_with("manifest.list.v2+json") {
            return Kind::Index;
        }
        if media_type.ends_with("manifest.v1+json") || media_type.ends_with("manifest.v2+json") {
            return Kind::Manifest;
        }
        let shape: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        if shape.get("manifests").is_some() {
            Kind::Index
        } else {
            Kind::Manifest
        }
    }
}

/// The entry of `index` for linux on this machine's architecture; an index of one entry
/// without a platform is that entry.
pub(crate) fn choose<'a>(index: &'a ImageIndex, reference: &str) -> Result<&'a Descriptor, StackError> {
    let arch = host_arch();
    let fits = |d: &&Descriptor| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
    };
    if let Some(found) = index.manifests().iter().find(fits) {
        return Ok(found);
    }
    if let [only] = index.manifests().as_slice() {
        if only.platform().is_none() {
            return Ok(only);
        }
    }
    let available: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| format!("{}/{}", p.os(), p.architecture()))
        .collect();
    Err(StackError::NoPlatform {
        reference: reference.to_string(),
        arch: arch.to_string(),
        available: if available.is_empty() {
            "no platform named".into()
        } else {
            available.join(", ")
        },
    })
}

pub(crate) fn parse_config(bytes: &[u8], digest: &str) -> Result<ImageConfiguration, StackError> {
    ImageConfiguration::from_reader(bytes).map_err(|e| StackError::Invalid {
        what: format!("config {digest}"),
        problem: e.to_string(),
    })
}

fn invalid(reference: &str, e: &oci_spec::OciSpecError) -> StackError {
    StackError::Invalid {
        what: reference.to_string(),
        problem: format!("its manifest cannot be read ({e})"),
    }
}
