//! What builds and containers see of the app's stack: the image as `/` (or the host's
//! own folders for the `host` stack), the slug at `/app`, and a writable layer of each
//! container's own.

use std::time::Duration;

use crate::harness::*;

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
    writes_stay_in_their_own_container(&env, "layered", &[]);
}
