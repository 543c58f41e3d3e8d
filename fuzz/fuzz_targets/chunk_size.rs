//! A chunk size comes from any client or app: a size of any length must be read exactly or
//! refused (the router then answers 400), never wrapped round or read short.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shipway::router::check_chunk_size(data);
});
