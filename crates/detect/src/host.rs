//! `host`: host compromise from Linux auth logs (sshd, sudo, account tools).
//!
//! Rules:
//! - `host.ssh_brute_force`: ≥10 failed SSH logins from one IP: medium; high at ≥100. A
//!   failed login is a `Failed …` line (rsyslog's `message repeated N times: [ Failed … ]`
//!   counts N), or an attempt of a connection that logged none: `Invalid user`, an
//!   invalid-user close or PAM failures alone (see [`conns`]). PAM failures that name the
//!   client by a host name (`rhost=host.example.net`) in a process that logged no address
//!   are counted per host name the same way; the finding names the host in its title,
//!   summary and evidence, with no IP (none is known).
//! - `host.ssh_success_after_failures`: an `Accepted` login from an IP with ≥5 failures before
//!   it: critical.
//! - `host.ssh_first_seen_ip`: an `Accepted` login from an IP not seen accepting in the first
//!   third of the logs' SSH timeline (needs ≥1 day and an earlier accepted IP): medium.
//! - `host.account_change`: new OS users or groups, group membership changes, password
//!   changes, account deletions: high.
//!
//! Known false positives: admins logging in from a new network show as first-seen; a
//! configuration-management run that creates service accounts shows as an account change.
//!
//! Memory: every failure from a client IP is summed per IP (count, earliest five times,
//! users, earliest lines; past [`FAIL_IPS_CAP`] IPs per state spilled to `TMPDIR`), and the
//! earliest [`MAX_FAILURE_RECORDS`] are also kept as compact records (time, IP, user: about 90 bytes,
//! no line) to count the failures before each accepted login exactly. Brute-force counts and
//! the success-after-failures decision use the summaries, so a year of failures past the cap
//! hides neither; only how many came before an accepted login may then be a lower bound
//! ("at least"). Accepted logins and account changes (rare) are kept with their lines, the
//! earliest [`MAX_RECORDS`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::{
    Category, Event, EventDetail, Evidence, Finding, LoginOutcome, Severity, Timestamp,
};

mod conns;

use crate::codec::{self, Cursor, Files};
use crate::evidence::{evidence, SmallestSet, Span, TopEvidence};
use crate::spill_map::{SpillMap, Spillable};
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};

pub const RULES: &[&str] = &[
    "host.ssh_brute_force",
    "host.ssh_success_after_failures",
    "host.ssh_first_seen_ip",
    "host.account_change",
];

/// Most accepted logins and account changes kept with their lines: the earliest by (time,
/// file, line); what is left out is counted and reported.
pub const MAX_RECORDS: usize = 1_000_000;

/// Failed logins kept as compact records (the earliest): beyond, failures are only summed
/// per IP (see `IpFailures`), which is all the rules need but an exact count of the
/// failures before an accepted login when the IP also failed after it. About 90 bytes each.
pub const MAX_FAILURE_RECORDS: usize = 250_000;

/// Failures before an accepted login that make it `host.ssh_success_after_failures`.
const PRIOR: usize = 5;

/// Client IPs whose failure summaries one state holds before spilling them (see
/// `IpFailures`): about 0.3 KiB each, 4 KiB with twenty ordinary lines (40 KiB if every
/// line reaches the 2 KiB evidence cap).
pub const FAIL_IPS_CAP: usize = 16_384;

/// Every failed SSH login of one client IP, kept or counted out of the records: how many,
/// the earliest [`PRIOR`] times (enough to tell whether an accepted login followed five
/// failures), the span, the users tried (the 50 smallest) and the earliest lines. A flood
/// past [`MAX_RECORDS`] can then no longer hide a brute force or a success after it.
struct IpFailures {
    count: u64,
    /// Ascending, `i64::MAX` where there were fewer failures; a failure without a time
    /// counts as `i64::MIN` (before everything), as in the records.
    earliest: [i64; PRIOR],
    span: Span,
    users: SmallestSet<String>,
    evidence: TopEvidence,
}

impl Default for IpFailures {
    fn default() -> Self {
        IpFailures {
            count: 0,
            earliest: [i64::MAX; PRIOR],
            span: Span::default(),
            users: SmallestSet::new(50),
            evidence: TopEvidence::default(),
        }
    }
}

impl IpFailures {
    fn add_time(&mut self, t: i64) {
        if t < self.earliest[PRIOR - 1] {
            let pos = self.earliest.partition_point(|&x| x <= t);
            self.earliest[pos..].rotate_right(1);
            self.earliest[pos] = t;
        }
    }

