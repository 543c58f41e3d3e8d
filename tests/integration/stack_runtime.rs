//! What builds and containers see of the app's stack: the image as `/` (or the host's
//! own folders for the `host` stack), the slug at `/app`, and a writable layer of each
//! container's own.

use std::time::Duration;

use crate::harness::*;
use crate::stack_image::{self, LayerTar, GZIP, OS_RELEASE, ZSTD};

/// The test image (busybox, its own os-release: `ID=ubuntu`, `VERSION_ID=26.04`, plainly
/// not this host) with a `bash` that is busybox's sh, since containers start in bash.
fn image() -> stack_image::TestImage {
    let bash = LayerTar::new()
        .dir("bin", 0o755)
        .file("bin/bash", 0o755, b"#!/bin/sh\nexec /bin/sh \"$@\"\n")
        .tar();
    stack_image::image_of(vec![
        (stack_image::base_layer(OS_RELEASE), GZIP),
        (stack_image::top_layer(), ZSTD),
        (bash, GZIP),
    ])
}

/// The image imported as scalingo-26 into the home `run` works with; its rootfs.
fn import(env: &Env, run: impl Fn(&[&str]) -> Run, home: &std::path::Path) -> std::path::PathBuf {
    let archive = env.work.path().join("image.tar");
    std::fs::write(&archive, image().oci_archive()).unwrap();
    run(&["stacks-import", "scalingo-26", archive.to_str().unwrap()]).ok();
    let images = home.join("stacks/images");
    let dir = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    dir.join("rootfs")
}

