//! WAF detection: what the WAF saw, what reached the application anyway, and when the WAF was
//! not watching. Correlates WAF records with web access lines by client IP, path and time.
//!
//! State is compact: WAF records (few) are kept as small summaries with one evidence line
//! each; of web requests only those that could matter are kept (requests carrying a query,
//! a POST, an attack payload per [`classify`], admin-route 2xx hits and script hits in upload
//! folders), each as (ip, path hash, time, status, class, evidence). WAF records and admin,
//! script and login hits are bounded: beyond the cap the earliest by (time, file, line) are
//! kept, so merging is split-independent, and the report warns. The requests that may match
//! a WAF record (the many) are written out past a cap as sorted runs (`requests`), and finish
//! keeps those on a (client, path) some WAF record names: all of them are matched.
//! Per-hour request counts per source feed the monitoring-lapse rule. Matching happens at
//! finish.
//!
//! Rules:
//! - `waf.unblocked_attack`: a high-severity match the WAF only logged (DetectionOnly,
//!   `Warning`, `COUNT`, `log`, `MONITOR`) answered 2xx by the application (access-log line
//!   within [`MATCH_WINDOW_SECS`], or the WAF record's own response status when no access
//!   line exists): high; critical when that IP later gets 2xx on an admin route or on a script
//!   in an upload folder, or on a first-seen script: a script path (per
//!   [`crate::webshell::is_unusual_script`]) whose earliest 2xx in the logs went to that IP,
//!   after its unblocked attack (no other client had reached it before).
//! - `waf.blocked_then_through`: an IP blocked on a path gets 2xx on the same path within
//!   24 h with a payload of the same attack class.
//! - `waf.detection_only`: periods during which the engine ran without blocking. For a log
//!   that names the policy (AWS `webaclId`), judged per web ACL: an ACL is said to have only
//!   counted when none of its records in the logs was blocked while its rules matched in
//!   `COUNT`. A `COUNT` rule in a web ACL that blocks other requests is that rule's setting
//!   (a count-only rule, or a managed rule group overridden to count while tuning), not the
//!   WAF's mode: see `waf.counted_not_blocked`.
//! - `waf.counted_not_blocked`: attack matches that only `COUNT` rules of a web ACL that does
//!   block matched, per (web ACL, rule): counted, not blocked, so they reached the application.
//! - `waf.monitoring_lapse` (category `log-integrity`): hours with web traffic but no WAF
//!   record, where the WAF's own rate elsewhere predicts at least [`LAPSE_MIN_EXPECTED`].
//! - `waf.stored_xss_bait`: an unblocked XSS match on a customer-input route (contact, order
//!   notes, addresses, registration, reviews) followed within 48 h by admin-route 2xx hits or
//!   successful admin logins. "Admin route" is a generic heuristic: a path segment `admin`,
//!   `wp-admin`, `administrator`, `backend` or `adminhtml` (EC-CUBE's admin prefix is
//!   configurable; shops that renamed it will not match). After all detectors finish,
//!   [`correlate_stored_xss`] also links the bait to the admin detector's anomaly findings
//!   within 48 h (`related`), which knows renamed admin paths: a bait with no generic admin
//!   route is reported when such anomalies follow it.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::report::{WafIpRow, WafRuleRow};
use ecir_model::{
    Category, Event, EventDetail, Evidence, Finding, LoginOutcome, Severity, SourceKind, Timestamp,
    WafAction, WafClass, WafSummary,
};

use crate::evidence::{evidence, SmallestSet, Span};

mod requests;
use crate::web_attack::{classify, Class};
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};

pub const RULES: &[&str] = &[
    "waf.unblocked_attack",
    "waf.blocked_then_through",
    "waf.detection_only",
    "waf.counted_not_blocked",
    "waf.monitoring_lapse",
    "waf.stored_xss_bait",
];

/// WAF record and access line are the same request when this close in time (seconds).
pub const MATCH_WINDOW_SECS: i64 = 120;
/// Blocked-then-through: how long after the block a success counts (seconds).
pub const BYPASS_WINDOW_SECS: i64 = 24 * 3600;
/// Stored-XSS bait: how long after the bait admin activity counts (seconds).
pub const BAIT_WINDOW_SECS: i64 = 48 * 3600;
/// WAF records the lapse rule must expect in a silent stretch before calling it a lapse.
pub const LAPSE_MIN_EXPECTED: f64 = 10.0;
/// Shortest silent stretch reported as a lapse (hours).
pub const LAPSE_MIN_HOURS: i64 = 2;
/// WAF records kept for correlation.
pub const MAX_WAF_RECORDS: usize = 100_000;
/// Web requests kept for correlation.
pub const MAX_WEB_HITS: usize = 200_000;
/// Script paths whose earliest 2xx hits are kept (first-seen script escalation); beyond
/// it the paths first reached earliest are kept.
pub const MAX_SCRIPT_PATHS: usize = 50_000;
/// Earliest 2xx hits kept per script path.
const SCRIPT_FIRST_HITS: usize = 4;
/// Evidence text kept per stored record (the report cites file and line in any case).
const KEPT_TEXT: usize = 600;

#[derive(Clone, Debug)]
struct WafRec {
    ts: Timestamp,
    ip: Option<IpAddr>,
    path_hash: u64,
    path: String,
    class: Option<WafClass>,
    action: WafAction,
    high: bool,
    detection_only: bool,
    /// The rules that only counted this request (AWS `COUNT`), comma-joined; empty when none
    /// did or the request was blocked.
    counted: String,
    /// The web ACL (AWS `webaclId`) that judged it, when the log names it.
    policy: Option<Arc<str>>,
    status: Option<u16>,
    rules: String,
    ev: Evidence,
}

/// One policy's (web ACL's) records: whether it ever blocked, and how many requests its rules
/// only counted. Counted over all records, before any cap.
#[derive(Default, Debug, Clone, Copy)]
struct PolicyAgg {
    blocked: u64,
    counted: u64,
}

impl PolicyAgg {
    fn add(&mut self, o: PolicyAgg) {
        self.blocked += o.blocked;
        self.counted += o.counted;
    }
}

/// How a not-blocked record's policy stands: `None` for records no rule only counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum CountScope {
    /// The web ACL blocked nothing in the logs: it only watched.
    PolicyCountsOnly,
    /// The web ACL blocks other requests: the counting rule is set to count.
    RuleCounts,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WebKind {
    /// A request that may match a WAF record.
    Request,
    /// A 2xx on an admin route.
    Admin,
    /// A 2xx on a script in an upload-like folder.
    Shell,
    /// A successful admin login (admin-login sources).
    Login,
}

#[derive(Clone, Debug)]
struct WebHit {
    ts: Timestamp,
    ip: Option<IpAddr>,
    path_hash: u64,
    status: u16,
    class: Option<WafClass>,
    kind: WebKind,
    ev: Evidence,
}

/// One of the earliest 2xx answers on a script path.
#[derive(Clone, Debug)]
struct ScriptHit {
    ts: Timestamp,
    ip: Option<IpAddr>,
    ev: Evidence,
}

/// Script path → its earliest 2xx hits by (time, file, line), at most [`SCRIPT_FIRST_HITS`].
type Scripts = BTreeMap<String, Vec<ScriptHit>>;

fn add_script_hit(hits: &mut Vec<ScriptHit>, h: ScriptHit) {
    hits.push(h);
    hits.sort_by_key(|h| key_ts(&h.ts, &h.ev));
    hits.truncate(SCRIPT_FIRST_HITS);
}

fn key_ts(ts: &Timestamp, ev: &Evidence) -> (i64, Arc<str>, u64) {
    (ts.utc_ms, Arc::clone(&ev.file), ev.line)
}

#[derive(Default, Debug, Clone)]
struct RuleAgg {
    message: Option<String>,
    class: Option<WafClass>,
    matches: u64,
    blocked: u64,
    not_blocked: u64,
    ips: SmallestSet<IpAddr>,
}

#[derive(Default, Debug, Clone)]
struct IpAgg {
    events: u64,
    blocked: u64,
    not_blocked: u64,
    classes: BTreeSet<WafClass>,
}

pub struct Waf {
    waf: Vec<WafRec>,
    /// Admin, upload-script and login hits (the earliest [`MAX_WEB_HITS`]).
    web: Vec<WebHit>,
    /// Requests that may match a WAF record, up to `request_cap` in memory, the rest in
    /// `request_runs` (see [`requests`]).
    requests: Vec<WebHit>,
    request_runs: ecir_spill::Runs<requests::RequestRecord>,
    /// `usize::MAX` once writing failed (then the earliest [`MAX_WEB_HITS`] requests are
    /// kept in memory), and why.
    request_cap: usize,
    request_error: Option<String>,
    waf_overflow: bool,
    web_overflow: bool,
    /// Candidate web requests kept at most ([`MAX_WEB_HITS`]; smaller in tests).
    web_cap: usize,
    scripts: Scripts,
    scripts_overflow: bool,
    /// (hour since epoch) → (web requests, WAF records).
    hours: BTreeMap<i64, (u64, u64)>,
    /// First web line of each hour, for lapse evidence.
    hour_evidence: BTreeMap<i64, Evidence>,
    rules: BTreeMap<String, RuleAgg>,
    ips: BTreeMap<IpAddr, IpAgg>,
    /// Per policy (AWS web ACL) named by a kept record: blocked and counted requests.
    policies: BTreeMap<Arc<str>, PolicyAgg>,
    /// The same for records that name no policy.
    unnamed_policy: PolicyAgg,
    summary: WafSummary,
    span: Span,
    scratch: Vec<u8>,
    /// ModSecurity `Audit log: …` failures (earliest [`MAX_AUDIT_FAILURES`] kept) and their count.
    audit_failures: Vec<Evidence>,
    audit_failure_count: u64,
    /// False when the run holds no WAF log: web requests then need no tracking.
    track_web: bool,
}

/// Channel of the events ModSecurity `Audit log: Failed writing …` lines become
/// (`ecir_formats::modsec_errorlog::AUDIT_FAILURE_CHANNEL`).
pub const AUDIT_FAILURE_CHANNEL: &str = "modsecurity-audit-log";
/// Audit-log failures kept as evidence.
const MAX_AUDIT_FAILURES: usize = 50;

impl Waf {
    /// The policy's shared name (at most 200 bytes), entered in `policies`.
    fn intern_policy(&mut self, p: &str) -> Arc<str> {
        if let Some((k, _)) = self.policies.get_key_value(p) {
            return Arc::clone(k);
        }
        let k: Arc<str> = Arc::from(crate::web_attack::truncate(p, 200));
        if let Some((k, _)) = self.policies.get_key_value(&k) {
            return Arc::clone(k);
        }
        self.policies.insert(Arc::clone(&k), PolicyAgg::default());
        k
    }

    pub fn new(config: Arc<DetectConfig>) -> Self {
        Waf {
            track_web: config.run_has_waf,
            waf: Vec::new(),
            web: Vec::new(),
            requests: Vec::new(),
            request_runs: ecir_spill::Runs::new(std::env::temp_dir(), "waf"),
            request_cap: requests::REQUEST_CAP,
            request_error: None,
            waf_overflow: false,
            web_overflow: false,
            web_cap: MAX_WEB_HITS,
            scripts: BTreeMap::new(),
            scripts_overflow: false,
            hours: BTreeMap::new(),
            hour_evidence: BTreeMap::new(),
            rules: BTreeMap::new(),
            ips: BTreeMap::new(),
            policies: BTreeMap::new(),
            unnamed_policy: PolicyAgg::default(),
            summary: WafSummary::default(),
            span: Span::default(),
            scratch: Vec::new(),
            audit_failures: Vec::new(),
            audit_failure_count: 0,
        }
    }

    fn compact(&mut self) {
        if self.scripts.len() > MAX_SCRIPT_PATHS {
            type Key = (i64, Arc<str>, u64);
            let mut firsts: Vec<(Key, String)> = self
                .scripts
                .iter()
                .filter_map(|(p, h)| h.first().map(|f| (key_ts(&f.ts, &f.ev), p.clone())))
                .collect();
            firsts.sort();
            for (_, p) in firsts.drain(MAX_SCRIPT_PATHS..) {
                self.scripts.remove(&p);
            }
            self.scripts_overflow = true;
        }
        if self.audit_failures.len() > MAX_AUDIT_FAILURES {
            self.audit_failures
                .sort_by(|a, b| (a.ts, &a.file, a.line).cmp(&(b.ts, &b.file, b.line)));
            self.audit_failures.truncate(MAX_AUDIT_FAILURES);
        }
        if self.waf.len() > MAX_WAF_RECORDS {
            self.waf.sort_by_key(|a| key_ts(&a.ts, &a.ev));
            self.waf.truncate(MAX_WAF_RECORDS);
            self.waf_overflow = true;
        }
        for list in [&mut self.web, &mut self.requests] {
            if list.len() > self.web_cap {
                list.sort_by(|a, b| {
                    (key_ts(&a.ts, &a.ev), a.kind).cmp(&(key_ts(&b.ts, &b.ev), b.kind))
                });
                list.truncate(self.web_cap);
                self.web_overflow = true;
            }
        }
    }

    /// Writes the requests in memory as a run; when writing fails they stay in memory (the
    /// earliest [`MAX_WEB_HITS`], see [`Waf::compact`]) and this state stops writing.
    #[cold]
    fn spill_requests(&mut self) {
        if self.requests.is_empty() || self.request_cap == usize::MAX {
            return;
        }
        let mut all: Vec<requests::RequestRecord> = std::mem::take(&mut self.requests)
            .into_iter()
            .map(requests::RequestRecord)
            .collect();
        all.sort_unstable_by_key(|r| requests::key_of(&r.0));
        if let Err(e) = self.request_runs.spill(&all) {
            self.request_cap = usize::MAX;
            self.request_error = Some(e.to_string());
            self.requests = all.into_iter().map(|r| r.0).collect();
        }
    }
}

/// The smaller of two optional values, `None` losing: an order-independent choice.
fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn path_hash(path: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    path.hash(&mut h);
    h.finish()
}

fn kept_evidence(origin: &Origin<'_>, ts: Option<Timestamp>, weight: u32) -> Evidence {
    let mut e = evidence(origin, ts, weight);
    if e.text.len() > KEPT_TEXT {
        let mut end = KEPT_TEXT;
        while !e.text.is_char_boundary(end) {
            end -= 1;
        }
        e.text.truncate(end);
        e.text.push('…');
    }
    e
}

