//! The dashboard (`shipway dashboard`): a read-only web page of the platform's apps,
//! served by the platform itself on 127.0.0.1, from the first time it is asked for.
//! One thread accepts; each connection gets a thread of its own that answers one request
//! and closes, so a slow browser never holds the supervisor or another page.
//!
//! It owns the HTTP side and the page (HTML, CSS and JavaScript embedded in the binary);
//! it must not change anything (GET and HEAD only) nor show a config var's value.

mod http;
mod samples;
mod views;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use self::http::{Answer, Head};
use self::samples::Samples;
use self::views::Secrets;
use super::context::Context;
use super::message::Handle;
use crate::error::Error;

const INDEX: &str = include_str!("page/index.html");
const STYLE: &str = include_str!("page/dashboard.css");
const SCRIPT: &str = include_str!("page/dashboard.js");

/// The most connections answered at once; past it, a connection gets a 503 at once. A
/// page polls with a few requests at a time: this is for a client that opens hundreds.
const MOST_CONNECTIONS: usize = 32;

/// The dashboard of a platform: started by the first `Request::Dashboard`, then served
/// until the platform ends.
#[derive(Default)]
pub struct Dashboard {
    address: Mutex<Option<SocketAddr>>,
    samples: Arc<Samples>,
}

impl Dashboard {
    /// Its URL, binding and serving it first if it is not yet.
    pub fn url(&self, ctx: &Arc<Context>, supervisor: &Handle) -> Result<String, Error> {
        let mut address = self.address.lock().map_err(|_| Error::Platform {
            message: "the dashboard's thread failed: restart the platform (`shipway down`)".into(),
        })?;
        let addr = match *address {
            Some(a) => a,
            None => {
                let a = serve(ctx.clone(), supervisor.clone(), self.samples.clone())?;
                self.samples.start(ctx.clone(), supervisor.clone());
                *address = Some(a);
                a
            }
        };
        Ok(format!("http://{addr}/"))
    }
}

/// Bind 127.0.0.1 (the port of the `dashboard_port` setting, else one from the OS) and
/// answer on a thread of its own.
fn serve(ctx: Arc<Context>, supervisor: Handle, samples: Arc<Samples>) -> Result<SocketAddr, Error> {
    let port = ctx.settings.dashboard_port.unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| Error::Platform {
        message: format!(
            "cannot serve the dashboard on 127.0.0.1:{port}: {e}. Set SHIPWAY_DASHBOARD_PORT to a free port, or leave it unset for one the system gives (then `shipway down` and try again)"
        ),
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Platform {
        message: format!("cannot read the dashboard's address: {source}"),
    })?;
    ctx.say(&format!("dashboard on http://{addr}/"));
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (ctx, supervisor, busy, samples) =
                (ctx.clone(), supervisor.clone(), busy.clone(), samples.clone());
            if busy.fetch_add(1, Ordering::SeqCst) >= MOST_CONNECTIONS {
                busy.fetch_sub(1, Ordering::SeqCst);
                let _ = stream.set_write_timeout(Some(http::CLIENT_TIMEOUT));
                let _ = Answer::error(503, "the dashboard is busy: try again").write(&mut &stream, true);
                continue;
            }
            std::thread::spawn(move || {
                answer(&ctx, &supervisor, &samples, addr, stream);
                busy.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Ok(addr)
}

/// Read one request, answer it, close.
fn answer(ctx: &Context, supervisor: &Handle, samples: &Samples, addr: SocketAddr, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(http::CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(http::CLIENT_TIMEOUT));
    let head = match http::read_head(&mut stream) {
        Ok(head) => head,
        Err(http::HeadError::Closed) => return,
        Err(e) => {
            let _ = Answer::error(400, &e.to_string()).write(&mut stream, true);
            return;
        }
    };
    let with_body = head.method != "HEAD";
    let _ = route(ctx, supervisor, samples, addr, &head).write(&mut stream, with_body);
}

/// The answer to `head`.
fn route(ctx: &Context, supervisor: &Handle, samples: &Samples, addr: SocketAddr, head: &Head) -> Answer {
    if head.method != "GET" && head.method != "HEAD" {
        return Answer::method_not_allowed();
    }
    // A web page elsewhere could reach this port through a name of its own that resolves
    // to 127.0.0.1 (DNS rebinding): a browser then sends that name as Host.
    if let Some(host) = &head.host {
        let port = addr.port();
        if host != &format!("127.0.0.1:{port}") && host != &format!("localhost:{port}") {
            return Answer::error(
                403,
                &format!("the dashboard answers at http://127.0.0.1:{port}/ only"),
            );
        }
    }
    let segments: Vec<&str> = head.path.trim_start_matches('/').split('/').collect();
    // Names, states and figures carry no config var's value: no need to read every app's
    // config to hide secrets in them, on the answers the page asks for every few seconds.
    // Logs, build output, the timeline and an app's page carry text apps and people wrote.
    let figures_only = matches!(
        segments.as_slice(),
        ["api", "apps"] | ["api", "apps", _, "metrics" | "stats"]
    );
    let home = &ctx.home;
    let result = match segments.as_slice() {
        [""] | ["apps", _] => return Answer::new(200, "text/html; charset=utf-8", INDEX),
        ["dashboard.css"] => return Answer::new(200, "text/css; charset=utf-8", STYLE),
        ["dashboard.js"] => return Answer::new(200, "text/javascript; charset=utf-8", SCRIPT),
        ["api", "apps"] => views::apps(home, supervisor).map(|v| Some(json(&v))),
        ["api", "apps", app] => views::app(home, supervisor, app).map(|v| Some(json(&v))),
        ["api", "apps", app, "logs"] => views::logs(home, app, offset(head)).map(|v| Some(json(&v))),
        ["api", "apps", app, "timeline"] => views::timeline(home, app).map(|v| Some(json(&v))),
        ["api", "apps", app, "metrics"] => views::metrics(ctx, app, hours(head)).map(|v| Some(json(&v))),
        ["api", "apps", app, "stats"] => {
            views::stats(home, supervisor, samples, app, hours(head)).map(|v| Some(json(&v)))
        }
        ["api", "apps", app, "deployments", id, "output"] => {
            views::output(home, app, id, offset(head).unwrap_or(0)).map(|v| v.map(|v| json(&v)))
        }
        _ => Ok(None),
    };
    match result {
        Ok(Some(body)) if figures_only => Answer::new(200, "application/json", body),
        Ok(Some(body)) => Answer::new(200, "application/json", Secrets::of(home).hide(body)),
        Ok(None) => Answer::error(404, &format!("nothing at {}", head.path)),
        Err(Error::State(
            e @ (crate::state::StateError::UnknownApp(_) | crate::state::StateError::AppName(_)),
        )) => Answer::error(404, &e.to_string()),
        Err(e) => Answer::error(500, &e.to_string()),
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot encode the answer: {e}") }).to_string()
    })
}

/// `?hours=N`: the charts' window, 1 to 72 hours (default 1).
fn hours(head: &Head) -> u64 {
    let hours = head.param("hours").and_then(|h| h.parse().ok()).unwrap_or(1);
    u64::clamp(hours, 1, 72)
}

/// `?from=N`: where the page's last read of a log ended.
fn offset(head: &Head) -> Option<u64> {
    head.param("from").and_then(|f| f.parse().ok())
}
