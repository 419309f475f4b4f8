//! A cap on per-client findings: at most [`MAX_CLIENT_FINDINGS`] findings naming one client
//! IP per rule and severity, the rest summed in one finding.
//!
//! A botnet spreads its attempts over many addresses: 50,000 addresses failing the admin
//! login a dozen times each made 41,667 `admin.brute_force` findings (a 132 MB report), and
//! 20,000 addresses each with a burst of 404s made as many `recon.404_burst` ones. Nobody
//! reads that; the busiest clients are listed one by one and the others summed, with their
//! counts, span, the first IPs by address and the earliest evidence lines. Findings another
//! finding or the exposure window refers to are never summed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::IpAddr;

use ecir_model::finding::{MAX_EVIDENCE, MAX_IPS};
use ecir_model::{Evidence, Finding, Severity};

use crate::evidence::SmallestSet;

/// Findings naming one client listed one by one for each rule and severity, at most.
pub const MAX_CLIENT_FINDINGS: usize = 500;

/// Keeps at most `cap` single-client findings per (rule, severity), the ones covering the
/// most events (then the earliest, then by address), and sums the rest of each into one
/// finding. Findings whose id is in `referenced`, and findings that link others, are kept
/// whatever their number. The order of the findings kept is not changed; sums come last.
pub fn cap_client_findings(
    findings: Vec<Finding>,
    referenced: &BTreeSet<String>,
    cap: usize,
) -> Vec<Finding> {
    let eligible =
        |f: &Finding| f.ips.len() == 1 && f.related.is_empty() && !referenced.contains(&f.id);
    let mut per_bucket: BTreeMap<(&str, Severity), usize> = BTreeMap::new();
    for f in findings.iter().filter(|f| eligible(f)) {
        *per_bucket.entry((f.rule.as_str(), f.severity)).or_default() += 1;
    }
    let over: BTreeSet<(String, Severity)> = per_bucket
        .into_iter()
        .filter(|(_, n)| *n > cap)
        .map(|((rule, sev), _)| (rule.to_string(), sev))
        .collect();
    if over.is_empty() {
        return findings;
    }
    // For each bucket over the cap, the ranks of the findings to keep: the `cap` best.
    let mut best: BTreeMap<(String, Severity), BinaryHeap<Rank>> = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        let key = (f.rule.clone(), f.severity);
        if !eligible(f) || !over.contains(&key) {
            continue;
        }
        let heap = best.entry(key).or_default();
        heap.push(Rank::of(f, i));
        if heap.len() > cap {
            heap.pop();
        }
    }
    let kept: BTreeSet<usize> = best
        .values()
        .flat_map(|h| h.iter().map(|r| r.index))
        .collect();
    let mut out = Vec::with_capacity(findings.len().min(kept.len() + 1024));
    let mut sums: BTreeMap<(String, Severity), Sum> = BTreeMap::new();
    for (i, f) in findings.into_iter().enumerate() {
        let key = (f.rule.clone(), f.severity);
        if eligible(&f) && over.contains(&key) && !kept.contains(&i) {
            sums.entry(key).or_default().add(f);
        } else {
            out.push(f);
        }
    }
    out.extend(sums.into_values().map(|s| s.finding(cap)));
    out
}

/// Where a finding ranks in its bucket: most events first, then earliest, then by IP and
/// title, then input order (a total order). A max-heap's top is the lowest ranked.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    count: Reverse<u64>,
    first_seen: Option<i64>,
    ip: (Option<IpAddr>, String),
    title: String,
    index: usize,
}

impl Rank {
    fn of(f: &Finding, index: usize) -> Self {
        Rank {
            count: Reverse(f.count),
            // Undated findings last.
            first_seen: Some(f.first_seen.map_or(i64::MAX, |t| t.utc_ms)),
            ip: ip_key(&f.ips[0]),
            title: f.title.clone(),
            index,
        }
    }
}

