//! What every thread of the platform reads and nobody changes: the settings, the home
//! folder, whether it runs in a terminal, and the signal that it is stopping.

use std::io::Write;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::applog::AppLog;
use super::events::Event;
use crate::clock::Clock;
use crate::process::LineSink;
use crate::settings::Settings;
use crate::state::Home;

pub struct Context {
    pub settings: Settings,
    pub home: Home,
    /// Under `shipway up`: containers' output is echoed to the terminal too.
    pub foreground: bool,
    /// Disconnects when the platform stops: every wait selects on it.
    pub stopping: Receiver<()>,
    /// What each app's web router measures, read off the supervisor thread.
    pub telemetry: super::telemetry::Telemetries,
    /// What the platform waits on: crash back-off, cron, boot timeouts, grace periods.
    pub clock: Arc<dyn Clock>,
}

impl Context {
    /// A line for the platform's own log (its stdout: the terminal or platform.log).
    pub fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// A platform event: in the app's record (`shipway timeline`) and its log, beside
    /// its containers' output, as the platform's logs show them (`[platform] web-1
    /// started (release v3)`); under `up`, on the terminal too.
    pub fn event(&self, log: &AppLog, app: &str, event: Event) {
        let text = log.event(event);
        if self.foreground {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{app} [platform] {text}");
        }
    }

    /// The sink of a container's output: the app's log, and the terminal under `up`.
    pub fn container_log(&self, log: &AppLog, app: &str, name: &str) -> LineSink {
        let log = log.clone();
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
}

#[cfg(test)]
impl Context {
    /// A context over `settings.home` (opened, `apps/` made), for unit tests; dropping the
    /// sender returned disconnects `stopping`.
    pub fn for_tests(settings: Settings) -> (Context, crossbeam_channel::Sender<()>) {
        let (stop, stopping) = crossbeam_channel::bounded(0);
        let ctx = Context {
            home: Home::open(&settings.home).expect("a home for the test"),
            settings,
            foreground: false,
            stopping,
            telemetry: Default::default(),
            clock: crate::clock::system(),
        };
        (ctx, stop)
    }
}