    /// Whether [`PRIOR`] failures came at or before `t`.
    fn enough_before(&self, t: i64) -> bool {
        self.earliest[PRIOR - 1] <= t
    }
}

impl IpFailures {
    fn put(&self, out: &mut Vec<u8>) {
        codec::put_u64(out, self.count);
        for t in self.earliest {
            codec::put_i64(out, t);
        }
        codec::put_span(out, &self.span);
        codec::put_texts(out, &self.users);
        codec::put_evidence(out, &self.evidence);
    }

    fn read(c: &mut Cursor<'_>, files: &mut Files) -> Option<IpFailures> {
        let count = c.u64()?;
        let mut earliest = [0; PRIOR];
        for t in &mut earliest {
            *t = c.i64()?;
        }
        Some(IpFailures {
            count,
            earliest,
            span: c.span()?,
            users: c.texts(50)?,
            evidence: c.evidence(files)?,
        })
    }

    /// Counts `n` failures at `ts` by `user`, offering evidence through `cite`.
    fn add(
        &mut self,
        n: u64,
        ts: Option<Timestamp>,
        user: Option<&String>,
        cite: impl FnOnce(&mut TopEvidence),
    ) {
        self.count = self.count.saturating_add(n);
        for _ in 0..n.min(PRIOR as u64) {
            self.add_time(ts.map_or(i64::MIN, |t| t.utc_ms));
        }
        self.span.add(ts);
        if let Some(u) = user {
            self.users.insert(u.clone());
        }
        cite(&mut self.evidence);
    }
}

/// Every failed SSH login counted for one host name (see [`conns`]): as [`IpFailures`],
/// keyed by the name's [`codec::key128`].
#[derive(Default)]
struct NameFailures {
    name: String,
    f: IpFailures,
}

impl Spillable for NameFailures {
    type Key = (u64, u64);

    fn encode(key: (u64, u64), v: &NameFailures, out: &mut Vec<u8>) {
        codec::put_u64(out, key.0);
        codec::put_u64(out, key.1);
        codec::put_bytes(out, v.name.as_bytes());
        v.f.put(out);
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<((u64, u64), NameFailures)> {
        let mut c = Cursor(b);
        let key = (c.u64()?, c.u64()?);
        let name = c.str()?.to_string();
        let f = IpFailures::read(&mut c, files)?;
        c.0.is_empty().then_some((key, NameFailures { name, f }))
    }

    fn merge(&mut self, o: NameFailures) {
        if self.name.is_empty() {
            self.name = o.name;
        }
        self.f.merge(o.f);
    }
}

impl Spillable for IpFailures {
    type Key = IpAddr;

