//! The vocabulary between the platform's threads: the [`Message`]s the supervisor
//! receives, the [`Handle`] that sends them, and the [`Job`]s it runs one at a time per
//! app. The server, the jobs, cron and the watchers all speak it; it lives apart from
//! all of them so none imports another to name what it sends. No behaviour here.

use std::collections::BTreeMap;

use crossbeam_channel::{bounded, Sender};

use super::caller::Caller;
use super::life::RestartError;
use super::opened::Opened;
pub use super::protocol::DeployArgs;
use super::protocol::{AddonRow, Amount, AppStats, ContainerRow, Event};
use super::routing::{Bound, Ports};
use crate::addon::Server;
use crate::container::{Container, ContainerSpec};
use crate::error::Error;
use crate::process::Exit;

/// Which containers a replacement takes out of service.
pub type Leaving = Box<dyn Fn(&ContainerSpec) -> bool + Send>;

/// What the supervisor is told or asked, by the server, by jobs, and by the threads
/// that watch, restart and stop containers.
pub enum Message {
    /// `shipway status`: the platform and its apps.
    Status { reply: Sender<Event> },
    /// `shipway ps`.
    Ps {
        app: String,
        reply: Sender<Result<Vec<ContainerRow>, Error>>,
    },
    /// `one-off-stop`: the one-off of this name leaves the app and is stopped; `Ok` once
    /// it is on its way out.
    OneOffStop {
        app: String,
        name: String,
        reply: Sender<Result<(), Error>>,
    },
    /// `send-signal`: the app's running containers `names` select (a container's name, or
    /// a type for all of its containers), for the caller to signal.
    Targets {
        app: String,
        names: Vec<String>,
        reply: Sender<Targets>,
    },
    /// `shipway stats`: the containers' figures, read on a worker. Without `cpu`, memory
    /// only, read once at once (the dashboard's memory chart), with no CPU window waited.
    Stats {
        app: String,
        cpu: bool,
        reply: Sender<Result<AppStats, Error>>,
    },
    /// A job for an app, queued behind the app's running one; `caller` gets its output.
    /// `opened`: the app, for the supervisor to keep if it does not know it yet.
    Job {
        app: String,
        job: Job,
        caller: Option<Caller>,
        opened: Opened,
    },
    /// `down`, Ctrl-C: stop every app and end.
    Stop,

    /// A job binds the app's routers (once) and learns their URLs.
    Routers {
        app: String,
        port: Option<u16>,
        wants_tcp: bool,
        /// The ports app.toml keeps, read by the job.
        kept: Ports,
        /// Whether app.toml has router logs on, read by the job.
        router_logs: bool,
        reply: Sender<Result<Bound, Error>>,
    },
    /// A job asks which containers the app has (running, restarting, crashed).
    Present {
        app: String,
        reply: Sender<Vec<ContainerSpec>>,
    },
    /// The switch (PLATFORM.md §4 step 4): `containers` of `release` replace every
    /// container of the app; the reply is how many old ones are being stopped.
    Switch {
        app: String,
        release: u32,
        containers: Vec<Container>,
        reply: Sender<usize>,
    },
    /// `fresh` containers replace those `leaving` selects; the reply names those stopped.
    Replace {
        app: String,
        fresh: Vec<Container>,
        leaving: Leaving,
        reply: Sender<Vec<String>>,
    },
    /// `run --detached`: a one-off container joins the app until it exits.
    OneOff {
        app: String,
        container: Container,
        reply: Sender<()>,
    },
    /// `destroy`: the app leaves service; its containers are handed over to be stopped.
    Dismantle {
        app: String,
        reply: Sender<Vec<Container>>,
    },
    /// The app's running job has ended.
    JobDone { app: String },
    /// The client of a job queued for the app hung up.
    HungUp { app: String },
    /// The jobs of the app called off (token: which call-off) are recorded and answered:
    /// its next job may start.
    Recorded { app: String, token: u64 },

