//! Runs a shipway router for `bench/router.sh`: `router <upstream addr> [http|tcp] [workers]`.
//!
//! Listens on 127.0.0.1 (an OS-given port), switches to the given upstream, prints the
//! router's address on stdout and serves until stdin reaches EOF, so the script controls
//! its lifetime without signals. Not a timed benchmark: wrk does the measuring.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use shipway::router::{Protocol, Router, RouterConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let Some(upstream) = args.first().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: router <upstream ip:port> [http|tcp] [workers]");
        return ExitCode::from(2);
    };
    let protocol = match args.get(1).map(String::as_str) {
        Some("tcp") => Protocol::Tcp,
        _ => Protocol::Http,
    };
    let mut config = RouterConfig::default();
    if let Some(workers) = args.get(2).and_then(|w| w.parse().ok()) {
        config.workers = workers;
    }
    let router = match TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| Router::start(listener, protocol, config))
    {
        Ok(router) => router,
        Err(e) => {
            eprintln!("cannot start the router: {e}");
            return ExitCode::FAILURE;
        }
    };
    router.switch(vec![upstream]);
    println!("{}", router.local_addr());
    let _ = io::stdout().flush();
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    router.shutdown();
    ExitCode::SUCCESS
}
