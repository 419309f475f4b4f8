//! `recon`: reconnaissance that gives context to other findings.
//!
//! Rules: `recon.scanner_ua` (a known attack or scanning tool named in the User-Agent; one
//! finding per tool, low, medium for exploitation tools that got 2xx answers) and
//! `recon.404_burst` (one IP drawing at least `burst_404` 404s within `burst_window_secs`;
//! low, medium above ten times that). 404s are counted per IP and minute, so the state grows
//! with clients and minutes, not with lines.
//!
//! Memory: the 404 state of at most [`NF_CAP`] IPs is held per state (minute counts, total,
//! the ten paths it asked for first and the twenty earliest lines as evidence). Beyond that
//! the state is sorted by IP and spilled as a run to a private temporary directory (`TMPDIR`,
//! readable by this user only, removed with the last run), and `finish` merges the runs
//! streaming in IP order, combining each IP's parts, so one IP's state at a time is in memory
//! per run. Combining is exact (sums, unions, the earliest lines and paths by a total order),
//! so findings depend neither on what was spilled when nor on how lines were split into
//! chunks. If the directory cannot be written the state stays in memory (exact, unbounded);
//! a run that cannot be read back ends its IPs early. The runs and their merge are
//! `ecir-spill`'s, shared with the per-IP traffic counts of `ecir-scan`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ecir_model::{Category, Event, Finding, Severity};
use rustc_hash::FxHashMap;

use crate::codec::{self, Cursor, Files};
use crate::evidence::{EarliestDistinct, SmallestSet, Span, TopEvidence};
use crate::spill_map::{SpillMap, Spillable};
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};

pub const RULES: &[&str] = &["recon.scanner_ua", "recon.404_burst"];

/// Tools recognised in User-Agents (lower case) and whether they exploit rather than map.
const TOOLS: &[(&str, bool)] = &[
    ("sqlmap", true),
    ("commix", true),
    ("havij", true),
    ("sqlninja", true),
    ("metasploit", true),
    ("hydra", true),
    ("nikto", false),
    ("nuclei", false),
    ("wpscan", false),
    ("zgrab", false),
    ("masscan", false),
    ("nmap", false),
    ("dirbuster", false),
    ("gobuster", false),
    ("dirb/", false),
    ("feroxbuster", false),
    ("fuzz faster u fool", false),
    ("ffuf", false),
    ("wfuzz", false),
    ("acunetix", false),
    ("netsparker", false),
    ("nessus", false),
    ("openvas", false),
    ("w3af", false),
    ("whatweb", false),
    ("arachni", false),
    ("skipfish", false),
    ("jaeles", false),
    ("zmeu", false),
    ("morfeus", false),
    ("jorgee", false),
    ("l9explore", false),
    ("appscan", false),
    ("qualys", false),
    ("burpcollaborator", false),
    ("interactsh", false),
];

fn tools() -> &'static AhoCorasick {
    static T: std::sync::OnceLock<AhoCorasick> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(TOOLS.iter().map(|(t, _)| t))
            .expect("tool names")
    })
}

#[derive(Default)]
struct ToolUse {
    count: u64,
    ok: u64,
    span: Span,
    ips: SmallestSet<IpAddr>,
    evidence: TopEvidence,
}

/// One IP's 404s: counts per minute, total, the ten distinct paths it asked for first and
/// evidence.
///
/// `per_minute[..sorted]` is sorted by minute without repeats; minutes that came out of order
/// and are not in it are appended after it (a newest-first export appends every minute) and
/// [`NotFound::normalize`] sorts and sums them in, when the tail outgrows the sorted part and
/// before the counts are merged, encoded or read, so the state at rest is canonical and
/// counting costs O(log n) per line however the lines are ordered.
#[derive(Default, Debug)]
struct NotFound {
    per_minute: Vec<(i64, u32)>,
    sorted: usize,
    total: u64,
    paths: EarliestDistinct,
    evidence: TopEvidence,
}

