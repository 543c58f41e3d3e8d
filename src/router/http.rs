//! One client connection of the HTTP router: requests in, responses out, in order.
//!
//! The router is request-aware, as the platform's is: a client's keep-alive connection is to
//! the router, and each request picks its upstream connection anew when a switch happened
//! since the last one. So a release switch never drops or resets a client connection; only
//! the upstream connection underneath changes. Requests are handled one at a time (a
//! pipelined request waits in `cin` until the previous response is complete), which keeps
//! responses in order without any queue.
//!
//! This module must not block: every socket is nonblocking and every step returns `Wait`
//! when it needs an event from the worker's epoll.

use std::net::{IpAddr, TcpStream};
use std::time::Instant;

use super::body::{Body, BodyError};
use super::buf::Buf;
use super::conn::{Ctx, Readiness, Relayed, Verdict};
use super::dial::{dial, Attempts, Dial};
use super::head::{self, HeadError, Request};
use super::tunnel::{read_some, Tunnel};
use super::upstream::Upstream;
use super::RouterConfig;

/// Bytes queued towards one side before the router stops reading from the other: enough
/// for large bodies to stream at full speed, small enough to bound memory per connection.
const HIGH_WATER: usize = 64 * 1024;
/// An idempotent request whose body exceeds this is not kept for a resend.
const MAX_REPLAY: usize = 64 * 1024;

const NOT_DEPLOYED: &str = "no release of this app is deployed yet; run shipway deploy";
const NO_CONTAINERS: &str = "no web container of this app is running; \
     run shipway ps to see why, and shipway scale web=1 to start one";
const CLOSED: &str = "the app closed the connection without answering; \
     run shipway logs to see whether it crashed";
const BAD_RESPONSE: &str = "the app sent a response that is not valid HTTP/1.1; \
     run shipway logs and check what the web process writes on its socket";

pub(crate) struct HttpConn {
    client: TcpStream,
    /// Rendered once: every request of the connection carries it in three headers.
    client_ip: Box<str>,
    client_ready: Readiness,
    /// Bytes from the client not yet forwarded (a partial head, body, pipelined requests).
    cin: Buf,
    cout: Buf,
    up: Option<Upstream>,
    up_ready: Readiness,
    uin: Buf,
    uout: Buf,
    ex: Option<Exchange>,
    /// Flush `cout`, then close: the client asked for it, or the response was close-delimited.
    closing: bool,
    last_activity: Instant,
}

/// One request and its response.
struct Exchange {
    req: Request,
    /// The body bytes forwarded so far, kept while a resend is allowed.
    replay: Option<Vec<u8>>,
    stage: Stage,
    resp: Resp,
    attempts: Attempts,
    head_queued: bool,
    /// Some request byte reached an upstream socket.
    wrote: bool,
    retried: bool,
    sent_at: Option<Instant>,
    response_began: bool,
    upstream_reusable: bool,
    client_keep_alive: bool,
    /// What the metrics and router logs record of it once it ends.
    relayed: Relayed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connecting,
    Proxying,
    /// The router answered itself (404, 502, 503, 504); the rest of the body is skipped.
    Answered,
}

enum Resp {
    Head,
    Body(Body),
    Done,
}

enum Step {
    Progress,
    Wait,
    Close,
    Upgrade,
}

impl HttpConn {
    pub(crate) fn new(client: TcpStream, client_ip: IpAddr, now: Instant) -> HttpConn {
        HttpConn {
            client,
            client_ip: client_ip.to_string().into_boxed_str(),
            client_ready: Readiness::default(),
            cin: Buf::default(),
            cout: Buf::default(),
            up: None,
            up_ready: Readiness::default(),
            uin: Buf::default(),
            uout: Buf::default(),
            ex: None,
            closing: false,
            last_activity: now,
        }
    }

