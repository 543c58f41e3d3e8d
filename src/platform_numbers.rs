//! The platform's numbers, in one table: its container sizes with their memory, process
//! limit and CPU priority (PLATFORM.md §10), the most containers of a type, and its
//! scheduler's intervals. `scale`, `run`, `cron.json`, `scalingo.json` and the settings'
//! defaults all read them here, so that they cannot disagree. It also names the stacks that
//! the layers under `stack` need (a new app's, and the one apps had before stacks) and where
//! the platform publishes their images, so that `state` and `settings` do not import the
//! stack machinery to read a default. It holds values only: nothing here enforces them.

use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// How much of a contested CPU a container gets, relative to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuPriority {
    /// Half of Standard.
    Low,
    Standard,
    /// Twice Standard.
    High,
}

impl CpuPriority {
    /// The priority as a cgroup v2 `cpu.weight`, whose default (100) is Standard.
    pub fn weight(self) -> u32 {
        match self {
            CpuPriority::Low => 50,
            CpuPriority::Standard => 100,
            CpuPriority::High => 200,
        }
    }
}

/// One container size of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// As the platform writes it, and as CONTAINER_SIZE says it: `S`, `2XL`.
    pub name: &'static str,
    /// CONTAINER_MEMORY, in bytes.
    pub memory: u64,
    /// The most processes (and threads) the container may hold at once.
    pub processes: u32,
    pub cpu: CpuPriority,
}

/// The platform's sizes, smallest first (doc.scalingo.com, "Container Sizes"; 3XL since
/// 2026-07-21).
pub const SIZES: [Size; 6] = [
    size("S", 256, 128, CpuPriority::Low),
    size("M", 512, 256, CpuPriority::Standard),
    size("L", 1024, 512, CpuPriority::Standard),
    size("XL", 2048, 1024, CpuPriority::High),
    size("2XL", 4096, 2048, CpuPriority::High),
    size("3XL", 8192, 4096, CpuPriority::High),
];

/// A container's size when nothing names one: M.
pub const DEFAULT_SIZE: Size = SIZES[1];

const fn size(name: &'static str, memory_mib: u64, processes: u32, cpu: CpuPriority) -> Size {
    Size {
        name,
        memory: memory_mib * MIB,
        processes,
        cpu,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a container size of the platform (the sizes are {})",
    size_names()
)]
pub struct UnknownSize {
    pub given: String,
}

impl Size {
    /// The size named `name`, as the platform spells it.
    pub fn named(name: &str) -> Result<Size, UnknownSize> {
        SIZES
            .iter()
            .find(|s| s.name == name)
            .copied()
            .ok_or_else(|| UnknownSize {
                given: name.to_string(),
            })
    }
}

/// The sizes' names, for messages: `S, M, L, XL, 2XL, 3XL`.
pub fn size_names() -> String {
    SIZES.map(|s| s.name).join(", ")
}

/// The most containers of one process type: `scale` and `scalingo.json`'s formation refuse
/// more.
pub const MAX_PER_TYPE: u32 = 10;

/// The most jobs an app's `cron.json` may hold.
pub const CRON_MAX_JOBS: usize = 5;
/// The smallest interval between two runs of a scheduled job: the platform fails a
/// deployment whose `cron.json` has a shorter one.
pub const CRON_MIN_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// The longest a scheduled run may last (shorter when its interval is).
pub const CRON_MAX_RUN: Duration = Duration::from_secs(15 * 60);

/// The stack of a new app.
pub const DEFAULT_STACK: &str = "scalingo-26";
/// The stack of an app made before shipway had stacks: the `STACK` every app had then.
pub const BEFORE_STACKS: &str = "scalingo-24";
/// Docker Hub's registry, where the platform publishes its stacks.
pub const DOCKER_HUB: &str = "https://registry-1.docker.io";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_double_from_s_to_3xl() {
        assert_eq!(size_names(), "S, M, L, XL, 2XL, 3XL");
        assert_eq!(SIZES[0].memory, 256 * MIB);
        assert_eq!(SIZES[5].memory, 8 * 1024 * MIB);
        for pair in SIZES.windows(2) {
            assert_eq!(pair[1].memory, 2 * pair[0].memory, "{}", pair[1].name);
            assert_eq!(pair[1].processes, 2 * pair[0].processes, "{}", pair[1].name);
        }
        assert_eq!(DEFAULT_SIZE.name, "M");
        assert_eq!(DEFAULT_SIZE.memory, 536_870_912);
    }

    #[test]
    fn cpu_weights_are_half_and_twice_standard() {
        let standard = CpuPriority::Standard.weight();
        assert_eq!(CpuPriority::Low.weight() * 2, standard);
        assert_eq!(CpuPriority::High.weight(), standard * 2);
        assert_eq!(Size::named("S").unwrap().cpu, CpuPriority::Low);
        assert_eq!(Size::named("L").unwrap().cpu, CpuPriority::Standard);
        assert_eq!(Size::named("XL").unwrap().cpu, CpuPriority::High);
    }

    #[test]
    fn an_unknown_size_is_refused_with_the_valid_ones() {
        assert_eq!(Size::named("3XL").unwrap().processes, 4096);
        for bad in ["4XL", "XXL", "m", ""] {
            let err = Size::named(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("S, M, L, XL, 2XL, 3XL"),
                "{err}"
            );
        }
    }
}
