//! A chunked body comes from any client or app, and the router must end it at the same byte
//! as the other side: any bytes must end at the same place whether fed whole or byte by
//! byte, and where a line-by-line reading of the same rules says, or be refused by both.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shipway::router::check_chunked_body(data);
});
