//! Router behaviour end to end: real sockets on 127.0.0.1, small blocking test upstreams.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Protocol, Router, RouterConfig};

/// Safety net for a blocked read in a broken build: tests fail instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn router(protocol: Protocol, config: RouterConfig) -> Router {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Router::start(listener, protocol, config).unwrap()
}

/// A router with two workers, so that tests cross from one worker to the other.
fn two_workers(protocol: Protocol) -> Router {
    router(
        protocol,
        RouterConfig {
            workers: 2,
            ..RouterConfig::default()
        },
    )
}

fn http_router() -> Router {
    two_workers(Protocol::Http)
}

/// A buffered reader over a blocking socket, enough HTTP/1.1 for both test ends.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    fn new(stream: TcpStream) -> Wire {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    fn connect(addr: SocketAddr) -> Wire {
        Wire::new(TcpStream::connect(addr).unwrap())
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next head, without its final CRLF CRLF; `None` on a clean EOF.
    fn head(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return Ok(Some(head));
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size_line = self.line()?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, size_line.clone()))?;
            if size == 0 {
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take(size)?);
            self.take(2)?;
        }
    }

    fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    fn body(&mut self, head: &Head, no_body: bool) -> io::Result<Vec<u8>> {
        if no_body {
            Ok(Vec::new())
        } else if head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            self.chunked()
        } else if let Some(len) = head.header("content-length") {
            self.take(len.parse().unwrap())
        } else if head.is_request() {
            Ok(Vec::new())
        } else {
            self.read_to_close()
        }
    }

    /// Reads one response; `head_request` when it answers a HEAD.
    fn response(&mut self, head_request: bool) -> io::Result<Response> {
        let raw = self.head()?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let head = Head::parse(&raw);
        let status: u16 = head.first.split(' ').nth(1).unwrap_or("0").parse().unwrap();
        let no_body = head_request || status == 204 || status == 304 || status < 200;
        let body = self.body(&head, no_body)?;
        Ok(Response { status, head, body })
    }
}

struct Head {
    first: String,
    headers: Vec<(String, String)>,
    raw: String,
}

impl Head {
    fn parse(raw: &str) -> Head {
        let mut lines = raw.split("\r\n");
        let first = lines.next().unwrap_or("").to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Head {
            first,
            headers,
            raw: raw.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_request(&self) -> bool {
        !self.first.starts_with("HTTP/")
    }
}

struct Response {
    status: u16,
    head: Head,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app\r\n\r\n").into_bytes()
}

fn get_close(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").into_bytes()
}

/// One request on a fresh connection.
fn fetch(addr: SocketAddr, request: &[u8]) -> io::Result<Response> {
    let mut wire = Wire::new(TcpStream::connect(addr)?);
    wire.stream.write_all(request)?;
    wire.response(request.starts_with(b"HEAD"))
}

/// The connections a test upstream serves, kept so `stop` can end them.
type Served = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

/// A small HTTP/1.1 app: `/name` answers its name, `/echo` its request body, `/headers` its
/// request head, `/chunked` a chunked body, `/close` a close-delimited body, `/slow`
/// nothing, `/once` nothing after the first request of a connection, `/upgrade` a 101 and
/// then echoes raw bytes.
struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
    conns: Served,
}

impl Backend {
    fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns: Served = Arc::default();
        let acceptor = {
            let (stop, accepted, conns, name) =
                (stop.clone(), accepted.clone(), conns.clone(), name.to_string());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let handle = stream.try_clone().unwrap();
                    let name = name.clone();
                    let worker = thread::spawn(move || serve(stream, &name));
                    conns.lock().unwrap().push((handle, worker));
                }
            })
        };
        Backend {
            addr,
            stop,
            accepted,
            acceptor: Some(acceptor),
            conns,
        }
    }

    /// Like a container stopping: no new connection is accepted; a request being served
    /// is answered, then each connection closes.
    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
        acceptor.join().unwrap();
        for (stream, worker) in self.conns.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Read);
            worker.join().unwrap();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, name: &str) {
    let mut wire = Wire::new(stream);
    answer(&mut wire, name);
    // `Backend` keeps a clone of the socket to stop it, so returning does not close it.
    let _ = wire.stream.shutdown(Shutdown::Both);
}