    pub(crate) fn drive(&mut self, ctx: &mut Ctx) -> Verdict {
        self.client_ready.update(ctx.client_event);
        self.up_ready.update(ctx.upstream_event);
        if self.client_ready.hup {
            // The client is gone (reset or fully closed): nobody is left to answer.
            return Verdict::Close;
        }
        loop {
            if !self.closing {
                match self.step_any(ctx) {
                    Step::Progress => continue,
                    Step::Wait => {}
                    Step::Close => return Verdict::Close,
                    Step::Upgrade => {
                        self.record_upgrade(ctx);
                        return Verdict::Upgrade;
                    }
                }
            }
            // Flushing only once nothing else can be done sends a response head and its
            // body in one segment, not two: half the packets, half the client wake-ups.
            let mut flushed = false;
            if !self.cout.is_empty() {
                match self.cout.write_to(&mut self.client) {
                    Ok(n) => flushed = n > 0,
                    Err(_) => return Verdict::Close,
                }
                if flushed {
                    self.last_activity = ctx.now;
                }
            }
            if self.closing && self.cout.is_empty() {
                // Dropping the socket sends the FIN; a shutdown first would only cost a
                // system call.
                return Verdict::Close;
            }
            if !flushed {
                return Verdict::Keep;
            }
        }
    }

    fn step_any(&mut self, ctx: &mut Ctx) -> Step {
        if self.ex.is_some() {
            self.step(ctx)
        } else {
            self.next_request(ctx)
        }
    }

    /// When the worker must call `on_deadline` unless something happens first.
    pub(crate) fn deadline(&self, config: &RouterConfig) -> Option<Instant> {
        let idle = self.last_activity + config.idle_timeout;
        let Some(ex) = &self.ex else {
            return Some(idle);
        };
        if self.closing {
            return Some(idle);
        }
        match ex.stage {
            Stage::Connecting => self.up.as_ref().map(|up| up.started + config.connect_timeout),
            Stage::Answered => Some(idle),
            Stage::Proxying => match (&ex.resp, ex.sent_at) {
                (Resp::Head, Some(sent)) if self.uin.is_empty() => Some(sent + config.first_byte_timeout),
                _ if !ex.req.body.is_done() => Some(idle),
                // A response is streaming: it may legitimately last (server-sent events).
                _ => None,
            },
        }
    }

    pub(crate) fn on_deadline(&mut self, ctx: &mut Ctx) -> Verdict {
        let Some(ex) = &self.ex else {
            // Idle keep-alive connection, or a client that stopped halfway through a head.
            return Verdict::Close;
        };
        if self.closing {
            return Verdict::Close;
        }
        match (ex.stage, &ex.resp) {
            (Stage::Connecting, _) => {
                self.drop_upstream();
                self.dial(ctx);
            }
            (Stage::Proxying, Resp::Head) if ex.req.body.is_done() => {
                let message = format!(
                    "the app did not start answering within {}s; run shipway logs to find \
                     the slow or stuck request",
                    ctx.config.first_byte_timeout.as_secs_f64()
                );
                self.answer(504, &message);
            }
            // A client stalled in the middle of its request body.
            _ => return Verdict::Close,
        }
        self.drive(ctx)
    }

    /// The upstream connection a closing client leaves, if it can serve another client.
    pub(crate) fn into_idle_upstream(self) -> Option<Upstream> {
        if self.ex.is_some() || !self.uin.is_empty() {
            return None;
        }
        self.up.filter(Upstream::is_connected)
    }

    /// The tunnel this connection becomes after `101 Switching Protocols`.
    pub(crate) fn into_tunnel(self) -> Option<Tunnel> {
        let up = self.up?;
        let mut to_up = self.uout;
        to_up.extend(self.cin.as_slice());
        let mut to_client = self.cout;
        to_client.extend(self.uin.as_slice());
        Some(Tunnel::upgraded(
            self.client,
            up,
            to_up,
            to_client,
            self.client_ready,
            self.up_ready,
        ))
    }

