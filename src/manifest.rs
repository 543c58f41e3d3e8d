//! `scalingo.json` (else `app.json`), the manifest the platform reads when it creates an
//! app from code: one-click deploys and review apps (PLATFORM.md §8; Scalingo's
//! documentation: platform/app/app-manifest, developers.scalingo.com/scalingo-json-schema).
//! shipway reads it at an app's first deployment: `env` (values, or generated),
//! `formation` (amounts), `addons`, and `scripts.first-deploy`, which is that
//! deployment's postdeploy hook.
//!
//! It parses and resolves; the deploy job applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Read(#[from] crate::source::AppFileError),
    #[error("{path} is not a valid manifest: {message} (the format: https://developers.scalingo.com/scalingo-json-schema)")]
    Invalid { path: PathBuf, message: String },
}

/// The names the platform looks for, the first found wins.
const NAMES: [&str; 2] = ["scalingo.json", "app.json"];

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    env: BTreeMap<String, RawEnv>,
    #[serde(default)]
    addons: Vec<RawAddon>,
    #[serde(default)]
    formation: BTreeMap<String, RawFormation>,
    #[serde(default)]
    scripts: RawScripts,
    #[serde(default)]
    stack: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawEnv {
    Null,
    // Before `Scalar`, which would take any object whole.
    Entry {
        #[serde(default)]
        value: Option<serde_json::Value>,
        #[serde(default)]
        generator: Option<String>,
        #[serde(default)]
        template: Option<String>,
    },
    Scalar(serde_json::Value),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawAddon {
    Spec(String),
    Entry { plan: String },
}

#[derive(Debug, Deserialize)]
struct RawFormation {
    #[serde(default)]
    amount: Option<u32>,
    /// Heroku's app.json word for it.
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawScripts {
    #[serde(rename = "first-deploy", default)]
    first_deploy: Option<String>,
    #[serde(default)]
    postdeploy: Option<String>,
}

/// What an `env` entry asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvValue {
    Value(String),
    /// `null` or an empty value: the variable is removed.
    Remove,
    /// `"generator": "secret"`: a random secret.
    Secret,
    /// `"generator": "url"` or `"template"`: the template with `%URL%` and `%APP%` filled.
    Template(String),
}

/// A manifest, read and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// Which file it came from.
    pub file: String,
    pub env: Vec<(String, EnvValue)>,
    /// `postgresql:postgresql-starter-512`, `redis`.
    pub addons: Vec<String>,
    /// Type, amount, size.
    pub formation: Vec<(String, Option<u32>, Option<String>)>,
    pub first_deploy: Option<String>,
    /// `scripts.postdeploy`: deprecated by the platform for the Procfile's hook.
    pub postdeploy: Option<String>,
    /// The stack the app is created on, instead of the default.
    pub stack: Option<String>,
}

/// The manifest at the root of the app's folder, if any.
pub fn read(dir: &Path) -> Result<Option<Manifest>, ManifestError> {
    for name in NAMES {
        let path = dir.join(name);
        // The app's file, so possibly anything: read as the Procfile is, never blocking.
        let Some(bytes) = crate::source::read_app_file(&path, crate::source::APP_FILE_LIMIT)? else {
            continue;
        };
        return parse(name, &String::from_utf8_lossy(&bytes))
            .map(Some)
            .map_err(|message| ManifestError::Invalid { path, message });
    }
    Ok(None)
}

fn parse(file: &str, text: &str) -> Result<Manifest, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    // serde would read a struct from an array too: the manifest is an object.
    if !value.is_object() {
        return Err("it is not a JSON object".into());
    }
    let raw: Raw = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let mut env = Vec::new();
    for (name, entry) in raw.env {
        // The one rule of every config var name: this key becomes a file name in ENV_DIR.
        crate::config_vars::check_name(&name).map_err(|e| format!("env: {e}"))?;
        let scalar = |v: serde_json::Value| match v {
            serde_json::Value::Null => Ok(EnvValue::Remove),
            serde_json::Value::String(s) if s.is_empty() => Ok(EnvValue::Remove),
            serde_json::Value::String(s) => Ok(EnvValue::Value(s)),
            serde_json::Value::Number(n) => Ok(EnvValue::Value(n.to_string())),
            serde_json::Value::Bool(b) => Ok(EnvValue::Value(b.to_string())),
            other => Err(format!(
                "env {name}: {other} is not a value (a string, or {{\"value\": ...}})"
            )),
        };
        let value = match entry {
            RawEnv::Null => EnvValue::Remove,
            RawEnv::Scalar(v) => scalar(v)?,
            RawEnv::Entry {
                generator: Some(g),
                template,
                ..
            } => match g.as_str() {
                "secret" => EnvValue::Secret,
                "url" => EnvValue::Template(template.unwrap_or_else(|| "%URL%".into())),
                "template" => EnvValue::Template(
                    template
                        .ok_or_else(|| format!("env {name}: the template generator needs a \"template\""))?,
                ),
                other => {
                    return Err(format!(
                        "env {name}: unknown generator {other:?} (the platform's: secret, url, template)"
                    ))
                }
            },
            RawEnv::Entry { value: Some(v), .. } => scalar(v)?,
            RawEnv::Entry { value: None, .. } => EnvValue::Remove,
        };
        if let EnvValue::Value(v) = &value {
            crate::config_vars::validate(&name, v).map_err(|e| format!("env: {e}"))?;
        }
        env.push((name, value));
    }
    let addons = raw
        .addons
        .into_iter()
        .map(|a| match a {
            RawAddon::Spec(s) => s,
            RawAddon::Entry { plan } => plan,
        })
        .collect();
    let mut formation = Vec::new();
    for (t, f) in raw.formation {
        if let Some(size) = &f.size {
            crate::platform_numbers::Size::named(size)
                .map_err(|e| format!("formation {t}: \"size\": {e}"))?;
        }
        formation.push((t, f.amount.or(f.quantity), f.size));
    }
    if let Some(stack) = &raw.stack {
        if crate::stack::info(stack).is_none() && stack != crate::stack::HOST {
            let names: Vec<&str> = crate::stack::STACKS.iter().map(|s| s.name).collect();
            return Err(format!(
                "\"stack\": {stack:?} is not a stack: choose {}, or {}",
                names.join(", "),
                crate::stack::HOST
            ));
        }
    }
    Ok(Manifest {
        file: file.to_string(),
        env,
        addons,
        formation,
        first_deploy: raw.scripts.first_deploy.filter(|s| !s.trim().is_empty()),
        postdeploy: raw.scripts.postdeploy.filter(|s| !s.trim().is_empty()),
        stack: raw.stack,
    })
}

