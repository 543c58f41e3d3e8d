//! The Procfile: `type: command` lines at the app's root, read as the platform reads
//! them (PLATFORM.md §3): types of letters and digits, at most 24 characters, unique.
//!
//! Parsing only; which types run, and how many, is the formation's business.

use std::collections::BTreeMap;
use std::path::Path;

use crate::source::{read_app_file, APP_FILE_LIMIT};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcfileError {
    #[error("Procfile line {line}: {text:?} is not `type: command` (a process type, a colon, then the command to run)")]
    Malformed { line: usize, text: String },
    #[error(
        "Procfile line {line}: process type {name:?} must be letters and digits only, at most 24 characters"
    )]
    BadType { line: usize, name: String },
    #[error(
        "Procfile line {line}: process type {name:?} is declared twice (first on line {first}); keep one"
    )]
    Duplicate { line: usize, name: String, first: usize },
    #[error("Procfile line {line}: process type {name:?} has an empty command")]
    Empty { line: usize, name: String },
    #[error("Procfile: {0}")]
    Read(String),
}

/// The declared process types, in file order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Procfile {
    pub types: Vec<(String, String)>,
}

impl Procfile {
    /// Reads `<dir>/Procfile`; a missing file is an empty Procfile. It must be a regular
    /// file of at most `source::APP_FILE_LIMIT` bytes: the app's, so possibly anything.
    pub fn load(dir: &Path) -> Result<Option<Procfile>, ProcfileError> {
        match read_app_file(&dir.join("Procfile"), APP_FILE_LIMIT) {
            Ok(Some(bytes)) => Procfile::parse(&String::from_utf8_lossy(&bytes)).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(ProcfileError::Read(e.to_string())),
        }
    }

    pub fn parse(text: &str) -> Result<Procfile, ProcfileError> {
        // Windows editors save UTF-8 with a byte order mark; left in, it would make the
        // first type `\u{feff}web` and fail a Procfile the platform accepts.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut types: Vec<(String, String)> = Vec::new();
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim_end_matches('\r').trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((name, command)) = trimmed.split_once(':') else {
                return Err(ProcfileError::Malformed {
                    line,
                    text: trimmed.to_string(),
                });
            };
            let name = name.trim();
            if name.is_empty() || name.len() > 24 || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ProcfileError::BadType {
                    line,
                    name: name.to_string(),
                });
            }
            let command = command.trim();
            if command.is_empty() {
                return Err(ProcfileError::Empty {
                    line,
                    name: name.to_string(),
                });
            }
            if let Some(first) = first_line.get(name) {
                return Err(ProcfileError::Duplicate {
                    line,
                    name: name.to_string(),
                    first: *first,
                });
            }
            first_line.insert(name.to_string(), line);
            types.push((name.to_string(), command.to_string()));
        }
        Ok(Procfile { types })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_types_comments_and_crlf() {
        let p =
            Procfile::parse("# app\r\nweb: python app.py --port $PORT\r\n\nworker:  bundle exec sidekiq \n")
                .unwrap();
        assert_eq!(
            p.types,
            vec![
                ("web".to_string(), "python app.py --port $PORT".to_string()),
                ("worker".to_string(), "bundle exec sidekiq".to_string())
            ]
        );
    }

    #[test]
    fn a_leading_byte_order_mark_is_not_part_of_the_first_type() {
        let p = Procfile::parse("\u{feff}web: ./server\r\nworker: ./work\r\n").unwrap();
        assert_eq!(p.types[0], ("web".to_string(), "./server".to_string()));
        // Only a leading one: elsewhere it is a character like any other, and not a letter.
        assert!(matches!(
            Procfile::parse("web: a\n\u{feff}worker: b").unwrap_err(),
            ProcfileError::BadType { line: 2, .. }
        ));
    }

    #[test]
    fn command_may_contain_colons() {
        let p = Procfile::parse("web: node -e 'a:b' http://x:1\n").unwrap();
        assert_eq!(p.types[0].1, "node -e 'a:b' http://x:1");
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        assert_eq!(
            Procfile::parse("web: a\nno colon here\n").unwrap_err(),
            ProcfileError::Malformed {
                line: 2,
                text: "no colon here".into()
            }
        );
        assert!(matches!(
            Procfile::parse("web-1: a").unwrap_err(),
            ProcfileError::BadType { line: 1, .. }
        ));
        assert!(matches!(
            Procfile::parse(&format!("{}: a", "w".repeat(25))).unwrap_err(),
            ProcfileError::BadType { .. }
        ));
        assert_eq!(
            Procfile::parse("web: a\nweb: b").unwrap_err(),
            ProcfileError::Duplicate {
                line: 2,
                name: "web".into(),
                first: 1
            }
        );
        assert!(matches!(
            Procfile::parse("web:   ").unwrap_err(),
            ProcfileError::Empty { .. }
        ));
    }
}
