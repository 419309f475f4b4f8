//! Instants with the UTC offset they were written in.
//!
//! Log lines carry local time with an offset (`+0900`), UTC (`Z`) or no zone at all (read in
//! the user's `--tz`). A [`Timestamp`] keeps the absolute instant in milliseconds since the
//! Unix epoch plus the offset to show it in, so the report prints times the way the evidence
//! wrote them while ordering and arithmetic use the absolute instant.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An absolute instant plus the UTC offset (seconds east) it is displayed in.
#[derive(Copy, Clone, Debug)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub utc_ms: i64,
    /// Offset from UTC in seconds, east positive.
    pub offset_secs: i32,
}

impl Timestamp {
    pub fn new(utc_ms: i64, offset_secs: i32) -> Self {
        Timestamp {
            utc_ms,
            offset_secs,
        }
    }

    pub fn from_secs(utc_secs: i64, offset_secs: i32) -> Self {
        Timestamp::new(utc_secs * 1000, offset_secs)
    }

    /// Seconds since the epoch (floor).
    pub fn secs(&self) -> i64 {
        self.utc_ms.div_euclid(1000)
    }

    pub fn to_datetime(&self) -> DateTime<FixedOffset> {
        let offset = FixedOffset::east_opt(self.offset_secs)
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
        let utc = Utc
            .timestamp_millis_opt(self.utc_ms)
            .single()
            .unwrap_or_else(|| Utc.timestamp_millis_opt(0).single().expect("epoch"));
        utc.with_timezone(&offset)
    }

    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Self {
        Timestamp::new(dt.timestamp_millis(), dt.offset().fix().local_minus_utc())
    }

    /// RFC 3339 with an explicit offset; milliseconds only when they are not zero.
    pub fn to_rfc3339(&self) -> String {
        let dt = self.to_datetime();
        if self.utc_ms.rem_euclid(1000) == 0 {
            dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
        } else {
            dt.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
        }
    }

    /// Parses RFC 3339 (as written by [`Timestamp::to_rfc3339`]).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Timestamp::from_datetime(&dt))
    }

    /// The same instant shown in another offset.
    pub fn with_offset(&self, offset_secs: i32) -> Self {
        Timestamp::new(self.utc_ms, offset_secs)
    }
}

use chrono::Offset;

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timestamp {}
impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timestamp {
    /// Ordered by instant; equal instants by offset, so sorting is total and deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        self.utc_ms
            .cmp(&other.utc_ms)
            .then(self.offset_secs.cmp(&other.offset_secs))
    }
}
impl std::hash::Hash for Timestamp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.utc_ms.hash(state);
        self.offset_secs.hash(state);
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_keeps_offset() {
        let t = Timestamp::from_secs(971_211_336, -7 * 3600);
        assert_eq!(t.to_rfc3339(), "2000-10-10T13:55:36-07:00");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[test]
    fn millis_shown_only_when_present() {
        let t = Timestamp::new(971_211_336_250, 0);
        assert_eq!(t.to_rfc3339(), "2000-10-10T20:55:36.250+00:00");
    }
}
