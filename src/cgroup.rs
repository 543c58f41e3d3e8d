//! A container's cgroup: where its size (PLATFORM.md §10, `platform_numbers`) becomes a
//! memory limit with no swap, a process limit and a CPU weight, and where its memory and
//! CPU are read back (`stats`, `ps`), and whether the kernel stopped it for memory.
//!
//! It speaks both layouts the kernel has: cgroup v2 (one tree, laptops) and the v1
//! `memory`, `pids`, `cpu` and `cpuacct` trees (some servers and CI machines). Container
//! cgroups sit in a `shipway` folder of shipway's own: below this process's own cgroup
//! (v1) or at the top of the tree (v2) as root, or in a delegated v2 subtree (systemd's
//! user slice) otherwise. It makes, fills and removes cgroups; it decides nothing about
//! a container's life, and it never moves a process itself (the shim puts its program in,
//! before the program runs).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::platform_numbers::{CpuPriority, Size};

/// The folder of shipway's own in a cgroup tree, holding one cgroup per container.
const OWN: &str = "shipway";

/// How long a stopped container's cgroup may stay busy (its last processes being
/// released by the kernel) before what is left in it is killed.
const REMOVE_DEADLINE: Duration = Duration::from_secs(2);

/// The two layouts of cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Where shipway makes container cgroups on this machine: the `shipway` folder of each
/// tree it uses (v2: one).
#[derive(Debug, Clone)]
struct Base {
    version: Version,
    memory: PathBuf,
    pids: PathBuf,
    /// v1 `cpu` (shares) and `cpuacct` (usage); v2 has both in the one tree. Optional: a
    /// delegated v2 tree may lack the cpu controller, which only costs the weight.
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
}

/// Why no cgroup could be made, with what to do about it: said once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container sizes are not enforced on this machine ({why}); containers run without memory, process or CPU limits. {fix}")]
pub struct Unavailable {
    pub why: String,
    pub fix: String,
}

impl Unavailable {
    fn new(why: impl Into<String>) -> Unavailable {
        let fix = if nix::unistd::geteuid().is_root() {
            "To enforce them, mount the cgroup v2 tree (or the v1 memory and pids trees) at /sys/fs/cgroup, writable by root."
        } else {
            "To enforce them, run shipway in a systemd user session, whose cgroup is delegated (`systemd-run --user --scope -p Delegate=yes shipway ...`), or as root."
        };
        Unavailable {
            why: why.into(),
            fix: fix.to_string(),
        }
    }
}

/// What a container's cgroup says, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Memory charged to it now (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory: u64,
    /// The most it was charged since it started, when the kernel keeps it.
    pub memory_max: Option<u64>,
    /// CPU time used since it started.
    pub cpu: Duration,
    /// How many of its processes the kernel killed for memory.
    pub oom_kills: u64,
}

/// A container's cgroup, removed when dropped (after its processes are gone).
#[derive(Debug)]
pub struct Cgroup {
    meter: Meter,
    /// Its folders, one per tree (v1) or one (v2), each once.
    dirs: Vec<PathBuf>,
}

/// How to read a cgroup's figures, from any thread, for as long as it exists.
#[derive(Debug, Clone)]
pub struct Meter {
    version: Version,
    memory: PathBuf,
    cpuacct: Option<PathBuf>,
    pub size: Size,
}

fn base() -> &'static Result<Base, Unavailable> {
    static BASE: OnceLock<Result<Base, Unavailable>> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = find_base()?;
        // What a shipway killed outright (its watchdog too) left behind goes now.
        remove_left(&base, |pid| {
            matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            )
        });
        Ok(base)
    })
}

/// Remove the cgroups the shipway process `pid` made: its watchdog calls it once that
/// process is gone, however it died (no `Drop` ran), and its containers were killed.
pub fn remove_left_by(pid: i32) {
    if let Ok(base) = base() {
        remove_left(base, |p| p == pid);
    }
}

