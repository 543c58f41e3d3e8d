//! shipway: rehearse a Scalingo deployment (Heroku classic buildpack API) on a Linux laptop.

pub mod router;
pub mod source;

pub fn run() -> i32 {
    0
}
