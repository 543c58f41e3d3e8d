//! An app's routers (PLATFORM.md §4 step 4): the web router and, when the release has a
//! `tcp` type, the tcp router, each on the port the app keeps between runs. The
//! supervisor owns them; pointing them at a new set of containers is one whole swap.
//!
//! The upstream lists have exactly one writer: the supervisor thread, through
//! [`Routers::reroute`], each time the app's set of ready containers changes (a deploy's
//! switch, a scale or restart, a crash, a restart after one). Since every change of that
//! set is a message it handles one at a time, the lists always follow the latest set: a
//! crash restart can no longer point traffic back at containers a switch took out. A job
//! learns the routers' URLs and ports ([`Bound`]) but cannot switch them.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};

use super::applog::AppLog;
use super::life::Slot;
use super::telemetry::{self, Names, Telemetries};
use crate::container::Container;
use crate::error::Error;
use crate::router::{Protocol, Router, RouterConfig};
use crate::settings::Settings;

#[derive(Default)]
pub struct Routers {
    web: Option<Router>,
    tcp: Option<Router>,
    /// The web containers' names by address, for the router logs' `container=web-1`.
    names: Arc<Mutex<Names>>,
}

/// Where an app's web router reports: its log (router logs), whether router logs are on
/// (app.toml, read by the job), and the platform's registry of figures.
pub struct Reporting<'a> {
    pub app: &'a str,
    pub log: &'a AppLog,
    pub router_logs: bool,
    pub telemetries: &'a Telemetries,
}

/// What a job learns of the routers it asked for: their URLs, their ports (for the job
/// to keep in app.toml), and their upstream lists to switch at the moment its containers
/// are ready.
pub struct Bound {
    pub url: String,
    pub tcp_url: Option<String>,
    pub ports: Ports,
}

/// The ports of an app's web and tcp routers: those app.toml keeps, or those bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ports {
    pub web: Option<u16>,
    pub tcp: Option<u16>,
}

impl Routers {
    /// Bind the web router (and the tcp one when `wants_tcp`) if not bound yet, on the
    /// app's `kept` port, else the deploy's `port`, else the first free one from 5000.
    /// The platform's own `port` setting is not read: it was the setting of whichever
    /// command started the platform, and would pin every later app to that one port.
    /// `held` names the app whose router holds a port of this platform, so that a clash
    /// with one of them names it rather than "another program".
    /// It reads and writes no file: this runs on the supervisor thread, and the job that
    /// asks reads the kept ports and records the bound ones (`Bound::ports`).
    pub fn ensure(
        &mut self,
        settings: &Settings,
        kept: Ports,
        port: Option<u16>,
        wants_tcp: bool,
        held: impl Fn(u16) -> Option<String>,
        reporting: Reporting,
    ) -> Result<Bound, Error> {
        if self.web.is_none() {
            let (listener, _) = bind_port(kept.web.or(port), &held)?;
            let router = start(settings, listener, Protocol::Http)?;
            let t = router.telemetry();
            t.logs.set_enabled(reporting.router_logs);
            telemetry::write_router_logs(t.logs.records(), reporting.log.clone(), self.names.clone())
                .map_err(|source| Error::io("start the router log writer of", reporting.app, source))?;
            reporting.telemetries.insert(reporting.app, &t);
            self.web = Some(router);
        }
        if wants_tcp && self.tcp.is_none() {
            // Port 0 for the web router asks the OS for every port of this deploy; else the
            // web router's port is skipped by itself: its listener holds it.
            let os_port = (port == Some(0)).then_some(0);
            let (listener, _) = bind_port(kept.tcp.or(os_port), &held)?;
            self.tcp = Some(start(settings, listener, Protocol::Tcp)?);
        }
        Ok(Bound {
            url: self.url().unwrap_or_default(),
            tcp_url: self.tcp.as_ref().map(|r| format!("tcp://{}", r.local_addr())),
            ports: self.ports(),
        })
    }

    /// The ports of the routers bound.
    pub fn ports(&self) -> Ports {
        Ports {
            web: self.web.as_ref().map(|r| r.local_addr().port()),
            tcp: self.tcp.as_ref().map(|r| r.local_addr().port()),
        }
    }

    /// The web router's URL, once bound.
    pub fn url(&self) -> Option<String> {
        self.web.as_ref().map(|r| format!("http://{}", r.local_addr()))
    }

    /// Point the routers at the ready web (and tcp) containers.
    pub fn reroute(&self, slots: &[Slot]) {
        let ready = || slots.iter().filter_map(Slot::container);
        if let Some(r) = &self.web {
            let web: Vec<(SocketAddr, String)> = ready()
                .filter(|c| c.spec.process_type == "web")
                .filter_map(|c| {
                    c.port
                        .map(|p| (SocketAddr::from((Ipv4Addr::LOCALHOST, p)), c.spec.name()))
                })
                .collect();
            self.names
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .switch(web.clone());
            r.switch(web.into_iter().map(|(addr, _)| addr).collect());
        }
        if let Some(r) = &self.tcp {
            r.switch(addresses(ready(), "tcp"));
        }
    }

