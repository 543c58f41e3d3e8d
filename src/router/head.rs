//! Reading and rewriting the head of each request and response.
//!
//! The router parses heads (httparse) only to learn framing and persistence, strip the
//! hop-by-hop headers of RFC 9110 §7.6.1, and add the platform's `X-Forwarded-*` /
//! `X-Request-*` headers (PLATFORM.md §5). It never touches a body: see `body`.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::mem::MaybeUninit;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::body::Body;

/// A head larger than this is refused: nginx's default `large_client_header_buffers` is
/// 4 × 8 KiB, so real clients stay well below it.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most headers a head the router writes may hold, so that it would accept its own output
/// (and Python's http.server, which refuses more, accepts it too).
const MAX_HEADERS: usize = 100;
/// What the router adds to a request: the platform's six headers and its own `Connection`.
const MOST_REQUEST_HEADERS: usize = MAX_HEADERS - 7;
/// A response may gain a `Connection` header.
const MOST_RESPONSE_HEADERS: usize = MAX_HEADERS - 1;

#[derive(Debug, Error)]
pub(crate) enum HeadError {
    #[error("malformed head: {0}")]
    Malformed(httparse::Error),
    #[error("head larger than {MAX_HEAD} bytes")]
    TooLarge,
    /// The most this side may send, so that the head the router writes stays within
    /// `MAX_HEADERS`.
    #[error("more than {0} headers")]
    TooManyHeaders(usize),
    #[error("invalid Content-Length")]
    ContentLength,
    /// RFC 9112 §6.1: a coding the server does not understand is a 501. The router
    /// understands `chunked` alone, as nginx does: `identity, chunked` or `gzip, chunked`
    /// would reach the app framed one way and read another by a proxy in between.
    #[error("unsupported Transfer-Encoding {0:?}: the router accepts only a lone `chunked` (RFC 9112 §6.1)")]
    TransferEncoding(String),
    /// Two Transfer-Encoding lines: which one frames the body is up to each reader, the
    /// start of request smuggling.
    #[error("more than one Transfer-Encoding header")]
    TransferEncodings,
    /// HTTP/1.0 has no chunking (RFC 9112 §6.1: such a message is faulty).
    #[error("an HTTP/1.0 request cannot carry Transfer-Encoding")]
    TransferEncodingHttp10,
    /// RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host, and
    /// to any request with more than one.
    #[error("an HTTP/1.1 request needs exactly one Host header, and this one has {0}")]
    Host(usize),
}

fn malformed(e: httparse::Error, most_headers: usize) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders(most_headers),
        e => HeadError::Malformed(e),
    }
}

/// What the router must know about a request it forwards.
#[derive(Debug)]
pub(crate) struct Request {
    /// The head to send upstream, already rewritten.
    pub(crate) bytes: Vec<u8>,
    pub(crate) body: Body,
    /// The client asked to keep its connection open after this exchange.
    pub(crate) keep_alive: bool,
    /// `Connection: upgrade` with an `Upgrade` header (websockets).
    pub(crate) upgrade: bool,
    pub(crate) is_head: bool,
    /// Safe to send twice (RFC 9110 §9.2.2): what nginx's `proxy_next_upstream` retries.
    pub(crate) idempotent: bool,
    pub(crate) expect_continue: bool,
    /// We asked the upstream to close after answering (HTTP/1.0).
    pub(crate) upstream_close: bool,
    pub(crate) http10: bool,
}

/// What a worker keeps from one request head to the next, so that rewriting a head
/// allocates nothing and formats little: the platform's headers are added to every request.
pub(crate) struct Rewriter {
    ids: RequestIds,
    router_port: Box<str>,
    /// `X-Request-Start` changes once a millisecond, while a busy worker rewrites dozens of
    /// heads in one: the clock is read once per worker wake-up (every request read in one
    /// wake-up was received at that instant) and the digits rendered only when they change.
    start_at: Option<Instant>,
    start_ms: u64,
    start_digits: Decimal,
    /// Head buffers of finished requests, handed to the next ones.
    spare: Vec<Vec<u8>>,
}

/// Enough for the requests one worker has in flight under load; more are simply freed.
const SPARE_HEADS: usize = 256;
/// A buffer grown by an unusually large head is freed rather than kept.
const SPARE_CAPACITY: usize = 4096;

impl Rewriter {
    /// `worker` keeps two workers of one router from ever producing the same request id.
    pub(crate) fn new(worker: usize, router_port: &str) -> Rewriter {
        Rewriter {
            ids: RequestIds::new(worker),
            router_port: router_port.into(),
            start_at: None,
            start_ms: 0,
            start_digits: Decimal::of(0),
            spare: Vec::new(),
        }
    }

    /// Takes back the head of a finished request for reuse.
    pub(crate) fn recycle(&mut self, mut head: Vec<u8>) {
        if head.capacity() <= SPARE_CAPACITY && self.spare.len() < SPARE_HEADS {
            head.clear();
            self.spare.push(head);
        }
    }

    fn head_buffer(&mut self, len: usize) -> Vec<u8> {
        let mut out = self.spare.pop().unwrap_or_default();
        // The platform's headers add about 230 bytes to what the client sent.
        out.reserve(len + 256);
        out
    }

    fn push_start(&mut self, out: &mut Vec<u8>, received: Instant) {
        if self.start_at != Some(received) {
            self.start_at = Some(received);
            let ms = crate::clock::now_ms();
            if ms != self.start_ms {
                self.start_ms = ms;
                self.start_digits = Decimal::of(ms);
            }
        }
        out.extend_from_slice(self.start_digits.as_bytes());
    }
}

