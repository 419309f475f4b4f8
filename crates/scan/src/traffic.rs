//! Run-wide traffic figures: requests per client IP and per hour. They feed the top-IP list,
//! the proxy warning, "rare" thresholds in detectors (the number of distinct client IPs), and
//! timeline views.
//!
//! Per-hour counts grow with hours. Per-client counts (events, first and last seen) would grow
//! with distinct clients, which a shop's year of logs has by the million, so they are held in
//! memory only up to [`IP_CAP`] addresses per state (about 2 MiB of table): when a state is
//! full it sorts its addresses and spills them as a run of fixed-size records to a private
//! temporary directory (`TMPDIR`; see [`crate::spill`]), then starts again empty. At the end
//! the runs and what is still in memory are merged streaming, in address order, combining the
//! records of an address: one pass counts distinct addresses, the events with an address and
//! the busiest internal addresses (proxy warning), another picks out the addresses the
//! findings name (top IPs). The figures are exact whether or not anything was spilled, and
//! whatever the chunk split or thread count: combining is a sum and a min/max, and first and
//! last seen use the instant ordered by [`ecir_model::Timestamp`]'s total order (equal
//! instants by offset). If the temporary directory cannot be written, the counts stay in
//! memory (exact, but memory then grows with clients) and the report warns; if a spilled run
//! cannot be read back, the report warns that the per-client figures are incomplete.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ecir_model::net::is_internal;
use ecir_model::report::TopIp;
use ecir_model::{Event, Finding, Severity, SourceKind, Timestamp};
use rustc_hash::FxHashMap;

use ecir_spill::{Record, Runs};

/// Client addresses one state holds in memory before it spills them: 7/8 of 2^15, the load
/// limit of a 2^15-slot table, so the table never grows past that size (about 2 MiB). Up
/// to three states are alive per worker, and a bigger table only delays the first spill: it
/// would make peak memory depend on how far into the input the tables have filled.
pub const IP_CAP: usize = (1 << 15) / 8 * 7;

/// Internal addresses named by the proxy warning's share (the busiest ones).
const PROXY_TOP: usize = 5;

/// One client's analysed events and the instants it was first and last seen. "Not seen with a
/// time" is kept as an empty span (first after last), so combining is a plain min and max.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    events: u64,
    first_ms: i64,
    last_ms: i64,
    first_off: i32,
    last_off: i32,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            events: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            first_off: i32::MAX,
            last_off: i32::MIN,
        }
    }
}

impl Tally {
    #[inline]
    fn add(&mut self, ts: Option<Timestamp>) {
        self.events += 1;
        if let Some(t) = ts {
            self.widen((t.utc_ms, t.offset_secs), (t.utc_ms, t.offset_secs));
        }
    }

    fn combine(&mut self, o: &Tally) {
        self.events += o.events;
        self.widen((o.first_ms, o.first_off), (o.last_ms, o.last_off));
    }

    /// Stretches the span to cover `first..=last` (time in ms, then offset).
    #[inline]
    fn widen(&mut self, first: (i64, i32), last: (i64, i32)) {
        if first < (self.first_ms, self.first_off) {
            (self.first_ms, self.first_off) = first;
        }
        if last > (self.last_ms, self.last_off) {
            (self.last_ms, self.last_off) = last;
        }
    }

    fn first(&self) -> Option<Timestamp> {
        (self.first_ms, self.first_off)
            .ne(&(i64::MAX, i32::MAX))
            .then(|| Timestamp::new(self.first_ms, self.first_off))
    }

    fn last(&self) -> Option<Timestamp> {
        (self.last_ms, self.last_off)
            .ne(&(i64::MIN, i32::MIN))
            .then(|| Timestamp::new(self.last_ms, self.last_off))
    }
}

/// An address with its tally, as spilled: 1 byte family, 16 bytes address, 8 events, 24 span.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IpRecord(IpAddr, Tally);

impl IpRecord {
    /// Bytes of one encoded record.
    const SIZE: usize = 49;

