//! An app's routers (PLATFORM.md §4 step 4): the web router and, when the release has a
//! `tcp` type, the tcp router, each on the port the app keeps between runs. The
//! supervisor owns them; pointing them at a new set of containers is one whole swap.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use super::life::Slot;
use crate::container::Container;
use crate::error::Error;
use crate::router::{Protocol, Router, RouterConfig, Switcher};
use crate::settings::Settings;
use crate::state::AppDir;

#[derive(Default)]
pub struct Routers {
    web: Option<Router>,
    tcp: Option<Router>,
}

/// What a job learns of the routers it asked for: their URLs, and their upstream lists
/// to switch at the moment its containers are ready.
pub struct Bound {
    pub url: String,
    pub tcp_url: Option<String>,
    pub lanes: Lanes,
}

/// The routers' upstream lists without the routers. A deploy worker switches them
/// itself, the instant its containers are ready, rather than wait for the supervisor
/// thread's turn (which, with a new container busy booting on a small machine, took up
/// to 12 ms). The supervisor then adopts the containers and points the routers at the
/// same list, which is no second switch. Between the two, a crash restart of an old
/// container may point them back at the old containers for that moment: those still
/// run, so no request is lost.
#[derive(Clone)]
pub struct Lanes {
    web: Option<Switcher>,
    tcp: Option<Switcher>,
}

impl Lanes {
    /// Route to `containers` (their web and tcp ones), and to nothing else.
    pub fn switch_to(&self, containers: &[Container]) {
        if let Some(s) = &self.web {
            s.switch(addresses(containers.iter(), "web"));
        }
        if let Some(s) = &self.tcp {
            s.switch(addresses(containers.iter(), "tcp"));
        }
    }
}

impl Routers {
    /// Bind the web router (and the tcp one when `wants_tcp`) if not bound yet, on the
    /// app's kept port, else `port`, else the settings'. Returns their URLs.
    pub fn ensure(
        &mut self,
        settings: &Settings,
        app: &AppDir,
        port: Option<u16>,
        wants_tcp: bool,
    ) -> Result<Bound, Error> {
        // The kept ports are read only to bind: this runs on the supervisor thread, twice
        // a deploy, and the routers are bound already nearly every time.
        if self.web.is_none() {
            let kept = app.load_config()?.router_port;
            let (listener, p) = bind_port(kept.or(port).or(settings.port))?;
            self.web = Some(start(settings, listener, Protocol::Http)?);
            if kept != Some(p) {
                app.update_config(|c| c.router_port = Some(p))?;
            }
        }
        if wants_tcp && self.tcp.is_none() {
            let kept = app.load_config()?.tcp_port;
            // The web router's port is skipped by itself: its listener holds it.
            let os_port = (settings.port == Some(0)).then_some(0);
            let (listener, p) = bind_port(kept.or(os_port))?;
            self.tcp = Some(start(settings, listener, Protocol::Tcp)?);
            if kept != Some(p) {
                app.update_config(|c| c.tcp_port = Some(p))?;
            }
        }
        Ok(Bound {
            url: self.url().unwrap_or_default(),
            tcp_url: self.tcp.as_ref().map(|r| format!("tcp://{}", r.local_addr())),
            lanes: Lanes {
                web: self.web.as_ref().map(Router::switcher),
                tcp: self.tcp.as_ref().map(Router::switcher),
            },
        })
    }

    /// The web router's URL, once bound.
    pub fn url(&self) -> Option<String> {
        self.web.as_ref().map(|r| format!("http://{}", r.local_addr()))
    }

    /// Point the routers at the ready web (and tcp) containers.
    pub fn reroute(&self, slots: &[Slot]) {
        let ready = || slots.iter().filter_map(Slot::container);
        if let Some(r) = &self.web {
            r.switch(addresses(ready(), "web"));
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
/// 5000 up.
fn bind_port(wanted: Option<u16>) -> Result<(TcpListener, u16), Error> {
    if wanted == Some(0) {
        let io = |source| Error::io("listen on", "127.0.0.1:0", source);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?;
        let port = listener.local_addr().map_err(io)?.port();
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