fn answer(wire: &mut Wire, name: &str) {
    let mut served = 0;
    while let Ok(Some(raw)) = wire.head() {
        served += 1;
        let head = Head::parse(&raw);
        let Ok(body) = wire.body(&head, false) else {
            return;
        };
        let mut parts = head.first.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let http10 = head.first.ends_with("HTTP/1.0");
        let close = http10
            || head
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = |status: &str, body: &[u8]| {
            let mut out = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Served-By: {name}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if method != "HEAD" {
                out.extend_from_slice(body);
            }
            out
        };
        let out = match path.as_str() {
            "/echo" => reply("200 OK", &body),
            "/headers" => reply("200 OK", raw.as_bytes()),
            "/chunked" => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                    .to_vec()
            }
            "/close" => {
                let _ = wire
                    .stream
                    .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
                return;
            }
            "/slow" => continue,
            // A kept-alive connection the app has given up on: the second request on it is
            // read and dropped unanswered.
            "/once" if served > 1 => return,
            "/upgrade" => {
                let _ = wire.stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                );
                let mut early = std::mem::take(&mut wire.buf);
                loop {
                    if !early.is_empty() && wire.stream.write_all(&early).is_err() {
                        return;
                    }
                    early.clear();
                    let mut chunk = [0u8; 4096];
                    match wire.stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => early.extend_from_slice(&chunk[..n]),
                    }
                }
            }
            _ => reply("200 OK", name.as_bytes()),
        };
        if wire.stream.write_all(&out).is_err() || close {
            return;
        }
    }
}

/// Polls `check` until it holds or the deadline passes.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::yield_now();
    }
}

#[test]
fn a_router_can_be_shared_between_threads() {
    // The rollout switches from its own thread while the platform holds the router.
    fn shareable<T: Send + Sync>() {}
    shareable::<Router>();
}

#[test]
fn answers_404_before_the_first_deploy() {
    let router = http_router();
    let res = fetch(router.local_addr(), &get("/")).unwrap();
    assert_eq!(res.status, 404);
    assert!(res.text().contains("shipway deploy"), "{}", res.text());
    assert!(res.head.header("content-type").unwrap().starts_with("text/plain"));
    router.shutdown();
}

#[test]
fn keeps_client_and_upstream_connections_alive_across_requests() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    for _ in 0..5 {
        client.send(&get("/name"));
        let res = client.response(false).unwrap();
        assert_eq!(res.status, 200);
        assert_eq!(res.text(), "web-1");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
    router.shutdown();
}

#[test]
fn relays_chunked_bodies_both_ways() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc");
    client.send(b"\r\n4;x=y\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n");
    let res = client.response(false).unwrap();
    assert_eq!(res.text(), "abcdefg");
    client.send(&get("/chunked"));
    let res = client.response(false).unwrap();
    assert_eq!(res.head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.text(), "hello world");
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    router.shutdown();
}

#[test]
fn a_framing_header_named_in_connection_still_reaches_the_app() {
    // Dropping the Transfer-Encoding a client names in `Connection` would leave the app
    // reading the chunks as its next request: request smuggling.
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\
          Connection: transfer-encoding\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(client.response(false).unwrap().text(), "abc");
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    router.shutdown();
}

#[test]
fn both_framings_are_answered_then_the_client_connection_closes() {
    // RFC 9112 §6.1: the chunks frame the body, the length is not forwarded, and nothing
    // the client sends after such a request is read: the pipelined GET gets no answer.
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET /name HTTP/1.1\r\nHost: app\r\n\r\n",
    );
    let res = client.response(false).unwrap();
    assert_eq!(res.text(), "abc");
    assert_eq!(res.head.header("connection"), Some("close"));
    assert_eq!(client.head().unwrap(), None, "the connection stayed open");
    router.shutdown();
}

#[test]
fn a_chunk_size_overflow_gets_400_and_the_connection_closes() {
    // The probe's input (issue 21): 20 hex digits, more than any u64, in one write with the
    // head, and again after the head went to the app.
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let head = b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n";
    let hostile = b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\nGET /name HTTP/1.1\r\nHost: app\r\n\r\n";
    for split in [false, true] {
        let mut client = Wire::connect(router.local_addr());
        if split {
            client.send(head);
            client.send(b"3\r\nabc\r\n");
            client.send(hostile);
        } else {
            client.send(&[&head[..], &hostile[..]].concat());
        }
        let res = client.response(false).unwrap();
        assert_eq!(res.status, 400, "{}", res.text());
        assert!(res.text().contains("invalid chunk size"), "{}", res.text());
        assert_eq!(res.head.header("connection"), Some("close"));
        // The GET after it is never read as a request.
        assert_eq!(client.head().unwrap(), None, "the connection stayed open");
    }
    let mut client = Wire::connect(router.local_addr());
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    router.shutdown();
}