    /// A ready container's leader exited.
    Exited { app: String, id: u64 },
    /// A crashed container's group is cleaned up.
    Reaped {
        app: String,
        token: u64,
        exit: Exit,
        /// Its size, when the kernel stopped it for memory.
        out_of_memory: Option<crate::platform_numbers::Size>,
        streak: u32,
    },
    /// A crashed container was started again, or could not be.
    Restarted {
        app: String,
        token: u64,
        result: Result<Container, RestartError>,
    },
    /// Containers being stopped are gone.
    Stopped { app: String, ids: Vec<u64> },

    /// `cron-run`: run a job of the app's current release now.
    CronRun {
        app: String,
        job: String,
        caller: Caller,
        opened: Opened,
    },
    /// The jobs of the release now serving the app, read by a worker.
    CronLoaded {
        app: String,
        release: u32,
        jobs: Vec<crate::cron::Job>,
    },
    /// A worker thread ended (see `Supervisor::spawn`), with what it reports.
    Worked(Option<Box<Message>>),
    /// An addon server is ready: the supervisor owns it from now on.
    AddonUp { app: String, server: Box<Server> },
    /// Hand over the app's addon servers (`id`, or all) to be stopped.
    AddonTake {
        app: String,
        id: Option<String>,
        reply: Sender<Vec<Server>>,
    },
    /// `shipway addons`: the app's addons and whether their servers run.
    Addons {
        app: String,
        reply: Sender<Result<Vec<AddonRow>, Error>>,
    },
    /// An addon server exited (`pid`: which run of it).
    AddonExited { app: String, id: String, pid: u32 },
    /// A crashed addon server was started again, or could not be (a worker reports).
    AddonRestarted {
        app: String,
        id: String,
        result: Option<Server>,
    },
}

/// The running containers a `send-signal` selects, by name with their shim's pid, and
/// the names that select none.
#[derive(Debug, Default)]
pub struct Targets {
    pub found: Vec<(String, u32)>,
    pub unmatched: Vec<String>,
}

/// How jobs and the server reach the supervisor.
#[derive(Clone)]
pub struct Handle(pub(super) Sender<Message>);

impl Handle {
    /// Tell the supervisor something; false if it has ended.
    pub fn send(&self, message: Message) -> bool {
        self.0.send(message).is_ok()
    }

    /// Ask the supervisor and wait for its answer.
    pub fn call<T>(&self, ask: impl FnOnce(Sender<T>) -> Message) -> Result<T, Error> {
        let (tx, rx) = bounded(1);
        let gone = || Error::Platform {
            message: "the platform is stopping: its supervisor no longer answers".into(),
        };
        self.0.send(ask(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())
    }
}

/// A job on one app.
pub enum Job {
    Deploy(DeployArgs),
    /// `web:2 worker:+1`: the new amounts of these types.
    /// The new amounts, and the sizes given, by type.
    Scale(BTreeMap<String, Amount>, BTreeMap<String, String>),
    /// All containers, a type (`web`) or one container (`web-1`).
    Restart(Option<String>),
    /// The release of this deployment (default: the previous successful one).
    Rollback(Option<String>),
    Destroy,
    /// `rename --new-name NEW`: the app leaves service, moves to its new name, and its
    /// addons and release start again under it.
    Rename(String),
    /// Start the current release again (the platform starting, like Dokku's ps:restore).
    Restore(u32),
    /// `addons-add ADDON [PLAN]`.
    AddonsAdd {
        addon: String,
        plan: Option<String>,
    },
    /// `addons-remove ID`.
    AddonsRemove(String),
    /// Start the app's addon servers again (the platform starting), before its release.
    RestoreAddons,
    /// `run --detached`: start a one-off container and hand it to the supervisor.
    RunDetached {
        command: String,
        env: BTreeMap<String, String>,
        size: Option<String>,
    },
}
