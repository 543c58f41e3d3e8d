//! A cron expression as the crontab standard writes it (Scalingo's scheduler: "the cron
//! expression follows the crontab standard"), evaluated in UTC as the platform does:
//! five fields (minute, hour, day of month, month, day of week), each `*`, a number, a
//! range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of those; month and day
//! names (`jan`, `mon`); Sunday as 0 or 7; and the nicknames `@hourly`, `@daily`
//! (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
//!
//! Days follow Vixie cron: when both the day of month and the day of week are
//! restricted (neither starts with `*`), a day matches if either does.
//!
//! It parses and computes times; it never starts anything.

use std::time::Duration;

use crate::units::civil;

/// Seconds since the epoch, UTC (the scheduler's clock has no time zone: UTC).
pub type UnixTime = i64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{field} field {text:?}: {problem}")]
    Field {
        field: &'static str,
        text: String,
        problem: String,
    },
    #[error("{0} is not a schedule: the nicknames are @hourly, @daily, @midnight, @weekly, @monthly, @yearly and @annually")]
    UnknownNickname(String),
    #[error("@reboot means nothing on the platform: a job runs on a schedule, never at a container's start")]
    Reboot,
    #[error("it never runs: no date has this day of month in these months")]
    Never,
}

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// The day-of-month field starts with `*` (Vixie's DOM_STAR).
    any_day: bool,
    /// The day-of-week field starts with `*` (Vixie's DOW_STAR).
    any_weekday: bool,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
// 7 is Sunday too; it is folded onto 0 after parsing.
const WEEKDAY: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// How many fields a schedule has, and how they are called, for messages.
pub const FIELDS: &str = "minute hour day-of-month month day-of-week";

/// The days scanned for a matching date: a little over eight years, so that 29 February
/// is found even across a century year that is not a leap year (2096 to 2104).
const SCAN_DAYS: i64 = 8 * 366 + 1;

/// A full Gregorian cycle: the calendar repeats after it, weekdays included.
const CYCLE_DAYS: i64 = 146_097;

impl Schedule {
    /// The five fields of an expression, or a nickname (`@daily`) alone.
    pub fn parse(fields: &[&str]) -> Result<Schedule, ScheduleError> {
        if let [nick] = fields {
            return Schedule::parse(&nickname(nick)?.split(' ').collect::<Vec<_>>());
        }
        let [minute, hour, day, month, weekday] = fields else {
            return Err(ScheduleError::Field {
                field: "schedule",
                text: fields.join(" "),
                problem: format!("expected 5 fields ({FIELDS}), found {}", fields.len()),
            });
        };
        let mut weekdays = parse_field(&WEEKDAY, weekday)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        let schedule = Schedule {
            minutes: parse_field(&MINUTE, minute)?,
            hours: parse_field(&HOUR, hour)?,
            days: parse_field(&DAY, day)?,
            months: parse_field(&MONTH, month)?,
            weekdays,
            any_day: day.starts_with('*'),
            any_weekday: weekday.starts_with('*'),
        };
        if schedule.first_day_from(0).is_none() {
            return Err(ScheduleError::Never);
        }
        Ok(schedule)
    }

    fn day_matches(&self, day: i64) -> bool {
        let (_, month, dom) = civil(day);
        if self.months & (1 << month) == 0 {
            return false;
        }
        let by_day = self.days & (1 << dom) != 0;
        let by_weekday = self.weekdays & (1 << weekday(day)) != 0;
        if self.any_day || self.any_weekday {
            by_day && by_weekday
        } else {
            by_day || by_weekday
        }
    }

    /// The first matching day from `day` on (days since the epoch), within the scan.
    fn first_day_from(&self, day: i64) -> Option<i64> {
        (day..day + SCAN_DAYS).find(|d| self.day_matches(*d))
    }