    fn next_request(&mut self, ctx: &mut Ctx) -> Step {
        self.check_idle_upstream(ctx);
        if !self.cin.is_empty() {
            match head::parse_request(self.cin.as_slice(), &self.client_ip, ctx.rewriter, ctx.now) {
                Ok(Some((len, req))) => {
                    self.cin.consume(len);
                    self.begin(req, ctx);
                    return Step::Progress;
                }
                Ok(None) => {}
                Err(e) => {
                    let code = match e {
                        HeadError::TooLarge | HeadError::TooManyHeaders(_) => 431,
                        HeadError::TransferEncoding(_) => 501,
                        _ => 400,
                    };
                    let message = format!("the router could not read this request: {e}");
                    self.cout
                        .extend(&head::error_response(code, &message, false, false));
                    self.closing = true;
                    return Step::Progress;
                }
            }
        }
        self.read_client(ctx)
    }

    /// Reads what the client sent into `cin`; its EOF or an error ends the connection.
    fn read_client(&mut self, ctx: &mut Ctx) -> Step {
        if !self.client_ready.readable {
            return Step::Wait;
        }
        match read_some(&mut self.client, &mut self.client_ready, ctx.scratch) {
            Ok(Some(0)) | Err(_) => Step::Close,
            Ok(Some(n)) => {
                self.cin.extend(&ctx.scratch[..n]);
                self.last_activity = ctx.now;
                Step::Progress
            }
            Ok(None) => Step::Wait,
        }
    }

    /// An idle upstream has nothing to say: bytes or EOF both mean it cannot be reused.
    fn check_idle_upstream(&mut self, ctx: &mut Ctx) {
        let Some(up) = &mut self.up else { return };
        if !self.up_ready.readable {
            return;
        }
        if !matches!(
            read_some(&mut up.stream, &mut self.up_ready, ctx.scratch),
            Ok(None)
        ) {
            self.drop_upstream();
        }
    }

    fn drop_upstream(&mut self) {
        self.up = None;
        self.uin.clear();
        self.up_ready = Readiness::default();
    }

    fn begin(&mut self, req: Request, ctx: &mut Ctx) {
        let replay = req.idempotent.then(Vec::new);
        self.ex = Some(Exchange {
            req,
            replay,
            stage: Stage::Connecting,
            resp: Resp::Head,
            attempts: Attempts::default(),
            head_queued: false,
            wrote: false,
            retried: false,
            sent_at: None,
            response_began: false,
            upstream_reusable: false,
            client_keep_alive: false,
            relayed: Relayed {
                status: 0,
                received: ctx.now,
                sent: 0,
                container: None,
            },
        });
        // The per-request check that makes a switch effective on kept-alive clients: one
        // atomic load when nothing changed.
        let current = ctx.routes.generation();
        match &self.up {
            Some(up) if up.generation == current && up.is_connected() => self.start_proxying(),
            _ => {
                self.drop_upstream();
                self.dial(ctx);
            }
        }
    }

    fn start_proxying(&mut self) {
        let Some(ex) = &mut self.ex else { return };
        ex.stage = Stage::Proxying;
        if !ex.head_queued {
            self.uout.extend(&ex.req.bytes);
            ex.head_queued = true;
        }
    }

    fn dial(&mut self, ctx: &mut Ctx) {
        let Some(ex) = &mut self.ex else { return };
        match dial(ctx, &mut ex.attempts) {
            Dial::Open(up) => {
                let connected = up.is_connected();
                ex.stage = Stage::Connecting;
                self.up = Some(up);
                self.up_ready = Readiness::default();
                if connected {
                    self.start_proxying();
                }
            }
            Dial::NotDeployed => self.answer(404, NOT_DEPLOYED),
            Dial::NoUpstreams => self.answer(503, NO_CONTAINERS),
            Dial::Refused { tried } => {
                let message = format!(
                    "no web container of this app accepted the connection (tried {tried}); \
                     run shipway logs: the app may have crashed, or may not listen on $PORT"
                );
                self.answer(502, &message);
            }
        }
    }

