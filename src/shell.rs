//! How shipway writes a word for a POSIX shell: in a command line the user is told to run
//! (`shipway env-unset -a demo '...'`) or one git runs for it (a credential helper). It
//! quotes; it runs nothing and parses nothing.

/// `text` as one word of a POSIX shell, for a command the user copies (or git runs).
pub fn shell_quoted(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_word_stays_and_a_quote_is_closed_escaped_and_reopened() {
        assert_eq!(shell_quoted("demo-1.2_x=y/z"), "demo-1.2_x=y/z");
        assert_eq!(shell_quoted("it's"), "'it'\\''s'");
        assert_eq!(shell_quoted(""), "''");
    }
}
