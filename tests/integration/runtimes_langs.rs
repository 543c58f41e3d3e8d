//! The bundled Go, Ruby and PHP buildpacks end to end, on Debian's toolchains (`golang-go`,
//! `ruby` with `ruby-bundler`, `php-cli` with `composer`, which `.ci/run` installs). Each
//! sample asks for the version Debian ships and needs nothing from its language's package
//! registry: it is deployed, served, scaled to two web containers that both answer, and
//! redeployed with the build cache of the first build, as the Python and Node.js samples are.

use std::collections::BTreeSet;
use std::path::Path;
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

/// What a build must say: every time (`says`), the first time only (`cold`), and on the
/// redeploy only, from what the first build left in the cache (`warm`).
struct Says<'a> {
    says: &'a [&'a str],
    cold: &'a [&'a str],
    warm: &'a [&'a str],
}

/// Deploys the sample `fixture` (once `prepare` has had its copy), serves it, scales it to
/// two web containers, then redeploys it with a new VERSION (after `before_redeploy`),
/// checking what each build says. Returns the environment, for more checks of the running app.
fn deploys_serves_scales_and_redeploys(
    fixture: &str,
    prepare: fn(&Env, &Path),
    before_redeploy: fn(&Env, &Path),
    said: Says,
) -> Env {
    let Says { says, cold, warm } = said;
    let env = Env::new();
    let dir = env.app(fixture);
    prepare(&env, &dir);
    let mut run = env.deploy(&dir, fixture, &[]).ok();
    for text in says.iter().chain(cold) {
        run = run.has(text);
    }
    for text in warm {
        run = run.lacks(text);
    }
    let addr = url_of(&run);
    assert_eq!(body(&addr), format!("{fixture} version=1 container=web-1\n"));

    env.run(&["scale", "-a", fixture, "web=2"]).ok();
    all_answer(&addr, &both(fixture, 1));

    before_redeploy(&env, &dir);
    std::fs::write(dir.join("VERSION"), "2\n").unwrap();
    let mut run = env.deploy(&dir, fixture, &[]).ok();
    for text in says.iter().chain(warm) {
        run = run.has(text);
    }
    for text in cold {
        run = run.lacks(text);
    }
    all_answer(&url_of(&run), &both(fixture, 2));
    env
}

#[test]
fn a_go_sample_on_debians_go_builds_serves_scales_and_redeploys_with_its_build_cache() {
    let env = deploys_serves_scales_and_redeploys(
        "go",
        |_, _| {},
        |_, _| {},
        Says {
            says: &[
                "-----> Go go1.19 asked (the go line of go.mod): the platform installs go1.19.13",
                "-----> Using Go 1.19.",
                "-----> Running: go build -o bin/ ./...",
                "Installed: goweb",
            ],
            cold: &[],
            warm: &["Reusing the Go build cache of the last build"],
        },
    );
    // The release's web command is the binary named after the module, as upstream.
    env.run(&["run", "-a", "go", "command -v goweb"])
        .ok()
        .has("bin/goweb");
}

/// A gem of the test's own, built here and put in the app's vendor/cache, where bundler
/// installs it from without any registry; recorded in the Gemfile and its lock.
fn with_a_cached_gem(env: &Env, app: &Path) {
    let src = env.work.path().join("greeting-gem");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(
        src.join("greeting.gemspec"),
        "Gem::Specification.new do |s|\n  s.name = \"greeting\"\n  s.version = \"1.0.0\"\n  \
         s.summary = \"a gem of shipway's test\"\n  s.authors = [\"shipway\"]\n  \
         s.files = [\"lib/greeting.rb\"]\nend\n",
    )
    .unwrap();
    std::fs::write(
        src.join("lib/greeting.rb"),
        "module Greeting\n  def self.hello = \"hello from the cached gem\"\nend\n",
    )
    .unwrap();
    run_ok(&src, "gem", &["build", "greeting.gemspec"]);
    std::fs::create_dir_all(app.join("vendor/cache")).unwrap();
    std::fs::copy(
        src.join("greeting-1.0.0.gem"),
        app.join("vendor/cache/greeting-1.0.0.gem"),
    )
    .unwrap();
    let gemfile = std::fs::read_to_string(app.join("Gemfile")).unwrap();
    std::fs::write(app.join("Gemfile"), format!("{gemfile}gem \"greeting\"\n")).unwrap();
    let lock = std::fs::read_to_string(app.join("Gemfile.lock")).unwrap();
    let lock = lock
        .replacen("  specs:\n", "  specs:\n    greeting (1.0.0)\n", 1)
        .replacen("DEPENDENCIES\n", "DEPENDENCIES\n  greeting\n", 1);
    assert!(
        lock.contains("greeting (1.0.0)") && lock.contains("  greeting\n"),
        "{lock}"
    );
    std::fs::write(app.join("Gemfile.lock"), lock).unwrap();
}