/// An IP as text, ordered by address where it is one (IPv4 before IPv6), else by text.
fn ip_key(s: &str) -> (Option<IpAddr>, String) {
    (s.parse().ok(), s.to_string())
}

/// Findings of one rule and severity summed into one.
struct Sum {
    first: Option<Finding>,
    findings: u64,
    count: u64,
    first_seen: Option<ecir_model::Timestamp>,
    last_seen: Option<ecir_model::Timestamp>,
    ips: SmallestSet<(Option<IpAddr>, String)>,
    users: SmallestSet<String>,
    paths: SmallestSet<String>,
    evidence: Vec<Evidence>,
}

impl Default for Sum {
    fn default() -> Self {
        Sum {
            first: None,
            findings: 0,
            count: 0,
            first_seen: None,
            last_seen: None,
            ips: SmallestSet::new(MAX_IPS),
            users: SmallestSet::new(MAX_SUM_NAMES),
            paths: SmallestSet::new(MAX_SUM_NAMES),
            evidence: Vec::new(),
        }
    }
}

/// Users and paths a sum lists, at most.
const MAX_SUM_NAMES: usize = 10;

impl Sum {
    fn add(&mut self, f: Finding) {
        self.findings += 1;
        self.count += f.count;
        self.first_seen = match (self.first_seen, f.first_seen) {
            (Some(a), Some(b)) => Some(if b.utc_ms < a.utc_ms { b } else { a }),
            (a, b) => a.or(b),
        };
        let last = f.last_seen.or(f.first_seen);
        self.last_seen = match (self.last_seen, last) {
            (Some(a), Some(b)) => Some(if b.utc_ms > a.utc_ms { b } else { a }),
            (a, b) => a.or(b),
        };
        for ip in &f.ips {
            self.ips.insert(ip_key(ip));
        }
        for u in &f.users {
            self.users.insert(u.clone());
        }
        for p in &f.paths {
            self.paths.insert(p.clone());
        }
        // The earliest lines of all, each finding's most telling first.
        self.evidence
            .extend(f.evidence.iter().take(MAX_EVIDENCE).cloned());
        if self.evidence.len() > 4 * MAX_EVIDENCE {
            self.trim_evidence();
        }
        // The example quoted: the one of the lowest address, whatever the input order.
        let lower = |e: &Finding| ip_key(&f.ips[0]) < ip_key(&e.ips[0]);
        if self.first.as_ref().is_none_or(lower) {
            self.first = Some(Finding {
                evidence: Vec::new(),
                ..f
            });
        }
    }

    fn trim_evidence(&mut self) {
        self.evidence.sort_by(|a, b| {
            (a.ts.map(|t| t.utc_ms), &a.file, a.line).cmp(&(
                b.ts.map(|t| t.utc_ms),
                &b.file,
                b.line,
            ))
        });
        self.evidence
            .dedup_by(|a, b| a.file == b.file && a.line == b.line);
        self.evidence.truncate(MAX_EVIDENCE);
    }