#[test]
fn transfer_encodings_other_than_a_lone_chunked_are_refused() {
    // RFC 9112 §6.1 as nginx applies it: a coding the router does not understand is a 501,
    // two Transfer-Encoding lines or one on HTTP/1.0 a 400; none reaches the app.
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let body = "3\r\nabc\r\n0\r\n\r\n";
    for (te, status) in [
        ("Transfer-Encoding: identity, chunked", 501),
        ("Transfer-Encoding: gzip, chunked", 501),
        ("Transfer-Encoding: chunked, identity", 501),
        ("Transfer-Encoding: chunked, chunked", 501),
        ("Transfer-Encoding: ,chunked", 501),
        ("Transfer-Encoding: identity", 501),
        ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
    ] {
        let mut client = Wire::connect(router.local_addr());
        client.send(format!("POST /echo HTTP/1.1\r\nHost: app\r\n{te}\r\n\r\n{body}").as_bytes());
        let res = client.response(false).unwrap();
        assert_eq!(res.status, status, "{te}: {}", res.text());
        assert!(res.text().contains("Transfer-Encoding"), "{}", res.text());
        assert_eq!(client.head().unwrap(), None, "{te}: the connection stayed open");
    }
    let mut client = Wire::connect(router.local_addr());
    client.send(format!("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{body}").as_bytes());
    assert_eq!(client.response(false).unwrap().status, 400);
    assert_eq!(
        backend.accepted.load(Ordering::SeqCst),
        0,
        "the app saw a refused request"
    );
    // A lone `chunked`, in any case and with spaces around it, is what it always was.
    let mut client = Wire::connect(router.local_addr());
    client.send(
        format!("POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding:  Chunked \r\n\r\n{body}").as_bytes(),
    );
    assert_eq!(client.response(false).unwrap().text(), "abc");
    router.shutdown();
}

#[test]
fn an_http11_request_without_exactly_one_host_gets_400() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    for request in [
        &b"GET /name HTTP/1.1\r\n\r\n"[..],
        b"GET /name HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let mut client = Wire::connect(router.local_addr());
        client.send(request);
        let res = client.response(false).unwrap();
        assert_eq!(res.status, 400);
        assert!(res.text().contains("exactly one Host header"), "{}", res.text());
        assert_eq!(client.head().unwrap(), None);
    }
    assert_eq!(
        backend.accepted.load(Ordering::SeqCst),
        0,
        "the app saw a refused request"
    );
    router.shutdown();
}

#[test]
fn forwards_a_post_body_with_content_length() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let body = "x".repeat(200_000);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut client = Wire::connect(router.local_addr());
    client.send(request.as_bytes());
    let res = client.response(false).unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.body.len(), body.len());
    assert!(res.text() == body);
    router.shutdown();
}

#[test]
fn head_response_has_no_body_and_the_connection_goes_on() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(b"HEAD /name HTTP/1.1\r\nHost: app\r\n\r\n");
    let res = client.response(true).unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.head.header("content-length"), Some("5"));
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    router.shutdown();
}

#[test]
fn a_burst_of_connections_is_spread_over_the_workers() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    // All connected before any request, as a load generator or a browser opening its pool
    // does: the kernel offers a burst to the same worker first.
    let mut clients: Vec<Wire> = (0..40).map(|_| Wire::connect(router.local_addr())).collect();
    let mut per_worker = std::collections::HashMap::<String, usize>::new();
    for client in &mut clients {
        client.send(&get("/headers"));
        let res = client.response(false).unwrap();
        let id = Head::parse(&res.text())
            .header("x-request-id")
            .unwrap()
            .to_string();
        // The fourth group of an id holds the index of the worker that made it.
        *per_worker.entry(id[19..23].to_string()).or_default() += 1;
    }
    // Each worker within the slack of an even share, give or take two connections the
    // workers placed at the same instant.
    let least = 40 / 2 - super::worker::HANDOFF_SLACK - 2;
    assert_eq!(per_worker.len(), 2, "{per_worker:?}");
    assert!(per_worker.values().all(|&n| n >= least), "{per_worker:?}");
    router.shutdown();
}

