//! The OCI distribution API (registry v2), read-only: a manifest by tag or digest and a
//! blob by digest, behind the anonymous bearer tokens Docker Hub hands out (a 401 with
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, then a token from the
//! realm). Plain HTTP is allowed only to a loopback host: anything else could swap the
//! image on the way.
//!
//! It fetches bytes; verifying them against their digests is the caller's (`pull.rs`).

use std::io::Read;
use std::time::Duration;

use ureq::http::{Response, Uri};
use ureq::Body;

use super::error::StackError;
use crate::platform_numbers::DOCKER_HUB;

/// The manifest types asked for: OCI and Docker's, single images and indexes.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or token answer read whole (Docker Hub's limit for a manifest is
/// 4 MiB).
const SMALL_LIMIT: u64 = 4 * 1024 * 1024;

/// One repository of a registry, e.g. `scalingo/scalingo-26` on Docker Hub.
pub struct Registry {
    base: String,
    repository: String,
    agent: ureq::Agent,
    token: Option<String>,
    /// For messages: the stack being pulled and how people name the image.
    pub stack: String,
    pub reference: String,
}

/// A manifest as served.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// The `Docker-Content-Digest` the registry announced, if any.
    pub announced: Option<String>,
}

impl Registry {
    /// The repository `repository` of the registry at `base` (a URL without path, e.g.
    /// `http://127.0.0.1:5000`), for pulling `stack`.
    pub fn new(base: &str, repository: &str, stack: &str) -> Result<Registry, StackError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri = base.parse().map_err(|e| StackError::RegistryUrl {
            url: base.clone(),
            problem: format!("not a URL ({e})"),
        })?;
        if uri.host().is_none() || !uri.path().trim_matches('/').is_empty() {
            return Err(StackError::RegistryUrl {
                url: base,
                problem: "expected scheme://host[:port], such as http://127.0.0.1:5000".into(),
            });
        }
        check_transport(&base)?;
        let host = if base == DOCKER_HUB {
            "docker.io".to_string()
        } else {
            uri.authority().map(|a| a.to_string()).unwrap_or_default()
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A download that stalls this long is a dead connection, not a slow one.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("shipway/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Registry {
            reference: format!("{host}/{repository}:latest"),
            base,
            repository: repository.to_string(),
            agent,
            token: None,
            stack: stack.to_string(),
        })
    }

    /// The manifest (or index) `reference` (a tag or a digest) names.
    pub fn manifest(&mut self, reference: &str) -> Result<Manifest, StackError> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let response = self.get(&url, Some(MANIFEST_TYPES))?;
        let media_type = header(&response, "content-type").unwrap_or_default();
        let announced = header(&response, "docker-content-digest");
        let bytes = read_small(response, &url)?;
        Ok(Manifest {
            bytes,
            media_type,
            announced,
        })
    }

    /// A reader of blob `digest`, as stored (compressed for a layer).
    pub fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + Send>, StackError> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let response = self.get(&url, None)?;
        Ok(Box::new(response.into_body().into_reader()))
    }

    /// A blob read whole (a config), at most `SMALL_LIMIT` bytes.
    pub fn small_blob(&mut self, digest: &str) -> Result<Vec<u8>, StackError> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let response = self.get(&url, None)?;
        read_small(response, &url)
    }

    /// GET `url`, answering one token challenge; any status but 200 is an error.
    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Response<Body>, StackError> {
        let mut response = self.send(url, accept)?;
        if response.status().as_u16() == 401 {
            if let Some(challenge) = header(&response, "www-authenticate") {
                self.token = Some(self.fetch_token(&challenge)?);
                response = self.send(url, accept)?;
            }
        }
        match response.status().as_u16() {
            200 => Ok(response),
            404 => Err(StackError::NotFound {
                reference: self.reference.clone(),
                url: url.to_string(),
            }),
            status => {
                let detail = read_small(response, url)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).chars().take(300).collect::<String>())
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| format!(": {}", t.trim()))
                    .unwrap_or_default();
                Err(StackError::Status {
                    url: url.to_string(),
                    status,
                    detail,
                })
            }
        }
    }

    fn send(&self, url: &str, accept: Option<&str>) -> Result<Response<Body>, StackError> {
        let mut request = self.agent.get(url);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        request.call().map_err(|e| self.unreachable(url, &e))
    }

    fn unreachable(&self, url: &str, e: &ureq::Error) -> StackError {
        StackError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
            reference: self.reference.clone(),
            image: format!("{}:latest", self.repository),
            stack: self.stack.clone(),
        }
    }

    /// A token from the realm a 401 named (`Bearer realm="...",service="...",scope="..."`).
    fn fetch_token(&self, challenge: &str) -> Result<String, StackError> {
        let params = challenge
            .trim()
            .strip_prefix("Bearer ")
            .or_else(|| challenge.trim().strip_prefix("bearer "))
            .map(parse_challenge)
            .ok_or_else(|| StackError::Token {
                url: self.base.clone(),
                reason: format!("it asks for {challenge:?}, not a bearer token"),
            })?;
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let realm = get("realm").ok_or_else(|| StackError::Token {
            url: self.base.clone(),
            reason: format!("its challenge {challenge:?} names no realm"),
        })?;
        check_transport(&realm)?;
        let scope = get("scope").unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let mut query = vec![format!("scope={}", encode(&scope))];
        if let Some(service) = get("service") {
            query.insert(0, format!("service={}", encode(&service)));
        }
        let url = format!(
            "{realm}{}{}",
            if realm.contains('?') { '&' } else { '?' },
            query.join("&")
        );
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| self.unreachable(&url, &e))?;
        let status = response.status().as_u16();
        let bytes = read_small(response, &url)?;
        if status != 200 {
            return Err(StackError::Token {
                url,
                reason: format!("it answered {status}: {}", String::from_utf8_lossy(&bytes).trim()),
            });
        }
        let answer: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| StackError::Token {
            url: url.clone(),
            reason: format!("its answer is not JSON ({e})"),
        })?;
        answer
            .get("token")
            .or_else(|| answer.get("access_token"))
            .and_then(|t| t.as_str())
            .map(String::from)
            .ok_or_else(|| StackError::Token {
                url,
                reason: "its answer has no token".into(),
            })
    }
}

