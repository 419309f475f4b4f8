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
    }
    match iana_time_zone::get_timezone() {
        Ok(name) => match name.parse::<Tz>() {
            Ok(z) => Ok((z, "machine zone".into())),
            Err(_) => Ok((
                Tz::UTC,
                format!("UTC (machine zone '{name}' not recognised)"),
            )),
        },
        Err(_) => Ok((Tz::UTC, "UTC (machine zone unknown)".into())),
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
