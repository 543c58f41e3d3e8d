//! The platform process and how the CLI reaches it (DESIGN.md "Processes"): the supervisor
//! owns routers and containers; the client sends one request over the Unix socket and
//! prints the events that come back.

pub mod applog;
mod caller;
mod cancel;
pub mod client;
mod context;
mod cron;
mod dashboard;
mod deploy;
pub mod events;
mod jobs;
mod life;
mod listen;
pub(crate) mod lock;
mod message;
mod opened;
pub mod protocol;
mod provisioning;
mod routing;
pub mod server;
mod supervisor;
pub mod telemetry;
mod turn;
pub mod watchdog;
