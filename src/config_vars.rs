//! Config vars as the platform validates them (PLATFORM.md §4): names of
//! `[A-Za-z0-9_]`, at most 64 characters, not starting with `_`; values at most
//! 32768 characters. Also the `.env` file format that `--env-file` reads.
//!
//! [`check_name`] is the one rule for a name, whatever brought it (`env-set`, `--env`,
//! a `.env` file, `scalingo.json`, a buildpack's `bin/release`): a name becomes a file
//! name in ENV_DIR, so a name that passes it is a plain file name (no `/`, no `..`).
//! Validation and parsing only; where they are stored is the state module's.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigVarError {
    #[error("config var name {0:?} is invalid: use letters, digits and _, at most 64 characters, not starting with _")]
    Name(String),
    #[error("config var {name} is {len} characters long; the platform allows 32768 at most")]
    TooLong { name: String, len: usize },
    #[error("{0:?} is not NAME=value")]
    Pair(String),
    #[error("{file} line {line}: {text:?} is not NAME=value")]
    EnvFile { file: String, line: usize, text: String },
}

pub type ConfigVars = BTreeMap<String, String>;

/// The platform's rule for a config var name. Scalingo's documentation gives no other (a
/// leading digit and `PORT` are not refused there, so not here either).
pub fn check_name(name: &str) -> Result<(), ConfigVarError> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with('_')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ConfigVarError::Name(name.to_string()));
    }
    Ok(())
}

pub fn validate(name: &str, value: &str) -> Result<(), ConfigVarError> {
    check_name(name)?;
    let len = value.chars().count();
    if len > 32768 {
        return Err(ConfigVarError::TooLong {
            name: name.to_string(),
            len,
        });
    }
    Ok(())
}

/// `NAME=value` from the command line.
pub fn parse_pair(pair: &str) -> Result<(String, String), ConfigVarError> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| ConfigVarError::Pair(pair.to_string()))?;
    validate(name, value)?;
    Ok((name.to_string(), value.to_string()))
}

/// A `.env` file: `NAME=value` lines, `export ` allowed, `#` comments, values in
/// single quotes taken as is, in double quotes with `\n`, `\"` and `\\` escapes.
pub fn parse_env_file(file: &str, text: &str) -> Result<ConfigVars, ConfigVarError> {
    let mut vars = ConfigVars::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let bad = || ConfigVarError::EnvFile {
            file: file.to_string(),
            line: i + 1,
            text: line.to_string(),
        };
        let (name, value) = line.split_once('=').ok_or_else(bad)?;
        let name = name.trim();
        let value = unquote(value.trim()).ok_or_else(bad)?;
        validate(name, &value)?;
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

fn unquote(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('\'') {
        return inner.strip_suffix('\'').map(String::from);
    }
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return Some(out);
    }
    // An unquoted value ends at an inline comment.
    Some(value.split(" #").next().unwrap_or("").trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_platform_rules() {
        assert!(validate("DATABASE_URL", "x").is_ok());
        assert!(validate("a1", "").is_ok());
        assert!(validate("_HIDDEN", "x").is_err());
        assert!(validate("WITH-DASH", "x").is_err());
        assert!(validate(&"A".repeat(65), "x").is_err());
        assert!(validate(&"A".repeat(64), "x").is_ok());
        for hostile in ["/tmp/x", "../x", "a/b", "..", ".", "", "A=B", "A B", "A\n", "É"] {
            assert!(check_name(hostile).is_err(), "{hostile:?}");
        }
        assert!(validate("A", &"v".repeat(32769)).is_err());
        assert!(validate("A", &"v".repeat(32768)).is_ok());
    }

    #[test]
    fn env_files_read_like_dotenv() {
        let vars = parse_env_file(
            ".env",
            "# c\nexport A=1\nB='two words'\nC=\"line\\nnext\"\nD=plain # note\nE=\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "line\nnext");
        assert_eq!(vars["D"], "plain");
        assert_eq!(vars["E"], "");
        let err = parse_env_file(".env", "A=1\nnot a pair\n").unwrap_err();
        assert_eq!(
            err,
            ConfigVarError::EnvFile {
                file: ".env".into(),
                line: 2,
                text: "not a pair".into()
            }
        );
    }
}