#[test]
fn upstream_sees_the_platform_headers() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let port = router.local_addr().port();
    let res = fetch(
        router.local_addr(),
        b"GET /headers HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 10.1.1.1\r\nX-Real-IP: 6.6.6.6\r\n\r\n",
    )
    .unwrap();
    let seen = Head::parse(&res.text());
    assert_eq!(seen.header("x-forwarded-for"), Some("10.1.1.1, 127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-port"), Some(port.to_string().as_str()));
    let id = seen.header("x-request-id").unwrap().to_string();
    assert!(id.len() >= 16, "{id}");
    let start: u128 = seen.header("x-request-start").unwrap()[2..].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(start <= now && now - start < 60_000, "{start} vs {now}");
    assert!(!seen.raw.contains("6.6.6.6"), "{}", seen.raw);

    let again = fetch(router.local_addr(), &get("/headers")).unwrap();
    let other_id = Head::parse(&again.text())
        .header("x-request-id")
        .unwrap()
        .to_string();
    assert_ne!(id, other_id);
    let kept = fetch(
        router.local_addr(),
        b"GET /headers HTTP/1.1\r\nHost: app\r\nX-Request-ID: from-client-42\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        Head::parse(&kept.text()).header("x-request-id"),
        Some("from-client-42")
    );
    router.shutdown();
}

#[test]
fn an_ipv6_client_is_forwarded_with_its_address() {
    // The worker reads the peer address that `accept4` wrote, family by family.
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: nothing to check");
        return;
    };
    let backend = Backend::start("web-1");
    let router = Router::start(listener, Protocol::Http, RouterConfig::default()).unwrap();
    router.switch(vec![backend.addr]);
    let res = fetch(router.local_addr(), &get("/headers")).unwrap();
    let seen = Head::parse(&res.text());
    assert_eq!(seen.header("x-real-ip"), Some("::1"));
    assert_eq!(seen.header("x-forwarded-for"), Some("::1"));
    router.shutdown();
}

#[test]
fn round_robins_between_two_upstreams() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let router = http_router();
    router.switch(vec![a.addr, b.addr]);
    let names: Vec<String> = (0..6)
        .map(|_| fetch(router.local_addr(), &get_close("/name")).unwrap().text())
        .collect();
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 3, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "b").count(), 3, "{names:?}");
    assert!(names.windows(2).all(|w| w[0] != w[1]), "{names:?}");
    assert_eq!(router.upstreams(), vec![a.addr, b.addr]);
    router.shutdown();
}

#[test]
fn a_kept_alive_client_follows_a_switch() {
    let (mut old, new) = (Backend::start("old"), Backend::start("new"));
    let router = http_router();
    router.switch(vec![old.addr]);
    let mut client = Wire::connect(router.local_addr());
    for _ in 0..3 {
        client.send(&get("/name"));
        assert_eq!(client.response(false).unwrap().text(), "old");
    }
    router.switch(vec![new.addr]);
    old.stop();
    for _ in 0..3 {
        client.send(&get("/name"));
        assert_eq!(client.response(false).unwrap().text(), "new");
    }
    router.shutdown();
}

#[test]
fn clients_that_close_share_pooled_upstream_connections_within_a_release() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let router = router(
        Protocol::Http,
        RouterConfig {
            workers: 1,
            ..RouterConfig::default()
        },
    );
    router.switch(vec![a.addr]);
    for _ in 0..3 {
        let res = fetch(router.local_addr(), &get_close("/name")).unwrap();
        assert_eq!(res.text(), "a");
        assert_eq!(res.head.header("connection"), Some("close"));
    }
    assert_eq!(a.accepted.load(Ordering::SeqCst), 1);
    // Both apps still run: only the generation check keeps the pooled one from serving.
    router.switch(vec![b.addr]);
    assert_eq!(
        fetch(router.local_addr(), &get_close("/name")).unwrap().text(),
        "b"
    );
    router.shutdown();
}

