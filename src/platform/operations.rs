//! The platform's everyday verbs on a running app: scale, restart, rollback, destroy.
//! Each is a rollout of a release that is already built (no build, no hook), under the
//! app's deployment lock, with new containers ready before old ones are stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::server::{lock, Platform};
use super::supervisor::AppRuntime;
use crate::container::{Container, ContainerSpec};
use crate::deployment::{Deployment, Status};
use crate::error::Error;
use crate::release::Release;
use crate::rollout;
use crate::state::AppDir;
use crate::ui::Output;

/// The platform's limit of containers per process type.
pub const MAX_PER_TYPE: u32 = 10;

fn fail(message: String) -> Error {
    Error::Platform { message }
}

impl Platform {
    fn current_release(&self, app: &AppDir) -> Result<Option<Release>, Error> {
        match app.current() {
            Some(n) => Ok(Some(Release::load(&app.release(n))?)),
            None => Ok(None),
        }
    }

    /// Start `specs` of the app's current `release`: the routed ones first, until they
    /// are ready; then the others, without waiting for them (README: a worker is not
    /// waited for, the crash policy watches it from the start, as after a deploy).
    fn start_ready(
        self: &Arc<Self>,
        app: &AppDir,
        rt: &Arc<AppRuntime>,
        release: &Release,
        specs: Vec<ContainerSpec>,
        out: &Output,
    ) -> Result<Vec<Container>, Error> {
        let config = app.load_config()?;
        let (routed, others): (Vec<_>, Vec<_>) = specs
            .into_iter()
            .partition(|s| crate::container::is_routed(&s.process_type));
        let mut ready = self
            .start_containers(app, rt, release, &config, routed, out)
            .map_err(|e| {
                out.error(&e.to_string());
                for line in e.details() {
                    out.error(&line);
                }
                fail("nothing was changed".into())
            })?;
        match self.with_plan(app, rt, release, &config, |plan, log_for| {
            rollout::start_unprobed(plan, others, log_for)
        }) {
            Ok(started) => ready.extend(started),
            Err(e) => {
                rollout::discard(ready, self.settings.grace_period);
                return Err(fail(format!("{e}: nothing was changed")));
            }
        }
        Ok(ready)
    }

