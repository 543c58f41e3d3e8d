//! `shipway archive`: the `.tar.gz` that `scalingo deploy` takes, made from exactly what
//! `shipway deploy` would take from the same source (intake), under one top folder.

use std::path::{Path, PathBuf};

use crate::error::{exit, Error};
use crate::io_error::io;
use crate::source::{self, SourceError};
use crate::ui::Output;
use crate::units::human_bytes;

fn source_error(e: SourceError) -> Error {
    Error::Usage(format!("cannot take the source: {e}"))
}

/// `shipway archive [SOURCE] [-a APP] [--ref REF] [-o FILE]`.
pub fn write(
    source: Option<PathBuf>,
    choice: &super::AppChoice,
    git_ref: Option<String>,
    output: Option<PathBuf>,
) -> Result<i32, Error> {
    let input = source.unwrap_or_else(|| PathBuf::from("."));
    let input = std::path::absolute(&input).map_err(io("resolve", &input))?;
    if !input.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a folder: `shipway archive` packs an app's folder (an archive, .war or .jar deploys as it is)",
            input.display()
        )));
    }
    let name = choice.for_source(&input)?.name;
    let output = output.unwrap_or_else(|| PathBuf::from(format!("{name}.tar.gz")));
    let output = std::path::absolute(&output).map_err(io("resolve", &output))?;
    let out_dir = output.parent().unwrap_or(Path::new("/")).to_path_buf();

    let scratch = tempfile::Builder::new()
        .prefix(".shipway-archive-")
        .tempdir()
        .map_err(io("create a temporary folder for", &output))?;
    let app_dir = scratch.path().join(&name);
    let info = source::intake(&input, git_ref.as_deref(), None, &app_dir).map_err(source_error)?;

    // An earlier archive written inside the source is not part of the app.
    let inside = input
        .canonicalize()
        .ok()
        .zip(out_dir.canonicalize().ok())
        .and_then(|(src, dir)| {
            let rel = dir.strip_prefix(&src).ok()?.join(output.file_name()?);
            Some(rel)
        });
    if let Some(rel) = &inside {
        let copied = app_dir.join(rel);
        if copied.is_file() {
            std::fs::remove_file(&copied).map_err(io("remove", &copied))?;
        }
    }

    let tmp = tempfile::Builder::new()
        .prefix(".shipway-archive-")
        .suffix(".tmp")
        .tempfile_in(&out_dir)
        .map_err(io("write in", &out_dir))?;
    let mut file = tmp.reopen().map_err(io("write", tmp.path()))?;
    let stats = source::pack_tar_gz(&app_dir, &name, &mut file).map_err(source_error)?;
    file.sync_all().map_err(io("write", tmp.path()))?;
    tmp.persist(&output)
        .map_err(|e| Error::io("write", output.clone(), e.error))?;

    let out = Output::stdout();
    out.step(&format!("Source: {}", info.description));
    if let Some(v) = &info.version {
        out.detail(&format!("SOURCE_VERSION={v}"));
    }
    if let Some(ignored) = &info.ignored {
        out.detail(&format!("note: {}", ignored.describe()));
    }
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    out.step(&format!(
        "Wrote {} ({}): folder {name}/ with {} files, {} unpacked",
        output.display(),
        human_bytes(size),
        stats.files,
        human_bytes(stats.bytes)
    ));
    out.detail(&format!(
        "deploy it with `shipway deploy {0} -a {name}`, or on the platform `scalingo --app {name} deploy {0}`",
        output.display()
    ));
    if inside.is_some() {
        out.detail(&format!(
            "note: {} is inside the source: add it to .gitignore, or a deploy of the folder carries it",
            output.display()
        ));
    }
    Ok(exit::SUCCESS)
}
