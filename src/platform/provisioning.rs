//! The jobs that change an app's addons (`addons-add`, `addons-remove`), start their
//! servers again when the platform starts, and apply what an app's first deployment
//! brings (scalingo.json, bin/release's `addons:`). A job provisions or stops a server;
//! the supervisor owns it while it runs ([`Message::AddonUp`], [`Message::AddonTake`]).

use std::path::Path;

use super::events::Event;
use super::jobs::{fail, Worker};
use super::message::Message;
use crate::addon::{self, AddonError, Kind};
use crate::config_vars::ConfigVars;
use crate::error::Error;
use crate::manifest::{self, EnvValue, Manifest};
use crate::platform_numbers::MAX_PER_TYPE;
use crate::release::Release;
use crate::state::{AppDir, ManifestStage};
use crate::ui::Output;

impl Worker {
    /// `addons-add ADDON [PLAN]`: the server provisioned and running, the config vars
    /// set, the app restarted so that its containers see them.
    pub(super) fn addons_add(&self, spec: &str, plan: Option<String>, out: &Output) -> Result<(), Error> {
        let app = self.existing()?;
        let (kind, from_spec) = addon::parse_spec(spec).map_err(|e| fail(e.to_string()))?;
        self.provision(app, kind, plan.or(from_spec), None, out)?;
        self.restart_for_addons(app, out)
    }

    /// `addons-remove ID`: the server stopped, its data deleted, its config vars unset,
    /// the app restarted.
    pub(super) fn addons_remove(&self, id: &str, out: &Output) -> Result<(), Error> {
        let app = self.existing()?;
        let found = addon::find(app, id).map_err(|e| fail(e.to_string()))?;
        let servers = self.supervisor.call(|reply| Message::AddonTake {
            app: self.dir.name.clone(),
            id: Some(found.id.clone()),
            reply,
        })?;
        super::life::stop_servers(servers);
        addon::remove(app, &found.id).map_err(|e| fail(e.to_string()))?;
        // An alias the user pointed elsewhere since is theirs: only the addon's own go.
        let url = found.url();
        let removed = app.update_config(|c| {
            let names: Vec<String> = found
                .kind
                .vars()
                .iter()
                .filter(|v| c.config_vars.get(**v) == Some(&url))
                .map(|v| v.to_string())
                .collect();
            for n in &names {
                c.config_vars.remove(n);
            }
            names
        })?;
        let mut removed = removed;
        removed.sort();
        self.event(Event::DeleteAddon {
            id: found.id.clone(),
            addon: found.kind.name().to_string(),
        });
        out.step(&format!(
            "Addon {} ({}) removed, with its data",
            found.kind, found.id
        ));
        out.detail(&format!("Modified variables: [{}]", removed.join(" ")));
        self.restart_for_addons(app, out)
    }

