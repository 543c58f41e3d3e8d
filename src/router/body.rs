//! Where an HTTP/1.1 message body ends (RFC 9112 §6–7).
//!
//! The router forwards bodies byte for byte, chunk headers included; it only needs to know
//! where each message stops so the next request or response on the same connection is read
//! as a head again. This module tracks that boundary and never rewrites a byte.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum BodyError {
    #[error("invalid chunk size line")]
    ChunkSize,
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
}

/// How the body of one message is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// `Content-Length`, or no body at all (`Length(0)`).
    Length(u64),
    Chunked(Chunk),
    /// A response with neither length nor chunking: it ends when the upstream closes.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size { value: u64, digits: u8 },
    Extension { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerLine,
    FinalLf,
    Done,
}

impl Body {
    pub(crate) fn chunked() -> Body {
        Body::Chunked(Chunk::Size { value: 0, digits: 0 })
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Body::Length(0) | Body::Chunked(Chunk::Done))
    }

    /// Consumes the prefix of `input` that belongs to this body and returns its length; the
    /// body is complete when `is_done` says so afterwards.
    pub(crate) fn advance(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        match self {
            Body::Length(remaining) => {
                let n = (*remaining).min(input.len() as u64);
                *remaining -= n;
                Ok(n as usize)
            }
            Body::UntilClose => Ok(input.len()),
            Body::Chunked(state) => advance_chunked(state, input),
        }
    }
}

fn advance_chunked(state: &mut Chunk, input: &[u8]) -> Result<usize, BodyError> {
    let mut i = 0;
    while i < input.len() {
        if let Chunk::Data(remaining) = state {
            // Bulk skip: chunk payload is opaque and may be megabytes long.
            let n = (*remaining).min((input.len() - i) as u64);
            *remaining -= n;
            i += n as usize;
            if *remaining == 0 {
                *state = Chunk::DataCr;
            }
            continue;
        }
        let byte = input[i];
        i += 1;
        *state = match *state {
            Chunk::Size { value, digits } => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    // 15 hex digits is already a petabyte; more is an attack or garbage.
                    if digits >= 15 {
                        return Err(BodyError::ChunkSize);
                    }
                    let digit = (byte as char).to_digit(16).unwrap_or(0) as u64;
                    Chunk::Size {
                        value: value * 16 + digit,
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(BodyError::ChunkSize),
                b';' | b' ' | b'\t' => Chunk::Extension { value },
                b'\r' => Chunk::SizeLf { value },
                b'\n' => after_size(value),
                _ => return Err(BodyError::ChunkSize),
            },
            Chunk::Extension { value } => match byte {
                b'\r' => Chunk::SizeLf { value },
                b'\n' => after_size(value),
                _ => Chunk::Extension { value },
            },
            Chunk::SizeLf { value } => match byte {
                b'\n' => after_size(value),
                _ => return Err(BodyError::ChunkSize),
            },
            Chunk::DataCr => match byte {
                b'\r' => Chunk::DataLf,
                b'\n' => Chunk::Size { value: 0, digits: 0 },
                _ => return Err(BodyError::ChunkEnd),
            },
            Chunk::DataLf => match byte {
                b'\n' => Chunk::Size { value: 0, digits: 0 },
                _ => return Err(BodyError::ChunkEnd),
            },
            Chunk::TrailerLineStart => match byte {
                b'\r' => Chunk::FinalLf,
                b'\n' => Chunk::Done,
                _ => Chunk::TrailerLine,
            },
            Chunk::TrailerLine => match byte {
                b'\n' => Chunk::TrailerLineStart,
                _ => Chunk::TrailerLine,
            },
            Chunk::FinalLf => match byte {
                b'\n' => Chunk::Done,
                _ => return Err(BodyError::ChunkEnd),
            },
            // Handled by the bulk skip above.
            Chunk::Data(remaining) => Chunk::Data(remaining),
            Chunk::Done => {
                // The message ended before this byte: it belongs to the next message.
                return Ok(i - 1);
            }
        };
        if *state == Chunk::Done {
            return Ok(i);
        }
    }
    Ok(i)
}

fn after_size(value: u64) -> Chunk {
    if value == 0 {
        Chunk::TrailerLineStart
    } else {
        Chunk::Data(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_bytewise(body: &mut Body, input: &[u8]) -> usize {
        let mut used = 0;
        for b in input {
            if body.is_done() {
                break;
            }
            used += body.advance(std::slice::from_ref(b)).unwrap();
        }
        used
    }

    #[test]
    fn chunked_stops_exactly_at_the_end() {
        let msg = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nGET /next";
        let end = msg.len() - b"GET /next".len();
        let mut whole = Body::chunked();
        assert_eq!(whole.advance(msg).unwrap(), end);
        assert!(whole.is_done());
        let mut split = Body::chunked();
        assert_eq!(feed_bytewise(&mut split, msg), end);
        assert!(split.is_done());
    }

    #[test]
    fn chunked_without_trailer_and_bad_sizes() {
        let mut b = Body::chunked();
        assert_eq!(b.advance(b"0\r\n\r\n").unwrap(), 5);
        assert!(b.is_done());
        assert_eq!(Body::chunked().advance(b"zz\r\n"), Err(BodyError::ChunkSize));
        assert_eq!(Body::chunked().advance(b"1\r\nab\r\n"), Err(BodyError::ChunkEnd));
    }

    #[test]
    fn length_counts_down() {
        let mut b = Body::Length(3);
        assert_eq!(b.advance(b"ab").unwrap(), 2);
        assert!(!b.is_done());
        assert_eq!(b.advance(b"cdef").unwrap(), 1);
        assert!(b.is_done());
    }
}