/// Every file of a tree with its size and modification time: what "unchanged" means.
fn snapshot(root: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(root)
        .args(["-printf", "%P %s %T@ %m\n"])
        .output_within(COMMAND_LIMIT);
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

fn probe_buildpack() -> String {
    format!("BUILDPACK_URL={}", fixture_buildpack("stack-probe").display())
}

/// `GET path` of the app at `addr`, once it answers 200.
fn fetch(addr: &str, path: &str) -> String {
    let mut body = String::new();
    eventually(
        Duration::from_secs(20),
        &format!("GET {path} to answer"),
        || match get(addr, path) {
            Ok((200, b)) => {
                body = b;
                true
            }
            _ => false,
        },
    );
    body
}

/// Every web container of the app says it started on a fresh `/app`, whatever the
/// others, earlier ones, one-offs and rollbacks wrote; the release folder takes no write.
fn writes_stay_in_their_own_container(env: &Env, name: &str, extra: &[&str]) {
    let app = env.app_as("stack-probe", name);
    let mut args = vec!["--env", "BIND_HOST=127.0.0.1"];
    args.extend_from_slice(extra);
    let bp = probe_buildpack();
    args.extend(["--env", bp.as_str()]);
    let first = env.deploy(&app, name, &args).ok();
    let addr = url_of(&first);
    assert!(fetch(&addr, "/run.txt").ends_with(" fresh\n"));
    let release = env.home.path().join("apps").join(name).join("releases/1/app");
    assert!(
        !release.join("mark").exists(),
        "a container wrote into the release"
    );
    assert!(
        !release.join("www/run.txt").exists(),
        "a container wrote into the release"
    );

    // A one-off sees none of web's writes, and its own go nowhere.
    env.run(&[
        "run",
        "-a",
        name,
        "test ! -e /app/mark && echo oneoff > /app/oneoff && echo clean",
    ])
    .ok()
    .has("clean");
    env.run(&["run", "-a", name, "test ! -e /app/oneoff && echo gone"])
        .ok()
        .has("gone");
    assert_eq!(get(&addr, "/oneoff").map(|r| r.0).unwrap_or(0), 404);

    // A second web container, and a restart of both: each starts fresh.
    env.run(&["scale", "-a", name, "web=2"]).ok();
    env.run(&["restart", "-a", name]).ok();
    eventually(
        Duration::from_secs(20),
        "both web containers to answer fresh",
        || {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..8 {
                match get(&addr, "/run.txt") {
                    Ok((200, b)) if b.ends_with(" fresh\n") => {
                        seen.insert(b);
                    }
                    Ok((200, b)) => panic!("a container saw another's write: {b}"),
                    _ => {}
                }
            }
            !seen.is_empty()
        },
    );

    // A new release, then back to the first: nothing written before comes back.
    env.deploy(&app, name, &args).ok();
    env.run(&["rollback", "-a", name]).ok();
    assert!(fetch(&addr, "/run.txt").ends_with(" fresh\n"));
    assert!(
        !release.join("mark").exists(),
        "a container wrote into the release"
    );
}

#[test]
fn each_container_writes_into_its_own_layer_on_the_host_stack() {
    let env = Env::new();
    env.run(&["create", "layered"]).ok();
    env.run(&["stacks-set", "host", "-a", "layered"]).ok();
    writes_stay_in_their_own_container(&env, "layered", &[]);
}

/// A build and its containers in the image: the buildpack sees the image's os-release
/// and STACK, web and `run` see the image with the slug at /app, writes stay in their
/// container, and neither the host's /app nor the image takes a write.
fn builds_and_runs_in_the_image(env: &Env, run: impl Fn(&[&str]) -> Run, home: &std::path::Path) {
    let host_app = std::path::Path::new("/app").exists();
    let rootfs = import(env, &run, home);
    let before = snapshot(&rootfs);
    let app = env.app_as("stack-probe", "imaged");
    let bp = probe_buildpack();
    let d = app.to_str().unwrap();
    let deployed = run(&[
        "deploy",
        d,
        "-a",
        "imaged",
        "--env",
        "BIND_HOST=127.0.0.1",
        "--env",
        &bp,
    ])
    .ok()
    .has("stack-probe on ubuntu (scalingo-26) app detected")
    .has("stack-probe built on ubuntu (scalingo-26), build 1")
    .has("Stack: scalingo-26 (sha256:")
    .lacks("no scalingo-26 image");
    let addr = url_of(&deployed);
    assert_eq!(
        fetch(&addr, "/build.txt"),
        "build os=ubuntu stack=scalingo-26 builds=1\n"
    );
    assert_eq!(
        fetch(&addr, "/run.txt"),
        "run os=ubuntu stack=scalingo-26 app=/app fresh\n"
    );
    run(&[
        "run",
        "-a",
        "imaged",
        "cat /etc/os-release; pwd; ls /app; echo STACK=$STACK; ls /dev; test -w / || echo ro",
    ])
    .ok()
    .has("shipway test image")
    .has("/app\n")
    .has("Procfile")
    .has("STACK=scalingo-26")
    .has("urandom")
    .has("ro\n")
    .lacks("mark");
    // Writes stay in their container; the release folder and the image take none.
    run(&[
        "run",
        "-a",
        "imaged",
        "echo x > /app/oneoff && echo x > /tmp/t && echo wrote",
    ])
    .ok()
    .has("wrote");
    run(&[
        "run",
        "-a",
        "imaged",
        "test ! -e /app/oneoff && test ! -e /tmp/t && echo clean",
    ])
    .ok()
    .has("clean");
    run(&["run", "-a", "imaged", "echo x > /etc/x"]).code(1);
    run(&["restart", "-a", "imaged"]).ok();
    assert_eq!(
        fetch(&addr, "/run.txt"),
        "run os=ubuntu stack=scalingo-26 app=/app fresh\n"
    );
    // `detect` looks as the build does: in the app's image, or a new app's.
    run(&["detect", d, "-a", "imaged"])
        .ok()
        .has("stack-probe on ubuntu (scalingo-26)");
    run(&["detect", d, "--env", &bp])
        .ok()
        .has("stack-probe on ubuntu (scalingo-26)")
        .lacks("no scalingo-26 image");
    let listed = run(&["apps"]).ok();
    assert!(listed.stdout.contains("scalingo-26@sha256:"), "{}", listed.all());
    run(&["deployments", "-a", "imaged"])
        .ok()
        .has("scalingo-26@sha256:");
    assert_eq!(snapshot(&rootfs), before, "the image changed");
    assert_eq!(
        std::path::Path::new("/app").exists(),
        host_app,
        "the host's /app changed"
    );
    let release = home.join("apps/imaged/releases/1");
    let recorded = std::fs::read_to_string(release.join("release.toml")).unwrap();
    assert!(recorded.contains("stack = \"scalingo-26\""), "{recorded}");
    assert!(recorded.contains("stack_digest = \"sha256:"), "{recorded}");
    assert!(!release.join("app/mark").exists());

    // stacks-set: the cache is reset, and the stack changes at the next deployment only.
    run(&["stacks-set", "host", "-a", "imaged"])
        .ok()
        .has("at its next deployment")
        .has("build cache was reset");
    run(&["restart", "-a", "imaged"]).ok();
    assert_eq!(
        fetch(&addr, "/run.txt"),
        "run os=ubuntu stack=scalingo-26 app=/app fresh\n"
    );
    run(&["deploy", d, "-a", "imaged"])
        .ok()
        .has("build 1 with this cache");
    let host_id = std::fs::read_to_string("/etc/os-release")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("ID=").map(|v| v.trim_matches('"').to_string()))
        .unwrap();
    assert!(fetch(&addr, "/run.txt").starts_with(&format!("run os={host_id} ")));
    run(&["detect", d, "-a", "imaged"])
        .ok()
        .has(&format!("stack-probe on {host_id} (scalingo-"));
    // A rollback runs the first release in the image it was built in.
    run(&["rollback", "-a", "imaged"]).ok();
    assert_eq!(
        fetch(&addr, "/run.txt"),
        "run os=ubuntu stack=scalingo-26 app=/app fresh\n"
    );
    run(&["stacks-set", "scalingo-9", "-a", "imaged"])
        .code(1)
        .has("scalingo-26, scalingo-24, scalingo-22, or host");
}