    /// Provision one addon, hand its server to the supervisor and set its config vars.
    /// `why` says who asked (bin/release, scalingo.json) when it was not the user.
    fn provision(
        &self,
        app: &AppDir,
        kind: Kind,
        plan: Option<String>,
        why: Option<&str>,
        out: &Output,
    ) -> Result<(), Error> {
        // Checked before it is printed: a plan may hold anything (a newline, 100 KB).
        let shown = addon::plan_for(kind, plan.as_deref()).map_err(|e| provision_error(kind, e))?;
        out.step(&format!(
            "Provisioning addon {kind} (plan {shown}){}",
            why.map(|w| format!(", requested by {w}")).unwrap_or_default()
        ));
        let sink = self.ctx.container_log(&self.log, &self.dir.name, kind.name());
        let server = addon::provision(
            app,
            kind,
            plan.as_deref(),
            &self.ctx.settings,
            sink,
            &self.ctx.stopping,
        )
        .map_err(|e| provision_error(kind, e))?;
        let added = server.addon.clone();
        // The alias (DATABASE_URL) stays as it is when another addon or the user set it:
        // a PostgreSQL and a MySQL addon cannot both be DATABASE_URL.
        let set = app.update_config(|c| {
            let [main, alias] = kind.vars();
            let mut kept = None;
            let mut vars = vec![(main.to_string(), added.url())];
            match c.config_vars.get(alias) {
                Some(v) if *v != added.url() => kept = Some(alias),
                _ => vars.push((alias.to_string(), added.url())),
            }
            c.config_vars.extend(vars.clone());
            (vars, kept)
        });
        let (vars, kept) = match set {
            Ok(v) => v,
            Err(e) => {
                server.stop();
                let _ = addon::remove(app, &added.id);
                return Err(e.into());
            }
        };
        self.supervisor.send(Message::AddonUp {
            app: self.dir.name.clone(),
            server: Box::new(server),
        });
        self.event(Event::NewAddon {
            id: added.id.clone(),
            addon: kind.name().to_string(),
            plan: added.plan.clone(),
        });
        out.step(&format!("Addon {kind} has been provisioned"));
        out.detail(&format!("ID: {}", added.id));
        let mut names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        out.detail(&format!("Modified variables: [{}]", names.join(" ")));
        if let Some(alias) = kept {
            out.detail(&format!(
                "{alias} is kept as it was (set already): {alias} names one database"
            ));
        }
        out.detail(&format!(
            "Server: {kind} on 127.0.0.1:{}, its output in `shipway logs` as [{kind}]",
            added.port
        ));
        if let Some(note) = addon::plan_note(&added) {
            out.detail(&note);
        }
        Ok(())
    }

    /// After addons changed: restart the app's containers, as the platform does, so
    /// that they read the new config vars. Nothing to do before the first deploy.
    fn restart_for_addons(&self, app: &AppDir, out: &Output) -> Result<(), Error> {
        if app.current().is_none() || self.present()?.is_empty() {
            return Ok(());
        }
        self.restart(None, out)
    }

    /// The platform starting: every addon server of the app again, before its release.
    pub(super) fn restore_addons(&self) {
        // An app gone since the platform opened it (a folder removed by hand) has no
        // addon to start.
        let Ok(app) = self.existing() else {
            return;
        };
        let addons = match addon::list(app) {
            Ok(a) => a,
            Err(e) => {
                return self
                    .ctx
                    .say(&format!("{}: cannot read its addons: {e}", self.dir.name))
            }
        };
        for a in addons {
            let sink = self.ctx.container_log(&self.log, &self.dir.name, a.kind.name());
            match addon::start(app, &a, &self.ctx.settings, sink, &self.ctx.stopping) {
                Ok(server) => {
                    if server.addon.port != a.port {
                        let vars = server.addon.config_vars();
                        let _ = app.update_config(|c| c.config_vars.extend(vars));
                        self.ctx.say(&format!(
                            "{}: port {} of addon {} was taken: it moved to {} (its config vars follow)",
                            self.dir.name, a.port, a.id, server.addon.port
                        ));
                    }
                    self.ctx.say(&format!(
                        "{}: addon {} ({}) serves on 127.0.0.1:{}",
                        self.dir.name, a.kind, a.id, server.addon.port
                    ));
                    self.supervisor.send(Message::AddonUp {
                        app: self.dir.name.clone(),
                        server: Box::new(server),
                    });
                }
                Err(e) => self.ctx.say(&format!(
                    "{}: cannot start addon {} ({}) again: {e}",
                    self.dir.name, a.kind, a.id
                )),
            }
        }
    }

