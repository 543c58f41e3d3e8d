//! What the terminal this process writes to may be sent ([`Abilities`]), decided once from
//! its streams and the environment (`NO_COLOR`, `TERM=dumb`). The console (colour,
//! spinners), the controls (which escape sequences pass) and the verbs' tables all ask it
//! here. It detects; it writes nothing.

use std::io::IsTerminal;

/// What a terminal may be sent, decided once from the streams and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abilities {
    /// stdout is a terminal: durations of build steps are shown.
    pub tty: bool,
    /// Escape sequences on stdout: colour and spinners.
    pub styled_out: bool,
    /// Escape sequences on stderr: colour.
    pub styled_err: bool,
}

impl Abilities {
    pub fn detect() -> Abilities {
        // no-color.org: set and not empty. A dumb terminal cannot move its cursor.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let plain = no_color || dumb;
        let tty = std::io::stdout().is_terminal();
        Abilities {
            tty,
            styled_out: tty && !plain,
            styled_err: std::io::stderr().is_terminal() && !plain,
        }
    }
}
