//! How shipway writes a word for a POSIX shell: in a command line the user is told to run
//! (`shipway env-unset -a demo '...'`), one git runs for it (the push hook) or one that
//! opens a browser. It quotes, and reads back only what it quoted itself; it runs nothing.

/// `text` as one word of a POSIX shell, for a command the user copies (or git runs).
pub fn shell_quoted(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=".contains(c))
    {
        return text.to_string();
    }
    single_quoted(text)
}

/// `text` single-quoted whatever it holds, a `'` closed, escaped and reopened: the form
/// [`unquoted`] reads back (the push hook keeps its arguments so).
pub fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The word [`single_quoted`] wrote; None for anything else.
pub fn unquoted(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("'\\''", "'"))
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

    #[test]
    fn what_is_single_quoted_reads_back_whole() {
        assert_eq!(single_quoted("/a b/it's"), r"'/a b/it'\''s'");
        for text in ["/a b/it's", "", "''", "plain"] {
            assert_eq!(unquoted(&single_quoted(text)).as_deref(), Some(text));
        }
        assert_eq!(unquoted("bare"), None);
    }
}
