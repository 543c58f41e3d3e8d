//! The CLI at the other end of a request that streams output (deploy, scale, restart,
//! rollback, destroy): where the request's lines and its last event go, and whether the
//! client hung up (Ctrl-C closes its side, which aborts a deployment).

use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;

use crossbeam_channel::{bounded, Receiver};

use super::protocol::{self, Event};
use crate::deployment::Status;
use crate::error::Error;
use crate::ui::{Destination, Output, Progress};

pub struct Caller {
    stream: UnixStream,
    out: Output,
    hangup: Receiver<()>,
}

impl Caller {
    /// The client on `stream`, whose request line `reader` has already read.
    pub fn new(stream: UnixStream, mut reader: BufReader<UnixStream>) -> std::io::Result<Caller> {
        let out = Output::new();
        out.attach_destination(Box::new(EventWriter(stream.try_clone()?)));
        let (eof_tx, hangup) = bounded::<()>(0);
        std::thread::spawn(move || {
            // The client sends nothing more: anything read, or the end, means it is gone.
            let mut buf = [0u8; 64];
            let _ = reader.read(&mut buf);
            drop(eof_tx);
        });
        Ok(Caller { stream, out, hangup })
    }

    /// Lines for the client (a deployment also attaches its log file).
    pub fn output(&self) -> &Output {
        &self.out
    }

    /// Disconnects when the client closes its side.
    pub fn hangup(&self) -> &Receiver<()> {
        &self.hangup
    }

    /// The last event of a request: its exit code, or the error.
    pub fn finish(mut self, result: Result<Status, Error>) {
        let done = match result {
            Ok(status) => Event::Done {
                code: status.exit_code(),
            },
            Err(e) => {
                let _ = protocol::write(
                    &mut self.stream,
                    &Event::Error {
                        message: e.to_string(),
                    },
                );
                Event::Done { code: e.exit_code() }
            }
        };
        let _ = protocol::write(&mut self.stream, &done);
    }
}

impl Caller {
    /// The last event of a request that ends with a program's own exit status
    /// (`cron-run`).
    pub fn finish_code(mut self, code: i32) {
        let _ = protocol::write(&mut self.stream, &Event::Done { code });
    }
}

/// Output to the client, one JSON event per line.
struct EventWriter(UnixStream);

impl Destination for EventWriter {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        protocol::write(
            &mut self.0,
            &Event::Line {
                text: line.to_string(),
            },
        )
    }

    fn progress(&mut self, progress: &Progress) -> std::io::Result<()> {
        protocol::write(
            &mut self.0,
            &Event::Progress {
                progress: progress.clone(),
            },
        )
    }
}
