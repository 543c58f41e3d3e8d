//! What an app or a buildpack prints, made harmless to show: its bytes must not drive the
//! user's terminal. An `ESC ] 52` sets the clipboard, an `ESC ] 0` the window's title,
//! `ESC [ 2 J` clears the screen and a bare `\r` writes over what the platform said.
//!
//! On a terminal that takes colour, SGR sequences (`ESC [ 1 ; 31 m`: colours and bold, as
//! buildpacks print them) pass and the line ends with a reset; every other control character
//! is shown escaped (`\x1b]52;c;...`, `\r`). Anywhere else (a pipe, a file, `NO_COLOR`) every
//! control character but tab is shown escaped, SGR included. This is what a careful pager
//! (`less -R`) lets through; `shipway logs --raw` gives the bytes as written.
//!
//! It rewrites text for display only; what is stored (`app.log`, a deployment's log) stays as
//! the app wrote it.

use std::borrow::Cow;
use std::fmt::Write;

use super::terminal::Abilities;

/// Who reads what shipway writes on one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A terminal that takes colour: SGR sequences pass.
    ColourTerminal,
    /// A pipe, a file, or a terminal without colour (`NO_COLOR`, `TERM=dumb`).
    Plain,
}

impl Reader {
    /// Who reads this process's stdout.
    pub fn stdout() -> Reader {
        Reader::from_styled(Abilities::detect().styled_out)
    }

    /// Who reads this process's stderr.
    pub fn stderr() -> Reader {
        Reader::from_styled(Abilities::detect().styled_err)
    }

    pub fn from_styled(styled: bool) -> Reader {
        if styled {
            Reader::ColourTerminal
        } else {
            Reader::Plain
        }
    }
}

/// The longest SGR sequence passed as is; a longer one is shown escaped.
const MOST_SGR: usize = 64;

/// `text` (one line, or a few) as `reader` may be shown it: see the module's comment.
/// Text without control characters is returned as is, without a copy.
pub fn neutralise(text: &str, reader: Reader) -> Cow<'_, str> {
    if !text.chars().any(|c| is_control(c) && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut coloured = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' && reader == Reader::ColourTerminal {
            if let Some(len) = sgr_len(rest.as_bytes()) {
                out.push_str(&rest[..len]);
                coloured = true;
                rest = &rest[len..];
                continue;
            }
        }
        match c {
            '\t' => out.push('\t'),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x80 && is_control(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            // C1 controls: `\u{9b}` is a CSI to a terminal in 8-bit mode.
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    if coloured {
        // A colour the app left on must not paint what the platform says next.
        out.push_str("\x1b[0m");
    }
    Cow::Owned(out)
}

/// C0 (tab included), DEL and C1.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// The length of the SGR sequence `ESC [ params m` at the start of `bytes`, params being
/// digits, `;` and `:` (ECMA-48 §8.3.117, with the colon form of 24-bit colours).
fn sgr_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(1) != Some(&b'[') {
        return None;
    }
    let params = bytes[2..]
        .iter()
        .take(MOST_SGR + 1)
        .take_while(|b| b.is_ascii_digit() || matches!(b, b';' | b':'))
        .count();
    (params <= MOST_SGR && bytes.get(2 + params) == Some(&b'm')).then_some(3 + params)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str =
        "a\x1b]52;c;aGVsbG8=\x07b\x1b]0;pwned\x1b\\c\x1b[2Jd\x1b[31me\x1b[0mf\rg\u{9b}2Jh\x7f\x00\tz";

    #[test]
    fn piped_every_control_but_tab_is_escaped() {
        assert_eq!(
            neutralise(HOSTILE, Reader::Plain),
            "a\\x1b]52;c;aGVsbG8=\\x07b\\x1b]0;pwned\\x1b\\c\\x1b[2Jd\\x1b[31me\\x1b[0mf\\rg\\u{9b}2Jh\\x7f\\x00\tz"
        );
    }

    #[test]
    fn on_a_terminal_colours_pass_and_nothing_else() {
        assert_eq!(
            neutralise(HOSTILE, Reader::ColourTerminal),
            "a\\x1b]52;c;aGVsbG8=\\x07b\\x1b]0;pwned\\x1b\\c\\x1b[2Jd\x1b[31me\x1b[0mf\\rg\\u{9b}2Jh\\x7f\\x00\tz\x1b[0m"
        );
        // A colour that is never reset is reset at the end of its line.
        assert_eq!(
            neutralise("\x1b[1;38:2:0:255:0mgo", Reader::ColourTerminal),
            "\x1b[1;38:2:0:255:0mgo\x1b[0m"
        );
        // Not SGR: another final byte, a private mode, an endless parameter list.
        assert_eq!(neutralise("\x1b[?25l", Reader::ColourTerminal), "\\x1b[?25l");
        assert_eq!(neutralise("\x1b[1A", Reader::ColourTerminal), "\\x1b[1A");
        let long = format!("\x1b[{}m", "1;".repeat(40));
        assert!(neutralise(&long, Reader::ColourTerminal).starts_with("\\x1b["));
        assert_eq!(neutralise("\x1b", Reader::ColourTerminal), "\\x1b");
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(
            neutralise("-----> Python app\tdétecté ✓", Reader::Plain),
            Cow::Borrowed(_)
        ));
    }
}