    fn encode(ip: IpAddr, f: &IpFailures, out: &mut Vec<u8>) {
        codec::put_ip(out, Some(ip));
        f.put(out);
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<(IpAddr, IpFailures)> {
        let mut c = Cursor(b);
        let ip = c.ip()??;
        let f = IpFailures::read(&mut c, files)?;
        c.0.is_empty().then_some((ip, f))
    }

    fn merge(&mut self, o: IpFailures) {
        self.count += o.count;
        for t in o.earliest {
            self.add_time(t);
        }
        self.span.merge(o.span);
        self.users.merge(o.users);
        self.evidence.merge(o.evidence);
    }
}

#[derive(Clone, Debug)]
struct Rec {
    ts: Option<Timestamp>,
    ip: Option<IpAddr>,
    user: Option<String>,
    action: &'static str,
    ev: Evidence,
}

/// A failed login from a client IP, kept to list the failures before an accepted login: when,
/// as whom, and where (for the order). Its line is in the IP's [`IpFailures`] when it is
/// among the earliest, the only ones a finding cites. About 90 bytes.
#[derive(Clone, Debug)]
struct Fail {
    ts: Option<Timestamp>,
    ip: IpAddr,
    user: Option<Arc<str>>,
    file: Arc<str>,
    line: u64,
    /// How many failures the line stands for (`message repeated N times`).
    n: u32,
}

impl Fail {
    fn ms(&self) -> i64 {
        self.ts.map_or(i64::MIN, |t| t.utc_ms)
    }
}

/// How many failures `fails` stand for.
fn failures_in(fails: &[&Fail]) -> usize {
    fails.iter().map(|f| f.n as usize).sum()
}

/// Distinct user names one state shares among its [`Fail`]s (more are each their own).
const USER_NAMES: usize = 4096;

/// State of the host detector: only the auth records with a meaning, compactly. Failed logins
/// (a year of an exposed SSH server has millions) are capped apart from the rare accepted
/// logins and account changes, so a flood of failures never pushes a later success out.
pub struct Host {
    /// Per client IP, every failure summed (see [`IpFailures`]).
    fail_ips: SpillMap<IpFailures>,
    /// Per client host name, when no line gave its address (see [`conns`]).
    fail_names: SpillMap<NameFailures>,
    failures: Vec<Fail>,
    /// User names of `failures`, shared.
    user_names: std::collections::HashSet<Arc<str>>,
    others: Vec<Rec>,
    dropped_failures: u64,
    dropped_others: u64,
    /// sshd connections that may still grow, for the attempts logged without a `Failed`
    /// line.
    conns: conns::Conns,
    /// Records kept: other events ([`MAX_RECORDS`]) and failures ([`MAX_FAILURE_RECORDS`]);
    /// smaller in tests.
    cap: usize,
    fail_cap: usize,
}

/// Sorts `recs` by `order` and keeps the earliest `cap`, counting the rest.
fn cut<T>(
    recs: &mut Vec<T>,
    dropped: &mut u64,
    cap: usize,
    order: fn(&T, &T) -> std::cmp::Ordering,
) {
    if recs.len() > cap {
        recs.sort_by(order);
        *dropped += (recs.len() - cap) as u64;
        recs.truncate(cap);
    }
}

/// Failures by (time, file, line).
fn fail_order(a: &Fail, b: &Fail) -> std::cmp::Ordering {
    (a.ms(), &a.file, a.line).cmp(&(b.ms(), &b.file, b.line))
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
            fail_ips: SpillMap::new(FAIL_IPS_CAP, "host"),
            fail_names: SpillMap::new(FAIL_IPS_CAP, "host"),
            failures: Vec::new(),
            user_names: Default::default(),
            others: Vec::new(),
            dropped_failures: 0,
            dropped_others: 0,
            conns: conns::Conns::default(),
            cap: MAX_RECORDS,
            fail_cap: MAX_FAILURE_RECORDS,
        }
    }

    fn compact(&mut self) {
        cut(
            &mut self.failures,
            &mut self.dropped_failures,
            self.fail_cap,
            fail_order,
        );
        cut(&mut self.others, &mut self.dropped_others, self.cap, order);
    }

    /// Counts `n` failures from `ip` (one line, or a connection's attempts without a
    /// `Failed` line) at `file`:`line`, which `cite` offers as evidence.
    fn add_failures(
        &mut self,
        ip: IpAddr,
        n: u64,
        ts: Option<Timestamp>,
        user: Option<String>,
        (file, line): (&Arc<str>, u64),
        cite: impl FnOnce(&mut TopEvidence),
    ) {
        self.fail_ips
            .get_or_default(ip)
            .add(n, ts, user.as_ref(), cite);
        let user = user.map(|u| match self.user_names.get(u.as_str()) {
            Some(n) => Arc::clone(n),
            None => {
                let n: Arc<str> = u.into();
                if self.user_names.len() < USER_NAMES {
                    self.user_names.insert(Arc::clone(&n));
                }
                n
            }
        });
        self.failures.push(Fail {
            ts,
            ip,
            user,
            file: Arc::clone(file),
            line,
            n: u32::try_from(n).unwrap_or(u32::MAX),
        });
        if self.failures.len() > self.fail_cap * 2 {
            self.compact();
        }
    }

    /// Counts the attempts of settled connections.
    fn add_excess(&mut self, excess: Vec<conns::Excess>) {
        for e in excess {
            let (ts, ev) = (e.marker.ev.ts, e.marker.ev);
            let file = Arc::clone(&ev.file);
            match e.subject {
                conns::Subject::Ip(ip) => {
                    self.add_failures(ip, e.n, ts, e.marker.user, (&file, ev.line), |t| t.push(ev));
                }
                conns::Subject::Name(name) => {
                    let v = self
                        .fail_names
                        .get_or_default(codec::key128(name.as_bytes()));
                    if v.name.is_empty() {
                        v.name = name.to_string();
                    }
                    v.f.add(e.n, ts, e.marker.user.as_ref(), |t| t.push(ev));
                }
            }
        }
    }
}

