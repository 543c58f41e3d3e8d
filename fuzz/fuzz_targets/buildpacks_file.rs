//! `.buildpacks` as the app ships it, read by `build::select` with no flag and no config
//! var, so that the file is the rule that applies.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shipway::build::{select, Reason};
use shipway::config_vars::ConfigVars;

static APP: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let app = APP.get_or_init(|| {
        let app = shipway_fuzz::scratch("buildpacks_file").join("app");
        std::fs::create_dir(&app).expect("create the app folder");
        app
    });
    std::fs::write(app.join(".buildpacks"), data).expect("write .buildpacks");
    let Ok(selection) = select(&[], &ConfigVars::new(), app, app) else {
        return;
    };
    assert!(matches!(selection.reason, Reason::DotBuildpacks));
    assert!(!selection.specs.is_empty());
    for spec in &selection.specs {
        assert!(!spec.is_empty() && spec.trim() == spec, "{spec:?}");
        assert!(!spec.starts_with('#') && !spec.contains('\n'), "{spec:?}");
    }
});
