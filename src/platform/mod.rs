//! The platform process and how the CLI reaches it (DESIGN.md "Processes"): the server
//! owns routers and containers; the client sends one request over the Unix socket and
//! prints the events that come back.

mod applog;
pub mod client;
mod operations;
pub mod protocol;
pub mod server;
mod supervisor;
pub mod watchdog;
