//! Stack images without Docker: `stacks-pull` from a registry on 127.0.0.1 behind a token
//! challenge, `stacks-import` of `docker save` and OCI archives, `stacks` and `--prune`,
//! as root and as an unprivileged user (`nobody`, through setpriv).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{nobody_home, root_or_skip, Env, Run, SpawnGuarded, Spawned, BIN, COMMAND_LIMIT};
use crate::stack_image::{busybox_image, image_of, LayerTar, Registry, TestImage, GZIP, OS_RELEASE};

const REPO: &str = "scalingo/scalingo-26";

/// The rootfs `stack` resolves to in `home`.
fn rootfs(home: &Path, stack: &str) -> PathBuf {
    let names = std::fs::read_to_string(home.join(format!("stacks/names/{stack}.toml")))
        .unwrap_or_else(|e| panic!("{stack} is not pulled: {e}"));
    let table: toml::Table = names.parse().unwrap();
    let digest = table["digest"].as_str().unwrap();
    home.join("stacks/images")
        .join(digest.replacen(':', "-", 1))
        .join("rootfs")
}

fn images(home: &Path) -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir(home.join("stacks/images"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

fn leftovers(home: &Path) -> usize {
    std::fs::read_dir(home.join("stacks/tmp")).map_or(0, |d| d.count())
}

/// What every unpack of the test image must show: its files, its whiteouts applied.
#[track_caller]
fn assert_is_the_test_image(root: &Path) {
    assert_eq!(
        std::fs::read_to_string(root.join("etc/os-release")).unwrap(),
        OS_RELEASE
    );
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/layer-2")).unwrap(),
        "second layer\n"
    );
    // `.wh.removed-by-layer-2` removed the first layer's file, and is not a file itself.
    assert!(!root.join("etc/removed-by-layer-2").exists());
    assert!(!root.join("etc/.wh.removed-by-layer-2").exists());
    // The opaque folder kept only what the second layer put in it.
    let mut opaque: Vec<String> = std::fs::read_dir(root.join("var/lib/opaque"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    opaque.sort();
    assert_eq!(opaque, ["new"]);
    let link = std::fs::metadata(root.join("etc/os-release-link")).unwrap();
    assert_eq!(
        link.ino(),
        std::fs::metadata(root.join("etc/os-release")).unwrap().ino()
    );
    assert_eq!(
        std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    // The image's busybox runs, and is not the host's userland.
    let out = Command::new(root.join("bin/busybox"))
        .args(["cat"])
        .arg(root.join("etc/os-release"))
        .output_within(COMMAND_LIMIT);
    assert!(String::from_utf8_lossy(&out.stdout).contains("VERSION_ID=\"26.04\""));
}

fn registry_env(registry: &Registry) -> Env {
    let mut env = Env::new();
    env.set("SHIPWAY_STACK_REGISTRY", &registry.url);
    env
}

#[test]
fn a_pull_answers_the_token_challenge_unpacks_both_layers_and_shows_in_stacks() {
    let image = busybox_image(OS_RELEASE);
    let registry = Registry::serve(REPO, &image);
    let env = registry_env(&registry);
    env.run(&["stacks"])
        .ok()
        .has("scalingo-26*")
        .has("Ubuntu 26.04")
        .has("deprecated");

    let pulled = env.run(&["stacks-pull", "scalingo-26"]).ok();
    let pulled = pulled.has(&image.manifest.digest).has("Pulling scalingo-26");
    // Piped: no progress bar made it to the output.
    pulled.lacks("[=");
    assert!(registry.unauthorized() >= 1 && registry.token_requests() >= 1);
    // The index, then this platform's manifest; the config and both layers, each once;
    // the decoy of the other platform never.
    assert_eq!(registry.manifest_requests(), 2);
    assert_eq!(registry.blob_requests(), 3);

    let home = env.home.path();
    let root = rootfs(home, "scalingo-26");
    assert_is_the_test_image(&root);
    // As root, owners and setuid bits are the image's.
    let tool = std::fs::metadata(root.join("usr/bin/setuid-tool")).unwrap();
    if root_or_skip(
        "a_pull_answers_the_token_challenge_unpacks_both_layers_and_shows_in_stacks, its owners and setuid bits",
        "only root unpacks an image's owners and setuid bits",
    ) {
        assert_eq!(tool.mode() & 0o7777, 0o4755);
        assert_eq!(tool.uid(), 0);
    }
    assert_eq!(leftovers(home), 0);

    let listed = env.run(&["stacks"]).ok();
    let line = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("scalingo-26"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("yes") && line.contains(&image.manifest.digest),
        "{line}"
    );
    let json: serde_json::Value = serde_json::from_str(&env.run(&["stacks", "--json"]).ok().stdout).unwrap();
    let s26 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "scalingo-26")
        .unwrap();
    assert_eq!(s26["pulled"], true);
    assert_eq!(s26["status"], "supported");
    assert_eq!(s26["digest"], image.manifest.digest.as_str());
    assert!(s26["disk_size"].as_u64().unwrap() > 500_000, "{s26}");
    let at = s26["pulled_at"].as_str().unwrap();
    assert!(at.len() == 24 && at.ends_with('Z'), "{at}");
    let s22 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "scalingo-22")
        .unwrap();
    assert_eq!(
        (s22["pulled"].as_bool(), s22["status"].as_str()),
        (Some(false), Some("deprecated"))
    );

    // A second pull reads the manifest and no blob.
    let blobs = registry.blob_requests();
    env.run(&["stacks-pull", "scalingo-26"])
        .ok()
        .has("nothing downloaded");
    assert_eq!(registry.blob_requests(), blobs);
}

#[test]
fn two_pulls_at_once_download_the_image_once() {
    let image = busybox_image(OS_RELEASE);
    let registry = Registry::serve(REPO, &image);
    let env = registry_env(&registry);
    let mut first = Spawned::start(&env, &["stacks-pull", "scalingo-26"]);
    let mut second = Spawned::start(&env, &["stacks-pull", "scalingo-26"]);
    first.finish(Duration::from_secs(60)).ok();
    second.finish(Duration::from_secs(60)).ok();
    assert_eq!(registry.blob_requests(), 3);
    assert_eq!(images(env.home.path()).len(), 1);
    assert_is_the_test_image(&rootfs(env.home.path(), "scalingo-26"));
}

#[test]
fn a_corrupted_blob_is_refused_by_its_digest_and_leaves_nothing() {
    let image = busybox_image(OS_RELEASE);
    for blob in [&image.layers[0], &image.layers[1], &image.config] {
        let registry = Registry::serve(REPO, &image);
        registry.corrupt(&blob.digest);
        let env = registry_env(&registry);
        let run = env.run(&["stacks-pull", "scalingo-26"]).code(1);
        let run = run.has(&blob.digest).has("does not match its digest");
        drop(run);
        let home = env.home.path();
        assert_eq!(images(home), Vec::<String>::new());
        assert_eq!(leftovers(home), 0);
        assert!(!home.join("stacks/names/scalingo-26.toml").exists());
        env.run(&["stacks"]).ok().lacks("sha256:");
    }
}

/// `shipway stacks-import STACK -` with `bytes` on stdin.
fn import_stdin(env: &Env, stack: &str, bytes: &[u8]) -> Run {
    let file = env.work.path().join("stdin.tar");
    std::fs::write(&file, bytes).unwrap();
    let out = env
        .command(&["stacks-import", stack, "-"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output_within(COMMAND_LIMIT);
    out.into()
}

#[test]
fn stacks_import_takes_a_docker_save_tar_from_a_file_or_stdin_compressed() {
    let image = busybox_image(OS_RELEASE);
    let env = Env::new();
    let saved = env.work.path().join("scalingo-26.tar");
    std::fs::write(&saved, image.docker_save("scalingo/scalingo-26:latest")).unwrap();
    let run = env
        .run(&["stacks-import", "scalingo-26", saved.to_str().unwrap()])
        .ok();
    // No manifest in that format: the image is keyed by its config's digest (image ID).
    run.has(&image.config.digest);
    assert_is_the_test_image(&rootfs(env.home.path(), "scalingo-26"));

    let other = Env::new();
    let gz = crate::stack_image::gzip(&image.docker_save("scalingo/scalingo-26:latest"));
    import_stdin(&other, "scalingo-24", &gz)
        .ok()
        .has(&image.config.digest);
    assert_is_the_test_image(&rootfs(other.home.path(), "scalingo-24"));
    other.run(&["stacks"]).ok().has(&image.config.digest);

    // A layer that is not what the config's diff_ids say is refused.
    let mut bad = image.tars.clone();
    let len = bad[1].len();
    bad[1][len / 3] ^= 1;
    let forged = TestImage {
        tars: bad,
        ..busybox_image(OS_RELEASE)
    };
    let third = Env::new();
    let diff_id = crate::stack_image::sha256(&image.tars[1]);
    import_stdin(
        &third,
        "scalingo-26",
        &forged.docker_save("scalingo/scalingo-26:latest"),
    )
    .code(1)
    .has(&diff_id);
    assert_eq!(images(third.home.path()), Vec::<String>::new());
    assert_eq!(leftovers(third.home.path()), 0);
}

#[test]
fn stacks_import_takes_an_oci_archive_and_follows_its_index_to_this_platform() {
    let image = busybox_image(OS_RELEASE);
    let env = Env::new();
    let archive = env.work.path().join("scalingo-26.oci.tar.zst");
    std::fs::write(&archive, crate::stack_image::zstd(&image.oci_archive())).unwrap();
    env.run(&["stacks-import", "scalingo-26", archive.to_str().unwrap()])
        .ok()
        .has(&image.manifest.digest);
    assert_is_the_test_image(&rootfs(env.home.path(), "scalingo-26"));

    // Two images saved together (Docker 25's `docker save a b`): the stack's is taken.
    let other = busybox_image("ID=ubuntu\nVERSION_ID=\"24.04\"\n");
    let both = env.work.path().join("both.tar");
    std::fs::write(
        &both,
        crate::stack_image::oci_archive_of(&[
            (&other, "docker.io/scalingo/scalingo-24:latest"),
            (&image, "docker.io/scalingo/scalingo-26:latest"),
        ]),
    )
    .unwrap();
    env.run(&["stacks-import", "scalingo-24", both.to_str().unwrap()])
        .ok()
        .has(&other.manifest.digest);
    assert!(
        std::fs::read_to_string(rootfs(env.home.path(), "scalingo-24").join("etc/os-release"))
            .unwrap()
            .contains("24.04")
    );
    env.run(&["stacks-import", "scalingo-22", both.to_str().unwrap()])
        .code(1)
        .has("none is scalingo/scalingo-22");

    env.run(&["stacks-import", "scalingo-26", "/nonexistent/x.tar"])
        .code(1)
        .has("/nonexistent/x.tar");
    env.run(&["stacks-import", "scalingo-21", archive.to_str().unwrap()])
        .code(1)
        .has("not a stack of the platform");
    import_stdin(&env, "scalingo-26", b"not an archive at all, just words")
        .code(1)
        .has("not a readable tar archive");
    let unrelated = LayerTar::new().file("notes.txt", 0o644, b"hello").tar();
    import_stdin(&env, "scalingo-26", &unrelated)
        .code(1)
        .has("neither an OCI archive");
}

#[test]
fn a_layer_that_climbs_out_of_the_root_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().display().to_string();
    // `..` in a name is refused outright; a symlink to outside is written through inside.
    let climbing = LayerTar::new()
        .dir("etc", 0o755)
        .raw_file("etc/../../escaped", b"x")
        .tar();
    let image = image_of(vec![(climbing, GZIP)]);
    let env = Env::new();
    let file = env.work.path().join("bad.tar");
    std::fs::write(&file, image.oci_archive()).unwrap();
    env.run(&["stacks-import", "scalingo-26", file.to_str().unwrap()])
        .code(1)
        .has("climbs out")
        .has(&image.layers[0].digest);
    assert_eq!(images(env.home.path()), Vec::<String>::new());

    let through = LayerTar::new()
        .symlink("etc", &target)
        .file("etc/written-through", 0o644, b"x")
        .tar();
    let image = image_of(vec![(through, GZIP)]);
    std::fs::write(&file, image.oci_archive()).unwrap();
    env.run(&["stacks-import", "scalingo-26", file.to_str().unwrap()])
        .ok();
    assert!(!outside.path().join("written-through").exists());
    let root = rootfs(env.home.path(), "scalingo-26");
    assert!(root
        .join(target.trim_start_matches('/'))
        .join("written-through")
        .is_file());
}

#[test]
fn stacks_prune_keeps_what_apps_and_releases_use() {
    let image = busybox_image(OS_RELEASE);
    let registry = Registry::serve(REPO, &image);
    let env = registry_env(&registry);
    env.run(&["stacks-pull", "scalingo-26"]).ok();
    let saved = env.work.path().join("s.tar");
    std::fs::write(&saved, image.docker_save("scalingo/scalingo-24:latest")).unwrap();
    env.run(&["stacks-import", "scalingo-24", saved.to_str().unwrap()])
        .ok();
    let home = env.home.path();
    assert_eq!(images(home).len(), 2);

    // An app without a `stack` is on scalingo-26; a release of it recorded scalingo-24's.
    env.run(&["create", "web"]).ok();
    let release = home.join("apps/web/releases/1");
    std::fs::create_dir_all(&release).unwrap();
    let digest_24 = image.config.digest.clone();
    std::fs::write(
        release.join("release.toml"),
        format!("stack_digest = {digest_24:?}\n"),
    )
    .unwrap();
    env.run(&["stacks", "--prune"]).ok().has("nothing to remove");
    assert_eq!(images(home).len(), 2);

    std::fs::remove_dir_all(&release).unwrap();
    env.run(&["stacks", "--prune"])
        .ok()
        .has(&format!("Removed {digest_24}"));
    assert_eq!(images(home), [image.manifest.digest.replacen(':', "-", 1)]);
    env.run(&["stacks"])
        .ok()
        .has(&image.manifest.digest)
        .lacks(&digest_24);

    // The app moves to scalingo-24 (as stacks-set records it): scalingo-26's image goes.
    let app_toml = home.join("apps/web/app.toml");
    let text = std::fs::read_to_string(&app_toml).unwrap();
    std::fs::write(&app_toml, format!("stack = \"scalingo-24\"\n{text}")).unwrap();
    env.run(&["stacks", "--prune"])
        .ok()
        .has(&format!("Removed {}", image.manifest.digest));
    assert_eq!(images(home), Vec::<String>::new());
    env.run(&["stacks"]).ok().lacks("sha256:");
}

#[test]
fn an_unreachable_or_plain_http_registry_is_said_plainly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let mut env = Env::new();
    env.set("SHIPWAY_STACK_REGISTRY", &url);
    env.run(&["stacks-pull", "scalingo-26"])
        .code(1)
        .has("cannot reach the stack registry")
        .has("stacks-import scalingo-26");
    env.set("SHIPWAY_STACK_REGISTRY", "http://192.0.2.1:5000");
    env.run(&["stacks-pull", "scalingo-26"])
        .code(1)
        .has("plain HTTP is allowed only for a loopback host");
    env.run(&["stacks-pull", "host"]).code(1).has("no image");
    env.run(&["stacks-pull", "scalingo-20"])
        .code(1)
        .has("not a stack of the platform");

    // A registry that does not have the stack.
    let registry = Registry::serve("scalingo/scalingo-22", &busybox_image(OS_RELEASE));
    env.set("SHIPWAY_STACK_REGISTRY", &registry.url);
    env.run(&["stacks-pull", "scalingo-26"])
        .code(1)
        .has("scalingo/scalingo-26:latest is not in the stack registry");
}

/// `shipway ARGS` as nobody with `home` as SHIPWAY_HOME and `vars`.
fn as_nobody(env: &Env, home: &Path, args: &[&str], vars: &[(&str, &str)], stdin: Option<&Path>) -> Run {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .env("SHIPWAY_HOME", home)
        .env("NO_COLOR", "1")
        .envs(vars.iter().copied())
        .current_dir(env.work.path())
        .stdin(stdin.map_or(Stdio::null(), |p| std::fs::File::open(p).unwrap().into()));
    cmd.output_within(COMMAND_LIMIT).into()
}

#[test]
fn an_ordinary_user_pulls_imports_and_prunes_with_files_of_its_own() {
    let image = busybox_image(OS_RELEASE);
    let registry = Registry::serve(REPO, &image);
    let env = Env::new();
    let Some(home) = nobody_home(
        &env,
        "an_ordinary_user_pulls_imports_and_prunes_with_files_of_its_own",
    ) else {
        return;
    };
    let vars = [("SHIPWAY_STACK_REGISTRY", registry.url.as_str())];

    as_nobody(&env, &home, &["stacks-pull", "scalingo-26"], &vars, None)
        .ok()
        .has(&image.manifest.digest)
        .has("setuid/setgid bit(s) were dropped");
    let root = rootfs(&home, "scalingo-26");
    assert_is_the_test_image(&root);
    for path in [
        "etc/os-release",
        "usr/bin/setuid-tool",
        "bin/busybox",
        "var/lib/opaque",
    ] {
        assert_eq!(
            std::fs::symlink_metadata(root.join(path)).unwrap().uid(),
            65534,
            "{path}"
        );
    }
    let tool = std::fs::metadata(root.join("usr/bin/setuid-tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o755);
    // root/ is 0700 in the image: still the user's own, so still readable to it.
    assert_eq!(
        std::fs::metadata(root.join("root")).unwrap().mode() & 0o777,
        0o700
    );

    let blobs = registry.blob_requests();
    as_nobody(&env, &home, &["stacks-pull", "scalingo-26"], &vars, None)
        .ok()
        .has("nothing downloaded");
    assert_eq!(registry.blob_requests(), blobs);

    let saved = env.work.path().join("saved.tar");
    std::fs::write(&saved, image.docker_save("scalingo/scalingo-24:latest")).unwrap();
    std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o644)).unwrap();
    as_nobody(
        &env,
        &home,
        &["stacks-import", "scalingo-24", "-"],
        &[],
        Some(&saved),
    )
    .ok()
    .has(&image.config.digest);
    assert_is_the_test_image(&rootfs(&home, "scalingo-24"));

    registry.corrupt(&image.layers[1].digest);
    let fresh = env.work.path().join("fresh-home");
    std::fs::create_dir(&fresh).unwrap();
    std::os::unix::fs::chown(&fresh, Some(65534), Some(65534)).unwrap();
    as_nobody(&env, &fresh, &["stacks-pull", "scalingo-26"], &vars, None)
        .code(1)
        .has(&image.layers[1].digest);
    assert_eq!(images(&fresh), Vec::<String>::new());
    assert_eq!(leftovers(&fresh), 0);

    // No app uses either: both go, read-only folders and all.
    as_nobody(&env, &home, &["stacks", "--prune"], &[], None)
        .ok()
        .has("Removed");
    assert_eq!(images(&home), Vec::<String>::new());
}
