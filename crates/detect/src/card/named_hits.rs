//! The card detector's tables keyed by a name that a request chooses: same-origin drops and
//! image beacons by path, page views of off-flow files by path, completion hits by referer
//! host. Forged requests (a referer claiming a checkout page, long queries on invented image
//! names) can make every name new, so each table is a [`SpillMap`] keyed by a 128-bit hash of
//! the name: past [`NAME_CAP`] names a state writes them out as a sorted run, and every
//! name's hits still merge exactly at the end.

use std::collections::BTreeMap;

use super::{merge_hits, PathHits, MAX_PATH_IPS};
use crate::codec::{self, Cursor, Files};
use crate::evidence::SmallestSet;
use crate::spill_map::{SpillMap, Spillable};

/// Names a state holds in memory per table before writing them out. A shop has a handful
/// of drop, beacon or off-flow paths and referer hosts; the cap only matters under a flood.
pub(super) const NAME_CAP: usize = 4096;

/// A 128-bit hash of a name: the key of the tables (two names sharing one are not expected).
pub(super) type NameKey = (u64, u64);

pub(super) fn name_key(name: &str) -> NameKey {
    codec::key128(name.as_bytes())
}

/// A name and its hits.
#[derive(Default, Debug)]
pub(super) struct NamedHits {
    pub name: Box<str>,
    pub hits: PathHits,
}

impl NamedHits {
    /// The hits of `name` in `map`, a new entry keeping up to [`MAX_PATH_IPS`] clients.
    pub(super) fn of<'m>(map: &'m mut SpillMap<NamedHits>, name: &str) -> &'m mut PathHits {
        let e = map.get_or_default(name_key(name));
        if e.hits.count == 0 && e.name.is_empty() {
            e.name = name.into();
            e.hits.ips = SmallestSet::new(MAX_PATH_IPS);
        }
        &mut e.hits
    }

    /// How many distinct clients (at least, once the set overflowed).
    pub(super) fn clients(&self) -> usize {
        self.hits.ips.exact_len().unwrap_or(MAX_PATH_IPS)
    }
}

impl Spillable for NamedHits {
    type Key = NameKey;

    fn encode(key: NameKey, v: &NamedHits, out: &mut Vec<u8>) {
        codec::put_u64(out, key.0);
        codec::put_u64(out, key.1);
        codec::put_bytes(out, v.name.as_bytes());
        let h = &v.hits;
        codec::put_u64(out, h.count);
        codec::put_u64(out, h.checkout_refs);
        codec::put_span(out, &h.span);
        codec::put_ip_set(out, &h.ips);
        codec::put_evidence(out, &h.ev);
        codec::put_u32(out, h.firsts.len() as u32);
        for (ip, t) in &h.firsts {
            codec::put_ip(out, Some(*ip));
            codec::put_i64(out, *t);
        }
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<(NameKey, NamedHits)> {
        let mut c = Cursor(b);
        let key = (c.u64()?, c.u64()?);
        let name: Box<str> = c.str()?.into();
        let count = c.u64()?;
        let checkout_refs = c.u64()?;
        let span = c.span()?;
        let ips = c.ip_set(MAX_PATH_IPS)?;
        let ev = c.evidence(files)?;
        let mut firsts = BTreeMap::new();
        for _ in 0..c.count(13)? {
            let ip = c.ip()??;
            firsts.insert(ip, c.i64()?);
        }
        let hits = PathHits {
            ips,
            span,
            count,
            checkout_refs,
            ev,
            firsts,
        };
        c.0.is_empty().then_some((key, NamedHits { name, hits }))
    }

    fn merge(&mut self, other: NamedHits) {
        if self.name.is_empty() {
            self.name = other.name;
        }
        merge_hits(&mut self.hits, other.hits);
    }
}

/// A name and a count (page views of an off-flow file).
#[derive(Default, Debug)]
pub(super) struct NamedCount {
    pub name: Box<str>,
    pub count: u64,
}

impl NamedCount {
    /// Counts one more for `name` in `map`.
    pub(super) fn add(map: &mut SpillMap<NamedCount>, name: &str) {
        let e = map.get_or_default(name_key(name));
        if e.count == 0 {
            e.name = name.into();
        }
        e.count += 1;
    }
}

impl Spillable for NamedCount {
    type Key = NameKey;

    fn encode(key: NameKey, v: &NamedCount, out: &mut Vec<u8>) {
        codec::put_u64(out, key.0);
        codec::put_u64(out, key.1);
        codec::put_bytes(out, v.name.as_bytes());
        codec::put_u64(out, v.count);
    }

    fn decode(b: &[u8], _files: &mut Files) -> Option<(NameKey, NamedCount)> {
        let mut c = Cursor(b);
        let key = (c.u64()?, c.u64()?);
        let name: Box<str> = c.str()?.into();
        let count = c.u64()?;
        c.0.is_empty().then_some((key, NamedCount { name, count }))
    }

    fn merge(&mut self, other: NamedCount) {
        if self.name.is_empty() {
            self.name = other.name;
        }
        self.count += other.count;
    }
}

/// Names ranked for findings: those with the most clients (then hits, then the smaller
/// name) kept whole, at most a given number, and the others summed.
pub(super) struct Ranked {
    pub kept: Vec<NamedHits>,
    /// The other names' hits, merged (clients and evidence bounded as for one name).
    pub rest: PathHits,
    /// How many other names, and the most clients one of them had.
    pub rest_names: u64,
    pub rest_most_clients: usize,
}

/// A name's hits ordered by rank: more clients, then more hits, then the smaller name first.
struct ByRank(NamedHits);

impl ByRank {
    fn key(&self) -> (usize, u64, std::cmp::Reverse<&str>) {
        (
            self.0.clients(),
            self.0.hits.count,
            std::cmp::Reverse(&*self.0.name),
        )
    }
}

impl PartialEq for ByRank {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for ByRank {}
impl PartialOrd for ByRank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByRank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Keeps the best `keep` of `items` by rank and sums the rest, holding at most `keep` + 1
/// names at once whatever the number of items; the result does not depend on their order.
pub(super) fn rank(items: impl Iterator<Item = NamedHits>, keep: usize) -> Ranked {
    use std::cmp::Reverse;
    let mut best: std::collections::BinaryHeap<Reverse<ByRank>> = Default::default();
    let mut out = Ranked {
        kept: Vec::new(),
        rest: PathHits::default(),
        rest_names: 0,
        rest_most_clients: 0,
    };
    let to_rest = |n: NamedHits, out: &mut Ranked| {
        out.rest_names += 1;
        out.rest_most_clients = out.rest_most_clients.max(n.clients());
        merge_hits(&mut out.rest, n.hits);
    };
    for item in items {
        best.push(Reverse(ByRank(item)));
        if best.len() > keep {
            if let Some(Reverse(worst)) = best.pop() {
                to_rest(worst.0, &mut out);
            }
        }
    }
    out.kept = best.into_iter().map(|Reverse(b)| b.0).collect();
    out
}