    /// Before an app's first build (no release served yet): scalingo.json's env and
    /// addons, as the platform applies them to a one-click or review app before building
    /// it, so that the build finds them in ENV_DIR. The env once (a secret is generated
    /// once); the addons at every try of the first deployment, until they are there.
    /// Returns the manifest, for `first_deployment`, and the config vars and the stack the
    /// build is to use, when there is one.
    pub(super) fn before_first_build(
        &self,
        app: &AppDir,
        files: &Path,
        url: &str,
        out: &Output,
    ) -> Result<Option<(Manifest, ConfigVars, String)>, Error> {
        if app.current().is_some() {
            return Ok(None);
        }
        let Some(m) = manifest::read(files).map_err(|e| fail(e.to_string()))? else {
            return Ok(None);
        };
        out.step(&format!(
            "Reading {} (the app's first deployment, as for a one-click deploy or a review app)",
            m.file
        ));
        // A formation the platform refuses fails the deployment before anything is applied.
        check_formation(&m)?;
        if app.load_config()?.manifest < ManifestStage::EnvApplied {
            self.apply_manifest_env(app, &m, url, out)?;
        }
        let wanted: Vec<(String, &str)> = m.addons.iter().map(|a| (a.clone(), m.file.as_str())).collect();
        self.provision_wanted(app, &wanted, out)?;
        let config = app.load_config()?;
        let stack = config.stack().to_string();
        Ok(Some((m, config.config_vars, stack)))
    }

    /// After an app's first build: the `manifest` `before_first_build` read, its
    /// formation now that the release's process types are known, and bin/release's
    /// addons. Returns scripts.first-deploy, this deployment's hook.
    pub(super) fn first_deployment(
        &self,
        app: &AppDir,
        release: &Release,
        manifest: Option<Manifest>,
        out: &Output,
    ) -> Result<Option<String>, Error> {
        if app.current().is_some() {
            return Ok(None);
        }
        if let Some(m) = &manifest {
            if app.load_config()?.manifest < ManifestStage::Applied {
                self.apply_manifest_formation(app, m, release, out)?;
            }
        }
        let wanted: Vec<(String, &str)> = release
            .addons
            .iter()
            .map(|a| (a.clone(), "the buildpack (bin/release)"))
            .collect();
        self.provision_wanted(app, &wanted, out)?;
        let hook = manifest.and_then(|m| {
            if let Some(p) = &m.postdeploy {
                out.detail(&format!(
                    "scripts.postdeploy ({p}) is not run: the platform deprecated it for the Procfile's `postdeploy:` line"
                ));
            }
            m.first_deploy
        });
        if let Some(h) = &hook {
            out.step(&format!(
                "scripts.first-deploy is this first deployment's postdeploy hook: {h}"
            ));
        }
        Ok(hook)
    }

    /// Provision each addon `wanted` (its spec, and who asked) that the app lacks: one
    /// addon of a kind, so a plan asked for twice does not add a second.
    fn provision_wanted(&self, app: &AppDir, wanted: &[(String, &str)], out: &Output) -> Result<(), Error> {
        let have: Vec<Kind> = addon::list(app)?.iter().map(|a| a.kind).collect();
        let mut seen = have.clone();
        for (spec, why) in wanted {
            let (kind, plan) = addon::parse_spec(spec).map_err(|e| fail(format!("{why}: {e}")))?;
            if seen.contains(&kind) {
                if have.contains(&kind) {
                    out.detail(&format!("addon {kind} asked by {why}: the app has one already"));
                }
                continue;
            }
            seen.push(kind);
            self.provision(app, kind, plan, Some(why), out)?;
        }
        Ok(())
    }

