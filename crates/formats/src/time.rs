//! Fast timestamp parsing for the forms logs use, with a per-parser cache so that each
//! distinct timestamp text is parsed once (consecutive lines share their second).

use ecir_model::Timestamp;

use crate::context::ParseContext;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Month number from an English abbreviation (`Jan`…`Dec`, any case).
pub fn month_abbr(b: &[u8]) -> Option<u32> {
    if b.len() != 3 {
        return None;
    }
    let l = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    Some(match &l {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses `HH:MM:SS` into seconds of day.
fn hms(b: &[u8]) -> Option<u32> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = digits(&b[0..2])?;
    let m = digits(&b[3..5])?;
    let s = digits(&b[6..8])?;
    (h < 24 && m < 60 && s <= 60).then_some(h * 3600 + m * 60 + s.min(59))
}

/// Parses `+hhmm`, `-hh:mm` or `Z` into seconds east of UTC.
pub fn offset(b: &[u8]) -> Option<i32> {
    if b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &b[1..];
    let (h, m) = match rest.len() {
        4 => (digits(&rest[0..2])?, digits(&rest[2..4])?),
        5 if rest[2] == b':' => (digits(&rest[0..2])?, digits(&rest[3..5])?),
        2 => (digits(rest)?, 0),
        _ => return None,
    };
    (h <= 23 && m < 60).then_some(sign * (h as i32 * 3600 + m as i32 * 60))
}

/// Longest timestamp text [`TimeCache::clf`] remembers; longer ones are parsed every time.
const CLF_KEY: usize = 32;
/// Length of the usual `%t` text (`10/Oct/2000:13:55:36 -0700`), compared inline.
const CLF_LEN: usize = 26;

/// Parser state remembering the last timestamp text and its value.
#[derive(Default)]
pub struct TimeCache {
    /// The last `%t` text is `last_text[..last_len]` (`last_len == 0`: none yet).
    last_text: [u8; CLF_KEY],
    last_len: usize,
    last: Option<Timestamp>,
    /// Cached `dd/Mon/yyyy` prefix and its day number.
    last_date: [u8; 11],
    last_days: i64,
}

impl TimeCache {
    /// Parses the Apache/nginx `%t` form `10/Oct/2000:13:55:36 -0700` (without brackets).
    pub fn clf(&mut self, b: &[u8]) -> Option<Timestamp> {
        // The usual length is compared as a fixed-size array (inline, no library call).
        let hit = if b.len() == CLF_LEN {
            self.last_len == CLF_LEN && self.last_text[..CLF_LEN] == *b
        } else {
            self.last_len == b.len() && self.last_text[..b.len()] == *b
        };
        if hit && !b.is_empty() {
            return self.last;
        }
        let t = self.clf_uncached(b);
        if b.len() <= CLF_KEY {
            self.last_text[..b.len()].copy_from_slice(b);
            self.last_len = b.len();
            self.last = t;
        }
        t
    }

    fn clf_uncached(&mut self, b: &[u8]) -> Option<Timestamp> {
        // 10/Oct/2000:13:55:36 -0700  (offset optional: then it is local time, handled by caller)
        if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
            return None;
        }
        let days = if b[..11] == self.last_date && self.last_days != i64::MIN {
            self.last_days
        } else {
            let d = digits(&b[0..2])?;
            let m = month_abbr(&b[3..6])?;
            let y = i64::from(digits(&b[7..11])?);
            if d == 0 || d > days_in_month(y, m) {
                return None;
            }
            let days = days_from_civil(y, m, d);
            self.last_date.copy_from_slice(&b[..11]);
            self.last_days = days;
            days
        };
        let secs_of_day = hms(&b[12..20])?;
        let rest = &b[20..];
        let (millis, rest) = fraction(rest);
        let rest = trim(rest);
        let off = offset(rest)?;
        let local = days * 86_400 + i64::from(secs_of_day);
        Some(Timestamp::new(
            (local - i64::from(off)) * 1000 + i64::from(millis),
            off,
        ))
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e]
}

/// Reads `.123456` into milliseconds and returns the rest.
fn fraction(b: &[u8]) -> (u32, &[u8]) {
    if b.first() != Some(&b'.') && b.first() != Some(&b',') {
        return (0, b);
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let frac = &b[1..1 + n];
    let mut ms = 0u32;
    for i in 0..3 {
        ms = ms * 10 + frac.get(i).map_or(0, |c| u32::from(c - b'0'));
    }
    (ms, &b[1 + n..])
}

/// Parses ISO 8601 / RFC 3339 (`2026-11-03T02:52:40+09:00`, `2026-11-03 02:52:40.123`,
/// `…Z`). Without an offset the time is local to `ctx.tz`.
pub fn iso8601(b: &[u8], ctx: &ParseContext) -> Option<Timestamp> {
    let b = trim(b);
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let y = digits(&b[0..4])? as i32;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    let sod = hms(&b[11..19])?;
    if mo == 0 || mo > 12 || d == 0 || d > days_in_month(i64::from(y), mo) {
        return None;
    }
    let (millis, rest) = fraction(&b[19..]);
    let rest = trim(rest);
    if rest.is_empty() {
        return ctx.local_parts(y, mo, d, sod / 3600, sod / 60 % 60, sod % 60, millis);
    }
    let off = offset(rest)?;
    let local = days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(sod);
    Some(Timestamp::new(
        (local - i64::from(off)) * 1000 + i64::from(millis),
        off,
    ))
}

/// Parses Unix epoch seconds with optional fraction (`1710205331.123`), or milliseconds when
/// the integer has 13 digits. Shown in UTC.
pub fn epoch(b: &[u8]) -> Option<Timestamp> {
    let b = trim(b);
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 {
        return None;
    }
    let int: i64 = std::str::from_utf8(&b[..int_len]).ok()?.parse().ok()?;
    let (millis, rest) = fraction(&b[int_len..]);
    if !rest.is_empty() {
        return None;
    }
    let ms = if int_len >= 13 {
        int
    } else {
        int * 1000 + i64::from(millis)
    };
    // Plausible log times only: 1995..2100.
    (788_918_400_000..4_102_444_800_000)
        .contains(&ms)
        .then(|| Timestamp::new(ms, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_times() {
        let mut c = TimeCache::default();
        let t = c.clf(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_rfc3339(), "2000-10-10T13:55:36-07:00");
        let t2 = c.clf(b"10/Oct/2000:13:55:37 -0700").unwrap();
        assert_eq!(t2.utc_ms - t.utc_ms, 1000);
        assert_eq!(
            c.clf(b"03/Nov/2026:02:52:40 +0900").unwrap().to_rfc3339(),
            "2026-11-03T02:52:40+09:00"
        );
        assert!(c.clf(b"31/Feb/2026:00:00:00 +0000").is_none());
        assert!(c.clf(b"10/Foo/2000:13:55:36 -0700").is_none());
        assert!(c.clf(b"10/Oct/2000:25:55:36 -0700").is_none());
        assert!(c.clf(b"garbage").is_none());
        // Leap day.
        assert!(c.clf(b"29/Feb/2024:00:00:00 +0000").is_some());
    }

    #[test]
    fn iso_and_epoch() {
        let ctx = ParseContext {
            tz: "Asia/Tokyo".parse().unwrap(),
            ..Default::default()
        };
        assert_eq!(
            iso8601(b"2026-11-03T02:52:40+09:00", &ctx)
                .unwrap()
                .to_rfc3339(),
            "2026-11-03T02:52:40+09:00"
        );
        assert_eq!(
            iso8601(b"2026-11-03 02:52:40.5", &ctx)
                .unwrap()
                .to_rfc3339(),
            "2026-11-03T02:52:40.500+09:00"
        );
        assert_eq!(
            iso8601(b"2026-11-02T17:52:40.123456Z", &ctx)
                .unwrap()
                .to_rfc3339(),
            "2026-11-02T17:52:40.123+00:00"
        );
        assert_eq!(epoch(b"1710205331.123").unwrap().utc_ms, 1_710_205_331_123);
        assert_eq!(epoch(b"1710205331123").unwrap().utc_ms, 1_710_205_331_123);
        assert!(epoch(b"12").is_none());
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
