//! `shipway buildpacks [--clear]`: the buildpacks fetched by URL, kept in
//! `SHIPWAY_HOME/buildpacks/` for builds that cannot reach their server.

use super::tables;
use crate::buildpack_cache::BuildpackCache;
use crate::error::{exit, Error};
use crate::settings::Settings;
use crate::ui::Output;

pub fn run(settings: &Settings, clear: bool, json: bool) -> Result<i32, Error> {
    let cache = BuildpackCache::new(&super::home(settings)?.root);
    if clear {
        let removed = cache.clear().map_err(|e| Error::Platform {
            message: e.to_string(),
        })?;
        Output::stdout().step(&format!(
            "Removed {removed} cached buildpack(s): the next build fetches what it uses again"
        ));
        return Ok(exit::SUCCESS);
    }
    let entries = cache.list();
    if json {
        let rows: Vec<tables::BuildpackRow> = entries.iter().map(tables::BuildpackRow::from).collect();
        tables::print_json(&rows);
    } else {
        tables::buildpacks(&entries);
    }
    Ok(exit::SUCCESS)
}
