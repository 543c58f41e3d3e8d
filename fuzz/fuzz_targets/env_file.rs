//! `.env` files and `NAME=value` pairs: whatever is accepted must be a valid config var.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipway::config_vars::{parse_env_file, parse_pair, validate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(vars) = parse_env_file(".env", &text) {
        for (name, value) in &vars {
            assert!(validate(name, value).is_ok(), "{name:?}={value:?}");
        }
    }
    if let Ok((name, value)) = parse_pair(&text) {
        assert!(validate(&name, &value).is_ok(), "{name:?}={value:?}");
        assert_eq!(format!("{name}={value}"), text);
    }
});
