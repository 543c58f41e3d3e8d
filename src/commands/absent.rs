//! The Scalingo CLI's verbs that shipway does not have, each with one line saying why
//! and what to do instead. They are hidden verbs of the command line, so that a
//! Scalingo user's habit gets this answer (exit status 2) rather than clap's guess at a
//! similar verb. The list follows the Scalingo CLI's own (its `cmd/commands.go`, names
//! and aliases); a verb shipway has (`ps`, `logs`, `stacks-set`...) is never in it.

/// Verbs (a Scalingo name and its aliases) and the one answer they get.
pub const VERBS: &[(&[&str], &str)] = &[
    // Apps
    (
        &["project-set", "projects", "projects-add", "projects-update", "projects-remove", "projects-details"],
        "there are no projects here: every app of this machine is listed by `shipway apps`",
    ),
    (
        &["logs-archives", "la"],
        "logs are not archived: the app's log is the file SHIPWAY_HOME/apps/APP/app.log (and app.log.1), and `shipway logs -n N` reads it",
    ),
    // Routing
    (
        &["force-https"],
        "the router serves plain HTTP on 127.0.0.1: there is no TLS to force",
    ),
    (
        &["sticky-session"],
        "the router has no session affinity: it spreads requests over the web containers in turn",
    ),
    (
        &["set-canonical-domain", "unset-canonical-domain", "domains", "domains-add", "domains-remove"],
        "there are no domains here: the router answers any Host on http://127.0.0.1:PORT (`shipway apps`)",
    ),
    (
        &["domains-ssl"],
        "there are no domains nor TLS here: the router serves plain HTTP on 127.0.0.1",
    ),
    // Events
    (
        &["user-timeline"],
        "a local tool has no accounts: `shipway timeline -a APP` lists an app's events",
    ),
    // Deployments
    // Collaborators and accounts
    (
        &["collaborators", "collaborators-add", "collaborators-remove", "collaborators-update"],
        "a local tool has no accounts: every app here is yours",
    ),
    (
        &["login", "logout", "self", "whoami"],
        "a local tool has no accounts: there is nothing to log in to",
    ),
    (
        &["keys", "keys-add", "keys-remove"],
        "there are no SSH keys here: the `shipway` git remote is a folder of this machine (`shipway git-setup`)",
    ),
    (
        &["regions"],
        "there is one region here, this machine",
    ),
    (
        &["config"],
        "shipway's settings are SHIPWAY_* environment variables or SHIPWAY_HOME/config.toml, not a CLI configuration",
    ),
    (
        &["update"],
        "shipway updates the way it was installed (`cargo install`, a package): it has no updater",
    ),
    (
        &["changelog"],
        "shipway bundles no changelog: `shipway --version` gives its version",
    ),
    // Addons
    (
        &["addons-upgrade"],
        "a plan here is a name, no size is enforced: there is nothing to upgrade",
    ),
    (
        &["addons-config"],
        "an addon here is a server of this machine with no maintenance window to configure",
    ),
    (
        &["addons-list", "addons-plans"],
        "the addons here are postgresql, redis and mysql, each a server of this machine: `shipway addons-add --help`",
    ),
    (
        &["db-tunnel"],
        "no tunnel is needed: the addons already listen on 127.0.0.1, and `shipway env-get DATABASE_URL` gives the address",
    ),
    (
        &["mongo-console", "mongodb-console", "influxdb-console", "influx-console"],
        "there is no MongoDB nor InfluxDB addon here: postgresql, redis and mysql (`shipway pgsql-console`, `redis-console`, `mysql-console`)",
    ),
    (
        &[
            "backups",
            "backups-create",
            "backups-download",
            "backup-download",
            "backups-config",
            "database-pitr-restore",
            "database-pitr-recovery-window",
        ],
        "addons here have no managed backups: `pg_dump \"$(shipway env-get DATABASE_URL)\"` (or mysqldump, redis-cli --rdb) takes one",
    ),
    (
        &[
            "database-enable-feature",
            "database-disable-feature",
            "database-users-list",
            "database-list-users",
            "database-users-create",
            "database-create-user",
            "database-users-delete",
            "database-delete-user",
            "database-users-update-password",
            "database-update-user-password",
            "database-maintenance-list",
            "database-maintenance-info",
        ],
        "an addon here is the host's own server: manage it with its console (`shipway pgsql-console`, `redis-console`, `mysql-console`)",
    ),
    (
        &[
            "databases",
            "database-info",
            "database-list-plans",
            "database-create",
            "database-upgrade",
            "database-destroy",
            "database-firewall-rules",
            "database-firewall-rules-add",
            "database-firewall-rules-remove",
            "database-firewall-managed-ranges",
            "database-endpoints",
            "database-net-peerings",
            "database-net-peerings-add",
            "database-net-peerings-remove",
            "database-network-configuration",
        ],
        "dedicated databases are a hosted product: an app's addons here are servers of this machine on 127.0.0.1 (`shipway addons`)",
    ),
    // Integrations
    (
        &[
            "integration-link",
            "integration-link-create",
            "integration-link-update",
            "integration-link-delete",
            "integration-link-manual-deploy",
            "integration-link-manual-review-app",
            "review-apps",
            "integrations",
            "integrations-add",
            "integrations-delete",
            "integrations-import-keys",
        ],
        "there is no link to a git host here: `shipway git-setup`, then `git push shipway main` deploys",
    ),
    (
        &["notifiers", "notifiers-details", "notifiers-add", "notifiers-update", "notifiers-remove", "notification-platforms"],
        "there are no notifiers here: `shipway deploy` exits with the deployment's status code, for a script to act on",
    ),
    // Operations
    (
        &["alerts", "alerts-add", "alerts-update", "alerts-enable", "alerts-disable", "alerts-remove"],
        "there are no metric alerts here: `shipway ps` shows each container's status and restarts",
    ),
    (
        &[
            "autoscalers",
            "autoscalers-add",
            "autoscalers-update",
            "autoscalers-enable",
            "autoscalers-disable",
            "autoscalers-remove",
        ],
        "the formation is fixed here, nothing scales it by itself: `shipway scale web:2`",
    ),
    (
        &["log-drains", "log-drains-add", "log-drains-remove"],
        "there are no log drains: `shipway logs -f` streams the app's log for a pipe, and SHIPWAY_HOME/apps/APP/app.log holds it",
    ),
    (
        &["private-networks-domain-names"],
        "there is no private network here: containers and addons all listen on 127.0.0.1",
    ),
];

/// The answer to `verb`, if it is one of the Scalingo verbs shipway does not have.
pub fn answer(verb: &str) -> Option<&'static str> {
    VERBS
        .iter()
        .find(|(names, _)| names.contains(&verb))
        .map(|(_, answer)| *answer)
}

/// Every name of the list, for the command line's hidden verbs.
pub fn names() -> impl Iterator<Item = &'static str> {
    VERBS.iter().flat_map(|(names, _)| names.iter().copied())
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_answer_hides_a_verb_or_alias_of_shipway() {
        let top = <crate::cli::Cli as clap::CommandFactory>::command();
        let real: Vec<&str> = top
            .get_subcommands()
            .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
            .collect();
        let shadowed: Vec<&str> = super::names().filter(|n| real.contains(n)).collect();
        assert!(
            shadowed.is_empty(),
            "remove these from absent.rs, shipway has them: {shadowed:?}"
        );
        super::super::command().debug_assert();
    }
}
