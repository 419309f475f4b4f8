//! Stream grouping by file name: recognising the rotation schemes that turn one log into many
//! files (`access_log-20261101.gz`, `access.log.2.gz`, `admin-2026-11-01.log`, …) and the
//! order the rotation implies (oldest first).

/// What a file name says about the stream it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationName {
    /// The stream's base name: the file name without compression suffix, rotation number or
    /// date (`access_log`, `access.log`, `admin.log`).
    pub base: String,
    /// Date (or date-time digits, `YYYYMMDD[HH[MM[SS]]]` as a number) written in the name.
    pub date: Option<u64>,
    /// Rotation number (`.1`, `.2`): higher is older.
    pub number: Option<u32>,
    /// Compression suffix removed from the name (`gz`, …).
    pub compressed_suffix: Option<String>,
}

impl RotationName {
    /// A key that sorts files of one stream oldest first: dated files by date, numbered files
    /// by descending number, the live (unrotated) file last.
    pub fn order_key(&self) -> (u64, std::cmp::Reverse<u32>) {
        (
            self.date.unwrap_or(u64::MAX),
            std::cmp::Reverse(self.number.unwrap_or(0)),
        )
    }
}

const COMPRESSION_SUFFIXES: [&str; 6] = ["gz", "bz2", "xz", "zst", "zip", "Z"];

/// Parses a file name (not a path) into its stream base and rotation position.
pub fn parse_name(name: &str) -> RotationName {
    let mut rest = name.to_string();
    let mut compressed_suffix = None;
    for suf in COMPRESSION_SUFFIXES {
        if let Some(stem) = rest.strip_suffix(&format!(".{suf}")) {
            if !stem.is_empty() {
                compressed_suffix = Some(suf.to_string());
                rest = stem.to_string();
                break;
            }
        }
    }
    // Numeric rotation: `.1`, `.12` (logrotate, newsyslog), also `-1`.
    let mut number = None;
    if let Some(pos) = rest.rfind(['.', '-', '_']) {
        let tail = &rest[pos + 1..];
        // A digit before the separator means the tail ends a date (`…2026-11-01`).
        let after_digit = pos > 0 && rest.as_bytes()[pos - 1].is_ascii_digit();
        if !tail.is_empty()
            && tail.len() <= 3
            && tail.bytes().all(|b| b.is_ascii_digit())
            && pos > 0
            && !after_digit
        {
            number = tail.parse().ok();
            rest.truncate(pos);
        }
    }
    let (base, date) = strip_date(&rest);
    RotationName {
        base,
        date,
        number,
        compressed_suffix,
    }
}

/// Finds the last date in `s` (`YYYYMMDD`, `YYYY-MM-DD`, `YYYY_MM_DD`, `YYYY.MM.DD`, optionally
/// followed by up to 6 time digits) and removes it with the separator before it.
fn strip_date(s: &str) -> (String, Option<u64>) {
    let b = s.as_bytes();
    let mut best: Option<(usize, usize, u64)> = None;
    let mut i = 0;
    while i < b.len() {
        if let Some((end, value)) = date_at(b, i) {
            let prev_digit = i > 0 && b[i - 1].is_ascii_digit();
            if !prev_digit {
                best = Some((i, end, value));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    match best {
        None => (s.to_string(), None),
        Some((start, end, value)) => {
            let mut cut = start;
            if cut > 0 && matches!(b[cut - 1], b'-' | b'_' | b'.') {
                cut -= 1;
            }
            let mut base = String::with_capacity(s.len());
            base.push_str(&s[..cut]);
            let mut tail = &s[end..];
            if cut == start && tail.starts_with(['-', '_', '.']) && cut == 0 {
                tail = &tail[1..];
            }
            base.push_str(tail);
            if base.is_empty() {
                base.push_str("log");
            }
            (base, Some(value))
        }
    }
}

/// A date starting at `i`: returns (end, YYYYMMDD[time] as number) when plausible.
fn date_at(b: &[u8], i: usize) -> Option<(usize, u64)> {
    let digits = |from: usize, n: usize| -> Option<u64> {
        let s = b.get(from..from + n)?;
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).ok()?.parse().ok()
        } else {
            None
        }
    };
    let y = digits(i, 4)?;
    if !(1990..=2199).contains(&y) {
        return None;
    }
    let (mo, d, mut end) = match b.get(i + 4) {
        Some(&sep @ (b'-' | b'_' | b'.')) => {
            let mo = digits(i + 5, 2)?;
            if b.get(i + 7) != Some(&sep) {
                return None;
            }
            (mo, digits(i + 8, 2)?, i + 10)
        }
        _ => (digits(i + 4, 2)?, digits(i + 6, 2)?, i + 8),
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut value = y * 10_000 + mo * 100 + d;
    // Optional time digits directly after (hourly rotation: 2026110113).
    let mut extra = 0;
    while extra < 6 && b.get(end).is_some_and(u8::is_ascii_digit) {
        value = value * 10 + u64::from(b[end] - b'0');
        end += 1;
        extra += 1;
    }
    if b.get(end).is_some_and(u8::is_ascii_digit) || extra % 2 == 1 {
        return None;
    }
    // Normalise to 14 digits so dates with and without time compare.
    for _ in extra..6 {
        value *= 10;
    }
    Some((end, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(n: &str) -> String {
        parse_name(n).base
    }

    #[test]
    fn common_schemes_share_a_base() {
        assert_eq!(base("access_log"), "access_log");
        assert_eq!(base("access_log-20261101"), "access_log");
        assert_eq!(base("access_log-20261101.gz"), "access_log");
        assert_eq!(base("access.log"), "access.log");
        assert_eq!(base("access.log.1"), "access.log");
        assert_eq!(base("access.log.2.gz"), "access.log");
        assert_eq!(base("admin-2026-11-01.log"), "admin.log");
        assert_eq!(base("site-2026-11-01.log"), "site.log");
        assert_eq!(base("ssl_access_log.2026-11-01"), "ssl_access_log");
        assert_eq!(base("error.log-2026110112.gz"), "error.log");
        assert_eq!(base("2026-11-01.log"), "log");
        assert_ne!(base("admin-2026-11-01.log"), base("site-2026-11-01.log"));
    }

    #[test]
    fn rotation_order_is_oldest_first() {
        let mut names = vec![
            "access.log",
            "access.log.1",
            "access.log.10.gz",
            "access.log.2.gz",
        ];
        names.sort_by_key(|n| parse_name(n).order_key());
        assert_eq!(
            names,
            vec![
                "access.log.10.gz",
                "access.log.2.gz",
                "access.log.1",
                "access.log"
            ]
        );
        let mut dated = vec![
            "access_log",
            "access_log-20261102.gz",
            "access_log-20261101",
        ];
        dated.sort_by_key(|n| parse_name(n).order_key());
        assert_eq!(
            dated,
            vec![
                "access_log-20261101",
                "access_log-20261102.gz",
                "access_log"
            ]
        );
        assert_eq!(
            parse_name("access_log-20261101.gz").date,
            Some(20261101000000)
        );
        assert_eq!(parse_name("x.log.2.gz").number, Some(2));
    }

    #[test]
    fn not_dates_are_kept() {
        assert_eq!(base("shop12345678.log"), "shop12345678.log");
        assert_eq!(parse_name("app-20261399.log").date, None);
        assert_eq!(base("v1.2.3"), "v1.2.3");
    }
}
