//! What shipway shows and reads on the user's side, against hostile input: an app's escape
//! sequences never drive the terminal, the home's files never hang or betray a command,
//! and `down` always stops what this user started.

use std::process::Command;

use crate::harness::*;

/// The probe's bytes (issue 21): OSC 52 sets the clipboard, OSC 0 the window's title,
/// `ESC[2J` clears the screen, a bare CR writes over the line; the red is a colour.
const HOSTILE_PRINTF: &str =
    r"printf '\033]52;c;cHduZWQ=\007\033]0;pwned\007\033[2J\033[31mred\033[0m\rover\n'";
/// How a pipe is shown those bytes: every control character but tab escaped.
const ESCAPED: &str = r"\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\rover";
const RAW: &str = "\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\rover";

/// No byte of `text` would drive a terminal: no control character but tab and newline.
#[track_caller]
fn inert(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n'))
        .collect();
    assert!(
        bad.is_empty(),
        "control characters {bad:?} reached the output:\n{text}"
    );
}

/// `shipway ARGS` with its stdout and stderr on a pseudo-terminal (`script`), colour
/// allowed: what a user at a terminal sees.
fn on_a_terminal(env: &Env, args: &[&str]) -> String {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(env.work.path())
        .envs(&env.vars)
        .env_remove("NO_COLOR")
        .env_remove("SHIPWAY_APP")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output_within(COMMAND_LIMIT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_apps_escape_sequences_are_shown_escaped_in_the_crash_excerpt_logs_and_deployment_logs() {
    let env = Env::new();
    let app = env.work.path().join("osc");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Procfile"), format!("web: {HOSTILE_PRINTF}; exit 1\n")).unwrap();
    // Piped, as the probe ran it: the crash excerpt of the deploy's output.
    let deploy = env.deploy(&app, "osc", &["--env", &procfile_only()]).code(11);
    inert(&deploy.all());
    deploy.has(ESCAPED).has("exited with code 1");
    let logs = env.run(&["logs", "-a", "osc"]).ok();
    inert(&logs.all());
    logs.has(&format!("[web-1] {ESCAPED}"));
    let history = env.run(&["deployment-logs", "-a", "osc"]);
    inert(&history.all());
    history.has(ESCAPED);
    // `--raw`: the bytes as the app wrote them.
    env.run(&["logs", "-a", "osc", "--raw"])
        .ok()
        .has(&format!("[web-1] {RAW}\n"));
    // On a terminal the colour passes (and is reset at the line's end); nothing else does.
    let seen = on_a_terminal(&env, &["logs", "-a", "osc"]);
    assert!(
        seen.contains("\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;pwned\\x07\\x1b[2J\x1b[31mred\x1b[0m\\rover\x1b[0m"),
        "{seen:?}"
    );
    for raw in ["\x1b]", "\x07", "\x1b[2J"] {
        assert!(!seen.contains(raw), "{raw:?} reached the terminal: {seen:?}");
    }
}
