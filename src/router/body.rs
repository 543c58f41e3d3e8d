//! Where an HTTP/1.1 message body ends (RFC 9112 §6–7).
//!
//! The router forwards bodies byte for byte, chunk headers included; it only needs to know
//! where each message stops so the next request or response on the same connection is read
//! as a head again. This module tracks that boundary and never rewrites a byte.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum BodyError {
    #[error("invalid chunk size line (1 to 15 hex digits, then an optional extension)")]
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

/// Where a chunked body ends, checked on any bytes: fed whole, fed byte by byte, and as a
/// separate line-by-line reading of the same rules decides, the body must end at the same
/// byte or be refused; a disagreement is a body the router could split differently from the
/// app. Panics when they disagree. Used by the unit tests below and by `fuzz/` (feature
/// `fuzzing`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_chunked(data: &[u8]) {
    let mut whole = Body::chunked();
    let at_once = whole.advance(data);
    let mut bytewise = Body::chunked();
    let mut one_by_one = Ok(0);
    for byte in data {
        if bytewise.is_done() {
            break;
        }
        match bytewise.advance(std::slice::from_ref(byte)) {
            Ok(n) => one_by_one = one_by_one.map(|used| used + n),
            Err(e) => {
                one_by_one = Err(e);
                break;
            }
        }
    }
    assert_eq!(at_once, one_by_one, "fed whole and byte by byte");
    assert_eq!(whole.is_done(), bytewise.is_done());
    match (reference::end_of_chunked(data), at_once) {
        (reference::End::At(end), Ok(used)) => {
            assert_eq!(used, end);
            assert!(whole.is_done());
        }
        (reference::End::Incomplete, Ok(used)) => {
            assert_eq!(used, data.len());
            assert!(!whole.is_done());
        }
        (reference::End::Invalid, Err(_)) => {}
        (expected, got) => panic!("the rules say {expected:?}, the parser {got:?}"),
    }
}

/// A chunk size of any length, `data` mapped onto hex digits: up to 15 digits it is read
/// exactly, and the chunk that follows is that many bytes; longer, it is refused as a bad
/// size line (which the router answers with a 400), never wrapped or read short. Panics
/// otherwise. Used by the unit tests below and by `fuzz/` (feature `fuzzing`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_chunk_size(data: &[u8]) {
    const DIGITS: &[u8] = b"0123456789abcdefABCDEF";
    let digits: Vec<u8> = data
        .iter()
        .map(|b| DIGITS[usize::from(*b) % DIGITS.len()])
        .collect();
    let mut line = digits.clone();
    line.extend_from_slice(b"\r\n");
    let mut body = Body::chunked();
    let got = body.advance(&line);
    let exact = (1..=15)
        .contains(&digits.len())
        .then(|| std::str::from_utf8(&digits).ok())
        .flatten()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok());
    match exact {
        Some(size) => {
            assert_eq!(
                got,
                Ok(line.len()),
                "size line {:?}",
                String::from_utf8_lossy(&digits)
            );
            assert_eq!(body, Body::Chunked(after_size(size)));
        }
        None => assert_eq!(
            got,
            Err(BodyError::ChunkSize),
            "size line {:?}",
            String::from_utf8_lossy(&digits)
        ),
    }
}

/// The chunked rules of `advance_chunked` (RFC 9112 §7.1, with a bare LF accepted as a line
/// end, as §2.2 allows), read line by line rather than byte by byte.
#[cfg(any(test, feature = "fuzzing"))]
mod reference {
    #[derive(Debug)]
    pub(super) enum End {
        At(usize),
        Incomplete,
        Invalid,
    }

    /// The line starting at `from` without its line end, and where the next one starts.
    fn line(data: &[u8], from: usize) -> Option<(&[u8], usize)> {
        let lf = data[from..].iter().position(|&b| b == b'\n')? + from;
        Some((&data[from..lf], lf + 1))
    }

    pub(super) fn end_of_chunked(data: &[u8]) -> End {
        let mut at = 0;
        loop {
            let Some((size_line, next)) = line(data, at) else {
                return incomplete_or_invalid_size(&data[at..]);
            };
            let Some(size) = chunk_size(size_line) else {
                return End::Invalid;
            };
            at = next;
            if size == 0 {
                break;
            }
            let Some(data_end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
                return End::Incomplete;
            };
            match data.get(data_end..) {
                None | Some([]) | Some([b'\r']) => return End::Incomplete,
                Some([b'\n', ..]) => at = data_end + 1,
                Some([b'\r', b'\n', ..]) => at = data_end + 2,
                Some(_) => return End::Invalid,
            }
        }
        // Trailer lines, up to an empty one (CRLF or LF).
        loop {
            match data.get(at..) {
                None | Some([]) | Some([b'\r']) => return End::Incomplete,
                Some([b'\n', ..]) => return End::At(at + 1),
                Some([b'\r', b'\n', ..]) => return End::At(at + 2),
                Some([b'\r', ..]) => return End::Invalid,
                Some(_) => match line(data, at) {
                    Some((_, next)) => at = next,
                    None => return End::Incomplete,
                },
            }
        }
    }

    /// A size line: 1 to 15 hex digits, then nothing, or an extension after `;`, space or
    /// tab; a CR may only end it.
    fn chunk_size(line: &[u8]) -> Option<u64> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 {
            return None;
        }
        let rest = &line[digits..];
        if !(rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t')) || rest.contains(&b'\r') {
            return None;
        }
        let hex = std::str::from_utf8(&line[..digits]).ok()?;
        u64::from_str_radix(hex, 16).ok()
    }

    /// No line end yet: whether what is there can still become a valid size line.
    fn incomplete_or_invalid_size(partial: &[u8]) -> End {
        let digits = partial.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let rest = &partial[digits..];
        let valid = match rest {
            _ if digits > 15 => false,
            [] => true,
            _ if digits == 0 => false,
            [b'\r'] => true,
            [b';' | b' ' | b'\t', ext @ ..] => match ext.iter().position(|&b| b == b'\r') {
                None => true,
                Some(cr) => cr == ext.len() - 1,
            },
            _ => false,
        };
        if valid {
            End::Incomplete
        } else {
            End::Invalid
        }
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
    fn chunk_sizes_past_fifteen_digits_are_refused_not_wrapped() {
        // The probe's size (issue 21), 20 digits, and the edges around the limit.
        let mut b = Body::chunked();
        assert_eq!(b.advance(b"ffffffffffffffffffff\r\n"), Err(BodyError::ChunkSize));
        for len in [0, 1, 15, 16, 17, 20, 40] {
            check_chunk_size(&vec![15u8; len]);
            check_chunk_size(&vec![0u8; len]);
        }
        check_chunk_size(b"\x01\x02\x03");
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
    fn chunked_ends_where_the_rules_say_however_it_is_fed() {
        for case in [
            &b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nGET /next"[..],
            b"0\n\n",
            b"0\r\n\r",
            b"3 ; a=\"b\"\r\nabc\nA\r\n0123456789\r\n0\r\nT: \r\r\n\r\n",
            b"fffffffffffffff\r\n",
            b"1000000000000000\r\n",
            b"1x\r\n",
            b"1;\rx\r\n",
            b"2\r\nab\rX",
            b"0\r\n\rX",
            b"",
            b"a",
            b";",
        ] {
            check_chunked(case);
        }
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
