//! Integration tests: the real `shipway` binary driven on fixtures.

mod build;
mod deploy;
mod escapes;
mod faults;
mod harness;
mod ops;
mod sandbox;
mod triggers;
