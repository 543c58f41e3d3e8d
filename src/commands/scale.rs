//! `shipway scale web:2 worker:+1`, as `scalingo scale`: through the platform, which
//! starts what is missing and stops what is beyond; without arguments, the formation.

use std::collections::BTreeMap;

use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{Amount, Request};
use crate::release::Release;
use crate::rollout;
use crate::settings::Settings;
use crate::ui::Output;

use super::AppChoice;

pub fn run(settings: &Settings, choice: &AppChoice, items: Vec<String>) -> Result<i32, Error> {
    let (counts, sizes) = parse_counts(&items)?;
    let (home, app) = super::existing_app(settings, choice)?;
    let out = Output::stdout();
    if counts.is_empty() {
        return show(&app, &out);
    }
    client::stream(
        &home,
        Request::Scale {
            app: app.name,
            counts,
            sizes,
        },
    )
}

/// The formation: each process type of the current release, its amount, its command.
fn show(app: &crate::state::AppDir, out: &Output) -> Result<i32, Error> {
    let config = app.load_config()?;
    let formation = &config.formation;
    let Some(number) = app.current() else {
        out.step(&format!("{} has no release deployed yet", app.name));
        for (t, n) in formation {
            out.detail(&format!(
                "{t}: {n} - {} (saved for the first deploy)",
                config.size(t).name
            ));
        }
        return Ok(exit::SUCCESS);
    };
    let release = Release::load(&app.release(number))?;
    out.step(&format!("Formation of {} (release {number}):", app.name));
    let rows = rollout::amounts(&release, formation);
    let width = rows
        .iter()
        .map(|(t, n)| t.len() + n.to_string().len())
        .max()
        .unwrap_or(0);
    for (t, n) in rows {
        let amount = format!("{t}: {n}");
        out.detail(&format!(
            "{amount:<w$} - {:<4}{}",
            config.size(&t).name,
            release.process_types[&t],
            w = width + 2
        ));
    }
    Ok(exit::SUCCESS)
}

/// The amount of each type, and the sizes given (`web:2:L`), by type.
type Instructions = (BTreeMap<String, Amount>, BTreeMap<String, String>);

/// `web:2`, `web=2`, `web:+1`, `web:-1`, `web:2:L`: the amounts, and the sizes given.
pub fn parse_counts(items: &[String]) -> Result<Instructions, Error> {
    let mut counts = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for item in items {
        let bad = |why: &str| {
            Error::Usage(format!(
                "{item:?} is not TYPE:AMOUNT[:SIZE], TYPE:+N or TYPE:-N ({why}; e.g. web:2, web:+1, web:1:L): nothing was changed"
            ))
        };
        let (t, rest) = item.split_once(['=', ':']).ok_or_else(|| bad("no amount"))?;
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad("the type is letters and digits"));
        }
        let (n, size) = match rest.split_once(':') {
            Some((n, size)) => (n, Some(size)),
            None => (rest, None),
        };
        let number = |digits: &str| digits.parse::<u32>().map_err(|_| bad("the amount is a number"));
        let amount = match n.as_bytes().first() {
            Some(b'+') => Amount::Up(number(&n[1..])?),
            Some(b'-') => Amount::Down(number(&n[1..])?),
            _ => Amount::To(number(n)?),
        };
        if let Some(size) = size {
            if !matches!(amount, Amount::To(_)) {
                return Err(bad(
                    "a size goes with an amount, not with +N or -N: change the size first",
                ));
            }
            crate::platform_numbers::Size::named(size).map_err(|e| bad(&e.to_string()))?;
            sizes.insert(t.to_string(), size.to_string());
        }
        counts.insert(t.to_string(), amount);
    }
    Ok((counts, sizes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<Instructions, Error> {
        parse_counts(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn amounts_absolute_relative_and_sized() {
        let (c, sizes) = parse(&["web=2", "worker:1", "clock:+1", "tcp:-2", "big:3:XL"]).unwrap();
        assert_eq!(c["web"], Amount::To(2));
        assert_eq!(c["worker"], Amount::To(1));
        assert_eq!(c["clock"], Amount::Up(1));
        assert_eq!(c["tcp"], Amount::Down(2));
        assert_eq!(c["big"], Amount::To(3));
        assert_eq!(sizes["big"], "XL");
        assert_eq!(sizes.len(), 1);
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "web=x",
            "web",
            "=2",
            "we b=1",
            "web:+",
            "web:+-1",
            "web:1:XXL",
            "web:+1:L",
            "web:1:L:M",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_are_the_platform_table() {
        assert_eq!(parse(&["web:1:3XL"]).unwrap().1["web"], "3XL");
        let err = parse(&["web:1:4XL"]).unwrap_err().to_string();
        assert!(
            err.contains("\"4XL\"") && err.contains("S, M, L, XL, 2XL, 3XL"),
            "{err}"
        );
    }

    #[test]
    fn relative_amounts_apply_to_the_current_one() {
        assert_eq!(Amount::Up(1).apply(2), Some(3));
        assert_eq!(Amount::Down(1).apply(2), Some(1));
        assert_eq!(Amount::Down(3).apply(2), None);
        assert_eq!(Amount::To(0).apply(5), Some(0));
    }
}
