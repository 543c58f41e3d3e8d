//! Ctrl-C, SIGTERM and SIGHUP (a closed terminal) as a channel: the first one closes a "cancel" channel that every
//! wait in shipway selects on, so whatever runs is stopped in order (process groups
//! killed, state left readable). A second one exits at once.
//!
//! It only turns signals into channel events; what stops is the receivers' business.

use crossbeam_channel::{bounded, Receiver};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A receiver that becomes ready (disconnected) at the first SIGINT, SIGTERM or SIGHUP.
pub fn cancel_on_interrupt() -> Receiver<()> {
    let (tx, rx) = bounded::<()>(0);
    match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for _ in signals.forever() {
                    if tx.take().is_none() {
                        // Second signal: the user wants out now.
                        std::process::exit(130);
                    }
                }
            });
        }
        Err(_) => tx_keep(tx),
    }
    rx
}

/// Without signal handling the channel must never fire: keep its sender alive.
fn tx_keep(tx: crossbeam_channel::Sender<()>) {
    std::mem::forget(tx);
}
