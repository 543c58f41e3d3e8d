//! The platform process (`shipway up`, or started in the background by `deploy`): it
//! owns every app's routers and containers, runs deployments one at a time per app,
//! and answers the CLI over a Unix socket (mode 0600) in `SHIPWAY_HOME`.
//!
//! The router's upstream list is the one piece of state shared with the routers'
//! threads; it is replaced whole at each switch (PLATFORM.md §4 step 4).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver};

use super::applog::AppLog;
use super::protocol::{self, AppInfo, Event, Request};
use super::supervisor::{AppRuntime, Serving};
use super::watchdog::Watchdog;
use crate::build::{self, BuildRequest};
use crate::config_vars;
use crate::deployment::{Deployment, Status};
use crate::error::{exit, Error};
use crate::process::{self, GroupEvent, LineSink};
use crate::release::Release;
use crate::rollout;
use crate::router::{Protocol, Router, RouterConfig};
use crate::settings::Settings;
use crate::state::{AppDir, Home};
use crate::ui::{human_duration, Output};

pub struct Platform {
    pub(super) settings: Settings,
    pub(super) home: Home,
    foreground: bool,
    apps: Mutex<BTreeMap<String, Arc<AppRuntime>>>,
    /// Dropped when the platform stops: every wait selects on its receiver.
    stop_tx: Mutex<Option<crossbeam_channel::Sender<()>>>,
    stop_rx: Receiver<()>,
    /// Old containers being stopped in the background; joined before exit.
    pub(super) background: Mutex<Vec<JoinHandle<()>>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicked holder leaves the data as consistent as any kill would: go on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run the platform until `down`, SIGINT or SIGTERM. Returns the exit status.
pub fn run(settings: Settings, foreground: bool) -> Result<i32, Error> {
    let home = Home::open(&settings.home)?;
    let socket = home.socket();
    if UnixStream::connect(&socket).is_ok() {
        let pid = std::fs::read_to_string(home.pid_file()).unwrap_or_default();
        return Err(Error::Platform {
            message: format!(
                "a shipway platform already runs for {} (pid {}); stop it with `shipway down`",
                home.root.display(),
                pid.trim()
            ),
        });
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|source| Error::Io {
        action: "listen on",
        path: socket.clone(),
        source,
    })?;
    // Only this user may drive the platform.
    let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600));
    crate::state::write_atomic(
        &home.pid_file(),
        format!("{}\n", std::process::id()).as_bytes(),
        0o600,
    )?;

    let watchdog = Arc::new(Watchdog::spawn().map_err(|source| Error::Io {
        action: "start the watchdog",
        path: home.root.clone(),
        source,
    })?);
    let w = watchdog.clone();
    process::set_guard(Box::new(move |event| match event {
        GroupEvent::Started(pgid) => w.watch(pgid),
        GroupEvent::Ended(pgid) => w.forget(pgid),
    }));

    let (stop_tx, stop_rx) = bounded::<()>(0);
    let platform = Arc::new(Platform {
        settings,
        home,
        foreground,
        apps: Mutex::new(BTreeMap::new()),
        stop_tx: Mutex::new(Some(stop_tx)),
        stop_rx,
        background: Mutex::new(Vec::new()),
    });
    platform.say(&format!(
        "shipway platform {} (pid {}) on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        socket.display()
    ));
    for (k, v) in platform.settings.describe() {
        platform.say(&format!("  {k} = {v}"));
    }
    platform.restore();
    platform.watch_signals();

    for stream in listener.incoming() {
        if platform.is_stopping() {
            break;
        }
        let Ok(stream) = stream else { continue };
        let p = platform.clone();
        std::thread::spawn(move || p.serve(stream));
    }
    platform.shutdown();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(platform.home.pid_file());
    drop(platform);
    if let Ok(w) = Arc::try_unwrap(watchdog) {
        w.finish();
    }
    Ok(exit::SUCCESS)
}

impl Platform {
    /// A line for the platform's own log (its stdout: the terminal or platform.log).
    fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    pub(super) fn runtime(&self, app: &str) -> Result<Arc<AppRuntime>, Error> {
        let mut apps = lock(&self.apps);
        if let Some(rt) = apps.get(app) {
            return Ok(rt.clone());
        }
        let dir = self.home.app(app)?;
        let rt = Arc::new(AppRuntime {
            name: app.to_string(),
            deploying: Mutex::new(()),
            serving: Mutex::new(Serving::default()),
            log: AppLog::open(&dir.root.join("app.log")).map_err(|source| Error::Io {
                action: "open",
                path: dir.root.join("app.log"),
                source,
            })?,
        });
        apps.insert(app.to_string(), rt.clone());
        Ok(rt)
    }

