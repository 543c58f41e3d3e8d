//! Putting an image on disk once per digest: under the image's lock, its layers are
//! verified and unpacked into a scratch folder, `image.toml` is written, and the folder is
//! renamed into `images/` whole; then the stack's name file points at it. A second pull or
//! deploy of the same image waits for the lock and finds it there, without a download.
//! Whatever fails leaves nothing behind.
//!
//! It does not know where layers come from: `pull.rs` and `import.rs` open them.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::error::StackError;
use super::unpack::{remove_tree, Unpacker};
use super::verify::Hashing;
use super::{Pulled, Store};
use crate::io_error::io;
use crate::ui::Output;

/// Which bytes a layer's digest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The blob as stored (a registry's or an OCI archive's layer, maybe compressed).
    Stored,
    /// The uncompressed tar: the config's `diff_id` (a `docker save` archive's layers).
    Uncompressed,
}

/// One layer to apply, bottom first.
#[derive(Debug, Clone)]
pub struct Layer {
    pub digest: String,
    pub size: Option<u64>,
    pub check: Check,
}

/// An image whose manifest and config are verified, ready to be unpacked.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The key of its folder: the manifest's digest, or the config's for an archive that
    /// has no manifest (`docker save` before Docker 25).
    pub digest: String,
    pub source: String,
    pub config_digest: String,
    pub config: oci_spec::image::ImageConfiguration,
    pub layers: Vec<Layer>,
}

/// What `image.toml` records about an unpacked image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub digest: String,
    pub source: String,
    pub config_digest: String,
    pub os: String,
    pub architecture: String,
    /// The image's own environment (`PATH`...), as its config sets it.
    #[serde(default)]
    pub env: Vec<String>,
    pub layers: Vec<String>,
    /// Bytes of files unpacked.
    pub size: u64,
    /// Bytes read from the registry or the archive (compressed layers).
    pub read: u64,
    pub unpack_ms: u64,
    pub at_ms: u64,
    /// Unpacked by an ordinary user: every file is that user's, setuid/setgid dropped.
    pub rootless: bool,
    pub devices_skipped: u64,
    pub setid_dropped: u64,
}

/// How a pull or an import shows itself: lines through `out`, and byte bars per layer on
/// stderr when `bars` (a terminal).
pub struct Feedback<'a> {
    pub out: &'a Output,
    pub bars: bool,
}

impl Feedback<'_> {
    fn bar(&self, multi: &MultiProgress, index: usize, count: usize, layer: &Layer) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let short = layer.digest.get(..19).unwrap_or(&layer.digest);
        let bar = match layer.size {
            Some(size) => ProgressBar::new(size).with_style(
                ProgressStyle::with_template(
                    "       layer {prefix} [{bar:24}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::no_length().with_style(
                ProgressStyle::with_template("       layer {prefix} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        };
        let bar = multi.add(bar);
        bar.set_prefix(format!("{}/{count} {short}", index + 1));
        bar
    }
}

/// The outcome of an install.
pub struct Installed {
    pub record: ImageRecord,
    /// False when the image was on disk already: nothing was read.
    pub unpacked: bool,
}

/// A layer's bytes as stored, from wherever they are.
pub type Opener<'a> = dyn FnMut(usize, &Layer) -> Result<Box<dyn Read + Send>, StackError> + 'a;

/// An image's lock, held while it is looked for, unpacked or pruned: two pulls of one
/// image unpack it once, and the second reads nothing but the manifest.
pub struct Locked<'a> {
    store: &'a Store,
    digest: String,
    _flock: nix::fcntl::Flock<std::fs::File>,
}

/// Wait for the lock of image `digest`.
pub fn lock<'a>(store: &'a Store, digest: &str) -> Result<Locked<'a>, StackError> {
    store.prepare()?;
    let key = digest.replacen(':', "-", 1);
    let flock = crate::state::exclusive_lock(&store.root.join("locks").join(format!("{key}.lock")))?;
    Ok(Locked {
        store,
        digest: digest.to_string(),
        _flock: flock,
    })
}

impl Locked<'_> {
    /// When the image is complete on disk already: make `stack` point at it.
    pub fn existing(&self, stack: &str, source: &str) -> Result<Option<Installed>, StackError> {
        let Some(record) = self.store.image(&self.digest) else {
            return Ok(None);
        };
        point(self.store, stack, &record, source)?;
        Ok(Some(Installed {
            record,
            unpacked: false,
        }))
    }

    /// Unpack `image` (whose digest this lock is for) and make `stack` point at it.
    pub fn install(
        self,
        stack: &str,
        image: &Resolved,
        open: &mut Opener,
        feedback: &Feedback,
    ) -> Result<Installed, StackError> {
        if let Some(done) = self.existing(stack, &image.source)? {
            return Ok(done);
        }
        let key = image.digest.replacen(':', "-", 1);
        let dir = self.store.image_dir(&image.digest);
        let record = unpack(self.store, &key, &dir, image, open, feedback)?;
        point(self.store, stack, &record, &image.source)?;
        Ok(Installed {
            record,
            unpacked: true,
        })
    }
}

