//! What a buildpack's `bin/release` prints: YAML with `addons`, `config_vars` and
//! `default_process_types` (the Heroku buildpack API). Empty output, `---` and
//! `--- {}` all mean "nothing".
//!
//! Parsing only; merging with the Procfile and config vars is the release step's.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ReleaseYamlError {
    #[error("bin/release printed YAML that cannot be read: {0}")]
    Syntax(String),
    #[error("bin/release printed YAML whose {field} is not {expected}")]
    Shape {
        field: &'static str,
        expected: &'static str,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReleaseYaml {
    pub addons: Vec<String>,
    pub config_vars: BTreeMap<String, String>,
    pub default_process_types: BTreeMap<String, String>,
}

impl ReleaseYaml {
    pub fn parse(text: &str) -> Result<ReleaseYaml, ReleaseYamlError> {
        use serde_norway::Value;
        if text.trim().is_empty() {
            return Ok(ReleaseYaml::default());
        }
        let doc: Value = serde_norway::from_str(text).map_err(|e| ReleaseYamlError::Syntax(e.to_string()))?;
        let map = match doc {
            Value::Null => return Ok(ReleaseYaml::default()),
            Value::Mapping(m) => m,
            _ => {
                return Err(ReleaseYamlError::Shape {
                    field: "document",
                    expected: "a map",
                })
            }
        };
        let mut release = ReleaseYaml::default();
        for (key, value) in map {
            match key.as_str() {
                Some("addons") => release.addons = addons(value)?,
                Some("config_vars") => release.config_vars = string_map(value, "config_vars")?,
                Some("default_process_types") => {
                    release.default_process_types = string_map(value, "default_process_types")?
                }
                _ => {}
            }
        }
        Ok(release)
    }
}

fn scalar(value: &serde_norway::Value) -> Option<String> {
    use serde_norway::Value;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn addons(value: serde_norway::Value) -> Result<Vec<String>, ReleaseYamlError> {
    use serde_norway::Value;
    let bad = ReleaseYamlError::Shape {
        field: "addons",
        expected: "a list of names",
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                scalar(i).ok_or(ReleaseYamlError::Shape {
                    field: "addons",
                    expected: "a list of names",
                })
            })
            .collect(),
        _ => Err(bad),
    }
}

fn string_map(
    value: serde_norway::Value,
    field: &'static str,
) -> Result<BTreeMap<String, String>, ReleaseYamlError> {
    use serde_norway::Value;
    let bad = || ReleaseYamlError::Shape {
        field,
        expected: "a map of names to strings",
    };
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| Ok((scalar(k).ok_or_else(bad)?, scalar(v).ok_or_else(bad)?)))
            .collect(),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_means_nothing() {
        for text in ["", "\n", "---", "---\n", "--- {}", "--- {}\n"] {
            assert_eq!(
                ReleaseYaml::parse(text).unwrap(),
                ReleaseYaml::default(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn reads_the_three_fields() {
        let r = ReleaseYaml::parse(
            "---\naddons:\n  - heroku-postgresql:hobby-dev\nconfig_vars:\n  JAVA_OPTS: -Xmx300m\n  N: 3\ndefault_process_types:\n  web: npm start\n",
        )
        .unwrap();
        assert_eq!(r.addons, vec!["heroku-postgresql:hobby-dev"]);
        assert_eq!(r.config_vars["JAVA_OPTS"], "-Xmx300m");
        assert_eq!(r.config_vars["N"], "3");
        assert_eq!(r.default_process_types["web"], "npm start");
    }

    #[test]
    fn bad_yaml_is_an_error_not_a_panic() {
        assert!(ReleaseYaml::parse("default_process_types: [a, b]").is_err());
        assert!(ReleaseYaml::parse("a: [unclosed").is_err());
        assert!(ReleaseYaml::parse("- just\n- a list").is_err());
    }
}
