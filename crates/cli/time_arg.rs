//! Parsing time and zone arguments (`--since`, `--until`, `--tz`).

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use ecir_formats::ParseContext;
use ecir_model::Timestamp;

/// The zone to read offset-less timestamps in, and where it came from.
pub fn resolve_tz(arg: Option<&str>) -> Result<(Tz, String), String> {
    if let Some(name) = arg {
        return name
            .parse::<Tz>()
            .map(|tz| (tz, "--tz".to_string()))
            .map_err(|_| {
                format!(
                    "--tz: unknown time zone '{name}'; use an IANA name such as Asia/Tokyo or UTC"
                )
            });
    }
    if let Ok(tz) = std::env::var("TZ") {
        let tz = tz.trim_start_matches(':');
        if let Ok(z) = tz.parse::<Tz>() {
            return Ok((z, "TZ environment variable".into()));
        }
        if let Some(z) = posix_fixed_offset(tz) {
            return Ok((z, format!("TZ environment variable ('{tz}' read as {z})")));
        }
        if !tz.is_empty() {
            let (z, source) = machine_zone();
            eprintln!(
                "ecir: warning: TZ='{}' is not a time zone ecir knows; times written without an offset are read in {z} ({source})",
                ecir_model::text::escape_controls(tz, 64)
            );
            eprintln!("  hint: give --tz with an IANA name such as Asia/Tokyo");
            return Ok((z, format!("{source}; TZ was not recognised")));
        }
    }
    Ok(machine_zone())
}

/// A POSIX `TZ` without daylight saving, such as `JST-9` or `UTC0` (the sign is west of
/// Greenwich, as in POSIX), as the `Etc/GMT±N` zone of the same offset; whole hours only.
fn posix_fixed_offset(tz: &str) -> Option<Tz> {
    let name_len = tz.bytes().take_while(u8::is_ascii_alphabetic).count();
    let offset = &tz[name_len..];
    if name_len < 3 || offset.is_empty() {
        return None;
    }
    let hours: i32 = offset.strip_prefix('+').unwrap_or(offset).parse().ok()?;
    if !(-14..=12).contains(&hours) || offset.len() > 3 {
        return None;
    }
    let name = match hours {
        0 => "Etc/GMT".to_string(),
        h if h > 0 => format!("Etc/GMT+{h}"),
        h => format!("Etc/GMT{h}"),
    };
    name.parse().ok()
}

/// The machine's zone, and how it was found.
fn machine_zone() -> (Tz, String) {
    match iana_time_zone::get_timezone() {
        Ok(name) => match name.parse::<Tz>() {
            Ok(z) => (z, "machine zone".into()),
            Err(_) => (
                Tz::UTC,
                format!("UTC (machine zone '{name}' not recognised)"),
            ),
        },
        Err(_) => (Tz::UTC, "UTC (machine zone unknown)".into()),
    }
}

/// RFC 3339, or a date / date-time without zone read in `tz`.
pub fn parse_time(s: &str, ctx: &ParseContext) -> Result<Timestamp, String> {
    if let Some(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    let s2 = s.trim().replace('T', " ");
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&s2, fmt) {
            return ctx
                .local_to_timestamp(n, 0)
                .ok_or_else(|| format!("'{s}' does not exist in {}", ctx.tz));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(&s2, "%Y-%m-%d") {
        let n = d.and_hms_opt(0, 0, 0).expect("midnight");
        return ctx
            .local_to_timestamp(n, 0)
            .ok_or_else(|| format!("'{s}' does not exist in {}", ctx.tz));
    }
    Err(format!(
        "'{s}' is not a time; use RFC 3339 (2026-11-03T02:00:00+09:00) or YYYY-MM-DD[ HH:MM[:SS]]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Offset, TimeZone};

    #[test]
    fn posix_tz_without_daylight_saving_is_its_fixed_offset() {
        let east = |tz: &str| {
            posix_fixed_offset(tz).map(|z| {
                z.offset_from_utc_datetime(&chrono::NaiveDateTime::default())
                    .fix()
                    .local_minus_utc()
            })
        };
        assert_eq!(east("JST-9"), Some(9 * 3600));
        assert_eq!(east("EST5"), Some(-5 * 3600));
        assert_eq!(east("UTC0"), Some(0));
        for bad in ["garbage", "JST", "J-9", "JST-99", "JST-9:30", ""] {
            assert_eq!(east(bad), None, "{bad}");
        }
    }
}
