//! The command line as a Scalingo CLI user knows it: which app a verb works on, `run`'s
//! argv, `scale`'s relative amounts, `destroy`, completions, and sources git ignores.

use std::time::Duration;

use crate::harness::*;

/// A deployed app named `python` (the env-echo fixture, built by the procfile-only
/// buildpack: fast), deployed by its folder's name, without -a.
fn deployed_python(env: &Env) -> std::path::PathBuf {
    let dir = env.app_as("env-echo", "python");
    env.run(&[
        "deploy",
        "python",
        "--env",
        "BIND_HOST=127.0.0.1",
        "--env",
        &procfile_only(),
    ])
    .ok();
    assert!(env.home.path().join("apps/python/current").exists());
    dir
}

#[test]
fn the_app_is_the_flag_then_shipway_app_then_the_git_remote_then_the_folder() {
    let mut env = Env::new();
    let dir = deployed_python(&env);
    let work = env.work.path().to_path_buf();

    // The current folder's name, when such an app exists (the README's quickstart).
    env.run_in(&dir, &["scale"])
        .ok()
        .has("Formation of python (release 1)");
    // Nothing names an app: the error lists them and says how to choose.
    env.run(&["scale"])
        .code(1)
        .has("no app given")
        .has("known apps: python")
        .has("-a APP")
        .has("SHIPWAY_APP");
    // -a, before or after the verb.
    env.run(&["-a", "python", "scale"])
        .ok()
        .has("Formation of python");
    env.run(&["scale", "-a", "python"])
        .ok()
        .has("Formation of python");
    env.run(&["-a", "nope", "scale"])
        .code(1)
        .has("app nope does not exist")
        .has("known apps: python");

    // SHIPWAY_APP, which -a overrides.
    env.set("SHIPWAY_APP", "python");
    env.run(&["scale"]).ok().has("Formation of python");
    env.set("SHIPWAY_APP", "nope");
    env.run(&["scale"])
        .code(1)
        .has("SHIPWAY_APP=nope, but app nope does not exist");
    env.run(&["-a", "python", "scale"])
        .ok()
        .has("Formation of python");
    env.vars.remove("SHIPWAY_APP");

    // The `shipway` remote of the work tree, from its top or a subfolder, whatever the
    // folder's name.
    let clone = work.join("clone");
    std::fs::create_dir_all(clone.join("sub")).unwrap();
    std::fs::write(clone.join("sub/app.py"), "print()\n").unwrap();
    git(&clone, &["init", "-q"]);
    git(&clone, &["add", "."]);
    git(&clone, &["commit", "-qm", "first"]);
    env.run_in(&clone, &["-a", "python", "git-setup"]).ok();
    env.run_in(&clone, &["scale"]).ok().has("Formation of python");
    env.run_in(&clone.join("sub"), &["scale"])
        .ok()
        .has("Formation of python");
    // git-setup in a subfolder says how PROJECT_DIR applies.
    env.run_in(&clone.join("sub"), &["git-setup"])
        .ok()
        .has("you are in sub/ of the work tree")
        .has("env-set PROJECT_DIR=sub");
    env.run(&["-a", "python", "env-set", "PROJECT_DIR=sub"]).ok();
    env.run_in(&clone.join("sub"), &["git-setup"])
        .ok()
        .has("PROJECT_DIR=sub is set on python: each push builds only sub/");
    env.run(&["-a", "python", "env-unset", "PROJECT_DIR"]).ok();
    // A verb that takes a SOURCE: the work tree's remote names the app when the source
    // is the work tree's top, not a subfolder of it.
    env.run_in(&clone, &["archive", "-o", "../top.tgz"])
        .ok()
        .has("folder python/");
    env.run_in(&clone, &["archive", "sub", "-o", "../sub.tgz"])
        .ok()
        .has("folder sub/");
    // -r names another remote (`shipway-<name>` too, as the Scalingo CLI tries
    // `scalingo-<name>`); one that does not exist is an error, not a silent fallback.
    git(&clone, &["remote", "rename", "shipway", "shipway-staging"]);
    env.run_in(&clone, &["scale"]).code(1).has("no app given");
    env.run_in(&clone, &["-r", "staging", "scale"])
        .ok()
        .has("Formation of python");
    env.run_in(&clone, &["-r", "prod", "scale"])
        .code(1)
        .has("no remote `prod`");
}