fn kind(action: &str, outcome: LoginOutcome) -> Option<&'static str> {
    Some(match action {
        "ssh-accepted" => "accepted",
        // One line per attempt; `Invalid user` and PAM lines mostly repeat a `Failed …`
        // line of their connection, and count only past those (see [`conns`]).
        "ssh-failed" if outcome == LoginOutcome::Failure => "failed",
        "ssh-invalid-user" | "ssh-invalid-user-close" | "pam-auth-failure" => "attempt",
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
            pid,
            times,
            remote_name,
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
        let user: Option<String> = user.as_deref().map(|u| u.chars().take(64).collect());
        if k == "failed" || k == "attempt" {
            let n = u64::from((*times).max(1));
            // Only failures from a client mean anything here: per IP, or per host name for
            // PAM failures whose process gives no address (joined by pid, see [`conns`]).
            let Some(ip) = ev.client_ip else {
                if let (Some(name), Some(pid), "attempt") = (remote_name, *pid, k) {
                    let mut excess = Vec::new();
                    let marker = || conns::Marker {
                        user: user.clone(),
                        ev: evidence(&o, ev.ts, 10),
                    };
                    self.conns.observe_name(
                        name,
                        pid,
                        n,
                        origin.file,
                        origin.line,
                        marker,
                        &mut excess,
                    );
                    self.add_excess(excess);
                }
                return;
            };
            let mut excess = Vec::new();
            if let Some(pid) = *pid {
                let conn_kind = match action.as_ref() {
                    "ssh-failed" => conns::Kind::Failed,
                    "ssh-invalid-user" => conns::Kind::Invalid,
                    "ssh-invalid-user-close" => conns::Kind::InvalidClosed,
                    _ => conns::Kind::Pam,
                };
                let marker = || conns::Marker {
                    user: user.clone(),
                    ev: evidence(&o, ev.ts, 10),
                };
                self.conns.observe(
                    conn_kind,
                    ip,
                    pid,
                    n,
                    origin.file,
                    origin.line,
                    marker,
                    &mut excess,
                );
            }
            self.add_excess(excess);
            if k == "failed" {
                let at = (origin.file, origin.line);
                self.add_failures(ip, n, ev.ts, user, at, |e| e.offer(&o, ev.ts, 10));
            }
            return;
        }
        self.others.push(Rec {
            ts: ev.ts,
            ip: ev.client_ip,
            user,
            action: if k == "account" {
                account_kind(action)
            } else {
                k
            },
            ev: evidence(&o, ev.ts, 90),
        });
        if self.others.len() > self.cap * 2 {
            self.compact();
        }
    }

    fn park(&mut self) {
        self.fail_ips.park();
        self.fail_names.park();
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let o: Host = downcast(other);
        let mut excess = Vec::new();
        self.conns.merge(o.conns, &mut excess);
        self.add_excess(excess);
        self.fail_ips.merge(o.fail_ips);
        self.fail_names.merge(o.fail_names);
        self.failures.extend(o.failures);
        self.others.extend(o.others);
        self.dropped_failures += o.dropped_failures;
        self.dropped_others += o.dropped_others;
        self.compact();
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        let mut excess = Vec::new();
        self.conns.finish(&mut excess);
        self.add_excess(excess);
        self.compact();
        if self.dropped_failures > 0 {
            ctx.warn(format!(
                "The host detector kept the earliest {} failed SSH logins; {} later ones were only counted (per IP: how many, the earliest, the users tried), so an accepted login may list fewer of the failures before it than there were.",
                self.fail_cap, self.dropped_failures
            ));
        }
        if self.dropped_others > 0 {
            ctx.warn(format!(
                "The host detector analysed the earliest {} accepted SSH logins and account changes; {} later ones were not analysed: split the logs by period and scan each.",
                self.cap, self.dropped_others
            ));
        }
        let mut failures = std::mem::take(&mut self.failures);
        failures.sort_by(fail_order);
        // Failures before this time were all kept (`None`: every one was).
        let kept_until =
            (self.dropped_failures > 0).then(|| failures.last().map_or(i64::MIN, Fail::ms));
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
        let mut fails: BTreeMap<IpAddr, Vec<&Fail>> = BTreeMap::new();
        for r in &failures {
            fails.entry(r.ip).or_default().push(r);
        }
        let accepted: Vec<&Rec> = others.iter().filter(|r| r.action == "accepted").collect();
        let accepted_ips: BTreeSet<IpAddr> = accepted.iter().filter_map(|r| r.ip).collect();
        // Every failure per IP, in IP order: brute forces, and what accepted logins need.
        let fail_ips = std::mem::replace(&mut self.fail_ips, SpillMap::new(0, "host"));
        let mut summaries: BTreeMap<IpAddr, IpFailures> = BTreeMap::new();
        for (ip, g) in fail_ips.into_sorted(ctx, "The failed SSH logins per client IP") {
            if g.count >= 10 {
                let n = g.count;
                let sev = if n >= 100 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let mut f = Finding::new("host.ssh_brute_force", Category::HostCompromise, sev);
                f.title = format!("SSH brute force from {ip} ({n} failures)");
                f.summary = format!("{n} failed SSH logins from {ip}. Nothing here says it succeeded; see host.ssh_success_after_failures.");
                f.first_seen = g.span.first;
                f.last_seen = g.span.last;
                f.ips = vec![ip.to_string()];
                f.users = g.users.items().to_vec();
                f.count = n;
                f.evidence = g.evidence.clone().into_vec();
                f.normalize_evidence();
                f.playbook = Some("admin-takeover".into());
                out.push(f);
            }
            if accepted_ips.contains(&ip) {
                summaries.insert(ip, g);
            }
        }
        // Host names PAM gave for clients whose address no line of their process gave.
        let fail_names = std::mem::replace(&mut self.fail_names, SpillMap::new(0, "host"));
        for (_, v) in fail_names.into_sorted(ctx, "The failed SSH logins per client host name") {
            let (name, g) = (v.name, v.f);
            if g.count < 10 {
                continue;
            }
            let n = g.count;
            let sev = if n >= 100 {
                Severity::High
            } else {
                Severity::Medium
            };
            let mut f = Finding::new("host.ssh_brute_force", Category::HostCompromise, sev);
            f.title = format!("SSH brute force from host {name} ({n} failures)");
            f.summary = format!(
                "{n} failed SSH logins from the host named {name}: PAM named the client by the host name sshd's \
                 reverse lookup gave, and no line of those sshd processes gave its address, so no IP is listed. \
                 The name is what the address's reverse DNS said then; whoever controls that zone chooses it. \
                 Nothing here says it succeeded; see host.ssh_success_after_failures."
            );
            f.first_seen = g.span.first;
            f.last_seen = g.span.last;
            f.users = g.users.items().to_vec();
            f.count = n;
            f.evidence = g.evidence.into_vec();
            f.normalize_evidence();
            f.playbook = Some("admin-takeover".into());
            out.push(f);
        }
        let mut done = BTreeSet::new();
        for a in &accepted {
            let Some(ip) = a.ip else { continue };
            if done.contains(&ip) {
                continue;
            }
            // The IP's failures are in time order (`failures` is sorted): those up to the
            // accepted login are a prefix, found by a binary search, not a scan per login.
            let prior: &[&Fail] = match fails.get(&ip) {
                Some(v) => &v[..v.partition_point(|f| f.ms() <= ms(a))],
                None => &[],
            };
            // Decided on every failure, kept or only counted (on the records alone if the
            // summary could not be read back, which was warned about).
            let summary = summaries.get(&ip);
            let empty = IpFailures::default();
            let g = summary.unwrap_or(&empty);
            if !(g.enough_before(ms(a)) || failures_in(prior) >= PRIOR) {
                continue;
            }
            if done.insert(ip) {
                let user = a.user.clone().unwrap_or_default();
                // Every failure of the IP came before: the summary counts them. Else, past the
                // records kept, some of those before were only counted.
                let all_before =
                    summary.is_some_and(|g| g.span.last.is_none_or(|l| l.utc_ms <= ms(a)));
                let (n, at_least) = match kept_until {
                    _ if all_before => (g.count as usize, ""),
                    Some(c) if ms(a) >= c => {
                        let known = g.earliest.iter().filter(|t| **t <= ms(a)).count();
                        (failures_in(prior).max(known), "at least ")
                    }
                    _ => (failures_in(prior), ""),
                };
                let mut f = Finding::new(
                    "host.ssh_success_after_failures",
                    Category::HostCompromise,
                    Severity::Critical,
                );
                f.title =
                    format!("SSH login accepted for {user} from {ip} after {at_least}{n} failures");
                f.summary = format!("{ip} failed {at_least}{n} SSH logins, then was accepted as {user}: treat the account and the server as compromised.");
                let times = std::iter::once(a.ts)
                    .chain(prior.iter().map(|p| p.ts))
                    .chain([g.span.first])
                    .flatten();
                f.first_seen = times.clone().min();
                f.last_seen = times.max();
                f.ips = vec![ip.to_string()];
                let tried: Box<dyn Iterator<Item = &str>> = if all_before {
                    Box::new(g.users.items().iter().map(String::as_str))
                } else {
                    Box::new(prior.iter().filter_map(|p| p.user.as_deref()))
                };
                f.users = a
                    .user
                    .as_deref()
                    .into_iter()
                    .chain(tried)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .take(50)
                    .map(str::to_string)
                    .collect();
                f.count = 1 + n as u64;
                // The accepted login, then the earliest failures (all before it).
                let t = ms(a);
                f.evidence = std::iter::once(a.ev.clone())
                    .chain(
                        g.evidence
                            .clone()
                            .into_vec()
                            .into_iter()
                            .filter(|e| e.ts.map_or(i64::MIN, |x| x.utc_ms) <= t),
                    )
                    .collect();
                f.normalize_evidence();
                f.playbook = Some("admin-takeover".into());
                out.push(f);
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
                pid: None,
                times: 1,
                remote_name: None,
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
        // 300 failures from one IP, then 40 from another, each followed by a success (and the
        // second by 3 more failures); the first also adds a user. Records are kept for the
        // earliest 50 failures only: the rest are counted, and neither success nor either
        // brute force is missed.
        let (ip, late) = ("203.0.113.5", "198.51.100.66");
        let mut lines: Vec<(i64, &str, &str, &str, LoginOutcome)> = (0..300)
            .map(|i| (i, ip, "root", "ssh-failed", Failure))
            .collect();
        lines.push((400, ip, "root", "ssh-accepted", Success));
        lines.push((401, ip, "backdoor", "user-added", Success));
        lines.extend((0..40).map(|i| (500 + i, late, "admin", "ssh-failed", Failure)));
        lines.push((600, late, "admin", "ssh-accepted", Success));
        lines.extend((0..3).map(|i| (700 + i, late, "guest", "ssh-failed", Failure)));
        let run_capped = |parts: usize, fail_ips_cap: usize| {
            let mut states: Vec<Host> = (0..parts)
                .map(|_| {
                    let mut h = Host::new(cfg.clone());
                    h.cap = 50;
                    h.fail_cap = 50;
                    h.fail_ips.cap = fail_ips_cap;
                    h
                })
                .collect();
            for (i, l) in lines.iter().enumerate() {
                let (ev, raw) = auth(l);
                let o = Origin {
                    file: &file,
                    line: i as u64 + 1,
                    raw: raw.as_bytes(),
                };
                states[i * parts / lines.len()].observe(&ev, &o);
            }
            let mut it = states.into_iter();
            let mut all = it.next().unwrap();
            for s in it {
                all.merge(Box::new(s));
            }
            let ctx = FinishContext::default();
            let mut f = Box::new(all).finish(&ctx);
            for x in &mut f {
                x.normalize_evidence();
            }
            (f, ctx.take_warnings())
        };
        let (f, warnings) = run_capped(2, usize::MAX);
        let of = |rule: &str, who: &str| {
            f.iter()
                .find(|x| x.rule == rule && x.ips == [who])
                .unwrap_or_else(|| panic!("{rule} {who}: {f:#?}"))
        };
        assert!(f.iter().any(|x| x.rule == "host.account_change"));
        // Brute forces count every failure.
        assert_eq!(of("host.ssh_brute_force", ip).count, 300);
        let b = of("host.ssh_brute_force", late);
        assert_eq!(b.count, 43);
        assert_eq!((b.evidence.len(), b.evidence[0].line), (20, 303));
        assert_eq!(b.users, ["admin", "guest"]);
        // The success whose failures were all counted out is found, with their lines; some
        // failures came after it, so how many came before is only bounded.
        let s = of("host.ssh_success_after_failures", late);
        assert!(
            s.title.ends_with("after at least 5 failures"),
            "{}",
            s.title
        );
        assert_eq!(s.users, ["admin"]);
        assert_eq!(s.evidence.len(), 20);
        assert_eq!(s.evidence[0].line, 343, "the accepted login first");
        assert_eq!(s.first_seen.map(|t| t.utc_ms), Some(1_700_000_500_000));
        // Every failure of this one came before its success: counted exactly.
        let s = of("host.ssh_success_after_failures", ip);
        assert!(s.title.ends_with("after 300 failures"), "{}", s.title);
        assert_eq!(s.count, 301);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("293 later ones were only counted"),
            "{warnings:?}"
        );
        // Per-IP summaries spilled give the same.
        let json = |f: &[Finding]| serde_json::to_string(f).unwrap();
        for (parts, cap) in [(1, 1), (3, 1), (2, 2)] {
            let (g, _) = run_capped(parts, cap);
            assert_eq!(json(&g), json(&f), "{parts} parts, cap {cap}");
        }
    }

    #[test]
    fn a_success_before_the_records_ran_out_keeps_its_exact_count() {
        use LoginOutcome::*;
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("secure");
        let mut h = Host::new(cfg);
        h.fail_cap = 30;
        // 10 failures and a success early, then 100 failures from elsewhere: records run out
        // at the 30th failure, after the success.
        let mut lines: Vec<(i64, &str, &str, &str, LoginOutcome)> = (0..10)
            .map(|i| (i, "192.0.2.9", "root", "ssh-failed", Failure))
            .collect();
        lines.push((20, "192.0.2.9", "root", "ssh-accepted", Success));
        lines.extend((0..100).map(|i| (100 + i, "203.0.113.80", "admin", "ssh-failed", Failure)));
        for (i, l) in lines.iter().enumerate() {
            let (ev, raw) = auth(l);
            let o = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: raw.as_bytes(),
            };
            h.observe(&ev, &o);
        }
        let ctx = FinishContext::default();
        let f = Box::new(h).finish(&ctx);
        let s = f
            .iter()
            .find(|x| x.rule == "host.ssh_success_after_failures")
            .expect("success after failures");
        assert!(s.title.ends_with("after 10 failures"), "{}", s.title);
        assert_eq!(s.count, 11);
        assert_eq!(ctx.take_warnings().len(), 1, "records did run out");
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

    /// An sshd line of a connection: `(secs, ip, user, action, pid, times)`.
    type ConnLine<'a> = (i64, &'a str, &'a str, &'a str, u32, u32);

    /// The host findings of `lines` folded in `parts` contiguous runs merged in order.
    fn run_conns(lines: &[ConnLine<'_>], parts: usize) -> Vec<Finding> {
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("auth.log");
        let mut states: Vec<Host> = (0..parts).map(|_| Host::new(cfg.clone())).collect();
        for (i, &(t, ip, user, action, pid, times)) in lines.iter().enumerate() {
            let outcome = match action {
                "ssh-failed" | "ssh-invalid-user" => LoginOutcome::Failure,
                _ => LoginOutcome::Unknown,
            };
            let (mut ev, raw) = auth(&(t, ip, user, action, outcome));
            if let EventDetail::Auth {
                pid: p,
                times: n,
                remote_name,
                ..
            } = &mut ev.detail
            {
                *p = Some(pid);
                *n = times;
                // Not an address: PAM named the host.
                if ev.client_ip.is_none() {
                    *remote_name = Some(Cow::Borrowed(ip));
                }
            }
            let o = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: raw.as_bytes(),
            };
            states[i * parts / lines.len()].observe(&ev, &o);
        }
        let mut it = states.into_iter();
        let mut all = it.next().unwrap();
        for s in it {
            all.merge(Box::new(s));
        }
        let mut f = Box::new(all).finish(&FinishContext::default());
        for x in &mut f {
            x.normalize_evidence();
        }
        f.sort_by(|x, y| (x.rule.as_str(), &x.ips).cmp(&(y.rule.as_str(), &y.ips)));
        f
    }

    #[test]
    fn attempts_without_a_failed_line_count_once_per_connection() {
        let mut l: Vec<ConnLine<'_>> = Vec::new();
        // A scanner that never sends a password (OpenSSH >= 7): `Invalid user` and the
        // close, 12 connections.
        for i in 0..12u32 {
            l.push((
                i64::from(i) * 10,
                "198.51.100.23",
                "admin",
                "ssh-invalid-user",
                1000 + i,
                1,
            ));
            l.push((
                i64::from(i) * 10 + 1,
                "198.51.100.23",
                "admin",
                "ssh-invalid-user-close",
                1000 + i,
                1,
            ));
        }
        // The usual lines of 8 guesses, one per connection: 8 failures, not 16 or 32.
        for i in 0..8u32 {
            let t = 1000 + i64::from(i) * 10;
            l.push((t, "203.0.113.7", "oracle", "ssh-invalid-user", 2000 + i, 1));
            l.push((
                t + 1,
                "203.0.113.7",
                "oracle",
                "pam-auth-failure",
                2000 + i,
                1,
            ));
            l.push((t + 2, "203.0.113.7", "oracle", "ssh-failed", 2000 + i, 1));
            l.push((
                t + 3,
                "203.0.113.7",
                "oracle",
                "ssh-invalid-user-close",
                2000 + i,
                1,
            ));
        }
        // rsyslog's repeat wrapper: two connections of 1 + 5 failures (and PAM's 1 + 5).
        for i in 0..2u32 {
            let t = 2000 + i64::from(i) * 10;
            l.push((t, "192.0.2.50", "root", "pam-auth-failure", 3000 + i, 1));
            l.push((t + 1, "192.0.2.50", "root", "ssh-failed", 3000 + i, 1));
            l.push((t + 2, "192.0.2.50", "root", "ssh-failed", 3000 + i, 5));
            l.push((t + 3, "192.0.2.50", "root", "pam-auth-failure", 3000 + i, 5));
        }
        // Old Red Hat syslog: PAM lines only, 10 connections, the last with 2 more.
        for i in 0..10u32 {
            l.push((
                3000 + i64::from(i) * 10,
                "203.0.113.80",
                "root",
                "pam-auth-failure",
                4000 + i,
                1,
            ));
        }
        l.push((3100, "203.0.113.80", "root", "pam-auth-failure", 4009, 2));
        let f = run_conns(&l, 1);
        let view: Vec<_> = f
            .iter()
            .map(|x| serde_json::json!({"rule": x.rule, "severity": x.severity, "ips": x.ips, "users": x.users, "count": x.count, "lines": x.evidence.iter().map(|e| e.line).collect::<Vec<_>>()}))
            .collect();
        insta::assert_json_snapshot!("host_ssh_connections", view);
        let json = serde_json::to_string(&f).unwrap();
        for parts in [2, 3, 7, l.len()] {
            assert_eq!(
                serde_json::to_string(&run_conns(&l, parts)).unwrap(),
                json,
                "{parts} parts"
            );
        }
    }

    #[test]
    fn pam_failures_naming_a_host_count_per_name_unless_an_address_is_logged() {
        let mut l: Vec<ConnLine<'_>> = Vec::new();
        // Old Red Hat syslog, reverse DNS on: PAM lines by host name only, 12 connections.
        for i in 0..12u32 {
            let t = i64::from(i) * 10;
            l.push((t, "n7.example.net", "root", "pam-auth-failure", 5000 + i, 1));
        }
        // OpenSSH with UseDNS: PAM names the host, sshd's `Failed` line gives the address of
        // the same attempt: 10 failures for the address, none for the name.
        for i in 0..10u32 {
            let t = 1000 + i64::from(i) * 10;
            l.push((
                t,
                "host.example.net",
                "root",
                "pam-auth-failure",
                6000 + i,
                1,
            ));
            l.push((t + 1, "192.0.2.66", "root", "ssh-failed", 6000 + i, 1));
        }
        let f = run_conns(&l, 1);
        let mut brute: Vec<(&str, &[String], u64)> = f
            .iter()
            .filter(|x| x.rule == "host.ssh_brute_force")
            .map(|x| (x.title.as_str(), x.ips.as_slice(), x.count))
            .collect();
        brute.sort();
        assert_eq!(
            brute,
            vec![
                (
                    "SSH brute force from 192.0.2.66 (10 failures)",
                    &["192.0.2.66".to_string()][..],
                    10
                ),
                (
                    "SSH brute force from host n7.example.net (12 failures)",
                    &[][..],
                    12
                ),
            ],
            "{f:#?}"
        );
        let named = f
            .iter()
            .find(|x| x.title.contains("n7.example.net"))
            .unwrap();
        assert!(
            named.summary.contains("no IP is listed"),
            "{}",
            named.summary
        );
        assert!(named
            .evidence
            .iter()
            .all(|e| e.text.contains("n7.example.net")));
        let json = serde_json::to_string(&f).unwrap();
        for parts in [2, 3, 7, l.len()] {
            assert_eq!(
                serde_json::to_string(&run_conns(&l, parts)).unwrap(),
                json,
                "{parts} parts"
            );
        }
    }
}