    /// The sink of a container's output: the app's log, and the terminal under `up`.
    pub(super) fn container_log(&self, app: &str, rt: &Arc<AppRuntime>, name: &str) -> LineSink {
        let log = rt.log.clone();
        let prefix = format!("[{name}]");
        let echo = self.foreground.then(|| format!("{app} [{name}]"));
        Arc::new(move |_, line: &str| {
            log.line(&prefix, line);
            if let Some(p) = &echo {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{p} {line}");
            }
        })
    }

    /// Wake the accept loop and stop, at the first SIGINT or SIGTERM; exit at the second
    /// (the watchdog then kills what is left).
    fn watch_signals(self: &Arc<Self>) {
        let cancel = crate::signals::cancel_on_interrupt();
        let p = self.clone();
        std::thread::spawn(move || {
            let _ = cancel.recv();
            p.say("stopping: every app gets SIGTERM, then SIGKILL after the grace period (Ctrl-C again to kill now)");
            p.request_stop();
        });
    }

    /// A receiver that becomes ready when the platform stops.
    pub(super) fn stop_signal(&self) -> Receiver<()> {
        self.stop_rx.clone()
    }

    /// Whether the platform is stopping: its stop channel is closed.
    pub(super) fn is_stopping(&self) -> bool {
        matches!(
            self.stop_rx.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    fn request_stop(&self) {
        lock(&self.stop_tx).take();
        let _ = UnixStream::connect(self.home.socket());
    }

    /// Stop every app: routers first (no new request), then containers gracefully.
    fn shutdown(&self) {
        let apps: Vec<Arc<AppRuntime>> = lock(&self.apps).values().cloned().collect();
        let mut stops = Vec::new();
        for rt in apps {
            let _deploying = lock(&rt.deploying);
            let containers = lock(&rt.serving).dismantle();
            stops.push(rollout::discard(containers, self.settings.grace_period));
        }
        for s in stops {
            let _ = s.join();
        }
        for h in lock(&self.background).drain(..) {
            let _ = h.join();
        }
    }

    fn serve(self: Arc<Self>, stream: UnixStream) {
        let Ok(read_half) = stream.try_clone() else { return };
        let mut reader = BufReader::new(read_half);
        let mut writer = stream;
        let request: Request = match protocol::read(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = protocol::write(
                    &mut writer,
                    &Event::Error {
                        message: format!("cannot read the request: {e}"),
                    },
                );
                return;
            }
        };
        match request {
            Request::Status => {
                let info = Event::Info {
                    pid: std::process::id(),
                    settings: self.settings.describe(),
                    apps: self.infos(),
                };
                let _ = protocol::write(&mut writer, &info);
            }
            Request::Ps { app } => {
                let event = match self
                    .home
                    .existing_app(&app)
                    .map_err(Error::from)
                    .and_then(|_| self.runtime(&app))
                {
                    Ok(rt) => Event::Ps { rows: rt.rows() },
                    Err(e) => Event::Error {
                        message: e.to_string(),
                    },
                };
                let _ = protocol::write(&mut writer, &event);
            }
            Request::Scale { app, counts } => {
                let result = self.with_output(&writer, |out| {
                    self.scale(&app, counts, out).map(|_| Status::Success)
                });
                self.finish(&mut writer, result);
            }
            Request::Restart { app, target } => {
                let result = self.with_output(&writer, |out| {
                    self.restart(&app, target.as_deref(), out)
                        .map(|_| Status::Success)
                });
                self.finish(&mut writer, result);
            }
            Request::Rollback { app, deployment } => {
                let result = self.with_output(&writer, |out| self.rollback(&app, deployment.as_deref(), out));
                self.finish(&mut writer, result);
            }
            Request::Destroy { app } => {
                let result = self.destroy(&app).map(|_| Status::Success);
                self.finish(&mut writer, result);
            }
            Request::Down => {
                self.request_stop();
                // The reply comes when everything is stopped: the client waits for EOF.
                let _ = protocol::write(
                    &mut writer,
                    &Event::Line {
                        text: "stopping every app".into(),
                    },
                );
            }
            Request::Deploy {
                app,
                input,
                git_ref,
                port,
                env,
                source,
            } => {
                // The client closing its side (Ctrl-C) aborts the deployment, and so does
                // the platform stopping (`down`, Ctrl-C under `up`).
                let (cancel_tx, cancel) = bounded::<()>(0);
                let (eof_tx, eof) = bounded::<()>(0);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    let _ = std::io::Read::read(&mut reader, &mut buf);
                    drop(eof_tx);
                });
                let stop = self.stop_signal();
                std::thread::spawn(move || {
                    crossbeam_channel::select! {
                        recv(eof) -> _ => {},
                        recv(stop) -> _ => {},
                    }
                    drop(cancel_tx);
                });
                let what = DeployArgs {
                    input,
                    git_ref,
                    port,
                    env,
                    source,
                };
                let result = self.with_output(&writer, |out| self.deploy(&app, what, out, &cancel));
                self.finish(&mut writer, result);
            }
        }
    }

    /// Run `f` with an output whose lines go to the client.
    fn with_output<T>(
        &self,
        client: &UnixStream,
        f: impl FnOnce(&Output) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let out = Output::new();
        let stream = client.try_clone().map_err(|source| Error::Io {
            action: "answer on",
            path: self.home.socket(),
            source,
        })?;
        out.attach(Box::new(EventWriter(stream)));
        f(&out)
    }

    /// The last event of a request: its exit code, or the error.
    fn finish(&self, client: &mut UnixStream, result: Result<Status, Error>) {
        let done = match result {
            Ok(status) => Event::Done {
                code: status.exit_code(),
            },
            Err(e) => {
                let _ = protocol::write(
                    client,
                    &Event::Error {
                        message: e.to_string(),
                    },
                );
                Event::Done { code: e.exit_code() }
            }
        };
        let _ = protocol::write(client, &done);
    }

    /// Drop an app's runtime (destroy): returns it so its containers can be stopped.
    pub(super) fn forget(&self, app: &str) -> Option<Arc<AppRuntime>> {
        lock(&self.apps).remove(app)
    }

    fn infos(&self) -> Vec<AppInfo> {
        let apps: Vec<(String, Arc<AppRuntime>)> = lock(&self.apps)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        apps.into_iter()
            .map(|(name, rt)| {
                let serving = lock(&rt.serving);
                AppInfo {
                    name,
                    release: serving.release,
                    url: serving
                        .router
                        .as_ref()
                        .map(|r| format!("http://{}", r.local_addr())),
                    containers: serving.containers.iter().map(|c| c.name.clone()).collect(),
                }
            })
            .collect()
    }

    /// Bind the app's router (and tcp router) if not bound yet, on its kept port.
    fn ensure_routers(
        &self,
        app: &AppDir,
        rt: &AppRuntime,
        port: Option<u16>,
        wants_tcp: bool,
    ) -> Result<(String, Option<String>), Error> {
        let mut serving = lock(&rt.serving);
        let config = app.load_config()?;
        if serving.router.is_none() {
            let (listener, p) = bind_port(config.router_port.or(port).or(self.settings.port))?;
            serving.router = Some(self.start_router(listener, Protocol::Http)?);
            if config.router_port != Some(p) {
                app.update_config(|c| c.router_port = Some(p))?;
            }
        }
        if wants_tcp && serving.tcp_router.is_none() {
            // The web router's port is skipped by itself: its listener holds it.
            let os_port = (self.settings.port == Some(0)).then_some(0);
            let (listener, p) = bind_port(config.tcp_port.or(os_port))?;
            serving.tcp_router = Some(self.start_router(listener, Protocol::Tcp)?);
            if config.tcp_port != Some(p) {
                app.update_config(|c| c.tcp_port = Some(p))?;
            }
        }
        let url = serving
            .router
            .as_ref()
            .map(|r| format!("http://{}", r.local_addr()))
            .unwrap_or_default();
        let tcp = serving
            .tcp_router
            .as_ref()
            .map(|r| format!("tcp://{}", r.local_addr()));
        Ok((url, tcp))
    }

    fn start_router(&self, listener: TcpListener, protocol: Protocol) -> Result<Router, Error> {
        let config = RouterConfig {
            first_byte_timeout: self.settings.first_byte_timeout,
            ..RouterConfig::default()
        };
        Router::start(listener, protocol, config).map_err(|source| Error::Io {
            action: "start the router on",
            path: "127.0.0.1".into(),
            source,
        })
    }

    fn deploy(
        self: &Arc<Self>,
        name: &str,
        what: DeployArgs,
        out: &Output,
        cancel: &Receiver<()>,
    ) -> Result<Status, Error> {
        let DeployArgs {
            input,
            git_ref,
            port,
            env,
            source,
        } = what;
        let (input, git_ref) = (input.as_path(), git_ref.as_deref());
        let app = self.home.app(name)?;
        app.create()?;
        if !env.is_empty() {
            for (k, v) in &env {
                config_vars::validate(k, v)?;
            }
            app.update_config(|c| c.config_vars.extend(env))?;
        }
        let rt = self.runtime(name)?;
        let _guard = match rt.deploying.try_lock() {
            Ok(g) => g,
            Err(_) => {
                out.step(&format!(
                    "Another deployment of {name} is running: this one is queued"
                ));
                lock(&rt.deploying)
            }
        };
        // Also exclude a `shipway build` of the same app in another process.
        let _flock = app.lock()?;
        // A router port held by another program fails here, before anything is built.
        let (url, _) = self.ensure_routers(&app, &rt, port, false)?;

        let source = source.unwrap_or_else(|| input.display().to_string());
        let mut deployment = Deployment::new(name, &source, git_ref);
        let log_path = Deployment::log_path(&app, &deployment.id);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| Error::Io {
                action: "write",
                path: log_path.clone(),
                source,
            })?;
        out.attach(Box::new(log));
        deployment.set_status(Status::Building, &app)?;
        out.line(&format!(
            "<-- Start deployment of {name} (deployment {}) -->",
            deployment.id
        ));

        let config = app.load_config()?;
        let number = app.release_numbers().last().copied().unwrap_or(0) + 1;
        let request = BuildRequest {
            app: name.to_string(),
            input: input.to_path_buf(),
            git_ref: git_ref.map(String::from),
            buildpacks: Vec::new(),
            config_vars: config.config_vars.clone(),
            release_dir: app.release(number),
            number,
            cache_dir: app.cache(),
            request_id: deployment.id.clone(),
        };
        let built = match build::build(&request, &self.settings, out, cancel) {
            Ok(b) => b,
            Err(e) => {
                out.error(&e.to_string());
                let status = if e.was_cancelled() {
                    Status::Aborted
                } else {
                    Status::BuildError
                };
                deployment.set_status(status, &app)?;
                out.line(&format!(
                    "<-- Deployment {status}: the running release, if any, is untouched -->"
                ));
                return Ok(status);
            }
        };
        let release = built.release;
        deployment.record_release(&release);
        for (k, v) in [
            ("intake", built.timings.intake),
            ("detect", built.timings.detect),
            ("compile", built.timings.compile),
        ] {
            deployment.timings.insert(k.into(), v.as_millis() as u64);
        }
        // The slug is already where it runs from: pushing is only a record here.
        deployment.set_status(Status::Pushing, &app)?;
        out.line("Build complete, shipping your container...");
        deployment.set_status(Status::Starting, &app)?;

        let wants_tcp = release.process_types.contains_key("tcp");
        let (_, tcp_url) = match self.ensure_routers(&app, &rt, port, wants_tcp) {
            Ok(urls) => urls,
            Err(e) => {
                out.error(&e.to_string());
                deployment.set_status(Status::CrashedError, &app)?;
                return Ok(Status::CrashedError);
            }
        };
        out.line(" Waiting for your application to boot...");
        let boot_started = Instant::now();
        let outcome = self.with_plan(&app, &rt, &release, &config, |plan, log_for| {
            let containers = rollout::start(plan, log_for, out, cancel)?;
            deployment
                .timings
                .insert("boot".into(), boot_started.elapsed().as_millis() as u64);
            match rollout::run_hook(plan, out, cancel) {
                Ok(hook) => {
                    if let Some(h) = hook {
                        deployment.timings.insert("hook".into(), h.as_millis() as u64);
                    }
                    Ok(containers)
                }
                Err(e) => {
                    rollout::discard(containers, self.settings.grace_period);
                    Err(e)
                }
            }
        });
        let containers = match outcome {
            Ok(c) => c,
            Err(e) => {
                let status = e.status();
                out.error(&e.to_string());
                for line in e.details() {
                    out.error(&line);
                }
                deployment.set_status(status, &app)?;
                out.line(&format!(
                    "<-- Deployment {status}: the running release, if any, keeps serving, untouched -->"
                ));
                return Ok(status);
            }
        };

        // The switch: from this instant every new request goes to the new release.
        let switch_started = Instant::now();
        let old = self.switch_release(&rt, release.number, containers);
        app.set_current(release.number)?;
        deployment
            .timings
            .insert("switch".into(), switch_started.elapsed().as_millis() as u64);
        if old > 0 {
            out.step(&format!(
                "Stopping {old} old container(s): SIGTERM, then SIGKILL after {}",
                crate::settings::render_duration(self.settings.grace_period)
            ));
        }
        self.prune_releases(&app, release.number);
        deployment.set_status(Status::Success, &app)?;
        if let Some(ms) = deployment.duration_ms {
            out.line(&format!(
                " Deployment success in {}",
                human_duration(std::time::Duration::from_millis(ms))
            ));
        }
        if let Some(t) = &tcp_url {
            out.line(&format!(" <-- {t} (tcp) -->"));
        }
        out.line(&format!(" <-- {url} -->"));
        Ok(Status::Success)
    }

    /// Keep the newest `releases_kept` releases, and always the current one.
    fn prune_releases(&self, app: &AppDir, current: u32) {
        let numbers = app.release_numbers();
        let excess = numbers.len().saturating_sub(self.settings.releases_kept.max(1));
        for n in numbers.into_iter().take(excess) {
            if n != current {
                let _ = std::fs::remove_dir_all(app.release(n));
            }
        }
    }

    /// At start: deployments a dead platform left unfinished become `aborted`, and every
    /// app's current release is started again (like Dokku's ps:restore).
    fn restore(self: &Arc<Self>) {
        for name in self.home.apps() {
            let Ok(app) = self.home.app(&name) else { continue };
            for mut d in Deployment::list(&app) {
                if d.status().is_some_and(|s| !s.is_final()) {
                    let _ = d.set_status(Status::Aborted, &app);
                }
            }
            let Some(number) = app.current() else { continue };
            let p = self.clone();
            let handle = std::thread::spawn(move || {
                if let Err(e) = p.restore_app(&app, number) {
                    p.say(&format!("{}: cannot start release {number} again: {e}", app.name));
                }
            });
            lock(&self.background).push(handle);
        }
    }

    fn restore_app(self: &Arc<Self>, app: &AppDir, number: u32) -> Result<(), Error> {
        let rt = self.runtime(&app.name)?;
        let _deploying = lock(&rt.deploying);
        let release_dir = app.release(number);
        let release = Release::load(&release_dir)?;
        let config = app.load_config()?;
        let (url, _) = self.ensure_routers(app, &rt, None, release.process_types.contains_key("tcp"))?;
        self.roll_out_built(app, &rt, &release, &config, &Output::new())
            .map_err(|e| Error::Platform {
                message: e.to_string(),
            })?;
        self.say(&format!("{}: release {number} serves at {url}", app.name));
        Ok(())
    }
}