#[test]
fn run_passes_argv_exit_status_and_env_through() {
    let env = Env::new();
    deployed_python(&env);
    let app = ["-a", "python"];
    let run = |args: &[&str]| env.run(&[&app[..], &["run"], args].concat());

    run(&["bash", "-c", "exit 42"]).code(42);
    let echoed = run(&["echo", "a  b", "c'd", "$HOME"]).ok();
    assert_eq!(echoed.stdout, "a  b c'd $HOME\n", "{}", echoed.all());
    // One word is a command line, as in a Procfile.
    run(&["echo \"c=$CONTAINER\"; exit 3"]).code(3).has("c=run-1\n");
    // -e/--env, repeatable, overriding config vars; not taken for the command.
    env.run(&["-a", "python", "env-set", "FOO=stored"]).ok();
    let vars = run(&["-e", "FOO=bar", "--env", "OTHER=x y", "env"]).ok();
    assert!(vars.stdout.contains("FOO=bar\n"), "{}", vars.all());
    assert!(vars.stdout.contains("OTHER=x y\n"), "{}", vars.all());
    run(&["printenv", "FOO"]).ok().has("stored\n");
    run(&["-e", "BAD-NAME=x", "true"]).code(1).has("-e BAD-NAME=x");
    // --size gives the container its size; an unknown size is refused.
    run(&["--size", "L", "echo $CONTAINER_SIZE"]).ok().has("L\n");
    run(&["--size", "3XL", "echo $CONTAINER_MEMORY"])
        .ok()
        .has("8589934592\n");
    run(&["-s", "4XL", "true"])
        .code(1)
        .has("\"4XL\" is not a container size of the platform (the sizes are S, M, L, XL, 2XL, 3XL)");
}

#[test]
fn a_detached_one_off_runs_under_the_platform_with_its_output_in_the_logs() {
    let env = Env::new();
    deployed_python(&env);
    env.run(&[
        "-a",
        "python",
        "run",
        "-d",
        "-e",
        "WHO=detached",
        "bash",
        "-c",
        "echo hello $WHO; exit 3",
    ])
    .ok()
    .has("Starting one-off one-off-1");
    eventually(
        Duration::from_secs(30),
        "the one-off's output and end in the logs",
        || {
            let logs = env.run(&["-a", "python", "logs", "--filter", "one-off-1"]).ok();
            logs.stdout.contains("[one-off-1] hello detached")
                && logs
                    .stdout
                    .contains("[platform] one-off-1 exited with code 3 (release v1)")
        },
    );
    // It is never restarted, and the formation's containers are left as they were.
    let ps = env.run(&["-a", "python", "ps"]).ok();
    assert!(!ps.stdout.contains("one-off-1"), "{}", ps.all());
    assert!(ps.stdout.contains("web-1"), "{}", ps.all());
}

#[test]
fn scale_adds_and_removes_relative_to_the_formation_and_shows_it() {
    let env = Env::new();
    deployed_python(&env);
    env.run(&["-a", "python", "scale", "web:+1"])
        .ok()
        .has("python is scaled to:")
        .has("web: 2 - M");
    eventually(Duration::from_secs(30), "web-2 to run", || {
        env.run(&["-a", "python", "ps"]).stdout.contains("web-2")
    });
    env.run(&["-a", "python", "scale", "web:-1"])
        .ok()
        .has("web: 1 - M");
    eventually(Duration::from_secs(30), "web-2 to be gone", || {
        !env.run(&["-a", "python", "ps"]).stdout.contains("web-2")
    });
    env.run(&["-a", "python", "scale", "web:-2"])
        .code(1)
        .has("web has 1 container in the formation");
    env.run(&["-a", "python", "scale", "web:1:L"])
        .ok()
        .has("web: 1 - L");
    env.run(&["-a", "python", "scale", "web:+1:L"])
        .code(1)
        .has("change the size first");
    env.run(&["-a", "python", "scale"])
        .ok()
        .has("web: 1 - L   python3 server.py");
}

