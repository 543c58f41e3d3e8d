//! `shipway restart [TYPE|CONTAINER]`: through the platform, new containers ready first.

use crate::error::Error;
use crate::platform::client;
use crate::platform::protocol::Request;
use crate::settings::Settings;

pub fn run(settings: &Settings, choice: &super::AppChoice, target: Option<String>) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    client::stream(
        &home,
        Request::Restart {
            app: app.name,
            target,
        },
    )
}