/// Bind 127.0.0.1:`wanted` (0: a port the OS chooses), or the first free port from
/// 5000 up.
fn bind_port(wanted: Option<u16>) -> Result<(TcpListener, u16), Error> {
    if wanted == Some(0) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| Error::Io {
            action: "listen on",
            path: "127.0.0.1:0".into(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Io {
                action: "listen on",
                path: "127.0.0.1:0".into(),
                source,
            })?
            .port();
        return Ok((listener, port));
    }
    if let Some(p) = wanted {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, p)).map(|l| (l, p)).map_err(|source| Error::Platform {
            message: format!(
                "cannot listen on 127.0.0.1:{p} for the app's router: {source}. Another program holds it (see `ss -ltnp 'sport = :{p}'`): stop it, or deploy with --port to choose another"
            ),
        });
    }
    for p in 5000..=u16::MAX {
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, p)) {
            return Ok((l, p));
        }
    }
    Err(Error::Platform {
        message: "no free TCP port from 5000 up on 127.0.0.1".into(),
    })
}

/// What a deploy request asks for (see `Request::Deploy`).
struct DeployArgs {
    input: std::path::PathBuf,
    git_ref: Option<String>,
    port: Option<u16>,
    env: BTreeMap<String, String>,
    source: Option<String>,
}

/// Deployment output to the client, one JSON event per line.
struct EventWriter(UnixStream);

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // ui::Output writes one whole line per call; the event carries it without its newline.
        let line = buf.strip_suffix(b"\n").unwrap_or(buf);
        let text = String::from_utf8_lossy(line).into_owned();
        protocol::write(&mut self.0, &Event::Line { text })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
