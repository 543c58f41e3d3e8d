//! Scalingo's own buildpacks, which build an app on the platform: one for each language
//! shipway bundles a buildpack for. Detection and BUILDPACK_NAME choose a bundled
//! buildpack by name (the bundled detect scripts follow the official rules); this table
//! says which official repository stands for it.

use std::path::Path;

use crate::buildpack::{self, Buildpack, BuildpackError, Locator};
use crate::buildpack_cache::{BuildpackCache, Limits};
use crate::settings::{OfficialBuildpacks, Settings};
use crate::source::short;
use crate::ui::Output;

/// A bundled buildpack's name, and the repository of Scalingo's buildpack for the same
/// language, below the `official_buildpacks_url` setting.
const REPOSITORIES: &[(&str, &str)] = &[
    ("clojure", "clojure-buildpack"),
    ("go", "go-buildpack"),
    ("gradle", "gradle-buildpack"),
    ("java", "java-buildpack"),
    ("java-war", "java-war-buildpack"),
    ("jvm-common", "buildpack-jvm-common"),
    ("nodejs", "nodejs-buildpack"),
    ("php", "php-buildpack"),
    ("python", "python-buildpack"),
    ("ruby", "ruby-buildpack"),
    ("scala", "scala-buildpack"),
];

/// The URL of the official buildpack standing for the bundled one named `bundled`, if any.
pub fn url(base: &str, bundled: &str) -> Option<String> {
    REPOSITORIES
        .iter()
        .find(|(name, _)| *name == bundled)
        .map(|(_, repo)| format!("{}/{repo}", base.trim_end_matches('/')))
}

/// The Ubuntu release a Scalingo stack is built on: the official buildpacks download
/// runtimes built for it.
fn stack_ubuntu(stack: &str) -> Option<&'static str> {
    match stack {
        "scalingo-20" => Some("20.04"),
        other => crate::stack::info(other).map(|s| s.ubuntu),
    }
}

/// Why this host cannot run what the official buildpacks download for `stack`, if it
/// cannot: they fetch interpreters built on the stack's Ubuntu, which need its C library.
fn host_mismatch(stack: &str, os_release: &str, what: &str) -> Option<String> {
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    };
    let wanted = stack_ubuntu(stack)?;
    let (id, version) = (
        field("ID").unwrap_or_default(),
        field("VERSION_ID").unwrap_or_default(),
    );
    if id == "ubuntu" && version == wanted {
        return None;
    }
    let host = field("PRETTY_NAME").unwrap_or_else(|| "an unknown system".into());
    Some(format!(
        "they download runtimes built for {stack} (Ubuntu {wanted}), and {what} is {host}"
    ))
}

