//! Integration tests: the real `shipway` binary driven on fixtures.

mod build;
mod deploy;
mod faults;
mod harness;
mod ops;
mod triggers;
