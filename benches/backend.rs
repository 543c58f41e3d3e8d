//! A tiny, fast HTTP/1.1 backend for `bench/router.sh` on machines without nginx:
//! `backend [workers]` answers every request with `200` and the 2-byte body `ok`, keeping
//! connections alive unless the client sends `Connection: close`.
//!
//! python3's http.server spends far more per request than the router, so a comparison
//! through it would measure python, not the router. This one is built like nginx: each
//! worker (default 1, like the nginx backend of the script) is an epoll loop over
//! nonblocking sockets sharing the listener with `EPOLLEXCLUSIVE`. Requests are read as
//! heads only (the load clients send no bodies); pipelined requests are answered in order.
//!
//! Listens on 127.0.0.1 (an OS-given port), prints its address on stdout and serves until
//! stdin reaches EOF, like `benches/router.rs`, so the script controls its lifetime.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

const LISTENER: u64 = u64::MAX;
const KEEP_ALIVE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
const CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
/// A client whose unanswered bytes grow past this is not a load client: drop it.
const MAX_PENDING: usize = 64 * 1024;

fn main() -> ExitCode {
    let workers = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|w| w.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let listener = match TcpListener::bind("127.0.0.1:0").and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    }) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!("backend: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (listener, stop) = (listener.clone(), stop.clone());
            thread::spawn(move || serve(&listener, &stop))
        })
        .collect();
    match listener.local_addr() {
        Ok(addr) => println!("{addr}"),
        Err(e) => eprintln!("backend: {e}"),
    }
    let _ = io::stdout().flush();
    let _ = io::stdin().read_to_end(&mut Vec::new());
    stop.store(true, Ordering::Relaxed);
    let mut ok = true;
    for h in handles {
        if let Ok(Err(e)) | Err(e) = h.join().map_err(|_| io::Error::other("worker panicked")) {
            eprintln!("backend: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes of requests not yet complete.
    input: Vec<u8>,
    /// Response bytes the socket did not take yet.
    output: Vec<u8>,
    close_after: bool,
    /// Whether epoll watches for writability too (only while output is pending), so that
    /// the interest is changed only when it must be: a system call per request otherwise.
    out_armed: bool,
}

fn serve(listener: &TcpListener, stop: &AtomicBool) -> io::Result<()> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(
        listener,
        EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER),
    )?;
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut events = vec![EpollEvent::empty(); 256];
    let mut scratch = vec![0u8; 64 * 1024];
    // The wait is bounded so that the stop flag is seen within 100 ms.
    while !stop.load(Ordering::Relaxed) {
        let n = match epoll.wait(&mut events, EpollTimeout::from(100u8)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for event in &events[..n] {
            let key = event.data();
            if key == LISTENER {
                accept(listener, &epoll, &mut conns)?;
                continue;
            }
            let Some(conn) = conns.get_mut(&key) else { continue };
            let keep = handle(conn, &mut scratch);
            let want_out = !conn.output.is_empty();
            if !keep {
                let conn = conns.remove(&key);
                if let Some(c) = conn {
                    let _ = epoll.delete(&c.stream);
                }
            } else if want_out != conn.out_armed {
                conn.out_armed = want_out;
                let flags = if want_out {
                    EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
                } else {
                    EpollFlags::EPOLLIN
                };
                let _ = epoll.modify(&conn.stream, &mut EpollEvent::new(flags, key));
            }
        }
    }
    Ok(())
}

fn accept(listener: &TcpListener, epoll: &Epoll, conns: &mut HashMap<u64, Conn>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                stream.set_nodelay(true)?;
                let key = stream.as_raw_fd() as u64;
                epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, key))?;
                conns.insert(
                    key,
                    Conn {
                        stream,
                        input: Vec::new(),
                        output: Vec::new(),
                        close_after: false,
                        out_armed: false,
                    },
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Another worker's client, or a reset before accept: nothing to do.
            Err(_) => return Ok(()),
        }
    }
}

/// Reads what is there, answers every complete request, writes what the socket takes.
/// Returns false when the connection is over.
fn handle(conn: &mut Conn, scratch: &mut [u8]) -> bool {
    if !conn.close_after {
        loop {
            match conn.stream.read(scratch) {
                Ok(0) => return false,
                Ok(n) => {
                    conn.input.extend_from_slice(&scratch[..n]);
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        let mut start = 0;
        while let Some(end) = find(&conn.input[start..], b"\r\n\r\n") {
            let head = &conn.input[start..start + end];
            let close = head_says_close(head);
            conn.output
                .extend_from_slice(if close { CLOSE } else { KEEP_ALIVE });
            start += end + 4;
            if close {
                conn.close_after = true;
                break;
            }
        }
        conn.input.drain(..start);
        if conn.input.len() > MAX_PENDING {
            return false;
        }
    }
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    !conn.close_after
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn head_says_close(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.len() >= 11
            && line[..11].eq_ignore_ascii_case(b"connection:")
            && line[11..].trim_ascii().eq_ignore_ascii_case(b"close")
    })
}
