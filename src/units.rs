//! Units as people read them: bytes (`12.3 MiB`), durations (`2m05s`) and UTC times
//! (RFC 3339), and the civil calendar under them. Any layer that writes a line a person
//! reads (a build's step, the platform's events, a table) formats with these, so that a
//! size or a date reads the same everywhere. Pure functions of their input: no clock, no
//! I/O, no choice of where the text goes (that is `ui`), no parsing of settings' values
//! (that is `settings`).

/// Bytes as people read them: `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration as people read it: `850ms`, `3.2s`, `2m05s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// UTC, RFC 3339 with milliseconds (`2026-11-27T09:30:01.123Z`), without a date library.
pub fn utc(time: std::time::SystemTime) -> String {
    let now = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// [`utc`] of a time in milliseconds since the Unix epoch, as shipway records times.
pub fn utc_ms(ms: u64) -> String {
    utc(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// Memory as the platform's size table writes it: `256 MB`, `1 GB`.
pub fn human_memory(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    const GB: u64 = 1024 * MB;
    if bytes >= GB && bytes.is_multiple_of(GB) {
        format!("{} GB", bytes / GB)
    } else {
        format!("{} MB", bytes / MB)
    }
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(
            utc_ms(1_795_771_809_848),
            utc(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_771_809_848))
        );
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_771_809_848);
        assert_eq!(utc(t), "2026-11-27T09:30:09.848Z");
        assert_eq!(utc(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_duration(std::time::Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(std::time::Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn memory_is_written_as_the_platform_does() {
        use crate::platform_numbers::Size;
        assert_eq!(human_memory(Size::named("S").unwrap().memory), "256 MB");
        assert_eq!(human_memory(Size::named("L").unwrap().memory), "1 GB");
        assert_eq!(human_memory(Size::named("3XL").unwrap().memory), "8 GB");
    }
}