    fn write(&self, out: &mut [u8; Self::SIZE]) {
        match self.0 {
            IpAddr::V4(a) => {
                out[0] = 4;
                out[1..5].copy_from_slice(&a.octets());
                out[5..17].fill(0);
            }
            IpAddr::V6(a) => {
                out[0] = 6;
                out[1..17].copy_from_slice(&a.octets());
            }
        }
        let t = &self.1;
        out[17..25].copy_from_slice(&t.events.to_le_bytes());
        out[25..33].copy_from_slice(&t.first_ms.to_le_bytes());
        out[33..41].copy_from_slice(&t.last_ms.to_le_bytes());
        out[41..45].copy_from_slice(&t.first_off.to_le_bytes());
        out[45..49].copy_from_slice(&t.last_off.to_le_bytes());
    }

    fn read(b: &[u8; Self::SIZE]) -> Self {
        let ip = if b[0] == 4 {
            IpAddr::V4(Ipv4Addr::new(b[1], b[2], b[3], b[4]))
        } else {
            let o: [u8; 16] = b[1..17].try_into().expect("16 bytes");
            IpAddr::V6(Ipv6Addr::from(o))
        };
        let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let i32_at = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        IpRecord(
            ip,
            Tally {
                events: u64::from_le_bytes(b[17..25].try_into().expect("8 bytes")),
                first_ms: i64_at(25),
                last_ms: i64_at(33),
                first_off: i32_at(41),
                last_off: i32_at(45),
            },
        )
    }
}

impl Record for IpRecord {
    type Key = IpAddr;
    type Reader = ();

    fn key(&self) -> IpAddr {
        self.0
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; Self::SIZE];
        self.write(&mut b);
        out.extend_from_slice(&b);
    }

    fn decode(b: &[u8], _: &mut ()) -> Option<Self> {
        Some(Self::read(b.try_into().ok()?))
    }

    fn combine(&mut self, other: Self) {
        self.1.combine(&other.1);
    }
}

/// Figures over all client addresses, from one pass.
#[derive(Debug, Default, Clone)]
struct Summary {
    distinct: usize,
    /// Events with a client address.
    total: u64,
    /// The busiest internal addresses, most events first (then by address).
    internal: Vec<(IpAddr, u64)>,
}

#[derive(Debug)]
pub struct Traffic {
    /// Events analysed (after time filters).
    pub events: u64,
    /// Events without a usable client address (host names, `unix:`).
    pub without_ip: u64,
    /// Events per (source, hour since the epoch).
    pub per_hour: BTreeMap<(SourceKind, i64), u64>,
    /// Clients not yet spilled.
    per_ip: FxHashMap<IpAddr, Tally>,
    /// Addresses held in memory before a spill (`usize::MAX` once spilling failed).
    cap: usize,
    runs: Runs<IpRecord>,
    /// Why spilling stopped, for the report's warnings.
    spill_error: Option<String>,
    summary: OnceLock<Summary>,
    /// Why spilled runs could not be read back.
    read_error: Mutex<Option<String>>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::with_spill(IP_CAP, std::env::temp_dir())
    }
}

impl Traffic {
    /// A state holding up to `cap` addresses in memory, spilling under `dir`.
    fn with_spill(cap: usize, dir: PathBuf) -> Self {
        Traffic {
            events: 0,
            without_ip: 0,
            per_hour: BTreeMap::new(),
            per_ip: FxHashMap::default(),
            cap: cap.max(1),
            runs: Runs::new(dir, "scan"),
            spill_error: None,
            summary: OnceLock::new(),
            read_error: Mutex::new(None),
        }
    }

    #[inline]
    pub fn observe(&mut self, ev: &Event<'_>) {
        self.events += 1;
        match ev.client_ip {
            Some(ip) => match self.per_ip.get_mut(&ip) {
                Some(t) => t.add(ev.ts),
                None => {
                    if self.per_ip.len() >= self.cap {
                        self.spill();
                    }
                    self.per_ip.entry(ip).or_default().add(ev.ts);
                }
            },
            None => self.without_ip += 1,
        }
        if let Some(ts) = ev.ts {
            let hour = ts.secs().div_euclid(3600);
            *self
                .per_hour
                .entry((ev.source.unwrap_or(SourceKind::Unknown), hour))
                .or_default() += 1;
        }
    }