#[test]
fn destroy_takes_the_name_or_a_and_says_what_becomes_of_the_remote() {
    let env = Env::new();
    deployed_python(&env);
    let clone = env.work.path().join("clone");
    std::fs::create_dir_all(&clone).unwrap();
    git(&clone, &["init", "-q"]);
    env.run_in(&clone, &["-a", "python", "git-setup"]).ok();

    // Never guessed: from the remote's work tree, destroy still wants the name.
    env.run_in(&clone, &["destroy", "--force"])
        .code(1)
        .has("name the app to destroy");
    env.run(&["destroy", "python", "-a", "other"])
        .code(1)
        .has("they differ");
    // Not on a terminal: --force, since nobody can type the name.
    env.run(&["-a", "python", "destroy"])
        .code(1)
        .has("--force")
        .has("nothing was deleted");
    assert!(env.home.path().join("apps/python").exists());
    env.run_in(&clone, &["-a", "python", "destroy", "--force"])
        .ok()
        .has("App python has been deleted")
        .has("the git remote `shipway` of this work tree pointed at it");
    assert!(!env.home.path().join("apps/python").exists());
}

#[test]
fn destroy_on_a_terminal_asks_for_the_name() {
    let env = Env::new();
    env.run(&["create", "doomed"]).ok();
    let home = env.home.path().display().to_string();
    let on_terminal = |answer: &str| {
        let script = format!("SHIPWAY_HOME={home} {BIN} destroy doomed");
        let mut child = std::process::Command::new("script")
            .args(["-qec", &script, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn_guarded();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
        Run::from(child.output_within(COMMAND_LIMIT))
    };
    on_terminal("wrong\n")
        .code(1)
        .has("To confirm, type the name of the app")
        .has("nothing was deleted");
    assert!(env.home.path().join("apps/doomed").exists());
    on_terminal("doomed\n").ok().has("App doomed has been deleted");
    assert!(!env.home.path().join("apps/doomed").exists());
}

#[test]
fn completions_and_the_man_page_cover_every_verb() {
    let env = Env::new();
    // Each script calls shipway back (`COMPLETE=SHELL shipway -- WORDS`): the verbs and
    // flags come from the same definition as --help (driven below).
    env.run(&["completions", "bash"])
        .ok()
        .has("complete -o nospace -o bashdefault")
        .has("COMPLETE=\"bash\"");
    env.run(&["completions", "zsh"])
        .ok()
        .has("#compdef shipway")
        .has("COMPLETE=\"zsh\"");
    env.run(&["completions", "fish"])
        .ok()
        .has("complete --keep-order --exclusive --command shipway")
        .has("COMPLETE=fish");
    env.run(&["completions", "tcsh"]).code(2);
    env.run(&["man"])
        .ok()
        .has(".TH shipway 1")
        .has(".TH shipway-run 1")
        .has("shipway run bash");
    env.run(&["run", "--help"])
        .ok()
        .has("Examples:")
        .has("--detached");
}

#[test]
fn a_folder_git_ignores_is_said_to_be_ignored() {
    let env = Env::new();
    let repo = env.work.path().join("repo");
    std::fs::create_dir_all(repo.join("apps/py")).unwrap();
    std::fs::create_dir_all(repo.join("node_modules/left")).unwrap();
    std::fs::write(repo.join(".gitignore"), "# deps\nnode_modules/\napps/\n").unwrap();
    std::fs::write(repo.join("apps/py/requirements.txt"), "").unwrap();
    std::fs::write(repo.join("apps/py/app.py"), "").unwrap();
    std::fs::write(repo.join("node_modules/left/a.js"), "").unwrap();
    std::fs::write(repo.join("node_modules/left/b.js"), "").unwrap();
    std::fs::write(repo.join("index.php"), "").unwrap();
    git(&repo, &["init", "-q"]);

    // The whole folder: which rule, how many files, not only "no technology found".
    let deploy = env.run(&["deploy", "repo/apps/py", "-a", "py"]);
    assert_ne!(deploy.code, 0, "{}", deploy.all());
    deploy
        .has("is ignored by git (.gitignore:3:apps/)")
        .has("none of its 2 files")
        .lacks("We didn't find");
    env.run(&["detect", "repo/apps/py"]).has("ignored by git");
    // Some files: taken without them, saying which rules left how many out.
    env.run(&["archive", "repo", "-o", "repo.tgz"])
        .ok()
        .has("left out 4 files that git ignores")
        .has(".gitignore:2:node_modules/ ignores node_modules/")
        .has(".gitignore:3:apps/ ignores apps/");
}

#[test]
fn a_huge_duration_setting_is_refused_with_its_maximum_never_a_panic() {
    for (name, value, max) in [
        ("SHIPWAY_GRACE_PERIOD", "99999999999999999h", "1h"),
        ("SHIPWAY_BOOT_TIMEOUT", "9999999999999999999h", "1h"),
        ("SHIPWAY_BOOT_TIMEOUT", "99999999999999999999999", "1h"),
        ("SHIPWAY_HOOK_TIMEOUT", "25h", "24h"),
    ] {
        let mut env = Env::new();
        env.set(name, value);
        let run = env.run(&["apps"]);
        run.code(1)
            .has(&format!(
                "{name}: \"{value}\" is longer than this setting allows: at most {max}"
            ))
            .lacks("panicked");
    }
    // The same rule for config.toml.
    let env = Env::new();
    std::fs::write(env.home.path().join("config.toml"), "grace_period = \"2h\"\n").unwrap();
    env.run(&["apps"])
        .code(1)
        .has("grace_period: \"2h\" is longer than this setting allows: at most 1h");
}

/// Every verb and alias of the Scalingo CLI (its `cmd/commands.go`), as a user types it
/// (`help` is clap's own, checked apart).
#[rustfmt::skip]
const SCALINGO_VERBS: &[&str] = &[
    "apps", "create", "c", "destroy", "rename", "apps-info", "open", "dashboard", "project-set",
    "logs", "l", "logs-archives", "la", "run", "r", "bash", "one-off-stop", "ps", "scale", "s",
    "restart", "send-signal", "kill", "force-https", "sticky-session", "router-logs",
    "set-canonical-domain", "unset-canonical-domain", "user-timeline", "timeline", "env",
    "env-get", "env-set", "env-unset", "domains", "domains-add", "domains-remove", "domains-ssl",
    "deployments", "deployment-logs", "deployment-follow", "deploy", "deployment-delete-cache",
    "deployment-cache-delete", "collaborators", "collaborators-add", "collaborators-remove",
    "collaborators-update", "stacks", "stacks-set", "addons-list", "addons-plans", "addons",
    "addons-add", "addons-remove", "addons-upgrade", "addons-info", "addons-config",
    "integration-link", "integration-link-create", "integration-link-update",
    "integration-link-delete", "integration-link-manual-deploy",
    "integration-link-manual-review-app", "review-apps", "notifiers", "notifiers-details",
    "notifiers-add", "notifiers-update", "notifiers-remove", "notification-platforms",
    "db-tunnel", "redis-console", "mongo-console", "mongodb-console", "mysql-console",
    "pgsql-console", "psql-console", "postgresql-console", "influxdb-console", "influx-console",
    "backups-config", "database-enable-feature", "database-disable-feature",
    "database-users-list", "database-list-users", "database-users-delete",
    "database-delete-user", "database-users-create", "database-create-user",
    "database-users-update-password", "database-update-user-password",
    "database-maintenance-list", "database-maintenance-info", "database-pitr-restore",
    "database-pitr-recovery-window", "backups", "backups-create", "backups-download",
    "backup-download", "alerts", "alerts-add", "alerts-update", "alerts-enable", "alerts-disable",
    "alerts-remove", "stats", "autoscalers", "autoscalers-add", "autoscalers-remove",
    "autoscalers-update", "autoscalers-disable", "autoscalers-enable", "log-drains",
    "log-drains-add", "log-drains-remove", "git-setup", "git-show", "cron-tasks", "projects",
    "projects-add", "projects-update", "projects-remove", "projects-details",
    "private-networks-domain-names", "databases", "database-info", "database-list-plans",
    "database-create", "database-upgrade", "database-destroy", "database-firewall-rules",
    "database-firewall-rules-add", "database-firewall-rules-remove",
    "database-firewall-managed-ranges", "database-endpoints", "database-net-peerings",
    "database-net-peerings-add", "database-net-peerings-remove", "database-network-configuration",
    "keys", "keys-add", "keys-remove", "integrations", "integrations-add", "integrations-delete",
    "integrations-import-keys", "login", "logout", "regions", "config", "self", "whoami", "update",
    "changelog",
];

#[test]
fn every_scalingo_verb_works_or_answers_why_not_with_exit_2() {
    let env = Env::new();
    let mut answered = 0;
    for verb in SCALINGO_VERBS {
        let help = env.run(&[verb, "--help"]);
        if help.code == 0 && help.stdout.contains("Usage: shipway") {
            continue; // a verb of shipway (or an alias of one)
        }
        // With the flags and arguments a Scalingo user would give it, before or after.
        for args in [&[*verb][..], &["-a", "myapp", verb, "some-arg", "--flag", "x"]] {
            let run = env.run(args).code(2);
            let lines: Vec<&str> = run.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{verb}: one line, got:\n{}", run.stderr);
            assert!(
                lines[0].starts_with(&format!(" !     shipway has no `{verb}`: ")),
                "{verb}: {}",
                lines[0]
            );
            assert!(
                lines[0].len() > format!(" !     shipway has no `{verb}`: ").len() + 20,
                "{verb}: {}",
                lines[0]
            );
            run.lacks("similar").lacks("tip:").lacks("unrecognized");
        }
        answered += 1;
    }
    assert!(answered > 50, "only {answered} verbs answered");
    env.run(&["help"]).ok().has("Usage: shipway");
    // A typo of shipway's own verbs still gets clap's guess.
    env.run(&["deploi"])
        .code(2)
        .has("unrecognized subcommand")
        .has("deploy");
    // The answers are hidden: neither help nor completion offers them.
    env.run(&["--help"]).ok().lacks("domains-add").lacks("db-tunnel");
    env.run(&["completions", "bash"]).ok().lacks("domains-add");
}

#[test]
fn apps_info_open_bash_addons_info_and_the_scalingo_aliases() {
    let env = Env::new();
    deployed_python(&env);
    let url = env.run(&["-a", "python", "open"]).ok().stdout.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );

    let info = env.run(&["-a", "python", "apps-info"]).ok();
    info.has("Settings")
        .has("Status     running")
        .has(&format!("URL        {url}"))
        .has("Release    1")
        .has("Formation  web: 1")
        .has("Addons     -");
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["-a", "python", "apps-info", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["status"], "running");
    assert_eq!(json["release"], 1);
    assert_eq!(json["formation"]["web"], 1);
    assert!(
        json["stack"].as_str().is_some_and(|s| s.starts_with("scalingo-")),
        "{json}"
    );

    // On a terminal, $BROWSER opens it (script(1) gives shipway one).
    let opened = env.work.path().join("opened");
    let browser = env.work.path().join("browser");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    run_ok(env.work.path(), "chmod", &["+x", browser.to_str().unwrap()]);
    let line = format!("{BIN} -a python open");
    let run = Run::from(output_within(
        std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(env.work.path())
            .envs(&env.vars)
            .env("BROWSER", &browser)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null()),
        COMMAND_LIMIT,
    ))
    .ok();
    run.has(&format!("Opened {url} with"));
    assert_eq!(std::fs::read_to_string(&opened).unwrap().trim(), url);

    // bash is `run bash`: its arguments, environment and exit status.
    env.run(&["-a", "python", "bash", "-c", "echo in $CONTAINER; exit 7"])
        .code(7)
        .has("in run-");
    env.run(&["-a", "python", "env-get", "BIND_HOST"])
        .ok()
        .has("127.0.0.1");

    // The Scalingo CLI's aliases.
    env.run(&["-a", "python", "s"]).ok().has("Formation of python");
    env.run(&["-a", "python", "l", "-n", "5"]).ok();
    env.run(&["-a", "python", "r", "echo", "aliased"])
        .ok()
        .has("aliased");
    env.run(&["-a", "python", "deployment-cache-delete"]).ok();
    env.run(&["c", "other"]).ok();
    env.run(&["apps"]).ok().has("other");
    env.run(&["psql-console", "--help"]).ok().has("PostgreSQL");
    env.run(&["postgresql-console", "--help"]).ok().has("PostgreSQL");

    // addons-info, by kind or ID.
    env.run(&["-a", "python", "addons-info", "redis"])
        .code(1)
        .has("redis");
    env.run(&["-a", "python", "addons-add", "redis"]).ok();
    let info = env.run(&["-a", "python", "addons-info", "redis"]).ok();
    info.has("Addon Provider  redis")
        .has("Status          running")
        .has("SCALINGO_REDIS_URL, REDIS_URL");
    let json: serde_json::Value = serde_json::from_str(
        &env.run(&["-a", "python", "addons-info", "redis", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    let id = json["id"].as_str().unwrap().to_string();
    env.run(&["-a", "python", "addons-info", &id]).ok().has(&id);
    env.run(&["-a", "python", "apps-info"])
        .ok()
        .has(&format!("redis {id} (running)"));
}

/// What bash's completion function offers for `words` (the last one being completed), but flags,
/// with the script `shipway completions bash` prints, as a shell would call it.
fn bash_completes(env: &Env, dir: &std::path::Path, words: &[&str]) -> Vec<String> {
    let script = env.work.path().join("shipway.bash");
    std::fs::write(&script, env.run(&["completions", "bash"]).ok().stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let driver = format!(
        "source {}\nCOMP_WORDS=({})\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\nCOMP_TYPE=9\n\
         _clap_complete_shipway shipway \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" ")
    );
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Run::from(output_within(
        std::process::Command::new("bash")
            .args(["-c", &driver])
            .current_dir(dir)
            .envs(&env.vars)
            .env_remove("SHIPWAY_APP")
            .env_remove("COMPLETE")
            .env("PATH", path)
            .stdin(std::process::Stdio::null()),
        COMMAND_LIMIT,
    ))
    .ok();
    // Flags are offered beside values on an empty word: only the values are checked.
    run.stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_know_the_apps_containers_deployments_and_addons() {
    let env = Env::new();
    let dir = deployed_python(&env);
    env.run(&["create", "other"]).ok();
    let work = env.work.path().to_path_buf();
    let has = |got: &[String], want: &[&str]| {
        for w in want {
            assert!(got.iter().any(|g| g == w), "{w} not offered: {got:?}");
        }
    };

    // Verbs: shipway's, never the internal ones nor the Scalingo verbs it answers.
    let verbs = bash_completes(&env, &work, &["shipway", ""]);
    has(&verbs, &["deploy", "apps-info", "logs", "scale", "addons-info"]);
    for hidden in [
        "git-receive",
        "platform",
        "watchdog",
        "shim",
        "as-user",
        "domains-add",
        "db-tunnel",
    ] {
        assert!(!verbs.iter().any(|v| v == hidden), "{hidden} offered: {verbs:?}");
    }
    assert_eq!(
        bash_completes(&env, &work, &["shipway", "dep"]),
        [
            "deploy",
            "deployments",
            "deployment-logs",
            "deployment-follow",
            "deployment-delete-cache"
        ]
    );

    // -a: the apps, before or after the verb.
    assert_eq!(
        bash_completes(&env, &work, &["shipway", "-a", ""]),
        ["other", "python"]
    );
    assert_eq!(
        bash_completes(&env, &work, &["shipway", "scale", "--app", "p"]),
        ["python"]
    );

    // Process types and containers, of the app -a names or the folder's.
    assert_eq!(
        bash_completes(&env, &work, &["shipway", "-a", "python", "scale", ""]),
        ["web:"]
    );
    has(
        &bash_completes(&env, &work, &["shipway", "-a", "python", "restart", ""]),
        &["web", "web-1"],
    );
    has(
        &bash_completes(&env, &dir, &["shipway", "restart", ""]),
        &["web", "web-1"],
    );
    has(
        &bash_completes(&env, &work, &["shipway", "logs", "-a", "python", "--filter", ""]),
        &["web", "web-1", "platform"],
    );
    // Deployment IDs.
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["-a", "python", "deployments", "--json"]).ok().stdout).unwrap();
    let id = json[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        bash_completes(&env, &work, &["shipway", "-a", "python", "deployment-logs", ""]),
        [id.as_str()]
    );
    assert_eq!(
        bash_completes(&env, &work, &["shipway", "-a", "python", "rollback", ""]),
        [id.as_str()]
    );
    // Config var names, and addon IDs and kinds.
    has(
        &bash_completes(&env, &work, &["shipway", "-a", "python", "env-get", "B"]),
        &["BIND_HOST"],
    );
    env.run(&["-a", "python", "addons-add", "redis"]).ok();
    let addons: serde_json::Value =
        serde_json::from_str(&env.run(&["-a", "python", "addons", "--json"]).ok().stdout).unwrap();
    let addon = addons[0]["id"].as_str().unwrap();
    has(
        &bash_completes(&env, &work, &["shipway", "-a", "python", "addons-remove", ""]),
        &[addon, "redis"],
    );

    // With no platform, what the files know: the types, no container.
    env.run(&["down"]).ok();
    let offered = bash_completes(&env, &work, &["shipway", "-a", "python", "restart", ""]);
    assert_eq!(offered, ["web"]);
    // zsh and fish ask the same engine.
    let fish = output_within(
        env.command(&["--", "shipway", "-a", ""]).env("COMPLETE", "fish"),
        COMMAND_LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&fish.stdout).lines().collect::<Vec<_>>(),
        ["other", "python"]
    );
}

#[test]
fn git_setup_names_the_branch_env_unset_checks_names_and_the_man_page_has_settings_and_exit_status() {
    let env = Env::new();
    // A repository on master is told to push master; another branch, onto main.
    let repo = env.work.path().join("legacy");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "master"]);
    env.run_in(&repo, &["git-setup"])
        .ok()
        .has("`git push shipway master` deploys the app legacy");
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    env.run_in(&repo, &["-r", "staging", "-a", "staging", "git-setup"])
        .ok()
        .has("`git push staging feature:main` deploys the app staging");

    // env-unset says a name that cannot be a config var, as env-set does.
    env.run(&["-a", "legacy", "env-unset", "BAD-NAME"])
        .code(1)
        .has("BAD-NAME")
        .lacks("nothing to do");
    env.run(&["-a", "legacy", "env-set", "BAD-NAME=1"])
        .code(1)
        .has("BAD-NAME");

    // deploy --env says where the var stays.
    env.run(&["deploy", "--help"])
        .ok()
        .has("stays even if the build fails");

    let man = env.run(&["man"]).ok();
    man.has(".SH SETTINGS")
        .has("\\fBSHIPWAY_BOOT_TIMEOUT\\fR")
        .has(".SH \"EXIT STATUS\"")
        .has("deploy: build\\-error");
}
