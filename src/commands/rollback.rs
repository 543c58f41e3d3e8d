//! `shipway rollback [ID]`: through the platform, an earlier release rolled out again.

use crate::error::Error;
use crate::platform::client;
use crate::platform::protocol::Request;
use crate::settings::Settings;

pub fn run(settings: &Settings, choice: &super::AppChoice, id: Option<String>) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    client::stream(
        &home,
        Request::Rollback {
            app: app.name,
            deployment: id,
        },
    )
}