    /// The minutes of a matching day at which it runs, in order.
    fn minutes_of_day(&self) -> Vec<u32> {
        let mut all = Vec::new();
        for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
            for m in (0..60).filter(|m| self.minutes & (1 << m) != 0) {
                all.push(h * 60 + m);
            }
        }
        all
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: UnixTime) -> Option<UnixTime> {
        let from = after.div_euclid(60) + 1;
        let (today, minute) = (from.div_euclid(1440), from.rem_euclid(1440) as u32);
        let minutes = self.minutes_of_day();
        let first = *minutes.first()?;
        let mut day = self.first_day_from(today)?;
        let at = if day == today {
            match minutes.iter().find(|m| **m >= minute) {
                Some(m) => *m,
                None => {
                    day = self.first_day_from(today + 1)?;
                    first
                }
            }
        } else {
            first
        };
        Some((day * 1440 + i64::from(at)) * 60)
    }

    /// The shortest time between two runs, and two runs that far apart (as minutes of a
    /// day), when it is under a day. `None`: a day or more between any two runs.
    pub fn shortest_interval(&self) -> Option<(Duration, u32, u32)> {
        let minutes = self.minutes_of_day();
        let within = minutes
            .windows(2)
            .map(|w| (w[1] - w[0], w[0], w[1]))
            .min_by_key(|g| g.0);
        // From the day's last run to the next day's first, when two days in a row match.
        let (first, last) = (*minutes.first()?, *minutes.last()?);
        let overnight = (1440 - last + first < 1440 && self.two_days_in_a_row()).then_some((
            1440 - last + first,
            last,
            first,
        ));
        [within, overnight]
            .into_iter()
            .flatten()
            .min_by_key(|g| g.0)
            .map(|(gap, a, b)| (Duration::from_secs(u64::from(gap) * 60), a, b))
    }

    fn two_days_in_a_row(&self) -> bool {
        let mut previous = false;
        for day in 0..=CYCLE_DAYS {
            let now = self.day_matches(day);
            if now && previous {
                return true;
            }
            previous = now;
        }
        false
    }
}

fn nickname(nick: &str) -> Result<&'static str, ScheduleError> {
    Ok(match nick.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        "@reboot" => return Err(ScheduleError::Reboot),
        _ if nick.starts_with('@') => return Err(ScheduleError::UnknownNickname(nick.to_string())),
        _ => {
            return Err(ScheduleError::Field {
                field: "schedule",
                text: nick.to_string(),
                problem: format!("expected 5 fields ({FIELDS}) or a nickname such as @daily"),
            })
        }
    })
}

fn parse_field(field: &Field, text: &str) -> Result<u64, ScheduleError> {
    let err = |problem: String| ScheduleError::Field {
        field: field.name,
        text: text.to_string(),
        problem,
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(err("an empty item in the list".into()));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| err(format!("step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(err("a step of 0 never advances".into()));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(field, a).map_err(err)?, value(field, b).map_err(err)?);
            if a > b {
                return Err(err(format!("the range {a}-{b} goes backwards")));
            }
            (a, b)
        } else {
            let a = value(field, range).map_err(err)?;
            // `a/n` runs from a to the end of the field, as in most crons.
            (a, if step.is_some() { field.max } else { a })
        };
        let step = step.unwrap_or(1) as usize;
        for v in (low..=high).step_by(step) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn value(field: &Field, text: &str) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if field.min == 1 { 1 } else { 0 });
    }
    let n: u32 = text.parse().map_err(|_| {
        if field.names.is_empty() {
            format!("{text:?} is not a number")
        } else {
            format!(
                "{text:?} is neither a number nor a name ({})",
                field.names.join(", ")
            )
        }
    })?;
    if n < field.min || n > field.max {
        return Err(format!("{n} is out of {}-{}", field.min, field.max));
    }
    Ok(n)
}

