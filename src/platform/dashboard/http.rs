//! The few bytes of HTTP/1.1 the dashboard speaks: read one request head (bounded in size
//! and time, parsed by httparse), write one answer, close. No keep-alive, no body read:
//! the dashboard only answers GET and HEAD, so nothing a client sends after its head
//! matters.

use std::io::{Read, Write};
use std::time::Duration;

/// The largest request head read; a browser's is a few hundred bytes.
const MOST_HEAD: usize = 16 * 1024;

/// How long a client may take to send its head, or to take the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the dashboard needs of a request.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The path, without its query.
    pub path: String,
    pub query: Option<String>,
    pub host: Option<String>,
}

impl Head {
    /// The value of `name` in the query (`?from=120`), undecoded: the dashboard's own
    /// queries are numbers.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the connection closed before a whole request head")]
    Closed,
    #[error("the request head is longer than {MOST_HEAD} bytes")]
    TooLong,
    #[error("the request head does not parse: {0}")]
    Malformed(httparse::Error),
    #[error("cannot read the request: {0}")]
    Io(#[from] std::io::Error),
}

/// Read and parse one request head.
pub fn read_head(stream: &mut impl Read) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let target = request.path.unwrap_or("/");
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), Some(q.to_string())),
                    None => (target.to_string(), None),
                };
                let host = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned());
                return Ok(Head {
                    method: request.method.unwrap_or_default().to_string(),
                    path,
                    query,
                    host,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MOST_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::TooLong),
            Err(e) => return Err(HeadError::Malformed(e)),
        }
    }
}

/// One answer.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// `Allow:` of a 405.
    pub allow: bool,
}

impl Answer {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            content_type,
            body: body.into(),
            allow: false,
        }
    }

    /// An error as JSON: `{"error": "..."}`.
    pub fn error(status: u16, message: &str) -> Answer {
        let body = serde_json::json!({ "error": message }).to_string();
        Answer::new(status, "application/json", body)
    }

    pub fn method_not_allowed() -> Answer {
        Answer {
            allow: true,
            ..Answer::error(405, "the dashboard is read-only: GET only")
        }
    }

    /// The answer on the wire; `with_body` false for HEAD.
    pub fn write(&self, out: &mut impl Write, with_body: bool) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n\
             Referrer-Policy: no-referrer\r\n",
            self.status,
            crate::router::reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.allow {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if with_body {
            out.write_all(&self.body)?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_gives_method_path_query_and_host() {
        let raw = b"GET /api/apps/demo/logs?from=12&x=1 HTTP/1.1\r\nHost: 127.0.0.1:4000\r\n\r\n";
        let head = read_head(&mut &raw[..]).unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/api/apps/demo/logs");
        assert_eq!(head.param("from"), Some("12"));
        assert_eq!(head.param("x"), Some("1"));
        assert_eq!(head.param("fro"), None);
        assert_eq!(head.host.as_deref(), Some("127.0.0.1:4000"));
    }

    #[test]
    fn a_cut_or_endless_head_is_refused() {
        let cut = b"GET / HTTP/1.1\r\nHost: x\r\n";
        assert!(matches!(read_head(&mut &cut[..]), Err(HeadError::Closed)));
        let mut endless = std::io::repeat(b'a');
        let long = b"GET / HTTP/1.1\r\nX: "
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'a', 64 * 1024));
        let long: Vec<u8> = long.collect();
        assert!(matches!(read_head(&mut &long[..]), Err(HeadError::TooLong)));
        assert!(matches!(read_head(&mut endless), Err(HeadError::TooLong)));
        let bad = b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n";
        assert!(matches!(read_head(&mut &bad[..]), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn a_405_says_what_is_allowed() {
        let mut out = Vec::new();
        Answer::method_not_allowed().write(&mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{text}");
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{text}");
        assert!(text.ends_with("read-only: GET only\"}"), "{text}");
    }
}
