//! Run-wide traffic figures: requests per client IP and per hour. They feed the top-IP list,
//! the proxy warning, "rare" thresholds in detectors, and timeline views. The state grows with
//! distinct clients and hours, not with lines.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ecir_model::net::is_internal;
use ecir_model::report::TopIp;
use ecir_model::{Event, Finding, Severity, SourceKind};
use rustc_hash::FxHashMap;

/// One client's analysed events and when it was first and last seen.
#[derive(Default, Debug, Clone, Copy)]
pub struct IpTraffic {
    pub events: u64,
    pub first: Option<ecir_model::Timestamp>,
    pub last: Option<ecir_model::Timestamp>,
}

impl IpTraffic {
    fn add(
        &mut self,
        n: u64,
        first: Option<ecir_model::Timestamp>,
        last: Option<ecir_model::Timestamp>,
    ) {
        self.events += n;
        for t in [first, last].into_iter().flatten() {
            // Compare instants; keep the offset the log wrote.
            if self.first.is_none_or(|f| t.utc_ms < f.utc_ms) {
                self.first = Some(t);
            }
            if self.last.is_none_or(|l| t.utc_ms > l.utc_ms) {
                self.last = Some(t);
            }
        }
    }

    fn merge(&mut self, o: IpTraffic) {
        self.add(o.events, o.first, o.last);
    }
}

#[derive(Default, Debug)]
pub struct Traffic {
    /// Events analysed (after time filters).
    pub events: u64,
    /// Events without a usable client address (host names, `unix:`).
    pub without_ip: u64,
    pub per_ip: FxHashMap<IpAddr, IpTraffic>,
    /// Events per (source, hour since the epoch).
    pub per_hour: BTreeMap<(SourceKind, i64), u64>,
}

impl Traffic {
    #[inline]
    pub fn observe(&mut self, ev: &Event<'_>) {
        self.events += 1;
        match ev.client_ip {
            Some(ip) => self.per_ip.entry(ip).or_default().add(1, ev.ts, ev.ts),
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

    pub fn merge(&mut self, other: Traffic) {
        self.events += other.events;
        self.without_ip += other.without_ip;
        if self.per_ip.len() < other.per_ip.len() {
            let mine = std::mem::take(&mut self.per_ip);
            self.per_ip = other.per_ip;
            for (ip, n) in mine {
                self.per_ip.entry(ip).or_default().merge(n);
            }
        } else {
            for (ip, n) in other.per_ip {
                self.per_ip.entry(ip).or_default().merge(n);
            }
        }
        for (k, n) in other.per_hour {
            *self.per_hour.entry(k).or_default() += n;
        }
    }

    pub fn distinct_ips(&self) -> usize {
        self.per_ip.len()
    }

    /// Warns when most traffic comes from a handful of internal (proxy) addresses, which makes
    /// every per-IP finding unreliable.
    pub fn proxy_warning(&self) -> Option<String> {
        let total: u64 = self.per_ip.values().map(|t| t.events).sum();
        if total < 100 {
            return None;
        }
        let mut internal: Vec<(IpAddr, u64)> = self
            .per_ip
            .iter()
            .filter(|(ip, _)| is_internal(ip))
            .map(|(ip, n)| (*ip, n.events))
            .collect();
        internal.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: u64 = internal.iter().take(5).map(|(_, n)| n).sum();
        if top * 2 >= total {
            let names: Vec<String> = internal
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
        let mut v: Vec<TopIp> = by_ip
            .into_iter()
            .map(|(ip, (findings, max_severity))| {
                let t = ip
                    .parse::<IpAddr>()
                    .ok()
                    .and_then(|a| self.per_ip.get(&a).copied())
                    .unwrap_or_default();
                TopIp {
                    ip,
                    findings,
                    max_severity,
                    requests: t.events,
                    first_seen: t.first,
                    last_seen: t.last,
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
}
