//! A small HTTP/1.1 load generator for `bench/router.sh` on machines without wrk:
//! `loadgen --url 127.0.0.1:PORT [--connections 50] [--threads 2] [--duration 10s] [--close]`.
//!
//! Like wrk it keeps every connection busy (closed loop: a connection sends its next
//! `GET /` as soon as the previous response is complete), spreads the connections over a
//! few threads, each a `poll` loop over nonblocking sockets, and times every request. With
//! `--close` each request carries `Connection: close` and goes on a new connection; its
//! latency then counts from the start of the connect (wrk's starts at the first byte
//! written), so that the proxy's accept is part of what is measured.
//!
//! It prints one line the script parses, `key=value` pairs:
//! `loadgen requests=N seconds=S rps=R p50_ms=A p99_ms=B errors=E non2xx=X ...`.
//! Errors are refused or failed connects, resets, a connection closed before its response
//! was complete, an unparsable response, and requests without an answer after 2 s (wrk's
//! default timeout); the connection is then replaced. Not a timed cargo benchmark: the
//! numbers are the output.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

/// A request unanswered for this long is an error, as in wrk.
const TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, a connection waits this long before trying again, so that a
/// dead server costs errors, not a spinning core.
const RETRY: Duration = Duration::from_millis(10);
/// Bounds, so that a typing slip cannot start an endless or machine-filling run.
const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_CONNECTIONS: usize = 20_000;
/// Latencies below this many microseconds are counted in one bucket each.
const EXACT_US: usize = 1 << 16;

