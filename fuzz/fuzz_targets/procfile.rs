//! The Procfile parser on any bytes, read the way `Procfile::load` reads a file. What it
//! accepts must obey the platform's rules it enforces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipway::procfile::Procfile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(procfile) = Procfile::parse(&text) else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for (name, command) in &procfile.types {
        assert!(!name.is_empty() && name.len() <= 24, "{name:?}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name:?}");
        assert!(seen.insert(name.clone()), "{name:?} declared twice");
        assert!(!command.is_empty() && command.trim() == command, "{command:?}");
        assert!(!command.contains('\n'), "{command:?}");
    }
});
