//! Transfer-Encoding values come from any client: a request is refused unless it has one,
//! a lone `chunked` (RFC 9112 §6.1, as nginx applies it), and an accepted one keeps every
//! promise of the head rewrite.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shipway::router::check_transfer_encoding(data);
});