struct Options {
    addr: SocketAddr,
    host: String,
    path: String,
    connections: usize,
    threads: usize,
    duration: Duration,
    close: bool,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).filter(|a| a != "--bench")) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadgen: {e}");
            eprintln!(
                "usage: loadgen --url HOST:PORT[/PATH] [--connections N] [--threads N] [--duration 10s] [--close]"
            );
            return ExitCode::from(2);
        }
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shipway-loadgen\r\n{}\r\n",
        options.path,
        options.host,
        if options.close {
            "Connection: close\r\n"
        } else {
            ""
        }
    );
    let started = Instant::now();
    let deadline = started + options.duration;
    let threads: Vec<_> = (0..options.threads)
        .map(|t| {
            // Spread the remainder over the first threads, as wrk does.
            let n = options.connections / options.threads
                + usize::from(t < options.connections % options.threads);
            let (addr, close, request) = (options.addr, options.close, request.clone());
            thread::spawn(move || Client::new(addr, n, close, request.into_bytes()).run(deadline))
        })
        .collect();
    let mut total = Stats::default();
    for t in threads {
        match t.join() {
            Ok(stats) => total.merge(stats),
            Err(_) => {
                eprintln!("loadgen: a client thread panicked");
                return ExitCode::FAILURE;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (p50, p99, max) = (
        total.percentile(0.50),
        total.percentile(0.99),
        total.percentile(1.0),
    );
    println!(
        "loadgen requests={} seconds={seconds:.2} rps={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} errors={} non2xx={} connections={} threads={} mode={}",
        total.requests,
        total.requests as f64 / seconds,
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        max as f64 / 1e3,
        total.errors,
        total.non2xx,
        options.connections,
        options.threads,
        if options.close { "close" } else { "keepalive" },
    );
    ExitCode::SUCCESS
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let (mut url, mut connections, mut threads, mut duration, mut close) =
        (None, 50, 2, Duration::from_secs(10), false);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value("--url")?),
            "--connections" | "-c" => connections = number(&value("--connections")?)?,
            "--threads" | "-t" => threads = number(&value("--threads")?)?,
            "--duration" | "-d" => duration = parse_duration(&value("--duration")?)?,
            "--close" => close = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url.strip_prefix("http://").unwrap_or(&url);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("bad address {host}: {e}"))?
        .next()
        .ok_or(format!("{host} resolves to no address"))?;
    if connections == 0 || connections > MAX_CONNECTIONS {
        return Err(format!("--connections must be 1 to {MAX_CONNECTIONS}"));
    }
    if duration.is_zero() || duration > MAX_DURATION {
        return Err(format!(
            "--duration must be above 0 and at most {}s",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(Options {
        addr,
        host: host.to_string(),
        path: path.to_string(),
        connections,
        threads: threads.clamp(1, connections),
        duration,
        close,
    })
}

fn number(text: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

/// `500ms`, `10s`, `2m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("not a duration: {text}");
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let n: u64 = text[..split].parse().map_err(|_| bad())?;
    match &text[split..] {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(bad()),
    }
}

#[derive(Default)]
struct Stats {
    requests: u64,
    errors: u64,
    non2xx: u64,
    /// `exact[us]` counts the requests that took `us` microseconds.
    exact: Vec<u64>,
    /// The rare slower ones, in microseconds.
    slow: Vec<u64>,
}

impl Stats {
    fn record(&mut self, latency: Duration) {
        if self.exact.is_empty() {
            self.exact = vec![0; EXACT_US];
        }
        let us = latency.as_micros() as u64;
        match self.exact.get_mut(us as usize) {
            Some(count) => *count += 1,
            None => self.slow.push(us),
        }
        self.requests += 1;
    }

    fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.non2xx += other.non2xx;
        if self.exact.is_empty() {
            self.exact = other.exact;
        } else {
            for (a, b) in self.exact.iter_mut().zip(other.exact) {
                *a += b;
            }
        }
        self.slow.extend(other.slow);
    }

    /// The latency in microseconds below which `q` of the requests fall.
    fn percentile(&mut self, q: f64) -> u64 {
        if self.requests == 0 {
            return 0;
        }
        let rank = ((self.requests as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (us, count) in self.exact.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return us as u64;
            }
        }
        self.slow.sort_unstable();
        let i = (rank - seen - 1) as usize;
        self.slow.get(i).or(self.slow.last()).copied().unwrap_or(0)
    }
}

enum State {
    /// Waiting before a new connect, after a failed one.
    Idle {
        until: Instant,
    },
    Connecting,
    Writing {
        written: usize,
    },
    Reading,
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    /// When the request being timed began (its connect with `--close`).
    started: Instant,
    response: Vec<u8>,
}

/// One thread's share of the connections.
struct Client {
    addr: SocketAddr,
    close: bool,
    request: Vec<u8>,
    conns: Vec<Conn>,
    stats: Stats,
    scratch: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr, n: usize, close: bool, request: Vec<u8>) -> Client {
        let now = Instant::now();
        let conns = (0..n)
            .map(|_| Conn {
                stream: None,
                state: State::Idle { until: now },
                started: now,
                response: Vec::with_capacity(4096),
            })
            .collect();
        Client {
            addr,
            close,
            request,
            conns,
            stats: Stats::default(),
            scratch: vec![0; 64 * 1024],
        }
    }

    fn run(mut self, deadline: Instant) -> Stats {
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            for i in 0..self.conns.len() {
                match self.conns[i].state {
                    State::Idle { until } if until <= now => self.connect(i),
                    State::Idle { .. } => {}
                    _ if now.duration_since(self.conns[i].started) > TIMEOUT => self.fail(i),
                    _ => {}
                }
            }
            // Poll the connections that have a socket; remember which is which.
            ready.clear();
            {
                let mut fds = Vec::with_capacity(self.conns.len());
                let mut which = Vec::with_capacity(self.conns.len());
                for (i, c) in self.conns.iter().enumerate() {
                    let (Some(stream), events) = (&c.stream, interest(&c.state)) else {
                        continue;
                    };
                    if events.is_empty() {
                        continue;
                    }
                    fds.push(PollFd::new(stream.as_fd(), events));
                    which.push(i);
                }
                // Short waits keep the deadline, timeouts and retries prompt.
                let wait = deadline
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(10));
                let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => panic!("poll: {e}"),
                }
                for (fd, i) in fds.iter().zip(which) {
                    if fd.revents().is_some_and(|r| !r.is_empty()) {
                        ready.push(i);
                    }
                }
            }
            for &i in &ready {
                self.advance(i);
            }
        }
        self.stats
    }

    fn connect(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        conn.started = Instant::now();
        conn.response.clear();
        let family = match self.addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = match socket::socket(family, SockType::Stream, flags, None) {
            Ok(fd) => fd,
            Err(_) => return self.fail(i),
        };
        // Requests leave in one write, but a server that answers in two must not be held
        // back by delayed ACKs on our side.
        let _ = socket::setsockopt(&fd, sockopt::TcpNoDelay, &true);
        let target = SockaddrStorage::from(self.addr);
        let result = socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &target);
        conn.stream = Some(TcpStream::from(fd));
        match result {
            Ok(()) => conn.state = State::Writing { written: 0 },
            Err(Errno::EINPROGRESS) => conn.state = State::Connecting,
            Err(_) => self.fail(i),
        }
    }

    fn advance(&mut self, i: usize) {
        match self.conns[i].state {
            State::Connecting => {
                let Some(stream) = &self.conns[i].stream else {
                    return;
                };
                match socket::getsockopt(stream, sockopt::SocketError) {
                    Ok(0) => {
                        self.conns[i].state = State::Writing { written: 0 };
                        self.write(i);
                    }
                    _ => self.fail(i),
                }
            }
            State::Writing { .. } => self.write(i),
            State::Reading => self.read(i),
            State::Idle { .. } => {}
        }
    }

    fn write(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let (State::Writing { written }, Some(stream)) = (&mut conn.state, &mut conn.stream) else {
            return;
        };
        while *written < self.request.len() {
            match stream.write(&self.request[*written..]) {
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i),
            }
        }
        conn.state = State::Reading;
    }

    fn read(&mut self, i: usize) {
        loop {
            let conn = &mut self.conns[i];
            let Some(stream) = &mut conn.stream else { return };
            let eof = match stream.read(&mut self.scratch) {
                Ok(0) => true,
                Ok(n) => {
                    conn.response.extend_from_slice(&self.scratch[..n]);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(i),
            };
            match complete(&conn.response, eof) {
                Ok(Some(response)) => return self.done(i, response),
                Ok(None) if eof => return self.fail(i),
                Ok(None) => {}
                Err(()) => return self.fail(i),
            }
        }
    }

    fn done(&mut self, i: usize, response: Response) {
        let conn = &mut self.conns[i];
        self.stats.record(conn.started.elapsed());
        if !(200..400).contains(&response.status) {
            self.stats.non2xx += 1;
        }
        conn.response.clear();
        if self.close || response.close {
            conn.stream = None;
            self.connect(i);
        } else {
            conn.started = Instant::now();
            conn.state = State::Writing { written: 0 };
            self.write(i);
        }
    }

    /// Counts an error and replaces the connection.
    fn fail(&mut self, i: usize) {
        self.stats.errors += 1;
        let conn = &mut self.conns[i];
        conn.stream = None;
        conn.response.clear();
        conn.state = State::Idle {
            until: Instant::now() + RETRY,
        };
    }
}

fn interest(state: &State) -> PollFlags {
    match state {
        State::Connecting | State::Writing { .. } => PollFlags::POLLOUT,
        State::Reading => PollFlags::POLLIN,
        State::Idle { .. } => PollFlags::empty(),
    }
}

struct Response {
    status: u16,
    /// The server closes after this response: a new connection is needed.
    close: bool,
}

/// Whether `buf` holds a whole response: `Ok(None)` while more bytes are needed.
fn complete(buf: &[u8], eof: bool) -> Result<Option<Response>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let status = head.code.ok_or(())?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    for h in head.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| ())?.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| ())?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().ends_with("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let body = &buf[head_len..];
    let whole = if status == 204 || status == 304 || (100..200).contains(&status) {
        true
    } else if chunked {
        // Enough for load testing: the last chunk and an empty trailer end the body.
        body.ends_with(b"0\r\n\r\n")
    } else if let Some(n) = length {
        body.len() >= n
    } else {
        // Delimited by the end of the connection.
        close = true;
        eof
    };
    Ok(whole.then_some(Response { status, close }))
}