/// Fill a `url`/`template` generator's template: `%URL%` (the app's URL) and `%APP%`.
pub fn fill(template: &str, app: &str, url: &str) -> String {
    template
        .replace("%URL%", url.trim_end_matches('/'))
        .replace("%APP%", app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_is_one_of_the_platforms_or_host() {
        let m = parse("scalingo.json", r#"{"stack": "scalingo-22"}"#).unwrap();
        assert_eq!(m.stack.as_deref(), Some("scalingo-22"));
        assert_eq!(parse("scalingo.json", "{}").unwrap().stack, None);
        let refused = parse("scalingo.json", r#"{"stack": "scalingo-99"}"#).unwrap_err();
        assert!(
            refused.contains("choose scalingo-26, scalingo-24, scalingo-22, or host"),
            "{refused}"
        );
    }

    #[test]
    fn the_documented_manifest_reads_whole() {
        let m = parse(
            "scalingo.json",
            r#"{
              "name": "demo",
              "env": {
                "ENVIRONMENT": {"value": "staging"},
                "ADMIN_URL": {"generator": "url", "template": "%URL%/admin"},
                "SECRET_KEY": {"generator": "secret"},
                "PLAIN": "x",
                "GONE": {"value": ""},
                "WORKERS": {"value": 3}
              },
              "addons": [{"plan": "postgresql:postgresql-starter-512", "options": {"version": "15"}}, "redis"],
              "formation": {"web": {"amount": 2, "size": "S"}},
              "scripts": {"first-deploy": "bin/seed"}
            }"#,
        )
        .unwrap();
        let env: BTreeMap<_, _> = m.env.into_iter().collect();
        assert_eq!(env["ENVIRONMENT"], EnvValue::Value("staging".into()));
        assert_eq!(env["ADMIN_URL"], EnvValue::Template("%URL%/admin".into()));
        assert_eq!(env["SECRET_KEY"], EnvValue::Secret);
        assert_eq!(env["PLAIN"], EnvValue::Value("x".into()));
        assert_eq!(env["GONE"], EnvValue::Remove);
        assert_eq!(env["WORKERS"], EnvValue::Value("3".into()));
        assert_eq!(m.addons, ["postgresql:postgresql-starter-512", "redis"]);
        assert_eq!(m.formation, [("web".to_string(), Some(2), Some("S".to_string()))]);
        assert_eq!(m.first_deploy.as_deref(), Some("bin/seed"));
        assert_eq!(
            fill("%URL%/admin", "a", "http://127.0.0.1:5000/"),
            "http://127.0.0.1:5000/admin"
        );
    }

    #[test]
    fn a_bad_manifest_says_what_is_wrong() {
        let e = parse("scalingo.json", r#"{"env": {"K": {"generator": "uuid"}}}"#).unwrap_err();
        assert!(e.contains("unknown generator \"uuid\""), "{e}");
        assert!(parse("scalingo.json", "{").is_err());
        // Keys become file names in ENV_DIR: only the platform's names pass.
        for key in ["/tmp/x", "../x", "a/../../b", "_X", "A-B"] {
            let text = format!("{{\"env\": {{{}: \"v\"}}}}", serde_json::to_string(key).unwrap());
            let e = parse("scalingo.json", &text).unwrap_err();
            assert!(e.contains("is invalid: use letters, digits and _"), "{key}: {e}");
        }
        let e = parse("scalingo.json", r#"{"formation": {"web": {"size": "4XL"}}}"#).unwrap_err();
        assert!(
            e.contains("formation web") && e.contains("S, M, L, XL, 2XL, 3XL"),
            "{e}"
        );
        let m = parse("scalingo.json", r#"{"formation": {"web": {"size": "3XL"}}}"#).unwrap();
        assert_eq!(m.formation, [("web".to_string(), None, Some("3XL".to_string()))]);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        std::fs::write(
            dir.path().join("app.json"),
            "{\"formation\": {\"worker\": {\"quantity\": 1}}}",
        )
        .unwrap();
        assert_eq!(read(dir.path()).unwrap().unwrap().file, "app.json");
        std::fs::write(dir.path().join("scalingo.json"), "[]").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("scalingo.json is not a valid manifest"), "{e}");
    }
}