#[test]
fn a_ruby_sample_on_debians_ruby_builds_serves_scales_and_redeploys_with_the_gems_of_the_last_build() {
    let env = deploys_serves_scales_and_redeploys(
        "ruby",
        with_a_cached_gem,
        |_, _| {},
        Says {
            says: &[
                "-----> Using Ruby 3.1.2 specified in Gemfile.lock",
                "-----> Using Ruby 3.1.2 (PATH: ",
                "-----> Installing dependencies using bundler",
                "Bundle complete!",
            ],
            cold: &["Installing greeting 1.0.0"],
            // The installed gems come back from the cache: bundler installs nothing again.
            warm: &[
                "Reusing the gems installed by the last build (vendor/bundle)",
                "Using greeting 1.0.0",
            ],
        },
    );
    // Bundler's settings travel with the app: the run-time bundle is the build's.
    env.run(&[
        "run",
        "-a",
        "ruby",
        "ruby -v && bundle config get path && bundle exec ruby -e 'require \"greeting\"; puts Greeting.hello'",
    ])
    .ok()
    .has("ruby 3.1.2")
    .has("vendor/bundle")
    .has("hello from the cached gem");
}

/// Where the test's own package's archive is, outside the app.
fn greeting_archive(env: &Env) -> std::path::PathBuf {
    env.work.path().join("greeting-package.tar")
}

/// A package of the test's own, required by the app from a repository of one package
/// whose archive is a local file: composer downloads it into its cache without any
/// registry (which the app's composer.json turns off). The lock is made here, offline.
fn with_a_local_package(env: &Env, app: &Path) {
    let src = env.work.path().join("greeting-package");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("greeting.php"),
        "<?php\nfunction greeting() { return 'hello from the cached package'; }\n",
    )
    .unwrap();
    let archive = greeting_archive(env);
    run_ok(&src, "tar", &["-cf", archive.to_str().unwrap(), "greeting.php"]);
    let mut composer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("composer.json")).unwrap()).unwrap();
    composer["require"]["shipway/greeting"] = "1.0.0".into();
    composer["repositories"] = serde_json::json!([
        {"packagist.org": false},
        {"type": "package", "package": {
            "name": "shipway/greeting",
            "version": "1.0.0",
            "autoload": {"files": ["greeting.php"]},
            "dist": {"url": format!("file://{}", archive.display()), "type": "tar"}
        }}
    ]);
    std::fs::write(
        app.join("composer.json"),
        serde_json::to_string_pretty(&composer).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("composer")
        .args(["update", "--no-install", "--no-progress", "--no-interaction"])
        .current_dir(app)
        .env("COMPOSER_HOME", env.work.path().join("composer-home"))
        .env("COMPOSER_CACHE_DIR", env.work.path().join("composer-cache"))
        .env("COMPOSER_ALLOW_SUPERUSER", "1")
        .output_within(COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "composer update: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The package's archive goes: the redeploy can only have it from composer's cache.
fn without_the_package_archive(env: &Env, _: &Path) {
    std::fs::remove_file(greeting_archive(env)).unwrap();
}

#[test]
fn a_php_sample_on_debians_php_builds_serves_scales_and_redeploys_with_composers_cache() {
    let env = deploys_serves_scales_and_redeploys(
        "php",
        with_a_local_package,
        without_the_package_archive,
        Says {
            says: &[
                "-----> PHP ^8.2 asked (composer.json require.php)",
                "-----> Using PHP 8.2.",
                "-----> Installing dependencies with composer",
                "Installing shipway/greeting (1.0.0)",
            ],
            cold: &[],
            warm: &["Reusing composer's download cache of the last build"],
        },
    );
    // The PHP chosen is `php` at run time too, and the package is in the slug.
    env.run(&[
        "run",
        "-a",
        "php",
        "command -v php && php -r 'echo PHP_VERSION, \"\\n\"; require \"vendor/autoload.php\"; echo greeting();'",
    ])
    .ok()
    .has(".php/bin/php")
    .has("8.2.")
    .has("hello from the cached package");
}
