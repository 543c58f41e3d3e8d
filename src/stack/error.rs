//! What can go wrong getting a stack image: each variant names the image, the blob or the
//! address concerned, and what to do. It does not decide anything. A failed file
//! operation is the project's one `IoError` shape (`io_error.rs`).

use crate::io_error::IoError;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0:?} is not a stack of the platform: choose scalingo-26, scalingo-24 or scalingo-22 (`shipway stacks` lists them)")]
    Unknown(String),
    #[error("the `host` stack is this machine's own userland: there is no image to get")]
    Host,
    #[error("SHIPWAY_STACK_REGISTRY={url:?}: {problem}")]
    RegistryUrl { url: String, problem: String },
    #[error(
        "{url}: plain HTTP is allowed only for a loopback host (127.0.0.1, ::1, localhost); use https://"
    )]
    PlainHttp { url: String },
    #[error("cannot reach the stack registry at {url} ({reason}) to pull {reference}.\nOffline? Save the image where the network allows (`docker save {image} > {stack}.tar`) and import it here: `shipway stacks-import {stack} {stack}.tar`")]
    Unreachable {
        url: String,
        reason: String,
        reference: String,
        image: String,
        stack: String,
    },
    #[error("the stack registry answered {status} for {url}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{reference} is not in the stack registry ({url} answered 404)")]
    NotFound { reference: String, url: String },
    #[error("the stack registry's token service at {url} refused: {reason}")]
    Token { url: String, reason: String },
    #[error("{what} {digest} does not match its digest: got {actual} ({size} bytes). The download or the file is damaged; nothing was kept")]
    DigestMismatch {
        what: String,
        digest: String,
        actual: String,
        size: u64,
    },
    #[error("{what} {digest} has {actual} bytes, not the {expected} its descriptor says; nothing was kept")]
    SizeMismatch {
        what: String,
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: {problem}")]
    Invalid { what: String, problem: String },
    #[error("{reference} has no image for this machine (linux/{arch}); it has: {available}")]
    NoPlatform {
        reference: String,
        arch: String,
        available: String,
    },
    #[error("layer {digest}: entry {entry:?} {problem}; the image is refused")]
    Escape {
        digest: String,
        entry: String,
        problem: &'static str,
    },
    #[error("layer {digest}: {problem}")]
    Layer { digest: String, problem: String },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl StackError {
    /// Why, in a few words, for a line that says what was done instead: the registry's
    /// host and what went wrong, or the first line of the error.
    pub fn brief(&self) -> String {
        match self {
            StackError::Unreachable { url, reason, .. } => {
                let host = url.split("://").nth(1).unwrap_or(url);
                let host = host.split('/').next().unwrap_or(host);
                format!("{host} is unreachable: {reason}")
            }
            other => other.to_string().lines().next().unwrap_or_default().to_string(),
        }
    }
}
