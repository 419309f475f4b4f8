//! `recon`: reconnaissance that gives context to other findings.
//!
//! Rules: `recon.scanner_ua` (a known attack or scanning tool named in the User-Agent; one
//! finding per tool, low, medium for exploitation tools that got 2xx answers) and
//! `recon.404_burst` (one IP drawing at least `burst_404` 404s within `burst_window_secs`;
//! low, medium above ten times that). 404s are counted per IP and minute, so the state grows
//! with clients and minutes, not with lines.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ecir_model::{Category, Event, Finding, Severity};
use rustc_hash::FxHashMap;

use crate::evidence::{SmallestSet, Span, TopEvidence};
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

#[derive(Default)]
struct NotFound {
    per_minute: BTreeMap<i64, u32>,
    total: u64,
    paths: SmallestSet<String>,
    evidence: TopEvidence,
}

/// State of the recon detector.
pub struct Recon {
    config: Arc<DetectConfig>,
    tools: BTreeMap<usize, ToolUse>,
    not_found: FxHashMap<IpAddr, NotFound>,
    /// Tool lookups by User-Agent: a site sees few distinct agents, so each is searched once.
    /// Cleared when it reaches [`UA_CACHE_MAX`] entries, so it stays bounded.
    ua_cache: FxHashMap<Box<str>, Option<usize>>,
}

const UA_CACHE_MAX: usize = 4096;

impl Recon {
    fn tool_of(&mut self, ua: &str) -> Option<usize> {
        if let Some(hit) = self.ua_cache.get(ua) {
            return *hit;
        }
        let found = tools().find(ua).map(|m| m.pattern().as_usize());
        if self.ua_cache.len() >= UA_CACHE_MAX {
            self.ua_cache.clear();
        }
        self.ua_cache.insert(ua.into(), found);
        found
    }
}

impl Recon {
    pub fn new(config: Arc<DetectConfig>) -> Self {
        Recon {
            config,
            tools: BTreeMap::new(),
            not_found: FxHashMap::default(),
            ua_cache: FxHashMap::default(),
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
                let nf = self.not_found.entry(ip).or_insert_with(|| NotFound {
                    paths: SmallestSet::new(10),
                    ..Default::default()
                });
                *nf.per_minute.entry(ts.secs().div_euclid(60)).or_default() += 1;
                nf.total += 1;
                if nf.paths.items().len() < 10 {
                    nf.paths.insert(crate::web_attack::truncate(ev.path(), 200));
                }
                nf.evidence.offer(origin, ev.ts, 1);
            }
        }
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
        for (ip, nf) in other.not_found {
            let mine = self.not_found.entry(ip).or_insert_with(|| NotFound {
                paths: SmallestSet::new(10),
                ..Default::default()
            });
            for (m, c) in nf.per_minute {
                *mine.per_minute.entry(m).or_default() += c;
            }
            mine.total += nf.total;
            mine.paths.merge(nf.paths);
            mine.evidence.merge(nf.evidence);
        }
    }

    fn finish(self: Box<Self>, _ctx: &FinishContext) -> Vec<Finding> {
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
        let mut bursts: Vec<_> = self.not_found.into_iter().collect();
        bursts.sort_by_key(|(ip, _)| *ip);
        for (ip, nf) in bursts {
            if nf.total < threshold {
                continue;
            }
            // Sliding window over minute buckets.
            let minutes: Vec<(i64, u32)> = nf.per_minute.into_iter().collect();
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
            f.paths = nf.paths.items().to_vec();
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