    /// Writes the in-memory addresses as a sorted run and empties the table (keeping its
    /// allocation). On failure they stay in memory and spilling stops for this state.
    #[cold]
    fn spill(&mut self) {
        if self.per_ip.is_empty() || self.spill_error.is_some() {
            return;
        }
        let mut sorted: Vec<IpRecord> = self.per_ip.iter().map(|(k, t)| IpRecord(*k, *t)).collect();
        sorted.sort_unstable_by_key(|r| r.0);
        match self.runs.spill(&sorted) {
            Ok(()) => self.per_ip.clear(),
            Err(e) => self.stop_spilling(e),
        }
    }

    /// Writes the addresses in memory out as a run and frees the table, for a state that
    /// waits to be merged; when writing fails they stay in memory.
    pub fn park(&mut self) {
        self.spill();
        if self.per_ip.is_empty() {
            self.per_ip = FxHashMap::default();
        }
    }

    fn stop_spilling(&mut self, e: std::io::Error) {
        self.spill_error = Some(format!("{}: {e}", self.runs.parent().display()));
        self.cap = usize::MAX;
    }

    pub fn merge(&mut self, other: Traffic) {
        self.events += other.events;
        self.without_ip += other.without_ip;
        if self.spill_error.is_none() {
            if let Some(e) = other.spill_error {
                self.spill_error = Some(e);
                self.cap = usize::MAX;
            }
        }
        if !other.runs.is_empty() {
            if let Err(e) = self.runs.append(other.runs) {
                self.stop_spilling(e);
            }
        }
        // Combining is commutative: fold the smaller table into the larger one.
        let mut theirs = other.per_ip;
        if self.per_ip.len().saturating_add(theirs.len()) > self.cap {
            if self.per_ip.len() >= theirs.len() {
                self.spill();
            } else {
                std::mem::swap(&mut self.per_ip, &mut theirs);
                self.spill();
                std::mem::swap(&mut self.per_ip, &mut theirs);
            }
        }
        if self.per_ip.len() < theirs.len() {
            std::mem::swap(&mut self.per_ip, &mut theirs);
        }
        for (ip, t) in theirs {
            self.per_ip.entry(ip).or_default().combine(&t);
        }
        for (k, n) in other.per_hour {
            *self.per_hour.entry(k).or_default() += n;
        }
    }

    /// Every address with its tally, in address order (spilled runs merged with memory);
    /// stops at the first read error, which is kept for [`Traffic::spill_warnings`].
    fn for_each_ip(&self, mut f: impl FnMut(IpAddr, &Tally)) {
        if self.runs.is_empty() {
            // Nothing spilled: the table is everything. Callers only sum or select with a
            // total order, so hash order is fine here.
            for (ip, t) in &self.per_ip {
                f(*ip, t);
            }
            return;
        }
        let mut memory: Vec<IpRecord> = self.per_ip.iter().map(|(k, t)| IpRecord(*k, *t)).collect();
        memory.sort_unstable_by_key(|r| r.0);
        for r in self.runs.merge(memory) {
            match r {
                Ok(IpRecord(ip, t)) => f(ip, &t),
                Err(e) => return self.read_failed(e),
            }
        }
    }

