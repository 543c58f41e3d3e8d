//! `shipway stacks-set STACK`: the app's stack, as the platform changes it: from the next
//! deployment on (a restart or a rollback keeps the image its release was built in), and
//! with the build cache reset, since what a buildpack cached was built for the old stack.
//!
//! It writes app.toml and removes the cache; it neither pulls nor deploys.

use crate::error::{exit, Error};
use crate::platform::events::Event;
use crate::settings::Settings;
use crate::stack::{self, Support, HOST};
use crate::ui::Output;

pub fn run(settings: &Settings, choice: &super::AppChoice, stack: &str) -> Result<i32, Error> {
    let known = stack == HOST || stack::info(stack).is_some();
    if !known {
        let names: Vec<&str> = stack::STACKS.iter().map(|s| s.name).collect();
        return Err(Error::Usage(format!(
            "{stack:?} is not a stack: choose {}, or {HOST} (this machine's own userland, no image); `shipway stacks` lists them",
            names.join(", ")
        )));
    }
    let (_, app) = super::existing_app(settings, choice)?;
    let before = app.update_config(|c| {
        let before = c.stack().to_string();
        c.stack = Some(stack.to_string());
        before
    })?;
    let out = Output::stdout();
    if before == stack {
        out.step(&format!("{} is on {stack} already: nothing changed", app.name));
        return Ok(exit::SUCCESS);
    }
    out.step(&format!(
        "{} moves from {before} to {stack} at its next deployment (a restart keeps the running release on {before})",
        app.name
    ));
    let event = Event::StackChanged {
        from: before.clone(),
        to: stack.to_string(),
    };
    super::env::recorded(&app, [event], &out);
    if stack::info(stack).is_some_and(|s| s.support == Support::Deprecated) {
        out.detail(&format!(
            "note: {stack} is deprecated on the platform: new deployments there will be refused one day"
        ));
    }
    let cache = app.cache();
    if cache.exists() {
        std::fs::remove_dir_all(&cache).map_err(|source| Error::io("remove", cache.clone(), source))?;
    }
    out.step("The build cache was reset: what buildpacks cached was built for the old stack");
    if stack != HOST && stack::Store::of(&settings.home).installed(stack).is_none() {
        out.detail(&format!(
            "{stack} is not pulled yet: the next deployment pulls it (`shipway stacks-pull {stack}` does it now)"
        ));
    }
    Ok(exit::SUCCESS)
}