/// Remove every container cgroup whose maker's pid (`label.PID.N`) `gone` says is gone.
fn remove_left(base: &Base, gone: impl Fn(i32) -> bool) {
    let mut trees = vec![&base.memory, &base.pids];
    trees.extend(base.cpu.iter());
    trees.extend(base.cpuacct.iter());
    trees.dedup();
    for tree in trees {
        let Ok(entries) = std::fs::read_dir(tree) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let maker = name
                .to_str()
                .and_then(|n| n.split('.').nth(1)?.parse::<i32>().ok());
            if maker.is_some_and(&gone) && entry.path().is_dir() {
                remove(&entry.path());
            }
        }
        let _ = std::fs::remove_dir(tree);
    }
}

/// Whether container sizes can be enforced here, and why not.
pub fn available() -> Result<(), Unavailable> {
    base().as_ref().map(|_| ()).map_err(Clone::clone)
}

impl Cgroup {
    /// A new cgroup for a container called `label`, limited to `size`.
    pub fn create(label: &str, size: Size) -> Result<Cgroup, Unavailable> {
        let base = base().as_ref().map_err(Clone::clone)?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let name = format!(
            "{clean}.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // Another platform may remove the shared `shipway` folder as it empties (`Drop`)
        // between this one's making it and making a cgroup in it: try again then.
        let mut last = None;
        for _ in 0..3 {
            match make(base, &name, size) {
                Ok(cgroup) => return Ok(cgroup),
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
                Err(e) => return Err(Unavailable::new(format!("cannot make a cgroup: {e}"))),
            }
        }
        Err(Unavailable::new(format!(
            "cannot make a cgroup: {}",
            last.map_or_else(String::new, |e| e.to_string())
        )))
    }

    /// The files the shim writes its program's pid into, before the program runs.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    pub fn meter(&self) -> Meter {
        self.meter.clone()
    }
}

/// Make the cgroup `name` in every tree of `base`, with `size`'s limits; half-made, it is
/// removed again.
fn make(base: &Base, name: &str, size: Size) -> io::Result<Cgroup> {
    let mut trees = vec![&base.memory, &base.pids];
    trees.extend(base.cpu.iter());
    trees.extend(base.cpuacct.iter());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for tree in trees {
        let dir = tree.join(name);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let dir_of = |tree: &Path| tree.join(name);
    let cgroup = Cgroup {
        meter: Meter {
            version: base.version,
            memory: dir_of(&base.memory),
            cpuacct: base.cpuacct.as_deref().map(dir_of),
            size,
        },
        dirs: Vec::new(),
    };
    let mut cgroup = cgroup;
    for dir in &dirs {
        let parent = dir.parent().unwrap_or(dir);
        match base.version {
            // Each time: the folder may have been removed and made again meanwhile.
            Version::V2 => enable_controllers(parent)?,
            Version::V1 => make_dir(parent)?,
        }
        std::fs::create_dir(dir)?;
        cgroup.dirs.push(dir.clone());
    }
    let memory = size.memory.to_string();
    let processes = size.processes.to_string();
    let memory_dir = dir_of(&base.memory);
    let pids_dir = dir_of(&base.pids);
    match base.version {
        Version::V2 => {
            write(&memory_dir, "memory.max", &memory)?;
            // No swap, as on the platform. Without swap accounting the file is absent
            // and there is no swap to forbid.
            write_if_present(&memory_dir, "memory.swap.max", "0")?;
            // The platform stops the container, not only its largest process.
            write_if_present(&memory_dir, "memory.oom.group", "1")?;
            write(&pids_dir, "pids.max", &processes)?;
            if let Some(cpu) = &base.cpu {
                write_if_present(&dir_of(cpu), "cpu.weight", &size.cpu.weight().to_string())?;
            }
        }
        Version::V1 => {
            write(&memory_dir, "memory.limit_in_bytes", &memory)?;
            // memory+swap at the memory limit: no swap. Without swap accounting
            // (`swapaccount=0`) the kernel is only asked not to swap.
            if memory_dir.join("memory.memsw.limit_in_bytes").exists() {
                write(&memory_dir, "memory.memsw.limit_in_bytes", &memory)?;
            } else {
                write(&memory_dir, "memory.swappiness", "0")?;
            }
            write(&pids_dir, "pids.max", &processes)?;
            if let Some(cpu) = &base.cpu {
                write(&dir_of(cpu), "cpu.shares", &cpu_shares(size.cpu).to_string())?;
            }
        }
    }
    Ok(cgroup)
}

/// v1 `cpu.shares` of a priority: 1024 is the kernel's default, Standard.
fn cpu_shares(cpu: CpuPriority) -> u32 {
    cpu.weight() * 1024 / 100
}

/// Let the cgroups in `dir` have the memory, pids and (when it can) cpu controllers.
fn enable_controllers(dir: &Path) -> io::Result<()> {
    make_dir(dir)?;
    let control = dir.join("cgroup.subtree_control");
    if std::fs::write(&control, "+memory +pids +cpu").is_err() {
        std::fs::write(&control, "+memory +pids")?;
    }
    Ok(())
}

/// Make `dir` unless it is there.
fn make_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir(dir).or_else(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Ok(()),
        _ => Err(e),
    })
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {value} to {}: {e}", dir.join(file).display()),
        )
    })
}

