//! Client sessions as access logs can show them: the client IP plus user agent, ended by an
//! inactivity gap (30 minutes by default, `CardConfig::session_gap_secs`).
//!
//! One notion for the exposure window (one completed order per session) and for card-testing
//! velocity (checkout submissions per session). Access logs carry no session cookie, so
//! customers sharing an IP and browser are one session, a client rotating user agents on one IP
//! is several, and one rotating IPs behind one cookie is invisible: callers say so.

use std::collections::BTreeMap;

/// Splits the hits of each key into sessions. Feed each key's hits in time order.
#[derive(Debug)]
pub struct Sessions<K> {
    gap_ms: i64,
    last: BTreeMap<K, i64>,
}

impl<K: Ord> Sessions<K> {
    /// Sessions ended by `gap_secs` without a hit (at least one second).
    pub fn new(gap_secs: i64) -> Self {
        Sessions {
            gap_ms: gap_secs.max(1).saturating_mul(1000),
            last: BTreeMap::new(),
        }
    }

    /// Records a hit of `key` at `utc_ms`; true when it starts a new session (the key's first
    /// hit, or more than the gap after its previous one).
    pub fn hit(&mut self, key: K, utc_ms: i64) -> bool {
        let gap = self.gap_ms;
        match self.last.get_mut(&key) {
            Some(t) => {
                let new = utc_ms.saturating_sub(*t) > gap;
                *t = utc_ms;
                new
            }
            None => {
                self.last.insert(key, utc_ms);
                true
            }
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Forgets the keys whose session ended before `now_ms` (their last hit more than the gap
    /// before it). When hits are fed in time order and `now_ms` is the latest, this changes
    /// no later answer: a forgotten key's next hit starts a new session either way.
    pub fn forget_ended(&mut self, now_ms: i64) {
        let gap = self.gap_ms;
        self.last.retain(|_, t| now_ms.saturating_sub(*t) <= gap);
    }

    /// The gap in minutes, for explanations.
    pub fn gap_minutes(&self) -> i64 {
        self.gap_ms / 60_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_longer_than_the_limit_starts_a_new_session() {
        let mut s = Sessions::new(1800);
        assert!(s.hit(("a", 1), 0));
        assert!(!s.hit(("a", 1), 1_800_000));
        // The gap runs from the last hit, not the first.
        assert!(!s.hit(("a", 1), 3_000_000));
        assert!(s.hit(("a", 1), 3_000_000 + 1_800_001));
        // Another agent on the same IP is another session.
        assert!(s.hit(("a", 2), 10));
        assert_eq!(s.gap_minutes(), 30);
    }
}
