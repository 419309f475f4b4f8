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

/// Most failed logins kept, and most other auth records (accepted logins, account changes)
/// kept: the earliest by (time, file, line) of each; what is left out is counted and reported.
pub const MAX_RECORDS: usize = 1_000_000;

#[derive(Clone, Debug)]
struct Rec {
    ts: Option<Timestamp>,
    ip: Option<IpAddr>,
    user: Option<String>,
    action: &'static str,
    ev: Evidence,
}

/// State of the host detector: only the auth records with a meaning, compactly. Failed logins
/// (a year of an exposed SSH server has millions) are capped apart from the rare accepted
/// logins and account changes, so a flood of failures never pushes a later success out.
pub struct Host {
    failures: Vec<Rec>,
    others: Vec<Rec>,
    dropped_failures: u64,
    dropped_others: u64,
    /// Records kept per list ([`MAX_RECORDS`]; smaller in tests).
    cap: usize,
}

/// Sorts `recs` by (time, file, line) and keeps the earliest `cap`, counting the rest.
fn cut(recs: &mut Vec<Rec>, dropped: &mut u64, cap: usize) {
    if recs.len() > cap {
        recs.sort_by(order);
        *dropped += (recs.len() - cap) as u64;
        recs.truncate(cap);
    }
}

fn order(a: &Rec, b: &Rec) -> std::cmp::Ordering {
    (a.ts.map(|t| t.utc_ms), &a.ev.file, a.ev.line).cmp(&(
        b.ts.map(|t| t.utc_ms),
        &b.ev.file,
        b.ev.line,
    ))
}

impl Host {
    pub fn new(_config: Arc<DetectConfig>) -> Self {
        Host {
            failures: Vec::new(),
            others: Vec::new(),
            dropped_failures: 0,
            dropped_others: 0,
            cap: MAX_RECORDS,
        }
    }

    fn compact(&mut self) {
        cut(&mut self.failures, &mut self.dropped_failures, self.cap);
        cut(&mut self.others, &mut self.dropped_others, self.cap);
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
        let rec = Rec {
            ts: ev.ts,
            ip: ev.client_ip,
            user: user.as_deref().map(|u| u.chars().take(64).collect()),
            action: if k == "account" {
                account_kind(action)
            } else {
                k
            },
            ev: evidence(&o, ev.ts, if k == "failed" { 10 } else { 90 }),
        };
        let list = if k == "failed" {
            &mut self.failures
        } else {
            &mut self.others
        };
        list.push(rec);
        if list.len() > self.cap * 2 {
            self.compact();
        }
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let o: Host = downcast(other);
        self.failures.extend(o.failures);
        self.others.extend(o.others);
        self.dropped_failures += o.dropped_failures;
        self.dropped_others += o.dropped_others;
        self.compact();
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        self.compact();
        if self.dropped_failures > 0 {
            ctx.warn(format!(
                "The host detector analysed the earliest {} failed SSH logins; {} later ones were counted out, so failure counts in host findings are lower bounds.",
                self.cap, self.dropped_failures
            ));
        }
        if self.dropped_others > 0 {
            ctx.warn(format!(
                "The host detector analysed the earliest {} accepted SSH logins and account changes; {} later ones were not analysed: split the logs by period and scan each.",
                self.cap, self.dropped_others
            ));
        }
        let mut failures = std::mem::take(&mut self.failures);
        failures.sort_by(order);
        let mut others = std::mem::take(&mut self.others);
        others.sort_by(order);
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
        for r in &failures {
            if let Some(ip) = r.ip {
                fails.entry(ip).or_default().push(r);
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
        let accepted: Vec<&Rec> = others.iter().filter(|r| r.action == "accepted").collect();
        let mut done = BTreeSet::new();
        for a in &accepted {
            let Some(ip) = a.ip else { continue };
            if done.contains(&ip) {
                continue;
            }
            // The IP's failures are in time order (`failures` is sorted): those up to the
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
        let accounts: Vec<&Rec> = others.iter().filter(|r| r.action != "accepted").collect();
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

    /// An auth line `(secs, ip, user, action, outcome)`: its event and raw text.
    fn auth<'a>(
        &(t, ip, user, action, outcome): &(i64, &str, &'a str, &'a str, LoginOutcome),
    ) -> (Event<'a>, String) {
        let ev = Event {
            ts: Some(Timestamp::from_secs(1_700_000_000 + t, 0)),
            client_ip: ip.parse().ok(),
            detail: EventDetail::Auth {
                program: Cow::Borrowed("sshd"),
                user: Some(Cow::Borrowed(user)),
                action: Cow::Borrowed(action),
                outcome,
            },
            ..Default::default()
        };
        (ev, format!("{action} {user} {ip}"))
    }

    fn run(lines: &[(i64, &str, &str, &str, LoginOutcome)]) -> Vec<Finding> {
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("secure");
        let mut a = DetectorSet::new(&cfg);
        let mut b = DetectorSet::new(&cfg);
        for (i, l) in lines.iter().enumerate() {
            let (ev, raw) = auth(l);
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
    fn a_flood_of_failures_never_pushes_a_later_success_out() {
        use LoginOutcome::*;
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("secure");
        let mut states: Vec<Host> = (0..2)
            .map(|_| {
                let mut h = Host::new(cfg.clone());
                h.cap = 50;
                h
            })
            .collect();
        // 300 failures, then the attacker gets in and adds a user: the failures past the cap
        // are counted out, the success and the account change are still analysed.
        let ip = "203.0.113.5";
        let mut lines: Vec<(i64, &str, &str, &str, LoginOutcome)> = (0..300)
            .map(|i| (i, ip, "root", "ssh-failed", Failure))
            .collect();
        lines.push((400, ip, "root", "ssh-accepted", Success));
        lines.push((401, ip, "backdoor", "user-added", Success));
        for (i, l) in lines.iter().enumerate() {
            let (ev, raw) = auth(l);
            let o = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: raw.as_bytes(),
            };
            states[i * 2 / lines.len()].observe(&ev, &o);
        }
        let mut it = states.into_iter();
        let mut all = it.next().unwrap();
        all.merge(Box::new(it.next().unwrap()));
        let ctx = FinishContext::default();
        let f = Box::new(all).finish(&ctx);
        let rules: Vec<&str> = f.iter().map(|x| x.rule.as_str()).collect();
        assert!(
            rules.contains(&"host.ssh_success_after_failures"),
            "{rules:?}"
        );
        assert!(rules.contains(&"host.account_change"), "{rules:?}");
        let warnings = ctx.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("250 later ones were counted out"),
            "{warnings:?}"
        );
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