/// Severity text that ModSecurity / vendors call critical or error (or worse).
fn severity_high(s: &str) -> bool {
    let t = s.trim();
    if let Ok(n) = t.parse::<u8>() {
        return n <= 3;
    }
    matches!(
        t.to_ascii_uppercase().as_str(),
        "EMERGENCY" | "ALERT" | "CRITICAL" | "ERROR" | "HIGH"
    )
}

fn web_class(c: Class) -> Option<WafClass> {
    Some(match c {
        Class::Sqli => WafClass::Sqli,
        Class::Xss => WafClass::Xss,
        Class::Traversal | Class::Sensitive => WafClass::Lfi,
        Class::Cmdi => WafClass::Rce,
        Class::Php => WafClass::Php,
        Class::Jndi => WafClass::Java,
        Class::Installer => return None,
    })
}

/// Classes count as "the same attack" for bypass matching when their families are equal.
fn class_family(c: WafClass) -> WafClass {
    match c {
        WafClass::Rfi => WafClass::Lfi,
        WafClass::Php => WafClass::Rce,
        x => x,
    }
}

/// Generic admin-route heuristic (see the module doc).
pub fn is_admin_path(path: &str) -> bool {
    path.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase();
        matches!(
            s.as_str(),
            "admin" | "wp-admin" | "administrator" | "backend" | "adminhtml" | "admin.php"
        )
    })
}

fn is_upload_script(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    (l.ends_with(".php") || l.contains(".php/") || l.ends_with(".phtml"))
        && [
            "/upload",
            "/uploads/",
            "/images/",
            "/img/",
            "/tmp/",
            "/cache/",
            "/media/",
            "/files/",
            "/user_data/",
        ]
        .iter()
        .any(|d| l.contains(d))
}

/// Customer-input routes where stored XSS would later be shown to an administrator.
pub fn is_customer_input(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    [
        "contact", "inquiry", "order", "checkout", "shopping", "address", "delivery", "shipping",
        "entry", "register", "signup", "mypage", "customer", "account", "review", "comment",
        "note", "cart",
    ]
    .iter()
    .any(|k| l.contains(k))
}

impl DetectorState for Waf {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        if !self.track_web && !matches!(ev.detail, EventDetail::Waf { .. }) {
            return;
        }
        let Some(ts) = ev.ts else { return };
        let hour = ts.secs().div_euclid(3600);
        match &ev.detail {
            EventDetail::Waf {
                rule_ids,
                messages,
                action,
                severity,
                detection_only,
                counted_by,
                policy,
                attack,
                ..
            } => {
                self.hours.entry(hour).or_default().1 += 1;
                self.span.add(Some(ts));
                let s = &mut self.summary;
                s.events += 1;
                let blocked = *action == WafAction::Blocked;
                match action {
                    WafAction::Blocked => s.blocked += 1,
                    WafAction::LoggedOnly => s.logged_only += 1,
                    WafAction::Allowed => s.allowed += 1,
                    WafAction::Unknown => {}
                }
                let counted = !counted_by.is_empty() && !blocked;
                // The summary counts records in detection-only or count mode, engine or rule.
                s.detection_only += u64::from(*detection_only || counted);
                let policy = policy.as_deref().map(|p| self.intern_policy(p));
                let agg = match &policy {
                    Some(p) => self.policies.get_mut(p).expect("interned"),
                    None => &mut self.unnamed_policy,
                };
                agg.blocked += u64::from(blocked);
                agg.counted += u64::from(counted);
                let not_blocked = matches!(action, WafAction::LoggedOnly | WafAction::Allowed)
                    && !rule_ids.is_empty();
                for (i, id) in rule_ids.iter().enumerate() {
                    let r = self.rules.entry(id.to_string()).or_default();
                    r.matches += 1;
                    r.blocked += u64::from(blocked);
                    r.not_blocked += u64::from(!blocked);
                    let msg = messages
                        .get(i)
                        .filter(|m| !m.is_empty())
                        .map(|m| m.to_string());
                    r.message = min_opt(r.message.take(), msg);
                    // One rule: the record's class is that rule's. Several rules in one
                    // transaction: each gets the class of its own CRS range (942xxx SQLi, …), so
                    // a 920 protocol rule does not inherit the transaction's SQLi.
                    let own = if rule_ids.len() == 1 {
                        *attack
                    } else {
                        WafClass::of_crs_id(id)
                    };
                    r.class = min_opt(r.class, own);
                    if let Some(ip) = ev.client_ip {
                        r.ips.insert(ip);
                    }
                }
                if let Some(ip) = ev.client_ip {
                    let a = self.ips.entry(ip).or_default();
                    a.events += 1;
                    a.blocked += u64::from(blocked);
                    a.not_blocked += u64::from(not_blocked);
                    if let Some(c) = attack {
                        a.classes.insert(*c);
                    }
                }
                let high = severity.as_deref().is_some_and(severity_high)
                    || (severity.is_none() && attack.is_some_and(|c| c.is_injection()));
                if rule_ids.is_empty()
                    && messages.is_empty()
                    && !*detection_only
                    && *action != WafAction::Blocked
                {
                    // A plain allowed request (Cloudflare http_requests, concurrent index):
                    // it shows the WAF was watching, nothing more to correlate.
                    return;
                }
                let path = ev.path();
                self.waf.push(WafRec {
                    ts,
                    ip: ev.client_ip,
                    path_hash: path_hash(path),
                    path: crate::web_attack::truncate(path, 200),
                    class: *attack,
                    action: *action,
                    high,
                    detection_only: *detection_only,
                    counted: if counted {
                        counted_by
                            .iter()
                            .take(6)
                            .map(|r| r.as_ref())
                            .collect::<Vec<_>>()
                            .join(",")
                    } else {
                        String::new()
                    },
                    policy,
                    status: ev.status,
                    rules: rule_ids
                        .iter()
                        .take(6)
                        .map(|r| r.as_ref())
                        .collect::<Vec<_>>()
                        .join(","),
                    ev: kept_evidence(origin, Some(ts), 0),
                });
            }
            EventDetail::App {
                channel: Some(ch), ..
            } if ev.source == Some(SourceKind::Waf) && ch == AUDIT_FAILURE_CHANNEL => {
                self.audit_failure_count += 1;
                self.audit_failures.push(kept_evidence(origin, Some(ts), 0));
                if self.audit_failures.len() > MAX_AUDIT_FAILURES * 2 {
                    self.compact();
                }
            }
            EventDetail::Login {
                outcome: LoginOutcome::Success,
                ..
            } => {
                self.web.push(WebHit {
                    ts,
                    ip: ev.client_ip,
                    path_hash: 0,
                    status: 200,
                    class: None,
                    kind: WebKind::Login,
                    ev: kept_evidence(origin, Some(ts), 0),
                });
            }
            EventDetail::Web if ev.source != Some(SourceKind::Waf) => {
                self.hours.entry(hour).or_default().0 += 1;
                let better = self.hour_evidence.get(&hour).is_none_or(|e| {
                    (e.ts, &*e.file, e.line) > (Some(ts), &**origin.file, origin.line)
                });
                if better {
                    self.hour_evidence
                        .insert(hour, kept_evidence(origin, Some(ts), 0));
                }
                let Some(target) = ev.target.as_deref() else {
                    return;
                };
                let path = ev.path();
                let status = ev.status.unwrap_or(0);
                let ok = ev.is_success();
                let kind = if ok && is_admin_path(path) {
                    Some(WebKind::Admin)
                } else if ok && is_upload_script(path) {
                    Some(WebKind::Shell)
                } else {
                    None
                };
                if ok && kind.is_none() && crate::webshell::is_unusual_script(path) {
                    let hits = self
                        .scripts
                        .entry(crate::web_attack::truncate(path, 200))
                        .or_default();
                    add_script_hit(
                        hits,
                        ScriptHit {
                            ts,
                            ip: ev.client_ip,
                            ev: kept_evidence(origin, Some(ts), 0),
                        },
                    );
                }
                let post = ev
                    .method
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
                let interesting =
                    target.contains('?') || post || target.contains('%') || target.contains("..");
                let mut class = None;
                if interesting {
                    for c in classify(
                        target,
                        &[ev.user_agent.as_deref(), ev.referer.as_deref()],
                        &mut self.scratch,
                    ) {
                        class = min_opt(class, web_class(c));
                    }
                }
                if interesting || kind.is_some() {
                    let hit = WebHit {
                        ts,
                        ip: ev.client_ip,
                        path_hash: path_hash(path),
                        status,
                        class,
                        kind: kind.unwrap_or(WebKind::Request),
                        ev: kept_evidence(origin, Some(ts), 0),
                    };
                    if kind.is_some() {
                        self.web.push(hit);
                    } else {
                        if self.requests.len() >= self.request_cap {
                            self.spill_requests();
                        }
                        self.requests.push(hit);
                    }
                }
            }
            _ => return,
        }
        if self.waf.len() > MAX_WAF_RECORDS * 2
            || self.web.len() > self.web_cap * 2
            || self.requests.len() > self.web_cap * 2
            || self.scripts.len() > MAX_SCRIPT_PATHS * 2
        {
            self.compact();
        }
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let o: Waf = downcast(other);
        self.waf.extend(o.waf);
        self.web.extend(o.web);
        self.requests.extend(o.requests);
        if o.request_cap == usize::MAX {
            self.request_cap = usize::MAX;
        }
        self.request_error = self.request_error.take().or(o.request_error);
        if let Err(e) = self.request_runs.append(o.request_runs) {
            self.request_cap = usize::MAX;
            self.request_error.get_or_insert(e.to_string());
        }
        if self.requests.len() > self.request_cap {
            self.spill_requests();
        }
        self.waf_overflow |= o.waf_overflow;
        self.web_overflow |= o.web_overflow;
        self.web_cap = self.web_cap.min(o.web_cap);
        self.scripts_overflow |= o.scripts_overflow;
        for (p, hits) in o.scripts {
            let mine = self.scripts.entry(p).or_default();
            for h in hits {
                add_script_hit(mine, h);
            }
        }
        for (h, (a, b)) in o.hours {
            let e = self.hours.entry(h).or_default();
            e.0 += a;
            e.1 += b;
        }
        for (h, ev) in o.hour_evidence {
            match self.hour_evidence.get(&h) {
                Some(e) if (e.ts, &e.file, e.line) <= (ev.ts, &ev.file, ev.line) => {}
                _ => {
                    self.hour_evidence.insert(h, ev);
                }
            }
        }
        for (k, r) in o.rules {
            let m = self.rules.entry(k).or_default();
            m.matches += r.matches;
            m.blocked += r.blocked;
            m.not_blocked += r.not_blocked;
            m.message = min_opt(m.message.take(), r.message);
            m.class = min_opt(m.class, r.class);
            m.ips.merge(r.ips);
        }
        for (k, a) in o.ips {
            let m = self.ips.entry(k).or_default();
            m.events += a.events;
            m.blocked += a.blocked;
            m.not_blocked += a.not_blocked;
            m.classes.extend(a.classes);
        }
        for (k, a) in o.policies {
            self.policies.entry(k).or_default().add(a);
        }
        self.unnamed_policy.add(o.unnamed_policy);
        let s = &mut self.summary;
        s.events += o.summary.events;
        s.blocked += o.summary.blocked;
        s.logged_only += o.summary.logged_only;
        s.allowed += o.summary.allowed;
        s.detection_only += o.summary.detection_only;
        self.span.merge(o.span);
        self.audit_failures.extend(o.audit_failures);
        self.audit_failure_count += o.audit_failure_count;
        if self.waf.len() > MAX_WAF_RECORDS
            || self.web.len() > self.web_cap
            || self.requests.len() > self.web_cap
            || self.scripts.len() > MAX_SCRIPT_PATHS
        {
            self.compact();
        }
    }

    fn waf_summary(&self) -> Option<WafSummary> {
        if self.summary.events == 0 {
            return None;
        }
        let mut s = self.summary.clone();
        s.first_ts = self.span.first;
        s.last_ts = self.span.last;
        let mut rules: Vec<WafRuleRow> = self
            .rules
            .iter()
            .map(|(id, r)| WafRuleRow {
                rule_id: id.clone(),
                message: r.message.clone(),
                attack: r.class.map(|c| c.as_str().to_string()),
                matches: r.matches,
                blocked: r.blocked,
                not_blocked: r.not_blocked,
                distinct_ips: r.ips.items().len() as u64,
            })
            .collect();
        rules.sort_by(|a, b| b.matches.cmp(&a.matches).then(a.rule_id.cmp(&b.rule_id)));
        rules.truncate(WafSummary::MAX_ROWS);
        let mut ips: Vec<WafIpRow> = self
            .ips
            .iter()
            .map(|(ip, a)| WafIpRow {
                ip: ip.to_string(),
                events: a.events,
                blocked: a.blocked,
                not_blocked: a.not_blocked,
                attacks: a.classes.iter().map(|c| c.as_str().to_string()).collect(),
            })
            .collect();
        ips.sort_by(|a, b| b.events.cmp(&a.events).then(a.ip.cmp(&b.ip)));
        ips.truncate(WafSummary::MAX_ROWS);
        s.rules = rules;
        s.ips = ips;
        Some(s)
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        self.compact();
        let mut waf = std::mem::take(&mut self.waf);
        waf.sort_by_key(|a| key_ts(&a.ts, &a.ev));
        let mut web = std::mem::take(&mut self.web);
        // Of the requests (memory and runs), those on a (client, path) a WAF record names:
        // the only ones matched.
        if let Some(e) = &self.request_error {
            ctx.warn(format!("The WAF detector's candidate web requests could not be written to the temporary directory ({e}); the earliest {} were kept in memory. Set TMPDIR to a writable directory outside the evidence.", self.web_cap));
        }
        let named: BTreeSet<(Option<IpAddr>, u64)> =
            waf.iter().map(|r| (r.ip, r.path_hash)).collect();
        let mut memory: Vec<requests::RequestRecord> = std::mem::take(&mut self.requests)
            .into_iter()
            .map(requests::RequestRecord)
            .collect();
        memory.sort_unstable_by_key(|r| requests::key_of(&r.0));
        let runs = std::mem::replace(
            &mut self.request_runs,
            ecir_spill::Runs::new(std::path::PathBuf::new(), "waf"),
        );
        // At most the earliest [`MAX_WEB_HITS`] of them (a flood from one client on one path
        // the WAF named could hold many), cut as in `compact`.
        let merged = (!named.is_empty()).then(|| runs.merge(memory));
        let mut matched: Vec<WebHit> = Vec::new();
        let web_cap = self.web_cap;
        let cut_matched = |v: &mut Vec<WebHit>, overflow: &mut bool| {
            if v.len() > web_cap {
                v.sort_by_key(|a| key_ts(&a.ts, &a.ev));
                v.truncate(web_cap);
                *overflow = true;
            }
        };
        for r in merged.into_iter().flatten() {
            match r {
                Ok(requests::RequestRecord(w)) => {
                    if named.contains(&(w.ip, w.path_hash)) {
                        matched.push(w);
                        if matched.len() > 2 * web_cap {
                            cut_matched(&mut matched, &mut self.web_overflow);
                        }
                    }
                }
                Err(e) => ctx.warn(format!("The WAF detector's candidate web requests written to the temporary directory could not be read back ({e}): some WAF records may lack their access-log line. Keep TMPDIR out of reach of temporary-file cleaners during a scan, and rerun.")),
            }
        }
        drop(runs);
        cut_matched(&mut matched, &mut self.web_overflow);
        web.extend(matched);
        web.sort_by_key(|a| (key_ts(&a.ts, &a.ev), a.kind));
        let mut out = Vec::new();
        if waf.is_empty() && self.summary.events == 0 {
            return out;
        }
        // Said in the report too, not only in findings that may not exist: a bypass after
        // the cut would go unseen.
        let mut cut = Vec::new();
        if self.waf_overflow {
            cut.push(format!("the earliest {MAX_WAF_RECORDS} WAF records"));
        }
        if self.web_overflow {
            cut.push(format!("the earliest {web_cap} candidate web requests"));
        }
        if !cut.is_empty() {
            ctx.warn(format!(
                "WAF correlation kept only {}: later ones were not matched, so a WAF record after the cut may lack its access-log line and a WAF bypass after it may be missed. Scan a shorter period at a time.",
                cut.join(" and ")
            ));
        }
        if self.scripts_overflow {
            ctx.warn(format!(
                "WAF escalation by first-seen script judged only the {MAX_SCRIPT_PATHS} script paths reached first."
            ));
        }
        // (ip, path) → web request indices, in time order.
        let mut by_key: BTreeMap<(Option<IpAddr>, u64), Vec<usize>> = BTreeMap::new();
        let mut follow: BTreeMap<Option<IpAddr>, Vec<usize>> = BTreeMap::new();
        let mut admin_any: Vec<usize> = Vec::new();
        for (i, w) in web.iter().enumerate() {
            match w.kind {
                WebKind::Request => by_key.entry((w.ip, w.path_hash)).or_default().push(i),
                WebKind::Admin | WebKind::Shell | WebKind::Login => {
                    follow.entry(w.ip).or_default().push(i);
                    if w.kind != WebKind::Shell {
                        admin_any.push(i);
                    }
                    if w.kind != WebKind::Login {
                        by_key.entry((w.ip, w.path_hash)).or_default().push(i);
                    }
                }
            }
        }
        let note = self.overflow_note();
        out.extend(unblocked(
            &waf,
            &Scopes::new(&self.policies, self.unnamed_policy),
            &web,
            &by_key,
            &follow,
            &self.scripts,
            &note,
        ));
        out.extend(bypass(&waf, &web, &by_key, &note));
        let scopes = Scopes::new(&self.policies, self.unnamed_policy);
        out.extend(detection_only(&waf, &scopes));
        out.extend(counted_not_blocked(&waf, &scopes));
        out.extend(lapse(
            &self.hours,
            &self.hour_evidence,
            &waf,
            &self.audit_failures,
        ));
        out.extend(bait(&waf, &web, &admin_any));
        out
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl Waf {
    fn overflow_note(&self) -> String {
        let scripts = if self.scripts_overflow {
            format!(
                " (First-seen scripts were judged on the {MAX_SCRIPT_PATHS} script paths first reached.)"
            )
        } else {
            String::new()
        };
        let main = match (self.waf_overflow, self.web_overflow) {
            (false, false) => String::new(),
            (w, r) => format!(
                " (Correlation kept only the earliest {}{}{}; later ones were not matched.)",
                if w {
                    format!("{MAX_WAF_RECORDS} WAF records")
                } else {
                    String::new()
                },
                if w && r { " and " } else { "" },
                if r {
                    format!("{} candidate web requests", self.web_cap)
                } else {
                    String::new()
                },
            ),
        };
        main + &scripts
    }
}

/// The web request nearest in time to `rec` on the same (ip, path) within the match window
/// (both ends included); ties go to the first by (file, line).
fn nearest<'w>(
    rec: &WafRec,
    web: &'w [WebHit],
    by_key: &BTreeMap<(Option<IpAddr>, u64), Vec<usize>>,
) -> Option<&'w WebHit> {
    let idx = by_key.get(&(rec.ip, rec.path_hash))?;
    // `idx` is ordered by (time, file, line): the nearest is the first line of the last
    // millisecond before the record or the first line at or after it (on equal distance the
    // smaller (file, line), then the one before).
    let t = rec.ts.utc_ms;
    let p = idx.partition_point(|&i| web[i].ts.utc_ms < t);
    let after = idx.get(p).map(|&i| &web[i]);
    let before = p.checked_sub(1).map(|q| {
        let ms = web[idx[q]].ts.utc_ms;
        &web[idx[idx[..q].partition_point(|&i| web[i].ts.utc_ms < ms)]]
    });
    [before, after]
        .into_iter()
        .flatten()
        .filter(|w| w.ts.utc_ms.abs_diff(t) <= MATCH_WINDOW_SECS as u64 * 1000)
        .min_by_key(|w| (w.ts.utc_ms.abs_diff(t), Arc::clone(&w.ev.file), w.ev.line))
}