    fn read_failed(&self, e: std::io::Error) {
        let mut slot = self.read_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| format!("{}: {e}", self.runs.parent().display()));
    }

    fn summary(&self) -> &Summary {
        self.summary.get_or_init(|| {
            let mut s = Summary::default();
            self.for_each_ip(|ip, t| {
                s.distinct += 1;
                s.total += t.events;
                if is_internal(&ip) {
                    offer_internal(&mut s.internal, ip, t.events);
                }
            });
            s
        })
    }

    pub fn distinct_ips(&self) -> usize {
        if self.runs.is_empty() {
            return self.per_ip.len();
        }
        self.summary().distinct
    }

    /// Warns when most traffic comes from a handful of internal (proxy) addresses, which makes
    /// every per-IP finding unreliable.
    pub fn proxy_warning(&self) -> Option<String> {
        let s = self.summary();
        let total = s.total;
        if total < 100 {
            return None;
        }
        let top: u64 = s.internal.iter().map(|(_, n)| n).sum();
        if top * 2 >= total {
            let names: Vec<String> = s
                .internal
                .iter()
                .take(3)
                .map(|(ip, _)| ip.to_string())
                .collect();
            Some(format!(
                "{}% of requests come from a few internal addresses ({}): they look like a proxy, load balancer or CDN, so per-IP findings are unreliable. If the logs carry X-Forwarded-For, rerun with --trust-proxy CIDR for those proxies.",
                top * 100 / total,
                names.join(", ")
            ))
        } else {
            None
        }
    }

    /// Problems with the temporary spill of per-client counts, for the report's warnings.
    /// Call after [`Traffic::top_ips`], which may read the spill too.
    pub fn spill_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(e) = &self.spill_error {
            w.push(format!(
                "Per-client counts could not be spilled to the temporary directory ({e}); they were kept in memory, so memory use grew with the number of client addresses. Set TMPDIR to a writable directory outside the evidence."
            ));
        }
        let read = self.read_error.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = read.as_ref() {
            w.push(format!(
                "Per-client counts spilled to the temporary directory could not be read back ({e}): the number of distinct client IPs, the proxy warning and the requests of top IPs may be incomplete."
            ));
        }
        w
    }

    /// Clients behind the most findings: every client named by a high or critical finding,
    /// then others up to `n`. Findings naming many IPs (aggregated probes) are ignored so that
    /// one noisy finding does not crowd the list.
    pub fn top_ips(&self, findings: &[Finding], n: usize) -> Vec<TopIp> {
        let mut by_ip: BTreeMap<String, (u64, Severity)> = BTreeMap::new();
        for f in findings.iter().filter(|f| f.ips.len() <= 5) {
            for ip in &f.ips {
                let e = by_ip.entry(ip.clone()).or_insert((0, Severity::Info));
                e.0 += 1;
                e.1 = e.1.max(f.severity);
            }
        }
        let wanted: BTreeSet<IpAddr> = by_ip.keys().filter_map(|ip| ip.parse().ok()).collect();
        let tallies = self.tallies_of(&wanted);
        let mut v: Vec<TopIp> = by_ip
            .into_iter()
            .map(|(ip, (findings, max_severity))| {
                let t = ip
                    .parse::<IpAddr>()
                    .ok()
                    .and_then(|a| tallies.get(&a).copied())
                    .unwrap_or_default();
                TopIp {
                    ip,
                    findings,
                    max_severity,
                    requests: t.events,
                    first_seen: t.first(),
                    last_seen: t.last(),
                }
            })
            .collect();
        v.sort_by(|a, b| {
            b.max_severity
                .cmp(&a.max_severity)
                .then(b.findings.cmp(&a.findings))
                .then(b.requests.cmp(&a.requests))
                .then(a.ip.cmp(&b.ip))
        });
        let high = v
            .iter()
            .filter(|t| t.max_severity >= Severity::High)
            .count();
        v.truncate(n.max(high));
        v
    }

    /// The tallies of `wanted` addresses (those seen).
    fn tallies_of(&self, wanted: &BTreeSet<IpAddr>) -> BTreeMap<IpAddr, Tally> {
        let mut out = BTreeMap::new();
        if wanted.is_empty() {
            return out;
        }
        if self.runs.is_empty() {
            for ip in wanted {
                if let Some(t) = self.per_ip.get(ip) {
                    out.insert(*ip, *t);
                }
            }
        } else {
            self.for_each_ip(|ip, t| {
                if wanted.contains(&ip) {
                    out.insert(ip, *t);
                }
            });
        }
        out
    }
}

