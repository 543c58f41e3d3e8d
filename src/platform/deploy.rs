//! One deployment, top to bottom, in one place (PLATFORM.md §4): the app's lock, the
//! routers bound, the build through the pipeline (source, build, release), an app's first
//! deployment (scalingo.json, addons), the rollout (containers ready, then the postdeploy
//! hook), the switch, and the records. Its arguments come as one [`DeployArgs`] from the
//! client's request; what may call it off (Ctrl-C, `down`, `destroy`) is one [`Cancel`].
//!
//! It runs on the job's worker thread and changes what serves the app only by asking the
//! supervisor (the switch), which owns the routers and the containers.

use std::time::Instant;

use super::cancel::Cancel;
use super::events::Event;
use super::jobs::Worker;
use super::message::DeployArgs;
use super::routing::Bound;
use crate::deployment::{Deployment, Status};
use crate::error::Error;
use crate::pipeline::{self, ReleaseRequest};
use crate::rollout::{self, Plan};
use crate::state::AppDir;
use crate::ui::Output;
use crate::units::human_duration;

impl Worker {
    /// `deploy`: a deployment, top to bottom (PLATFORM.md §4). Every step returns a
    /// value the next takes; any failure ends it with the platform's status, the running
    /// release untouched.
    pub(super) fn deploy(
        &self,
        what: DeployArgs,
        out: &Output,
        called_off: &Cancel,
    ) -> Result<Status, Error> {
        let cancel = &called_off.signal;
        let DeployArgs {
            input: what,
            port,
            env: _,
            source,
        } = what;
        let name = self.dir.name.as_str();
        let (input, git_ref) = (what.path.as_path(), what.git_ref.as_deref());
        // Created when the deployment was admitted, and opened then (`Worker::dir`).
        let app = self.dir.clone();
        // Also exclude a `shipway build` of the same app in another process.
        let Some(_flock) = super::turn::app_lock(&app, cancel)? else {
            super::turn::write_aborted(&app, source.as_deref(), input, git_ref)?;
            out.line("<-- Deployment aborted while queued: nothing was built -->");
            return Ok(Status::Aborted);
        };
        // A router port held by another program fails here, before anything is built.
        let bound = self.routers(port, false)?;

        let source = source.unwrap_or_else(|| input.display().to_string());
        let mut deployment = Deployment::new(name, &source, git_ref);
        let log_path = Deployment::log_path(&app, &deployment.id);
        let log = crate::deployment_log::DeploymentLog::open(&log_path)
            .map_err(|source| Error::io("write", log_path.clone(), source))?;
        out.attach_destination(Box::new(log));
        deployment.set_status(Status::Building, &app)?;
        out.line(&format!(
            "<-- Start deployment of {name} (deployment {}) -->",
            deployment.id
        ));
        // An app keeps the router port of its first deploy: its URL does not move.
        if let (Some(asked), Some(kept)) = (port.filter(|p| *p != 0), bound.ports.web) {
            if asked != kept {
                out.detail(&format!(
                    "note: {name} keeps its router port {kept}, chosen at its first deploy; the port setting {asked} applies to a new app only"
                ));
            }
        }

        let config = app.load_config()?;
        let number = app.release_numbers().last().copied().unwrap_or(0) + 1;
        let request = ReleaseRequest {
            app: name.to_string(),
            input: what.clone(),
            buildpacks: Vec::new(),
            config_vars: config.config_vars.clone(),
            release_dir: app.release(number),
            number,
            cache_dir: app.cache(),
            request_id: deployment.id.clone(),
            stack: config.stack().to_string(),
        };
        // An app's first deployment: scalingo.json's env and addons before the build; the
        // manifest read then serves again after it.
        let manifest = std::cell::RefCell::new(None);
        // The commit the source step found: the deployment's git_ref, as the platform
        // records a deployment's commit SHA, whether the build then succeeds or not.
        let commit = std::cell::RefCell::new(None);
        let first_build = |files: &std::path::Path, source: &crate::source::SourceInfo| {
            commit.replace(source.version.clone());
            let read = self
                .before_first_build(&app, files, &bound.url, out)
                .map_err(|e| e.to_string())?;
            Ok(match read {
                Some((m, config_vars, stack)) => {
                    *manifest.borrow_mut() = Some(m);
                    pipeline::Changed {
                        config_vars: Some(config_vars),
                        stack: Some(stack),
                    }
                }
                None => pipeline::Changed::default(),
            })
        };
        let released = pipeline::release(&request, &self.ctx.settings, out, cancel, Some(&first_build));
        if let Some(sha) = commit.take() {
            deployment.git_ref = Some(sha);
        }
        let released = match released {
            Ok(b) => b,
            Err(e) => {
                out.error(&e.to_string());
                let status = if e.was_cancelled() {
                    Status::Aborted
                } else {
                    Status::BuildError
                };
                deployment.set_status(status, &app)?;
                self.event(Event::Deployment {
                    deployment_id: deployment.id.clone(),
                    status: status.to_string(),
                    release: None,
                });
                out.line(&called_off.closing(
                    name,
                    status,
                    format!("<-- Deployment {status}: the running release, if any, is untouched -->"),
                ));
                return Ok(status);
            }
        };
        // Removed beside the boot rather than before it. Should the platform stop first,
        // its next start sweeps the `.build-*` folder left.
        let scratch = released.scratch;
        std::thread::spawn(move || drop(scratch));
        let release = released.release;
        deployment.record_release(&release);
        // An app's first deployment: scalingo.json's formation and bin/release's addons.
        let first_hook = match self.first_deployment(&app, &release, manifest.take(), out) {
            Ok(hook) => hook,
            Err(e) => {
                out.error(&e.to_string());
                deployment.set_status(Status::BuildError, &app)?;
                self.event(Event::Deployment {
                    deployment_id: deployment.id.clone(),
                    status: Status::BuildError.to_string(),
                    release: Some(release.number),
                });
                out.line("<-- Deployment build-error: nothing was started -->");
                return Ok(Status::BuildError);
            }
        };
        let config = app.load_config()?;
        for (k, v) in [
            ("intake", released.timings.intake),
            ("detect", released.timings.detect),
            ("compile", released.timings.compile),
        ] {
            deployment.timings.insert(k.into(), v.as_millis() as u64);
        }
        // The slug is already where it runs from: pushing is only a record here.
        deployment.set_status(Status::Pushing, &app)?;
        out.line("Build complete, shipping your container...");
        deployment.set_status(Status::Starting, &app)?;

        let wants_tcp = release.process_types.contains_key("tcp");
        let Bound { tcp_url, .. } = match self.routers(port, wants_tcp) {
            Ok(bound) => bound,
            Err(e) => {
                out.error(&e.to_string());
                deployment.set_status(Status::CrashedError, &app)?;
                self.event(Event::Deployment {
                    deployment_id: deployment.id.clone(),
                    status: Status::CrashedError.to_string(),
                    release: Some(release.number),
                });
                return Ok(Status::CrashedError);
            }
        };
        out.line(" Waiting for your application to boot...");
        let boot_started = Instant::now();
        let outcome = self.with_plan(&app, &release, &config, |plan, log_for| {
            let containers = rollout::start(plan, log_for, out, cancel)?;
            deployment
                .timings
                .insert("boot".into(), boot_started.elapsed().as_millis() as u64);
            // scripts.first-deploy of scalingo.json is the first deployment's hook.
            let mut first = release.clone();
            if let Some(command) = &first_hook {
                first.process_types.insert("postdeploy".into(), command.clone());
            }
            let hook_plan = Plan {
                release: &first,
                ..*plan
            };
            match rollout::run_hook(&hook_plan, out, cancel) {
                Ok(hook) => {
                    if let Some(h) = hook {
                        deployment.timings.insert("hook".into(), h.as_millis() as u64);
                    }
                    Ok(containers)
                }
                Err(e) => {
                    rollout::discard(containers, self.ctx.settings.grace_period);
                    Err(e)
                }
            }
        });
        let containers = match outcome {
            Ok(c) => c,
            Err(e) => {
                let status = e.status();
                out.error(&e.to_string());
                for line in e.details() {
                    out.error(&line);
                }
                deployment.set_status(status, &app)?;
                self.event(Event::Deployment {
                    deployment_id: deployment.id.clone(),
                    status: status.to_string(),
                    release: Some(release.number),
                });
                out.line(&called_off.closing(
                    name,
                    status,
                    format!(
                        "<-- Deployment {status}: the running release, if any, keeps serving, untouched -->"
                    ),
                ));
                return Ok(status);
            }
        };

        // The switch: the supervisor, the routers' one writer (routing.rs), adopts the
        // containers and points the routers at them before it answers; from then on every
        // new request goes to the new release, and the old containers are being stopped.
        let switch_started = Instant::now();
        let old = self.switch(release.number, containers)?;
        app.set_current(release.number)?;
        deployment
            .timings
            .insert("switch".into(), switch_started.elapsed().as_millis() as u64);
        deployment.set_status(Status::Success, &app)?;
        if old > 0 {
            out.step(&format!(
                "Stopping {old} old container(s): SIGTERM, then SIGKILL after {}",
                crate::settings::render_duration(self.ctx.settings.grace_period)
            ));
        }
        self.prune_releases(&app, release.number);
        self.event(Event::Deployment {
            deployment_id: deployment.id.clone(),
            status: Status::Success.to_string(),
            release: Some(release.number),
        });
        if let Some(ms) = deployment.duration_ms {
            out.line(&format!(
                " Deployment success in {}",
                human_duration(std::time::Duration::from_millis(ms))
            ));
        }
        if let Some(t) = &tcp_url {
            out.line(&format!(" <-- {t} (tcp) -->"));
        }
        out.line(&format!(" <-- {} -->", bound.url));
        Ok(Status::Success)
    }

    /// Keep the newest `releases_kept` releases, and always the current one.
    fn prune_releases(&self, app: &AppDir, current: u32) {
        let numbers = app.release_numbers();
        let excess = numbers
            .len()
            .saturating_sub(self.ctx.settings.releases_kept.max(1));
        for n in numbers.into_iter().take(excess) {
            if n != current {
                let _ = std::fs::remove_dir_all(app.release(n));
            }
        }
    }
}
