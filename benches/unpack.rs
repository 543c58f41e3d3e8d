//! Stack image unpack speed (issue 22): an image of a few hundred MB made here (one gzip
//! layer of many small files, one zstd layer of larger ones, as a base image and its
//! runtime layer would be), imported through `stack::import`, against GNU tar extracting
//! the same two layers, the baseline a user would reach for. Runs are alternated (A B A
//! B); the figure is the unpack as `image.toml` records it (open, digest checks,
//! decompression, files written, modes), in MB of files written per second. Printed,
//! never asserted.
//!
//! The files live in /dev/shm when it exists, so that the figures measure the code rather
//! than the disk; SHIPWAY_BENCH_DIR measures a real disk instead.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shipway::stack::{import, Feedback, Store};
use shipway::ui::Output;

const SMALL_FILES: usize = 24_000;
const SMALL_SIZE: usize = 8 * 1024;
const LARGE_FILES: usize = 80;
const LARGE_SIZE: usize = 1536 * 1024;
const ROUNDS: usize = 3;

/// A deterministic generator, so that every run unpacks the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Text-like bytes (words of a small vocabulary), which compress about as source code
    /// and libraries do (3-4x), with a run of random bytes every 16 KiB or so.
    fn fill(&mut self, size: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "def", "return", "self", "import", "from", "class", "value", "name", "if", "else", "for", "in",
            "None", "True", "lib", "usr", "share", "locale", "data", "config",
        ];
        let mut out = Vec::with_capacity(size + 16);
        while out.len() < size {
            let r = self.next();
            if r.is_multiple_of(97) {
                for _ in 0..64 {
                    out.extend_from_slice(&self.next().to_le_bytes());
                }
            } else {
                out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
                out.push(if r.is_multiple_of(11) { b'\n' } else { b' ' });
            }
        }
        out.truncate(size);
        out
    }
}

fn entry(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(1_780_000_000);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).expect("append");
}

fn layers() -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut small = tar::Builder::new(Vec::new());
    for i in 0..SMALL_FILES {
        let size = SMALL_SIZE / 2 + (rng.next() as usize % SMALL_SIZE);
        entry(
            &mut small,
            &format!("usr/lib/d{}/f{i}.py", i / 200),
            &rng.fill(size),
        );
    }
    let mut large = tar::Builder::new(Vec::new());
    for i in 0..LARGE_FILES {
        entry(
            &mut large,
            &format!("opt/runtime/lib{i}.so"),
            &rng.fill(LARGE_SIZE),
        );
    }
    (small.into_inner().expect("tar"), large.into_inner().expect("tar"))
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// An OCI archive of the two layers (gzip, zstd); their compressed files beside it.
fn archive(dir: &Path, small: &[u8], large: &[u8]) -> u64 {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(small).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(large, 3).expect("zstd");
    fs::write(dir.join("small.tar.gz"), &gz).expect("write");
    fs::write(dir.join("large.tar.zst"), &zst).expect("write");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(small), sha256(large)]},
    });
    let config = serde_json::to_vec(&config).expect("json");
    let desc =
        |media: &str, b: &[u8]| serde_json::json!({"mediaType": media, "digest": sha256(b), "size": b.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &gz), desc("application/vnd.oci.image.layer.v1.tar+zstd", &zst)],
    }))
    .expect("json");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [desc("application/vnd.oci.image.manifest.v1+json", &manifest)],
    }))
    .expect("json");
    let mut tar = tar::Builder::new(fs::File::create(dir.join("image.tar")).expect("create"));
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, name, bytes).expect("append");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for b in [&config, &manifest, &gz, &zst] {
        add(&format!("blobs/sha256/{}", &sha256(b)[7..]), b);
    }
    tar.finish().expect("tar");
    (gz.len() + zst.len()) as u64
}

fn main() {
    let base = std::env::var_os("SHIPWAY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(Path::new("/dev/shm").to_path_buf()).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).expect("temporary folder");
    println!("in {}", base.display());
    let (small, large) = layers();
    let unpacked = (small.len() + large.len()) as u64;
    let compressed = archive(tmp.path(), &small, &large);
    drop((small, large));
    println!(
        "image: {} + {} files, {:.0} MB of tar, {:.0} MB compressed (gzip + zstd)",
        SMALL_FILES,
        LARGE_FILES,
        unpacked as f64 / 1e6,
        compressed as f64 / 1e6
    );

    let home = tmp.path().join("home");
    let store = Store::of(&home);
    let out = Output::new();
    let feedback = Feedback {
        out: &out,
        bars: false,
    };
    let target = tmp.path().join("tar-out");
    let mut ours = Vec::new();
    let mut gnu = Vec::new();
    for _ in 0..ROUNDS {
        let installed =
            import::import(&store, "scalingo-26", &tmp.path().join("image.tar"), &feedback).expect("import");
        let r = installed.record;
        ours.push((r.size, Duration::from_millis(r.unpack_ms)));
        let _ = fs::remove_dir_all(&home);

        fs::create_dir_all(&target).expect("mkdir");
        let started = Instant::now();
        tar_x(&tmp.path().join("small.tar.gz"), &target, "-xzf");
        tar_x(&tmp.path().join("large.tar.zst"), &target, "--zstd -xf");
        gnu.push((unpacked, started.elapsed()));
        fs::remove_dir_all(&target).expect("clean up");
    }
    report("shipway unpack (digests checked)", &ours);
    report("GNU tar -x (no digest)", &gnu);
}

fn tar_x(file: &Path, dir: &Path, how: &str) {
    let mut cmd = Command::new("tar");
    cmd.args(how.split(' ')).arg(file).arg("-C").arg(dir);
    let status = cmd.status().expect("tar");
    assert!(status.success(), "tar {how} {}", file.display());
}

fn report(what: &str, runs: &[(u64, Duration)]) {
    let rates: Vec<String> = runs
        .iter()
        .map(|(bytes, took)| format!("{:.0}", *bytes as f64 / 1e6 / took.as_secs_f64()))
        .collect();
    let times: Vec<String> = runs
        .iter()
        .map(|(_, t)| format!("{:.2}s", t.as_secs_f64()))
        .collect();
    println!("{what}: MB/s {} (times {})", rates.join(", "), times.join(", "));
}
