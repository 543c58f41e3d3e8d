//! `bin/release` output is printed by a buildpack, which may be anyone's: any bytes must
//! give a value or an error, never a panic, a hang or an explosion of memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipway::release_yaml::ReleaseYaml;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ReleaseYaml::parse(&text);
});