fn write_if_present(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    if dir.join(file).exists() {
        write(dir, file, value)
    } else {
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            remove(dir);
            // The shared folder goes too once empty; another platform's cgroup in it
            // keeps it (EBUSY), which is right.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Remove a container's cgroup. Its processes have ended; the kernel may take a moment
/// to release them, and anything still in it is killed: a container's end is the end of
/// everything in it.
fn remove(dir: &Path) {
    let deadline = Instant::now() + REMOVE_DEADLINE;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) if Instant::now() >= deadline => return,
            Err(_) => {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Meter {
    /// The cgroup's figures now; None once it is gone.
    pub fn read(&self) -> Option<Usage> {
        let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
        let number = |dir: &Path, file: &str| read(dir, file).and_then(|t| t.trim().parse::<u64>().ok());
        match self.version {
            Version::V2 => Some(Usage {
                memory: number(&self.memory, "memory.current")?,
                memory_max: number(&self.memory, "memory.peak"),
                cpu: read(&self.memory, "cpu.stat")
                    .and_then(|t| keyed(&t, "usage_usec"))
                    .map(Duration::from_micros)
                    .unwrap_or_default(),
                oom_kills: read(&self.memory, "memory.events")
                    .and_then(|t| keyed(&t, "oom_kill"))
                    .unwrap_or(0),
            }),
            Version::V1 => Some(Usage {
                memory: number(&self.memory, "memory.usage_in_bytes")?,
                memory_max: number(&self.memory, "memory.max_usage_in_bytes"),
                cpu: self
                    .cpuacct
                    .as_deref()
                    .and_then(|d| number(d, "cpuacct.usage"))
                    .map(Duration::from_nanos)
                    .unwrap_or_default(),
                // Kernels before 4.13 do not count kills here; `under_oom` is no count.
                oom_kills: read(&self.memory, "memory.oom_control")
                    .and_then(|t| keyed(&t, "oom_kill"))
                    .unwrap_or(0),
            }),
        }
    }
}

/// The number after `key` in a cgroup file of `key value` lines (`memory.events`,
/// `cpu.stat`, `memory.oom_control`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A cgroup tree mounted on this machine, as `/proc/self/mounts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    pub path: PathBuf,
    /// v1: the controllers of the tree (`memory`; `cpu,cpuacct` share one); v2: none.
    pub controllers: Vec<String>,
    pub version: Version,
}

/// The cgroup trees in a `/proc/self/mounts` text.
fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, path, kind, options) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
            let path = PathBuf::from(unescape_mount(path));
            match kind {
                "cgroup2" => Some(Mount {
                    path,
                    controllers: Vec::new(),
                    version: Version::V2,
                }),
                "cgroup" => Some(Mount {
                    path,
                    controllers: options
                        .split(',')
                        .filter(|o| matches!(*o, "memory" | "pids" | "cpu" | "cpuacct"))
                        .map(str::to_string)
                        .collect(),
                    version: Version::V1,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Spaces and the like are written `\040` in mounts.
fn unescape_mount(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let n = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's own cgroup in each tree, from a `/proc/self/cgroup` text: by
/// controller for v1 (`memory` -> `/a/b`), and under `""` for v2 (`0::/a/b`).
fn parse_own(text: &str) -> Vec<(String, String)> {
    let mut own = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if controllers.is_empty() {
            own.push((String::new(), path.to_string()));
        } else {
            for c in controllers.split(',') {
                own.push((c.to_string(), path.to_string()));
            }
        }
    }
    own
}

fn find_base() -> Result<Base, Unavailable> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|e| Unavailable::new(format!("cannot read /proc/self/mounts: {e}")))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Unavailable::new(format!("cannot read /proc/self/cgroup: {e}")))?;
    let mounts = parse_mounts(&mounts);
    let own = parse_own(&own);
    let own_in = |controller: &str| {
        own.iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p.trim_start_matches('/').to_string())
    };
    let root = nix::unistd::geteuid().is_root();
    // v2 when its tree has the controllers (a hybrid machine mounts an empty one beside
    // the v1 trees), else v1.
    let v2 = mounts.iter().find(|m| {
        m.version == Version::V2
            && std::fs::read_to_string(m.path.join("cgroup.controllers"))
                .is_ok_and(|c| has(&c, "memory") && has(&c, "pids"))
    });
    if let Some(m) = v2 {
        return v2_base(&m.path, &own_in("").unwrap_or_default(), root);
    }
    let tree = |controller: &str| {
        mounts
            .iter()
            .find(|m| m.version == Version::V1 && m.controllers.iter().any(|c| c == controller))
            .map(|m| m.path.clone())
    };
    let (Some(memory), Some(pids)) = (tree("memory"), tree("pids")) else {
        return Err(Unavailable::new(
            "no cgroup v2 tree with the memory and pids controllers, nor v1 memory and pids trees, is mounted",
        ));
    };
    // Below this process's own cgroup first, so that limits set on shipway itself (a CI
    // job's) still hold; at the top of the tree when that one cannot be written.
    let place = |tree: &Path, controller: &str| -> Option<PathBuf> {
        let mut candidates = Vec::new();
        if let Some(own) = own_in(controller).filter(|o| !o.is_empty()) {
            candidates.push(tree.join(own).join(OWN));
        }
        candidates.push(tree.join(OWN));
        candidates.into_iter().find(|c| usable(c))
    };
    let why = |controller: &str, tree: &Path| {
        Unavailable::new(format!(
            "cannot make a cgroup in the v1 {controller} tree at {}{}",
            tree.display(),
            if root { "" } else { ": it is root's" }
        ))
    };
    let memory = place(&memory, "memory").ok_or_else(|| why("memory", &memory))?;
    let pids = place(&pids, "pids").ok_or_else(|| why("pids", &pids))?;
    let cpu = tree("cpu").and_then(|t| place(&t, "cpu"));
    let cpuacct = tree("cpuacct").and_then(|t| place(&t, "cpuacct"));
    Ok(Base {
        version: Version::V1,
        memory,
        pids,
        cpu,
        cpuacct,
    })
}

