//! `shipway scale web=2 worker=1`: through the platform, which starts what is missing
//! and stops what is beyond.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::platform::client;
use crate::platform::protocol::Request;
use crate::settings::Settings;

pub fn run(settings: &Settings, app: Option<String>, items: Vec<String>) -> Result<i32, Error> {
    let counts = parse_counts(&items)?;
    let (home, app) = super::existing_app(settings, app)?;
    client::stream(
        &home,
        Request::Scale {
            app: app.name,
            counts,
        },
    )
}

/// `web=2`, `web:2`.
pub fn parse_counts(items: &[String]) -> Result<BTreeMap<String, u32>, Error> {
    let mut counts = BTreeMap::new();
    for item in items {
        let bad = || {
            Error::Usage(format!(
                "{item:?} is not TYPE=COUNT (e.g. web=2 or web:2): nothing was changed"
            ))
        };
        let (t, n) = item.split_once(['=', ':']).ok_or_else(bad)?;
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        counts.insert(t.to_string(), n);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_both_forms_and_reject_garbage() {
        let c = parse_counts(&["web=2".into(), "worker:1".into()]).unwrap();
        assert_eq!(c["web"], 2);
        assert_eq!(c["worker"], 1);
        for bad in ["web=x", "web", "=2", "we b=1", "web=-1"] {
            assert!(parse_counts(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
