//! The bundled Go, Ruby and PHP buildpacks end to end, on Debian's toolchains (`golang-go`,
//! `ruby` with `ruby-bundler`, `php-cli` with `composer`, which `.ci/run` installs). Each
//! sample asks for the version Debian ships and needs nothing from its language's package
//! registry: it is deployed, served, scaled to two web containers that both answer, and
//! redeployed with the build cache of the first build, as the Python and Node.js samples are.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::*;

/// The bodies of GET / over new connections until every one of `expected` was seen.
#[track_caller]
fn all_answer(addr: &str, expected: &[String]) {
    let expected: BTreeSet<String> = expected.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    eventually(Duration::from_secs(30), &format!("answers {expected:?}"), || {
        for _ in 0..4 {
            if let Ok((200, b)) = get(addr, "/") {
                seen.insert(b);
            }
        }
        expected.is_subset(&seen)
    });
    // Only those: no answer from an old release or another app once all were seen.
    seen.clear();
    for _ in 0..6 {
        if let Ok((200, b)) = get(addr, "/") {
            seen.insert(b);
        }
    }
    assert!(seen.is_subset(&expected), "{seen:?} not in {expected:?}");
}

/// `name version=V container=web-N` of the sample `name`, for web-1 and web-2.
fn both(name: &str, version: u32) -> Vec<String> {
    (1..=2)
        .map(|n| format!("{name} version={version} container=web-{n}\n"))
        .collect()
}

/// Deploys the sample `fixture` (its build must say `says`), serves it, scales it to two
/// web containers, then redeploys it with a new VERSION (the build must say `warm`).
/// Returns the environment, for more checks of the running app.
fn deploys_serves_scales_and_redeploys(fixture: &str, says: &[&str], warm: &[&str]) -> Env {
    let env = Env::new();
    let dir = env.app(fixture);
    let mut run = env.deploy(&dir, fixture, &[]).ok();
    for text in says {
        run = run.has(text);
    }
    let addr = url_of(&run);
    assert_eq!(body(&addr), format!("{fixture} version=1 container=web-1\n"));

    env.run(&["scale", "-a", fixture, "web=2"]).ok();
    all_answer(&addr, &both(fixture, 1));

    std::fs::write(dir.join("VERSION"), "2\n").unwrap();
    let mut run = env.deploy(&dir, fixture, &[]).ok();
    for text in says.iter().chain(warm) {
        run = run.has(text);
    }
    all_answer(&url_of(&run), &both(fixture, 2));
    env
}

#[test]
fn a_go_sample_on_debians_go_builds_serves_scales_and_redeploys_with_its_build_cache() {
    let env = deploys_serves_scales_and_redeploys(
        "go",
        &[
            "-----> Go go1.19 asked (the go line of go.mod): the platform installs go1.19.13",
            "-----> Using Go 1.19.",
            "-----> Running: go build -o bin/ ./...",
            "Installed: goweb",
        ],
        &["Reusing the Go build cache of the last build"],
    );
    // The release's web command is the binary named after the module, as upstream.
    env.run(&["run", "-a", "go", "command -v goweb"])
        .ok()
        .has("bin/goweb");
}

#[test]
fn a_ruby_sample_on_debians_ruby_builds_serves_scales_and_redeploys() {
    let env = deploys_serves_scales_and_redeploys(
        "ruby",
        &[
            "-----> Using Ruby 3.1.2 specified in Gemfile.lock",
            "-----> Using Ruby 3.1.2 (PATH: ",
            "-----> Installing dependencies using bundler",
            "Bundle complete!",
        ],
        &[],
    );
    // Bundler's settings travel with the app: the run-time bundle is the build's.
    env.run(&["run", "-a", "ruby", "ruby -v && bundle config get path"])
        .ok()
        .has("ruby 3.1.2")
        .has("vendor/bundle");
}

#[test]
fn a_php_sample_on_debians_php_builds_serves_scales_and_redeploys() {
    let env = deploys_serves_scales_and_redeploys(
        "php",
        &[
            "-----> PHP ^8.2 asked (composer.json require.php)",
            "-----> Using PHP 8.2.",
            "-----> Installing dependencies with composer",
        ],
        &[],
    );
    // The PHP chosen is `php` at run time too.
    env.run(&["run", "-a", "php", "command -v php && php -r 'echo PHP_VERSION;'"])
        .ok()
        .has(".php/bin/php")
        .has("8.2.");
}