    /// scalingo.json's env into the app's config, said line by line; a variable the user
    /// set already (`deploy --env`) stays as it is.
    fn apply_manifest_env(
        &self,
        app: &AppDir,
        m: &manifest::Manifest,
        url: &str,
        out: &Output,
    ) -> Result<(), Error> {
        let mut said = Vec::new();
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        let name = self.dir.name.clone();
        // Drawn before the config is locked, so that no randomness can fail in there.
        let mut secrets = std::collections::BTreeMap::new();
        for (k, v) in &m.env {
            if matches!(v, EnvValue::Secret) {
                secrets.insert(k, addon::secret().map_err(|e| fail(e.to_string()))?);
            }
        }
        app.update_config(|c| {
            for (k, v) in &m.env {
                let value = match v {
                    EnvValue::Remove => {
                        if c.config_vars.remove(k).is_some() {
                            said.push(format!("env {k}: removed"));
                            removed.push(k.clone());
                        }
                        continue;
                    }
                    _ if c.config_vars.contains_key(k) => {
                        said.push(format!("env {k}: kept (already set)"));
                        continue;
                    }
                    EnvValue::Value(v) => {
                        said.push(format!("env {k}={v}"));
                        v.clone()
                    }
                    EnvValue::Secret => {
                        said.push(format!("env {k}: a generated secret"));
                        secrets.remove(k).unwrap_or_default()
                    }
                    EnvValue::Template(t) => {
                        let v = manifest::fill(t, &name, url);
                        said.push(format!("env {k}={v} (from template {t})"));
                        v
                    }
                };
                c.config_vars.insert(k.clone(), value);
                added.push(k.clone());
            }
            // The stack an app is created on, as a one-click deploy creates it there.
            if let Some(stack) = &m.stack {
                said.push(format!("stack {stack}: the app is created on it"));
                c.stack = Some(stack.clone());
            }
            c.manifest = ManifestStage::EnvApplied;
        })?;
        for line in said {
            out.detail(&line);
        }
        if !added.is_empty() {
            self.event(Event::NewVariable { names: added });
        }
        if !removed.is_empty() {
            self.event(Event::DeleteVariable { names: removed });
        }
        Ok(())
    }

    /// scalingo.json's formation into the app's config, said line by line.
    fn apply_manifest_formation(
        &self,
        app: &AppDir,
        m: &manifest::Manifest,
        release: &Release,
        out: &Output,
    ) -> Result<(), Error> {
        let mut said = Vec::new();
        app.update_config(|c| {
            for (t, amount, size) in &m.formation {
                if !release.process_types.contains_key(t) || t == "postdeploy" {
                    said.push(format!(
                        "formation {t}: this release has no such process type: ignored"
                    ));
                    continue;
                }
                if let Some(n) = amount {
                    c.formation.insert(t.clone(), *n);
                    said.push(format!("formation {t}={n}"));
                }
                if let Some(s) = size {
                    c.sizes.insert(t.clone(), s.clone());
                    said.push(format!("formation {t}: size {s}"));
                }
            }
            c.manifest = ManifestStage::Applied;
        })?;
        for line in said {
            out.detail(&line);
        }
        Ok(())
    }
}

/// The formation amounts the platform accepts: at most `MAX_PER_TYPE` a type.
fn check_formation(m: &manifest::Manifest) -> Result<(), Error> {
    for (t, amount, _) in &m.formation {
        if amount.is_some_and(|n| n > MAX_PER_TYPE) {
            return Err(fail(format!(
                "{}: formation {t}: the platform allows {MAX_PER_TYPE} containers per type at most",
                m.file
            )));
        }
    }
    Ok(())
}

/// A failed provisioning, for the user: what to install, or the server's last lines.
fn provision_error(kind: Kind, e: AddonError) -> Error {
    fail(format!(
        "addon {kind} could not be provisioned, nothing of it is left: {e}"
    ))
}

#[cfg(test)]
mod tests {
    //! What an app's first deployment takes from scalingo.json before its build, and the
    //! app's folder the addon jobs are handed; the addons themselves are provisioned in
    //! `tests/integration/addons.rs`.

    use std::sync::Arc;

    use super::*;
    use crate::platform::context::Context;
    use crate::platform::message::Handle;
    use crate::settings::Settings;

    struct First {
        _home: tempfile::TempDir,
        worker: Worker,
        app: AppDir,
        files: tempfile::TempDir,
    }

