//! Source intake speed against `cp -a`, the baseline a user would reach for: a tree of
//! 20,000 small files copied by `copy_tree`, then taken from a git work tree by `intake`.
//! Runs are alternated (A B A B) so that cache warmth and background load touch both
//! sides alike; page caches cannot be dropped without root. Figures are printed, never
//! asserted.
//!
//! The trees live in /dev/shm when it exists, so that the figures measure the copying
//! code rather than the disk (on some virtual disks creating a file costs a third of a
//! millisecond and both sides then measure only that). Set SHIPWAY_BENCH_DIR to measure
//! a real disk instead.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shipway::source::{copy_tree, intake};

const DIRS: usize = 200;
const FILES_PER_DIR: usize = 100;
const ROUNDS: usize = 5;

fn main() {
    let base = std::env::var_os("SHIPWAY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(Path::new("/dev/shm").to_path_buf()).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).expect("temporary folder");
    println!("in {}", base.display());
    let tree = tmp.path().join("tree");
    let bytes = make_tree(&tree);
    println!(
        "tree: {} files, {} symlinks, {:.1} MB",
        DIRS * FILES_PER_DIR,
        DIRS / 10,
        bytes as f64 / 1e6
    );

    let out = tmp.path().join("out");
    let (ours, cp) = alternate(
        || {
            copy_tree(&tree, &out).expect("copy_tree");
        },
        || cp_a(&tree, &out),
        || fs::remove_dir_all(&out).expect("clean up"),
    );
    report("copy_tree", ours, cp);

    git(&tree, &["init", "-q"]);
    git(&tree, &["add", "-A"]);
    git(&tree, &["commit", "-q", "-m", "bench"]);
    let (ours, cp) = alternate(
        || {
            intake(&tree, None, None, &out).expect("intake");
        },
        || cp_a(&tree, &out),
        || fs::remove_dir_all(&out).expect("clean up"),
    );
    report("intake of a git work tree", ours, cp);

    let (ours, cp) = alternate(
        || {
            intake(&tree, Some("HEAD"), None, &out).expect("intake --ref");
        },
        || cp_a(&tree, &out),
        || fs::remove_dir_all(&out).expect("clean up"),
    );
    report("intake --ref HEAD (git archive)", ours, cp);
}

/// 200 folders of 100 files from a few bytes to 8 KiB (source-like sizes), one symlink
/// every ten folders. Returns the bytes written.
fn make_tree(root: &Path) -> u64 {
    let mut total = 0;
    let chunk: Vec<u8> = (0..8192u32).map(|i| b'a' + (i % 26) as u8).collect();
    for d in 0..DIRS {
        let dir = root.join(format!("pkg{d:03}/src"));
        fs::create_dir_all(&dir).expect("create folder");
        for f in 0..FILES_PER_DIR {
            let size = (d * 7919 + f * 104_729) % chunk.len();
            fs::write(dir.join(format!("file{f:03}.rb")), &chunk[..size]).expect("write");
            total += size as u64;
        }
        if d % 10 == 0 {
            std::os::unix::fs::symlink("src/file000.rb", root.join(format!("pkg{d:03}/main.rb")))
                .expect("symlink");
        }
    }
    total
}

/// Runs A then B, ROUNDS times, cleaning up after each; returns both timings.
fn alternate(
    mut a: impl FnMut(),
    mut b: impl FnMut(),
    mut clean: impl FnMut(),
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (run, times) in [(&mut a as &mut dyn FnMut(), &mut ta), (&mut b, &mut tb)] {
            let start = Instant::now();
            run();
            times.push(start.elapsed());
            clean();
        }
    }
    (ta, tb)
}

fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp -a");
    assert!(status.success(), "cp -a {status}");
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Bench", "-c", "user.email=bench@example.com"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}: {status}");
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn report(what: &str, mut ours: Vec<Duration>, mut cp: Vec<Duration>) {
    let (ours, cp) = (median(&mut ours), median(&mut cp));
    println!(
        "{what:<34} shipway {:>7.1} ms   cp -a {:>7.1} ms   shipway/cp {:.2}",
        ours.as_secs_f64() * 1e3,
        cp.as_secs_f64() * 1e3,
        ours.as_secs_f64() / cp.as_secs_f64()
    );
}