    /// The router answers the request itself; the upstream connection, if any, is dropped.
    fn answer(&mut self, code: u16, message: &str) {
        self.drop_upstream();
        let Some(ex) = &mut self.ex else { return };
        // A client waiting for `100 Continue` will never send the body we would have to
        // skip to read its next request, so that connection must end.
        let keep_alive = ex.req.keep_alive && (ex.req.body.is_done() || !ex.req.expect_continue);
        let response = head::error_response(code, message, keep_alive, ex.req.is_head);
        self.cout.extend(&response);
        ex.relayed.status = code;
        ex.relayed.sent += response.len() as u64;
        ex.relayed.container = None;
        ex.stage = Stage::Answered;
        ex.resp = Resp::Done;
        ex.client_keep_alive = keep_alive;
        ex.upstream_reusable = false;
    }

    /// A request body the router cannot delimit gets a 400, as nginx answers "client sent
    /// invalid chunked body", and the connection ends: nothing after it can be read as a
    /// request. The app's connection, which holds part of that body, is dropped.
    fn refuse_body(&mut self, e: &BodyError) {
        self.drop_upstream();
        let Some(ex) = &mut self.ex else { return };
        let message = format!("the router could not read this request's body: {e}");
        let response = head::error_response(400, &message, false, ex.req.is_head);
        self.cout.extend(&response);
        ex.relayed.status = 400;
        ex.relayed.sent += response.len() as u64;
        ex.relayed.container = None;
        ex.stage = Stage::Answered;
        ex.resp = Resp::Done;
        ex.client_keep_alive = false;
        ex.upstream_reusable = false;
    }

    fn finish(&mut self, ctx: &mut Ctx) {
        let Some(ex) = self.ex.take() else { return };
        if ex.relayed.status == 0 {
            ctx.rewriter.recycle(ex.req.bytes);
        } else if let Some(head) = ctx.meter.record(ex.relayed, ex.req.bytes, ctx.now) {
            ctx.rewriter.recycle(head);
        }
        if !ex.upstream_reusable || !self.uin.is_empty() {
            self.drop_upstream();
        }
        self.uout.clear();
        if !ex.client_keep_alive {
            self.closing = true;
        }
    }

    fn step(&mut self, ctx: &mut Ctx) -> Step {
        let Some(ex) = &self.ex else {
            return Step::Wait;
        };
        match ex.stage {
            Stage::Connecting => self.step_connecting(ctx),
            Stage::Proxying => self.step_proxying(ctx),
            Stage::Answered => self.step_answered(ctx),
        }
    }

    fn step_connecting(&mut self, ctx: &mut Ctx) -> Step {
        let Some(up) = &mut self.up else {
            self.dial(ctx);
            return Step::Progress;
        };
        match up.poll_connect() {
            Ok(true) => {
                self.start_proxying();
                Step::Progress
            }
            Ok(false) => Step::Wait,
            // Refused: the old container just stopped. Nothing reached it, so another
            // upstream of the list in force now may take the request.
            Err(_) => {
                self.drop_upstream();
                self.dial(ctx);
                Step::Progress
            }
        }
    }

    /// Skips the rest of the body of a request the router answered itself.
    fn step_answered(&mut self, ctx: &mut Ctx) -> Step {
        let Some(ex) = &mut self.ex else {
            return Step::Wait;
        };
        if ex.req.body.is_done() || !ex.client_keep_alive {
            self.finish(ctx);
            return Step::Progress;
        }
        if !self.cin.is_empty() {
            match ex.req.body.advance(self.cin.as_slice()) {
                Ok(n) => self.cin.consume(n),
                Err(_) => {
                    ex.client_keep_alive = false;
                    self.finish(ctx);
                }
            }
            return Step::Progress;
        }
        self.read_client(ctx)
    }