    /// A new app named `web`, and a source folder holding `scalingo_json`.
    fn first(scalingo_json: &str) -> First {
        let home = tempfile::tempdir().unwrap();
        let (ctx, _) = Context::for_tests(Settings::defaults(home.path().to_path_buf()));
        let app = ctx.home.app("web").unwrap();
        app.create().unwrap();
        let log = super::super::applog::AppLog::open(&app.root.join("app.log")).unwrap();
        let (tx, _) = crossbeam_channel::unbounded();
        let worker = Worker::new(Arc::new(ctx), Handle(tx), app.clone(), log);
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("scalingo.json"), scalingo_json).unwrap();
        First {
            _home: home,
            worker,
            app,
            files,
        }
    }

    impl First {
        fn before_build(&self) -> Result<Option<(Manifest, ConfigVars, String)>, Error> {
            let out = Output::new();
            self.worker
                .before_first_build(&self.app, self.files.path(), "http://127.0.0.1:5000/", &out)
        }

        fn vars(&self) -> ConfigVars {
            self.app.load_config().unwrap().config_vars
        }
    }

    const ENV: &str = r#"{"env": {
        "GREETING": {"value": "hello"},
        "SECRET_KEY": {"generator": "secret"},
        "ADMIN_URL": {"generator": "url", "template": "%URL%/admin/%APP%"},
        "KEPT": {"value": "from the manifest"}
    }}"#;

    #[test]
    fn the_env_is_applied_once_before_the_first_build_and_a_set_variable_is_kept() {
        let f = first(ENV);
        f.app
            .update_config(|c| {
                c.config_vars.insert("KEPT".into(), "from deploy --env".into());
            })
            .unwrap();
        let (m, vars, _) = f.before_build().unwrap().expect("a manifest");
        assert_eq!(m.file, "scalingo.json");
        assert_eq!(vars["GREETING"], "hello");
        assert_eq!(vars["ADMIN_URL"], "http://127.0.0.1:5000/admin/web");
        assert_eq!(vars["KEPT"], "from deploy --env");
        let secret = vars["SECRET_KEY"].clone();
        assert!(secret.len() >= 32, "{secret}");
        assert_eq!(f.app.load_config().unwrap().manifest, ManifestStage::EnvApplied);
        // A second try of the first deployment does not draw the secret again.
        f.before_build().unwrap();
        assert_eq!(f.vars()["SECRET_KEY"], secret);
    }

    #[test]
    fn a_formation_beyond_the_platform_s_limit_fails_before_anything_is_applied() {
        let f = first(r#"{"env": {"GREETING": {"value": "hello"}}, "formation": {"web": {"amount": 11}}}"#);
        let err = f.before_build().unwrap_err().to_string();
        assert!(
            err.contains("formation web: the platform allows 10 containers per type at most"),
            "{err}"
        );
        assert!(f.vars().is_empty(), "nothing applied");
        assert_eq!(f.app.load_config().unwrap().manifest, ManifestStage::default());
    }

    #[test]
    fn an_app_with_a_release_ignores_scalingo_json() {
        let f = first(ENV);
        f.app.set_current(1).unwrap();
        assert!(f.before_build().unwrap().is_none());
        assert!(f.vars().is_empty());
    }

    #[test]
    fn an_addon_job_of_an_app_whose_folder_is_gone_fails_and_makes_nothing_again() {
        let f = first("{}");
        std::fs::remove_dir_all(&f.app.root).unwrap();
        let out = Output::new();
        for err in [
            f.worker.addons_add("redis", None, &out).unwrap_err(),
            f.worker.addons_remove("redis", &out).unwrap_err(),
        ] {
            let err = err.to_string();
            assert!(err.contains("app \"web\" does not exist"), "{err}");
        }
        f.worker.restore_addons();
        assert!(
            !f.app.root.exists(),
            "no addon folder made the app's folder again"
        );
    }

    #[test]
    fn a_bad_scalingo_json_fails_naming_the_file() {
        let f = first("[1, 2]");
        let err = f.before_build().unwrap_err().to_string();
        assert!(
            err.contains("scalingo.json") && err.contains("not a JSON object"),
            "{err}"
        );
    }
}
