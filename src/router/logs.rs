//! Router logs (`router-logs --enable`): one line per request, in the platform's format
//! (`method=GET path="/" host=... request_id=... container=web-1 from="..." protocol=http
//! status=200 duration=0.012s bytes=146 referer="-" user_agent="curl/8.5.0"`).
//!
//! Off by default, as on the platform. The workers only hand a record (the request's head,
//! already in hand, and a few numbers) to a bounded channel and never wait: when the
//! writer falls behind, records are dropped and counted, and the writer says how many. The
//! line is made here, on the writer's side, from the head; writing it somewhere is the
//! platform's business, not the router's.

use std::fmt::Write;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Records waiting for the writer; beyond, new ones are dropped (and counted).
const QUEUE: usize = 4096;

/// One response relayed, for its log line.
pub struct AccessRecord {
    /// When the response ended, in ms since the epoch.
    pub at_ms: u64,
    /// The request's head as forwarded to the app (with the platform's headers).
    pub head: Vec<u8>,
    pub status: u16,
    /// From the request's head read to the response's last byte queued for the client.
    pub micros: u64,
    /// Bytes of the response sent to the client, head included.
    pub bytes: u64,
    /// The container that answered; None when the router answered itself (404, 502...).
    pub container: Option<SocketAddr>,
}

/// Whether an app's router logs are on, and the queue to their writer.
pub struct RouterLogs {
    enabled: AtomicBool,
    sender: Sender<Box<AccessRecord>>,
    receiver: Receiver<Box<AccessRecord>>,
    dropped: Arc<AtomicU64>,
}

impl Default for RouterLogs {
    fn default() -> RouterLogs {
        let (sender, receiver) = crossbeam_channel::bounded(QUEUE);
        RouterLogs {
            enabled: AtomicBool::new(false),
            sender,
            receiver,
            dropped: Arc::default(),
        }
    }
}

/// What the writer reads: the records, and how many were dropped since it last looked.
pub struct AccessRecords {
    pub records: Receiver<Box<AccessRecord>>,
    dropped: Arc<AtomicU64>,
}

impl AccessRecords {
    /// How many records were dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

impl RouterLogs {
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The writer's end. It ends (`recv` fails) once the router and every holder of this
    /// `RouterLogs` are gone.
    pub fn records(&self) -> AccessRecords {
        AccessRecords {
            records: self.receiver.clone(),
            dropped: self.dropped.clone(),
        }
    }

    pub(crate) fn send(&self, record: AccessRecord) {
        match self.sender.try_send(Box::new(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The line of a record, without its time and `[router]` tag (the app's log adds them).
/// `container` is the name of the container at that address (`web-1`); None: the router
/// answered itself, or the container is not known (`container=false`, as the platform
/// writes it when no container was chosen).
pub fn line(record: &AccessRecord, container: Option<&str>) -> String {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; 128];
    let mut req = httparse::Request::new(&mut []);
    // The head is the router's own rewrite of a head it parsed: it parses again.
    let parsed = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, &record.head, &mut headers)
        .is_ok();
    let header = |name: &str| -> &[u8] {
        if !parsed {
            return b"";
        }
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map_or(b"", |h| h.value)
    };
    let method = req.method.unwrap_or("-");
    let path = req.path.unwrap_or("-");
    let mut out = String::with_capacity(256);
    let _ = write!(out, "method={} path=", bare(method.as_bytes()));
    quoted(&mut out, path.as_bytes());
    let _ = write!(
        out,
        " host={} request_id={} container={} from=",
        bare(header("host")),
        bare(header("x-request-id")),
        container.unwrap_or("false"),
    );
    quoted(&mut out, or_dash(header("x-real-ip")));
    let _ = write!(
        out,
        " protocol=http status={} duration={:.3}s bytes={} referer=",
        record.status,
        record.micros as f64 / 1e6,
        record.bytes,
    );
    quoted(&mut out, or_dash(header("referer")));
    out.push_str(" user_agent=");
    quoted(&mut out, or_dash(header("user-agent")));
    out
}

fn or_dash(value: &[u8]) -> &[u8] {
    if value.is_empty() {
        b"-"
    } else {
        value
    }
}

/// A value written without quotes: anything but visible ASCII (spaces included) is
/// escaped, so a field never runs into the next.
fn bare(value: &[u8]) -> String {
    if value.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_graphic() && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A value in double quotes; a quote, a backslash and anything not printable ASCII is
/// escaped, so what a client sends can neither end the field nor reach a terminal raw.
fn quoted(out: &mut String, value: &[u8]) {
    out.push('"');
    for &b in value {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(head: &str, container: Option<SocketAddr>) -> AccessRecord {
        AccessRecord {
            at_ms: 0,
            head: head.as_bytes().to_vec(),
            status: 200,
            micros: 12_345,
            bytes: 146,
            container,
        }
    }

    #[test]
    fn a_line_has_the_platforms_fields() {
        let head = "GET /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: curl/8.5.0\r\n\
                    X-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\nX-Request-ID: abc-1\r\n\r\n";
        let line = line(
            &record(head, Some("127.0.0.1:6000".parse().unwrap())),
            Some("web-1"),
        );
        assert_eq!(
            line,
            "method=GET path=\"/a?b=1\" host=127.0.0.1:5000 request_id=abc-1 container=web-1 \
             from=\"127.0.0.1\" protocol=http status=200 duration=0.012s bytes=146 referer=\"-\" \
             user_agent=\"curl/8.5.0\""
        );
    }

    #[test]
    fn what_a_client_sends_cannot_break_a_line() {
        let head = "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a\" status=999 \u{e9}\r\n\r\n";
        let line = line(&record(head, None), None);
        assert!(
            line.contains("user_agent=\"a\\\" status=999 \\xc3\\xa9\""),
            "{line}"
        );
        assert!(line.contains(" container=false from=\"-\" "), "{line}");
        assert!(line.is_ascii());
        assert_eq!(line.matches("status=").count(), 2, "{line}");
    }

    #[test]
    fn records_beyond_the_queue_are_dropped_and_counted() {
        let logs = RouterLogs::default();
        let records = logs.records();
        for _ in 0..QUEUE + 3 {
            logs.send(record("GET / HTTP/1.1\r\n\r\n", None));
        }
        assert_eq!(records.take_dropped(), 3);
        assert_eq!(records.take_dropped(), 0);
        assert_eq!(records.records.try_iter().count(), QUEUE);
    }
}
