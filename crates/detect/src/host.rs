//! `host`: host compromise from Linux auth logs (sshd, sudo, account tools).
//!
//! Rules:
//! - `host.ssh_brute_force`: ≥10 failed SSH logins from one IP: medium; high at ≥100.
//! - `host.ssh_success_after_failures`: an `Accepted` login from an IP with ≥5 failures before
//!   it: critical.
//! - `host.ssh_first_seen_ip`: an `Accepted` login from an IP not seen accepting in the first
//!   third of the logs' SSH timeline (needs ≥1 day and an earlier accepted IP): medium.
//! - `host.account_change`: new OS users or groups, group membership changes, password
//!   changes, account deletions: high.
//!
//! Known false positives: admins logging in from a new network show as first-seen; a
//! configuration-management run that creates service accounts shows as an account change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::{
    Category, Event, EventDetail, Evidence, Finding, LoginOutcome, Severity, Timestamp,
};

use crate::evidence::evidence;
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};

pub const RULES: &[&str] = &[
    "host.ssh_brute_force",
    "host.ssh_success_after_failures",
    "host.ssh_first_seen_ip",
    "host.account_change",
];

/// Most auth records kept.
pub const MAX_RECORDS: usize = 1_000_000;

#[derive(Clone, Debug)]
struct Rec {
    ts: Option<Timestamp>,
    ip: Option<IpAddr>,
    user: Option<String>,
    action: &'static str,
    ev: Evidence,
}

/// State of the host detector: only the auth records with a meaning (failures, successes,
/// account changes), compactly.
pub struct Host {
    recs: Vec<Rec>,
    dropped: u64,
}

impl Host {
    pub fn new(_config: Arc<DetectConfig>) -> Self {
        Host {
            recs: Vec::new(),
            dropped: 0,
        }
    }
    fn compact(&mut self) {
        if self.recs.len() > MAX_RECORDS {
            self.recs.sort_by(|a, b| {
                (a.ts.map(|t| t.utc_ms), &a.ev.file, a.ev.line).cmp(&(
                    b.ts.map(|t| t.utc_ms),
                    &b.ev.file,
                    b.ev.line,
                ))
            });
            self.dropped += (self.recs.len() - MAX_RECORDS) as u64;
            self.recs.truncate(MAX_RECORDS);
        }
    }
}

fn kind(action: &str, outcome: LoginOutcome) -> Option<&'static str> {
    Some(match action {
        "ssh-accepted" => "accepted",
        // One line per attempt: `Invalid user` and the PAM line repeat a `Failed …` line.
        "ssh-failed" if outcome == LoginOutcome::Failure => "failed",
        "user-added" | "group-added" | "user-modified" | "password-changed" | "user-deleted" => {
            "account"
        }
        _ => return None,
    })
}

fn account_kind(action: &str) -> &'static str {
    match action {
        "user-added" => "user-added",
        "group-added" => "group-added",
        "user-modified" => "user-modified",
        "password-changed" => "password-changed",
        _ => "user-deleted",
    }
}

