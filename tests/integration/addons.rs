//! Addons backed by real servers (PostgreSQL, Redis) and scalingo.json at an app's first
//! deployment. As root (CI), PostgreSQL runs as an unprivileged user: these tests cover it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// The value of a config var of `app`.
pub(crate) fn env_get(env: &Env, app: &str, name: &str) -> String {
    env.run(&["env-get", "-a", app, name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// `addons --json` of `app`, as (id, addon, status, port, pid).
fn addons(env: &Env, app: &str) -> Vec<(String, String, String, u16, Option<i32>)> {
    let out = env.run(&["addons", "-a", app, "--json"]).ok().stdout;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["addon"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["port"].as_u64().unwrap() as u16,
                r["pid"].as_i64().map(|p| p as i32),
            )
        })
        .collect()
}

/// Destroys the apps when dropped, a failing test too: as root, each addon has an OS user
/// of its own, which would outlive the test's home.
pub(crate) struct DestroyApps<'a>(pub &'a Env, pub &'a [&'a str]);

impl Drop for DestroyApps<'_> {
    fn drop(&mut self) {
        for app in self.1 {
            let _ = self
                .0
                .command(&["destroy", app, "--force"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(|c| Guarded(c).wait_or_kill(COMMAND_LIMIT));
        }
    }
}

/// Whether the OS user shipway makes, as root, for addon `id` exists.
fn os_user_exists(id: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .any(|l| l.starts_with(&format!("shipway-{id}:")))
}

/// The live processes whose command line names `port`: an addon server (and its shim).
fn server_pids(port: u16) -> Vec<i32> {
    let port = port.to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let holds = cmdline.split(|b| *b == 0).any(|a| {
            // `-p 5433`, `--port=5433`, and Redis's title `redis-server 127.0.0.1:5433`.
            a == port.as_bytes()
                || a.ends_with(format!("={port}").as_bytes())
                || a.ends_with(format!("127.0.0.1:{port}").as_bytes())
        });
        if holds && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

fn refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// Redis's PING over the URL's host, port and password (RESP, by hand): the URL works.
fn redis_ping(url: &str) -> String {
    redis(url, &["PING"], "PONG")
}

/// AUTH with the URL's credentials, then `command`; what Redis answered, read until
/// `until` (or an error) shows.
pub(crate) fn redis(url: &str, command: &[&str], until: &str) -> String {
    let rest = url.strip_prefix("redis://").unwrap();
    let (auth, addr) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cmd = |parts: &[&str]| {
        let mut c = format!("*{}\r\n", parts.len());
        for p in parts {
            c.push_str(&format!("${}\r\n{p}\r\n", p.len()));
        }
        c
    };
    s.write_all(format!("{}{}", cmd(&["AUTH", user, password]), cmd(command)).as_bytes())
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 64];
    while !got.contains(until)
        && !got.contains("-ERR")
        && !got.contains("-WRONGPASS")
        && !got.contains("-NOPERM")
    {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "redis closed the connection after {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

#[test]
fn first_deploy_reads_scalingo_json_migrates_through_psql_and_the_data_survives_down_up_and_kill() {
    let env = Env::new();
    let dir = env.app("addon-migrate");
    let _destroy = DestroyApps(&env, &["mig"]);
    let bp = procfile_only();
    env.deploy(&dir, "mig", &["--env", &bp, "--env", "GREETING=mine"])
        .ok()
        .has("Reading scalingo.json")
        .has("env GREETING: kept (already set)")
        .has("env SECRET_KEY: a generated secret")
        .has("formation web=2")
        .has("formation web: size S")
        .has("Provisioning addon postgresql (plan postgresql-starter-512), requested by scalingo.json")
        .has("Modified variables: [DATABASE_URL SCALINGO_POSTGRESQL_URL]")
        .has("scripts.first-deploy is this first deployment's postdeploy hook");
    let url = env_get(&env, "mig", "SCALINGO_POSTGRESQL_URL");
    assert!(url.starts_with("postgresql://mig:"), "{url}");
    assert!(url.ends_with("/mig?sslmode=prefer"), "{url}");
    assert_eq!(env_get(&env, "mig", "DATABASE_URL"), url);
    assert_eq!(env_get(&env, "mig", "GREETING"), "mine");
    assert_eq!(env_get(&env, "mig", "SECRET_KEY").len(), 64);

    // A formation of 2 from scalingo.json.
    let ps = env.run(&["ps", "-a", "mig"]).ok();
    let ps = ps.has("web-1").has("web-2");
    assert!(!ps.stdout.contains("web-3"), "{}", ps.stdout);

    // The first deployment ran scripts.first-deploy; the next one the Procfile's hook.
    env.run(&["run", "-a", "mig", "deploys-so-far"])
        .ok()
        .has("postdeploy,first-deploy");
    env.deploy(&dir, "mig", &[])
        .ok()
        .lacks("Reading scalingo.json")
        .lacks("Provisioning addon")
        .has("Running postdeploy hook: psql");
    env.run(&["run", "-a", "mig", "deploys-so-far"])
        .ok()
        .has("postdeploy,first-deploy,postdeploy");
    let [(id, kind, status, port, _)] = &addons(&env, "mig")[..] else {
        panic!("one addon expected");
    };
    assert_eq!((kind.as_str(), status.as_str()), ("postgresql", "running"));
    env.run(&["logs", "-a", "mig"])
        .ok()
        .has("[postgresql]")
        .has("database system is ready to accept connections");

    // Its data is kept across down and up...
    run_within(&env, &["down"], LONG).ok();
    assert!(server_pids(*port).is_empty(), "down left the server running");
    run_within(&env, &["up", "--detach"], LONG).ok();
    eventually(LONG, "the addon to run again", || {
        addons(&env, "mig").first().is_some_and(|a| a.2 == "running")
    });
    env.run(&["run", "-a", "mig", "deploys-so-far"])
        .ok()
        .has("postdeploy,first-deploy,postdeploy");

    // ...and across a SIGKILL of the platform, which the server does not outlive.
    let platform = env.platform_pid().unwrap();
    let port = addons(&env, "mig")[0].3;
    let before = server_pids(port);
    assert!(
        !before.is_empty(),
        "the server's processes are found by their port"
    );
    kill(platform);
    eventually(LONG, "the server to die with the platform", || {
        server_pids(port).is_empty()
    });
    run_within(&env, &["up", "--detach"], LONG).ok();
    eventually(LONG, "the addon to run after the kill", || {
        addons(&env, "mig").first().is_some_and(|a| a.2 == "running")
    });
    env.run(&["run", "-a", "mig", "deploys-so-far"])
        .ok()
        .has("postdeploy,first-deploy,postdeploy");
    let again = &addons(&env, "mig")[0];
    assert_eq!(&again.0, id);
    // As root, the addon's OS user goes with the app.
    run_within(&env, &["destroy", "mig", "--force"], LONG).ok();
    assert!(!os_user_exists(id));
}

#[test]
fn redis_answers_ping_through_its_url_and_remove_and_destroy_leave_nothing() {
    let env = Env::new();
    env.run(&["create", "cache"]).ok();
    let _destroy = DestroyApps(&env, &["cache"]);
    env.run(&["addons-add", "redis", "redis-starter-256", "-a", "cache"])
        .ok()
        .has("Addon redis has been provisioned")
        .has("Modified variables: [REDIS_URL SCALINGO_REDIS_URL]")
        .has("plan redis-starter-256: its size (256) is not enforced here");
    let url = env_get(&env, "cache", "SCALINGO_REDIS_URL");
    assert_eq!(env_get(&env, "cache", "REDIS_URL"), url);
    let got = redis_ping(&url);
    assert!(got.contains("+PONG"), "{got:?}");

    // The console: the host's redis-cli, authenticated, its exit status passed through.
    let mut console = env
        .command(&["redis-console", "-a", "cache"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn_guarded();
    console.stdin.take().unwrap().write_all(b"PING\n").unwrap();
    let out = console.output_within(COMMAND_LIMIT);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("PONG"));

    // A server that crashes is started again by the platform, with its data.
    assert!(redis(&url, &["SET", "kept", "yes"], "+OK").contains("+OK"));
    let port = addons(&env, "cache")[0].3;
    let server = *server_pids(port)
        .iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "redis-server")
        })
        .expect("the redis-server process");
    kill(server);
    eventually(LONG, "the crashed server to be started again", || {
        server_pids(port).iter().any(|p| *p != server)
            && addons(&env, "cache").first().is_some_and(|a| a.2 == "running")
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(redis(&url, &["GET", "kept"], "yes").contains("yes"));
    env.run(&["logs", "-a", "cache", "--filter", "redis"])
        .ok()
        .has("the redis server killed by SIGKILL: restarting it");

    env.run(&["addons-add", "postgresql", "-a", "cache"]).ok();
    env.run(&["addons-add", "redis", "-a", "cache"])
        .code(1)
        .has("already has a redis addon");
    let rows = addons(&env, "cache");
    assert_eq!(rows.len(), 2);
    // Oldest first.
    assert_eq!((rows[0].1.as_str(), rows[1].1.as_str()), ("redis", "postgresql"));
    let (redis_id, redis_port) = (rows[0].0.clone(), rows[0].3);
    let pg_port = rows[1].3;
    let data = env.home.path().join("apps/cache/addons");
    assert!(data.join(&redis_id).is_dir());
    let redis_pids = server_pids(redis_port);
    assert!(!redis_pids.is_empty());

    env.run(&["addons-remove", &redis_id, "-a", "cache"])
        .ok()
        .has(&format!("Addon redis ({redis_id}) removed"));
    assert!(
        redis_pids.iter().all(|p| !alive(*p)),
        "addons-remove left the server"
    );
    assert!(refused(redis_port));
    assert!(!data.join(&redis_id).exists());
    assert!(
        !os_user_exists(&redis_id),
        "addons-remove left the addon's OS user"
    );
    assert!(!data.join(format!("{redis_id}.toml")).exists());
    env.run(&["env-get", "-a", "cache", "SCALINGO_REDIS_URL"]).code(1);
    env.run(&["addons-remove", &redis_id, "-a", "cache"])
        .code(1)
        .has("has no addon");
    // Both additions and the removal are on the app's timeline, newest first.
    let timeline = env.run(&["timeline", "-a", "cache", "--json"]).ok().stdout;
    let timeline: serde_json::Value = serde_json::from_str(&timeline).unwrap();
    let changes: Vec<(String, String)> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.ends_with("_addon")))
        .map(|e| {
            let kind = e["type"].as_str().unwrap().to_string();
            (kind, e["type_data"]["addon"].as_str().unwrap().to_string())
        })
        .collect();
    let expected = [
        ("delete_addon", "redis"),
        ("new_addon", "postgresql"),
        ("new_addon", "redis"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(changes, expected, "{timeline:#}");

    let pg_pids = server_pids(pg_port);
    assert!(!pg_pids.is_empty());
    // Destroy names the database it deletes, before anything is deleted.
    let pg_id = rows[1].0.clone();
    env.run(&["destroy", "cache"])
        .code(1)
        .has(&format!("the data of its addons: postgresql {pg_id}"))
        .has("nothing was deleted");
    assert!(pg_pids.iter().all(|p| alive(*p)));
    run_within(&env, &["destroy", "cache", "--force"], LONG).ok();
    assert!(pg_pids.iter().all(|p| !alive(*p)), "destroy left the server");
    assert!(refused(pg_port));
    assert!(!env.home.path().join("apps/cache").exists());
}

#[test]
fn a_missing_server_is_a_clear_error_and_leaves_nothing() {
    let mut env = Env::new();
    env.set("SHIPWAY_ADDON_BIN_DIRS", "/nonexistent/bin");
    env.run(&["create", "lonely"]).ok();
    env.run(&["addons-add", "postgresql", "-a", "lonely"])
        .code(1)
        .has("needs postgres, which is not installed (looked in /nonexistent/bin)")
        .has("apt-get install postgresql")
        .has("nothing of it is left");
    env.run(&["addons-add", "mongodb", "-a", "lonely"])
        .code(1)
        .has("unknown addon \"mongodb\"");
    env.run(&["addons", "-a", "lonely"])
        .ok()
        .has("lonely has no addon");
    let left: Vec<_> = std::fs::read_dir(env.home.path().join("apps/lonely/addons"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    env.run(&["env", "-a", "lonely"]).ok().lacks("DATABASE_URL");
}

#[test]
fn the_first_build_sees_scalingo_json_env_as_a_one_click_deploy_does() {
    let env = Env::new();
    let dir = env.app_as("env-echo", "oneclick");
    std::fs::write(
        dir.join("scalingo.json"),
        r#"{"env": {"GREETING": {"value": "from the manifest"}, "SECRET_KEY": {"generator": "secret"}}}"#,
    )
    .unwrap();
    // A buildpack that keeps what ENV_DIR held at compile time in the slug.
    let bp = env.work.path().join("envdir-bp");
    std::fs::create_dir_all(bp.join("bin")).unwrap();
    for (script, text) in [
        ("detect", "#!/usr/bin/env bash\necho EnvDir\n"),
        (
            "compile",
            "#!/usr/bin/env bash\nfor f in \"$3\"/*; do echo \"${f##*/}=$(cat \"$f\")\"; done >\"$1/envdir.txt\"\n",
        ),
        ("release", "#!/usr/bin/env bash\necho '--- {}'\n"),
    ] {
        let path = bp.join("bin").join(script);
        std::fs::write(&path, text).unwrap();
        run_ok(env.work.path(), "chmod", &["+x", path.to_str().unwrap()]);
    }
    let url = format!("BUILDPACK_URL={}", bp.display());
    env.deploy(&dir, "oneclick", &["--env", &url])
        .ok()
        .has("Reading scalingo.json")
        .has("env GREETING=from the manifest");
    let seen =
        std::fs::read_to_string(env.home.path().join("apps/oneclick/releases/1/app/envdir.txt")).unwrap();
    assert!(seen.contains("GREETING=from the manifest\n"), "{seen}");
    let secret = env_get(&env, "oneclick", "SECRET_KEY");
    assert!(seen.contains(&format!("SECRET_KEY={secret}\n")), "{seen}");
    // Applied once: the next deployment neither reads it nor generates another secret.
    env.deploy(&dir, "oneclick", &[])
        .ok()
        .lacks("Reading scalingo.json");
    assert_eq!(env_get(&env, "oneclick", "SECRET_KEY"), secret);
    // The manifest's variables are on the timeline by name; the generated secret is not.
    let timeline = env.run(&["timeline", "-a", "oneclick", "--json"]).ok().stdout;
    assert!(!timeline.contains(&secret), "{timeline}");
    let timeline: serde_json::Value = serde_json::from_str(&timeline).unwrap();
    let added: Vec<&serde_json::Value> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "new_variable")
        .map(|e| &e["type_data"]["names"])
        .collect();
    // Newest first: the manifest's, then the first deploy's `--env`.
    assert_eq!(added.len(), 2, "{timeline:#}");
    assert_eq!(*added[0], serde_json::json!(["GREETING", "SECRET_KEY"]));
}

#[test]
fn bin_release_addons_are_provisioned_at_the_first_deployment_only() {
    let env = Env::new();
    let dir = env.app("postdeploy-ok");
    let _destroy = DestroyApps(&env, &["wants-redis"]);
    let bp = format!("BUILDPACK_URL={}", fixture_buildpack("requests-redis").display());
    env.deploy(&dir, "wants-redis", &["--env", &bp])
        .ok()
        // Heroku's plan means nothing on the platform: the kind's sandbox.
        .has("Provisioning addon redis (plan redis-sandbox), requested by the buildpack (bin/release)")
        .has("Addon redis has been provisioned");
    let url = env_get(&env, "wants-redis", "SCALINGO_REDIS_URL");
    assert!(redis_ping(&url).contains("+PONG"));
    env.deploy(&dir, "wants-redis", &[])
        .ok()
        .lacks("Provisioning addon");
    assert_eq!(addons(&env, "wants-redis").len(), 1);
    run_within(&env, &["destroy", "wants-redis", "--force"], LONG).ok();
}

#[test]
fn a_mysql_addon_serves_its_database_to_the_console() {
    let env = Env::new();
    env.run(&["create", "shop"]).ok();
    let _destroy = DestroyApps(&env, &["shop"]);
    env.run(&["addons-add", "mysql", "-a", "shop"])
        .ok()
        .has("Modified variables: [DATABASE_URL SCALINGO_MYSQL_URL]");
    let url = env_get(&env, "shop", "SCALINGO_MYSQL_URL");
    assert!(
        url.starts_with("mysql://shop:") && url.ends_with("/shop"),
        "{url}"
    );
    let mut console = env
        .command(&["mysql-console", "-a", "shop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn_guarded();
    console
        .stdin
        .take()
        .unwrap()
        .write_all(b"CREATE TABLE t (x INT); INSERT INTO t VALUES (41); SELECT x + 1 AS answer FROM t;\n")
        .unwrap();
    let out = console.output_within(COMMAND_LIMIT);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("42"));
    // A failing statement's status comes back through the console.
    let mut console = env
        .command(&["mysql-console", "-a", "shop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    console
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT * FROM missing;\n")
        .unwrap();
    assert_eq!(console.wait_within(COMMAND_LIMIT).code(), Some(1));
}

/// MariaDB deletes every `#sql*` file of its tmpdir at start, as its own leftover
/// temporary tables. In the shared /tmp, provisioning a mysql addon deleted those of every
/// other MariaDB on the machine (two addons made at once failed: "Unknown table
/// 'mysql.tmp_proxies_priv'", or a crash). Each addon's server has a tmpdir of its own.
#[test]
fn a_mysql_addon_leaves_the_temporary_tables_of_other_mariadb_servers_alone() {
    // In /tmp itself, not the test's TMPDIR: the server's environment is shipway's own
    // (no TMPDIR), so /tmp is where a shared tmpdir would be.
    let other = tempfile::Builder::new()
        .prefix("#sql-temptable-of-another-server-")
        .tempfile_in("/tmp")
        .unwrap();
    let env = Env::new();
    env.run(&["create", "tmpdir"]).ok();
    let _destroy = DestroyApps(&env, &["tmpdir"]);
    env.run(&["addons-add", "mysql", "-a", "tmpdir"]).ok();
    // Started again, by `up`, with the folder it has.
    env.run(&["down"]).ok();
    env.run(&["up", "--detach"]).ok();
    eventually(LONG, "the mysql addon to run again", || {
        addons(&env, "tmpdir").first().is_some_and(|a| a.2 == "running")
    });
    assert!(
        other.path().exists(),
        "{} was deleted by the addon's MariaDB",
        other.path().display()
    );
    let id = &addons(&env, "tmpdir")[0].0;
    let own = env.home.path().join("apps/tmpdir/addons").join(id).join("tmp");
    assert!(own.is_dir(), "no tmpdir of the server's own at {}", own.display());
}

/// Issue 21, 15a: a PLAN with a newline, or of 100 KB, broke the `addons` table. Plans are
/// the platform's names; anything else is refused with the list, and nothing is added.
#[test]
fn a_plan_with_a_newline_or_of_100_kb_is_refused_and_the_table_never_breaks() {
    let env = Env::new();
    env.run(&["create", "plans"]).ok();
    let injected =
        "redis-starter-256\nad-fake      redis       forged                       running  1      1";
    let huge = "x".repeat(100 * 1024);
    for plan in [injected, huge.as_str()] {
        let run = env.run(&["addons-add", "redis", plan, "-a", "plans"]).code(1);
        let run = run
            .has("unknown plan")
            .has("redis-sandbox, redis-starter-256, redis-starter-512")
            .lacks("forged   ");
        assert!(
            run.all().len() < 4096,
            "the error repeats the plan: {} bytes",
            run.all().len()
        );
    }
    // The same through a spec (scalingo.json and bin/release write `kind:plan`).
    env.run(&["addons-add", &format!("postgresql:{injected}"), "-a", "plans"])
        .code(1)
        .has("unknown plan");
    env.run(&["addons", "-a", "plans"]).ok().has("plans has no addon");
    assert!(
        !env.home.path().join("apps/plans/addons").exists()
            || std::fs::read_dir(env.home.path().join("apps/plans/addons"))
                .unwrap()
                .next()
                .is_none()
    );

    // A record written before plans were checked: its plan is one escaped cell.
    let dir = env.home.path().join("apps/plans/addons");
    std::fs::create_dir_all(&dir).unwrap();
    let record = format!(
        "id = \"ad-0badf00d\"\nkind = \"redis\"\nplan = {:?}\nport = 1\npassword = \"p\"\ndatabase = \"plans\"\ncreated = 1\n",
        format!("{injected}{huge}")
    );
    std::fs::write(dir.join("ad-0badf00d.toml"), record).unwrap();
    let table = env.run(&["addons", "-a", "plans"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {:?}", table.stdout);
    assert!(lines[1].starts_with("ad-0badf00d"), "{}", lines[1]);
    assert!(table.stdout.len() < 1024, "{} bytes", table.stdout.len());
}

/// Every process's command line, read again and again until `stop` fires: what a local
/// user sees with `ps`. Each distinct one is kept.
fn watch_command_lines(
    stop: crossbeam_channel::Receiver<()>,
) -> std::thread::JoinHandle<std::collections::BTreeSet<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut seen = std::collections::BTreeSet::new();
        while stop.try_recv().is_err() {
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                {
                    if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                        if !c.is_empty() {
                            seen.insert(c);
                        }
                    }
                }
            }
        }
        seen
    })
}

/// The secrets of `app`'s addons, as their records hold them: the app's passwords and
/// PostgreSQL's superuser password.
fn addon_secrets(env: &Env, app: &str) -> Vec<String> {
    let dir = env.home.path().join(format!("apps/{app}/addons"));
    let mut secrets = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "toml") {
            let rec: toml::Value = toml::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            for key in ["password", "admin_password"] {
                if let Some(p) = rec.get(key).and_then(|v| v.as_str()).filter(|p| !p.is_empty()) {
                    secrets.push(p.to_string());
                }
            }
        }
    }
    secrets
}

/// Issue 21, 5: the Redis password was in redis-server's argv, which every local user
/// reads in /proc. Read every process's command line while the three servers are made and
/// run and while each console is open: no password of theirs is anywhere.
#[test]
fn no_addon_password_is_in_any_command_line_while_servers_run_or_a_console_is_open() {
    let env = Env::new();
    env.run(&["create", "secrets"]).ok();
    let _destroy = DestroyApps(&env, &["secrets"]);
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let watcher = watch_command_lines(stopped);
    for kind in ["postgresql", "redis", "mysql"] {
        env.run(&["addons-add", kind, "-a", "secrets"]).ok();
    }
    for (console, client, input) in [
        ("pgsql-console", "psql", "SELECT 41 + 1;\n"),
        ("redis-console", "redis-cli", "PING\n"),
        ("mysql-console", "mysql", "SELECT 41 + 1;\n"),
    ] {
        let mut c = env
            .command(&[console, "-a", "secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_guarded();
        // The client runs (its command line is there to be read) before it is given its
        // input and ends.
        eventually(LONG, &format!("{client} to run"), || {
            std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                    c.split(|b| *b == 0)
                        .next()
                        .is_some_and(|a| a.ends_with(client.as_bytes()))
                })
            })
        });
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = c.output_within(COMMAND_LIMIT);
        assert!(
            out.status.success(),
            "{console}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("42") || said.contains("PONG"), "{console}: {said}");
    }
    stop.send(()).unwrap();
    let seen = watcher.join().unwrap();
    let secrets = addon_secrets(&env, "secrets");
    assert_eq!(secrets.len(), 4, "three passwords and PostgreSQL's superuser's");
    // The watch saw the servers and the clients: it could have seen a password.
    for program in [
        "postgres",
        "redis-server",
        "mariadbd",
        "psql",
        "redis-cli",
        "mysql",
    ] {
        assert!(
            seen.iter().any(|c| String::from_utf8_lossy(c).contains(program)),
            "no command line of {program} was seen"
        );
    }
    for secret in &secrets {
        for c in &seen {
            assert!(
                !String::from_utf8_lossy(c).contains(secret.as_str()),
                "a password is in a command line: {}",
                String::from_utf8_lossy(c).replace('\0', " ")
            );
        }
    }
    run_within(&env, &["destroy", "secrets", "--force"], LONG).ok();
}

/// psql as the app, with its DATABASE_URL (its password in the environment): (success,
/// stdout and stderr).
fn psql_as_app(url: &str, sql: &str) -> (bool, String) {
    let rest = url.strip_prefix("postgresql://").unwrap();
    let (auth, place) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &format!("postgresql://{user}@{place}"),
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .output_within(COMMAND_LIMIT);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The uid a process runs as.
fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 21, 6: app A's role was a superuser and every cluster ran as `postgres`: with A's
/// DATABASE_URL, `COPY ... FROM PROGRAM` read app B's pg_hba.conf and pg_read_file read
/// /etc/passwd. The probe's queries now fail for want of permission; what an owner does
/// (tables, a trusted extension, the migration of `first_deploy...`) still works.
#[test]
fn an_apps_postgresql_role_reads_no_host_file_runs_no_program_and_each_cluster_has_its_own_user() {
    let env = Env::new();
    let _destroy = DestroyApps(&env, &["pga", "pgb"]);
    for app in ["pga", "pgb"] {
        env.run(&["create", app]).ok();
        env.run(&["addons-add", "postgresql", "-a", app]).ok();
    }
    let url = env_get(&env, "pga", "DATABASE_URL");
    let b_id = addons(&env, "pgb")[0].0.clone();
    let b_hba = env
        .home
        .path()
        .join(format!("apps/pgb/addons/{b_id}/pgdata/pg_hba.conf"));
    let b_hba = b_hba.display();
    // Each refusal as PostgreSQL 15 words it, or as 16 and later do.
    for (sql, refusal) in [
        (
            format!("CREATE TEMP TABLE hba(l text); COPY hba FROM PROGRAM 'cat {b_hba}'; SELECT * FROM hba"),
            &["privileges of the pg_execute_server_program role"][..],
        ),
        (
            format!("CREATE TEMP TABLE hba(l text); COPY hba FROM '{b_hba}'; SELECT * FROM hba"),
            &["privileges of the pg_read_server_files role"],
        ),
        (
            "SELECT pg_read_file('/etc/passwd')".to_string(),
            &["permission denied for function pg_read_file"],
        ),
        (
            "SELECT pg_ls_dir('/')".to_string(),
            &["permission denied for function pg_ls_dir"],
        ),
        (
            "SELECT lo_import('/etc/passwd')".to_string(),
            &["permission denied for function lo_import"],
        ),
        (
            "ALTER ROLE CURRENT_USER SUPERUSER".to_string(),
            &[
                "must be superuser to alter superuser roles",
                "permission denied to alter role",
            ],
        ),
        (
            "ALTER SYSTEM SET archive_command = 'id'".to_string(),
            &[
                "must be superuser to execute ALTER SYSTEM",
                "permission denied to set parameter",
            ],
        ),
        (
            "CREATE DATABASE other".to_string(),
            &["permission denied to create database"],
        ),
    ] {
        let (ok, said) = psql_as_app(&url, &sql);
        assert!(!ok, "{sql} was allowed: {said}");
        assert!(refusal.iter().any(|r| said.contains(r)), "{sql}: {said}");
        assert!(
            !said.contains("root:x:0:0") && !said.contains("scram-sha-256"),
            "{sql}: {said}"
        );
    }
    let (_, said) = psql_as_app(&url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
    assert_eq!(said.trim(), "f");
    // What the owner of a database does still works.
    let (ok, said) = psql_as_app(
        &url,
        "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE t (x text); \
         INSERT INTO t VALUES (encode(digest('x', 'sha1'), 'hex')); SELECT count(*) FROM t",
    );
    assert!(ok && said.trim().ends_with('1'), "{said}");

    // Each cluster's server runs as its own user (as root: `shipway-<id>`), which owns its
    // files, private to it: one cluster's server cannot read another's.
    if root_or_skip(
        "an_apps_postgresql_role_reads_no_host_file_runs_no_program_and_each_cluster_has_its_own_user, a user per cluster",
        "only root runs each cluster as a user of its own",
    ) {
        let servers: Vec<(String, u32)> = ["pga", "pgb"]
            .iter()
            .map(|app| {
                let (id, _, _, port, _) = addons(&env, app)[0].clone();
                let pid = *server_pids(port)
                    .iter()
                    .find(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/comm"))
                            .is_ok_and(|c| c.starts_with("postgres"))
                    })
                    .expect("the postgres process");
                (id, uid_of(pid))
            })
            .collect();
        assert_ne!(servers[0].1, servers[1].1, "the two clusters run as one user");
        assert!(servers.iter().all(|s| s.1 != 0));
        let meta = std::fs::metadata(b_hba.to_string()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.uid(), servers[1].1);
        assert_eq!(meta.mode() & 0o077, 0, "pg_hba.conf is readable by others");
        for (id, _) in &servers {
            assert!(os_user_exists(id));
        }
        for app in ["pga", "pgb"] {
            run_within(&env, &["destroy", app, "--force"], LONG).ok();
        }
        for (id, _) in &servers {
            assert!(!os_user_exists(id), "destroy left the addon's OS user {id}");
        }
    }
}

/// Issue 21, 6 (Redis and MariaDB): with the app's URL, Redis refuses what would write the
/// server's files or change its settings (CONFIG SET dir, then SAVE, wrote anywhere) and
/// MariaDB's user has no FILE privilege and no database but its own.
#[test]
fn redis_and_mysql_app_users_cannot_touch_the_servers_files_or_settings() {
    let env = Env::new();
    env.run(&["create", "locked"]).ok();
    let _destroy = DestroyApps(&env, &["locked"]);
    env.run(&["addons-add", "redis", "-a", "locked"]).ok();
    env.run(&["addons-add", "mysql", "-a", "locked"]).ok();
    let url = env_get(&env, "locked", "REDIS_URL");
    for command in [
        &["CONFIG", "SET", "dir", "/tmp"][..],
        &["CONFIG", "GET", "*"],
        &["MODULE", "LOAD", "/tmp/evil.so"],
        &["DEBUG", "SLEEP", "0"],
        &["SAVE"],
        &["BGSAVE"],
        &["SHUTDOWN", "NOSAVE"],
        &["REPLICAOF", "127.0.0.1", "1"],
        &["ACL", "SETUSER", "intruder", "on", ">x", "+@all"],
        &["MONITOR"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "1000"],
    ] {
        let got = redis(&url, command, "+OK\r\n+OK");
        // NOPERM (the user's rules), or the server's own refusal (MODULE, DEBUG).
        assert!(
            got.contains("-NOPERM") || got.contains("command not allowed"),
            "{command:?} was allowed: {got:?}"
        );
    }
    // What an app does still works.
    assert!(redis(&url, &["SET", "k", "v"], "+OK").contains("+OK"));
    assert!(redis(&url, &["KEYS", "*"], "k").contains('k'));
    assert!(redis(&url, &["INFO", "server"], "redis_version").contains("redis_version"));

    let url = env_get(&env, "locked", "SCALINGO_MYSQL_URL");
    let rest = url.strip_prefix("mysql://").unwrap();
    let (auth, _) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let port = addons(&env, "locked")[1].3.to_string();
    let mysql = |sql: &str| {
        let out = std::process::Command::new("mysql")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                user,
                "-N",
                "-B",
                user,
                "-e",
                sql,
            ])
            .env("MYSQL_PWD", password)
            .output_within(COMMAND_LIMIT);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let outfile = env.work.path().join("pwned");
    for (sql, refusal) in [
        (
            format!("SELECT 'x' INTO OUTFILE '{}'", outfile.display()),
            "Access denied",
        ),
        (
            "CREATE TABLE p (l TEXT); LOAD DATA INFILE '/etc/passwd' INTO TABLE p".to_string(),
            "Access denied",
        ),
        ("CREATE DATABASE other".to_string(), "Access denied"),
        ("SELECT * FROM mysql.user".to_string(), "denied"),
        ("GRANT FILE ON *.* TO CURRENT_USER".to_string(), "Access denied"),
    ] {
        let (ok, said) = mysql(&sql);
        assert!(!ok, "{sql} was allowed: {said}");
        assert!(said.contains(refusal), "{sql}: {said}");
    }
    assert!(!outfile.exists());
    // LOAD_FILE without FILE reads nothing (NULL), as MariaDB answers.
    let (ok, said) = mysql("SELECT LOAD_FILE('/etc/passwd')");
    assert!(ok && said.trim() == "NULL", "{said}");
    let (_, grants) = mysql("SHOW GRANTS");
    assert!(
        !grants.contains("FILE") && !grants.contains("ALL PRIVILEGES ON *.*"),
        "{grants}"
    );
    run_within(&env, &["destroy", "locked", "--force"], LONG).ok();
}

/// As root, an addon's OS user outlived a home deleted without `destroy` (a test's
/// temporary home, an `rm -rf`): its home is the addon's data folder, and a user whose
/// folder is gone is removed when the next addon is made. As a user no OS user is made:
/// the test says it was skipped.
#[test]
fn an_addon_user_left_by_a_deleted_home_is_removed_when_the_next_addon_is_made() {
    if !root_or_skip(
        "an_addon_user_left_by_a_deleted_home_is_removed_when_the_next_addon_is_made",
        "only root makes an OS user per addon",
    ) {
        return;
    }
    let first = Env::new();
    first.run(&["create", "gone"]).ok();
    first.run(&["addons-add", "redis", "-a", "gone"]).ok();
    let id = addons(&first, "gone")[0].0.clone();
    assert!(os_user_exists(&id));
    run_within(&first, &["down"], LONG).ok();
    std::fs::remove_dir_all(first.home.path().join("apps")).unwrap();
    assert!(os_user_exists(&id), "nothing removed it yet");

    let second = Env::new();
    second.run(&["create", "next"]).ok();
    let _destroy = DestroyApps(&second, &["next"]);
    second.run(&["addons-add", "redis", "-a", "next"]).ok();
    assert!(!os_user_exists(&id), "the left-over user {id} is still there");
    let next = addons(&second, "next")[0].0.clone();
    assert!(os_user_exists(&next));
}
