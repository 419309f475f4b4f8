//! Deadline arithmetic: from an anchor instant, an offset and a unit to the instant the
//! deadline falls.
//!
//! * `hours`: the anchor plus exactly that many hours (the same instant in every zone).
//! * `days`: the anchor day is not counted (民法140条); the deadline is the end (24:00) of the
//!   `offset`th day after it. With `roll_forward`, a last day on a government closed day moves
//!   to the next workday ([`crate::calendar::roll_forward`]).
//! * `business-days`: the end of the `offset`th bank business day after the anchor day.
//!
//! Days and business days are Japanese calendar days: they are counted on dates in
//! [`DEADLINE_ZONE`] (Asia/Tokyo), whatever zone the case displays times in, because the rules
//! they implement (民法140条, 行政機関の休日に関する法律, the bank calendar) count Japanese days and
//! the holiday calendar is Japan's. A case kept in UTC shows the same instants, in UTC.
//!
//! "End of day" is represented as 00:00 of the following day (an exclusive bound); renderers
//! show it as `24:00` of the last day.

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::calendar;
use crate::format::{Deadline, Unit};

/// The zone whose dates `days` and `business-days` deadlines are counted on.
pub const DEADLINE_ZONE: Tz = chrono_tz::Asia::Tokyo;

/// 00:00 of `date` in `tz` (the earliest valid local time when a DST gap swallows midnight).
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Tz> {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight");
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(a, _) => a,
        chrono::LocalResult::None => {
            tz.from_utc_datetime(&(naive - Duration::hours(1))) + Duration::hours(1)
        }
    }
}

/// When the deadline falls, given the anchor instant (day units counted in [`DEADLINE_ZONE`]);
/// `None` when it cannot be counted: an offset outside `0..=`[`Unit::max_offset`] or an
/// anchor outside [`calendar::YEARS`] (the arithmetic is checked, so no playbook or journal
/// can make it overflow).
pub fn due(d: &Deadline, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = DEADLINE_ZONE;
    let local = anchor.with_timezone(&tz);
    if !(0..=d.unit.max_offset()).contains(&d.offset) || !calendar::YEARS.contains(&local.year()) {
        return None;
    }
    match d.unit {
        Unit::Hours => anchor.checked_add_signed(Duration::try_hours(d.offset)?),
        Unit::Days => {
            let mut last = local
                .date_naive()
                .checked_add_days(Days::new(d.offset.unsigned_abs()))?;
            if d.roll_forward {
                last = calendar::roll_forward(last);
            }
            Some(start_of_day(last.succ_opt()?, tz).with_timezone(&Utc))
        }
        Unit::BusinessDays => {
            let last = calendar::add_business_days(local.date_naive(), d.offset);
            Some(start_of_day(last.succ_opt()?, tz).with_timezone(&Utc))
        }
    }
}

/// Renders a due instant in `tz`: day-unit deadlines as `YYYY-MM-DD 24:00`, others as
/// `YYYY-MM-DD HH:MM`, followed by the zone abbreviation. A day-unit deadline shown in another
/// zone than [`DEADLINE_ZONE`] is followed by the Japanese day it ends, e.g.
/// `2026-12-21 15:00 UTC (2026-12-21 24:00 JST)`.
pub fn show_due(due: DateTime<Utc>, unit: Unit, tz: Tz) -> String {
    let shown = show_in(due, unit, tz);
    if unit != Unit::Hours && tz != DEADLINE_ZONE {
        format!("{shown} ({})", show_in(due, unit, DEADLINE_ZONE))
    } else {
        shown
    }
}

fn show_in(due: DateTime<Utc>, unit: Unit, tz: Tz) -> String {
    let l = due.with_timezone(&tz);
    if unit != Unit::Hours && l.format("%H:%M:%S").to_string() == "00:00:00" {
        let prev = l.date_naive() - Duration::days(1);
        format!("{} 24:00 {}", prev.format("%Y-%m-%d"), l.format("%Z"))
    } else {
        l.format("%Y-%m-%d %H:%M %Z").to_string()
    }
}

