//! The Japanese calendar for deadlines: national holidays computed by rule, and the two kinds
//! of closed days deadlines care about.
//!
//! Holidays follow the 国民の祝日に関する法律 as amended: fixed dates, Happy Monday days,
//! the vernal and autumnal equinoxes by the standard approximation formula (valid 1980–2099;
//! the official dates are announced each February by the National Astronomical Observatory and
//! have matched the formula for every year it covers so far), 振替休日 (a holiday on a Sunday
//! moves to the next day that is not a holiday; before 2007, the Monday) and 国民の休日 (a
//! weekday between two holidays). The only hand-written dates are the one-off special laws:
//! the 2019 enthronement days and the 2020/2021 Olympic moves.
//!
//! Year end, made explicit:
//! * [`is_business_day`] (counting `business-days`, as card brands and the PFI programme do)
//!   uses the **bank** calendar: closed on weekends, national holidays and **12/31–1/3**
//!   (銀行法施行令5条). Banks and card companies work on 12/29 and 12/30.
//! * [`is_government_workday`] (moving a calendar-day deadline off a closed day, as for the
//!   APPI 確報 under 行政機関の休日に関する法律2条 / 民法142条) uses the **government** calendar:
//!   closed on weekends, national holidays and **12/29–1/3**.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

/// The `n`th (1-based) given weekday of a month.
fn nth_weekday(y: i32, m: u32, wd: Weekday, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(y, m, wd, n as u8).expect("valid nth weekday")
}

/// Day of March of the vernal equinox (春分日), 1980–2099 formula.
pub fn vernal_equinox_day(y: i32) -> u32 {
    let t = (y - 1980) as f64;
    (20.8431 + 0.242194 * t - ((y - 1980) / 4) as f64).floor() as u32
}

/// Day of September of the autumnal equinox (秋分日), 1980–2099 formula.
pub fn autumnal_equinox_day(y: i32) -> u32 {
    let t = (y - 1980) as f64;
    (23.2488 + 0.242194 * t - ((y - 1980) / 4) as f64).floor() as u32
}

/// 国民の祝日 of a year (not substitute or sandwiched days), in date order.
fn statutory(y: i32) -> Vec<(NaiveDate, &'static str)> {
    let mut v = vec![(d(y, 1, 1), "元日")];
    v.push((
        if y >= 2000 {
            nth_weekday(y, 1, Weekday::Mon, 2)
        } else {
            d(y, 1, 15)
        },
        "成人の日",
    ));
    v.push((d(y, 2, 11), "建国記念の日"));
    if y >= 2020 {
        v.push((d(y, 2, 23), "天皇誕生日"));
    }
    v.push((d(y, 3, vernal_equinox_day(y)), "春分の日"));
    v.push((
        d(y, 4, 29),
        if y >= 2007 {
            "昭和の日"
        } else {
            "みどりの日"
        },
    ));
    if y == 2019 {
        v.push((d(y, 5, 1), "天皇の即位の日"));
    }
    v.push((d(y, 5, 3), "憲法記念日"));
    if y >= 2007 {
        v.push((d(y, 5, 4), "みどりの日"));
    }
    v.push((d(y, 5, 5), "こどもの日"));
    let umi = match y {
        2020 => Some(d(y, 7, 23)),
        2021 => Some(d(y, 7, 22)),
        1996..=2002 => Some(d(y, 7, 20)),
        2003.. => Some(nth_weekday(y, 7, Weekday::Mon, 3)),
        _ => None,
    };
    if let Some(u) = umi {
        v.push((u, "海の日"));
    }
    let sports = match y {
        2020 => d(y, 7, 24),
        2021 => d(y, 7, 23),
        2000.. => nth_weekday(y, 10, Weekday::Mon, 2),
        _ => d(y, 10, 10),
    };
    let yama = match y {
        2020 => Some(d(y, 8, 10)),
        2021 => Some(d(y, 8, 8)),
        2016.. => Some(d(y, 8, 11)),
        _ => None,
    };
    if let Some(m) = yama {
        v.push((m, "山の日"));
    }
    v.push((
        if y >= 2003 {
            nth_weekday(y, 9, Weekday::Mon, 3)
        } else {
            d(y, 9, 15)
        },
        "敬老の日",
    ));
    v.push((d(y, 9, autumnal_equinox_day(y)), "秋分の日"));
    v.push((
        sports,
        if y >= 2020 {
            "スポーツの日"
        } else {
            "体育の日"
        },
    ));
    if y == 2019 {
        v.push((d(y, 10, 22), "即位礼正殿の儀の行われる日"));
    }
    v.push((d(y, 11, 3), "文化の日"));
    v.push((d(y, 11, 23), "勤労感謝の日"));
    if (1989..=2018).contains(&y) {
        v.push((d(y, 12, 23), "天皇誕生日"));
    }
    v.sort();
    v
}

