//! Hostile input to the build, written as the adversarial probe wrote it (issue 21): keys of
//! `scalingo.json`, floods of build output, buildpack URLs and refs, huge config vars.

use std::path::Path;
use std::time::Duration;

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

/// A hostile HTTP server on 127.0.0.1, killed on drop. Paths: `/endless.tgz` streams
/// without end; `/stall...` sends headers and a few bytes, then nothing; `/garbage.tgz` is
/// not an archive; `/auth/<file>` serves `root` to `user:s3cret` only. Each request is a
/// line of its log, and any process whose argv holds the password at that moment is
/// logged as `ARGV-LEAK`.
struct Hostile {
    /// Killed and reaped on drop.
    _child: Guarded,
    port: u16,
    log: std::path::PathBuf,
}

const HOSTILE: &str = r#"
import base64, http.server, os, sys, time
root, log = sys.argv[1], sys.argv[2]
def note(text):
    with open(log, "a") as f:
        f.write(text + "\n")
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass
    def do_GET(self):
        note("GET " + self.path)
        for pid in os.listdir("/proc"):
            try:
                argv = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ")
            except OSError:
                continue
            if b"s3cret" in argv and b"python" not in argv:
                note("ARGV-LEAK " + argv.decode(errors="replace"))
        if self.path.startswith("/endless"):
            self.send_response(200); self.end_headers()
            chunk = b"\0" * 65536
            while True:
                self.wfile.write(chunk)
        elif self.path.startswith("/stall"):
            self.send_response(200); self.end_headers()
            self.wfile.write(b"\x1f\x8b"); self.wfile.flush()
            time.sleep(3600)
        elif self.path.startswith("/garbage"):
            self.send_response(200); self.send_header("Content-Length", "4096"); self.end_headers()
            self.wfile.write(os.urandom(4096))
        elif self.path.startswith("/auth/"):
            want = "Basic " + base64.b64encode(b"user:s3cret").decode()
            if self.headers.get("Authorization") != want:
                note("UNAUTHORIZED " + self.path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="bp"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.path = self.path[len("/auth"):]
            super().do_GET()
        else:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
http.server.ThreadingHTTPServer.daemon_threads = True
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;

impl Hostile {
    fn start(env: &Env, root: &Path) -> Hostile {
        let log = env.work.path().join("hostile.log");
        let args = [root.to_str().unwrap(), log.to_str().unwrap()];
        let (child, port) = python_server(HOSTILE, &args, std::process::Stdio::inherit());
        Hostile {
            _child: child,
            port,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What the buildpack cache holds besides its lock files.
fn cached(env: &Env) -> Vec<String> {
    let root = env.home.path().join("buildpacks");
    walkdir_names(&root)
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

#[test]
fn a_buildpack_archive_that_streams_without_end_stalls_or_is_garbage_fails_and_leaves_nothing_cached() {
    let mut env = Env::new();
    env.set("SHIPWAY_BUILDPACK_MAX_SIZE", "1MiB");
    env.set("SHIPWAY_BUILDPACK_STALL_TIMEOUT", "2s");
    let root = env.work.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let server = Hostile::start(&env, &root);
    let app = env.app_as("env-echo", "archives");

    let endless = format!("BUILDPACK_URL={}", server.url("endless.tgz"));
    env.deploy(&app, "archives", &["--env", &endless])
        .code(10)
        .has("the archive is larger than 1MiB (the buildpack_max_size setting, SHIPWAY_BUILDPACK_MAX_SIZE)");
    assert_eq!(cached(&env), Vec::<String>::new());

    let stall = format!("BUILDPACK_URL={}", server.url("stall.tgz"));
    env.deploy(&app, "archives", &["--env", &stall])
        .code(10)
        .has("the server sent nothing for 2s (the buildpack_stall_timeout setting): the download timed out");
    assert_eq!(cached(&env), Vec::<String>::new());

    // git over HTTP stalls the same way, and says the same word.
    let stall_git = format!("BUILDPACK_URL={}", server.url("stall.git"));
    env.deploy(&app, "archives", &["--env", &stall_git])
        .code(10)
        .has("the server stopped sending: the fetch timed out");
    assert_eq!(cached(&env), Vec::<String>::new());

    // A whole download that does not unpack is not kept either.
    let garbage = format!("BUILDPACK_URL={}", server.url("garbage.tgz"));
    env.deploy(&app, "archives", &["--env", &garbage])
        .code(10)
        .has("cannot unpack it")
        .has("nothing of this download is kept");
    assert_eq!(cached(&env), Vec::<String>::new());
    env.run(&["buildpacks"]).ok().lacks("127.0.0.1");
}

/// The served folder with the `procfile-only` buildpack as a dumb-HTTP git repository
/// `bp.git` (tag `v1`) and an archive `bp.tgz`.
fn serve_buildpack(env: &Env, root: &Path) {
    let work = env.work.path().join("bp-work");
    copy_dir(&fixture_buildpack("procfile-only"), &work);
    std::fs::write(
        work.join("bin/compile"),
        "#!/usr/bin/env bash\necho \"-----> Built by the secret buildpack\"\n",
    )
    .unwrap();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "first"]);
    git(&work, &["tag", "v1"]);
    std::fs::create_dir_all(root).unwrap();
    let bare = root.join("bp.git");
    git(
        env.work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["update-server-info"]);
    run_ok(
        env.work.path(),
        "tar",
        &[
            "-czf",
            root.join("bp.tgz").to_str().unwrap(),
            "-C",
            work.to_str().unwrap(),
            ".",
        ],
    );
}

/// Every file under `root` that holds `text`, but the slugs (the app's own `.buildpacks`).
fn files_holding(root: &Path, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let is_slug = path.file_name().is_some_and(|n| n == "app")
                && path
                    .parent()
                    .and_then(|p| p.parent())
                    .is_some_and(|p| p.ends_with("releases"));
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if !is_slug {
                    stack.push(path);
                }
            } else if std::fs::read(&path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(text)) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn credentials_in_a_buildpack_url_are_redacted_everywhere_and_never_in_argv() {
    let env = Env::new();
    let root = env.work.path().join("served");
    serve_buildpack(&env, &root);
    let server = Hostile::start(&env, &root);
    let with_secret = |path: &str| server.url(path).replace("127.0.0.1", "user:s3cret@127.0.0.1");
    // In the app's .buildpacks, so that no command line of this test holds the password.
    for (app, url) in [
        ("secret-git", format!("{}#v1", with_secret("auth/bp.git"))),
        ("secret-tgz", with_secret("auth/bp.tgz")),
    ] {
        let dir = env.app_as("env-echo", app);
        std::fs::write(dir.join(".buildpacks"), format!("{url}\n")).unwrap();
        std::fs::write(dir.join("Procfile"), "web: python3 -m http.server $PORT\n").unwrap();
        env.deploy(&dir, app, &[])
            .ok()
            .has("Built by the secret buildpack")
            .has("user:***@127.0.0.1")
            .lacks("s3cret");
        env.run(&["deployments", "-a", app]).ok().lacks("s3cret");
        env.run(&["deployment-logs", "-a", app]).ok().lacks("s3cret");
    }
    env.run(&["buildpacks"])
        .ok()
        .has("user:***@127.0.0.1")
        .lacks("s3cret");
    // Deployment logs and records, release.toml, the cache's entries and git's own config.
    assert_eq!(files_holding(env.home.path(), "s3cret"), Vec::<String>::new());
    let log = server.log();
    assert!(log.contains("GET /auth/bp.git/info/refs"), "{log}");
    assert!(log.contains("GET /auth/bp.tgz"), "{log}");
    assert!(!log.contains("ARGV-LEAK"), "{log}");
}

#[test]
fn a_ref_that_reads_as_an_option_is_refused_before_git_runs() {
    let env = Env::new();
    let root = env.work.path().join("served");
    serve_buildpack(&env, &root);
    let server = Hostile::start(&env, &root);
    let app = env.app_as("env-echo", "refs");
    let local = format!("file://{}", root.join("bp.git").display());
    for url in [
        format!("{local}#--orphan=x"),
        format!("{}#--orphan=x", server.url("bp.git")),
        format!("{local}#-b"),
        format!("{local}#v1..main"),
        format!("{local}#a b"),
    ] {
        let reference = url.rsplit_once('#').unwrap().1.to_string();
        env.deploy(&app, "refs", &["--env", &format!("BUILDPACK_URL={url}")])
            .code(10)
            .has(&format!("{reference:?} is not a ref git accepts"));
    }
    assert!(
        !server.log().contains("GET "),
        "git reached the server: {}",
        server.log()
    );
    // The same repository, at a ref git accepts, builds.
    env.deploy(&app, "refs", &["--env", &format!("BUILDPACK_URL={local}#v1")])
        .ok()
        .has("Built by the secret buildpack");
}

/// Live processes whose command line holds `text`.
fn processes_holding(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) && alive(pid) && !cmdline.contains("python3") {
            found.push(format!("{pid} {cmdline}"));
        }
    }
    found
}

#[test]
fn sigterm_sigint_and_sighup_call_off_a_stalled_buildpack_fetch_at_once_with_status_130() {
    let env = Env::new();
    let root = env.work.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let server = Hostile::start(&env, &root);
    let app = env.app_as("env-echo", "cancel");
    // The default stall timeout (60s) is far off: only the signal can end these.
    let mut n = 0;
    for fetch in ["stall.tgz", "stall.git"] {
        for sig in ["TERM", "INT", "HUP"] {
            n += 1;
            let url = format!("{}?{n}", server.url(fetch));
            let mut deploy = Spawned::start(
                &env,
                &[
                    "deploy",
                    app.to_str().unwrap(),
                    "-a",
                    "cancel",
                    "--env",
                    &format!("BUILDPACK_URL={url}"),
                ],
            );
            eventually(Duration::from_secs(30), "the fetch to reach the server", || {
                server.log().contains(&format!("?{n}"))
            });
            signal(deploy.pid(), sig);
            // A guard against a hang, far below the stall timeout, not a measure of speed.
            deploy
                .finish(Duration::from_secs(20))
                .code(130)
                .has("aborted")
                .lacks("Deployment success");
            let port = server.port.to_string();
            eventually(Duration::from_secs(10), "curl and git to be gone", || {
                processes_holding(&format!("127.0.0.1:{port}")).is_empty()
            });
        }
    }
}

/// A buildpack in `work/<name>` whose compile is `compile` (bash).
fn buildpack_compiling(env: &Env, name: &str, compile: &str) -> std::path::PathBuf {
    let bp = env.work.path().join(name);
    std::fs::create_dir_all(bp.join("bin")).unwrap();
    for (script, text) in [
        ("detect", "#!/usr/bin/env bash\necho Flood\n".to_string()),
        ("compile", format!("#!/usr/bin/env bash\n{compile}\n")),
        ("release", "#!/usr/bin/env bash\necho '--- {}'\n".to_string()),
    ] {
        let path = bp.join("bin").join(script);
        std::fs::write(&path, text).unwrap();
        run_ok(env.work.path(), "chmod", &["+x", path.to_str().unwrap()]);
    }
    bp
}

/// The peak resident memory of a process, in KiB, from /proc.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_compile_printing_without_newlines_for_5s_leaves_a_bounded_log_and_the_live_stream_whole() {
    use std::io::Read;
    let env = Env::new();
    let app = env.app_as("env-echo", "flood");
    // The probe's input: one endless line, for five seconds (after 96 MB of it, so that the
    // flood outgrows the log however fast this machine is), then an ending worth reading.
    // dd passes it through and counts it.
    let bp = buildpack_compiling(
        &env,
        "flood-bp",
        "{ head -c 96000000 /dev/zero | tr '\\0' x; timeout 5 tr '\\0' x </dev/zero; } | dd bs=64k 2>\"$1/flood.count\"\n\
         echo\necho '-----> the end of the flood'",
    );
    let mut child = env
        .command(&[
            "deploy",
            app.to_str().unwrap(),
            "-a",
            "flood",
            "--env",
            &format!("BUILDPACK_URL={}", bp.display()),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_guarded();
    // Counted as it comes, not kept: the live stream is as long as the flood.
    let mut stdout = child.stdout.take().unwrap();
    let counting = std::thread::spawn(move || {
        // The flood's bytes: those of lines made of `x` only (a temporary folder's name,
        // printed too, may hold an x).
        let (mut xs, mut end) = (0u64, Vec::new());
        let (mut line_xs, mut only_xs) = (0u64, true);
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            for b in &buf[..n] {
                match b {
                    b'\n' => {
                        if only_xs {
                            xs += line_xs;
                        }
                        (line_xs, only_xs) = (0, true);
                    }
                    b'x' => line_xs += 1,
                    _ => only_xs = false,
                }
            }
            end.extend_from_slice(&buf[..n]);
            let excess = end.len().saturating_sub(4096);
            end.drain(..excess);
        }
        (xs, String::from_utf8_lossy(&end).into_owned())
    });
    let status = child.wait_within(COMMAND_LIMIT);
    let (streamed, end) = joined(counting, "the stdout of the flooding deploy");
    assert!(status.success(), "deploy failed: {end}");
    assert!(end.contains("-----> the end of the flood"), "{end}");

    let logs = env.home.path().join("apps/flood/deployments");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let size = text.len() as u64;
    assert!(size < 12 * 1024 * 1024, "the deployment log holds {size} bytes");
    assert!(
        text.starts_with("<-- Start deployment of flood"),
        "{}",
        &text[..200]
    );
    assert!(text.contains("-----> the end of the flood"));
    assert!(
        text.contains("Deployment success") || text.contains("<-- "),
        "the log's end"
    );
    let kept = text.bytes().filter(|b| *b == b'x').count() as u64;
    let marker = text
        .lines()
        .find(|l| l.contains("left out here"))
        .expect("the log says what it left out");
    assert!(marker.contains("the live output showed it all"), "{marker}");
    // The client saw every byte of the flood; the log kept a part.
    let counted =
        std::fs::read_to_string(env.home.path().join("apps/flood/releases/1/app/flood.count")).unwrap();
    let produced: u64 = counted
        .lines()
        .find_map(|l| {
            l.split(" bytes")
                .next()
                .filter(|_| l.contains(" bytes"))?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("dd's count: {counted}"));
    assert_eq!(streamed, produced, "the live stream lost bytes");
    assert!(kept < produced && produced >= 96_000_000);
    // One endless line is cut into bounded pieces on its way: the platform's memory stays
    // far below what went through it.
    let platform = env.platform_pid().unwrap();
    let peak = peak_rss_kib(platform) * 1024;
    eprintln!("platform peak RSS {peak} bytes for {produced} streamed");
    assert!(
        peak < produced / 2,
        "the platform peaked at {peak} bytes for {produced} streamed"
    );
}

#[test]
fn large_config_var_values_reach_the_bundled_python_and_nodejs_builds_through_env_dir_only() {
    let env = Env::new();
    env.run(&["create", "big"]).ok();
    // The probe's 200 KB value is past the platform's limit: refused, and said so.
    let probe = "v".repeat(200_000);
    let dotenv = env.work.path().join("big.env");
    std::fs::write(&dotenv, format!("BIG={probe}\n")).unwrap();
    env.run(&["env-set", "-a", "big", "--file", dotenv.to_str().unwrap()])
        .code(1)
        .has("config var BIG is 200000 characters long; the platform allows 32768 at most");
    // One the platform accepts: 32768 characters of 4 bytes, 128 KiB, past what one string
    // of an environment may hold.
    std::fs::write(&dotenv, format!("WIDE={}\n", "\u{1D11E}".repeat(32768))).unwrap();
    env.run(&["env-set", "-a", "big", "--file", dotenv.to_str().unwrap()])
        .ok();
    // And the probe's, as an older shipway stored it from scalingo.json.
    let toml = env.home.path().join("apps/big/app.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("[config_vars]\n", &format!("[config_vars]\nBIG = \"{probe}\"\n"));
    std::fs::write(&toml, text).unwrap();
    for fixture in ["python", "nodejs"] {
        let dir = env.app(fixture);
        env.run(&["build", dir.to_str().unwrap(), "-a", "big"])
            .ok()
            .lacks("Argument list too long")
            .has("config var BIG (200000 bytes) is too large for the environment of the build's tools")
            .has("config var WIDE (131072 bytes) is too large");
    }
}
