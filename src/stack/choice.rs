//! Which userland a deployment builds and runs in: the app's stack resolved, once per
//! build, to an image on disk (pulled first when it is missing), or the host's own (the
//! `host` stack, or the fallback when no image can be had, said in one line).
//!
//! It decides and says so; it neither pulls (`pull.rs`) nor enters the image (`sandbox`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Feedback, Image, Store, HOST};
use crate::sandbox::Sandbox;
use crate::settings::Settings;
use crate::ui::Output;

/// What a build, and the containers of its release, run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// `STACK`: the app's stack (also when its image could not be had).
    pub stack: String,
    /// The image, when there is one: else the host's own folders.
    pub image: Option<Image>,
}

impl Runtime {
    /// The host's userland, with `stack` as STACK.
    pub fn host(stack: &str) -> Runtime {
        Runtime {
            stack: stack.to_string(),
            image: None,
        }
    }

    pub fn rootfs(&self) -> Option<&Path> {
        self.image.as_ref().map(|i| i.rootfs.as_path())
    }

    pub fn digest(&self) -> Option<&str> {
        self.image.as_ref().map(|i| i.digest.as_str())
    }

    /// What a release recorded (`stack`, `stack_digest`): its containers run in the image
    /// it was built in, whatever the app's stack is now. A release made before stacks
    /// has neither, and runs on the host with the `stack` setting as STACK.
    pub fn of_release(settings: &Settings, stack: &str, digest: Option<&str>) -> Result<Runtime, String> {
        let stack = if stack.is_empty() {
            settings.stack.as_str()
        } else {
            stack
        };
        let Some(digest) = digest else {
            return Ok(Runtime::host(stack));
        };
        let dir = Store::of(&settings.home).image_dir(digest);
        if !dir.join("image.toml").is_file() {
            return Err(format!(
                "the image this release was built in ({stack}, {digest}) is no longer on disk: `shipway stacks-pull {stack}` brings the stack's image back, then deploy again"
            ));
        }
        Ok(Runtime {
            stack: stack.to_string(),
            image: Some(Image {
                digest: digest.to_string(),
                rootfs: dir.join("rootfs"),
            }),
        })
    }

    /// `STACK` on the host: the app's stack, or for the `host` stack, the `stack` setting
    /// (buildpacks know the platform's names only).
    pub fn stack_var(&self, settings: &Settings) -> String {
        if self.stack == HOST {
            settings.stack.clone()
        } else {
            self.stack.clone()
        }
    }

    /// For the deployment's output and records: `scalingo-26 (sha256:...)`.
    pub fn describe(&self) -> String {
        match (&self.image, self.stack.as_str()) {
            (Some(image), _) => format!("{} ({})", self.stack, image.digest),
            (None, HOST) => "host (this machine's own userland)".to_string(),
            (None, stack) => format!("{stack}, on this machine's own userland (no image)"),
        }
    }
}

/// The runtime of a build of an app on `stack`: its image, pulled first when missing;
/// else the host's userland. Either way one line (`Stack: ...`) says which, and for the
/// host what happened and the command that gets the image.
/// An image on disk that cannot be entered fails the build, naming it and the fix.
pub fn resolve(settings: &Settings, stack: &str, out: &Output) -> Result<Runtime, String> {
    let runtime = resolve_quietly(settings, stack, out);
    if let Some(image) = &runtime.image {
        check_entry(image)?;
    }
    if runtime.image.is_some() || stack == HOST {
        out.step(&format!("Stack: {}", runtime.describe()));
    }
    Ok(runtime)
}

/// Whether `image` can be entered, tried as the build will enter it: a sandbox of it
/// runs its `/bin/sh`. Else what the shim said, or why in its words. Tried before the
/// build, which would otherwise fail at its first script with a message about the
/// buildpack.
fn check_entry(image: &Image) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder for a check: {e}"))?;
    let out = crate::process::Spawn::new("/bin/sh", dir.path())
        .args(["-c", ":"])
        .env([("PATH", "/usr/bin:/bin")])
        .sandbox(crate::process::Plan {
            root: Some(image.rootfs.clone()),
            ..crate::process::Plan::app(dir.path())
        })
        .output(64 * 1024, std::time::Duration::from_secs(10), None)
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let first = said.lines().next().unwrap_or_default();
    Err(match first.strip_prefix("shipway: ") {
        Some(told) if told.starts_with("cannot enter the stack image") => told.to_string(),
        Some(told) => super::cannot_enter(&image.rootfs, told),
        None => super::cannot_enter(
            &image.rootfs,
            &format!("its /bin/sh {}", crate::process::Exit(out.status)),
        ),
    })
}

fn resolve_quietly(settings: &Settings, stack: &str, out: &Output) -> Runtime {
    if stack == HOST {
        return Runtime::host(stack);
    }
    let store = Store::of(&settings.home);
    let fallback = |why: &str| {
        out.step(&format!(
            "Stack: no {stack} image here ({why}): building and running on this machine's own userland, with STACK={stack}. To get the image: `shipway stacks-pull {stack}`, or offline `shipway stacks-import {stack} FILE`"
        ));
        Runtime::host(stack)
    };
    if let Err(why) = enterable(settings) {
        return fallback(why);
    }
    if let Some(image) = store.installed(stack) {
        return Runtime {
            stack: stack.to_string(),
            image: Some(image),
        };
    }
    let feedback = Feedback {
        out,
        bars: std::io::stderr().is_terminal(),
    };
    match super::pull::pull(&store, stack, &settings.stack_registry, &feedback) {
        Ok(_) => match store.installed(stack) {
            Some(image) => Runtime {
                stack: stack.to_string(),
                image: Some(image),
            },
            None => fallback("the pull left no complete image"),
        },
        Err(e) => fallback(&format!("it cannot be pulled: {}", e.brief())),
    }
}

/// Why no image can be entered here, if none can: it is entered through the sandbox.
fn enterable(settings: &Settings) -> Result<(), &'static str> {
    match Sandbox::resolve(settings.sandbox) {
        Ok(Sandbox::On) => Ok(()),
        Ok(Sandbox::Off { reason: None }) => {
            Err("SHIPWAY_SANDBOX=off: an image is entered through the /app sandbox")
        }
        _ => Err("this machine makes no /app sandbox to enter one"),
    }
}

/// What `shipway detect` runs in: the stack's image when it is on disk, else the host's
/// userland, said in one line. It pulls nothing: a detection is a quick look, and the
/// deployment pulls what it needs.
pub fn on_disk(settings: &Settings, stack: &str, out: &Output) -> Runtime {
    if stack == HOST {
        return Runtime::host(stack);
    }
    let image = enterable(settings).and_then(|()| {
        Store::of(&settings.home)
            .installed(stack)
            .ok_or("it was never pulled")
    });
    match image {
        Ok(image) => Runtime {
            stack: stack.to_string(),
            image: Some(image),
        },
        Err(why) => {
            out.detail(&format!(
                "note: no {stack} image here ({why}): detecting on this machine's own userland instead. A deployment pulls it first; `shipway stacks-pull {stack}` pulls it now"
            ));
            Runtime::host(stack)
        }
    }
}

/// The folders of a build that its scripts must see at their own paths inside an image.
pub fn build_binds(app_dir: &Path, scratch: &Path) -> Vec<PathBuf> {
    vec![app_dir.to_path_buf(), scratch.to_path_buf()]
}