impl NotFound {
    #[inline]
    fn count_minute(&mut self, minute: i64) {
        // Logs are mostly in time order: the last bucket first.
        let n = self.per_minute.len();
        match self.per_minute.last_mut() {
            Some((m, c)) if *m == minute => *c += 1,
            Some((m, _)) if *m < minute && self.sorted == n => {
                self.per_minute.push((minute, 1));
                self.sorted += 1;
            }
            None => {
                self.per_minute.push((minute, 1));
                self.sorted = 1;
            }
            Some(_) => {
                match self.per_minute[..self.sorted].binary_search_by_key(&minute, |e| e.0) {
                    Ok(i) => self.per_minute[i].1 += 1,
                    Err(_) => {
                        self.per_minute.push((minute, 1));
                        // Sorting when the tail is as long as the sorted part keeps the cost
                        // amortized O(log n) per minute.
                        if n + 1 - self.sorted > self.sorted.max(64) {
                            self.normalize();
                        }
                    }
                }
            }
        }
    }

    /// Sorts the minutes and sums repeats, so `per_minute` is canonical.
    fn normalize(&mut self) {
        if self.sorted != self.per_minute.len() {
            sort_and_sum(&mut self.per_minute);
            self.sorted = self.per_minute.len();
        }
    }

    fn merge(&mut self, mut o: NotFound) {
        self.normalize();
        o.normalize();
        if o.per_minute.first().map(|e| e.0) > self.per_minute.last().map(|e| e.0) {
            self.per_minute.extend(o.per_minute);
        } else {
            let mine = std::mem::take(&mut self.per_minute);
            let mut out = Vec::with_capacity(mine.len() + o.per_minute.len());
            let (mut a, mut b) = (
                mine.into_iter().peekable(),
                o.per_minute.into_iter().peekable(),
            );
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x.0 == y.0 => {
                        let c = x.1 + y.1;
                        let m = x.0;
                        a.next();
                        b.next();
                        (m, c)
                    }
                    (Some(x), Some(y)) if x.0 < y.0 => a.next().expect("peeked"),
                    (Some(_), Some(_)) => b.next().expect("peeked"),
                    (Some(_), None) => a.next().expect("peeked"),
                    (None, Some(_)) => b.next().expect("peeked"),
                    (None, None) => break,
                };
                out.push(next);
            }
            self.per_minute = out;
        }
        self.sorted = self.per_minute.len();
        self.total += o.total;
        self.paths.merge(o.paths);
        self.evidence.merge(o.evidence);
    }
}

/// State of the recon detector.
pub struct Recon {
    config: Arc<DetectConfig>,
    tools: BTreeMap<usize, ToolUse>,
    /// 404 state per IP, up to [`NF_CAP`] in memory.
    not_found: SpillMap<NotFound>,
    /// Tool lookups by User-Agent: a site sees few distinct agents, so each is searched once.
    /// Cleared when it reaches [`UA_CACHE_MAX`] entries, so it stays bounded.
    ua_cache: FxHashMap<Box<str>, Option<usize>>,
    /// The last User-Agent looked up and its tool: a client's requests for a page and its
    /// assets come together, so most lookups are this one, compared without hashing.
    last_ua: (String, Option<usize>),
}

const UA_CACHE_MAX: usize = 4096;

/// IPs whose 404 state one detector state holds in memory before spilling it: about
/// 1.8 KiB each with their lines, so about 4 MiB per state.
pub const NF_CAP: usize = 2048;

impl Recon {
    fn tool_of(&mut self, ua: &str) -> Option<usize> {
        if self.last_ua.0 == ua {
            return self.last_ua.1;
        }
        let found = match self.ua_cache.get(ua) {
            Some(hit) => *hit,
            None => {
                let found = tools().find(ua).map(|m| m.pattern().as_usize());
                if self.ua_cache.len() >= UA_CACHE_MAX {
                    self.ua_cache.clear();
                }
                self.ua_cache.insert(ua.into(), found);
                found
            }
        };
        self.last_ua.0.clear();
        self.last_ua.0.push_str(ua);
        self.last_ua.1 = found;
        found
    }
}

