//! Stream grouping by file name: recognising the rotation schemes that turn one log into many
//! files (`access_log-20261101.gz`, `access.log.2.gz`, `admin-2026-11-01.log`, …) and the
//! order the rotation implies (oldest first). Services that write a new, uniquely named file
//! per period are recognised too: IIS (`u_ex261103.log`), AWS ALB
//! (`…_elasticloadbalancing_…_20261103T0005Z_10.0.0.5_2a3b.log.gz`) and CloudFront
//! (`E2ABC.2026-11-03-05.a1b2c3d4.gz`), so each is one stream, not one per file.

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

/// Suffixes people add when they copy one file of a log by hand (`cp x x.bak`,
/// `zcat x.gz > x.txt`, a file manager's `x-copy`): see [`copy_suffix`].
pub const COPY_SUFFIXES: [&str; 5] = [".bak", ".orig", ".old", ".txt", "~"];

/// The name without a hand-made copy suffix, and that suffix, when `name` (a file name, not a
/// path) ends with one: `.bak`, `.orig`, `.old`, `.txt`, `~` (any case), or `-copy`, `_copy`,
/// `.copy`, ` copy`, optionally followed by digits (`access.log-copy30`). The stem must be
/// left with something.
pub fn copy_suffix(name: &str) -> Option<(&str, &str)> {
    let lower = name.to_ascii_lowercase();
    for suf in COPY_SUFFIXES {
        if lower.len() > suf.len() && lower.ends_with(suf) {
            let at = name.len() - suf.len();
            return Some((&name[..at], &name[at..]));
        }
    }
    let digits = lower.bytes().rev().take_while(u8::is_ascii_digit).count();
    let body = &lower[..lower.len() - digits];
    for sep in ['-', '_', '.', ' '] {
        let suf = format!("{sep}copy");
        if body.len() > suf.len() && body.ends_with(&suf) {
            let at = body.len() - suf.len();
            return Some((&name[..at], &name[at..]));
        }
    }
    None
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
    if let Some((base, date)) = service_name(&rest) {
        return RotationName {
            base,
            date: Some(date),
            number: None,
            compressed_suffix,
        };
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

/// The stream and date-time (14 digits) of a file a service names per period, if `name` (without
/// compression suffix) is one: IIS `u_exYYMMDD[HH].log` (also `ex`, `u_in`, `in`, `u_nc`,
/// `nc`), ALB `ACCOUNT_elasticloadbalancing_REGION_LB_YYYYMMDDTHHMMZ_NODE_RANDOM.log`,
/// CloudFront `DISTRIBUTION.YYYY-MM-DD-HH.UNIQUE`.
fn service_name(name: &str) -> Option<(String, u64)> {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // IIS: the prefix says which log format; two-digit year, optional hour.
    if let Some(stem) = name.strip_suffix(".log") {
        for prefix in ["u_ex", "u_in", "u_nc", "ex", "in", "nc"] {
            if let Some(d) = stem.strip_prefix(prefix) {
                if (d.len() == 6 || d.len() == 8) && all_digits(d) {
                    let value = date_at(format!("20{d}").as_bytes(), 0)?.1;
                    return Some((format!("{prefix}.log"), value));
                }
            }
        }
    }
    // ALB: the load balancer's part ends at the `_` before the end time.
    if name.contains("_elasticloadbalancing_") {
        let stem = name.strip_suffix(".log").unwrap_or(name);
        let parts: Vec<&str> = stem.split('_').collect();
        let at = parts.iter().position(|p| {
            p.len() == 14
                && p.ends_with('Z')
                && p.as_bytes()[8] == b'T'
                && all_digits(&p[..8])
                && all_digits(&p[9..13])
        })?;
        let p = parts[at];
        let value = date_at(format!("{}{}", &p[..8], &p[9..13]).as_bytes(), 0)?.1;
        return Some((parts[..at].join("_"), value));
    }
    // CloudFront: a distribution id in capitals, then the hour.
    let mut dots = name.splitn(3, '.');
    let (dist, when, unique) = (dots.next()?, dots.next()?, dots.next()?);
    let w = when.as_bytes();
    if dist.len() >= 8
        && dist
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && when.len() == 13
        && w[10] == b'-'
        && !unique.is_empty()
        && !unique.contains('.')
    {
        let value = date_at(format!("{}{}", &when[..10], &when[11..]).as_bytes(), 0)?.1;
        return Some((format!("{dist}.cloudfront"), value));
    }
    None
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
    fn per_period_service_files_are_one_stream_each() {
        for (names, base, first) in [
            (
                ["u_ex261103.log", "u_ex261104.log", "u_ex26110413.log"],
                "u_ex.log",
                20261103000000,
            ),
            (
                [
                    "123456789012_elasticloadbalancing_ap-northeast-1_app.shop-lb.50dc6c495c0c9188_20261103T0005Z_10.0.1.5_2a3b4c5d.log.gz",
                    "123456789012_elasticloadbalancing_ap-northeast-1_app.shop-lb.50dc6c495c0c9188_20261103T0010Z_10.0.2.7_9f8e7d6c.log.gz",
                    "123456789012_elasticloadbalancing_ap-northeast-1_app.shop-lb.50dc6c495c0c9188_20261104T0000Z_10.0.1.5_00aa11bb.log.gz",
                ],
                "123456789012_elasticloadbalancing_ap-northeast-1_app.shop-lb.50dc6c495c0c9188",
                20261103000500,
            ),
            (
                [
                    "E2ABCDEF12345.2026-11-03-05.a1b2c3d4.gz",
                    "E2ABCDEF12345.2026-11-03-06.ffee0011.gz",
                    "E2ABCDEF12345.2026-11-04-00.12345678.gz",
                ],
                "E2ABCDEF12345.cloudfront",
                20261103050000,
            ),
        ] {
            let parsed: Vec<RotationName> = names.iter().map(|n| parse_name(n)).collect();
            assert!(parsed.iter().all(|p| p.base == base), "{parsed:?}");
            assert_eq!(parsed[0].date, Some(first));
            assert!(parsed[0].order_key() < parsed[1].order_key());
            assert!(parsed[1].order_key() < parsed[2].order_key());
        }
        // Look-alikes stay what they were.
        assert_eq!(base("ex12.log"), "ex12.log");
        assert_eq!(base("index.html"), "index.html");
        assert_ne!(base("access.2026-11-03-05.log"), "access.cloudfront");
        assert_ne!(
            base("E2ABCDEF12345.2026-11-03-05.a.b"),
            "E2ABCDEF12345.cloudfront"
        );
    }

    #[test]
    fn hand_made_copy_suffixes() {
        assert_eq!(
            copy_suffix("access.log.100.gz.bak"),
            Some(("access.log.100.gz", ".bak"))
        );
        assert_eq!(
            copy_suffix("access.log-20261021.txt"),
            Some(("access.log-20261021", ".txt"))
        );
        assert_eq!(
            copy_suffix("access.log-copy30"),
            Some(("access.log", "-copy30"))
        );
        assert_eq!(copy_suffix("error_log.ORIG"), Some(("error_log", ".ORIG")));
        assert_eq!(copy_suffix("access_log~"), Some(("access_log", "~")));
        assert_eq!(
            copy_suffix("access_log_copy"),
            Some(("access_log", "_copy"))
        );
        for plain in [
            "access.log",
            "access.log.2.gz",
            ".bak",
            "copy",
            "-copy",
            "photocopy.log",
        ] {
            assert_eq!(copy_suffix(plain), None, "{plain}");
        }
    }

    #[test]
    fn not_dates_are_kept() {
        assert_eq!(base("shop12345678.log"), "shop12345678.log");
        assert_eq!(parse_name("app-20261399.log").date, None);
        assert_eq!(base("v1.2.3"), "v1.2.3");
    }
}