#[test]
fn idempotent_requests_are_resent_once_when_a_kept_alive_upstream_drops_them() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(&get("/once"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    client.send(&get("/once"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    // A POST may have been acted upon: it is not resent, the client learns what happened.
    client.send(b"POST /once HTTP/1.1\r\nHost: app\r\nContent-Length: 2\r\n\r\nhi");
    let res = client.response(false).unwrap();
    assert_eq!(res.status, 502);
    assert!(res.text().contains("closed the connection"), "{}", res.text());
    router.shutdown();
}

#[test]
fn no_request_fails_across_twenty_switches() {
    let router = http_router();
    let addr = router.local_addr();
    let mut current = Backend::start("gen-0");
    router.switch(vec![current.addr]);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<JoinHandle<()>> = (0..4)
        .map(|i| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            thread::spawn(move || {
                let keep_alive = i % 2 == 0;
                let mut wire: Option<Wire> = None;
                while !stop.load(Ordering::SeqCst) {
                    let result = if keep_alive {
                        let w = wire.get_or_insert_with(|| Wire::connect(addr));
                        w.stream.write_all(&get("/name")).and_then(|()| w.response(false))
                    } else {
                        fetch(addr, &get_close("/name"))
                    };
                    match result {
                        Ok(res) if res.status == 200 && res.text().starts_with("gen-") => {
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(res) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", res.status, res.text())),
                        Err(e) => {
                            failures.lock().unwrap().push(e.to_string());
                            wire = None;
                        }
                    }
                }
            })
        })
        .collect();
    for generation in 1..=20 {
        let next = Backend::start(&format!("gen-{generation}"));
        let before = done.load(Ordering::SeqCst);
        eventually("requests to flow", || done.load(Ordering::SeqCst) >= before + 20);
        router.switch(vec![next.addr]);
        // The old container stops right after the switch, as in a rollout.
        current.stop();
        current = next;
    }
    let before = done.load(Ordering::SeqCst);
    eventually("requests after the last switch", || {
        done.load(Ordering::SeqCst) >= before + 20
    });
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..]
    );
    assert!(done.load(Ordering::SeqCst) > 400);
    router.shutdown();
}

#[test]
fn answers_502_naming_what_is_wrong_when_the_app_answers_with_a_bad_head() {
    // An app that reads one request and answers with a status httparse takes but no client
    // could parse once relayed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut wire = Wire::new(stream);
        wire.head().unwrap();
        wire.send(b"HTTP/1.1 050 Odd\r\nContent-Length: 0\r\n\r\n");
    });
    let router = http_router();
    router.switch(vec![app]);
    let res = fetch(router.local_addr(), &get("/")).unwrap();
    assert_eq!(res.status, 502);
    assert!(
        res.text().contains("cannot relay (malformed head"),
        "{}",
        res.text()
    );
    server.join().unwrap();
    router.shutdown();
}

#[test]
fn answers_502_when_no_upstream_accepts() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let router = http_router();
    router.switch(vec![closed, closed]);
    let mut client = Wire::connect(router.local_addr());
    client.send(&get("/"));
    let res = client.response(false).unwrap();
    assert_eq!(res.status, 502);
    assert!(res.text().contains("tried 2"), "{}", res.text());
    // The error does not cost the client its connection.
    client.send(&get("/"));
    assert_eq!(client.response(false).unwrap().status, 502);
    router.shutdown();
}

#[test]
fn answers_503_after_a_switch_to_no_upstream() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().status, 200);
    router.switch(Vec::new());
    client.send(&get("/name"));
    let res = client.response(false).unwrap();
    assert_eq!(res.status, 503);
    assert!(res.text().contains("scale"), "{}", res.text());
    router.shutdown();
}