/// Whether a `shipway` folder can be made (or is there) at `dir` and cgroups made in it.
fn usable(dir: &Path) -> bool {
    let made = match std::fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(_) => return false,
    };
    let probe = dir.join(format!("probe.{}", std::process::id()));
    let ok = std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok();
    if made {
        let _ = std::fs::remove_dir(dir);
    }
    ok
}

/// v2: at the top of the tree as root (the only cgroup that may hold processes and give
/// controllers to its children at once), else the nearest ancestor of this process's
/// cgroup that was delegated to its user (it gives memory and pids to its children and
/// lets them be made).
fn v2_base(mount: &Path, own: &str, root: bool) -> Result<Base, Unavailable> {
    let mut candidates = Vec::new();
    if root {
        candidates.push(mount.to_path_buf());
    }
    let mut path = PathBuf::from(own);
    while path.pop() {
        candidates.push(mount.join(&path));
    }
    if root {
        // The top gives its children these controllers only when told to (systemd does).
        let _ = std::fs::write(mount.join("cgroup.subtree_control"), "+memory +pids +cpu");
    }
    let found = candidates.into_iter().find(|dir| {
        let given = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        (dir == mount || (has(&given, "memory") && has(&given, "pids")))
            && (dir.join(OWN).exists() || nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok())
            && {
                let own_dir = dir.join(OWN);
                enable_controllers(&own_dir).is_ok() && usable(&own_dir)
            }
    });
    let Some(dir) = found else {
        return Err(Unavailable::new(if root {
            format!(
                "cannot make a cgroup at the top of the v2 tree at {}",
                mount.display()
            )
        } else {
            format!(
                "no cgroup of this user's is delegated in the v2 tree at {} (this process is in /{own})",
                mount.display()
            )
        }));
    };
    let own_dir = dir.join(OWN);
    // Made only to be checked: each cgroup makes it again as it needs it (`Drop` removes it
    // when empty).
    let _ = std::fs::remove_dir(&own_dir);
    let cpu = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .is_ok_and(|c| has(&c, "cpu") || dir == mount)
        .then(|| own_dir.clone());
    Ok(Base {
        version: Version::V2,
        memory: own_dir.clone(),
        pids: own_dir.clone(),
        cpu,
        cpuacct: Some(own_dir),
    })
}