    fn step_proxying(&mut self, ctx: &mut Ctx) -> Step {
        let (Some(ex), Some(up)) = (&mut self.ex, &mut self.up) else {
            self.dial(ctx);
            return Step::Progress;
        };
        let mut progress = false;

        // Request body, client to upstream.
        if !ex.req.body.is_done() && self.uout.len() < HIGH_WATER {
            if !self.cin.is_empty() {
                let n = match ex.req.body.advance(self.cin.as_slice()) {
                    Ok(n) => n,
                    // A body the router cannot delimit (a chunk size of 20 hex digits):
                    // forwarding more would desynchronise both connections, so the app's
                    // connection goes and the client hears why, unless the app's answer
                    // has begun to reach it.
                    Err(e) if matches!(ex.resp, Resp::Head) => {
                        self.refuse_body(&e);
                        return Step::Progress;
                    }
                    Err(_) => return Step::Close,
                };
                let bytes = &self.cin.as_slice()[..n];
                self.uout.extend(bytes);
                if let Some(replay) = &mut ex.replay {
                    if replay.len() + n > MAX_REPLAY {
                        ex.replay = None;
                    } else {
                        replay.extend_from_slice(bytes);
                    }
                }
                self.cin.consume(n);
                progress = true;
            } else if self.client_ready.readable {
                match read_some(&mut self.client, &mut self.client_ready, ctx.scratch) {
                    // The client gave up halfway through its request.
                    Ok(Some(0)) | Err(_) => return Step::Close,
                    Ok(Some(n)) => {
                        self.cin.extend(&ctx.scratch[..n]);
                        self.last_activity = ctx.now;
                        progress = true;
                    }
                    Ok(None) => {}
                }
            }
        }
        if !self.uout.is_empty() {
            match self.uout.write_to(&mut up.stream) {
                Ok(0) => {}
                Ok(_) => {
                    ex.wrote = true;
                    progress = true;
                }
                Err(_) => return self.upstream_lost(ctx),
            }
        }
        if ex.sent_at.is_none() && ex.req.body.is_done() && self.uout.is_empty() {
            ex.sent_at = Some(ctx.now);
        }

        // Response, upstream to client.
        if self.cout.len() < HIGH_WATER && !matches!(ex.resp, Resp::Done) {
            let mut need_bytes = self.uin.is_empty();
            if !self.uin.is_empty() {
                match &mut ex.resp {
                    Resp::Head => {
                        let before = self.cout.len();
                        match head::parse_response(self.uin.as_slice(), &ex.req, self.cout.for_append()) {
                            Ok(None) => need_bytes = true,
                            Ok(Some((len, res))) => {
                                self.uin.consume(len);
                                progress = true;
                                ex.relayed.sent += (self.cout.len() - before) as u64;
                                ex.relayed.status = res.status;
                                ex.relayed.container = Some(up.addr());
                                if res.switching {
                                    return Step::Upgrade;
                                }
                                if !res.interim {
                                    ex.upstream_reusable = res.upstream_reusable;
                                    ex.client_keep_alive = res.client_keep_alive;
                                    ex.resp = if res.body.is_done() {
                                        Resp::Done
                                    } else {
                                        Resp::Body(res.body)
                                    };
                                }
                            }
                            Err(e) => {
                                let message = format!(
                                    "the app sent a response the router cannot relay ({e}); \
                                     run shipway logs and check what the web process writes on its socket"
                                );
                                self.answer(502, &message);
                                return Step::Progress;
                            }
                        }
                    }
                    Resp::Body(body) => {
                        let Ok(n) = body.advance(self.uin.as_slice()) else {
                            // Chunking broken midway: the client must not mistake a partial
                            // body for a whole one, and closing is the only way to say so.
                            return Step::Close;
                        };
                        self.cout.extend(&self.uin.as_slice()[..n]);
                        self.uin.consume(n);
                        ex.relayed.sent += n as u64;
                        progress = true;
                        if body.is_done() {
                            ex.resp = Resp::Done;
                        }
                    }
                    Resp::Done => {}
                }
            }
            if need_bytes && !matches!(ex.resp, Resp::Done) && self.up_ready.readable {
                match read_some(&mut up.stream, &mut self.up_ready, ctx.scratch) {
                    Ok(Some(0)) | Err(_) => return self.upstream_closed(ctx),
                    Ok(Some(n)) => {
                        self.uin.extend(&ctx.scratch[..n]);
                        ex.response_began = true;
                        progress = true;
                    }
                    Ok(None) => {}
                }
            }
        }

        if matches!(ex.resp, Resp::Done) {
            if !ex.req.body.is_done() {
                // The app answered before reading the whole body (a 413, a redirect): the
                // rest cannot be skipped reliably, so the connection ends, as with nginx.
                ex.client_keep_alive = false;
                ex.upstream_reusable = false;
            }
            self.finish(ctx);
            return Step::Progress;
        }
        if progress {
            Step::Progress
        } else {
            Step::Wait
        }
    }