fn point(store: &Store, stack: &str, record: &ImageRecord, source: &str) -> Result<(), StackError> {
    let pulled = Pulled {
        digest: record.digest.clone(),
        source: source.to_string(),
        size: record.size,
        at_ms: now_ms(),
    };
    Ok(crate::state::write_toml(&store.name_file(stack), &pulled, 0o644)?)
}

/// A scratch folder removed on drop unless kept.
pub(crate) struct Scratch(Option<PathBuf>);

impl Scratch {
    pub(crate) fn new(store: &Store, prefix: &str) -> Result<Scratch, StackError> {
        let tmp = store.root.join("tmp");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}."))
            .tempdir_in(&tmp)
            .map_err(io("create a folder in", &tmp))?
            .keep();
        Ok(Scratch(Some(dir)))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new("/nonexistent"))
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = remove_tree(&dir);
        }
    }
}

fn unpack(
    store: &Store,
    key: &str,
    dir: &Path,
    image: &Resolved,
    open: &mut Opener,
    feedback: &Feedback,
) -> Result<ImageRecord, StackError> {
    let started = Instant::now();
    let scratch = Scratch::new(store, key)?;
    let rootfs = scratch.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(io("create", &rootfs))?;
    let mut unpacker = Unpacker::new(&rootfs);
    let multi = MultiProgress::with_draw_target(if feedback.bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let mut read = 0;
    let count = image.layers.len();
    for (index, layer) in image.layers.iter().enumerate() {
        let bar = feedback.bar(&multi, index, count, layer);
        let raw = bar.wrap_read(open(index, layer)?);
        let bytes = apply(&mut unpacker, layer, raw)?;
        read += bytes;
        bar.finish_and_clear();
        if feedback.bars {
            // The bar gives way to a line that stays, as the terminal's record of it (a
            // finished bar would leave the cursor at the end of its own line).
            let short = layer.digest.get(..19).unwrap_or(&layer.digest);
            multi.suspend(|| {
                feedback.out.detail(&format!(
                    "layer {}/{count} {short} {}",
                    index + 1,
                    crate::units::human_bytes(bytes)
                ))
            });
        }
    }
    let summary = unpacker.finish()?;
    let config = &image.config;
    let record = ImageRecord {
        digest: image.digest.clone(),
        source: image.source.clone(),
        config_digest: image.config_digest.clone(),
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        env: config
            .config()
            .as_ref()
            .and_then(|c| c.env().clone())
            .unwrap_or_default(),
        layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
        size: summary.bytes,
        read,
        unpack_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        at_ms: now_ms(),
        rootless: !nix::unistd::geteuid().is_root(),
        devices_skipped: summary.devices_skipped,
        setid_dropped: summary.setid_dropped,
    };
    crate::state::write_toml(&scratch.path().join("image.toml"), &record, 0o644)?;
    if dir.exists() {
        // Only an image.toml-less leftover can be here (we hold the image's lock).
        remove_tree(dir)?;
    }
    std::fs::rename(scratch.path(), dir).map_err(io("move the unpacked image to", dir))?;
    scratch.keep();
    Ok(record)
}

/// Verify and unpack one layer; the bytes read as stored.
fn apply(unpacker: &mut Unpacker, layer: &Layer, raw: impl Read) -> Result<u64, StackError> {
    let mut stored = Hashing::new(raw, layer.check == Check::Stored);
    let unpacked = (|| {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut stored);
        let decoded = decompress(&mut buffered, &layer.digest)?;
        let mut plain = Hashing::new(decoded, layer.check == Check::Uncompressed);
        unpacker.apply(&mut plain, &layer.digest)?;
        // The rest of the stream (tar padding, the compressor's trailer and checksum).
        plain.finish("layer", &layer.digest, None)
    })();
    let size = if layer.check == Check::Stored {
        layer.size
    } else {
        None
    };
    match unpacked {
        Ok(_) => stored.finish("layer", &layer.digest, size),
        // A damaged blob shows as a bad tar or a bad stream first: its digest is the
        // real news, when it is wrong.
        Err(e) => Err(stored.finish("layer", &layer.digest, size).err().unwrap_or(e)),
    }
}

/// The layer uncompressed, by its first bytes (media types vary between registries and
/// archives): gzip, zstd, or a plain tar.
fn decompress<'a>(
    input: &'a mut (impl BufRead + 'a),
    digest: &str,
) -> Result<Box<dyn Read + 'a>, StackError> {
    let head = input.fill_buf().map_err(|e| StackError::Layer {
        digest: digest.to_string(),
        problem: format!("cannot be read ({e})"),
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| StackError::Layer {
            digest: digest.to_string(),
            problem: format!("zstd: {e}"),
        })?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(input))
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