    /// `scale web=2 worker=1`: start what is missing, stop what is beyond the new count.
    pub(super) fn scale(
        self: &Arc<Self>,
        name: &str,
        counts: BTreeMap<String, u32>,
        out: &Output,
    ) -> Result<(), Error> {
        let app = self.home.existing_app(name)?;
        for (t, n) in &counts {
            if *n > MAX_PER_TYPE {
                return Err(fail(format!(
                    "{t}={n}: the platform allows {MAX_PER_TYPE} containers per type at most"
                )));
            }
            if t == "postdeploy" {
                return Err(fail(
                    "postdeploy is the deployment hook: it is never scaled".into(),
                ));
            }
        }
        let rt = self.runtime(name)?;
        let _deploying = lock(&rt.deploying);
        let current = self.current_release(&app)?;
        if let Some(release) = &current {
            let unknown: Vec<&String> = counts
                .keys()
                .filter(|t| !release.process_types.contains_key(*t))
                .collect();
            if !unknown.is_empty() {
                let known: Vec<&String> = release
                    .process_types
                    .keys()
                    .filter(|t| *t != "postdeploy")
                    .collect();
                return Err(fail(format!(
                    "release {} has no process type {} (it has: {})",
                    release.number,
                    unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let Some(release) = current else {
            app.update_config(|c| c.formation.extend(counts.clone()))?;
            out.step("No release is deployed yet: the formation is saved for the next deploy");
            return Ok(());
        };
        let present: BTreeSet<String> = {
            let serving = lock(&rt.serving);
            serving
                .containers
                .iter()
                .map(|c| c.name.clone())
                .chain(serving.restarting.keys().cloned())
                .chain(serving.crashed.keys().cloned())
                .collect()
        };
        let mut missing = Vec::new();
        for (t, n) in &counts {
            for index in 1..=*n {
                let spec = ContainerSpec {
                    process_type: t.clone(),
                    index,
                    command: release.process_types[t].clone(),
                };
                if !present.contains(&spec.name()) {
                    missing.push(spec);
                }
            }
        }
        let started = if missing.is_empty() {
            Vec::new()
        } else {
            out.step(&format!(
                "Starting {}",
                missing.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
            ));
            self.start_ready(&app, &rt, &release, missing, out)?
        };
        app.update_config(|c| c.formation.extend(counts.clone()))?;
        let surplus = |t: &str, index: u32| counts.get(t).is_some_and(|n| index > *n);
        let mut serving = lock(&rt.serving);
        let stopped = self.replace(&rt, &mut serving, started, |s| surplus(&s.process_type, s.index));
        if !stopped.is_empty() {
            out.step(&format!("Stopping {}", stopped.join(", ")));
        }
        if counts.get("web") == Some(&0) {
            out.detail("web is scaled to 0: the router answers 503 until it is scaled up again");
        }
        Ok(())
    }

    /// `restart [TYPE|CONTAINER]`: new containers ready first, then the old ones stopped.
    pub(super) fn restart(
        self: &Arc<Self>,
        name: &str,
        target: Option<&str>,
        out: &Output,
    ) -> Result<(), Error> {
        let app = self.home.existing_app(name)?;
        let rt = self.runtime(name)?;
        let _deploying = lock(&rt.deploying);
        let Some(release) = self.current_release(&app)? else {
            return Err(fail(format!(
                "{name} has no release deployed yet: deploy it first"
            )));
        };
        let specs: Vec<ContainerSpec> = {
            let serving = lock(&rt.serving);
            serving
                .containers
                .iter()
                .map(|c| c.spec.clone())
                .chain(serving.restarting.values().map(|r| r.spec.clone()))
                .chain(serving.crashed.values().map(|c| c.spec.clone()))
                .collect()
        };
        let chosen: Vec<ContainerSpec> = specs
            .iter()
            .filter(|s| target.is_none_or(|t| s.process_type == t || s.name() == t))
            .cloned()
            .collect();
        if chosen.is_empty() {
            let names: BTreeSet<String> = specs
                .iter()
                .flat_map(|s| [s.process_type.clone(), s.name()])
                .collect();
            return Err(fail(match target {
                Some(t) => format!(
                    "{name} has no container or type {t:?} running (it has: {})",
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ),
                None => format!("{name} has no container to restart: scale a process type up first"),
            }));
        }
        let names: BTreeSet<String> = chosen.iter().map(|s| s.name()).collect();
        out.step(&format!(
            "Restarting {}",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        let fresh = self.start_ready(&app, &rt, &release, chosen, out)?;
        let mut serving = lock(&rt.serving);
        self.replace(&rt, &mut serving, fresh, |s| names.contains(&s.name()));
        Ok(())
    }

    /// `rollback [ID]`: roll out the release of an earlier successful deployment again,
    /// from its kept slug, without building.
    pub(super) fn rollback(
        self: &Arc<Self>,
        name: &str,
        id: Option<&str>,
        out: &Output,
    ) -> Result<Status, Error> {
        let app = self.home.existing_app(name)?;
        let rt = self.runtime(name)?;
        let _deploying = lock(&rt.deploying);
        let current = app.current();
        let history = Deployment::list(&app);
        let target = match id {
            Some(id) => history
                .iter()
                .find(|d| d.id == id || d.id.starts_with(id))
                .ok_or_else(|| {
                    fail(format!(
                        "{name} has no deployment {id}: `shipway deployments -a {name}` lists them"
                    ))
                })?,
            None => history
                .iter()
                .rev()
                .find(|d| d.status() == Some(Status::Success) && d.release.is_some() && d.release != current)
                .ok_or_else(|| {
                    fail(format!(
                        "{name} has no earlier successful deployment to roll back to"
                    ))
                })?,
        };
        let Some(number) = target
            .release
            .filter(|_| target.status() == Some(Status::Success))
        else {
            return Err(fail(format!(
                "deployment {} did not succeed: only a successful one can be rolled back to",
                target.id
            )));
        };
        if !app.release(number).join("release.toml").exists() {
            return Err(fail(format!(
                "release {number} of deployment {} was pruned (releases_kept = {})",
                target.id, self.settings.releases_kept
            )));
        }
        let release = Release::load(&app.release(number))?;
        let mut record = Deployment::new(
            name,
            &format!("rollback to release {number} (deployment {})", target.id),
            None,
        );
        record.record_release(&release);
        record.set_status(Status::Starting, &app)?;
        out.step(&format!(
            "Rolling back {name} to release {number} (deployment {}), without rebuilding",
            target.id
        ));
        if release.process_types.contains_key("postdeploy") {
            out.detail("the postdeploy hook is not run again: a rollback ships no new code");
        }
        let config = app.load_config()?;
        match self.roll_out_built(&app, &rt, &release, &config, out) {
            Ok(()) => {
                app.set_current(number)?;
                record.set_status(Status::Success, &app)?;
                Ok(Status::Success)
            }
            Err(e) => {
                out.error(&e.to_string());
                for line in e.details() {
                    out.error(&line);
                }
                record.set_status(e.status(), &app)?;
                Ok(e.status())
            }
        }
    }

    /// `destroy`: stop the app's routers and containers, then remove its state.
    pub(super) fn destroy(self: &Arc<Self>, name: &str) -> Result<(), Error> {
        let app = self.home.existing_app(name)?;
        if let Some(rt) = self.forget(name) {
            let _deploying = lock(&rt.deploying);
            let containers = lock(&rt.serving).dismantle();
            crate::container::stop_all(containers, self.settings.grace_period);
        }
        std::fs::remove_dir_all(&app.root).map_err(|source| Error::Io {
            action: "remove",
            path: app.root.clone(),
            source,
        })
    }
}