    /// A `101 Switching Protocols` ends the HTTP exchange: it counts as a response, whose
    /// time is the time to the switch.
    fn record_upgrade(&mut self, ctx: &mut Ctx) {
        let Some(ex) = &self.ex else { return };
        let relayed = Relayed {
            status: 101,
            received: ex.relayed.received,
            sent: ex.relayed.sent,
            container: self.up.as_ref().map(Upstream::addr),
        };
        // The head goes with the connection into the tunnel; a log record gets a copy.
        let head = if ctx.meter.logging() {
            ex.req.bytes.clone()
        } else {
            Vec::new()
        };
        ctx.meter.record(relayed, head, ctx.now);
    }

    /// The upstream sent EOF (or failed) while a response was expected.
    fn upstream_closed(&mut self, ctx: &mut Ctx) -> Step {
        let Some(ex) = &mut self.ex else {
            return Step::Close;
        };
        match &ex.resp {
            Resp::Head if !ex.response_began => self.upstream_lost(ctx),
            Resp::Head => {
                self.answer(502, BAD_RESPONSE);
                Step::Progress
            }
            Resp::Body(Body::UntilClose) => {
                ex.resp = Resp::Done;
                ex.upstream_reusable = false;
                ex.client_keep_alive = false;
                self.finish(ctx);
                Step::Progress
            }
            // Truncated: closing is the only way left to tell the client.
            Resp::Body(_) => Step::Close,
            Resp::Done => {
                self.finish(ctx);
                Step::Progress
            }
        }
    }

    /// The upstream connection failed before any byte of the response arrived.
    fn upstream_lost(&mut self, ctx: &mut Ctx) -> Step {
        // An upstream of a release that has been switched away from since is stopping:
        // losing it says nothing about the request, so it does not use up the resend.
        let switched_away = self
            .up
            .as_ref()
            .is_some_and(|up| up.generation != ctx.routes.generation());
        self.drop_upstream();
        let Some(ex) = &mut self.ex else {
            return Step::Close;
        };
        if !matches!(ex.resp, Resp::Head) || ex.response_began {
            // Part of the response already went to the client: no error can replace it.
            return Step::Close;
        }
        if !ex.wrote {
            // Nothing reached the app (a kept-alive connection it had just closed): `uout`
            // still holds the whole request, any upstream may take it.
            self.dial(ctx);
        } else if ex.req.idempotent && (!ex.retried || switched_away) && ex.replay.is_some() {
            // The app closed a kept-alive connection just as we reused it, or an old
            // container stopped with our request unread: resend, once per release, as
            // nginx's proxy_next_upstream does for idempotent methods.
            ex.retried |= !switched_away;
            ex.wrote = false;
            ex.sent_at = None;
            ex.attempts = Attempts::default();
            self.uout.clear();
            self.uout.extend(&ex.req.bytes);
            if let Some(body) = &ex.replay {
                self.uout.extend(body);
            }
            self.dial(ctx);
        } else {
            self.answer(502, CLOSED);
        }
        Step::Progress
    }
}