#[test]
fn builds_and_containers_run_in_the_stack_image() {
    let env = Env::new();
    builds_and_runs_in_the_image(&env, |args| env.run(args), env.home.path());
}

/// As nobody, through a user namespace, with a home nobody owns.
#[test]
fn an_unprivileged_user_builds_and_runs_in_the_stack_image() {
    let env = Env::new();
    let Some(home) = nobody_home(&env, "an_unprivileged_user_builds_and_runs_in_the_stack_image") else {
        return;
    };
    let run = |args: &[&str]| run_as_nobody(&env, &home, args);
    builds_and_runs_in_the_image(&env, run, &home);
    run(&["down"]);
}

/// As nobody on the host stack: containers' writes stay in their own layer too.
#[test]
fn an_unprivileged_users_containers_write_into_their_own_layer() {
    let env = Env::new();
    let Some(home) = nobody_home(
        &env,
        "an_unprivileged_users_containers_write_into_their_own_layer",
    ) else {
        return;
    };
    let run = |args: &[&str]| run_as_nobody(&env, &home, args);
    let app = env.app_as("stack-probe", "nobodys");
    let bp = probe_buildpack();
    let d = app.to_str().unwrap();
    let deployed = run(&[
        "deploy",
        d,
        "-a",
        "nobodys",
        "--env",
        "BIND_HOST=127.0.0.1",
        "--env",
        &bp,
    ])
    .ok();
    let addr = url_of(&deployed);
    assert!(fetch(&addr, "/run.txt").ends_with(" fresh\n"));
    run(&["run", "-a", "nobodys", "test ! -e /app/mark && echo clean"])
        .ok()
        .has("clean");
    run(&["restart", "-a", "nobodys"]).ok();
    assert!(fetch(&addr, "/run.txt").ends_with(" fresh\n"));
    assert!(!home.join("apps/nobodys/releases/1/app/mark").exists());
    run(&["down"]);
}

#[test]
fn without_an_image_a_deployment_says_so_once_and_runs_on_the_host() {
    let env = Env::new();
    let app = env.app_as("stack-probe", "imageless");
    let bp = probe_buildpack();
    let deployed = env.deploy(&app, "imageless", &["--env", &bp]).ok();
    let said = deployed.all();
    // One line: what happened, that it runs on the host, and how to get the image.
    let lines: Vec<&str> = said.lines().filter(|l| l.contains("Stack:")).collect();
    let [line] = lines.as_slice() else {
        panic!("not one Stack line: {said}")
    };
    for part in [
        "Stack: no scalingo-26 image here (it cannot be pulled: 127.0.0.1:1 is unreachable",
        "this machine's own userland",
        "`shipway stacks-pull scalingo-26`",
        "`shipway stacks-import scalingo-26 FILE`",
    ] {
        assert!(line.contains(part), "{part:?} missing in {line:?}");
    }
    assert!(!said.contains("Pulling"), "{said}");
    assert_eq!(said.matches("scalingo-26 image").count(), 1, "{said}");
    // STACK is still the app's.
    assert!(fetch(&url_of(&deployed), "/build.txt").contains(" stack=scalingo-26 "));
    // `detect` pulls nothing, and says where it looked.
    env.run(&["detect", app.to_str().unwrap(), "-a", "imageless"])
        .ok()
        .has("stack-probe on ")
        .has("no scalingo-26 image here (it was never pulled): detecting on this machine's own userland")
        .lacks("Pulling");
}