    fn finding(mut self, listed: usize) -> Finding {
        self.trim_evidence();
        let example = self.first.take().expect("a sum holds a finding");
        let n = self.findings;
        let mut f = Finding::new(&example.rule, example.category, example.severity);
        f.playbook = example.playbook.clone();
        f.title = format!("{} from {n} more IP(s)", example.rule);
        f.summary = format!(
            "{n} more client IPs had a {} {} finding than the {listed} listed one by one (those covering the most events). Summed here: {} event(s); the first {} IPs by address are named and the earliest evidence lines cited. Each read like this one: \"{}\"",
            example.severity,
            example.rule,
            self.count,
            self.ips.items().len(),
            example.title,
        );
        f.first_seen = self.first_seen;
        f.last_seen = self.last_seen;
        f.ips = self.ips.items().iter().map(|(_, s)| s.clone()).collect();
        f.users = self.users.items().to_vec();
        f.paths = self.paths.items().to_vec();
        f.count = self.count;
        f.evidence = self.evidence;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecir_model::{Category, Timestamp};
    use std::sync::Arc;

    fn finding(rule: &str, sev: Severity, ip: &str, count: u64, t: i64) -> Finding {
        let mut f = Finding::new(rule, Category::AdminCompromise, sev);
        f.id = format!("{rule}-{ip}");
        f.title = format!("{rule} from {ip}");
        f.ips = vec![ip.to_string()];
        f.count = count;
        let ts = Timestamp::new(1_700_000_000_000 + t * 1000, 0);
        f.first_seen = Some(ts);
        f.last_seen = Some(ts);
        f.evidence = vec![Evidence {
            file: Arc::from("a.log"),
            line: t as u64 + 1,
            ts: Some(ts),
            text: format!("line from {ip}"),
            weight: 0,
        }];
        f
    }

    fn many(n: usize) -> Vec<Finding> {
        (0..n)
            .map(|i| {
                let ip = format!("10.0.{}.{}", i / 200, i % 200);
                finding(
                    "admin.brute_force",
                    Severity::Medium,
                    &ip,
                    5 + (i % 7) as u64,
                    i as i64,
                )
            })
            .collect()
    }

    #[test]
    fn under_the_cap_nothing_changes() {
        let f = many(10);
        assert_eq!(cap_client_findings(f.clone(), &BTreeSet::new(), 10), f);
    }

    #[test]
    fn past_the_cap_the_busiest_are_kept_and_the_rest_summed() {
        let all = many(100);
        let out = cap_client_findings(all.clone(), &BTreeSet::new(), 10);
        assert_eq!(out.len(), 11);
        let sum = out.last().unwrap();
        assert_eq!(sum.title, "admin.brute_force from 90 more IP(s)");
        assert_eq!(sum.severity, Severity::Medium);
        let kept: Vec<&Finding> = out[..10].iter().collect();
        // i % 7 == 6 gives count 11: 14 such clients, the 10 earliest kept.
        assert!(kept.iter().all(|f| f.count == 11), "{kept:?}");
        let total: u64 = all.iter().map(|f| f.count).sum();
        assert_eq!(sum.count + kept.iter().map(|f| f.count).sum::<u64>(), total);
        assert_eq!(sum.ips.len(), 50);
        assert_eq!(sum.evidence.len(), MAX_EVIDENCE);
        // The earliest evidence of the summed findings.
        assert_eq!(sum.evidence[0].line, 1);
        assert_eq!(sum.first_seen, all[0].first_seen);
        assert_eq!(sum.last_seen, all[99].last_seen);
        // The same kept set whatever the input order.
        let mut rev = all.clone();
        rev.reverse();
        let mut a: Vec<String> = out[..10].iter().map(|f| f.id.clone()).collect();
        let back = cap_client_findings(rev, &BTreeSet::new(), 10);
        let mut b: Vec<String> = back[..10].iter().map(|f| f.id.clone()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(back.last(), out.last());
    }

    #[test]
    fn referenced_and_linking_findings_and_other_buckets_are_never_summed() {
        let mut all = many(30);
        all[0].count = 0; // ranks last, but another finding refers to it
        all[1].count = 0;
        all[1].related = vec!["x".into()];
        let mut high = finding("admin.brute_force", Severity::High, "10.9.9.9", 1, 5);
        high.id = "h".into();
        all.push(high);
        let referenced: BTreeSet<String> = [all[0].id.clone()].into();
        let out = cap_client_findings(all.clone(), &referenced, 5);
        for keep in [&all[0].id, &all[1].id, &"h".to_string()] {
            assert!(out.iter().any(|f| &f.id == keep), "{keep}");
        }
        // Two kept outside the cap, 5 kept in it, the high one, and one sum of 23.
        assert_eq!(out.len(), 2 + 5 + 1 + 1);
        assert!(out.last().unwrap().title.contains("23 more"));
    }
}
