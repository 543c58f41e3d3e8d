//! Request heads come from any client of the router, and response heads from any app: any
//! bytes must give a rewrite that keeps the router's promises (the app and the client frame
//! each body as the router does, no hop-by-hop header crosses, the platform's headers are
//! there once each) or be refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shipway::router::check_head_rewrite(data);
});