fn weighted(e: &Evidence, w: u32) -> Evidence {
    let mut e = e.clone();
    e.weight = w;
    e
}

#[derive(Default)]
struct Group {
    count: u64,
    span: Span,
    classes: BTreeSet<WafClass>,
    paths: SmallestSet<String>,
    evidence: Vec<Evidence>,
    web_confirmed: u64,
    rules: BTreeSet<String>,
    /// How the WAF let the matches through (see [`Scopes::how`]).
    how: BTreeSet<String>,
}

impl Group {
    fn add_ev(&mut self, e: Evidence) {
        if self.evidence.len() < ecir_model::finding::MAX_EVIDENCE * 4 {
            self.evidence.push(e);
        }
    }
}

fn class_list(c: &BTreeSet<WafClass>) -> String {
    if c.is_empty() {
        "unclassified".into()
    } else {
        c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn ip_str(ip: Option<IpAddr>) -> Vec<String> {
    ip.map(|i| vec![i.to_string()]).unwrap_or_default()
}

fn unblocked(
    waf: &[WafRec],
    scopes: &Scopes,
    web: &[WebHit],
    by_key: &BTreeMap<(Option<IpAddr>, u64), Vec<usize>>,
    follow: &BTreeMap<Option<IpAddr>, Vec<usize>>,
    scripts: &Scripts,
    note: &str,
) -> Vec<Finding> {
    let mut groups: BTreeMap<Option<IpAddr>, Group> = BTreeMap::new();
    for r in waf {
        if !r.high || !matches!(r.action, WafAction::LoggedOnly | WafAction::Allowed) {
            continue;
        }
        let hit = nearest(r, web, by_key);
        let ok = match hit {
            Some(w) => (200..300).contains(&w.status),
            None => r.status.is_some_and(|s| (200..300).contains(&s)),
        };
        if !ok {
            continue;
        }
        let g = groups.entry(r.ip).or_default();
        g.count += 1;
        g.span.add(Some(r.ts));
        if let Some(c) = r.class {
            g.classes.insert(c);
        }
        g.paths.insert(r.path.clone());
        g.rules.insert(r.rules.clone());
        g.how.insert(scopes.how(r));
        g.add_ev(weighted(&r.ev, 100));
        if let Some(w) = hit {
            g.web_confirmed += 1;
            g.add_ev(weighted(&w.ev, 100));
        }
    }
    // Each client's first-reached scripts (the first hit of a script path that went to it),
    // by (time, file, line); equal keys keep the path order.
    let mut firsts: BTreeMap<IpAddr, Vec<&ScriptHit>> = BTreeMap::new();
    if groups.keys().any(Option::is_some) {
        for h in scripts.values().filter_map(|h| h.first()) {
            if let Some(ip) = h.ip.filter(|ip| groups.contains_key(&Some(*ip))) {
                firsts.entry(ip).or_default().push(h);
            }
        }
        for v in firsts.values_mut() {
            v.sort_by_key(|h| key_ts(&h.ts, &h.ev));
        }
    }
    let mut out = Vec::new();
    for (ip, g) in groups {
        let first = g.span.first.expect("group has a time");
        let mut f = Finding::new("waf.unblocked_attack", Category::Waf, Severity::High);
        let mut chain = Vec::new();
        let mut playbook = None;
        if ip.is_some() {
            for &i in follow.get(&ip).map(Vec::as_slice).unwrap_or(&[]) {
                let w = &web[i];
                if w.ts < first {
                    continue;
                }
                match w.kind {
                    WebKind::Admin | WebKind::Login
                        if !chain.iter().any(|(k, _)| *k == "an admin route") =>
                    {
                        chain.push(("an admin route", w.ev.clone()));
                        playbook.get_or_insert("card-skimming");
                    }
                    WebKind::Shell
                        if !chain
                            .iter()
                            .any(|(k, _)| *k == "a script in an upload folder") =>
                    {
                        chain.push(("a script in an upload folder", w.ev.clone()));
                        playbook = Some("web-shell");
                    }
                    _ => {}
                }
            }
            // A script whose earliest 2xx in the logs went to this client, after its attack.
            let first_seen = ip.and_then(|ip| {
                let v = firsts.get(&ip)?;
                let from = v.partition_point(|h| h.ts.utc_ms < first.utc_ms);
                v[from..].iter().copied().find(|h| h.ts >= first)
            });
            if let Some(h) = first_seen {
                chain.push((
                    "a first-seen script (no other client had reached it earlier in these logs)",
                    h.ev.clone(),
                ));
                playbook = Some("web-shell");
            }
        }
        if g.classes.contains(&WafClass::Rce) || g.classes.contains(&WafClass::Php) {
            playbook.get_or_insert("web-shell");
        }
        let mut ev = g.evidence;
        if !chain.is_empty() {
            f.severity = Severity::Critical;
        }
        for (_, e) in &chain {
            ev.push(weighted(e, 200));
        }
        f.title = format!(
            "WAF saw {} attack{} ({}) and did not block; the application answered 2xx",
            g.count,
            if g.count == 1 { "" } else { "s" },
            class_list(&g.classes)
        );
        f.summary = format!(
            "{} high-severity WAF match{} from {} {} not blocked ({}) \
             while the application answered 2xx ({} confirmed by an access-log line within {} s on the same path; \
             the rest by the status the WAF record itself logged). Rules: {}.{}{}",
            g.count,
            if g.count == 1 { " was" } else { "es were" },
            ip.map_or("an unknown client".to_string(), |i| i.to_string()),
            if g.count == 1 { "and" } else { "and all" },
            g.how.iter().take(8).cloned().collect::<Vec<_>>().join("; "),
            g.web_confirmed,
            MATCH_WINDOW_SECS,
            g.rules.iter().take(8).cloned().collect::<Vec<_>>().join("; "),
            if chain.is_empty() {
                String::new()
            } else {
                format!(
                    " The same client afterwards got 2xx on {}: the attack may have succeeded.",
                    chain.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" and ")
                )
            },
            note
        );
        f.first_seen = g.span.first;
        f.last_seen = g.span.last;
        f.ips = ip_str(ip);
        f.paths = g.paths.items().to_vec();
        f.count = g.count;
        f.evidence = ev;
        f.playbook = playbook.map(str::to_string);
        f.normalize_evidence();
        out.push(f);
    }
    out
}

fn bypass(
    waf: &[WafRec],
    web: &[WebHit],
    by_key: &BTreeMap<(Option<IpAddr>, u64), Vec<usize>>,
    note: &str,
) -> Vec<Finding> {
    type Seen = BTreeSet<(Arc<str>, u64)>;
    let mut groups: BTreeMap<Option<IpAddr>, (Group, Seen)> = BTreeMap::new();
    let mut successes = None;
    for r in waf {
        let Some(class) = r.class.filter(|c| c.is_injection()) else {
            continue;
        };
        if r.action != WafAction::Blocked || r.ip.is_none() {
            continue;
        }
        let successes = successes.get_or_insert_with(|| {
            // (ip, path, attack family) → 2xx requests with such a payload, in time order.
            let mut m: BTreeMap<(Option<IpAddr>, u64, WafClass), Vec<usize>> = BTreeMap::new();
            for (&(ip, path), idx) in by_key {
                for &i in idx {
                    let w = &web[i];
                    if let Some(c) = w.class.filter(|_| (200..300).contains(&w.status)) {
                        m.entry((ip, path, class_family(c))).or_default().push(i);
                    }
                }
            }
            m
        });
        let Some(idx) = successes.get(&(r.ip, r.path_hash, class_family(class))) else {
            continue;
        };
        // The first one after the block, if within the window.
        let start = idx.partition_point(|&i| web[i].ts.utc_ms <= r.ts.utc_ms);
        if let Some(&i) = idx.get(start) {
            let w = &web[i];
            if w.ts.utc_ms.saturating_sub(r.ts.utc_ms) > BYPASS_WINDOW_SECS * 1000 {
                continue;
            }
            // The blocked request itself may be logged by the web server too (403): only a
            // later 2xx counts, and each success once.
            let (g, seen) = groups.entry(r.ip).or_default();
            if seen.insert((Arc::clone(&w.ev.file), w.ev.line)) {
                g.count += 1;
                g.span.add(Some(w.ts));
                g.add_ev(weighted(&w.ev, 100));
            }
            g.span.add(Some(r.ts));
            g.classes.insert(class);
            g.paths.insert(r.path.clone());
            g.add_ev(weighted(&r.ev, 90));
        }
    }
    groups
        .into_iter()
        .map(|(ip, (g, _))| {
            let mut f = Finding::new("waf.blocked_then_through", Category::Waf, Severity::High);
            f.title = format!("WAF bypass: blocked {} attack later answered 2xx", class_list(&g.classes));
            f.summary = format!(
                "{} was blocked by the WAF on {} and within 24 h got {} 2xx answer{} on the same path with a payload \
                 of the same attack class ({}): a likely WAF bypass (encoding, parameter or method change).{}",
                ip.map_or("A client".to_string(), |i| i.to_string()),
                g.paths.items().join(", "),
                g.count,
                if g.count == 1 { "" } else { "s" },
                class_list(&g.classes),
                note
            );
            f.first_seen = g.span.first;
            f.last_seen = g.span.last;
            f.ips = ip_str(ip);
            f.paths = g.paths.items().to_vec();
            f.count = g.count;
            f.evidence = g.evidence;
            if g.classes.contains(&WafClass::Rce) || g.classes.contains(&WafClass::Php) {
                f.playbook = Some("web-shell".into());
            }
            f.normalize_evidence();
            f
        })
        .collect()
}

/// A detection-only period while it is read.
#[derive(Default)]
struct Period {
    span: Span,
    records: u64,
    high: u64,
    /// The period's first record, then its earliest high-severity and earliest other
    /// records, at most `MAX_EVIDENCE` each (the records come in time order): all the
    /// evidence the finding can cite, however long the period.
    first: Option<Evidence>,
    highs: Vec<Evidence>,
    others: Vec<Evidence>,
    ips: BTreeSet<Option<IpAddr>>,
}

impl Period {
    /// The finding's span, count, clients (the first `MAX_IPS` by address) and evidence.
    fn fill(self, f: &mut Finding) {
        f.first_seen = self.span.first;
        f.last_seen = self.span.last;
        f.count = self.records;
        f.ips = self
            .ips
            .into_iter()
            .flatten()
            .take(ecir_model::finding::MAX_IPS)
            .map(|i| i.to_string())
            .collect();
        f.evidence = self
            .first
            .into_iter()
            .chain(self.highs)
            .chain(self.others)
            .collect();
        f.normalize_evidence();
    }
}

fn detection_only(waf: &[WafRec], scopes: &Scopes) -> Vec<Finding> {
    use ecir_model::finding::MAX_IPS;
    let mut out = Vec::new();
    // Judged per policy: a web ACL's blocks end only its own periods, and its counted
    // records make a period only when it blocked nothing in the logs. Records that name no
    // policy (every engine but AWS) are judged together, as one engine.
    let mut by_policy: BTreeMap<Option<&Arc<str>>, Vec<&WafRec>> = BTreeMap::new();
    for r in waf {
        by_policy.entry(r.policy.as_ref()).or_default().push(r);
    }
    for (policy, recs) in by_policy {
        let flush = |cur: &mut Option<Period>, out: &mut Vec<Finding>| {
            if let Some(p) = cur.take() {
                let (n, high) = (p.records, p.high);
                let sev = if high > 0 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let mut f = Finding::new("waf.detection_only", Category::Waf, sev);
                let (a, b) = (p.span.first.expect("span"), p.span.last.expect("span"));
                let hours = (b.utc_ms - a.utc_ms) as f64 / 3_600_000.0;
                let clients = p.ips.iter().flatten().count();
                let more = if clients > MAX_IPS {
                    format!(" The records came from {clients} client IPs; the first {MAX_IPS} by address are listed.")
                } else {
                    String::new()
                };
                if let Some(acl) = policy {
                    f.title = format!(
                        "Web ACL {} blocked nothing: its rules only counted ({hours:.1} h, {high} high-severity matches let through)",
                        acl_name(acl)
                    );
                    f.summary = format!(
                        "From {} to {} web ACL {} logged {n} request{} that its rules matched with action COUNT, and none \
                         of its records in these logs was blocked: it ran in count-only (monitoring) mode over that time. \
                         {high} of them were high-severity matches that reached the application. Check whether the web \
                         ACL's rules and rule groups were set to Count.{more}",
                        a.to_rfc3339(),
                        b.to_rfc3339(),
                        acl,
                        if n == 1 { "" } else { "s" },
                    );
                } else {
                    f.title = format!("WAF ran in detection-only mode ({hours:.1} h, {high} high-severity matches let through)");
                    f.summary = format!(
                        "From {} to {} the WAF logged {n} record{} in detection-only / count / monitor mode and blocked nothing; \
                         {high} of them were high-severity matches that reached the application. Check when and why blocking \
                         was switched off.{more}",
                        a.to_rfc3339(),
                        b.to_rfc3339(),
                        if n == 1 { "" } else { "s" },
                    );
                }
                p.fill(&mut f);
                out.push(f);
            }
        };
        let mut cur: Option<Period> = None;
        for r in recs {
            if r.detection_only || scopes.of(r) == Some(CountScope::PolicyCountsOnly) {
                cur.get_or_insert_with(Default::default).add(r);
            } else if r.action == WafAction::Blocked {
                flush(&mut cur, &mut out);
            }
        }
        flush(&mut cur, &mut out);
    }
    out
}

impl Period {
    fn add(&mut self, r: &WafRec) {
        use ecir_model::finding::MAX_EVIDENCE;
        self.span.add(Some(r.ts));
        self.records += 1;
        self.high += u64::from(r.high);
        // The first record, then high-severity ones: weights keep the telling ones.
        if self.records == 1 {
            self.first = Some(weighted(&r.ev, 300));
        } else if r.high {
            if self.highs.len() < MAX_EVIDENCE {
                self.highs.push(weighted(&r.ev, 100));
            }
        } else if self.others.len() < MAX_EVIDENCE {
            self.others.push(weighted(&r.ev, 10));
        }
        self.ips.insert(r.ip);
    }
}

/// The web ACLs (AWS `webaclId`) that blocked nothing in the logs while their rules counted,
/// and those that blocked: how a counted record stands.
struct Scopes {
    count_only: BTreeSet<Arc<str>>,
    unnamed_count_only: bool,
    blocked: BTreeMap<Arc<str>, u64>,
    unnamed_blocked: u64,
}

impl Scopes {
    fn new(policies: &BTreeMap<Arc<str>, PolicyAgg>, unnamed: PolicyAgg) -> Self {
        let only = |a: &PolicyAgg| a.blocked == 0 && a.counted > 0;
        Scopes {
            count_only: policies
                .iter()
                .filter(|(_, a)| only(a))
                .map(|(k, _)| Arc::clone(k))
                .collect(),
            unnamed_count_only: only(&unnamed),
            blocked: policies
                .iter()
                .map(|(k, a)| (Arc::clone(k), a.blocked))
                .collect(),
            unnamed_blocked: unnamed.blocked,
        }
    }

    /// `None` when no rule only counted the record (or it was blocked).
    fn of(&self, r: &WafRec) -> Option<CountScope> {
        if r.counted.is_empty() {
            return None;
        }
        let only = match &r.policy {
            Some(p) => self.count_only.contains(p),
            None => self.unnamed_count_only,
        };
        Some(if only {
            CountScope::PolicyCountsOnly
        } else {
            CountScope::RuleCounts
        })
    }

    /// Requests the record's web ACL blocked in the logs.
    fn blocked(&self, policy: Option<&Arc<str>>) -> u64 {
        match policy {
            Some(p) => self.blocked.get(p).copied().unwrap_or(0),
            None => self.unnamed_blocked,
        }
    }

    /// How a not-blocked record got through, in words.
    fn how(&self, r: &WafRec) -> String {
        let acl = acl_label(r.policy.as_deref());
        let rules = if r.counted.contains(',') {
            "rules"
        } else {
            "rule"
        };
        match self.of(r) {
            Some(CountScope::RuleCounts) => {
                format!("counted, not blocked, by {rules} {} in {acl}", r.counted)
            }
            Some(CountScope::PolicyCountsOnly) => format!(
                "counted by {rules} {} in {acl}, which blocked nothing in these logs",
                r.counted
            ),
            None => "only logged: detection-only, Warning, log or MONITOR".to_string(),
        }
    }
}

/// A web ACL's name: the segment after `webacl/` of its ARN, or the id as written.
fn acl_name(id: &str) -> &str {
    id.split_once("/webacl/")
        .and_then(|(_, rest)| rest.split('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or(id)
}

fn acl_label(policy: Option<&str>) -> String {
    match policy {
        Some(p) => format!("web ACL {}", acl_name(p)),
        None => "a web ACL the log does not name".to_string(),
    }
}

/// Attack matches that only `COUNT` rules of a web ACL that blocks other requests matched:
/// one finding per (web ACL, rule).
fn counted_not_blocked(waf: &[WafRec], scopes: &Scopes) -> Vec<Finding> {
    use ecir_model::finding::MAX_IPS;
    #[derive(Default)]
    struct Counted {
        period: Period,
        classes: BTreeSet<WafClass>,
        paths: SmallestSet<String>,
    }
    let mut groups: BTreeMap<(Option<&Arc<str>>, &str), Counted> = BTreeMap::new();
    for r in waf {
        let Some(class) = r.class else { continue };
        if scopes.of(r) != Some(CountScope::RuleCounts) {
            continue;
        }
        for rule in r.counted.split(',') {
            let g = groups.entry((r.policy.as_ref(), rule)).or_default();
            g.period.add(r);
            g.classes.insert(class);
            g.paths.insert(r.path.clone());
        }
    }
    groups
        .into_iter()
        .map(|((policy, rule), g)| {
            let p = g.period;
            let (n, high) = (p.records, p.high);
            let sev = if high > 0 {
                Severity::Medium
            } else {
                Severity::Low
            };
            let mut f = Finding::new("waf.counted_not_blocked", Category::Waf, sev);
            let acl = acl_label(policy.map(|p| &**p));
            let blocked = scopes.blocked(policy);
            f.title = format!(
                "Rule {rule} in {acl} counted {n} {} request{} and did not block {}",
                class_list(&g.classes),
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" },
            );
            let clients = p.ips.iter().flatten().count();
            f.summary = format!(
                "From {} to {} rule {rule} in {acl}{} counted {n} request{} it matched as {} attack{} and did not \
                 block {}: the rule's action is COUNT (a count-only rule, or a rule group overridden to count while \
                 tuning). The web ACL blocked {blocked} other request{} in these logs, so the web ACL as a whole is \
                 not in detection-only mode. {high} of the {n} counted request{} {} high-severity match{}. The WAF \
                 passed the counted requests on to the application: check their answers in the access log and \
                 whether the rule should block.{}",
                p.span.first.expect("span").to_rfc3339(),
                p.span.last.expect("span").to_rfc3339(),
                policy.map(|p| format!(" ({p})")).unwrap_or_default(),
                if n == 1 { "" } else { "s" },
                class_list(&g.classes),
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" },
                if blocked == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" },
                if high == 1 { "was a" } else { "were" },
                if high == 1 { "" } else { "es" },
                if clients > MAX_IPS {
                    format!(" The requests came from {clients} client IPs; the first {MAX_IPS} by address are listed.")
                } else {
                    String::new()
                }
            );
            f.paths = g.paths.items().to_vec();
            p.fill(&mut f);
            f
        })
        .collect()
}

fn lapse(
    hours: &BTreeMap<i64, (u64, u64)>,
    hour_ev: &BTreeMap<i64, Evidence>,
    waf: &[WafRec],
    audit_failures: &[Evidence],
) -> Vec<Finding> {
    let (web_total, waf_total): (u64, u64) =
        hours.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    if web_total == 0 || waf_total == 0 {
        return Vec::new();
    }
    let web_hours: Vec<i64> = hours
        .iter()
        .filter(|(_, v)| v.0 > 0)
        .map(|(h, _)| *h)
        .collect();
    let (Some(&first), Some(&last)) = (web_hours.first(), web_hours.last()) else {
        return Vec::new();
    };
    // The WAF's rate: records per web request over hours where it logged anything at all.
    let rate = waf_total as f64 / web_total as f64;
    // The silences: maximal runs of hours in [first, last] without a WAF record, with the
    // web requests in them, found from the map's entries rather than hour by hour (one line
    // dated decades away must not cost a lookup for every hour in between).
    let mut silences: Vec<(i64, i64, u64)> = Vec::new();
    let mut cursor = first;
    let mut in_run = 0u64;
    for (&k, v) in hours.range(first..=last) {
        if v.1 > 0 {
            if k > cursor {
                silences.push((cursor, k, in_run));
            }
            cursor = k + 1;
            in_run = 0;
        } else {
            in_run += v.0;
        }
    }
    if cursor <= last {
        silences.push((cursor, last + 1, in_run));
    }
    let mut out = Vec::new();
    for (start, h, traffic) in silences {
        let len = h - start;
        let expected = rate * traffic as f64;
        if len < LAPSE_MIN_HOURS || expected < LAPSE_MIN_EXPECTED {
            continue;
        }
        let (from, to) = (start * 3600, h * 3600);
        // `waf` is in time order: the last record before the silence, the first after it.
        let before = waf
            .partition_point(|r| r.ts.secs() < from)
            .checked_sub(1)
            .map(|i| &waf[i]);
        let after = waf.get(waf.partition_point(|r| r.ts.secs() < to));
        let sev = if len >= 24 {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut f = Finding::new("waf.monitoring_lapse", Category::LogIntegrity, sev);
        let how = if after.is_none() && hours.range(h..).all(|(_, v)| v.1 == 0) {
            "the WAF log ends early"
        } else if before.is_none() {
            "the WAF log starts late"
        } else {
            "the WAF log is silent"
        };
        f.title =
            format!("WAF monitoring lapse: {len} h with web traffic but no WAF record ({how})");
        f.summary = format!(
            "From {} to {} ({len} h) the web logs show {traffic} requests but {how}: no WAF record at all. At the \
             WAF's rate elsewhere ({:.4} records per request) about {expected:.0} were expected. The WAF may have \
             been off, bypassed (origin reached directly), or its log rotated away or not collected.",
            Timestamp::from_secs(from, 0).to_rfc3339(),
            Timestamp::from_secs(to, 0).to_rfc3339(),
            rate
        );
        // ModSecurity's own complaint that it could not write its audit log, in the hour
        // before the silence or during it, explains the lapse.
        let failures: Vec<&Evidence> = audit_failures
            .iter()
            .filter(|e| {
                e.ts.is_some_and(|t| t.secs() >= from - 3600 && t.secs() < to)
            })
            .collect();
        if !failures.is_empty() {
            f.summary.push_str(&format!(
                " ModSecurity itself reported {} audit-log failure{} (`Audit log: …`, e.g. a full disk) just before or \
                 during the silence: it may have kept filtering but could not record what it saw.",
                failures.len(),
                if failures.len() == 1 { "" } else { "s" }
            ));
        }
        f.first_seen = Some(Timestamp::from_secs(from, 0));
        f.last_seen = Some(Timestamp::from_secs(to, 0));
        f.count = traffic;
        let mut ev = Vec::new();
        for e in failures.iter().take(5) {
            ev.push(weighted(e, 150));
        }
        if let Some(b) = before {
            ev.push(weighted(&b.ev, 100));
        }
        if let Some(a) = after {
            ev.push(weighted(&a.ev, 100));
        }
        for (_, e) in hour_ev.range(start..h).take(5) {
            ev.push(weighted(e, 50));
        }
        f.evidence = ev;
        f.normalize_evidence();
        out.push(f);
    }
    out
}

fn bait(waf: &[WafRec], web: &[WebHit], admin_any: &[usize]) -> Vec<Finding> {
    let mut groups: BTreeMap<Option<IpAddr>, (Group, Vec<Evidence>, bool, u64)> = BTreeMap::new();
    // Baits with no admin-route activity after them: candidates for [`correlate_stored_xss`].
    let mut candidates: BTreeMap<Option<IpAddr>, Group> = BTreeMap::new();
    let is_bait = |r: &WafRec| {
        r.class == Some(WafClass::Xss)
            && r.action != WafAction::Blocked
            && is_customer_input(&r.path)
    };
    if !waf.iter().any(is_bait) {
        return Vec::new();
    }
    // `admin_any` is in time order (milliseconds; equal ones by file and line): a bait's
    // window (after it, up to BAIT_WINDOW_SECS) is a slice of it, but for the hits of the
    // bait's own millisecond, which follow it only when their offset is larger.
    let hit = |j: usize| &web[admin_any[j]];
    let times: Vec<i64> = admin_any.iter().map(|&i| web[i].ts.utc_ms).collect();
    // The latest time (offset included) of the hits sharing each hit's millisecond.
    let mut ms_last: Vec<Timestamp> = Vec::with_capacity(times.len());
    while ms_last.len() < times.len() {
        let j = ms_last.len();
        let end = j + times[j..].partition_point(|&t| t == times[j]);
        let last = (j..end).map(|k| hit(k).ts).max().expect("a hit");
        ms_last.resize(end, last);
    }
    // Each client's positions in `admin_any`.
    let mut by_ip: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for j in 0..admin_any.len() {
        if let Some(ip) = hit(j).ip {
            by_ip.entry(ip).or_default().push(j);
        }
    }
    for r in waf {
        if !is_bait(r) {
            continue;
        }
        let t = r.ts.utc_ms;
        let lo = times.partition_point(|&x| x < t);
        let mid = lo + times[lo..].partition_point(|&x| x <= t);
        let hi = mid + times[mid..].partition_point(|&x| x - t <= BAIT_WINDOW_SECS * 1000);
        let same_ms: Vec<usize> = (lo..mid).filter(|&j| hit(j).ts > r.ts).collect();
        let n_hits = same_ms.len() + (hi - mid);
        if n_hits == 0 {
            let g = candidates.entry(r.ip).or_default();
            g.count += 1;
            g.span.add(Some(r.ts));
            g.paths.insert(r.path.clone());
            g.add_ev(weighted(&r.ev, 100));
            continue;
        }
        let (g, admin_ev, same_ip, n_admin) = groups.entry(r.ip).or_default();
        g.count += 1;
        g.span.add(Some(r.ts));
        g.paths.insert(r.path.clone());
        g.add_ev(weighted(&r.ev, 100));
        *n_admin = (*n_admin).max(n_hits as u64);
        if let Some(ip) = r.ip.filter(|_| !*same_ip) {
            *same_ip = same_ms.iter().any(|&j| hit(j).ip == Some(ip))
                || by_ip.get(&ip).is_some_and(|v| {
                    let k = v.partition_point(|&j| j < mid);
                    v.get(k).is_some_and(|&j| j < hi)
                });
        }
        let room = 40usize.saturating_sub(admin_ev.len());
        for j in same_ms.iter().copied().chain(mid..hi).take(room) {
            let w = hit(j);
            admin_ev.push(weighted(&w.ev, if w.ip == r.ip { 150 } else { 80 }));
        }
        // The hits all follow the bait (already in the span): only the latest can widen it.
        g.span.add(Some(ms_last[hi - 1]));
    }
    let candidates: Vec<Finding> = candidates
        .into_iter()
        .filter(|(ip, _)| !groups.contains_key(ip))
        .map(|(ip, g)| {
            let mut f = Finding::new(BAIT_CANDIDATE, Category::Waf, Severity::Info);
            f.title = "Unblocked XSS on a customer-input route (bait candidate)".into();
            f.first_seen = g.span.first;
            f.last_seen = g.span.last;
            f.ips = ip_str(ip);
            f.paths = g.paths.items().to_vec();
            f.count = g.count;
            f.evidence = g.evidence;
            f.normalize_evidence();
            f
        })
        .collect();
    groups
        .into_iter()
        .map(|(ip, (g, admin_ev, same_ip, n_admin))| {
            let sev = if same_ip { Severity::Critical } else { Severity::High };
            let mut f = Finding::new("waf.stored_xss_bait", Category::Waf, sev);
            f.title = "Stored-XSS bait on a customer-input route, then admin activity".into();
            f.summary = format!(
                "{} sent {} XSS payload{} the WAF did not block to customer-input route{} ({}); within 48 h the admin \
                 area was used ({} admin-route 2xx hit{} or admin login{}){}. If the payload was stored (order note, \
                 address, inquiry), it ran in the administrator's browser: check for new admin users, changed \
                 templates or injected scripts.",
                ip.map_or("A client".to_string(), |i| i.to_string()),
                g.count,
                if g.count == 1 { "" } else { "s" },
                if g.paths.items().len() == 1 { "" } else { "s" },
                g.paths.items().join(", "),
                n_admin,
                if n_admin == 1 { "" } else { "s" },
                if n_admin == 1 { "" } else { "s" },
                if same_ip { ", including from the attacking IP itself" } else { "" }
            );
            f.first_seen = g.span.first;
            f.last_seen = g.span.last;
            f.ips = ip_str(ip);
            f.paths = g.paths.items().to_vec();
            f.count = g.count;
            f.evidence = g.evidence;
            f.evidence.extend(admin_ev);
            f.playbook = Some("card-skimming".into());
            f.normalize_evidence();
            f
        })
        .chain(candidates)
        .collect()
}

/// Rule id of the internal bait candidates [`correlate_stored_xss`] consumes (never reported).
pub const BAIT_CANDIDATE: &str = "waf.stored_xss_bait.candidate";

/// Admin-detector rules that count as "the admin area was misused" after a stored-XSS bait.
pub const ADMIN_ANOMALY_RULES: &[&str] = &[
    "admin.session_without_login",
    "admin.outside_allowlist",
    "admin.first_seen_ip",
    "admin.code_planting",
    "admin.success_after_failures",
    "admin.account_change",
    "admin.security_change",
    "admin.payment_change",
    "admin.script_agent",
];

/// Admin findings linked to one bait, at most (its `related` list).
const MAX_LINKED: usize = ecir_model::finding::MAX_RELATED;

/// Post-detection correlation, run on all findings once every detector has finished and
/// before [`ecir_model::Report::sort_and_number_findings`]: an unblocked XSS on a
/// customer-input route (a `waf.stored_xss_bait` finding, or a bait candidate the WAF
/// detector left because no generic admin route followed) is linked to the admin anomaly
/// findings ([`ADMIN_ANOMALY_RULES`]) whose `first_seen` falls from the bait's first XSS to
/// [`BAIT_WINDOW_SECS`] after the bait finding's last time. The admin detector knows the
/// shop's real (possibly renamed) admin paths, so this works where the generic route
/// heuristic does not. A linked bait lists the admin findings in `related` (temporary ids
/// `C<n>` are given to findings without one; numbering remaps them) and cites their
/// evidence; it is critical when an admin finding is high or worse or shares the XSS
/// sender's IP, high otherwise. Candidates that link nothing are removed.
pub fn correlate_stored_xss(findings: &mut Vec<Finding>) {
    let baits: Vec<usize> = (0..findings.len())
        .filter(|&i| {
            matches!(
                findings[i].rule.as_str(),
                "waf.stored_xss_bait" | BAIT_CANDIDATE
            )
        })
        .collect();
    if baits.is_empty() {
        findings.retain(|f| f.rule != BAIT_CANDIDATE);
        return;
    }
    let mut admin: Vec<usize> = (0..findings.len())
        .filter(|&i| ADMIN_ANOMALY_RULES.contains(&findings[i].rule.as_str()))
        .filter(|&i| findings[i].first_seen.is_some())
        .collect();
    admin.sort_by(|&a, &b| {
        let (x, y) = (&findings[a], &findings[b]);
        (x.first_seen, &x.rule, &x.ips, &x.users, &x.paths, &x.title).cmp(&(
            y.first_seen,
            &y.rule,
            &y.ips,
            &y.users,
            &y.paths,
            &y.title,
        ))
    });
    // Their `first_seen` (milliseconds), in that order.
    let times: Vec<i64> = admin
        .iter()
        .filter_map(|&a| findings[a].first_seen.map(|t| t.utc_ms))
        .collect();
    let mut next = 0usize;
    for b in baits {
        let (Some(start), Some(end)) = (findings[b].first_seen, findings[b].last_seen) else {
            continue;
        };
        let limit = end.utc_ms + BAIT_WINDOW_SECS * 1000;
        // `admin` is sorted by `first_seen`: the window is a slice of it.
        let lo = times.partition_point(|&t| t < start.utc_ms);
        let hi = times.partition_point(|&t| t <= limit).max(lo);
        let linked: Vec<usize> = admin[lo..hi].iter().copied().take(MAX_LINKED).collect();
        if linked.is_empty() {
            continue;
        }
        // All the anomalies in the window are counted; the earliest MAX_LINKED are linked.
        let in_window = hi - lo;
        let anomalies = format!(
            "{in_window} anomal{}",
            if in_window == 1 { "y" } else { "ies" }
        );
        let capped = if in_window > linked.len() {
            format!(" The earliest {} of them are linked.", linked.len())
        } else {
            String::new()
        };
        let mut ids = Vec::new();
        let mut evidence = Vec::new();
        let mut critical = false;
        let mut rules = BTreeSet::new();
        let mut last = end;
        for &a in &linked {
            if findings[a].id.is_empty() {
                next += 1;
                findings[a].id = format!("C{next}");
            }
            let f = &findings[a];
            ids.push(f.id.clone());
            rules.insert(f.rule.clone());
            critical |=
                f.severity >= Severity::High || f.ips.iter().any(|ip| findings[b].ips.contains(ip));
            evidence.extend(f.evidence.iter().take(2).map(|e| weighted(e, 120)));
            last = last.max(f.first_seen.unwrap_or(last));
        }
        let f = &mut findings[b];
        let was_candidate = f.rule == BAIT_CANDIDATE;
        f.rule = "waf.stored_xss_bait".into();
        let sev = if critical {
            Severity::Critical
        } else {
            Severity::High
        };
        f.severity = f.severity.max(sev);
        f.related.extend(ids);
        f.evidence.extend(evidence);
        f.last_seen = Some(last);
        f.playbook = Some("card-skimming".into());
        let rules = rules.into_iter().collect::<Vec<_>>().join(", ");
        if was_candidate {
            f.title = "Stored-XSS bait on a customer-input route, then admin anomalies".into();
            f.summary = format!(
                "{} sent {} XSS payload{} the WAF did not block to customer-input route{} ({}); \
                 within 48 h the admin detector reported {anomalies} ({rules}).{capped} If the payload \
                 was stored (order note, address, inquiry), it may have run in an \
                 administrator's browser and handed over the session: check for new admin \
                 users, changed templates or injected scripts.",
                f.ips.first().map_or("A client", String::as_str),
                f.count,
                if f.count == 1 { "" } else { "s" },
                if f.paths.len() == 1 { "" } else { "s" },
                f.paths.join(", "),
            );
        } else {
            f.summary.push_str(&format!(
                " The admin detector also reported {anomalies} within 48 h ({rules}).{capped}"
            ));
        }
        f.normalize_evidence();
    }
    findings.retain(|f| f.rule != BAIT_CANDIDATE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    const T0: i64 = 1_700_000_000;

    enum In {
        Web(&'static str, &'static str, &'static str, u16, i64),
        /// A web line at a millisecond after T0, displayed at an offset (seconds east):
        /// ip, method, target, status, milliseconds, offset.
        WebMs(&'static str, &'static str, &'static str, u16, i64, i32),
        /// ip, target, action, class, severity, detection_only, secs
        Waf(
            &'static str,
            &'static str,
            WafAction,
            Option<WafClass>,
            &'static str,
            bool,
            i64,
        ),
        /// An AWS WAF record of a SQLi match: ip, target, action, the rule that only counted
        /// it ("" for none), web ACL ARN, secs.
        Aws(
            &'static str,
            &'static str,
            WafAction,
            &'static str,
            &'static str,
            i64,
        ),
    }

    fn run_parts(input: &[In], parts: usize) -> (Vec<Finding>, Option<WafSummary>) {
        run_parts_capped(input, parts, requests::REQUEST_CAP)
    }

    /// Like [`run_parts`], each state writing its candidate requests out past `cap`.
    fn run_parts_capped(
        input: &[In],
        parts: usize,
        cap: usize,
    ) -> (Vec<Finding>, Option<WafSummary>) {
        run_states(input, parts, cap, MAX_WEB_HITS, &FinishContext::default())
    }

    /// Like [`run_parts_capped`], each state keeping at most `web_cap` candidate requests,
    /// finishing with `ctx`.
    fn run_states(
        input: &[In],
        parts: usize,
        cap: usize,
        web_cap: usize,
        ctx: &FinishContext,
    ) -> (Vec<Finding>, Option<WafSummary>) {
        let cfg = Arc::new(DetectConfig::default());
        let web_file: Arc<str> = Arc::from("access.log");
        let waf_file: Arc<str> = Arc::from("modsec_audit.log");
        let mut states: Vec<Waf> = (0..parts)
            .map(|_| {
                let mut w = Waf::new(cfg.clone());
                w.request_cap = cap;
                w.web_cap = web_cap;
                w
            })
            .collect();
        for (i, x) in input.iter().enumerate() {
            let web = match x {
                In::Web(ip, m, t, st, s) => Some((ip, m, t, st, Timestamp::from_secs(T0 + s, 0))),
                In::WebMs(ip, m, t, st, ms, off) => {
                    Some((ip, m, t, st, Timestamp::new(T0 * 1000 + ms, *off)))
                }
                In::Waf(..) | In::Aws(..) => None,
            };
            let (ev, file, raw) = match (x, web) {
                (_, Some((ip, m, t, st, ts))) => (
                    Event {
                        ts: Some(ts),
                        source: Some(SourceKind::Web),
                        client_ip: ip.parse().ok(),
                        method: Some(Cow::Borrowed(*m)),
                        target: Some(Cow::Borrowed(*t)),
                        status: Some(*st),
                        ..Default::default()
                    },
                    &web_file,
                    format!("{ip} {m} {t} {st}"),
                ),
                (In::Waf(ip, t, a, c, sev, d, s), _) => (
                    Event {
                        ts: Some(Timestamp::from_secs(T0 + s, 0)),
                        source: Some(SourceKind::Waf),
                        client_ip: ip.parse().ok(),
                        method: Some(Cow::Borrowed("GET")),
                        target: Some(Cow::Borrowed(*t)),
                        detail: EventDetail::Waf {
                            rule_ids: vec![Cow::Borrowed("942100")],
                            messages: vec![Cow::Borrowed("SQL Injection")],
                            action: *a,
                            severity: Some(Cow::Borrowed(*sev)),
                            detection_only: *d,
                            counted_by: vec![],
                            policy: None,
                            attack: *c,
                            engine_mode: None,
                            transaction: None,
                        },
                        ..Default::default()
                    },
                    &waf_file,
                    format!("waf {ip} {t} {a:?}"),
                ),
                (In::Aws(ip, t, a, counted, acl, s), _) => (
                    Event {
                        ts: Some(Timestamp::from_secs(T0 + s, 0)),
                        source: Some(SourceKind::Waf),
                        client_ip: ip.parse().ok(),
                        method: Some(Cow::Borrowed("GET")),
                        target: Some(Cow::Borrowed(*t)),
                        status: Some(200),
                        detail: EventDetail::Waf {
                            rule_ids: vec![Cow::Borrowed(if counted.is_empty() {
                                "SQLiBlock"
                            } else {
                                *counted
                            })],
                            messages: vec![],
                            action: *a,
                            severity: None,
                            detection_only: false,
                            counted_by: if counted.is_empty() {
                                vec![]
                            } else {
                                vec![Cow::Borrowed(*counted)]
                            },
                            policy: Some(Cow::Borrowed(*acl)),
                            attack: Some(WafClass::Sqli),
                            engine_mode: None,
                            transaction: None,
                        },
                        ..Default::default()
                    },
                    &waf_file,
                    format!("aws {ip} {t} {a:?} {counted}"),
                ),
                _ => unreachable!("web lines have a time"),
            };
            let origin = Origin {
                file,
                line: i as u64 + 1,
                raw: raw.as_bytes(),
            };
            states[i % parts].observe(&ev, &origin);
        }
        let mut it = states.into_iter();
        let mut first: Box<dyn DetectorState> = Box::new(it.next().unwrap());
        for s in it {
            first.merge(Box::new(s));
        }
        let summary = first.waf_summary();
        let mut f = first.finish(ctx);
        f.sort_by(|a, b| {
            (a.rule.as_str(), &a.ips, a.first_seen).cmp(&(b.rule.as_str(), &b.ips, b.first_seen))
        });
        (f, summary)
    }

    fn run(input: &[In]) -> Vec<Finding> {
        let (one, _) = run_parts(input, 1);
        let (three, _) = run_parts(input, 3);
        assert_eq!(one, three, "findings depend on how the lines were split");
        one
    }

    fn render(f: &[Finding]) -> String {
        let mut o = String::new();
        for x in f {
            o.push_str(&format!(
                "{} {} {:?} ips={:?} paths={:?} count={} playbook={:?}\n  {}\n  {}\n",
                x.rule,
                x.severity,
                x.category,
                x.ips,
                x.paths,
                x.count,
                x.playbook,
                x.title,
                x.summary
            ));
            for e in &x.evidence {
                o.push_str(&format!("  - {}:{} {}\n", e.file, e.line, e.text));
            }
        }
        o
    }

    use In::{Waf as W, Web, WebMs};
    use WafAction::{Blocked, LoggedOnly};

    const SHOP_ACL: &str = "arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/shop/1";
    const STAGING_ACL: &str = "arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/staging/2";

    #[test]
    fn a_count_rule_in_a_blocking_web_acl_is_not_detection_only() {
        use In::Aws;
        let f = run(&[
            Aws(
                "192.0.2.9",
                "/x?id=1%20union%20select",
                Blocked,
                "",
                SHOP_ACL,
                0,
            ),
            Aws(
                "203.0.113.7",
                "/products/list?id=1'or'1'='1",
                LoggedOnly,
                "SQLi_QUERYARGUMENTS",
                SHOP_ACL,
                60,
            ),
            Aws(
                "203.0.113.8",
                "/products/list?id=2'or'2'='2",
                LoggedOnly,
                "SQLi_QUERYARGUMENTS",
                SHOP_ACL,
                120,
            ),
        ]);
        assert!(rule(&f, "waf.detection_only").is_empty(), "{}", render(&f));
        let c = rule(&f, "waf.counted_not_blocked");
        assert_eq!(c.len(), 1, "{}", render(&f));
        assert_eq!(
            c[0].title,
            "Rule SQLi_QUERYARGUMENTS in web ACL shop counted 2 sqli requests and did not block them"
        );
        assert!(
            c[0].summary
                .contains("blocked 1 other request in these logs")
                && c[0]
                    .summary
                    .contains("the web ACL as a whole is not in detection-only mode")
                && c[0]
                    .summary
                    .contains("2 of the 2 counted requests were high-severity matches")
                && c[0].summary.contains(SHOP_ACL),
            "{}",
            c[0].summary
        );
        assert_eq!(c[0].count, 2);
        assert_eq!(c[0].ips, ["203.0.113.7", "203.0.113.8"]);
        assert_eq!(c[0].severity, Severity::Medium);
        let u = rule(&f, "waf.unblocked_attack");
        assert_eq!(u.len(), 2, "{}", render(&f));
        assert!(
            u[0].summary.contains(
                "not blocked (counted, not blocked, by rule SQLi_QUERYARGUMENTS in web ACL shop)"
            ) && !u[0].summary.contains("detection-only"),
            "{}",
            u[0].summary
        );
    }

    #[test]
    fn a_web_acl_that_never_blocks_is_count_only_whatever_other_acls_do() {
        use In::Aws;
        // The shop ACL blocks in the middle of the staging ACL's counted records: that does
        // not end the staging ACL's period, nor make its COUNT rule a tuning exception.
        let f = run(&[
            Aws(
                "203.0.113.7",
                "/a?id=1'or'1'='1",
                LoggedOnly,
                "SQLiCount",
                STAGING_ACL,
                0,
            ),
            Aws(
                "192.0.2.9",
                "/x?id=1%20union%20select",
                Blocked,
                "",
                SHOP_ACL,
                60,
            ),
            Aws(
                "203.0.113.8",
                "/b?id=2'or'2'='2",
                LoggedOnly,
                "SQLiCount",
                STAGING_ACL,
                3600,
            ),
        ]);
        let d = rule(&f, "waf.detection_only");
        assert_eq!(d.len(), 1, "{}", render(&f));
        assert_eq!(
            d[0].title,
            "Web ACL staging blocked nothing: its rules only counted (1.0 h, 2 high-severity matches let through)"
        );
        assert!(d[0].summary.contains(STAGING_ACL), "{}", d[0].summary);
        assert_eq!(d[0].count, 2);
        assert!(rule(&f, "waf.counted_not_blocked").is_empty());
        let u = rule(&f, "waf.unblocked_attack");
        assert!(
            u.iter().all(|x| x.summary.contains(
                "counted by rule SQLiCount in web ACL staging, which blocked nothing in these logs"
            )),
            "{}",
            render(&f)
        );
    }

    #[test]
    fn unblocked_attack_with_2xx_then_admin_is_critical() {
        let f = run(&[
            W(
                "203.0.113.5",
                "/products/list?id=1'or'1'='1",
                LoggedOnly,
                Some(WafClass::Sqli),
                "CRITICAL",
                true,
                0,
            ),
            Web("203.0.113.5", "GET", "/products/list?id=1'or'1'='1", 200, 1),
            Web("203.0.113.5", "GET", "/admin/order", 200, 600),
            // Negative: another IP's attack that the application refused (403 in the web log).
            W(
                "198.51.100.9",
                "/products/list?id=2'or'1'='1",
                LoggedOnly,
                Some(WafClass::Sqli),
                "CRITICAL",
                true,
                10,
            ),
            Web(
                "198.51.100.9",
                "GET",
                "/products/list?id=2'or'1'='1",
                403,
                10,
            ),
        ]);
        let u: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.unblocked_attack")
            .cloned()
            .collect();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].severity, Severity::Critical);
        insta::assert_snapshot!(render(&u));
    }

    #[test]
    fn unblocked_attack_then_first_seen_script_is_critical() {
        let attack = W(
            "203.0.113.5",
            "/products/list?id=1'or'1'='1",
            LoggedOnly,
            Some(WafClass::Sqli),
            "CRITICAL",
            true,
            0,
        );
        let attack_web = Web("203.0.113.5", "GET", "/products/list?id=1'or'1'='1", 200, 1);
        let f = run(&[
            attack,
            attack_web,
            // Reached by others before the attacker: a popular script, not first-seen.
            Web("192.0.2.1", "GET", "/lib/popular.php", 200, -500),
            Web("192.0.2.2", "GET", "/lib/popular.php", 200, -400),
            Web("203.0.113.5", "GET", "/lib/popular.php", 200, 200),
            // First reached by the attacker, later by someone else: first-seen.
            Web("203.0.113.5", "POST", "/lib/x0.php", 200, 300),
            Web("192.0.2.3", "GET", "/lib/x0.php", 200, 900),
        ]);
        let u: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.unblocked_attack")
            .cloned()
            .collect();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].severity, Severity::Critical);
        assert_eq!(u[0].playbook.as_deref(), Some("web-shell"));
        assert!(u[0].summary.contains("a first-seen script"));
        assert!(u[0].evidence.iter().any(|e| e.text.contains("/lib/x0.php")));
        assert!(!u[0].evidence.iter().any(|e| e.text.contains("popular")));

        // Negatives: the popular script alone; a script the attacker reached only before its
        // attack; a well-known platform script.
        let quiet = run(&[
            W(
                "203.0.113.5",
                "/products/list?id=1'or'1'='1",
                LoggedOnly,
                Some(WafClass::Sqli),
                "CRITICAL",
                true,
                0,
            ),
            Web("203.0.113.5", "GET", "/products/list?id=1'or'1'='1", 200, 1),
            Web("192.0.2.1", "GET", "/lib/popular.php", 200, -500),
            Web("192.0.2.2", "GET", "/lib/popular.php", 200, -400),
            Web("203.0.113.5", "GET", "/lib/popular.php", 200, 200),
            Web("203.0.113.5", "GET", "/lib/before.php", 200, -100),
            Web("203.0.113.5", "GET", "/xmlrpc.php", 200, 300),
        ]);
        let u: Vec<_> = quiet
            .iter()
            .filter(|x| x.rule == "waf.unblocked_attack")
            .collect();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].severity, Severity::High, "{}", u[0].summary);
    }

    #[test]
    fn blocked_attacks_are_not_high() {
        let f = run(&[
            W(
                "203.0.113.7",
                "/contact?q=<script>",
                Blocked,
                Some(WafClass::Xss),
                "CRITICAL",
                false,
                0,
            ),
            Web("203.0.113.7", "GET", "/contact?q=<script>", 403, 0),
            Web("203.0.113.7", "GET", "/admin/", 200, 100),
            // A low-severity logged match answered 2xx is not high either.
            W(
                "203.0.113.8",
                "/?a=b",
                LoggedOnly,
                Some(WafClass::Protocol),
                "NOTICE",
                false,
                5,
            ),
            Web("203.0.113.8", "GET", "/?a=b", 200, 5),
        ]);
        assert!(
            f.iter().all(|x| x.severity < Severity::High),
            "{}",
            render(&f)
        );
        assert!(f.iter().all(|x| x.rule != "waf.unblocked_attack"));
    }

    #[test]
    fn blocked_then_through() {
        let f = run(&[
            W(
                "192.0.2.50",
                "/products/detail/1",
                Blocked,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                0,
            ),
            Web(
                "192.0.2.50",
                "GET",
                "/products/detail/1?id=1%20union%20select%201,2",
                403,
                0,
            ),
            Web(
                "192.0.2.50",
                "GET",
                "/products/detail/1?id=1/**/UNION/**/SELECT/**/1,2",
                200,
                3600,
            ),
            // Negative: a benign 2xx later, and an XSS success (different class).
            Web("192.0.2.50", "GET", "/products/detail/1?page=2", 200, 3700),
            Web(
                "192.0.2.50",
                "GET",
                "/products/detail/1?q=<script>alert(1)</script>",
                200,
                3800,
            ),
            // Negative: same class but after 24 h.
            W(
                "192.0.2.60",
                "/search",
                Blocked,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                0,
            ),
            Web(
                "192.0.2.60",
                "GET",
                "/search?q=1%20union%20select%201",
                200,
                90_000,
            ),
        ]);
        let b: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.blocked_then_through")
            .cloned()
            .collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].count, 1);
        insta::assert_snapshot!(render(&b));
    }

    #[test]
    fn detection_only_period_ends_when_blocking_resumes() {
        let f = run(&[
            W(
                "192.0.2.1",
                "/a?x=1",
                LoggedOnly,
                Some(WafClass::Sqli),
                "CRITICAL",
                true,
                0,
            ),
            W(
                "192.0.2.2",
                "/b?x=1",
                LoggedOnly,
                Some(WafClass::Protocol),
                "NOTICE",
                true,
                7200,
            ),
            W(
                "192.0.2.3",
                "/c?x=1",
                Blocked,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                10_000,
            ),
            W(
                "192.0.2.4",
                "/d?x=1",
                Blocked,
                Some(WafClass::Xss),
                "CRITICAL",
                false,
                20_000,
            ),
        ]);
        let d: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.detection_only")
            .cloned()
            .collect();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 2);
        insta::assert_snapshot!(render(&d));
        // Negative: a WAF that always blocked has no detection-only period.
        let g = run(&[W(
            "192.0.2.3",
            "/c?x=1",
            Blocked,
            Some(WafClass::Sqli),
            "CRITICAL",
            false,
            0,
        )]);
        assert!(g.iter().all(|x| x.rule != "waf.detection_only"));
    }

    fn traffic(hours: std::ops::Range<i64>, per_hour: i64, waf: bool) -> Vec<In> {
        let mut v = Vec::new();
        for h in hours {
            for i in 0..per_hour {
                v.push(Web("192.0.2.99", "GET", "/", 200, h * 3600 + i));
            }
            if waf {
                for i in 0..5 {
                    v.push(W(
                        "192.0.2.98",
                        "/x?id=1",
                        Blocked,
                        Some(WafClass::Sqli),
                        "CRITICAL",
                        false,
                        h * 3600 + i,
                    ));
                }
            }
        }
        v
    }

    #[test]
    fn monitoring_lapse() {
        let mut input = traffic(0..5, 50, true);
        input.extend(traffic(5..11, 50, false));
        input.extend(traffic(11..13, 50, true));
        let f = run(&input);
        let l: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.monitoring_lapse")
            .cloned()
            .collect();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].count, 300);
        assert_eq!(l[0].category, Category::LogIntegrity);
        insta::assert_snapshot!(render(&l));
        // Negative: no traffic in the gap is not a lapse.
        let mut quiet = traffic(0..5, 50, true);
        quiet.extend(traffic(11..13, 50, true));
        assert!(run(&quiet).iter().all(|x| x.rule != "waf.monitoring_lapse"));
        // Negative: a sparse WAF (few records per request) is not expected to log every hour.
        let mut sparse = traffic(0..1, 50, true);
        sparse.extend(traffic(1..4, 50, false));
        sparse.extend(traffic(4..5, 50, true));
        assert!(run(&sparse)
            .iter()
            .all(|x| x.rule != "waf.monitoring_lapse"));
    }

    #[test]
    fn stored_xss_bait() {
        let f = run(&[
            W(
                "203.0.113.66",
                "/contact",
                LoggedOnly,
                Some(WafClass::Xss),
                "CRITICAL",
                true,
                0,
            ),
            Web("203.0.113.66", "POST", "/contact", 200, 0),
            Web("10.0.0.2", "GET", "/admin/customer/edit/5", 200, 7200),
            // Negative: XSS on a non-customer route, and a bait with no admin activity in 48 h.
            W(
                "203.0.113.67",
                "/search?q=<svg>",
                LoggedOnly,
                Some(WafClass::Xss),
                "CRITICAL",
                true,
                10,
            ),
        ]);
        let b: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.stored_xss_bait")
            .cloned()
            .collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].playbook.as_deref(), Some("card-skimming"));
        insta::assert_snapshot!(render(&b));
        let none = run(&[
            W(
                "203.0.113.66",
                "/contact",
                LoggedOnly,
                Some(WafClass::Xss),
                "CRITICAL",
                true,
                0,
            ),
            Web("10.0.0.2", "GET", "/admin/customer/edit/5", 200, 200_000),
        ]);
        assert!(none.iter().all(|x| x.rule != "waf.stored_xss_bait"));
    }

    #[test]
    fn summary_per_rule_and_ip() {
        let (_, s) = run_parts(
            &[
                W(
                    "192.0.2.1",
                    "/a",
                    Blocked,
                    Some(WafClass::Sqli),
                    "CRITICAL",
                    false,
                    0,
                ),
                W(
                    "192.0.2.1",
                    "/a",
                    LoggedOnly,
                    Some(WafClass::Sqli),
                    "CRITICAL",
                    false,
                    1,
                ),
                W(
                    "192.0.2.2",
                    "/a",
                    Blocked,
                    Some(WafClass::Sqli),
                    "CRITICAL",
                    false,
                    2,
                ),
            ],
            2,
        );
        let s = s.unwrap();
        assert_eq!((s.events, s.blocked, s.logged_only), (3, 2, 1));
        // 942100 alone in its records: the record's class.
        assert_eq!(s.rules[0].attack.as_deref(), Some("sqli"));
        assert_eq!(s.rules[0].matches, 3);
        assert_eq!(s.rules[0].distinct_ips, 2);
        assert_eq!(s.ips[0].ip, "192.0.2.1");
        assert_eq!(s.ips[0].not_blocked, 1);
    }

    #[test]
    fn summary_classifies_each_rule_of_a_multi_rule_transaction() {
        let cfg = Arc::new(DetectConfig::default());
        let mut w = Waf::new(cfg);
        let file: Arc<str> = Arc::from("modsec_audit.log");
        let ev = Event {
            ts: Some(Timestamp::from_secs(T0, 0)),
            source: Some(SourceKind::Waf),
            client_ip: "192.0.2.9".parse().ok(),
            target: Some(Cow::Borrowed("/x?id=1")),
            detail: EventDetail::Waf {
                rule_ids: vec![
                    Cow::Borrowed("920350"),
                    Cow::Borrowed("942100"),
                    Cow::Borrowed("949110"),
                ],
                messages: vec![],
                action: WafAction::Blocked,
                severity: Some(Cow::Borrowed("CRITICAL")),
                detection_only: false,
                counted_by: vec![],
                policy: None,
                attack: Some(WafClass::Sqli),
                engine_mode: None,
                transaction: None,
            },
            ..Default::default()
        };
        let origin = Origin {
            file: &file,
            line: 1,
            raw: b"x",
        };
        w.observe(&ev, &origin);
        let s = w.waf_summary().unwrap();
        let class = |id: &str| {
            s.rules
                .iter()
                .find(|r| r.rule_id == id)
                .and_then(|r| r.attack.clone())
        };
        assert_eq!(class("920350").as_deref(), Some("protocol"));
        assert_eq!(class("942100").as_deref(), Some("sqli"));
        // The blocking-evaluation rule has no class of its own (not the transaction's SQLi).
        assert_eq!(class("949110"), None);
    }

    fn rule<'a>(f: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
        f.iter().filter(|x| x.rule == rule).collect()
    }

    fn cites(f: &Finding, text: &str) -> bool {
        f.evidence.iter().any(|e| e.text.contains(text))
    }

    #[test]
    fn nearest_access_line_window_edges() {
        let attack = |ip| {
            W(
                ip,
                "/p?id=1'or'1'='1",
                LoggedOnly,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                1000,
            )
        };
        let f = run(&[
            // Out of time order on purpose; the WAF records carry no status of their own, so
            // only a matched 2xx access line makes an unblocked attack.
            Web("192.0.2.1", "GET", "/p?at=plus120", 200, 1120),
            attack("192.0.2.1"),
            attack("192.0.2.2"),
            Web("192.0.2.2", "GET", "/p?at=plus121", 200, 1121),
            Web("192.0.2.3", "GET", "/p?at=minus120", 200, 880),
            attack("192.0.2.3"),
            Web("192.0.2.4", "GET", "/p?at=minus121", 200, 879),
            attack("192.0.2.4"),
            // The nearest line decides: a 403 30 s after beats a 200 60 s before.
            Web("192.0.2.5", "GET", "/p?at=plus30", 403, 1030),
            attack("192.0.2.5"),
            Web("192.0.2.5", "GET", "/p?at=minus60", 200, 940),
            // … and a 200 30 s after beats a 403 60 s before.
            Web("192.0.2.6", "GET", "/p?at=plus30", 200, 1030),
            Web("192.0.2.6", "GET", "/p?at=minus60", 403, 940),
            attack("192.0.2.6"),
            // Equally near: the first line (by file and line) wins, before or after.
            Web("198.51.100.1", "GET", "/p?at=minus30", 403, 970),
            Web("198.51.100.1", "GET", "/p?at=plus30", 200, 1030),
            attack("198.51.100.1"),
            Web("198.51.100.2", "GET", "/p?at=minus30", 200, 970),
            Web("198.51.100.2", "GET", "/p?at=plus30", 403, 1030),
            attack("198.51.100.2"),
            Web("198.51.100.3", "GET", "/p?at=plus10", 403, 1010),
            Web("198.51.100.3", "GET", "/p?at=plus10b", 200, 1010),
            attack("198.51.100.3"),
            Web("198.51.100.4", "GET", "/p?at=plus10", 200, 1010),
            Web("198.51.100.4", "GET", "/p?at=plus10b", 403, 1010),
            attack("198.51.100.4"),
            Web("198.51.100.5", "GET", "/p?at=minus10", 200, 990),
            Web("198.51.100.5", "GET", "/p?at=minus10b", 403, 990),
            Web("198.51.100.5", "GET", "/p?at=plus15", 403, 1015),
            attack("198.51.100.5"),
            Web("198.51.100.6", "GET", "/p?at=minus10", 403, 990),
            Web("198.51.100.6", "GET", "/p?at=minus10b", 200, 990),
            Web("198.51.100.6", "GET", "/p?at=plus15", 200, 1015),
            attack("198.51.100.6"),
        ]);
        let u = rule(&f, "waf.unblocked_attack");
        let ips: Vec<&str> = u.iter().map(|x| x.ips[0].as_str()).collect();
        assert_eq!(
            ips,
            [
                "192.0.2.1",
                "192.0.2.3",
                "192.0.2.6",
                "198.51.100.2",
                "198.51.100.4",
                "198.51.100.5"
            ],
            "{}",
            render(&f)
        );
        assert!(cites(u[3], "at=minus30") && cites(u[4], "at=plus10 "));
        assert!(cites(u[5], "at=minus10 "));
        assert!(cites(u[0], "at=plus120"));
        assert!(cites(u[1], "at=minus120"));
        assert!(cites(u[2], "at=plus30") && !cites(u[2], "at=minus60"));
        assert!(u.iter().all(|x| x.summary.contains("(1 confirmed")));
    }

    #[test]
    fn bypass_window_edges() {
        let block = |ip| {
            W(
                ip,
                "/s",
                Blocked,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                1000,
            )
        };
        let f = run(&[
            // Out of time order on purpose.
            Web(
                "192.0.2.1",
                "GET",
                "/s?id=3/**/UNION/**/SELECT/**/1,2",
                200,
                87_400,
            ),
            Web(
                "192.0.2.1",
                "GET",
                "/s?id=1/**/UNION/**/SELECT/**/1,2",
                200,
                1000,
            ),
            block("192.0.2.1"),
            Web(
                "192.0.2.1",
                "GET",
                "/s?id=0/**/UNION/**/SELECT/**/1,2",
                200,
                900,
            ),
            // Just past 24 h.
            block("192.0.2.2"),
            Web(
                "192.0.2.2",
                "GET",
                "/s?id=4/**/UNION/**/SELECT/**/1,2",
                200,
                87_401,
            ),
            // A refused retry and a benign 2xx are skipped, the next match counts.
            block("192.0.2.3"),
            Web(
                "192.0.2.3",
                "GET",
                "/s?id=5/**/UNION/**/SELECT/**/1,2",
                403,
                1001,
            ),
            Web("192.0.2.3", "GET", "/s?page=2", 200, 1002),
            Web(
                "192.0.2.3",
                "GET",
                "/s?id=6/**/UNION/**/SELECT/**/1,2",
                200,
                1003,
            ),
        ]);
        let b = rule(&f, "waf.blocked_then_through");
        let ips: Vec<&str> = b.iter().map(|x| x.ips[0].as_str()).collect();
        assert_eq!(ips, ["192.0.2.1", "192.0.2.3"], "{}", render(&f));
        assert_eq!((b[0].count, b[1].count), (1, 1));
        assert!(cites(b[0], "id=3/") && !cites(b[0], "id=1/") && !cites(b[0], "id=0/"));
        assert!(cites(b[1], "id=6/") && !cites(b[1], "id=5/"));
        assert_eq!(b[0].last_seen, Some(Timestamp::from_secs(T0 + 87_400, 0)));
    }

    #[test]
    fn first_seen_script_from_the_attack_on() {
        let scan = |edge_offset: i32| {
            run(&[
                // Out of time order on purpose.
                Web("203.0.113.5", "GET", "/lib/later.php", 200, 1500),
                W(
                    "203.0.113.5",
                    "/products/list?id=1'or'1'='1",
                    LoggedOnly,
                    Some(WafClass::Sqli),
                    "CRITICAL",
                    false,
                    1000,
                ),
                Web(
                    "203.0.113.5",
                    "GET",
                    "/products/list?id=1'or'1'='1",
                    200,
                    1000,
                ),
                Web("203.0.113.5", "GET", "/lib/before.php", 200, 999),
                // The attack's very millisecond: in when displayed at the same or a larger
                // offset, out at a smaller one (timestamps order equal instants by offset).
                WebMs(
                    "203.0.113.5",
                    "GET",
                    "/lib/edge.php",
                    200,
                    1_000_000,
                    edge_offset,
                ),
                // First reached by another client.
                Web("192.0.2.9", "GET", "/lib/other.php", 200, 1100),
                Web("203.0.113.5", "GET", "/lib/other.php", 200, 1200),
            ])
        };
        let f = scan(0);
        let u = rule(&f, "waf.unblocked_attack");
        assert_eq!(u.len(), 1);
        assert!(
            u[0].summary.contains("a first-seen script"),
            "{}",
            u[0].summary
        );
        assert!(cites(u[0], "/lib/edge.php"), "{}", render(&f));
        assert!(!cites(u[0], "/lib/later.php") && !cites(u[0], "/lib/before.php"));
        let f = scan(-3600);
        let u = rule(&f, "waf.unblocked_attack");
        assert!(cites(u[0], "/lib/later.php"), "{}", render(&f));
        assert!(!cites(u[0], "/lib/edge.php") && !cites(u[0], "/lib/other.php"));
    }

    #[test]
    fn stored_xss_bait_window_edges() {
        let scan = |past_ip: &'static str| {
            run(&[
                // Out of time order on purpose.
                Web("10.0.0.2", "GET", "/admin/edge", 200, 1000 + 172_800),
                Web(past_ip, "GET", "/admin/past", 200, 1000 + 172_801),
                W(
                    "203.0.113.66",
                    "/contact",
                    LoggedOnly,
                    Some(WafClass::Xss),
                    "CRITICAL",
                    false,
                    1000,
                ),
                Web("10.0.0.2", "GET", "/admin/before", 200, 999),
                // The bait's very millisecond: after it only at a larger offset.
                WebMs("10.0.0.2", "GET", "/admin/same-later", 200, 1_000_000, 3600),
                WebMs("10.0.0.2", "GET", "/admin/same-equal", 200, 1_000_000, 0),
                WebMs(
                    "10.0.0.2",
                    "GET",
                    "/admin/same-earlier",
                    200,
                    1_000_000,
                    -3600,
                ),
            ])
        };
        let f = scan("203.0.113.66");
        let b = rule(&f, "waf.stored_xss_bait");
        assert_eq!(b.len(), 1, "{}", render(&f));
        assert_eq!(
            b[0].severity,
            Severity::High,
            "the bait's own IP came too late"
        );
        assert!(
            b[0].summary.contains("(2 admin-route 2xx hits"),
            "{}",
            b[0].summary
        );
        assert!(cites(b[0], "/admin/edge") && cites(b[0], "/admin/same-later"));
        for out in [
            "/admin/past",
            "/admin/before",
            "/admin/same-equal",
            "/admin/same-earlier",
        ] {
            assert!(!cites(b[0], out), "{out}: {}", render(&f));
        }
        assert_eq!(b[0].first_seen, Some(Timestamp::from_secs(T0 + 1000, 0)));
        assert_eq!(
            b[0].last_seen,
            Some(Timestamp::from_secs(T0 + 1000 + 172_800, 0))
        );
        // The bait's own IP exactly at the window's end makes it critical.
        let f = run(&[
            W(
                "203.0.113.66",
                "/contact",
                LoggedOnly,
                Some(WafClass::Xss),
                "CRITICAL",
                false,
                1000,
            ),
            Web("10.0.0.2", "GET", "/admin/a", 200, 1001),
            Web("203.0.113.66", "GET", "/admin/b", 200, 1000 + 172_800),
        ]);
        let b = rule(&f, "waf.stored_xss_bait");
        assert_eq!(b[0].severity, Severity::Critical, "{}", render(&f));
        // The latest hit sets the end, whatever its offset among equal instants.
        let f = run(&[
            W(
                "203.0.113.66",
                "/contact",
                LoggedOnly,
                Some(WafClass::Xss),
                "CRITICAL",
                false,
                1000,
            ),
            WebMs("10.0.0.2", "GET", "/admin/x", 200, 2_000_000, 7200),
            WebMs("10.0.0.2", "GET", "/admin/y", 200, 2_000_000, 0),
        ]);
        let b = rule(&f, "waf.stored_xss_bait");
        assert_eq!(
            b[0].last_seen,
            Some(Timestamp::new(T0 * 1000 + 2_000_000, 7200))
        );
    }

    #[test]
    fn lapse_at_either_end_and_across_a_far_line() {
        let lapses = |input: &[In]| -> Vec<(String, u64)> {
            run(input)
                .iter()
                .filter(|x| x.rule == "waf.monitoring_lapse")
                .map(|x| (x.title.clone(), x.count))
                .collect()
        };
        // Silent to the end: the run closes at the last web hour.
        let mut input = traffic(0..5, 50, true);
        input.extend(traffic(5..12, 50, false));
        let l = lapses(&input);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].0.contains("7 h") && l[0].0.contains("ends early"),
            "{l:?}"
        );
        assert_eq!(l[0].1, 350);
        // Silent from the start.
        let mut input = traffic(0..6, 50, false);
        input.extend(traffic(6..10, 50, true));
        let l = lapses(&input);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].0.contains("6 h") && l[0].0.contains("starts late"),
            "{l:?}"
        );
        // One web line a century later: a silence with one request, not a lapse, and the
        // lapse before it is still found.
        let mut input = traffic(0..5, 50, true);
        input.extend(traffic(5..11, 50, false));
        input.extend(traffic(11..13, 50, true));
        input.extend(traffic(876_000..876_001, 1, false));
        let l = lapses(&input);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(l[0].1, 300);
    }

    #[test]
    fn lapse_cites_the_records_around_the_silence() {
        let waf_at = |t, s| {
            W(
                "192.0.2.97",
                t,
                Blocked,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                s,
            )
        };
        // Start of the hour `h` hours after T0's (seconds after T0).
        let hour = |h: i64| h * 3600 - T0.rem_euclid(3600);
        // Out of time order on purpose: the records just around the silence (hours 5 to 10)
        // come first.
        let mut input = vec![
            waf_at("/after-edge", hour(11)),
            waf_at("/after-later", hour(11) + 1),
            waf_at("/before-edge", hour(5) - 1),
            waf_at("/before-earlier", hour(5) - 2),
        ];
        input.extend(traffic(0..5, 50, true));
        input.extend(traffic(5..11, 50, false));
        input.extend(traffic(11..13, 50, true));
        let f = run(&input);
        let l = rule(&f, "waf.monitoring_lapse");
        assert_eq!(l.len(), 1);
        assert!(
            cites(l[0], "/before-edge") && cites(l[0], "/after-edge"),
            "{}",
            render(&f)
        );
        assert!(!cites(l[0], "/after-later") && !cites(l[0], "/before-earlier"));
        assert!(!cites(l[0], "/x?id=1"));
        assert_eq!(l[0].first_seen, Some(Timestamp::from_secs(T0 + hour(5), 0)));
        assert_eq!(l[0].last_seen, Some(Timestamp::from_secs(T0 + hour(11), 0)));
    }

    fn finding_at(rule: &str, id: &str, ip: &str, first_ms: i64, last_ms: i64) -> Finding {
        let mut f = Finding::new(rule, Category::Waf, Severity::Medium);
        f.id = id.into();
        f.ips = vec![ip.into()];
        f.title = id.into();
        f.first_seen = Some(Timestamp::new(first_ms, 0));
        f.last_seen = Some(Timestamp::new(last_ms, 0));
        f
    }

    #[test]
    fn correlate_stored_xss_window_edges_and_cap() {
        let (start, end) = (T0 * 1000, T0 * 1000 + 10_000);
        let limit = end + BAIT_WINDOW_SECS * 1000;
        let admin = |id, at| finding_at("admin.first_seen_ip", id, "10.0.0.2", at, at);
        let bait = finding_at("waf.stored_xss_bait", "", "203.0.113.66", start, end);
        let mut f = vec![
            admin("past", limit + 1),
            admin("edge-end", limit),
            bait.clone(),
            admin("before", start - 1),
            admin("edge-start", start),
        ];
        correlate_stored_xss(&mut f);
        let b = rule(&f, "waf.stored_xss_bait");
        assert_eq!(b[0].related, ["edge-start", "edge-end"]);
        assert_eq!(b[0].last_seen, Some(Timestamp::new(limit, 0)));
        assert!(b[0].summary.contains("2 anomalies"), "{}", b[0].summary);
        // More than MAX_RELATED in the window: the earliest are linked.
        let names: Vec<String> = (0..25).map(|i| format!("a{i:02}")).collect();
        let mut f = vec![bait];
        for (i, n) in names.iter().enumerate().rev() {
            f.push(admin(n.as_str(), start + i as i64 * 1000));
        }
        correlate_stored_xss(&mut f);
        let b = rule(&f, "waf.stored_xss_bait");
        assert_eq!(b[0].related, names[..ecir_model::finding::MAX_RELATED]);
        // The summary counts them all and says how many are linked.
        assert!(
            b[0].summary.contains("25 anomalies")
                && b[0].summary.contains("The earliest 20 of them are linked."),
            "{}",
            b[0].summary
        );
    }

    #[test]
    fn a_long_detection_only_period_keeps_bounded_evidence_and_counts_its_clients() {
        // 3,000 records from 120 clients, one in three high-severity, then blocking resumes.
        let mut recs: Vec<In> = (0..3000)
            .map(|i| {
                W(
                    ["192.0.2.1", "2001:db8::1", "198.51.100.7"][i % 3],
                    "/x?id=1",
                    LoggedOnly,
                    Some(WafClass::Sqli),
                    if i % 3 == 1 { "CRITICAL" } else { "NOTICE" },
                    true,
                    i as i64,
                )
            })
            .collect();
        for k in 0..120 {
            let ip: &'static str = Box::leak(format!("203.0.113.{k}").into_boxed_str());
            recs.push(W(
                ip,
                "/y",
                LoggedOnly,
                None,
                "NOTICE",
                true,
                3000 + k as i64,
            ));
        }
        recs.push(W("192.0.2.9", "/z", Blocked, None, "CRITICAL", false, 9000));
        let f = run(&recs);
        let d: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "waf.detection_only")
            .collect();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 3120);
        assert_eq!(d[0].evidence.len(), ecir_model::finding::MAX_EVIDENCE);
        // The first record, then the earliest high-severity ones.
        let lines: Vec<u64> = d[0].evidence.iter().map(|e| e.line).collect();
        assert_eq!(lines[0], 1, "{lines:?}");
        assert_eq!(
            lines[1..],
            (0..19).map(|k| 2 + 3 * k).collect::<Vec<u64>>()[..]
        );
        assert_eq!(d[0].ips.len(), ecir_model::finding::MAX_IPS);
        assert!(
            d[0].summary
                .contains("from 123 client IPs; the first 50 by address are listed"),
            "{}",
            d[0].summary
        );
    }

    #[test]
    fn a_cut_in_correlation_is_reported_even_without_findings() {
        // One blocked WAF record (no finding of its own) in a run whose candidate web
        // requests overflowed: the report says correlation was cut.
        let file: Arc<str> = Arc::from("modsec_audit.log");
        let raw = "waf 203.0.113.9 /x";
        let ev = Event {
            ts: Some(Timestamp::from_secs(T0, 0)),
            source: Some(SourceKind::Waf),
            client_ip: "203.0.113.9".parse().ok(),
            method: Some(Cow::Borrowed("GET")),
            target: Some(Cow::Borrowed("/x?id=1%27")),
            detail: EventDetail::Waf {
                rule_ids: vec![Cow::Borrowed("942100")],
                messages: vec![Cow::Borrowed("SQL Injection")],
                action: WafAction::Blocked,
                severity: Some(Cow::Borrowed("CRITICAL")),
                detection_only: false,
                counted_by: vec![],
                policy: None,
                attack: Some(WafClass::Sqli),
                engine_mode: None,
                transaction: None,
            },
            ..Default::default()
        };
        for overflow in [false, true] {
            let mut w = Waf::new(Arc::new(DetectConfig::default()));
            w.observe(
                &ev,
                &Origin {
                    file: &file,
                    line: 1,
                    raw: raw.as_bytes(),
                },
            );
            w.web_overflow = overflow;
            let ctx = FinishContext::default();
            let f = Box::new(w).finish(&ctx);
            assert!(f.iter().all(|x| x.rule != "waf.unblocked_attack"));
            let warnings = ctx.take_warnings();
            assert_eq!(
                warnings
                    .iter()
                    .any(|x| x.contains(&format!("earliest {MAX_WEB_HITS} candidate web requests"))),
                overflow,
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn candidate_requests_written_out_give_the_same_findings() {
        // An unblocked attack confirmed by its access line and followed by an admin hit, a
        // block then a bypass, and customers' searches (never named by a WAF record) around.
        let mut input = vec![
            W(
                "203.0.113.5",
                "/products/list?id=1'or'1'='1",
                LoggedOnly,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                0,
            ),
            Web("203.0.113.5", "GET", "/products/list?id=1'or'1'='1", 200, 1),
            Web("203.0.113.5", "GET", "/admin/order", 200, 600),
            W(
                "192.0.2.50",
                "/products/detail/1",
                Blocked,
                Some(WafClass::Sqli),
                "CRITICAL",
                false,
                0,
            ),
            Web(
                "192.0.2.50",
                "GET",
                "/products/detail/1?id=1/**/UNION/**/SELECT/**/1,2",
                200,
                3600,
            ),
        ];
        const IPS: [&str; 4] = ["100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4"];
        for k in 0..40 {
            input.insert(
                k % input.len(),
                Web(IPS[k % 4], "GET", "/search?q=shirt", 200, k as i64 * 60),
            );
        }
        let json = |f: &[Finding]| serde_json::to_string(f).unwrap();
        let (want, _) = run_parts(&input, 1);
        assert!(want.iter().any(|f| f.rule == "waf.unblocked_attack"));
        assert!(want.iter().any(|f| f.rule == "waf.blocked_then_through"));
        assert!(want.iter().any(|f| f
            .evidence
            .iter()
            .any(|e| e.text.contains("203.0.113.5 GET /products"))));
        for parts in [1, 2, 3] {
            for cap in [1, 2, 7] {
                let (got, _) = run_parts_capped(&input, parts, cap);
                assert_eq!(json(&got), json(&want), "{parts} parts, cap {cap}");
            }
        }
    }

    #[test]
    fn finish_matches_only_the_earliest_candidate_requests_past_the_cap() {
        // A logged-only attack at 100 s, and the same client's requests to the path it names
        // at 1..=10 s: past a cap of 3, only the three earliest are matched, and a warning
        // says so.
        let mut input = vec![W(
            "203.0.113.5",
            "/products/list?id=1'or'1'='1",
            LoggedOnly,
            Some(WafClass::Sqli),
            "CRITICAL",
            false,
            100,
        )];
        for s in 1..=10 {
            input.push(Web(
                "203.0.113.5",
                "GET",
                "/products/list?id=1'or'1'='1",
                200,
                s,
            ));
        }
        let cited = |f: &[Finding]| -> Vec<u64> {
            let mut v: Vec<u64> = f
                .iter()
                .flat_map(|x| &x.evidence)
                .filter(|e| &*e.file == "access.log")
                .map(|e| e.line)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        for parts in [1, 2, 3] {
            let ctx = FinishContext::default();
            let (all, _) = run_states(&input, parts, 2, MAX_WEB_HITS, &ctx);
            assert!(ctx.take_warnings().is_empty());
            assert!(all.iter().any(|f| f.rule == "waf.unblocked_attack"));
            // The nearest request before the record (line 11, at 10 s) is cited.
            assert!(cited(&all).contains(&11), "{:?}", cited(&all));

            let ctx = FinishContext::default();
            let (cut, _) = run_states(&input, parts, 2, 3, &ctx);
            let warnings = ctx.take_warnings();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("the earliest 3 candidate web requests")),
                "{warnings:?}"
            );
            // Only the three earliest requests (lines 2 to 4) can be cited.
            let lines = cited(&cut);
            assert!(!lines.is_empty(), "{parts} parts");
            assert!(
                lines.iter().all(|l| (2..=4).contains(l)),
                "{parts} parts: {lines:?}"
            );
        }
    }
}