#[test]
fn a_deployment_pulls_the_image_it_needs_first() {
    let image = image();
    let registry = stack_image::Registry::serve("scalingo/scalingo-26", &image);
    let mut env = Env::new();
    env.set("SHIPWAY_STACK_REGISTRY", &registry.url);
    let app = env.app_as("stack-probe", "pulling");
    let bp = probe_buildpack();
    env.deploy(&app, "pulling", &["--env", &bp])
        .ok()
        .has("Pulling scalingo-26")
        .has("stack-probe built on ubuntu (scalingo-26)");
    let blobs = registry.blob_requests();
    env.deploy(&app, "pulling", &[]).ok().lacks("Pulling");
    assert_eq!(registry.blob_requests(), blobs, "a second deploy fetched blobs");
}

#[test]
fn scalingo_json_names_the_stack_an_app_is_created_on() {
    let env = Env::new();
    let app = env.app_as("stack-probe", "from-manifest");
    std::fs::write(app.join("scalingo.json"), r#"{"stack": "scalingo-24"}"#).unwrap();
    let bp = probe_buildpack();
    let deployed = env.deploy(&app, "from-manifest", &["--env", &bp]).ok();
    let said = deployed.all();
    assert!(
        said.contains("stack scalingo-24: the app is created on it"),
        "{said}"
    );
    // The first build runs on it already: no image here, so one line names it.
    assert!(said.contains("no scalingo-24 image here"), "{said}");
    assert!(fetch(&url_of(&deployed), "/build.txt").contains(" stack=scalingo-24 "));
    // Its stack, and where it runs for want of the image.
    env.run(&["apps"])
        .ok()
        .has("scalingo-24")
        .has("host (no scalingo-24 image)");

    // A stack the platform does not have fails the first deployment before any build.
    let other = env.app_as("stack-probe", "unknown-stack");
    std::fs::write(other.join("scalingo.json"), r#"{"stack": "scalingo-99"}"#).unwrap();
    env.deploy(&other, "unknown-stack", &["--env", &bp])
        .code(10)
        .has("\"scalingo-99\" is not a stack: choose scalingo-26, scalingo-24, scalingo-22, or host")
        .lacks("stack-probe built");
}

/// An image on disk that cannot be entered (here its files were removed) fails builds
/// and containers alike, naming the image and what fixes it, rather than running on the
/// host's userland a release built for the image.
#[test]
fn an_image_that_cannot_be_entered_is_named_with_its_fix() {
    let env = Env::new();
    let rootfs = import(&env, |args| env.run(args), env.home.path());
    let app = env.app_as("stack-probe", "damaged");
    let bp = probe_buildpack();
    env.deploy(&app, "damaged", &["--env", &bp])
        .ok()
        .has("Stack: scalingo-26 (sha256:");
    let moved = rootfs.with_file_name("moved");
    std::fs::rename(&rootfs, &moved).unwrap();
    let says_so = |run: Run| {
        let said = run.all();
        for part in [
            "cannot enter the stack image sha256:",
            "then `shipway stacks-pull scalingo-26`",
            "`shipway stacks-set host -a APP`",
        ] {
            assert!(said.contains(part), "{part:?} missing in:\n{said}");
        }
        assert!(!said.contains("own userland,"), "{said}");
    };
    let ran = env.run(&["run", "-a", "damaged", "echo ran"]);
    assert_ne!(ran.code, 0, "{}", ran.all());
    assert!(!ran.stdout.contains("ran"), "{}", ran.all());
    says_so(ran);
    // The build stops before its first script, about the image, not the buildpack.
    let deployed = env.deploy(&app, "damaged", &[]);
    assert_ne!(deployed.code, 0, "{}", deployed.all());
    assert!(!deployed.all().contains("not compatible"), "{}", deployed.all());
    says_so(deployed);
    std::fs::rename(&moved, &rootfs).unwrap();
    env.run(&["run", "-a", "damaged", "echo ran"]).ok().has("ran");
}
