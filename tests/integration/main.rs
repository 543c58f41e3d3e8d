//! Integration tests: the real `shipway` binary driven on fixtures.

mod addons;
mod build;
mod buildpack_urls;
mod cli;
mod cli_verbs;
mod cron;
mod dashboard;
mod deploy;
mod escapes;
mod faults;
mod harness;
mod hostile_build;
mod hostile_surface;
mod lifecycle;
mod ops;
mod output;
mod router_figures;
mod runtimes;
mod runtimes_langs;
mod runtimes_node;
mod sandbox;
mod stack_image;
mod stack_runtime;
mod stacks;
mod timeline;
mod triggers;
