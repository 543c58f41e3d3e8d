//! Reading and rewriting the head of each request and response.
//!
//! The router parses heads (httparse) only to learn framing and persistence, strip the
//! hop-by-hop headers of RFC 9110 §7.6.1, and add the platform's `X-Forwarded-*` /
//! `X-Request-*` headers (PLATFORM.md §5). It never touches a body: see `body`.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::mem::MaybeUninit;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::body::Body;

/// A head larger than this is refused: nginx's default `large_client_header_buffers` is
/// 4 × 8 KiB, so real clients stay well below it.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Error)]
pub(crate) enum HeadError {
    #[error("malformed head: {0}")]
    Malformed(#[from] httparse::Error),
    #[error("head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("unsupported Transfer-Encoding (only chunked is understood)")]
    TransferEncoding,
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

/// The connection facts the router adds to each request.
pub(crate) struct Forwarding<'a> {
    /// Rendered once per connection, not per request.
    pub(crate) client_ip: &'a str,
    pub(crate) router_port: &'a str,
    pub(crate) ids: &'a mut RequestIds,
}

/// Parses a request head at the start of `buf`. `Ok(None)`: not complete yet.
pub(crate) fn parse_request(buf: &[u8], fwd: &mut Forwarding) -> Result<Option<(usize, Request)>, HeadError> {
    // Uninitialised: zeroing 100 headers per request would cost more than parsing them.
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut headers)?;
    let len = match parsed {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let method = req.method.unwrap_or("GET");
    let path = req.path.unwrap_or("/");
    let http10 = req.version == Some(0);
    let conn = ConnectionTokens::of(req.headers);
    let framing = framing_of(req.headers)?;
    let body = match framing {
        Framing::Chunked => Body::chunked(),
        Framing::Length(n) => Body::Length(n),
        Framing::None => Body::Length(0),
        Framing::OtherEncoding => return Err(HeadError::TransferEncoding),
    };
    let has_upgrade_header = req.headers.iter().any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    let upgrade = conn.upgrade && has_upgrade_header && !http10;
    let keep_alive = if http10 { conn.keep_alive } else { !conn.close };
    // HTTP/1.0 upstream exchanges end with a close so we never have to guess their framing.
    // A client's `Connection: close` is about its own connection only: the upstream
    // connection is the router's, and goes back to the worker's pool for the next client.
    let upstream_close = http10;

    let mut out = Vec::with_capacity(len + 256);
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
    for h in req.headers.iter() {
        let name = h.name;
        if is_hop_by_hop(name) || conn.lists(name) {
            if upgrade && name.eq_ignore_ascii_case("upgrade") {
                copy_header(&mut out, name, h.value);
            }
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for.push(h.value);
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-proto")
            || name.eq_ignore_ascii_case("x-forwarded-port")
            || name.eq_ignore_ascii_case("x-real-ip")
            || name.eq_ignore_ascii_case("x-request-start")
        {
            // The platform sets these; a client must not be able to spoof them.
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") && framing == Framing::Chunked {
            // RFC 9112 §6.3: chunked wins, and forwarding both is a request-smuggling vector.
            continue;
        }
        if name.eq_ignore_ascii_case("x-request-id") {
            if h.value.is_empty() {
                continue;
            }
            request_id = true;
        }
        if name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue") {
            expect_continue = true;
        }
        copy_header(&mut out, name, h.value);
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for value in &forwarded_for {
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    out.extend_from_slice(fwd.client_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Real-IP: ");
    out.extend_from_slice(fwd.client_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ");
    out.extend_from_slice(fwd.router_port.as_bytes());
    out.extend_from_slice(b"\r\nX-Request-Start: t=");
    push_decimal(&mut out, ms);
    out.extend_from_slice(b"\r\n");
    if !request_id {
        out.extend_from_slice(b"X-Request-ID: ");
        fwd.ids.push_next(&mut out);
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
    /// The head to send to the client, already rewritten.
    pub(crate) bytes: Vec<u8>,
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

/// Parses a response head at the start of `buf` for request `req`. `Ok(None)`: not complete.
pub(crate) fn parse_response(buf: &[u8], req: &Request) -> Result<Option<(usize, Response)>, HeadError> {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut headers)?;
    let len = match parsed {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let code = res.code.unwrap_or(502);
    let reason = res.reason.unwrap_or("");
    let conn = ConnectionTokens::of(res.headers);
    let switching = code == 101 && req.upgrade;
    let interim = (100..200).contains(&code) && !switching;
    let body = if interim || switching || req.is_head || code == 204 || code == 304 {
        Body::Length(0)
    } else {
        match framing_of(res.headers)? {
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

    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(&mut out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let chunked = matches!(body, Body::Chunked(_));
    for h in res.headers.iter() {
        if is_hop_by_hop(h.name) || conn.lists(h.name) {
            if switching && h.name.eq_ignore_ascii_case("upgrade") {
                copy_header(&mut out, h.name, h.value);
            }
            continue;
        }
        if chunked && h.name.eq_ignore_ascii_case("content-length") {
            // As for requests: the client must not see a length that chunking overrides.
            continue;
        }
        copy_header(&mut out, h.name, h.value);
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
            bytes: out,
            body,
            interim,
            switching,
            upstream_reusable,
            client_keep_alive,
        },
    )))
}

/// A response the router writes itself (404, 502, 503, 504, 400): a short text that says
/// what happened and what to do.
pub(crate) fn error_response(code: u16, message: &str, keep_alive: bool, is_head: bool) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
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
pub(crate) struct RequestIds {
    seed: u64,
    counter: u64,
}

impl RequestIds {
    /// `worker` keeps two workers of one router from ever producing the same id.
    pub(crate) fn new(worker: usize) -> RequestIds {
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
        RequestIds {
            seed: h.finish(),
            counter: (worker as u64) << 48,
        }
    }

    /// Appends the next id, shaped `8-4-4-4-12` hex digits.
    fn push_next(&mut self, out: &mut Vec<u8>) {
        self.counter += 1;
        let mut digits = [0u8; 32];
        for (i, d) in digits.iter_mut().enumerate() {
            let word = if i < 16 { self.seed } else { self.counter };
            let nibble = (word >> (60 - 4 * (i % 16))) & 0xf;
            *d = b"0123456789abcdef"[nibble as usize];
        }
        for (i, part) in [0..8, 8..12, 12..16, 16..20, 20..32].into_iter().enumerate() {
            if i > 0 {
                out.push(b'-');
            }
            out.extend_from_slice(&digits[part]);
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
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
    out.extend_from_slice(&digits[i..]);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(u64),
    None,
    OtherEncoding,
}

fn framing_of(headers: &[httparse::Header]) -> Result<Framing, HeadError> {
    let mut length: Option<u64> = None;
    let mut encoding: Option<&[u8]> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoding = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(HeadError::ContentLength)?;
            // Two different lengths is how request smuggling starts (RFC 9112 §6.3).
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::ContentLength);
            }
            length = Some(n);
        }
    }
    if let Some(te) = encoding {
        let last = te.rsplit(|&b| b == b',').next().unwrap_or(b"");
        return Ok(if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked
        } else {
            Framing::OtherEncoding
        });
    }
    Ok(length.map_or(Framing::None, Framing::Length))
}

fn is_hop_by_hop(name: &str) -> bool {
    name.eq_ignore_ascii_case("connection")
        || name.eq_ignore_ascii_case("keep-alive")
        || name.eq_ignore_ascii_case("proxy-connection")
        || name.eq_ignore_ascii_case("te")
        || name.eq_ignore_ascii_case("upgrade")
}

/// The tokens of every `Connection` header of one message.
struct ConnectionTokens<'a> {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    /// Other tokens name headers meant for this hop only.
    others: Vec<&'a [u8]>,
}

impl<'a> ConnectionTokens<'a> {
    fn of(headers: &[httparse::Header<'a>]) -> ConnectionTokens<'a> {
        let mut tokens = ConnectionTokens {
            close: false,
            keep_alive: false,
            upgrade: false,
            others: Vec::new(),
        };
        for h in headers {
            if !h.name.eq_ignore_ascii_case("connection") {
                continue;
            }
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    tokens.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    tokens.keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    tokens.upgrade = true;
                } else if !token.is_empty() {
                    tokens.others.push(token);
                }
            }
        }
        tokens
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(raw: &str) -> Request {
        let mut ids = RequestIds::new(0);
        let mut fwd = Forwarding {
            client_ip: "10.0.0.7",
            router_port: "8080",
            ids: &mut ids,
        };
        let (len, req) = parse_request(raw.as_bytes(), &mut fwd).unwrap().unwrap();
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
        let mut ids = RequestIds::new(0);
        let mut fwd = Forwarding {
            client_ip: "127.0.0.1",
            router_port: "1",
            ids: &mut ids,
        };
        let bad = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(
            parse_request(bad, &mut fwd),
            Err(HeadError::ContentLength)
        ));
        let req = rewrite("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(req.body, Body::chunked());
        assert!(!String::from_utf8(req.bytes).unwrap().contains("Content-Length"));
    }

    #[test]
    fn response_without_length_closes_the_client() {
        let req = rewrite("GET / HTTP/1.1\r\n\r\n");
        let (_, res) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", &req).unwrap().unwrap();
        assert_eq!(res.body, Body::UntilClose);
        assert!(!res.client_keep_alive && !res.upstream_reusable);
        assert!(String::from_utf8(res.bytes)
            .unwrap()
            .contains("Connection: close"));
    }

    #[test]
    fn response_to_head_has_no_body_and_chunked_drops_length() {
        let head = rewrite("HEAD / HTTP/1.1\r\n\r\n");
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, res) = parse_response(raw, &head).unwrap().unwrap();
        assert!(res.body.is_done() && res.client_keep_alive && res.upstream_reusable);
        let get = rewrite("GET / HTTP/1.1\r\n\r\n");
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, res) = parse_response(raw, &get).unwrap().unwrap();
        assert_eq!(res.body, Body::chunked());
        assert!(!String::from_utf8(res.bytes).unwrap().contains("Content-Length"));
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
    }

    #[test]
    fn decimals() {
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        out.push(b' ');
        push_decimal(&mut out, 1_732_000_000_123);
        assert_eq!(out, b"0 1732000000123");
    }
}
