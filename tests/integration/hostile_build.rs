//! Hostile input to the build, written as the adversarial probe wrote it (issue 21): keys of
//! `scalingo.json`, floods of build output, buildpack URLs and refs, huge config vars.

use std::path::Path;

use crate::harness::*;

/// `dir/scalingo.json` with one `env` key.
fn manifest_with_key(dir: &Path, key: &str, value: &str) {
    let text = serde_json::json!({ "env": { key: value } }).to_string();
    std::fs::write(dir.join("scalingo.json"), text).unwrap();
}

#[test]
fn scalingo_json_env_keys_that_name_paths_are_refused_and_write_nothing() {
    let env = Env::new();
    let outside = env.work.path().join("pwned-cron");
    let cron_line = "* * * * * root touch /tmp/pwned\n";
    // The probe's exact key, then the same attack aimed where this test can look, then `../`.
    let probe_target = Path::new("/tmp/x");
    let probe_target_before = std::fs::metadata(probe_target)
        .ok()
        .map(|m| m.modified().unwrap());
    let keys = [
        "/tmp/x".to_string(),
        outside.display().to_string(),
        "../../../../pwned-cron".to_string(),
    ];
    for (i, key) in keys.iter().enumerate() {
        let app = format!("keys{i}");
        let dir = env.app_as("env-echo", &app);
        manifest_with_key(&dir, key, cron_line);
        env.deploy(&dir, &app, &["--env", &procfile_only()])
            .code(10)
            .has("scalingo.json is not a valid manifest")
            .has(&format!("config var name {key:?} is invalid"));
        env.run(&["env", "-a", &app]).ok().lacks("pwned");
    }
    assert!(
        !outside.exists(),
        "a scalingo.json key wrote {}",
        outside.display()
    );
    let after = std::fs::metadata(probe_target)
        .ok()
        .map(|m| m.modified().unwrap());
    assert_eq!(probe_target_before, after, "/tmp/x was written");
    let leaked: Vec<_> = walkdir_names(env.home.path())
        .into_iter()
        .filter(|n| n == "pwned-cron")
        .collect();
    assert!(leaked.is_empty());
}

#[test]
fn a_config_var_name_stored_before_names_were_checked_is_refused_at_the_next_build() {
    let env = Env::new();
    let dir = env.app_as("env-echo", "stored");
    env.run(&["create", "stored"]).ok();
    env.run(&["env-set", "-a", "stored", "A=1"]).ok();
    // What an older shipway stored from `{"env":{"/tmp/x":...}}`, aimed at this test's folder.
    let outside = env.work.path().join("x");
    let toml = env.home.path().join("apps/stored/app.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "A = \"1\"",
        &format!(
            "A = \"1\"\n\"{}\" = \"* * * * * root touch /tmp/pwned\\n\"",
            outside.display()
        ),
    );
    std::fs::write(&toml, text).unwrap();
    let unset = format!("shipway env-unset -a stored {}", outside.display());
    env.deploy(&dir, "stored", &["--env", &procfile_only()])
        .code(10)
        .has(&format!(
            "config var name {:?} is invalid",
            outside.display().to_string()
        ))
        .has("it was stored before shipway checked every name")
        .has(&unset);
    assert!(!outside.exists(), "a stored key wrote {}", outside.display());
    // The way out it names works.
    env.run(&["env-unset", "-a", "stored", &outside.display().to_string()])
        .ok();
    env.deploy(&dir, "stored", &[]).ok();
    assert!(!outside.exists());
}

/// Every file name under `root`.
fn walkdir_names(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            names.push(entry.file_name().to_string_lossy().into_owned());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    names
}
