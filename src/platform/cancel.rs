//! What calls a deployment off (Ctrl-C, `down`, `destroy`), as one value the job hands
//! the deployment: a thread waits for the first of the client hanging up, the platform
//! stopping or the app being destroyed, and then closes [`Cancel`]'s signal. It owns that
//! watch and the last line it makes a deployment say; it does not run or stop anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver};

use super::caller::Caller;
use crate::deployment::Status;

/// What calls a deployment off: the client hanging up, the platform stopping, or
/// `destroy` of the app (`destroyed`, then set), which the deployment's last line names.
pub(super) struct Cancel {
    pub(super) signal: Receiver<()>,
    destroyed: Arc<AtomicBool>,
}

impl Cancel {
    /// Calls the deployment off when the client closes its side (Ctrl-C), the platform
    /// stops (`down`, Ctrl-C under `up`), or `called_off` disconnects (`destroy` of the
    /// app, which the last line then names).
    pub(super) fn watch(
        caller: Option<&Caller>,
        stopping: &Receiver<()>,
        called_off: Receiver<()>,
    ) -> Cancel {
        let (cancel_tx, signal) = bounded::<()>(0);
        let hangup = caller.map(|c| c.hangup().clone());
        let stop = stopping.clone();
        let destroyed = Arc::new(AtomicBool::new(false));
        let flag = destroyed.clone();
        std::thread::spawn(move || {
            let hangup = hangup.unwrap_or_else(crossbeam_channel::never);
            crossbeam_channel::select! {
                recv(hangup) -> _ => {},
                recv(stop) -> _ => {},
                recv(called_off) -> _ => flag.store(true, Ordering::SeqCst),
            }
            drop(cancel_tx);
        });
        Cancel { signal, destroyed }
    }

    /// The deployment's last line when it ends with `status`; `otherwise` unless it was
    /// called off by `destroy`.
    pub(super) fn closing(&self, app: &str, status: Status, otherwise: String) -> String {
        if status == Status::Aborted && self.destroyed.load(Ordering::SeqCst) {
            format!("<-- Deployment aborted: {app} is being destroyed -->")
        } else {
            otherwise
        }
    }
}
