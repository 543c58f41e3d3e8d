//! shipway: rehearse a Scalingo deployment (Heroku classic buildpack API) on a Linux laptop.

pub mod source;

pub fn run() -> i32 {
    0
}
