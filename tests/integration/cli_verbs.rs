//! The Scalingo CLI verbs and behaviours of issue #20 that came last: per-app router
//! ports, and the verbs that act on one container or one deployment.

use crate::harness::*;

/// A port the OS gives and takes back at once: free for the test to ask shipway for.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `deploy` of the env-echo fixture as `app` (fast: the procfile-only buildpack).
fn deploy_echo(env: &Env, app: &str, extra: &[&str]) -> Run {
    let dir = env.app_as("env-echo", app);
    let only = procfile_only();
    let mut args = vec!["--env", only.as_str()];
    args.extend_from_slice(extra);
    env.deploy(&dir, app, &args)
}

#[test]
fn each_app_keeps_its_own_router_port_whatever_port_started_the_platform() {
    let mut env = Env::new();
    let pinned = free_port();
    env.set("SHIPWAY_PORT", &pinned.to_string());
    // The first deploy starts the platform, in an environment with a port setting.
    let first = deploy_echo(&env, "first", &[]).ok();
    assert_eq!(url_of(&first), format!("127.0.0.1:{pinned}"));

    // A later app deployed without a port setting takes a free one: the platform's
    // start setting does not pin it to the first app's port.
    env.vars.remove("SHIPWAY_PORT");
    let second = deploy_echo(&env, "second", &[])
        .ok()
        .lacks("the running platform has port")
        .lacks("keeps the settings it started with");
    let second_url = url_of(&second);
    assert_ne!(second_url, format!("127.0.0.1:{pinned}"));
    assert!(body(&second_url).contains("\"PORT\""), "second app serves");

    // A port setting on a later deploy of an app applies only to a new app: the app keeps
    // its URL, and says so.
    let again = deploy_echo(&env, "second", &["--port", &free_port().to_string()])
        .ok()
        .has("note: second keeps its router port");
    assert_eq!(url_of(&again), second_url);

    // A port another app of this platform holds names that app, not "another program".
    deploy_echo(&env, "third", &["--port", &pinned.to_string()])
        .code(1)
        .has("shipway itself holds it, as the router of app `first`")
        .lacks("Another program holds it");

    // Each app's URL is shown by `apps`, as chosen once.
    env.run(&["apps"])
        .ok()
        .has(&format!("http://127.0.0.1:{pinned}"))
        .has(&format!("http://{second_url}"));

    // A setting the running platform ignores is named, and the port is said to apply.
    env.set("SHIPWAY_PORT", "0");
    env.set("SHIPWAY_GRACE_PERIOD", "2s");
    deploy_echo(&env, "fourth", &[])
        .ok()
        .has("keeps the settings it started with, grace_period = 1s (not 2s)")
        .has("This deploy's port setting applies")
        .lacks("port = ");
}