/// Parses a request head at the start of `buf`, read from the client at `received`, and
/// rewrites it for the upstream. `Ok(None)`: not complete yet.
pub(crate) fn parse_request(
    buf: &[u8],
    client_ip: &str,
    rw: &mut Rewriter,
    received: Instant,
) -> Result<Option<(usize, Request)>, HeadError> {
    // Uninitialised: zeroing 100 headers per request would cost more than parsing them.
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut headers)
        .map_err(|e| malformed(e, MOST_REQUEST_HEADERS))?;
    let len = match parsed {
        httparse::Status::Complete(len) if len <= MAX_HEAD => len,
        // A head that arrived whole in one large read is held to the limit as well.
        httparse::Status::Complete(_) => return Err(HeadError::TooLarge),
        httparse::Status::Partial if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    if req.headers.len() > MOST_REQUEST_HEADERS {
        return Err(HeadError::TooManyHeaders(MOST_REQUEST_HEADERS));
    }
    let method = req.method.unwrap_or("GET");
    let path = req.path.unwrap_or("/");
    let http10 = req.version == Some(0);
    let scan = Scan::of(req.headers);
    let (names, conn) = (&scan.names, &scan.conn);
    if scan.hosts > 1 || scan.hosts == 0 && !http10 {
        return Err(HeadError::Host(scan.hosts));
    }
    if let Some(te) = scan.encoding {
        if scan.encodings > 1 {
            return Err(HeadError::TransferEncodings);
        }
        if http10 {
            return Err(HeadError::TransferEncodingHttp10);
        }
        if !eq_lowercase(te.trim_ascii(), b"chunked") {
            return Err(HeadError::TransferEncoding(
                String::from_utf8_lossy(te).into_owned(),
            ));
        }
    }
    let framing = scan.framing?;
    let body = match framing {
        Framing::Chunked => Body::chunked(),
        Framing::Length(n) => Body::Length(n),
        Framing::None => Body::Length(0),
        // Refused above: a request's only encoding is a lone `chunked`.
        Framing::OtherEncoding => return Err(HeadError::TransferEncoding(String::new())),
    };
    let upgrade = conn.upgrade && scan.has_upgrade && !http10;
    // RFC 9112 §6.1: a request with both Content-Length and Transfer-Encoding may be an
    // attempt at request smuggling, so the connection closes after the response, whatever
    // the client asked: nothing it sends after that request is read.
    let smuggling_risk = scan.length_with_encoding;
    let keep_alive = !smuggling_risk && if http10 { conn.keep_alive } else { !conn.close };
    // HTTP/1.0 upstream exchanges end with a close so we never have to guess their framing.
    // A client's `Connection: close` is about its own connection only: the upstream
    // connection is the router's, and goes back to the worker's pool for the next client.
    let upstream_close = http10;

    let mut out = rw.head_buffer(len);
    // Built by hand, not with `format!`: this runs for every request.
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(if http10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    let mut request_id = false;
    let mut expect_continue = false;
    for (h, name) in names.of_headers(req.headers) {
        if stays_behind(name, h, conn) {
            if upgrade && name == Name::Upgrade {
                copy_header(&mut out, h.name, h.value);
            }
            continue;
        }
        match name {
            Name::XForwardedFor => {
                forwarded_for.push(h.value);
                continue;
            }
            // The platform sets these; a client must not be able to spoof them.
            Name::XForwardedProto | Name::XForwardedPort | Name::XRealIp | Name::XRequestStart => continue,
            // RFC 9112 §6.3: chunked wins, and forwarding both is a request-smuggling vector.
            Name::ContentLength if framing == Framing::Chunked => continue,
            // The client's own id is kept, as on the platform, but one only: the app must
            // not have to choose.
            Name::XRequestId if h.value.is_empty() || request_id => continue,
            Name::XRequestId => request_id = true,
            Name::Expect if h.value.eq_ignore_ascii_case(b"100-continue") => expect_continue = true,
            _ => {}
        }
        copy_header(&mut out, h.name, h.value);
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for value in &forwarded_for {
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Real-IP: ");
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ");
    out.extend_from_slice(rw.router_port.as_bytes());
    out.extend_from_slice(b"\r\nX-Request-Start: t=");
    rw.push_start(&mut out, received);
    out.extend_from_slice(b"\r\n");
    if !request_id {
        out.extend_from_slice(b"X-Request-ID: ");
        rw.ids.push_next(&mut out);
        out.extend_from_slice(b"\r\n");
    }
    if upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if upstream_close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");

    let idempotent = matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE");
    Ok(Some((
        len,
        Request {
            bytes: out,
            body,
            keep_alive,
            upgrade,
            is_head: method == "HEAD",
            idempotent,
            expect_continue,
            upstream_close,
            http10,
        },
    )))
}

/// What the router must know about a response it relays.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Body,
    /// A 1xx other than 101: relay it and keep waiting for the final response.
    pub(crate) interim: bool,
    /// 101 to an upgrade request: from now on both sides speak another protocol.
    pub(crate) switching: bool,
    /// The upstream connection can carry another request afterwards.
    pub(crate) upstream_reusable: bool,
    /// The client connection stays open afterwards.
    pub(crate) client_keep_alive: bool,
}

/// Parses a response head at the start of `buf` for request `req` and appends it, rewritten
/// for the client, to `out` (the client's queue: no copy in between). `Ok(None)`: not
/// complete, and nothing appended.
pub(crate) fn parse_response(
    buf: &[u8],
    req: &Request,
    out: &mut Vec<u8>,
) -> Result<Option<(usize, Response)>, HeadError> {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut headers)
        .map_err(|e| malformed(e, MOST_RESPONSE_HEADERS))?;
    let len = match parsed {
        httparse::Status::Complete(len) if len <= MAX_HEAD => len,
        // A head that arrived whole in one large read is held to the limit as well.
        httparse::Status::Complete(_) => return Err(HeadError::TooLarge),
        httparse::Status::Partial if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    if res.headers.len() > MOST_RESPONSE_HEADERS {
        return Err(HeadError::TooManyHeaders(MOST_RESPONSE_HEADERS));
    }
    let code = res.code.unwrap_or(502);
    // httparse takes any three digits; a status below 100 has no class (RFC 9110 §15), and
    // rendered again it would no longer be three digits.
    if code < 100 {
        return Err(HeadError::Malformed(httparse::Error::Status));
    }
    let reason = res.reason.unwrap_or("");
    let scan = Scan::of(res.headers);
    let (names, conn) = (&scan.names, &scan.conn);
    let switching = code == 101 && req.upgrade;
    let interim = (100..200).contains(&code) && !switching;
    // Checked even where there is no body (a 304, a HEAD): clients may check it too, and a
    // response the router would relay must be valid HTTP whatever its status.
    let framing = scan.framing?;
    let body = if interim || switching || req.is_head || code == 204 || code == 304 {
        Body::Length(0)
    } else {
        match framing {
            Framing::Chunked => Body::chunked(),
            Framing::Length(n) => Body::Length(n),
            Framing::None | Framing::OtherEncoding => Body::UntilClose,
        }
    };
    let upstream_persistent = if res.version == Some(0) {
        conn.keep_alive
    } else {
        !conn.close
    };
    let upstream_reusable =
        upstream_persistent && !req.upstream_close && !switching && body != Body::UntilClose;
    let client_keep_alive = req.keep_alive && body != Body::UntilClose;

    out.reserve(len + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(Decimal::of(u64::from(code)).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let chunked = matches!(body, Body::Chunked(_));
    for (h, name) in names.of_headers(res.headers) {
        if stays_behind(name, h, conn) {
            if switching && name == Name::Upgrade {
                copy_header(out, h.name, h.value);
            }
            continue;
        }
        if chunked && name == Name::ContentLength {
            // As for requests: the client must not see a length that chunking overrides.
            continue;
        }
        copy_header(out, h.name, h.value);
    }
    if switching {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if !interim {
        if !client_keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if req.http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some((
        len,
        Response {
            status: code,
            body,
            interim,
            switching,
            upstream_reusable,
            client_keep_alive,
        },
    )))
}

/// The reason phrase of a status shipway answers itself (the router's errors, the
/// dashboard's answers).
pub(crate) fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// A response the router writes itself (404, 502, 503, 504, 400): a short text that says
/// what happened and what to do.
pub(crate) fn error_response(code: u16, message: &str, keep_alive: bool, is_head: bool) -> Vec<u8> {
    let reason = reason(code);
    let mut out = Vec::with_capacity(160 + message.len());
    push(
        &mut out,
        format_args!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}\r\n",
            message.len() + 1,
            if keep_alive { "" } else { "Connection: close\r\n" },
        ),
    );
    if !is_head {
        out.extend_from_slice(message.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Unique `X-Request-ID`s, shaped like UUIDs as the platform's are.
struct RequestIds {
    /// The last id: its first three groups, drawn from the seed, never change; the last two
    /// hold a counter in hex, which `push_next` advances digit by digit, like an odometer.
    id: [u8; 36],
}

/// Where the hex digits of the counter go in an id: the last two groups.
const COUNTER_DIGITS: [usize; 16] = [19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35];

impl RequestIds {
    /// `worker` keeps two workers of one router from ever producing the same id.
    fn new(worker: usize) -> RequestIds {
        // RandomState is seeded from the OS once per process: enough to keep ids of two
        // shipway runs apart, without a dependency on a random-number crate.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(worker);
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let seed = h.finish();
        let mut id = [b'-'; 36];
        let seed_digits = (0..8).chain(9..13).chain(14..18);
        for (i, at) in seed_digits.enumerate() {
            id[at] = hex_digit(seed >> (60 - 4 * i));
        }
        let counter = (worker as u64) << 48;
        for (i, at) in COUNTER_DIGITS.into_iter().enumerate() {
            id[at] = hex_digit(counter >> (60 - 4 * i));
        }
        RequestIds { id }
    }

    /// Appends the next id, shaped `8-4-4-4-12` hex digits.
    fn push_next(&mut self, out: &mut Vec<u8>) {
        for at in COUNTER_DIGITS.into_iter().rev() {
            let digit = &mut self.id[at];
            match *digit {
                b'f' => *digit = b'0',
                b'9' => {
                    *digit = b'a';
                    break;
                }
                _ => {
                    *digit += 1;
                    break;
                }
            }
        }
        out.extend_from_slice(&self.id);
    }
}

/// The hex digit of the low four bits of `word`.
fn hex_digit(word: u64) -> u8 {
    b"0123456789abcdef"[(word & 0xf) as usize]
}

/// A number's decimal digits, rendered without `format!` and its allocation.
#[derive(Clone, Copy)]
struct Decimal {
    digits: [u8; 20],
    start: u8,
}

impl Decimal {
    fn of(mut n: u64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal {
            digits,
            start: i as u8,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[usize::from(self.start)..]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(u64),
    None,
    OtherEncoding,
}

/// Digits only (RFC 9110 §8.6): no sign, no list, no overflow.
fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The headers the router acts on. Each name is told once per message, mostly by its length
/// alone, instead of being compared with every known name at every use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Upgrade,
    TransferEncoding,
    ContentLength,
    XForwardedFor,
    XForwardedProto,
    XForwardedPort,
    XRealIp,
    XRequestStart,
    XRequestId,
    Expect,
    Host,
    Other,
}

impl Name {
    fn of(name: &str) -> Name {
        let is = |known: &[u8]| eq_lowercase(name.as_bytes(), known);
        match name.len() {
            2 if is(b"te") => Name::Te,
            4 if is(b"host") => Name::Host,
            6 if is(b"expect") => Name::Expect,
            7 if is(b"upgrade") => Name::Upgrade,
            9 if is(b"x-real-ip") => Name::XRealIp,
            10 if is(b"connection") => Name::Connection,
            10 if is(b"keep-alive") => Name::KeepAlive,
            12 if is(b"x-request-id") => Name::XRequestId,
            14 if is(b"content-length") => Name::ContentLength,
            15 if is(b"x-forwarded-for") => Name::XForwardedFor,
            15 if is(b"x-request-start") => Name::XRequestStart,
            16 if is(b"proxy-connection") => Name::ProxyConnection,
            16 if is(b"x-forwarded-port") => Name::XForwardedPort,
            17 if is(b"x-forwarded-proto") => Name::XForwardedProto,
            17 if is(b"transfer-encoding") => Name::TransferEncoding,
            _ => Name::Other,
        }
    }

    /// RFC 9110 §7.6.1: meant for one hop only, never forwarded as is.
    fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Name::Connection | Name::KeepAlive | Name::ProxyConnection | Name::Te | Name::Upgrade
        )
    }
}

/// Whether a header is not forwarded: a hop-by-hop one, or one the message's `Connection`
/// header names (RFC 9110 §7.6.1), unless it frames the body or is the Host the router
/// checked (the app must see the Host the request was accepted with). A client that names
/// `Transfer-Encoding` there would otherwise have the router frame the body as chunked
/// while the app, never seeing the header, reads the chunks as its next request: request
/// smuggling (found by fuzz/fuzz_targets/router_head.rs).
fn stays_behind(name: Name, h: &httparse::Header, conn: &ConnectionTokens) -> bool {
    name.is_hop_by_hop()
        || !matches!(name, Name::TransferEncoding | Name::ContentLength | Name::Host) && conn.lists(h.name)
}

/// Whether `bytes` equals `known` (lowercase letters, digits and `-`) ignoring ASCII case,
/// eight bytes at a time: every message has its header names and `Connection` tokens
/// compared with these. Setting bit 5 lowercases a letter and leaves `-` and digits alone;
/// the only other bytes it turns into one of those are control bytes (CR into `-`), which
/// httparse never lets into a header name or value, so nothing else can match.
fn eq_lowercase(bytes: &[u8], known: &[u8]) -> bool {
    if bytes.len() != known.len() {
        return false;
    }
    let mut a = bytes.chunks_exact(8);
    let mut b = known.chunks_exact(8);
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or_default());
    if !a
        .by_ref()
        .zip(b.by_ref())
        .all(|(x, y)| word(x) | 0x2020_2020_2020_2020 == word(y))
    {
        return false;
    }
    a.remainder()
        .iter()
        .zip(b.remainder())
        .all(|(x, y)| x | 0x20 == *y)
}

/// What one pass over a message's headers learns: each header's `Name` (in order, for the
/// rewrite that follows), the `Connection` tokens and the body's framing.
struct Scan<'a> {
    names: Names,
    conn: ConnectionTokens<'a>,
    framing: Result<Framing, HeadError>,
    has_upgrade: bool,
    /// How many Host headers there are.
    hosts: usize,
    /// Both a Content-Length and a Transfer-Encoding (RFC 9112 §6.1).
    length_with_encoding: bool,
    /// The last Transfer-Encoding, and how many there are.
    encoding: Option<&'a [u8]>,
    encodings: usize,
}

impl<'a> Scan<'a> {
    fn of(headers: &[httparse::Header<'a>]) -> Scan<'a> {
        let mut names = [Name::Other; MAX_HEADERS];
        let mut conn = ConnectionTokens::default();
        let mut length: Option<u64> = None;
        let mut bad_length = false;
        let mut encoding: Option<&[u8]> = None;
        let mut encodings = 0;
        let mut has_upgrade = false;
        let mut hosts = 0;
        let mut any_length = false;
        for (slot, h) in names.iter_mut().zip(headers) {
            let name = Name::of(h.name);
            *slot = name;
            match name {
                Name::Other => {}
                Name::Connection => conn.add(h.value),
                Name::Upgrade => has_upgrade = true,
                Name::Host => hosts += 1,
                Name::TransferEncoding => {
                    encoding = Some(h.value);
                    encodings += 1;
                }
                Name::ContentLength => {
                    any_length = true;
                    let n = content_length(h.value);
                    // Two different lengths is how request smuggling starts (RFC 9112 §6.3).
                    bad_length |= n.is_none() || length.is_some_and(|l| Some(l) != n);
                    length = n;
                }
                _ => {}
            }
        }
        let framing = match encoding {
            Some(te) => {
                let last = te.rsplit(|&b| b == b',').next().unwrap_or(b"");
                if eq_lowercase(last.trim_ascii(), b"chunked") {
                    Framing::Chunked
                } else {
                    Framing::OtherEncoding
                }
            }
            None => length.map_or(Framing::None, Framing::Length),
        };
        let framing = if bad_length {
            Err(HeadError::ContentLength)
        } else {
            Ok(framing)
        };
        Scan {
            names: Names(names),
            conn,
            framing,
            has_upgrade,
            hosts,
            length_with_encoding: any_length && encoding.is_some(),
            encoding,
            encodings,
        }
    }
}

/// The `Name` of each header of one message, in order.
struct Names([Name; MAX_HEADERS]);

impl Names {
    fn of_headers<'h, 'b>(
        &'h self,
        headers: &'h [httparse::Header<'b>],
    ) -> impl Iterator<Item = (&'h httparse::Header<'b>, Name)> + 'h {
        headers.iter().zip(self.0.iter().copied())
    }
}

/// The tokens of every `Connection` header of one message.
#[derive(Default)]
struct ConnectionTokens<'a> {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    /// Other tokens name headers meant for this hop only.
    others: Vec<&'a [u8]>,
}

impl<'a> ConnectionTokens<'a> {
    fn add(&mut self, value: &'a [u8]) {
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if eq_lowercase(token, b"close") {
                self.close = true;
            } else if eq_lowercase(token, b"keep-alive") {
                self.keep_alive = true;
            } else if eq_lowercase(token, b"upgrade") {
                self.upgrade = true;
            } else if !token.is_empty() {
                self.others.push(token);
            }
        }
    }

    fn lists(&self, name: &str) -> bool {
        self.others
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
    }
}

fn copy_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push(out: &mut Vec<u8>, args: fmt::Arguments) {
    // Writing into a Vec cannot fail.
    let _ = out.write_fmt(args);
}

/// Transfer-Encoding lines of any bytes (the lines of `data`; its first byte odd: an
/// HTTP/1.0 request): the request is refused unless it has exactly one, a lone `chunked`, on
/// HTTP/1.1, and what is accepted keeps the promises of `check_rewrite`. Panics otherwise.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_transfer_encoding(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let http10 = first & 1 == 1;
    let mut request = Vec::from(if http10 {
        &b"POST / HTTP/1.0\r\n"[..]
    } else {
        b"POST / HTTP/1.1\r\n"
    });
    request.extend_from_slice(b"Host: a\r\n");
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    for line in &lines {
        request.extend_from_slice(b"Transfer-Encoding: ");
        request.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let mut rw = Rewriter::new(0, "8080");
    // Refused (a malformed head, an encoding other than a lone `chunked`): nothing reaches
    // the app.
    if let Ok(Some((_, req))) = parse_request(&request, "10.0.0.1", &mut rw, Instant::now()) {
        assert!(!http10, "HTTP/1.0 with Transfer-Encoding accepted");
        assert_eq!(
            req.body,
            Body::chunked(),
            "a Transfer-Encoding request not chunked"
        );
        let one = lines.len() == 1
            && lines[0]
                .strip_suffix(b"\r")
                .unwrap_or(lines[0])
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked");
        assert!(
            one,
            "accepted Transfer-Encoding lines {:?}",
            String::from_utf8_lossy(rest)
        );
    }
    check_rewrite(&request);
}

/// The rewrite's promises, checked on any bytes: `data` read as a request head, and what
/// follows it as the app's response to that request. Panics when a promise is broken. Used
/// by the unit tests below and by `fuzz/` (feature `fuzzing`).
/// - The app reads the request with the framing the router used (no request smuggling),
///   and the client reads the response with the framing the router used.
/// - A head the router writes is valid HTTP/1.1 of at most `MAX_HEADERS` headers.
/// - No hop-by-hop header crosses, but those the router writes itself.
/// - Each of the platform's headers is there exactly once; the client's are never trusted.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_rewrite(data: &[u8]) {
    let mut rw = Rewriter::new(0, "8080");
    let Ok(Some((len, req))) = parse_request(data, "10.0.0.1", &mut rw, Instant::now()) else {
        return;
    };
    assert!(len <= data.len());
    let client_sent = check::View::of(&data[..len], None);
    let hosts = check::count(&client_sent.headers, "host");
    assert!(
        hosts == 1 || hosts == 0 && req.http10,
        "{hosts} Host headers accepted"
    );
    // RFC 9112 §6.1: both framings given: the Content-Length goes, and so does the connection.
    let both = check::count(&client_sent.headers, "content-length") > 0
        && check::count(&client_sent.headers, "transfer-encoding") > 0;
    assert!(
        !(both && req.keep_alive),
        "kept alive after a request with both framings"
    );
    // RFC 9112 §6.1, as nginx reads it: a request's body is chunked by one lone `chunked`,
    // or it carries no Transfer-Encoding at all; the app sees the same.
    let encodings = check::count(&client_sent.headers, "transfer-encoding");
    if encodings > 0 {
        let te = check::value(&client_sent.headers, "transfer-encoding").unwrap_or_default();
        assert!(
            encodings == 1 && !req.http10 && te.trim_ascii().eq_ignore_ascii_case(b"chunked"),
            "accepted Transfer-Encoding {:?} ({encodings} of them)",
            String::from_utf8_lossy(te)
        );
        assert_eq!(req.body, Body::chunked());
    }
    let app = check::View::of(&req.bytes, None);
    let app_te = check::value(&app.headers, "transfer-encoding");
    assert!(
        app_te.is_none_or(|te| te.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            && check::count(&app.headers, "transfer-encoding") <= 1,
        "the app sees Transfer-Encoding {:?}",
        app_te.map(String::from_utf8_lossy)
    );
    assert_eq!(
        check::count(&app.headers, "host"),
        hosts,
        "the app sees the Host accepted"
    );
    assert_eq!(app.body, req.body, "the app frames the body as the router does");
    assert_eq!(app.upgrade, req.upgrade);
    check::hop_by_hop_gone(&app.headers, req.upgrade);
    for name in [
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-request-start",
        "x-request-id",
    ] {
        assert_eq!(check::count(&app.headers, name), 1, "{name}");
    }
    assert!(check::value(&app.headers, "x-real-ip") == Some(&b"10.0.0.1"[..]));
    if matches!(req.body, Body::Chunked(_)) {
        assert_eq!(check::count(&app.headers, "content-length"), 0);
    }

    let rest = &data[len..];
    let mut out = Vec::new();
    let Ok(Some((rlen, res))) = parse_response(rest, &req, &mut out) else {
        return;
    };
    assert!(rlen <= rest.len());
    let client = check::View::of(&out, Some(&req));
    assert_eq!(
        client.body, res.body,
        "the client frames the body as the router does"
    );
    check::hop_by_hop_gone(&client.headers, res.switching);
    assert!(!(both && res.client_keep_alive));
    if !res.client_keep_alive && !res.interim && !res.switching {
        assert!(check::value(&client.headers, "connection") == Some(&b"close"[..]));
    }
}

#[cfg(any(test, feature = "fuzzing"))]
mod check {
    use std::mem::MaybeUninit;

    use super::{Body, Framing, Request, Scan, MAX_HEADERS};

    /// A head the router wrote, as the app (a request) or the client (the response to
    /// `request`) reads it.
    pub(super) struct View {
        pub(super) body: Body,
        pub(super) upgrade: bool,
        /// Lowercase names.
        pub(super) headers: Vec<(String, Vec<u8>)>,
    }

    impl View {
        /// Panics unless `head` is one whole head of at most `MAX_HEADERS` headers.
        pub(super) fn of(head: &[u8], request: Option<&Request>) -> View {
            let mut storage = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
            let config = httparse::ParserConfig::default();
            let (parsed, headers, upgrade, body_less) = match request {
                None => {
                    let mut req = httparse::Request::new(&mut []);
                    let parsed = config.parse_request_with_uninit_headers(&mut req, head, &mut storage);
                    let http11 = req.version == Some(1);
                    (parsed, req.headers, http11, false)
                }
                Some(request) => {
                    let mut res = httparse::Response::new(&mut []);
                    let parsed = config.parse_response_with_uninit_headers(&mut res, head, &mut storage);
                    let code = res.code.unwrap_or(0);
                    let switching = code == 101 && request.upgrade;
                    let body_less =
                        (100..200).contains(&code) || request.is_head || code == 204 || code == 304;
                    (parsed, res.headers, switching, body_less)
                }
            };
            assert!(
                matches!(parsed, Ok(httparse::Status::Complete(n)) if n == head.len()),
                "{parsed:?}: {}",
                String::from_utf8_lossy(head)
            );
            let scan = Scan::of(headers);
            let framing = scan
                .framing
                .as_ref()
                .expect("a head the router wrote frames its body");
            let body = match (request, framing) {
                _ if body_less => Body::Length(0),
                (_, Framing::Chunked) => Body::chunked(),
                (_, Framing::Length(n)) => Body::Length(*n),
                (None, Framing::None) => Body::Length(0),
                (None, Framing::OtherEncoding) => panic!("a request the router cannot frame crossed"),
                (Some(_), Framing::None | Framing::OtherEncoding) => Body::UntilClose,
            };
            View {
                body,
                upgrade: upgrade && (request.is_some() || scan.conn.upgrade && scan.has_upgrade),
                headers: headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect(),
            }
        }
    }

    pub(super) fn count(headers: &[(String, Vec<u8>)], name: &str) -> usize {
        headers.iter().filter(|(n, _)| n == name).count()
    }

    pub(super) fn value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Only the router's own `Connection` (one, with one token) and, on an upgrade, the
    /// `Upgrade` header may cross.
    pub(super) fn hop_by_hop_gone(headers: &[(String, Vec<u8>)], upgrade: bool) {
        for name in ["keep-alive", "proxy-connection", "te"] {
            assert_eq!(count(headers, name), 0, "{name}");
        }
        assert!(count(headers, "connection") <= 1);
        if let Some(token) = value(headers, "connection") {
            assert!(
                [&b"close"[..], b"keep-alive", b"upgrade"].contains(&token),
                "{}",
                String::from_utf8_lossy(token)
            );
        }
        if !upgrade {
            assert_eq!(count(headers, "upgrade"), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(raw: &str) -> Request {
        let mut rw = Rewriter::new(0, "8080");
        let (len, req) = parse_request(raw.as_bytes(), "10.0.0.7", &mut rw, Instant::now())
            .unwrap()
            .unwrap();
        assert_eq!(len, raw.len());
        req
    }

    #[test]
    fn request_gets_platform_headers_and_loses_hop_by_hop_ones() {
        let req = rewrite(
            "GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
             X-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 6.6.6.6\r\n\r\n",
        );
        let text = String::from_utf8(req.bytes).unwrap();
        assert!(text.starts_with("GET /a HTTP/1.1\r\nHost: x\r\n"), "{text}");
        assert!(text.contains("X-Forwarded-For: 1.2.3.4, 10.0.0.7\r\n"), "{text}");
        assert!(text.contains("X-Real-IP: 10.0.0.7\r\n"), "{text}");
        assert!(!text.contains("6.6.6.6") && !text.contains("X-Secret"), "{text}");
        assert!(text.contains("X-Forwarded-Port: 8080\r\n"), "{text}");
        assert!(text.contains("X-Request-ID: "), "{text}");
        assert!(!text.to_ascii_lowercase().contains("connection:"), "{text}");
        assert!(req.keep_alive && req.idempotent && !req.upgrade);
    }

    #[test]
    fn conflicting_lengths_are_refused_and_chunked_beats_length() {
        let mut rw = Rewriter::new(0, "1");
        let bad = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(
            parse_request(bad, "127.0.0.1", &mut rw, Instant::now()),
            Err(HeadError::ContentLength)
        ));
        let req =
            rewrite("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(req.body, Body::chunked());
        assert!(!String::from_utf8(req.bytes).unwrap().contains("Content-Length"));
    }

    #[test]
    fn both_framings_drop_the_length_and_close_the_client_connection() {
        // RFC 9112 §6.1: Transfer-Encoding overrides Content-Length, which is removed, and
        // the connection closes after the response.
        let req =
            rewrite("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(!req.keep_alive);
        let mut out = Vec::new();
        let (_, res) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", &req, &mut out)
            .unwrap()
            .unwrap();
        assert!(!res.client_keep_alive && res.upstream_reusable);
        assert!(String::from_utf8(out).unwrap().contains("Connection: close\r\n"));
        // Chunked alone keeps the connection.
        assert!(rewrite("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").keep_alive);
    }

    #[test]
    fn http11_needs_exactly_one_host() {
        let parse = |raw: &str| {
            parse_request(
                raw.as_bytes(),
                "127.0.0.1",
                &mut Rewriter::new(0, "1"),
                Instant::now(),
            )
        };
        assert!(matches!(parse("GET / HTTP/1.1\r\n\r\n"), Err(HeadError::Host(0))));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
            Err(HeadError::Host(2))
        ));
        assert!(matches!(
            parse("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
            Err(HeadError::Host(2))
        ));
        // HTTP/1.0 predates Host; a Host named in Connection still reaches the app.
        assert!(matches!(parse("GET / HTTP/1.0\r\n\r\n"), Ok(Some(_))));
        let req = rewrite("GET / HTTP/1.1\r\nHOST: a\r\nConnection: host\r\n\r\n");
        assert!(String::from_utf8(req.bytes).unwrap().contains("HOST: a\r\n"));
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b" 42 "), Some(42));
        assert_eq!(content_length(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+5",
            b"-1",
            b"5,5",
            b"0x10",
            b"1 2",
            b"18446744073709551616",
        ] {
            assert_eq!(content_length(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn response_without_length_closes_the_client() {
        let req = rewrite("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut out = Vec::new();
        let (_, res) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", &req, &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(res.body, Body::UntilClose);
        assert!(!res.client_keep_alive && !res.upstream_reusable);
        assert!(String::from_utf8(out).unwrap().contains("Connection: close"));
    }

    #[test]
    fn response_to_head_has_no_body_and_chunked_drops_length() {
        let head = rewrite("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, res) = parse_response(raw, &head, &mut Vec::new()).unwrap().unwrap();
        assert!(res.body.is_done() && res.client_keep_alive && res.upstream_reusable);
        let get = rewrite("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut out = Vec::new();
        let (_, res) = parse_response(raw, &get, &mut out).unwrap().unwrap();
        assert_eq!(res.body, Body::chunked());
        assert!(!String::from_utf8(out).unwrap().contains("Content-Length"));
    }

    #[test]
    fn request_ids_differ() {
        let mut ids = RequestIds::new(1);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        ids.push_next(&mut a);
        ids.push_next(&mut b);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.iter().filter(|&&c| c == b'-').count(), 4);
        let groups: Vec<usize> = a.split(|&c| c == b'-').map(<[u8]>::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-'));
        // Same seed groups, counter in the last two.
        assert_eq!(a[..19], b[..19]);
    }

    #[test]
    fn request_id_counter_carries_like_addition() {
        let mut ids = RequestIds::new(3);
        let counter = |id: &[u8]| {
            let hex: String = COUNTER_DIGITS.iter().map(|&at| char::from(id[at])).collect();
            u64::from_str_radix(&hex, 16).unwrap()
        };
        let start = counter(&ids.id);
        assert_eq!(start, 3 << 48);
        // Far enough to carry across three digits, including every 9 -> a and f -> 0.
        for n in 1..=0x1100 {
            let mut out = Vec::new();
            ids.push_next(&mut out);
            assert_eq!(counter(&out), start + n);
        }
    }

    #[test]
    fn lowercase_comparison_matches_exactly_the_case_insensitive_one() {
        // Every byte that can sit inside a header name or value: httparse ends a line at CR
        // or LF and lets no other control byte through but HTAB.
        let inside = |b: u8| b == b'\t' || b >= b' ' && b != 0x7f;
        for known in b"abcdefghijklmnopqrstuvwxyz0123456789-" {
            for b in (0..=255u8).filter(|&b| inside(b)) {
                assert_eq!(
                    eq_lowercase(&[b], &[*known]),
                    b.eq_ignore_ascii_case(known),
                    "{b}"
                );
            }
        }
        for (name, known) in [
            ("Content-Length", Name::ContentLength),
            ("X-FORWARDED-PROTO", Name::XForwardedProto),
            ("transfer-Encoding", Name::TransferEncoding),
            ("TE", Name::Te),
            ("Content-Lengti", Name::Other),
            ("X-Forwarded-Prot0", Name::Other),
        ] {
            assert_eq!(Name::of(name), known, "{name}");
        }
    }

    #[test]
    fn rewrites_keep_their_promises() {
        let cases: &[&str] = &[
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\nTE: trailers\r\n\r\n\
             HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nHTTP/1.0 200 OK\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\n\r\n\
             HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Request-ID: mine\r\nX-Real-IP: 6.6.6.6\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n\
             HTTP/1.1 100 Continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: abc\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nProxy-Connection: close\r\n\r\n",
            // Found by fuzz/fuzz_targets/router_head.rs: a three-digit status below 100 was
            // relayed as `HTTP/1.1 50 ...`, which no client can parse.
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 050 Switching Protocols\r\n\r\n",
            // Found by the same target: a client's two X-Request-IDs both reached the app, and
            // a request of 95 headers became one of 101, more than the router itself accepts
            // (the loop below).
            "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: a\r\nX-Request-ID: b\r\nX-Request-ID:\r\n\r\n",
            // Found by the same target: the app never saw the Transfer-Encoding the router
            // framed the body with, so the chunks would have been its next request.
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Content-Length, close\r\n\r\n",
            // RFC 9112: both framings close the connection; Host is kept even when
            // Connection names it; HTTP/1.0 needs none.
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        ];
        for case in cases {
            check_rewrite(case.as_bytes());
        }
        let mut rw = Rewriter::new(0, "1");
        for size in [MAX_HEAD - 100, MAX_HEAD + 100] {
            let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(size));
            let parsed = parse_request(big.as_bytes(), "127.0.0.1", &mut rw, Instant::now());
            assert_eq!(size < MAX_HEAD, parsed.is_ok(), "{size}");
            assert!(size < MAX_HEAD || matches!(parsed, Err(HeadError::TooLarge)));
        }
        for count in [90, 93, 94, 99, 100, 101] {
            // The Host every HTTP/1.1 request needs, then more up to `count`.
            let headers: String = std::iter::once("Host: a\r\n".to_string())
                .chain((1..count).map(|i| format!("X-H{i}: {i}\r\n")))
                .collect();
            let request = format!("GET / HTTP/1.1\r\n{headers}\r\n");
            let response = format!("HTTP/1.1 200 OK\r\n{headers}Content-Length: 0\r\n\r\n");
            check_rewrite(format!("{request}{response}").as_bytes());
            let mut rw = Rewriter::new(0, "1");
            let parsed = parse_request(request.as_bytes(), "127.0.0.1", &mut rw, Instant::now());
            assert_eq!(count <= 93, parsed.is_ok(), "{count}");
            assert!(count <= 93 || matches!(parsed, Err(HeadError::TooManyHeaders(93))));
        }
    }

    #[test]
    fn transfer_encoding_is_a_lone_chunked_or_refused() {
        let refused = |te: &str, http: &str| {
            let raw = format!("POST / {http}\r\nHost: a\r\n{te}\r\n\r\n");
            let mut rw = Rewriter::new(0, "1");
            match parse_request(raw.as_bytes(), "127.0.0.1", &mut rw, Instant::now()) {
                Err(e) => e,
                Ok(r) => panic!("{te} accepted: {:?}", r.map(|(_, r)| r.body)),
            }
        };
        // The probe's value (issue 21), then its relatives.
        for te in [
            "identity, chunked",
            "gzip, chunked",
            "chunked, identity",
            "chunked,",
            "x",
        ] {
            let e = refused(&format!("Transfer-Encoding: {te}"), "HTTP/1.1");
            assert!(
                matches!(&e, HeadError::TransferEncoding(v) if v == te),
                "{te}: {e}"
            );
        }
        let e = refused(
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
            "HTTP/1.1",
        );
        assert!(matches!(e, HeadError::TransferEncodings), "{e}");
        let e = refused("Transfer-Encoding: chunked", "HTTP/1.0");
        assert!(matches!(e, HeadError::TransferEncodingHttp10), "{e}");
        for te in [
            &b"\x00identity, chunked"[..],
            b"\x01chunked",
            b"\x00chunked\nchunked",
            b"\x00 CHUNKED\r",
            b"\x00\n",
        ] {
            check_transfer_encoding(te);
        }
    }

    #[test]
    fn decimals() {
        assert_eq!(Decimal::of(0).as_bytes(), b"0");
        assert_eq!(Decimal::of(1_732_000_000_123).as_bytes(), b"1732000000123");
        assert_eq!(Decimal::of(u64::MAX).as_bytes(), u64::MAX.to_string().as_bytes());
    }
}