    /// Close both: no new connection is accepted.
    pub fn shutdown(&mut self) {
        for router in [self.web.take(), self.tcp.take()].into_iter().flatten() {
            router.shutdown();
        }
    }
}

fn addresses<'a>(containers: impl Iterator<Item = &'a Container>, process_type: &str) -> Vec<SocketAddr> {
    containers
        .filter(|c| c.spec.process_type == process_type)
        .filter_map(|c| c.port.map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))))
        .collect()
}

fn start(settings: &Settings, listener: TcpListener, protocol: Protocol) -> Result<Router, Error> {
    let config = RouterConfig {
        first_byte_timeout: settings.first_byte_timeout,
        ..RouterConfig::default()
    };
    Router::start(listener, protocol, config)
        .map_err(|source| Error::io("start the router on", "127.0.0.1", source))
}

/// Bind 127.0.0.1:`wanted` (0: a port the OS chooses), or the first free port from
/// 5000 up. `held` names the app of this platform whose router holds a port.
fn bind_port(wanted: Option<u16>, held: &dyn Fn(u16) -> Option<String>) -> Result<(TcpListener, u16), Error> {
    if wanted == Some(0) {
        let io = |source| Error::io("listen on", "127.0.0.1:0", source);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?;
        let port = listener.local_addr().map_err(io)?.port();
        return Ok((listener, port));
    }
    if let Some(p) = wanted {
        if let Some(app) = held(p) {
            return Err(Error::Platform {
                message: format!(
                    "cannot listen on 127.0.0.1:{p} for the app's router: shipway itself holds it, as the router of app `{app}`. Deploy with --port to choose another port, or without it to take the first free one from 5000"
                ),
            });
        }
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

#[cfg(test)]
mod tests {
    //! Binding an app's routers; what they route is tested through the supervisor
    //! (`tests/integration`), since only ready containers are routed to.

    use super::*;
    use crate::platform::life::Life;

    fn reporting<'a>(log: &'a AppLog, telemetries: &'a Telemetries) -> Reporting<'a> {
        Reporting {
            app: "web",
            log,
            router_logs: false,
            telemetries,
        }
    }

    #[test]
    fn routers_bind_once_on_os_ports_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(&dir.path().join("app.log")).unwrap();
        let telemetries = Telemetries::default();
        let settings = Settings::defaults(dir.path().to_path_buf());
        let mut routers = Routers::default();
        assert_eq!((routers.url(), routers.ports()), (None, Ports::default()));
        let none = |_: u16| None;
        // The same ask each time: the first deploy's, then the next's.
        let ensure = |routers: &mut Routers| {
            routers
                .ensure(
                    &settings,
                    Ports::default(),
                    Some(0),
                    true,
                    none,
                    reporting(&log, &telemetries),
                )
                .unwrap()
        };
        let bound = ensure(&mut routers);
        let (web, tcp) = (bound.ports.web.unwrap(), bound.ports.tcp.unwrap());
        assert_ne!(web, tcp);
        assert_eq!(bound.url, format!("http://127.0.0.1:{web}"));
        assert_eq!(bound.tcp_url, Some(format!("tcp://127.0.0.1:{tcp}")));
        // Asked again (the next deploy), the same routers answer.
        let again = ensure(&mut routers);
        assert_eq!(again.ports, bound.ports);
        // No container is ready: nothing is routed to.
        let crashed = Slot {
            spec: crate::container::ContainerSpec {
                process_type: "web".into(),
                index: 1,
                command: "serve".into(),
            },
            release: 1,
            restarts: 0,
            since: std::time::Instant::now(),
            life: Life::Crashed { reason: "x".into() },
        };
        routers.reroute(&[crashed]);
        assert!(routers.web.as_ref().unwrap().upstreams().is_empty());
        routers.shutdown();
        assert_eq!(routers.url(), None);
        assert!(
            TcpListener::bind((Ipv4Addr::LOCALHOST, web)).is_ok(),
            "its port is free again"
        );
    }

    #[test]
    fn a_port_held_by_another_program_is_refused_with_how_to_find_it() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let p = holder.local_addr().unwrap().port();
        let err = bind_port(Some(p), &|_| None).unwrap_err().to_string();
        assert!(
            err.contains(&format!("ss -ltnp 'sport = :{p}'")) && err.contains("--port"),
            "{err}"
        );
    }

    #[test]
    fn a_port_of_another_app_s_router_names_that_app() {
        let err = bind_port(Some(5999), &|p| (p == 5999).then(|| "shop".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("as the router of app `shop`"), "{err}");
        let (listener, port) = bind_port(Some(0), &|_| Some("never asked".into())).unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), port);
    }
}