/// Years the holiday rules cover (the equinox formula's range): outside them there are no
/// holidays, only weekends and the year-end days ([`crate::case::parse_time`] refuses such
/// times, so only a hand-edited journal gets here).
pub const YEARS: std::ops::RangeInclusive<i32> = 1980..=2099;

/// Every holiday of a year: 国民の祝日, 振替休日 and 国民の休日, in date order; none outside
/// [`YEARS`].
pub fn holidays(y: i32) -> Vec<(NaiveDate, &'static str)> {
    if !YEARS.contains(&y) {
        return Vec::new();
    }
    let base = statutory(y);
    let is_base = |x: NaiveDate| base.iter().any(|(h, _)| *h == x);
    let mut all = base.clone();
    // 振替休日
    for (h, _) in &base {
        if h.weekday() == Weekday::Sun {
            let mut s = *h + Duration::days(1);
            if y >= 2007 {
                while is_base(s) {
                    s += Duration::days(1);
                }
            }
            if !is_base(s) {
                all.push((s, "振替休日"));
            }
        }
    }
    // 国民の休日: a day (not itself a 国民の祝日) between two 国民の祝日.
    for (h, _) in &base {
        let mid = *h + Duration::days(1);
        let next = *h + Duration::days(2);
        if is_base(next) && !is_base(mid) && mid.weekday() != Weekday::Sun {
            all.push((mid, "国民の休日"));
        }
    }
    all.sort();
    all.dedup_by_key(|(day, _)| *day);
    all
}

/// The holiday's name, when `date` is a Japanese national holiday (incl. substitute days).
pub fn holiday_name(date: NaiveDate) -> Option<&'static str> {
    holidays(date.year())
        .into_iter()
        .find(|(h, _)| *h == date)
        .map(|(_, n)| n)
}

pub fn is_holiday(date: NaiveDate) -> bool {
    holiday_name(date).is_some()
}

fn weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// A Japanese bank business day: not a weekend, national holiday, or 12/31–1/3.
pub fn is_business_day(date: NaiveDate) -> bool {
    let (m, day) = (date.month(), date.day());
    let year_end = (m == 12 && day == 31) || (m == 1 && day <= 3);
    !(weekend(date) || year_end || is_holiday(date))
}

/// A day Japanese government offices are open: not a weekend, national holiday or 12/29–1/3.
pub fn is_government_workday(date: NaiveDate) -> bool {
    let (m, day) = (date.month(), date.day());
    let year_end = (m == 12 && day >= 29) || (m == 1 && day <= 3);
    !(weekend(date) || year_end || is_holiday(date))
}

/// The `n`th bank business day after `date` (`date` itself not counted; `n = 0` is `date`).
pub fn add_business_days(date: NaiveDate, n: i64) -> NaiveDate {
    let mut cur = date;
    let mut left = n;
    while left > 0 {
        cur += Duration::days(1);
        if is_business_day(cur) {
            left -= 1;
        }
    }
    cur
}

