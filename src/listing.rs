//! The rows `ps` and `addons` list: what the platform answers over its socket and what
//! `commands::tables` prints. They sit apart from both so that neither imports the other to
//! name them. Data only: the platform fills them, the CLI shows them.

use serde::{Deserialize, Serialize};

/// One row of `shipway addons`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonRow {
    pub id: String,
    pub addon: String,
    pub plan: String,
    /// `running`, `restarting`, `crashed` (given up after crashing) or `stopped`.
    pub status: String,
    pub port: u16,
    pub pid: Option<u32>,
}

/// One row of `shipway ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRow {
    pub name: String,
    pub status: String,
    pub command: String,
    pub port: Option<u16>,
    pub pid: Option<u32>,
    /// In its current life (docs/cli.md: durations are `_ms` integers).
    pub uptime_ms: Option<u64>,
    pub restarts: u32,
    pub release: Option<u32>,
    /// How a crashed container last ended.
    pub exit: Option<String>,
    /// Every live process of the container: the program and what it started, including
    /// what left its process group (which the container still owns).
    #[serde(default)]
    pub processes: Vec<ProcessRow>,
    /// Memory charged to its cgroup now, and its size's limit: unknown without one.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessRow {
    pub pid: u32,
    pub command: String,
    /// Whether it is still in the container's process group (`setsid` leaves it).
    pub in_group: bool,
}