/// "2d 3h" style span (days and hours, or hours and minutes under a day).
pub fn span(secs: i64, ja: bool) -> String {
    let s = secs.abs();
    let (d, h, m) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60);
    match (ja, d > 0) {
        (false, true) => format!("{d}d {h}h"),
        (false, false) => format!("{h}h {m}m"),
        (true, true) => format!("{d}日{h}時間"),
        (true, false) => format!("{h}時間{m}分"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Anchor, DeadlineKind};

    fn dl(offset: i64, unit: Unit, roll: bool) -> Deadline {
        Deadline {
            when: None,
            anchor: Anchor::Discovery,
            offset,
            unit,
            kind: DeadlineKind::Hard,
            roll_forward: roll,
            rule: "test".into(),
        }
    }

    fn jst(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const TOKYO: Tz = chrono_tz::Asia::Tokyo;

    /// [`super::due`] for deadlines that can be counted.
    fn due(d: &Deadline, anchor: DateTime<Utc>) -> DateTime<Utc> {
        super::due(d, anchor).expect("a deadline within range")
    }

    #[test]
    fn deadlines_that_cannot_be_counted_are_none_not_a_panic() {
        let t0 = jst("2026-11-20T03:00:00+09:00");
        for unit in [Unit::Hours, Unit::Days, Unit::BusinessDays] {
            for offset in [
                -1,
                unit.max_offset() + 1,
                100_000_000,
                1_000_000_000_000,
                i64::MAX,
            ] {
                assert_eq!(super::due(&dl(offset, unit, true), t0), None);
            }
            assert!(super::due(&dl(unit.max_offset(), unit, false), t0).is_some());
        }
        // An anchor outside the calendar (only a hand-made journal has one).
        let far = DateTime::<Utc>::MAX_UTC - Duration::days(1);
        assert_eq!(super::due(&dl(1, Unit::Days, true), far), None);
    }

    #[test]
    fn hours_are_exact() {
        let t0 = jst("2026-11-26T22:30:00+09:00");
        assert_eq!(
            due(&dl(72, Unit::Hours, false), t0),
            jst("2026-11-29T22:30:00+09:00")
        );
        assert_eq!(due(&dl(24, Unit::Hours, false), t0), t0 + Duration::days(1));
    }

    #[test]
    fn calendar_days_exclude_the_first_day() {
        // Known at 23:50 on 4/1: day 30 is 5/1, deadline 5/1 24:00.
        let t0 = jst("2026-04-01T23:50:00+09:00");
        let d = due(&dl(30, Unit::Days, false), t0);
        assert_eq!(d, jst("2026-05-02T00:00:00+09:00"));
        assert_eq!(show_due(d, Unit::Days, TOKYO), "2026-05-01 24:00 JST");
        assert_eq!(
            show_due(d, Unit::Days, chrono_tz::UTC),
            "2026-05-01 15:00 UTC (2026-05-01 24:00 JST)"
        );
    }

    #[test]
    fn day_units_count_japanese_dates_whatever_the_display_zone() {
        // 2026-11-20 20:00 UTC is already 11/21 in Tokyo: day 1 is 11/22, day 30 is 12/21.
        let t0 = jst("2026-11-20T20:00:00Z");
        let d = due(&dl(30, Unit::Days, true), t0);
        assert_eq!(d, jst("2026-12-22T00:00:00+09:00"));
        assert_eq!(
            show_due(d, Unit::Days, chrono_tz::UTC),
            "2026-12-21 15:00 UTC (2026-12-21 24:00 JST)"
        );
        // Business days too: Fri 11/20 in UTC is Sat 11/21 in Tokyo; 23 Mon is
        // 勤労感謝の日, so BD1 is Tue 11/24.
        let b = due(&dl(1, Unit::BusinessDays, false), t0);
        assert_eq!(b, jst("2026-11-25T00:00:00+09:00"));
        // Hours are the same instant in every zone.
        assert_eq!(
            show_due(
                due(&dl(72, Unit::Hours, false), t0),
                Unit::Hours,
                chrono_tz::UTC
            ),
            "2026-11-23 20:00 UTC"
        );
    }

    #[test]
    fn roll_forward_over_golden_week_and_year_end() {
        // 60 days from 2026-03-04 is 5/3 (Sun, 憲法記念日) -> 5/4, 5/5 holidays, 5/6 振替休日 -> 5/7.
        let t0 = jst("2026-03-04T10:00:00+09:00");
        let d = due(&dl(60, Unit::Days, true), t0);
        assert_eq!(show_due(d, Unit::Days, TOKYO), "2026-05-07 24:00 JST");
        let no_roll = due(&dl(60, Unit::Days, false), t0);
        assert_eq!(show_due(no_roll, Unit::Days, TOKYO), "2026-05-03 24:00 JST");
        // 30 days from 11/29 is 12/29 -> government closed until 1/3 -> 2027-01-04.
        let t0 = jst("2026-11-29T09:00:00+09:00");
        let d = due(&dl(30, Unit::Days, true), t0);
        assert_eq!(show_due(d, Unit::Days, TOKYO), "2027-01-04 24:00 JST");
    }

    #[test]
    fn business_days_skip_holidays() {
        // From Tue 2026-04-28: 4/29 昭和の日, 4/30 (1), 5/1 (2), GW incl. 5/6 振替休日,
        // 5/7 (3), 5/8 (4), 5/11 (5).
        let t0 = jst("2026-04-28T15:00:00+09:00");
        let d = due(&dl(5, Unit::BusinessDays, false), t0);
        assert_eq!(
            show_due(d, Unit::BusinessDays, TOKYO),
            "2026-05-11 24:00 JST"
        );
        // Equinox: from Fri 2026-09-18, 9/21 敬老, 9/22 国民の休日, 9/23 秋分 -> 9/24 is BD1.
        let t0 = jst("2026-09-18T12:00:00+09:00");
        let d = due(&dl(1, Unit::BusinessDays, false), t0);
        assert_eq!(
            show_due(d, Unit::BusinessDays, TOKYO),
            "2026-09-24 24:00 JST"
        );
        // Vernal equinox 2027-03-21 is a Sunday: 3/22 振替休日; from Fri 3/19, BD1 is 3/23.
        let t0 = jst("2027-03-19T12:00:00+09:00");
        let d = due(&dl(1, Unit::BusinessDays, false), t0);
        assert_eq!(
            show_due(d, Unit::BusinessDays, TOKYO),
            "2027-03-23 24:00 JST"
        );
        // Year end (bank calendar): from Mon 12/28, 3 BD -> 12/29, 12/30, 1/4.
        let t0 = jst("2026-12-28T12:00:00+09:00");
        let d = due(&dl(3, Unit::BusinessDays, false), t0);
        assert_eq!(
            show_due(d, Unit::BusinessDays, TOKYO),
            "2027-01-04 24:00 JST"
        );
    }

    #[test]
    fn spans() {
        assert_eq!(span(2 * 86400 + 3 * 3600 + 59, false), "2d 3h");
        assert_eq!(span(-(5 * 3600 + 60), true), "5時間1分");
    }
}