impl Recon {
    pub fn new(config: Arc<DetectConfig>) -> Self {
        Recon {
            config,
            tools: BTreeMap::new(),
            not_found: SpillMap::new(NF_CAP, "recon"),
            ua_cache: FxHashMap::default(),
            last_ua: (String::new(), None),
        }
    }
}

impl DetectorState for Recon {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        if ev.source == Some(ecir_model::SourceKind::Waf) {
            // WAF records are judged by the waf detector, with what the WAF did.
            return;
        }
        if let Some(ua) = ev.user_agent.as_deref() {
            if let Some(tool) = self.tool_of(ua) {
                let t = self.tools.entry(tool).or_insert_with(|| ToolUse {
                    ips: SmallestSet::new(50),
                    ..Default::default()
                });
                t.count += 1;
                t.ok += u64::from(ev.is_success());
                t.span.add(ev.ts);
                if let Some(ip) = ev.client_ip {
                    t.ips.insert(ip);
                }
                t.evidence
                    .offer(origin, ev.ts, if ev.is_success() { 20 } else { 10 });
            }
        }
        if ev.status == Some(404) {
            if let (Some(ip), Some(ts)) = (ev.client_ip, ev.ts) {
                let nf = self.not_found.get_or_default(ip);
                nf.count_minute(ts.secs().div_euclid(60));
                nf.total += 1;
                nf.paths.offer(origin, ev.ts, || {
                    crate::web_attack::truncate(ev.path(), 200)
                });
                nf.evidence.offer(origin, ev.ts, 1);
            }
        }
    }

    fn park(&mut self) {
        self.not_found.park();
        self.ua_cache = FxHashMap::default();
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let other: Recon = downcast(other);
        for (k, t) in other.tools {
            let mine = self.tools.entry(k).or_insert_with(|| ToolUse {
                ips: SmallestSet::new(50),
                ..Default::default()
            });
            mine.count += t.count;
            mine.ok += t.ok;
            mine.span.merge(t.span);
            mine.ips.merge(t.ips);
            mine.evidence.merge(t.evidence);
        }
        self.not_found.merge(other.not_found);
    }

    fn finish(self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        let mut out = Vec::new();
        for (idx, t) in self.tools {
            let (name, exploits) = TOOLS[idx];
            let name = name.trim_end_matches('/');
            let severity = if exploits && t.ok > 0 {
                Severity::Medium
            } else {
                Severity::Low
            };
            let n_ips = t.ips.items().len();
            let mut f = Finding::new("recon.scanner_ua", Category::Recon, severity);
            f.title = format!(
                "Scanner '{name}' seen from {n_ips}{} IP(s)",
                if t.ips.overflowed() { "+" } else { "" }
            );
            f.summary = format!(
                "{} request(s) with a '{name}' User-Agent, {} answered 2xx. {}",
                t.count,
                t.ok,
                if exploits {
                    "This tool exploits what it finds: check the answered requests for injection findings from the same IPs."
                } else {
                    "Mapping activity: context for other findings from the same IPs."
                }
            );
            f.first_seen = t.span.first;
            f.last_seen = t.span.last;
            f.ips = t.ips.items().iter().map(|i| i.to_string()).collect();
            f.count = t.count;
            f.evidence = t.evidence.into_vec();
            out.push(f);
        }
        let window_min = (self.config.burst_window_secs / 60).max(1);
        let threshold = u64::from(self.config.burst_404);
        for (ip, mut nf) in self.not_found.into_sorted(ctx, "The 404 counts per client") {
            if nf.total < threshold {
                continue;
            }
            nf.normalize();
            // Sliding window over minute buckets.
            let minutes = nf.per_minute;
            let mut best = 0u64;
            let mut sum = 0u64;
            let mut lo = 0;
            for hi in 0..minutes.len() {
                sum += u64::from(minutes[hi].1);
                while minutes[hi].0 - minutes[lo].0 >= window_min {
                    sum -= u64::from(minutes[lo].1);
                    lo += 1;
                }
                best = best.max(sum);
            }
            if best < threshold {
                continue;
            }
            let severity = if nf.total >= threshold * 10 {
                Severity::Medium
            } else {
                Severity::Low
            };
            let mut f = Finding::new("recon.404_burst", Category::Recon, severity);
            f.title = format!("{} 404 responses to {ip}", nf.total);
            f.summary = format!(
                "{ip} drew {} 404s in all, up to {best} within {window_min} minutes: path guessing or a vulnerability scan. Context for other findings from this IP.",
                nf.total
            );
            let mut span = Span::default();
            if let (Some(first), Some(last)) = (minutes.first(), minutes.last()) {
                span.first = Some(ecir_model::Timestamp::from_secs(first.0 * 60, 0));
                span.last = Some(ecir_model::Timestamp::from_secs(last.0 * 60 + 59, 0));
            }
            let ev = nf.evidence.into_vec();
            // Prefer the exact times of cited lines for the span where we have them.
            f.first_seen = ev.iter().filter_map(|e| e.ts).min().or(span.first);
            f.last_seen = ev.iter().filter_map(|e| e.ts).max().max(f.first_seen);
            f.ips = vec![ip.to_string()];
            f.paths = nf.paths.into_texts();
            f.count = nf.total;
            f.evidence = ev;
            out.push(f);
        }
        out
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// The 404 state of one IP as spilled (see [`SpillMap`]).
/// Sorts minute counts by minute and sums the counts of equal minutes.
fn sort_and_sum(per_minute: &mut Vec<(i64, u32)>) {
    per_minute.sort_unstable_by_key(|e| e.0);
    let mut w = 0;
    for r in 0..per_minute.len() {
        if w > 0 && per_minute[w - 1].0 == per_minute[r].0 {
            per_minute[w - 1].1 += per_minute[r].1;
        } else {
            per_minute[w] = per_minute[r];
            w += 1;
        }
    }
    per_minute.truncate(w);
}

impl Spillable for NotFound {
    type Key = IpAddr;

    /// IP, total, minutes, paths and evidence.
    fn encode(ip: IpAddr, nf: &NotFound, out: &mut Vec<u8>) {
        codec::put_ip(out, Some(ip));
        codec::put_u64(out, nf.total);
        // Canonical (sorted, summed) whatever order the minutes came in.
        let sorted;
        let per_minute = if nf.sorted == nf.per_minute.len() {
            &nf.per_minute
        } else {
            let mut c = nf.per_minute.clone();
            sort_and_sum(&mut c);
            sorted = c;
            &sorted
        };
        codec::put_u32(out, per_minute.len() as u32);
        for (m, c) in per_minute {
            codec::put_i64(out, *m);
            codec::put_u32(out, *c);
        }
        codec::put_earliest(out, &nf.paths);
        codec::put_evidence(out, &nf.evidence);
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<(IpAddr, NotFound)> {
        let mut c = Cursor(b);
        let ip = c.ip()??;
        let total = c.u64()?;
        let n = c.count(12)?;
        let mut per_minute = Vec::with_capacity(n);
        for _ in 0..n {
            per_minute.push((c.i64()?, c.u32()?));
        }
        let nf = NotFound {
            sorted: per_minute.len(),
            per_minute,
            total,
            paths: c.earliest(files, NotFound::default().paths.cap())?,
            evidence: c.evidence(files)?,
        };
        Some((ip, nf))
    }

    fn merge(&mut self, other: NotFound) {
        NotFound::merge(self, other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run;

    #[test]
    fn scanner_user_agent() {
        let f = run(&[
            "198.51.100.7|GET|/|200|10|sqlmap/1.7.2#stable (https://sqlmap.org)",
            "198.51.100.7|GET|/x|404|10|Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
            "198.51.100.8|GET|/|200|10|Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        ]);
        let rules: Vec<_> = f
            .iter()
            .map(|f| (f.rule.as_str(), f.severity, f.title.as_str()))
            .collect();
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert!(rules
            .iter()
            .any(|r| r.2.contains("sqlmap") && r.1 == Severity::Medium));
        assert!(rules
            .iter()
            .any(|r| r.2.contains("nuclei") && r.1 == Severity::Low));
    }

    /// A state holding up to `cap` IPs' 404 state, spilling under `dir`.
    fn with_spill(cap: usize, dir: &std::path::Path) -> Recon {
        let mut r = Recon::new(Arc::new(DetectConfig::default()));
        r.not_found = SpillMap::with_dir(cap, dir.to_path_buf(), "recon");
        r
    }

    /// Bursts (some split over time, some with ten or fewer paths), many one-off 404s, a
    /// scanner, lines out of time order.
    fn lines() -> Vec<(String, i64)> {
        let mut v = Vec::new();
        for i in 0..400i64 {
            v.push((
                format!("203.0.113.{}|GET|/miss{}|404|10", i % 97, i % 13),
                i * 37,
            ));
            if i % 3 == 0 {
                v.push((
                    format!("198.51.100.{}|GET|/guess{}|404|10", i % 5, i % 9),
                    5000 + i,
                ));
            }
            if i % 2 == 0 {
                v.push((
                    format!("2001:db8::{:x}|GET|/wp-login.php|404|10|nikto", i % 3),
                    9000 - i * 2,
                ));
            }
            v.push((format!("192.0.2.{}|GET|/|200|10", i % 50), i));
        }
        for i in 0..200i64 {
            v.push(("198.51.100.200|GET|/admin|404|10".to_string(), 20_000 + i));
        }
        v
    }

    #[test]
    fn spilled_state_gives_the_same_findings() {
        let lines = lines();
        let dir = std::env::temp_dir().join(format!("ecir-recon-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for parts in [1, 3] {
            let mut plain: Vec<Recon> = (0..parts).map(|_| with_spill(usize::MAX, &dir)).collect();
            crate::testing::observe_in_chunks(&mut plain, &lines);
            let want = crate::testing::merged_findings(plain);
            assert!(want.contains("recon.404_burst"), "{want}");
            for cap in [1, 2, 7, 40] {
                let mut states: Vec<Recon> = (0..parts).map(|_| with_spill(cap, &dir)).collect();
                crate::testing::observe_in_chunks(&mut states, &lines);
                assert!(
                    states.iter().any(|s| s.not_found.has_spilled()),
                    "cap {cap} spills"
                );
                assert_eq!(
                    crate::testing::merged_findings(states),
                    want,
                    "cap {cap}, {parts} parts"
                );
            }
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "runs removed");
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn unwritable_spill_keeps_state_in_memory() {
        let lines = lines();
        let mut plain = vec![with_spill(usize::MAX, &std::env::temp_dir())];
        crate::testing::observe_in_chunks(&mut plain, &lines);
        let mut stuck = vec![with_spill(
            2,
            std::path::Path::new("/nonexistent/ecir-recon"),
        )];
        crate::testing::observe_in_chunks(&mut stuck, &lines);
        assert_eq!(stuck[0].not_found.cap, usize::MAX);
        assert_eq!(
            crate::testing::merged_findings(stuck),
            crate::testing::merged_findings(plain)
        );
    }

    #[test]
    fn spill_problems_become_warnings() {
        let lines = lines();
        // Runs deleted before the end (a temporary-file cleaner): reported, not silent.
        let dir = std::env::temp_dir().join(format!("ecir-recon-lost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut states = vec![with_spill(2, &dir)];
        crate::testing::observe_in_chunks(&mut states, &lines);
        for sub in std::fs::read_dir(&dir).unwrap() {
            for run in std::fs::read_dir(sub.unwrap().path()).unwrap() {
                std::fs::remove_file(run.unwrap().path()).unwrap();
            }
        }
        let ctx = FinishContext::default();
        let state = states.pop().unwrap();
        let _ = Box::new(state).finish(&ctx);
        let w = ctx.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("could not be read back"), "{w:?}");
        let _ = std::fs::remove_dir_all(&dir);

        // A spill that cannot be written: kept in memory, and said.
        let mut stuck = vec![with_spill(
            2,
            std::path::Path::new("/nonexistent/ecir-recon"),
        )];
        crate::testing::observe_in_chunks(&mut stuck, &lines);
        let ctx = FinishContext::default();
        let _ = Box::new(stuck.pop().unwrap()).finish(&ctx);
        let w = ctx.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("could not be spilled"), "{w:?}");
    }

    /// Minutes counted in `order`, normalized, with their encoded form.
    fn counted(order: &[i64]) -> (Vec<(i64, u32)>, Vec<u8>) {
        let mut nf = NotFound::default();
        for m in order {
            nf.count_minute(*m);
        }
        let mut enc = Vec::new();
        NotFound::encode("198.51.100.7".parse().unwrap(), &nf, &mut enc);
        nf.normalize();
        (nf.per_minute, enc)
    }

    #[test]
    fn minutes_out_of_order_count_the_same() {
        // Newest first, repeats, interleaved; across the re-sort threshold.
        for n in [1i64, 2, 63, 64, 65, 66, 200, 1000] {
            let asc: Vec<i64> = (0..n).flat_map(|m| [m, m]).collect();
            let want = counted(&asc);
            assert!(want.0.windows(2).all(|w| w[0].0 < w[1].0));
            assert_eq!(want.0.len(), n as usize);
            let desc: Vec<i64> = asc.iter().rev().copied().collect();
            assert_eq!(counted(&desc), want, "newest first, {n}");
            let mixed: Vec<i64> = (0..n).chain((0..n).rev()).collect();
            assert_eq!(counted(&mixed), want, "twice over, {n}");
            let odd_even: Vec<i64> = (0..n)
                .filter(|m| m % 2 == 1)
                .chain((0..n).filter(|m| m % 2 == 0).rev())
                .flat_map(|m| [m, m])
                .collect();
            assert_eq!(counted(&odd_even), want, "interleaved, {n}");
        }
    }

    #[test]
    fn unsorted_tail_stays_bounded_and_merges_canonically() {
        let mut nf = NotFound::default();
        for m in (0..10_000).rev() {
            nf.count_minute(m);
            assert!(nf.per_minute.len() - nf.sorted <= nf.sorted.max(64) + 1);
        }
        let mut other = NotFound::default();
        for m in (5_000..12_000).rev() {
            other.count_minute(m);
        }
        nf.merge(other);
        assert_eq!(nf.sorted, nf.per_minute.len());
        assert_eq!(nf.per_minute.len(), 12_000);
        assert_eq!(nf.per_minute[5_000], (5_000, 2));
        assert_eq!(nf.per_minute[4_999], (4_999, 1));
    }

    #[test]
    fn burst_needs_density() {
        let many: Vec<String> = (0..60)
            .map(|i| format!("198.51.100.9|GET|/guess{i}|404|10"))
            .collect();
        let lines: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let f = run(&lines);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "recon.404_burst");
        assert_eq!(f[0].count, 60);
        // A handful of 404s is ordinary.
        assert!(run(&["198.51.100.9|GET|/favicon.ico|404|10"; 10]).is_empty());
    }
}