#[test]
fn answers_504_when_the_app_does_not_start_answering() {
    let backend = Backend::start("web-1");
    let router = router(
        Protocol::Http,
        RouterConfig {
            first_byte_timeout: Duration::from_millis(200),
            workers: 1,
            ..RouterConfig::default()
        },
    );
    router.switch(vec![backend.addr]);
    let started = Instant::now();
    let mut client = Wire::connect(router.local_addr());
    client.send(&get("/slow"));
    let res = client.response(false).unwrap();
    assert_eq!(res.status, 504);
    assert!(started.elapsed() >= Duration::from_millis(200));
    // The stuck upstream connection is dropped; the client's is not.
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    router.shutdown();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let router = http_router();
    router.switch(vec![a.addr, b.addr]);
    let mut client = Wire::connect(router.local_addr());
    let mut burst = get("/chunked");
    burst.extend(b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\n\r\none");
    burst.extend(get("/close"));
    client.send(&burst);
    assert_eq!(client.response(false).unwrap().text(), "hello world");
    assert_eq!(client.response(false).unwrap().text(), "one");
    let last = client.response(false).unwrap();
    assert_eq!(last.text(), "until the end");
    assert_eq!(last.head.header("connection"), Some("close"));
    router.shutdown();
}

#[test]
fn http10_client_gets_its_answer_and_a_close() {
    let backend = Backend::start("web-1");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(b"GET /name HTTP/1.0\r\n\r\n");
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    assert_eq!(client.read_to_close().unwrap(), b"");
    router.shutdown();
}

#[test]
fn upgrade_becomes_a_tunnel() {
    let backend = Backend::start("ws");
    let router = http_router();
    router.switch(vec![backend.addr]);
    let mut client = Wire::connect(router.local_addr());
    client.send(
        b"GET /upgrade HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly",
    );
    let raw = client.head().unwrap().unwrap();
    let head = Head::parse(&raw);
    assert!(head.first.contains(" 101 "), "{raw}");
    assert_eq!(head.header("upgrade"), Some("websocket"));
    assert_eq!(client.take(5).unwrap(), b"early");
    client.send(b"ping");
    assert_eq!(client.take(4).unwrap(), b"ping");
    client.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(client.read_to_close().unwrap(), b"");
    router.shutdown();
}

/// Echoes `connections` connections, each on its own thread, half-closing after the client.
fn echo_server(connections: usize) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let echoes: Vec<_> = (0..connections)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                thread::spawn(move || {
                    let mut copy = stream.try_clone().unwrap();
                    io::copy(&mut stream, &mut copy).unwrap();
                    copy.shutdown(Shutdown::Write).unwrap();
                })
            })
            .collect();
        for echo in echoes {
            echo.join().unwrap();
        }
    });
    (addr, handle)
}

#[test]
fn tcp_protocol_tunnels_bytes_with_half_close() {
    let router = two_workers(Protocol::Tcp);
    // Before a deploy the connection is closed at once.
    let mut early = Wire::connect(router.local_addr());
    assert_eq!(early.read_to_close().unwrap(), b"");

    let (echo, server) = echo_server(1);
    router.switch(vec![echo]);
    let mut client = Wire::connect(router.local_addr());
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = client.stream.try_clone().unwrap();
    let sent = payload.clone();
    let sender = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    assert_eq!(client.read_to_close().unwrap(), payload);
    sender.join().unwrap();
    server.join().unwrap();
    router.shutdown();
}

#[test]
fn a_burst_of_tcp_connections_is_tunnelled_by_whichever_worker_takes_each() {
    let router = two_workers(Protocol::Tcp);
    let (echo, server) = echo_server(12);
    router.switch(vec![echo]);
    // More than a worker keeps before it passes connections on, all opened at once.
    let mut clients: Vec<Wire> = (0..12).map(|_| Wire::connect(router.local_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let message = format!("connection {i}");
        client.send(message.as_bytes());
        client.stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.read_to_close().unwrap(), message.as_bytes());
    }
    server.join().unwrap();
    router.shutdown();
}

#[test]
fn shutdown_closes_connections_and_joins_workers() {
    let backend = Backend::start("web-1");
    let router = router(
        Protocol::Http,
        RouterConfig {
            workers: 3,
            ..RouterConfig::default()
        },
    );
    router.switch(vec![backend.addr]);
    let addr = router.local_addr();
    let mut client = Wire::connect(addr);
    client.send(&get("/name"));
    assert_eq!(client.response(false).unwrap().text(), "web-1");
    router.shutdown();
    // Every worker has returned, so the kept-alive connection is closed...
    assert_eq!(client.read_to_close().unwrap(), b"");
    // ...and the listener with them.
    assert!(TcpStream::connect(addr).is_err());
    eventually("the backend to see its connection closed", || {
        backend.conns.lock().unwrap().iter().all(|(_, t)| t.is_finished())
    });
}