/// `https://`, or `http://` to a loopback host only.
pub fn check_transport(url: &str) -> Result<(), StackError> {
    let uri: Uri = url.parse().map_err(|e| StackError::RegistryUrl {
        url: url.to_string(),
        problem: format!("not a URL ({e})"),
    })?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = uri
                .host()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']');
            let loopback =
                host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(StackError::PlainHttp { url: url.to_string() })
            }
        }
        _ => Err(StackError::RegistryUrl {
            url: url.to_string(),
            problem: "expected an https:// URL (or http:// to a loopback host)".into(),
        }),
    }
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn read_small(response: Response<Body>, url: &str) -> Result<Vec<u8>, StackError> {
    response
        .into_body()
        .into_with_config()
        .limit(SMALL_LIMIT)
        .read_to_vec()
        .map_err(|e| StackError::Status {
            url: url.to_string(),
            status: 200,
            detail: format!(", but its body could not be read ({e})"),
        })
}

/// `key="value",key=value` pairs of a challenge.
fn parse_challenge(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.push((key, value.to_string()));
        rest = after.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    params
}

/// Percent-encoding of a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_gives_its_realm_service_and_scope() {
        let p = parse_challenge(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:scalingo/scalingo-26:pull""#,
        );
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[1], ("service".into(), "registry.example".into()));
        assert_eq!(p[2].1, "repository:scalingo/scalingo-26:pull");
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    #[test]
    fn plain_http_only_reaches_loopback() {
        assert!(check_transport("http://127.0.0.1:5000").is_ok());
        assert!(check_transport("http://[::1]:5000").is_ok());
        assert!(check_transport("http://localhost:5000").is_ok());
        assert!(check_transport("https://mirror.example").is_ok());
        let err = check_transport("http://mirror.example:5000").expect_err("plain http");
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(check_transport("ftp://x").is_err());
    }
}