/// 0 = Sunday (1970-01-01 was a Thursday).
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// `2026-12-04 14:30 UTC`: a run time as `cron-tasks` shows it.
pub fn render(time: UnixTime) -> String {
    let (y, mo, d) = civil(time.div_euclid(86_400));
    let rem = time.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&text.split_whitespace().collect::<Vec<_>>())
    }

    /// Seconds since the epoch of a UTC date and time.
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> UnixTime {
        let day = (0..CYCLE_DAYS * 2)
            .map(|n| n - CYCLE_DAYS)
            .find(|n| civil(*n) == (y, mo, d))
            .unwrap();
        day * 86_400 + h * 3600 + mi * 60
    }

    fn next(text: &str, after: UnixTime) -> String {
        render(parse(text).unwrap().next_after(after).unwrap())
    }

    #[test]
    fn civil_dates_and_weekdays() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
        assert_eq!(civil(20_454), (2026, 1, 1));
        assert_eq!(render(at(2024, 2, 29, 23, 59)), "2024-02-29 23:59 UTC");
    }

    #[test]
    fn next_runs_follow_the_crontab_standard() {
        let t = at(2026, 12, 4, 14, 7); // a Friday
        assert_eq!(next("*/10 * * * *", t), "2026-12-04 14:10 UTC");
        assert_eq!(next("*/10 * * * *", t + 3 * 60), "2026-12-04 14:20 UTC");
        assert_eq!(next("0 7 * * *", t), "2026-12-05 07:00 UTC");
        assert_eq!(next("30 2 * * 1-5", t), "2026-12-07 02:30 UTC", "Monday next");
        assert_eq!(next("0 0 1 * *", t), "2027-01-01 00:00 UTC");
        assert_eq!(next("0 0 * * sun", t), "2026-12-06 00:00 UTC");
        assert_eq!(next("0 0 * * 7", t), "2026-12-06 00:00 UTC", "7 is Sunday too");
        assert_eq!(next("0 12 29 feb *", t), "2028-02-29 12:00 UTC");
        assert_eq!(next("15 14 * * *", t), "2026-12-04 14:15 UTC");
        assert_eq!(next("7 14 * * *", t), "2026-12-05 14:07 UTC", "strictly after");
        assert_eq!(next("@hourly", t), "2026-12-04 15:00 UTC");
        assert_eq!(next("@weekly", t), "2026-12-06 00:00 UTC");
        assert_eq!(next("@yearly", t), "2027-01-01 00:00 UTC");
        assert_eq!(next("5/20 * * * *", t), "2026-12-04 14:25 UTC");
        assert_eq!(next("0 9-17/4 * DEC *", t), "2026-12-04 17:00 UTC");
    }

    #[test]
    fn both_day_fields_restricted_match_either() {
        // The 13th, or any Monday (Vixie cron), from Friday 2026-12-04.
        let t = at(2026, 12, 4, 14, 7);
        assert_eq!(next("0 0 13 * 1", t), "2026-12-07 00:00 UTC");
        assert_eq!(next("0 0 13 * 1", at(2026, 12, 8, 0, 0)), "2026-12-13 00:00 UTC");
        // A field starting with `*` makes it an and: `*/1` is every day, so Mondays.
        assert_eq!(next("0 0 */1 * 1", t), "2026-12-07 00:00 UTC");
        // Otherwise an or: the 5th (a Saturday) is one of the 1st to 7th.
        assert_eq!(next("0 0 1-7 * 1", t), "2026-12-05 00:00 UTC");
        assert_eq!(
            next("0 0 1-3 * 1", t),
            "2026-12-07 00:00 UTC",
            "or: Monday the 7th"
        );
    }

    #[test]
    fn bad_fields_say_which_and_why() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(e("61 * * * *"), "minute field \"61\": 61 is out of 0-59");
        assert_eq!(e("* 24 * * *"), "hour field \"24\": 24 is out of 0-23");
        assert_eq!(e("* * 0 * *"), "day-of-month field \"0\": 0 is out of 1-31");
        assert!(e("* * * foo *").contains("neither a number nor a name (jan, feb"));
        assert_eq!(
            e("*/0 * * * *"),
            "minute field \"*/0\": a step of 0 never advances"
        );
        assert_eq!(
            e("10-5 * * * *"),
            "minute field \"10-5\": the range 10-5 goes backwards"
        );
        assert_eq!(
            e("1,,2 * * * *"),
            "minute field \"1,,2\": an empty item in the list"
        );
        assert!(e("* * * *").contains("expected 5 fields"));
        assert!(e("@reboot").contains("means nothing"));
        assert!(e("@often").contains("nicknames are"));
        assert_eq!(
            e("0 0 30 2 *"),
            "it never runs: no date has this day of month in these months"
        );
        assert!(parse("0 0 31 1-12 *").is_ok(), "some months have a 31st");
    }

    #[test]
    fn the_shortest_interval_includes_the_night() {
        let gap = |t: &str| parse(t).unwrap().shortest_interval().map(|g| g.0.as_secs() / 60);
        assert_eq!(gap("*/10 * * * *"), Some(10));
        assert_eq!(gap("*/5 * * * *"), Some(5));
        assert_eq!(gap("0,30 * * * *"), Some(30));
        assert_eq!(gap("0 * * * *"), Some(60));
        assert_eq!(gap("0 7 * * *"), None, "once a day");
        assert_eq!(gap("0 0,12 * * *"), Some(720));
        // 23:59 then 00:00 the next day: one minute apart.
        assert_eq!(gap("0,59 0,23 * * *"), Some(1));
        // ... but not when the next day never runs (Mondays only).
        assert_eq!(gap("0,59 0,23 * * 1"), Some(59));
        assert_eq!(gap("55 23 * * *"), None);
        let (_, a, b) = parse("0,3 12 * * *").unwrap().shortest_interval().unwrap();
        assert_eq!((a, b), (720, 723));
    }
}
