//! A byte queue for one direction of one connection.
//!
//! Reads land in the worker's shared scratch buffer first and only the bytes that must wait
//! are copied here, so an idle keep-alive connection holds no buffer at all: 5,000 idle
//! clients cost a few hundred kilobytes, not 5,000 × 16 KiB.

use std::io::{self, Write};
use std::net::TcpStream;

/// Bytes kept beyond this are released when the queue empties, so one large request does not
/// pin its buffer for the rest of a long keep-alive connection.
const KEEP_CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Buf {
    data: Vec<u8>,
    pos: usize,
}

impl Buf {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.for_append().extend_from_slice(bytes);
    }

    /// The queue's storage, for a caller that renders bytes straight into it (a rewritten
    /// head) instead of building them elsewhere and copying: append only.
    pub(crate) fn for_append(&mut self) -> &mut Vec<u8> {
        if self.is_empty() {
            self.clear();
        } else if self.pos > 0 && self.pos >= self.data.len() / 2 {
            // Move the tail to the front rather than let a slow consumer grow the Vec forever.
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        &mut self.data
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
        debug_assert!(self.pos <= self.data.len());
        if self.is_empty() {
            self.clear();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
        if self.data.capacity() > KEEP_CAPACITY {
            self.data = Vec::new();
        }
    }

    /// Writes as much as the socket takes; returns the number of bytes written.
    pub(crate) fn write_to(&mut self, stream: &mut TcpStream) -> io::Result<usize> {
        let mut total = 0;
        while !self.is_empty() {
            match stream.write(self.as_slice()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    total += n;
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_and_extend_keep_order() {
        let mut b = Buf::default();
        b.extend(b"hello ");
        b.consume(2);
        b.extend(b"world");
        assert_eq!(b.as_slice(), b"llo world");
        b.consume(b.len());
        assert!(b.is_empty());
        b.extend(b"x");
        assert_eq!(b.as_slice(), b"x");
    }
}
