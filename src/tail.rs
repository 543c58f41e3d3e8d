//! "Keep the last lines": the end of what a process printed, for the error that reports
//! its failure (a container's crash, an addon server that would not start, a child's
//! stderr). One bounded buffer, so that a process printing without end costs a fixed
//! amount of memory wherever it is watched. It keeps and hands back; it prints nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The last `capacity` lines pushed, and at most `max_bytes` of them: a few long lines
/// cannot hold more than a few short ones would.
#[derive(Debug, Clone)]
pub struct Tail {
    lines: VecDeque<String>,
    capacity: usize,
    bytes: usize,
    max_bytes: usize,
}

/// What a tail holds at most, by default: 64 KiB, the longest line `process` passes on.
const MAX_BYTES: usize = 64 * 1024;

impl Tail {
    /// Keeps the last `capacity` lines (and at most 64 KiB of them).
    pub fn new(capacity: usize) -> Tail {
        Tail::with_max_bytes(capacity, MAX_BYTES)
    }

    pub fn with_max_bytes(capacity: usize, max_bytes: usize) -> Tail {
        Tail {
            lines: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            bytes: 0,
            max_bytes,
        }
    }

    /// The last `capacity` lines of `text`.
    pub fn of_text(text: &str, capacity: usize) -> Tail {
        let mut tail = Tail::new(capacity);
        text.lines().for_each(|l| tail.push(l));
        tail
    }

    pub fn push(&mut self, line: &str) {
        if self.capacity == 0 {
            return;
        }
        // A line longer than the whole budget keeps its end, where an error usually is.
        let mut start = line.len().saturating_sub(self.max_bytes);
        while !line.is_char_boundary(start) {
            start += 1;
        }
        let line = &line[start..];
        while self.lines.len() >= self.capacity || self.bytes + line.len() > self.max_bytes {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
        self.bytes += line.len();
        self.lines.push_back(line.to_string());
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    /// The lines, one per line of the result.
    pub fn joined(&self) -> String {
        self.lines().join("\n")
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// This tail, to fill from one thread and read from another.
    pub fn shared(self) -> SharedTail {
        SharedTail(Arc::new(Mutex::new(self)))
    }
}

/// A [`Tail`] that the thread reading a child's output fills while another reads it.
#[derive(Debug, Clone)]
pub struct SharedTail(Arc<Mutex<Tail>>);

impl SharedTail {
    pub fn new(capacity: usize) -> SharedTail {
        Tail::new(capacity).shared()
    }

    pub fn push(&self, line: &str) {
        // A poisoned lock means a reader panicked: the lines are only a report, so the
        // writer goes on without them rather than panic in turn.
        if let Ok(mut t) = self.0.lock() {
            t.push(line);
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|t| t.lines()).unwrap_or_default()
    }

    pub fn joined(&self) -> String {
        self.0.lock().map(|t| t.joined()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_the_last_lines_only() {
        let mut t = Tail::new(3);
        assert!(t.is_empty());
        for i in 0..10 {
            t.push(&format!("line {i}"));
        }
        assert_eq!(t.lines(), ["line 7", "line 8", "line 9"]);
        assert_eq!(Tail::of_text("a\nb\nc\nd\n", 2).joined(), "c\nd");
        assert_eq!(Tail::of_text("a\nb", 5).joined(), "a\nb");
        let mut none = Tail::new(0);
        none.push("x");
        assert!(none.is_empty());
    }

    #[test]
    fn its_bytes_are_bounded_too() {
        let mut t = Tail::with_max_bytes(100, 10);
        for _ in 0..1000 {
            t.push("abcd");
        }
        assert_eq!(t.lines(), ["abcd", "abcd"], "10 bytes hold two lines of 4");
        t.push("0123456789ABCDEF");
        assert_eq!(t.lines(), ["6789ABCDEF"], "a line past the budget keeps its end");
        t.push(&format!("{}a", "é".repeat(8)));
        assert_eq!(t.lines(), ["ééééa"], "cut on a character boundary");
    }

    #[test]
    fn a_shared_tail_is_read_while_written() {
        let shared = SharedTail::new(2);
        let writer = shared.clone();
        std::thread::spawn(move || ["a", "b", "c"].iter().for_each(|l| writer.push(l)))
            .join()
            .unwrap();
        assert_eq!(shared.lines(), ["b", "c"]);
        assert_eq!(shared.joined(), "b\nc");
    }
}