impl DetectorState for Host {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        let EventDetail::Auth {
            action,
            user,
            outcome,
            ..
        } = &ev.detail
        else {
            return;
        };
        let Some(k) = kind(action, *outcome) else {
            return;
        };
        let raw = &origin.raw[..origin.raw.len().min(2048)];
        let o = Origin {
            file: origin.file,
            line: origin.line,
            raw,
        };
        self.recs.push(Rec {
            ts: ev.ts,
            ip: ev.client_ip,
            user: user.as_deref().map(|u| u.chars().take(64).collect()),
            action: if k == "account" {
                account_kind(action)
            } else {
                k
            },
            ev: evidence(&o, ev.ts, if k == "failed" { 10 } else { 90 }),
        });
        if self.recs.len() > MAX_RECORDS * 2 {
            self.compact();
        }
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let o: Host = downcast(other);
        self.recs.extend(o.recs);
        self.dropped += o.dropped;
        self.compact();
    }

    fn finish(mut self: Box<Self>, _ctx: &FinishContext) -> Vec<Finding> {
        self.compact();
        let mut recs = std::mem::take(&mut self.recs);
        recs.sort_by(|a, b| {
            (a.ts.map(|t| t.utc_ms), &a.ev.file, a.ev.line).cmp(&(
                b.ts.map(|t| t.utc_ms),
                &b.ev.file,
                b.ev.line,
            ))
        });
        let mut out = Vec::new();
        let ms = |r: &Rec| r.ts.map_or(i64::MIN, |t| t.utc_ms);
        let mk = |rule: &str,
                  sev: Severity,
                  cat: Category,
                  title: String,
                  summary: String,
                  rs: &[&Rec]| {
            let mut f = Finding::new(rule, cat, sev);
            f.title = title;
            f.summary = summary;
            f.first_seen = rs.iter().filter_map(|r| r.ts).min();
            f.last_seen = rs.iter().filter_map(|r| r.ts).max();
            f.ips = rs
                .iter()
                .filter_map(|r| r.ip)
                .collect::<BTreeSet<_>>()
                .iter()
                .map(|i| i.to_string())
                .collect();
            f.users = rs
                .iter()
                .filter_map(|r| r.user.as_deref())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .take(50)
                .map(str::to_string)
                .collect();
            f.count = rs.len() as u64;
            // The lines `normalize_evidence` keeps, chosen before any is copied (a brute
            // force has up to a million).
            let mut lines: Vec<&Evidence> = rs.iter().map(|r| &r.ev).collect();
            lines.sort_by(|a, b| {
                b.weight
                    .cmp(&a.weight)
                    .then(a.ts.cmp(&b.ts))
                    .then(a.file.cmp(&b.file))
                    .then(a.line.cmp(&b.line))
            });
            lines.dedup_by(|a, b| a.file == b.file && a.line == b.line);
            f.evidence = lines
                .into_iter()
                .take(ecir_model::finding::MAX_EVIDENCE)
                .cloned()
                .collect();
            f.normalize_evidence();
            f.playbook = Some("admin-takeover".into());
            f
        };
        let mut fails: BTreeMap<IpAddr, Vec<&Rec>> = BTreeMap::new();
        for r in &recs {
            if r.action == "failed" {
                if let Some(ip) = r.ip {
                    fails.entry(ip).or_default().push(r);
                }
            }
        }
        for (ip, v) in &fails {
            if v.len() >= 10 {
                let sev = if v.len() >= 100 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                out.push(mk("host.ssh_brute_force", sev, Category::HostCompromise, format!("SSH brute force from {ip} ({} failures)", v.len()),
                    format!("{} failed SSH logins from {ip}. Nothing here says it succeeded; see host.ssh_success_after_failures.", v.len()), v));
            }
        }
        let accepted: Vec<&Rec> = recs.iter().filter(|r| r.action == "accepted").collect();
        let mut done = BTreeSet::new();
        for a in &accepted {
            let Some(ip) = a.ip else { continue };
            if done.contains(&ip) {
                continue;
            }
            // The IP's failures are in time order (`recs` is sorted): those up to the
            // accepted login are a prefix, found by a binary search, not a scan per login.
            let prior: &[&Rec] = match fails.get(&ip) {
                Some(v) => &v[..v.partition_point(|f| ms(f) <= ms(a))],
                None => &[],
            };
            if prior.len() >= 5 && done.insert(ip) {
                let mut rs = vec![*a];
                rs.extend(prior.iter().copied());
                let user = a.user.clone().unwrap_or_default();
                out.push(mk("host.ssh_success_after_failures", Severity::Critical, Category::HostCompromise,
                    format!("SSH login accepted for {user} from {ip} after {} failures", prior.len()),
                    format!("{ip} failed {} SSH logins, then was accepted as {user}: treat the account and the server as compromised.", prior.len()), &rs));
            }
        }
        if let (Some(t0), Some(t1)) = (
            accepted.first().map(|r| ms(r)),
            accepted.last().map(|r| ms(r)),
        ) {
            let end = t0 + (t1 - t0) / 3;
            let known: BTreeSet<IpAddr> = accepted
                .iter()
                .filter(|r| ms(r) <= end)
                .filter_map(|r| r.ip)
                .collect();
            if t1 - t0 >= 86_400_000 && !known.is_empty() {
                let mut new: BTreeMap<IpAddr, Vec<&Rec>> = BTreeMap::new();
                for r in &accepted {
                    if let Some(ip) = r.ip.filter(|i| !known.contains(i)) {
                        new.entry(ip).or_default().push(r);
                    }
                }
                for (ip, v) in new {
                    let sev = if done.contains(&ip) {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                    out.push(mk("host.ssh_first_seen_ip", sev, Category::HostCompromise, format!("SSH login from a first-seen IP {ip}"),
                        format!("{} accepted SSH login(s) from {ip}, which was not among the {} IP(s) accepted in the first third of the logs.", v.len(), known.len()), &v));
                }
            }
        }
        let accounts: Vec<&Rec> = recs
            .iter()
            .filter(|r| !matches!(r.action, "failed" | "accepted"))
            .collect();
        if !accounts.is_empty() {
            let kinds: BTreeSet<&str> = accounts.iter().map(|r| r.action).collect();
            out.push(mk("host.account_change", Severity::High, Category::HostCompromise,
                format!("OS accounts changed ({})", kinds.into_iter().collect::<Vec<_>>().join(", ")),
                format!("{} account change(s) on the host (new users or groups, group membership, passwords). Attackers add users for persistence: confirm each with the server's owner.", accounts.len()), &accounts));
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
    use crate::DetectorSet;
    use std::borrow::Cow;

    fn run(lines: &[(i64, &str, &str, &str, LoginOutcome)]) -> Vec<Finding> {
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("secure");
        let mut a = DetectorSet::new(&cfg);
        let mut b = DetectorSet::new(&cfg);
        for (i, (t, ip, user, action, outcome)) in lines.iter().enumerate() {
            let ev = Event {
                ts: Some(Timestamp::from_secs(1_700_000_000 + t, 0)),
                client_ip: ip.parse().ok(),
                detail: EventDetail::Auth {
                    program: Cow::Borrowed("sshd"),
                    user: Some(Cow::Borrowed(*user)),
                    action: Cow::Borrowed(*action),
                    outcome: *outcome,
                },
                ..Default::default()
            };
            let raw = format!("{action} {user} {ip}");
            let o = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: raw.as_bytes(),
            };
            if i % 2 == 0 { &mut a } else { &mut b }.observe(&ev, &o);
        }
        a.merge(b);
        let mut f: Vec<Finding> = a
            .finish(&FinishContext::default())
            .into_iter()
            .filter(|f| f.category == Category::HostCompromise)
            .collect();
        f.sort_by(|x, y| (x.rule.as_str(), &x.ips).cmp(&(y.rule.as_str(), &y.ips)));
        f
    }

    #[test]
    fn ssh_brute_force_success_and_accounts() {
        use LoginOutcome::*;
        let mut l = vec![(0, "192.0.2.10", "deploy", "ssh-accepted", Success)];
        for i in 0..12 {
            l.push((100_000 + i, "203.0.113.7", "root", "ssh-failed", Failure));
        }
        l.push((100_100, "203.0.113.7", "root", "ssh-accepted", Success));
        l.push((100_200, "", "backdoor", "user-added", Unknown));
        l.push((200_000, "192.0.2.10", "deploy", "ssh-accepted", Success));
        let f = run(&l);
        let r: Vec<(&str, Severity)> = f.iter().map(|x| (x.rule.as_str(), x.severity)).collect();
        assert_eq!(
            r,
            vec![
                ("host.account_change", Severity::High),
                ("host.ssh_brute_force", Severity::Medium),
                ("host.ssh_first_seen_ip", Severity::High),
                ("host.ssh_success_after_failures", Severity::Critical),
            ]
        );
        assert_eq!(f[0].users, vec!["backdoor"]);
        let view: Vec<_> = f.iter().map(|x| serde_json::json!({"rule": x.rule, "severity": x.severity, "ips": x.ips, "users": x.users, "count": x.count})).collect();
        insta::assert_json_snapshot!("host_ssh", view);
    }

    #[test]
    fn failures_without_success_and_known_logins_are_not_critical() {
        use LoginOutcome::*;
        let mut l: Vec<(i64, &str, &str, &str, LoginOutcome)> = (0..1000)
            .map(|i| (i, "198.51.100.9", "root", "ssh-failed", Failure))
            .collect();
        l.push((10, "192.0.2.10", "deploy", "ssh-failed", Failure));
        l.push((20, "192.0.2.10", "deploy", "ssh-accepted", Success));
        let f = run(&l);
        let r: Vec<(&str, Severity)> = f.iter().map(|x| (x.rule.as_str(), x.severity)).collect();
        assert_eq!(r, vec![("host.ssh_brute_force", Severity::High)]);
    }

    #[test]
    fn failures_before_an_accepted_login_count_up_to_its_second() {
        use LoginOutcome::*;
        // A deploy host: 4 failures up to t=100, a fifth at t=100 itself, 3,000 more later,
        // and 3,000 accepted logins from t=100 on (the same IP throughout).
        let ip = "192.0.2.44";
        let mut l: Vec<(i64, &str, &str, &str, LoginOutcome)> = (0..4)
            .map(|i| (10 * i, ip, "root", "ssh-failed", Failure))
            .collect();
        l.push((100, ip, "deploy", "ssh-accepted", Success));
        l.push((100, ip, "admin", "ssh-failed", Failure));
        for i in 0..3000 {
            l.push((101 + i, ip, "root", "ssh-failed", Failure));
            l.push((101 + i, ip, "deploy", "ssh-accepted", Success));
        }
        let f = run(&l);
        let s: Vec<&Finding> = f
            .iter()
            .filter(|x| x.rule == "host.ssh_success_after_failures")
            .collect();
        assert_eq!(s.len(), 1, "{f:#?}");
        // The accepted login at t=100 and the five failures up to that second.
        assert_eq!(s[0].count, 6);
        assert_eq!(s[0].users, ["admin", "deploy", "root"]);
        assert!(s[0].title.contains("after 5 failures"), "{}", s[0].title);
        assert_eq!(s[0].evidence.len(), 6);
        assert_eq!(s[0].last_seen.map(|t| t.utc_ms), Some(1_700_000_100_000));
        // Without the failure at t=100 itself, the first qualifying login is at t=101.
        l.retain(|x| !(x.0 == 100 && x.3 == "ssh-failed"));
        let f = run(&l);
        let s = f
            .iter()
            .find(|x| x.rule == "host.ssh_success_after_failures")
            .expect("a later login qualifies");
        assert!(s.title.contains("after 5 failures"), "{}", s.title);
        assert_eq!(s.first_seen.map(|t| t.utc_ms), Some(1_700_000_000_000));
        assert_eq!(s.last_seen.map(|t| t.utc_ms), Some(1_700_000_101_000));
        // The brute force cites 20 lines of its 3,005 failures, the earliest.
        let b = f
            .iter()
            .find(|x| x.rule == "host.ssh_brute_force")
            .expect("brute force");
        assert_eq!(b.count, 3004);
        assert_eq!(b.evidence.len(), 20);
        assert_eq!(b.evidence[0].line, 1);
    }
}
