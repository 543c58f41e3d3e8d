//! A raw byte tunnel between a client and an upstream, with half-close.
//!
//! Used for the `tcp` process type (the upstream is chosen at accept) and for an HTTP
//! connection after `101 Switching Protocols` (websockets). Bytes are copied through the
//! worker's scratch buffer; only what the receiver cannot take yet is kept per connection.
//! A direction ends with `shutdown(Write)` on the other side once its bytes are delivered,
//! so protocols that half-close (a client sending EOF and still reading) keep working.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use super::buf::Buf;
use super::conn::{Ctx, Readiness, Verdict};
use super::dial::{dial, Attempts, Dial};
use super::upstream::Upstream;
use super::RouterConfig;

pub(crate) struct Tunnel {
    client: TcpStream,
    up: Upstream,
    to_up: Buf,
    to_client: Buf,
    client_ready: Readiness,
    up_ready: Readiness,
    client_eof: bool,
    up_eof: bool,
    client_shut: bool,
    up_shut: bool,
    attempts: Attempts,
}

impl Tunnel {
    /// A tunnel for a freshly accepted `tcp` connection; `None` (the connection is closed)
    /// when no release is deployed or no upstream accepts.
    pub(crate) fn dial(client: TcpStream, ctx: &mut Ctx) -> Option<Tunnel> {
        let mut attempts = Attempts::default();
        match dial(ctx, &mut attempts) {
            Dial::Open(up) => Some(Tunnel {
                attempts,
                ..Tunnel::upgraded(
                    client,
                    up,
                    Buf::default(),
                    Buf::default(),
                    Readiness::default(),
                    Readiness::default(),
                )
            }),
            Dial::NotDeployed | Dial::NoUpstreams | Dial::Refused { .. } => None,
        }
    }

    /// The tunnel an upgraded HTTP connection becomes, with the bytes each side already sent.
    pub(crate) fn upgraded(
        client: TcpStream,
        up: Upstream,
        to_up: Buf,
        to_client: Buf,
        client_ready: Readiness,
        up_ready: Readiness,
    ) -> Tunnel {
        Tunnel {
            client,
            up,
            to_up,
            to_client,
            client_ready,
            up_ready,
            client_eof: false,
            up_eof: false,
            client_shut: false,
            up_shut: false,
            attempts: Attempts::default(),
        }
    }

    pub(crate) fn deadline(&self, config: &RouterConfig) -> Option<Instant> {
        // Once connected a tunnel has no timeout: a websocket or a database session may stay
        // silent for hours, as on the platform.
        (!self.up.is_connected()).then(|| self.up.started + config.connect_timeout)
    }

    pub(crate) fn on_deadline(&mut self, ctx: &mut Ctx) -> Verdict {
        // Connect timeout: try the next upstream as for a refusal.
        self.redial(ctx)
    }

    fn redial(&mut self, ctx: &mut Ctx) -> Verdict {
        match dial(ctx, &mut self.attempts) {
            Dial::Open(up) => {
                self.up = up;
                self.up_ready = Readiness::default();
                self.drive(ctx)
            }
            Dial::NotDeployed | Dial::NoUpstreams | Dial::Refused { .. } => Verdict::Close,
        }
    }

    pub(crate) fn drive(&mut self, ctx: &mut Ctx) -> Verdict {
        self.client_ready.update(ctx.client_event);
        self.up_ready.update(ctx.upstream_event);
        if !self.up.is_connected() {
            match self.up.poll_connect() {
                Ok(true) => {}
                Ok(false) => return Verdict::Keep,
                Err(_) => return self.redial(ctx),
            }
        }
        loop {
            let forward = pump(
                &mut self.client,
                &mut self.client_ready,
                &mut self.client_eof,
                &mut self.up.stream,
                &mut self.up_shut,
                &mut self.to_up,
                ctx.scratch,
            );
            let backward = pump(
                &mut self.up.stream,
                &mut self.up_ready,
                &mut self.up_eof,
                &mut self.client,
                &mut self.client_shut,
                &mut self.to_client,
                ctx.scratch,
            );
            let (Ok(forward), Ok(backward)) = (forward, backward) else {
                return Verdict::Close;
            };
            if self.up_shut && self.client_shut {
                return Verdict::Close;
            }
            if !forward && !backward {
                return Verdict::Keep;
            }
        }
    }
}

/// Moves bytes from `src` to `dst` once; returns whether anything happened.
fn pump(
    src: &mut TcpStream,
    src_ready: &mut Readiness,
    src_eof: &mut bool,
    dst: &mut TcpStream,
    dst_shut: &mut bool,
    pending: &mut Buf,
    scratch: &mut [u8],
) -> io::Result<bool> {
    let mut progress = false;
    if !pending.is_empty() {
        progress |= pending.write_to(dst)? > 0;
    }
    if pending.is_empty() && !*src_eof && src_ready.readable {
        match read_some(src, src_ready, scratch)? {
            None => {}
            Some(0) => {
                *src_eof = true;
                progress = true;
            }
            Some(n) => {
                let written = write_some(dst, &scratch[..n])?;
                pending.extend(&scratch[written..n]);
                progress = true;
            }
        }
    }
    if *src_eof && pending.is_empty() && !*dst_shut {
        // ENOTCONN here only means the peer is already fully gone.
        let _ = dst.shutdown(Shutdown::Write);
        *dst_shut = true;
        progress = true;
    }
    Ok(progress)
}

/// One read into `scratch`: `Some(0)` is end of stream, `None` means nothing to read now
/// (and clears `ready` until the next edge).
pub(crate) fn read_some(
    src: &mut TcpStream,
    ready: &mut Readiness,
    scratch: &mut [u8],
) -> io::Result<Option<usize>> {
    loop {
        match src.read(scratch) {
            Ok(0) => return Ok(Some(0)),
            Ok(n) => {
                // A short read drained the socket: the next arrival raises an edge, so no
                // read is needed before it (what nginx does with EPOLLRDHUP). A FIN that
                // came with the data raised its edge already, hence `eof_pending`.
                if n < scratch.len() && !ready.eof_pending {
                    ready.readable = false;
                }
                return Ok(Some(n));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready.readable = false;
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes what the socket takes now; `Ok(n)` may be short, never `WouldBlock`.
pub(crate) fn write_some(dst: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match dst.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