/// Whether a space-separated controller list names `controller`.
fn has(list: &str, controller: &str) -> bool {
    list.split_whitespace().any(|c| c == controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_are_read_by_key() {
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "oom"), Some(2));
        let control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(control, "oom_kill"), Some(3));
        // A kernel before 4.13 has no count.
        assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"), None);
        let stat = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(keyed(stat, "usage_usec"), Some(1500));
        assert_eq!(keyed(stat, "usage"), None);
    }

    #[test]
    fn mounts_give_v1_trees_with_their_controllers_and_the_v2_tree() {
        let text = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
proc /proc proc rw 0 0
";
        let mounts = parse_mounts(text);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].path, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[1].controllers, ["memory"]);
        assert!(mounts[3].controllers.is_empty(), "name=systemd has none of ours");
        assert_eq!(mounts[4].version, Version::V2);
        let spaced = parse_mounts("cgroup2 /mnt/my\\040tree cgroup2 rw 0 0\n");
        assert_eq!(spaced[0].path, Path::new("/mnt/my tree"));
    }

    #[test]
    fn own_cgroups_by_controller_and_the_v2_one() {
        let text = "9:name=systemd:/\n4:memory:/ci/job-7\n2:cpu,cpuacct:/\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n";
        let own = parse_own(text);
        let get = |c: &str| own.iter().find(|(k, _)| k == c).map(|(_, p)| p.as_str());
        assert_eq!(get("memory"), Some("/ci/job-7"));
        assert_eq!(get("cpuacct"), Some("/"));
        assert_eq!(get("cpu"), Some("/"));
        assert_eq!(
            get(""),
            Some("/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope")
        );
    }

    #[test]
    fn priorities_become_v1_shares_around_the_default() {
        assert_eq!(cpu_shares(CpuPriority::Standard), 1024);
        assert_eq!(cpu_shares(CpuPriority::Low), 512);
        assert_eq!(cpu_shares(CpuPriority::High), 2048);
    }
}
