//! The completion-page hits the exposure window counts ([`crate::post::exposure`]), kept
//! exactly and without a cap: each distinct hit (time, client IP, user agent) is one entry of
//! a [`SpillMap`] that holds [`ORDERS_CAP`] entries in memory per state and writes the rest
//! out as sorted runs. Read back they come in time order, which is what the exposure count
//! walks. A flood of forged completion hits costs disk, not memory.
//!
//! Two hits with the same time, client and agent are one entry (with a count): the exposure
//! count cannot tell them apart either, since the second is the same checkout session.

use std::net::IpAddr;

use ecir_model::Timestamp;

use crate::codec::{self, Cursor, Files};
use crate::spill_map::{SpillMap, Spillable};
use crate::FinishContext;

/// Distinct completion hits held in memory per state before they are written out.
pub const ORDERS_CAP: usize = 1 << 16;

/// One completion-page hit: what the exposure window counts. Ordered by time first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderHit {
    pub utc_ms: i64,
    pub ip: Option<IpAddr>,
    /// FNV-1a of the user agent (sessions are IP + agent).
    pub ua: u64,
}

/// How many times one [`OrderHit`] was logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Logged(pub u64);

impl Spillable for Logged {
    type Key = OrderHit;

    fn encode(key: OrderHit, v: &Logged, out: &mut Vec<u8>) {
        codec::put_i64(out, key.utc_ms);
        codec::put_ip(out, key.ip);
        codec::put_u64(out, key.ua);
        codec::put_u64(out, v.0);
    }

    fn decode(b: &[u8], _files: &mut Files) -> Option<(OrderHit, Logged)> {
        let mut c = Cursor(b);
        let key = OrderHit {
            utc_ms: c.i64()?,
            ip: c.ip()?,
            ua: c.u64()?,
        };
        let n = c.u64()?;
        c.0.is_empty().then_some((key, Logged(n)))
    }

    fn merge(&mut self, other: Logged) {
        self.0 = self.0.saturating_add(other.0);
    }
}

/// Completion hits of a whole run, taken out of the card detector for the exposure window.
pub struct Orders {
    pub(crate) hits: SpillMap<Logged>,
    /// Display offset of the logs (for per-day counts).
    pub offset_secs: i32,
    /// Last web event time, for the window's default end.
    pub last_ts: Option<Timestamp>,
}

impl Default for Orders {
    fn default() -> Self {
        Orders {
            hits: new_table(),
            offset_secs: 0,
            last_ts: None,
        }
    }
}

impl std::fmt::Debug for Orders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orders")
            .field("offset_secs", &self.offset_secs)
            .field("last_ts", &self.last_ts)
            .finish_non_exhaustive()
    }
}

impl Orders {
    /// Orders from hits in any order (tests and callers building them by hand).
    pub fn from_hits(
        hits: impl IntoIterator<Item = OrderHit>,
        offset_secs: i32,
        last_ts: Option<Timestamp>,
    ) -> Orders {
        let mut table = new_table();
        for h in hits {
            record(&mut table, h);
        }
        Orders {
            hits: table,
            offset_secs,
            last_ts,
        }
    }

    /// Every distinct hit in time order (then client, then agent); hits written out are read
    /// back as they come. Problems reading them are reported through `ctx`.
    pub fn into_time_order(self, ctx: &FinishContext) -> impl Iterator<Item = OrderHit> + '_ {
        self.hits
            .into_sorted(ctx, "Completion-page hits (for the exposure count)")
            .map(|(hit, _)| hit)
    }
}

/// The card detector's table of completion hits.
pub(crate) fn new_table() -> SpillMap<Logged> {
    SpillMap::new(ORDERS_CAP, "card-orders")
}

/// Counts one completion hit.
#[inline]
pub(crate) fn record(table: &mut SpillMap<Logged>, hit: OrderHit) {
    let n = table.get_or_default(hit);
    n.0 = n.0.saturating_add(1);
}

/// A customer IP on one day (a day number at the window's offset), for counting distinct
/// customers per day and overall without holding them all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seen;

impl Spillable for Seen {
    type Key = (IpAddr, i64);

    fn encode(key: (IpAddr, i64), _: &Seen, out: &mut Vec<u8>) {
        codec::put_ip(out, Some(key.0));
        codec::put_i64(out, key.1);
    }

    fn decode(b: &[u8], _files: &mut Files) -> Option<((IpAddr, i64), Seen)> {
        let mut c = Cursor(b);
        let ip = c.ip()??;
        let day = c.i64()?;
        c.0.is_empty().then_some(((ip, day), Seen))
    }

    fn merge(&mut self, _: Seen) {}
}

/// The exposure count's table of customer IPs per day.
pub(crate) fn customer_days() -> SpillMap<Seen> {
    SpillMap::new(ORDERS_CAP, "exposure-ips")
}