/// `date`, or the next government workday when `date` is a closed day.
pub fn roll_forward(date: NaiveDate) -> NaiveDate {
    let mut cur = date;
    while !is_government_workday(cur) {
        cur += Duration::days(1);
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_outside_the_rules_have_no_holidays_and_case_times_there_are_refused() {
        for y in [1, 206, 1979, 2100, 9999] {
            assert!(holidays(y).is_empty(), "{y}");
            // Weekends still close: the calendar answers without panicking.
            let _ = is_business_day(NaiveDate::from_ymd_opt(y, 3, 20).unwrap());
        }
        assert!(!holidays(2099).is_empty());
        for t in [
            "9999-12-31 23:59",
            "0206-11-20",
            "2100-06-01T00:00:00+09:00",
        ] {
            assert!(
                crate::case::parse_time(t, chrono_tz::Asia::Tokyo).is_err(),
                "{t}"
            );
        }
        assert!(crate::case::parse_time("2026-11-20 10:00", chrono_tz::Asia::Tokyo).is_ok());
    }

    #[test]
    fn equinoxes_match_published_dates() {
        // National Astronomical Observatory of Japan announcements (官報).
        for (y, v, a) in [
            (2012, 20, 22),
            (2016, 20, 22),
            (2020, 20, 22),
            (2023, 21, 23),
            (2024, 20, 22),
            (2025, 20, 23),
            (2026, 20, 23),
            (2027, 21, 23),
        ] {
            assert_eq!(vernal_equinox_day(y), v, "vernal {y}");
            assert_eq!(autumnal_equinox_day(y), a, "autumnal {y}");
            assert_eq!(holiday_name(d(y, 3, v)), Some("春分の日"));
            assert_eq!(holiday_name(d(y, 9, a)), Some("秋分の日"));
        }
    }

    #[test]
    fn golden_week_2026_with_substitute() {
        // 5/3 (Sun) 憲法記念日 -> 5/6 (Wed) 振替休日, since 5/4 and 5/5 are holidays.
        assert_eq!(holiday_name(d(2026, 4, 29)), Some("昭和の日"));
        assert_eq!(holiday_name(d(2026, 5, 6)), Some("振替休日"));
        assert!(!is_holiday(d(2026, 5, 7)));
        assert!(!is_holiday(d(2026, 4, 30)));
    }

    #[test]
    fn happy_mondays_and_citizens_holiday() {
        assert_eq!(holiday_name(d(2026, 1, 12)), Some("成人の日"));
        assert_eq!(holiday_name(d(2026, 7, 20)), Some("海の日"));
        assert_eq!(holiday_name(d(2026, 9, 21)), Some("敬老の日"));
        // 2026-09-22 lies between 敬老の日 (21) and 秋分の日 (23).
        assert_eq!(holiday_name(d(2026, 9, 22)), Some("国民の休日"));
        assert_eq!(holiday_name(d(2026, 10, 12)), Some("スポーツの日"));
        // 2019 enthronement: 4/30 and 5/2 are 国民の休日 around 5/1.
        assert_eq!(holiday_name(d(2019, 4, 30)), Some("国民の休日"));
        assert_eq!(holiday_name(d(2019, 5, 2)), Some("国民の休日"));
        // 2024-02-11 (Sun) 建国記念の日 -> 2/12 振替休日; 2027-03-21 (Sun) 春分 -> 3/22.
        assert_eq!(holiday_name(d(2024, 2, 12)), Some("振替休日"));
        assert_eq!(holiday_name(d(2027, 3, 22)), Some("振替休日"));
        // Counts: 2026 has 18 holidays (16 祝日 + 振替 5/6 + 国民の休日 9/22).
        assert_eq!(holidays(2026).len(), 18);
    }

    #[test]
    fn year_end_calendars_differ() {
        assert!(is_business_day(d(2026, 12, 29)));
        assert!(!is_government_workday(d(2026, 12, 29)));
        assert!(!is_business_day(d(2026, 12, 31)));
        assert!(!is_business_day(d(2027, 1, 1)));
        assert!(is_business_day(d(2027, 1, 4)));
        assert_eq!(roll_forward(d(2026, 12, 29)), d(2027, 1, 4));
        // Bank calendar: 12/29 and 12/30 count, 12/31–1/3 do not.
        assert_eq!(add_business_days(d(2026, 12, 28), 3), d(2027, 1, 4));
        assert_eq!(add_business_days(d(2026, 12, 28), 4), d(2027, 1, 5));
    }
}
