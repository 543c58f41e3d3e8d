//! `stacks`, `stacks-pull`, `stacks-import`: the platform's stacks and their images in
//! this home (`stack`), listed, pulled, imported, pruned.

use std::io::IsTerminal;
use std::path::Path;

use super::tables::{self, StackRow};
use crate::error::{exit, Error};
use crate::settings::Settings;
use crate::stack::{self, Feedback, Installed, Store};
use crate::ui::Output;
use crate::units::{human_bytes, human_duration};

pub fn list(settings: &Settings, json: bool, prune: bool) -> Result<i32, Error> {
    let home = super::home(settings)?;
    let store = Store::of(&home.root);
    if prune {
        let pruned = stack::prune::prune(&store, &home)?;
        let out = Output::stdout();
        if pruned.images.is_empty() {
            out.step("Every stack image on disk is used by an app: nothing to remove");
        }
        for (digest, size) in &pruned.images {
            out.step(&format!("Removed {digest} ({})", human_bytes(*size)));
        }
        if !pruned.names.is_empty() {
            out.detail(&format!("No longer pulled: {}", pruned.names.join(", ")));
        }
        if pruned.scratch > 0 {
            out.detail(&format!("Removed {} unfinished unpack(s)", pruned.scratch));
        }
        return Ok(exit::SUCCESS);
    }
    let rows: Vec<StackRow> = stack::STACKS
        .iter()
        .map(|s| {
            let image = store
                .installed(s.name)
                .and_then(|i| store.image(&i.digest).map(|r| (i, r)));
            let pulled_at = image
                .as_ref()
                .and_then(|_| store.pulled(s.name))
                .map(|p| crate::units::utc_ms(p.at_ms));
            StackRow {
                name: s.name,
                base: format!("Ubuntu {}", s.ubuntu),
                status: s.support,
                default: s.name == crate::platform_numbers::DEFAULT_STACK,
                pulled: image.is_some(),
                digest: image.as_ref().map(|(i, _)| i.digest.clone()),
                disk_size: image.as_ref().map(|(_, r)| r.size),
                source: image.as_ref().map(|(_, r)| r.source.clone()),
                pulled_at,
            }
        })
        .collect();
    if json {
        tables::print_json(&rows);
    } else {
        tables::stacks(&rows);
    }
    Ok(exit::SUCCESS)
}

pub fn pull(settings: &Settings, name: &str) -> Result<i32, Error> {
    let home = super::home(settings)?;
    let store = Store::of(&home.root);
    let out = Output::stdout();
    let feedback = feedback(&out);
    let installed = stack::pull::pull(&store, name, &settings.stack_registry, &feedback)?;
    report(&out, name, &installed);
    Ok(exit::SUCCESS)
}

pub fn import(settings: &Settings, name: &str, file: &Path) -> Result<i32, Error> {
    let home = super::home(settings)?;
    let store = Store::of(&home.root);
    let out = Output::stdout();
    let feedback = feedback(&out);
    let installed = stack::import::import(&store, name, file, &feedback)?;
    report(&out, name, &installed);
    Ok(exit::SUCCESS)
}

/// Byte bars per layer when stderr is a terminal; nothing in a pipe.
fn feedback(out: &Output) -> Feedback<'_> {
    Feedback {
        out,
        bars: std::io::stderr().is_terminal(),
    }
}

fn report(out: &Output, name: &str, installed: &Installed) {
    let r = &installed.record;
    if !installed.unpacked {
        out.detail(&format!("{} is on disk already: nothing downloaded", r.digest));
    } else {
        let took = std::time::Duration::from_millis(r.unpack_ms.max(1));
        let rate = r.size as f64 / 1e6 / took.as_secs_f64();
        out.detail(&format!(
            "{} read, {} unpacked in {} ({rate:.0} MB/s)",
            human_bytes(r.read),
            human_bytes(r.size),
            human_duration(took)
        ));
        if r.rootless && r.setid_dropped > 0 {
            out.detail(&format!(
                "as an ordinary user: every file is yours, and {} setuid/setgid bit(s) were dropped",
                r.setid_dropped
            ));
        }
        if r.devices_skipped > 0 {
            out.detail(&format!(
                "{} device node(s) left out: containers get their own /dev",
                r.devices_skipped
            ));
        }
    }
    out.step(&format!("{name} is {} ({}/{})", r.digest, r.os, r.architecture));
}