/// The official buildpack for the language of `bundled`, fetched into `dest` (or taken
/// from the cache), as the `official_buildpacks` setting says; else `bundled` itself.
/// `auto` takes it only on the stack's own Ubuntu, where what it downloads runs.
/// `noted`: the file that keeps the last note of this kind shown for the app, so that the
/// same note is said once per app rather than at every deploy (`None`: always said).
pub fn instead_of(
    bundled: Buildpack,
    settings: &Settings,
    runtime: &crate::stack::Runtime,
    dest: &Path,
    out: Option<&Output>,
    noted: Option<&Path>,
    cancel: &crossbeam_channel::Receiver<()>,
) -> Result<Buildpack, BuildpackError> {
    // Never, or the user's own copies of the bundled set (SHIPWAY_BUILDPACKS_DIR): those
    // are what they asked to build with.
    if settings.official_buildpacks == OfficialBuildpacks::Never || settings.buildpacks_dir.is_some() {
        return Ok(bundled);
    }
    let Some(url) = url(&settings.official_buildpacks_url, &bundled.name) else {
        return Ok(bundled);
    };
    let bundled_instead = |why: &str| {
        let Some(out) = out else { return };
        let note = format!(
            "note: not Scalingo's official {name} buildpack: {why}; building with shipway's bundled {name} buildpack (SHIPWAY_OFFICIAL_BUILDPACKS=always or never chooses)",
            name = bundled.name
        );
        if let Some(file) = noted {
            // Said already for this app, for the same reason: the step line still names
            // the buildpack that builds.
            if crate::state::read_regular(file).ok().flatten().as_deref() == Some(note.as_bytes()) {
                return;
            }
            // Not kept (a read-only home...): said again next time, which is all it costs.
            let _ = crate::state::write_atomic_unsynced(file, note.as_bytes(), 0o600);
        }
        out.detail(&note);
    };
    if settings.official_buildpacks == OfficialBuildpacks::Auto {
        // What the build runs on decides: the stack's image when there is one (then any
        // Linux host will do), else this host.
        let (root, what) = match runtime.rootfs() {
            Some(root) => (root.to_path_buf(), format!("the {} image", runtime.stack)),
            None => (std::path::PathBuf::from("/"), "this host".to_string()),
        };
        let os_release = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|f| std::fs::read_to_string(root.join(f)).ok())
            .unwrap_or_default();
        if let Some(why) = host_mismatch(&runtime.stack_var(settings), &os_release, &what) {
            bundled_instead(&why);
            return Ok(bundled);
        }
    }
    let locator = Locator::Git {
        url: url.clone(),
        reference: None,
    };
    let cache = BuildpackCache::with_limits(&settings.home, Limits::of_build(settings, cancel));
    match buildpack::fetch(&url, &locator, None, &cache, dest) {
        Ok(mut official) => {
            official.name = bundled.name.clone();
            if let Some(out) = out {
                let commit = official.commit.as_deref().map(short).unwrap_or("-");
                out.step(&format!(
                    "Using Scalingo's official {} buildpack: {} (commit {commit})",
                    bundled.name,
                    crate::buildpack_cache::redact(&url)
                ));
                if let Some(note) = &official.note {
                    out.detail(&format!("note: {note}"));
                }
            }
            Ok(official)
        }
        // Called off is not "cannot be had": the build stops.
        Err(e @ BuildpackError::FetchCancelled { .. }) => Err(e),
        Err(e) if settings.official_buildpacks == OfficialBuildpacks::Auto => {
            let why = e.to_string();
            bundled_instead(&format!(
                "it cannot be had ({})",
                why.lines().next().unwrap_or_default()
            ));
            Ok(bundled)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_wants_the_stacks_own_ubuntu() {
        let ubuntu = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\nPRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\n";
        let host = "this host";
        assert_eq!(host_mismatch("scalingo-24", ubuntu, host), None);
        let why = host_mismatch("scalingo-22", ubuntu, host).unwrap();
        assert!(
            why.contains("Ubuntu 22.04") && why.contains("Ubuntu 24.04.1 LTS"),
            "{why}"
        );
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
        assert!(host_mismatch("scalingo-24", debian, host)
            .unwrap()
            .contains("this host is Debian GNU/Linux 12"));
        assert!(host_mismatch("scalingo-24", "", host)
            .unwrap()
            .contains("an unknown system"));
        let noble26 = "ID=ubuntu\nVERSION_ID=\"26.04\"\n";
        assert_eq!(
            host_mismatch("scalingo-26", noble26, "the scalingo-26 image"),
            None
        );
        // A stack shipway does not know: nothing to compare, nothing said.
        assert_eq!(host_mismatch("custom", debian, host), None);
    }

    #[test]
    fn every_bundled_language_but_static_has_an_official_buildpack() {
        for name in crate::buildpack::bundled_names() {
            let url = url("https://github.com/Scalingo/", &name);
            assert_eq!(url.is_none(), name == "static", "{name}: {url:?}");
        }
        assert_eq!(
            url("https://github.com/Scalingo", "python").as_deref(),
            Some("https://github.com/Scalingo/python-buildpack")
        );
    }
}