/// Keeps the [`PROXY_TOP`] busiest internal addresses (most events, then lowest address).
fn offer_internal(top: &mut Vec<(IpAddr, u64)>, ip: IpAddr, events: u64) {
    let better = |a: &(IpAddr, u64), b: &(IpAddr, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
    let item = (ip, events);
    let pos = top
        .iter()
        .position(|x| better(&item, x) == std::cmp::Ordering::Less)
        .unwrap_or(top.len());
    if pos < PROXY_TOP {
        top.insert(pos, item);
        top.truncate(PROXY_TOP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecir_model::Category;

    fn ev(ip: IpAddr, ts: Option<Timestamp>) -> Event<'static> {
        Event {
            client_ip: Some(ip),
            ts,
            source: Some(SourceKind::Web),
            ..Default::default()
        }
    }

    /// A deterministic mix: many one-off public clients, returning ones, a busy proxy and
    /// a few internal addresses, with times in two offsets (some equal instants).
    fn events() -> Vec<Event<'static>> {
        let mut v = Vec::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ip: IpAddr = match x % 10 {
                1 => IpAddr::V4(Ipv4Addr::from((x >> 8) as u32 | 0x0100_0000)),
                2 => IpAddr::V4(Ipv4Addr::new(172, 16, 0, (x >> 20) as u8 % 8)),
                3 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, (x >> 20) as u8 % 16)),
                0 | 4 | 5 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                6 => IpAddr::V4(Ipv4Addr::new(192, 168, (x >> 9) as u8 % 3, 7)),
                7 => IpAddr::V6(Ipv6Addr::from(u128::from(x) << 40)),
                8 => IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
                _ => IpAddr::V4(Ipv4Addr::new(198, 51, 100, (x >> 30) as u8)),
            };
            let ts = (!x.is_multiple_of(17)).then(|| {
                Timestamp::new(
                    1_700_000_000_000 + ((x >> 3) % 86_400_000) as i64 / 1000 * 1000,
                    if x.is_multiple_of(3) { 0 } else { 32_400 },
                )
            });
            v.push(ev(ip, ts));
            if i.is_multiple_of(97) {
                v.push(Event {
                    client_ip: None,
                    ..Default::default()
                });
            }
        }
        v
    }

    fn finding(ip: &str, severity: Severity) -> Finding {
        let mut f = Finding::new("recon.404_burst", Category::Recon, severity);
        f.ips = vec![ip.to_string()];
        f
    }

    /// Every observable figure of a state.
    fn figures(t: &Traffic) -> (u64, u64, usize, Option<String>, String) {
        let mut findings: Vec<Finding> =
            ["10.0.0.1", "203.0.113.3", "198.51.100.9", "::ffff:10.0.0.1"]
                .iter()
                .map(|ip| finding(ip, Severity::High))
                .collect();
        findings.push(finding("192.0.2.200", Severity::Low));
        let top = serde_json::to_string(&t.top_ips(&findings, 10)).unwrap();
        (
            t.events,
            t.without_ip,
            t.distinct_ips(),
            t.proxy_warning(),
            top,
        )
    }

    fn spill_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ecir-traffic-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn spilled_figures_equal_unspilled() {
        let evs = events();
        let mut whole = Traffic::with_spill(usize::MAX, std::env::temp_dir());
        for e in &evs {
            whole.observe(e);
        }
        assert!(whole.runs.is_empty());
        let want = figures(&whole);
        assert!(want.3.is_some(), "the proxy dominates: {want:?}");

        // Tiny caps, several chunk splits, merged in order and in a tree.
        let dir = spill_dir("split");
        for cap in [1, 3, 64] {
            for parts in [1, 4, 7] {
                let size = evs.len().div_ceil(parts);
                let mut states: Vec<Traffic> = evs
                    .chunks(size)
                    .map(|c| {
                        let mut t = Traffic::with_spill(cap, dir.clone());
                        for e in c {
                            t.observe(e);
                        }
                        t
                    })
                    .collect();
                while states.len() > 1 {
                    let b = states.pop().unwrap();
                    let mut a = states.pop().unwrap();
                    if states.len().is_multiple_of(2) {
                        a.merge(b);
                        states.push(a);
                    } else {
                        // The later part absorbing the earlier one gives the same figures.
                        let mut b = b;
                        b.merge(a);
                        states.push(b);
                    }
                }
                let t = states.pop().unwrap();
                assert!(!t.runs.is_empty(), "cap {cap} spills");
                assert_eq!(figures(&t), want, "cap {cap}, {parts} parts");
                assert!(t.spill_warnings().is_empty());
            }
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "spill directories removed"
        );
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn parked_states_give_the_same_figures() {
        let evs = events();
        let mut whole = Traffic::with_spill(usize::MAX, std::env::temp_dir());
        for e in &evs {
            whole.observe(e);
        }
        let want = figures(&whole);
        let dir = spill_dir("park");
        // Default cap: only parking writes runs. Each part is parked halfway and at its end.
        for parts in [1, 3] {
            let size = evs.len().div_ceil(parts);
            let mut merged: Option<Traffic> = None;
            for c in evs.chunks(size) {
                let mut t = Traffic::with_spill(IP_CAP, dir.clone());
                for (i, e) in c.iter().enumerate() {
                    t.observe(e);
                    if i == c.len() / 2 {
                        t.park();
                        assert!(t.per_ip.is_empty() && !t.runs.is_empty(), "parked");
                    }
                }
                t.park();
                match &mut merged {
                    Some(m) => m.merge(t),
                    None => merged = Some(t),
                }
            }
            let t = merged.unwrap();
            assert_eq!(figures(&t), want, "{parts} parts");
            assert!(t.spill_warnings().is_empty());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn many_runs_are_merged_on_the_way() {
        let dir = spill_dir("many");
        let mut t = Traffic::with_spill(2, dir.clone());
        let mut whole = Traffic::with_spill(usize::MAX, dir.clone());
        for i in 0..1000u32 {
            let e = ev(
                IpAddr::V4(Ipv4Addr::from(i % 300 * 7919)),
                Some(Timestamp::from_secs(i64::from(i), 0)),
            );
            t.observe(&e);
            whole.observe(&e);
        }
        assert!(t.runs.len() <= ecir_spill::MAX_RUNS);
        assert!(t.runs.records() < 1000);
        assert_eq!(figures(&t), figures(&whole));
        assert_eq!(t.distinct_ips(), 300);
        drop(t);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn unwritable_temp_keeps_counts_in_memory() {
        let evs = events();
        let mut whole = Traffic::with_spill(usize::MAX, std::env::temp_dir());
        let mut t = Traffic::with_spill(8, PathBuf::from("/nonexistent/ecir-traffic"));
        for e in &evs {
            whole.observe(e);
            t.observe(e);
        }
        assert!(t.runs.is_empty());
        assert_eq!(figures(&t), figures(&whole));
        let w = t.spill_warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("/nonexistent/ecir-traffic"), "{w:?}");
    }

    #[test]
    fn record_round_trip() {
        let mut t = Tally::default();
        let empty = IpRecord(IpAddr::V6(Ipv6Addr::LOCALHOST), t);
        t.add(Some(Timestamp::new(-5, -3600)));
        t.add(Some(Timestamp::new(7, 3600)));
        let r = IpRecord(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)), t);
        let mut buf = [0u8; IpRecord::SIZE];
        for rec in [empty, r] {
            rec.write(&mut buf);
            assert_eq!(IpRecord::read(&buf), rec);
        }
        assert_eq!(empty.1.first(), None);
        assert_eq!(empty.1.last(), None);
        assert_eq!(r.1.first(), Some(Timestamp::new(-5, -3600)));
        assert_eq!(r.1.last(), Some(Timestamp::new(7, 3600)));
    }
}
