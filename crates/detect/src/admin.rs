//! `admin`: admin-panel compromise — login attempts derived from access logs through the
//! platform profile, joined with login records from other sources (login history, admin app
//! logs), and the findings built on them.
//!
//! Observing keeps only admin-looking requests (they are few next to the shop's traffic):
//! requests under a configured or well-known admin prefix, admin-guess paths, and
//! login-shaped POSTs, encoded in a spool (module `store`) so a state's memory does not grow with
//! them. At finish they are read back and sorted by (time, file, line), the platform and admin
//! prefix are chosen (given, or inferred from where login POSTs go and which routes appear),
//! login outcomes are classified the way the platform behaves (EC-CUBE 3/4 and PrestaShop by
//! the same client's next admin request), and the rules run:
//!
//! - `admin.profile`: info — which platform and prefix were used and why (given or inferred).
//! - `admin.brute_force`: ≥5 failed logins from one IP within 30 min; high at ≥20 in total.
//! - `admin.password_spraying`: one IP failing for ≥5 usernames (high at ≥20).
//! - `admin.credential_stuffing`: one username failing from ≥10 IPs (high at ≥50).
//! - `admin.success_after_failures`: a success from an IP with ≥5 failures, or for a user with
//!   ≥10 failures, in the hour before: critical.
//! - `admin.outside_allowlist`: a successful login or admin page served to an IP outside
//!   `--admin-allow`: high.
//! - `admin.first_seen_ip`: without an allow-list, an IP (IPv6: its /64) active in the admin
//!   after the first third of the logs' admin timeline and not before: medium, raised by other
//!   signals on the same IP.
//! - `admin.session_without_login`: admin pages answered 2xx to an IP with no login in the
//!   session lifetime before (stolen session): high; critical if it used a code-planting route.
//! - `admin.path_discovery`: ≥10 404s on admin guesses, then a hit on the real admin prefix.
//! - `admin.code_planting`, `admin.account_change`, `admin.security_change`,
//!   `admin.payment_change`: admin routes that plant code or change accounts, security or
//!   payment settings (profile data), with who and when: high; medium for a known IP in
//!   business hours; critical when the IP carries another compromise signal.
//! - `admin.off_hours`, `admin.script_agent`: admin activity outside `--business-hours` or by a
//!   script user agent: low, and raise the IP's other findings.
//!
//! Known false positives: shared NAT (many staff behind one IP) inflates per-IP counts; staff
//! whose session began before the logs start are not flagged (the first session lifetime of
//! the logs is not judged); dynamic IPv6 addresses are grouped by /64.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use chrono::Timelike;
use ecir_model::{
    Category, Event, EventDetail, Evidence, Finding, LoginOutcome, Severity, Timestamp,
};
use ecir_profiles::{AdminAction, OutcomeRule, Profile};

use crate::evidence::evidence;

mod store;
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};
use store::{ReqParts, ReqStore};

pub const RULES: &[&str] = &[
    "admin.profile",
    "admin.brute_force",
    "admin.password_spraying",
    "admin.credential_stuffing",
    "admin.success_after_failures",
    "admin.outside_allowlist",
    "admin.first_seen_ip",
    "admin.session_without_login",
    "admin.path_discovery",
    "admin.code_planting",
    "admin.account_change",
    "admin.security_change",
    "admin.payment_change",
    "admin.off_hours",
    "admin.script_agent",
];

/// Most admin requests kept (the earliest by time, file, line are kept beyond it), counted
/// apart for requests answered 404 and the rest: a year of scanners' guesses must not push
/// out the staff's and an intruder's pages. (Only 404s: a login's 401, 403 or 429 and the
/// pages around it are judged together, so they share one cap.)
pub const MAX_REQUESTS: usize = 500_000;
/// Most login records from other sources kept.
pub const MAX_ATTEMPTS: usize = 500_000;
const MAX_TEXT: usize = 2048;
const PLAYBOOK: &str = "admin-takeover";

/// Admin-panel settings from the command line.
#[derive(Clone, Debug, Default)]
pub struct AdminConfig {
    /// `--admin-path`: admin prefixes (`/mgr_x9k2`).
    pub admin_paths: Vec<String>,
    /// `--platform`: a bundled profile name, or the name of `profile`.
    pub platform: Option<String>,
    /// `--profile FILE`, already read.
    pub profile: Option<Profile>,
    /// `--admin-allow`: networks staff use.
    pub allow: Vec<ecir_model::Cidr>,
    /// `--business-hours`: (start, end) in minutes after midnight in `tz`.
    pub business_hours: Option<(u32, u32)>,
    pub tz: Option<chrono_tz::Tz>,
    /// Session lifetime for `admin.session_without_login`, seconds (default 24 h).
    pub session_secs: i64,
}

/// A kept admin-looking request.
#[derive(Clone, Debug)]
struct Req {
    ts: Option<Timestamp>,
    ip: Option<IpAddr>,
    method: Box<str>,
    path: Box<str>,
    query: Box<str>,
    status: u16,
    script_ua: bool,
    ev: Evidence,
}

/// A login record from a non-web source (or derived at finish).
#[derive(Clone, Debug)]
struct Attempt {
    ts: Option<Timestamp>,
    ip: Option<IpAddr>,
    user: Option<String>,
    outcome: LoginOutcome,
    evidence: Vec<Evidence>,
    /// The sources that saw this login (`web`, `login-history`, …), each once.
    sources: Vec<&'static str>,
}

fn key(ts: &Option<Timestamp>, e: &Evidence) -> ReqKey {
    (ts.map(|t| t.utc_ms), e.file.clone(), e.line)
}

/// The order of [`key`], compared in place (no key is built).
fn key_order(
    (at, ae): (&Option<Timestamp>, &Evidence),
    (bt, be): (&Option<Timestamp>, &Evidence),
) -> std::cmp::Ordering {
    at.map(|t| t.utc_ms)
        .cmp(&bt.map(|t| t.utc_ms))
        .then_with(|| ae.file.cmp(&be.file))
        .then(ae.line.cmp(&be.line))
}

fn req_order(a: &Req, b: &Req) -> std::cmp::Ordering {
    key_order((&a.ts, &a.ev), (&b.ts, &b.ev))
}

fn attempt_order(a: &Attempt, b: &Attempt) -> std::cmp::Ordering {
    key_order((&a.ts, &a.evidence[0]), (&b.ts, &b.evidence[0]))
}

/// Items kept in fixed-size chunks: a growing list never holds up to twice its size in
/// spare room, nor copies itself to grow, as one doubling `Vec` does.
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Items per [`Chunked`] chunk.
const CHUNK: usize = 1024;

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, t: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(t),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(t);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    /// Appends `other`'s items (its chunks are taken as they are).
    fn append(&mut self, other: Chunked<T>) {
        self.len += other.len;
        self.chunks.extend(other.chunks);
    }

    /// All items in one `Vec`, freeing each chunk once moved.
    fn into_vec(self) -> Vec<T> {
        let mut v = Vec::with_capacity(self.len);
        for c in self.chunks {
            v.extend(c);
        }
        v
    }

    fn from_vec(v: Vec<T>) -> Self {
        let mut c = Chunked::default();
        for t in v {
            c.push(t);
        }
        c
    }
}

/// State of the admin detector.
pub struct Admin {
    config: Arc<DetectConfig>,
    /// Admin-looking requests, and those answered 404 (see [`MAX_REQUESTS`]).
    reqs: ReqStore,
    not_found: ReqStore,
    attempts: Chunked<Attempt>,
    dropped: u64,
    /// Requests under first path segments that may turn out to be a renamed admin prefix
    /// (inferred only at finish from where login POSTs went), kept until then.
    pending: BTreeMap<Box<str>, Pending>,
}

/// Segments whose requests are held for prefix inference, at most: the ones with the
/// smallest `seg_hash`, a choice that does not depend on the order lines arrive in (so
/// splitting the input across workers changes nothing).
pub const PENDING_SEGMENTS: usize = 64;
/// Requests held per pending segment: the earliest by (time, file, line).
pub const PENDING_PER_SEGMENT: usize = 500;

/// Requests held under one first path segment.
#[derive(Default)]
struct Pending {
    reqs: Vec<Req>,
    /// Requests seen under the segment (kept or not).
    seen: u64,
    /// Once `reqs` was cut to the earliest [`PENDING_PER_SEGMENT`], the key of the last one
    /// kept: `reqs` then always holds that many requests at or before it, so a later request
    /// after it can never be among the earliest and is counted without being built.
    bound: Option<ReqKey>,
}

/// The order of kept requests: (time, file, line).
type ReqKey = (Option<i64>, Arc<str>, u64);

impl Pending {
    /// Sorts and cuts `reqs` to the earliest [`PENDING_PER_SEGMENT`], noting the bound.
    fn cut(&mut self) {
        self.reqs.sort_by(req_order);
        self.reqs.truncate(PENDING_PER_SEGMENT);
        self.bound = match self.reqs.last() {
            Some(r) if self.reqs.len() == PENDING_PER_SEGMENT => Some(key(&r.ts, &r.ev)),
            _ => None,
        };
    }

    /// Whether a request at (`ts`, `file`, `line`) may still be among the earliest kept.
    fn may_keep(&self, ts: Option<i64>, file: &str, line: u64) -> bool {
        self.bound
            .as_ref()
            .is_none_or(|(bt, bf, bl)| (ts, file, line) <= (*bt, &**bf, *bl))
    }
}

/// FNV-1a: a fixed hash, so the kept segments are the same on every run.
fn seg_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A path segment of at most 15 bytes, ASCII-lowercased, as one number (byte `i` in bits
/// `8i..`, the length in the top byte), so that a segment is looked up in the sets below
/// without lower-casing a copy of it; longer segments are in none of them. The form used to
/// build the tables; [`seg_code`] computes the same per event.
const fn seg_code_const(s: &[u8]) -> Option<u128> {
    if s.len() > 15 {
        return None;
    }
    let mut code = (s.len() as u128) << 120;
    let mut i = 0;
    while i < s.len() {
        code |= (s[i].to_ascii_lowercase() as u128) << (8 * i);
        i += 1;
    }
    Some(code)
}

/// [`seg_code_const`] of `hay[start..start + len]`, lower-casing eight bytes at a time; read
/// as one 16-byte word when `hay` has that many bytes from `start` (a path usually has).
fn seg_code_in(hay: &[u8], start: usize, len: usize) -> Option<u128> {
    if len > 15 {
        return None;
    }
    let word = match hay.get(start..start + 16) {
        Some(w) => u128::from_le_bytes(w.try_into().ok()?) & ((1u128 << (8 * len)) - 1),
        None => {
            let mut w = 0u128;
            for (i, &c) in hay.get(start..start + len)?.iter().enumerate() {
                w |= u128::from(c) << (8 * i);
            }
            w
        }
    };
    let lo = lower8(word as u64);
    let hi = lower8((word >> 64) as u64);
    Some(u128::from(lo) | u128::from(hi) << 64 | (len as u128) << 120)
}

/// [`seg_code_in`] of a whole slice.
#[cfg(test)]
fn seg_code(s: &[u8]) -> Option<u128> {
    seg_code_in(s, 0, s.len())
}

/// ASCII-lowercases the eight bytes of `x` (bytes outside `A..=Z` unchanged).
fn lower8(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let a = x & LOW7;
    let ge_a = a + 0x3f3f_3f3f_3f3f_3f3f; // high bit: a >= b'A'
    let gt_z = a + 0x2525_2525_2525_2525; // high bit: a > b'Z'
    let upper = ge_a & !gt_z & !x & HIGH;
    x | upper >> 2
}

/// Slots of a segment table (a power of two, well above the entries of any set).
const SLOTS: usize = 128;

/// The first slot to look at for `code`.
const fn slot(code: u128) -> usize {
    let x = (code as u64) ^ ((code >> 64) as u64);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57) as usize & (SLOTS - 1)
}

/// The [`seg_code_const`]s of `set` (lower-case entries of 1 to 15 bytes) in an open-addressed
/// table: a segment is looked up with one hash and, mostly, one comparison.
const fn seg_table(set: &[&str]) -> [u128; SLOTS] {
    assert!(set.len() < SLOTS / 2);
    let mut out = [0u128; SLOTS];
    let mut i = 0;
    while i < set.len() {
        let code = match seg_code_const(set[i].as_bytes()) {
            Some(c) if !set[i].is_empty() => c,
            _ => panic!("segment empty or longer than 15 bytes"),
        };
        let mut at = slot(code);
        while out[at] != 0 && out[at] != code {
            at = (at + 1) & (SLOTS - 1);
        }
        out[at] = code;
        i += 1;
    }
    out
}

/// Whether the segment of `code` is in `table`.
fn in_table(table: &[u128; SLOTS], code: Option<u128>) -> bool {
    let Some(code) = code else { return false };
    let mut at = slot(code);
    loop {
        match table[at] {
            0 => return false,
            c if c == code => return true,
            _ => at = (at + 1) & (SLOTS - 1),
        }
    }
}

/// The leading segments of a request path, found in one short scan for the per-event checks.
struct Segs<'a> {
    /// How many slashes the path starts with.
    lead: usize,
    /// The path after them.
    t: &'a str,
    /// The first slash in `t`.
    slash1: Option<usize>,
    /// The first segment (`t` up to `slash1`) and its [`seg_code`].
    seg1: &'a str,
    code1: Option<u128>,
}

impl<'a> Segs<'a> {
    fn of(path: &'a str) -> Self {
        let b = path.as_bytes();
        let lead = b.iter().position(|&c| c != b'/').unwrap_or(b.len());
        let t = &path[lead..];
        let slash1 = t.bytes().position(|c| c == b'/');
        let seg1 = &t[..slash1.unwrap_or(t.len())];
        Segs {
            lead,
            t,
            slash1,
            seg1,
            code1: seg_code_in(t.as_bytes(), 0, seg1.len()),
        }
    }

    /// The first path segment of a request that could be under a renamed admin prefix
    /// (`/SEG/below`): a plain directory name (no dot), not a shop front route, at least one
    /// level below.
    fn pending(&self) -> Option<&'a str> {
        let seg = self.seg1;
        let plain = || {
            !seg.is_empty()
                && seg.len() <= 64
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        };
        (self.lead == 1
            && self.slash1.is_some_and(|i| i + 1 < self.t.len())
            && !in_table(&FRONT_TABLE, self.code1)
            && plain())
        .then_some(seg)
    }
}

/// Whether `s` starts with the ASCII-lowercase `prefix`, ignoring ASCII case.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Whether `s` contains the ASCII-lowercase `needle`, ignoring ASCII case.
fn has_ci(s: &str, needle: &str) -> bool {
    s.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn is_script_ua(ua: Option<&str>) -> bool {
    let Some(ua) = ua else { return true };
    let l = ua.to_ascii_lowercase();
    ua.is_empty()
        || ua == "-"
        || [
            "curl/",
            "wget/",
            "python-requests",
            "python-urllib",
            "go-http-client",
            "libwww-perl",
            "java/",
            "okhttp",
            "headlesschrome",
            "phantomjs",
            "hydra",
            "sqlmap",
            "nikto",
            "wpscan",
            "httpclient",
            "aiohttp",
            "node-fetch",
            "axios/",
            "scrapy",
            "zgrab",
        ]
        .iter()
        .any(|s| l.contains(s))
}

const GUESS_SEGMENTS: &[&str] = &[
    "admin",
    "administrator",
    "manager",
    "backend",
    "backoffice",
    "wp-admin",
    "cms",
    "control",
    "controlpanel",
    "cpanel",
    "adminpanel",
    "admin_area",
    "shop_admin",
    "ec_admin",
    "eccube_admin",
    "mgr",
    "management",
    "staff",
    "panel",
    "dashboard",
    "login",
    "install",
];

static GUESS_TABLE: [u128; SLOTS] = seg_table(GUESS_SEGMENTS);

/// Last segments of a two-level path kept as the login pages of a possible renamed prefix.
const LOGIN_PAGES: &[&str] = &["login", "login_check", "index.php", "logout", "home.php"];
static LOGIN_TABLE: [u128; SLOTS] = seg_table(LOGIN_PAGES);

/// Shop-front first segments whose roots are not worth keeping as possible admin roots.
const FRONT_SEGMENTS: &[&str] = &[
    "cart",
    "products",
    "product",
    "mypage",
    "shopping",
    "contact",
    "entry",
    "help",
    "user_data",
    "html",
    "forgot",
    "block",
    "wp-content",
    "wp-includes",
    "wp-json",
    "static",
    "media",
    "pub",
    "images",
    "img",
    "css",
    "js",
    "assets",
    "upload",
    "uploads",
    "checkout",
    "customer",
    "catalog",
    "category",
    "search",
    "news",
    "blog",
    "feed",
    "api",
    "rest",
    "favicon.ico",
    "robots.txt",
];
static FRONT_TABLE: [u128; SLOTS] = seg_table(FRONT_SEGMENTS);

impl Admin {
    pub fn new(config: Arc<DetectConfig>) -> Self {
        Admin {
            config,
            reqs: ReqStore::new(),
            not_found: ReqStore::new(),
            attempts: Chunked::default(),
            dropped: 0,
            pending: BTreeMap::new(),
        }
    }

    /// Whether an access-log request is admin-looking and kept. Called for every web event:
    /// reads the first segments in one short scan and compares ASCII case-insensitively in
    /// place, which is what comparing the lower-cased path did.
    fn wanted(&self, method: &str, path: &str, query: &str, segs: &Segs<'_>) -> bool {
        let cfg = &self.config.admin;
        if cfg.admin_paths.iter().any(|p| Profile::under(p, path)) {
            return true;
        }
        let Segs {
            t, slash1, seg1, ..
        } = *segs;
        if in_table(&GUESS_TABLE, segs.code1) || starts_with_ci(seg1, "admin") {
            return true;
        }
        if path.eq_ignore_ascii_case("/wp-login.php")
            || path.eq_ignore_ascii_case("/xmlrpc.php")
            || starts_with_ci(path, "/index.php/admin")
        {
            return true;
        }
        if starts_with_ci(path, "/rest/") && has_ci(path, "/integration/admin/token") {
            return true;
        }
        // The depth is counted without leading and trailing slashes: `t` up to `end`.
        let tb = t.as_bytes();
        let mut end = tb.len();
        while end > 0 && tb[end - 1] == b'/' {
            end -= 1;
        }
        match slash1 {
            Some(i) if i < end => {
                let rest = &t[i + 1..];
                let slash2 = rest.bytes().position(|c| c == b'/');
                let seg2 = &rest[..slash2.unwrap_or(rest.len())];
                if seg2.eq_ignore_ascii_case("admin") {
                    return true; // Magento `/<frontName>/admin/...`
                }
                // A renamed admin prefix is not known while observing: keep its login pages
                // (two levels) and its root (one level), what the login outcome rule needs;
                // the rest needs `--admin-path`.
                // Shop-front areas (`/mypage/login`, `/shopping/login`) are customers'.
                if slash2.is_none_or(|j| i + 1 + j >= end)
                    && !in_table(&FRONT_TABLE, segs.code1)
                    && in_table(&LOGIN_TABLE, seg_code_in(tb, i + 1, end - i - 1))
                {
                    return true;
                }
            }
            _ => {
                if !seg1.is_empty() && !seg1.contains('.') && !in_table(&FRONT_TABLE, segs.code1) {
                    return true;
                }
            }
        }
        self.posted_login(method, path, query)
    }

    /// Whether a POST goes where a profile's login route implies a renamed admin prefix.
    fn posted_login(&self, method: &str, path: &str, query: &str) -> bool {
        method.eq_ignore_ascii_case("POST")
            && profiles_iter(&self.config.admin)
                .any(|p| p.implied_prefix(method, path, query).is_some())
    }

    /// Counts a request under its first segment and says whether it is to be built and kept:
    /// the [`PENDING_SEGMENTS`] segments of smallest hash are held, with the earliest
    /// [`PENDING_PER_SEGMENT`] requests of each (see [`Admin::keep`]).
    fn admit(&mut self, seg: &str, ts: Option<i64>, file: &str, line: u64) -> bool {
        if !self.pending.contains_key(seg) {
            if self.pending.len() >= PENDING_SEGMENTS {
                let h = seg_hash(seg);
                let worst = self
                    .pending
                    .keys()
                    .map(|k| (seg_hash(k), k))
                    .max()
                    .map(|(wh, w)| (wh, w.clone()));
                match worst {
                    Some((wh, w)) if (wh, &*w) > (h, seg) => {
                        self.pending.remove(&w);
                    }
                    _ => return false,
                }
            }
            self.pending.insert(seg.into(), Pending::default());
        }
        match self.pending.get_mut(seg) {
            Some(p) => {
                p.seen += 1;
                p.may_keep(ts, file, line)
            }
            None => false,
        }
    }

    /// Keeps an admitted request under its segment.
    fn keep(&mut self, seg: &str, r: Req) {
        if let Some(p) = self.pending.get_mut(seg) {
            p.reqs.push(r);
            if p.reqs.len() > PENDING_PER_SEGMENT * 2 {
                p.cut();
            }
        }
    }

    /// Holds a request under its first segment ([`Admin::admit`] then [`Admin::keep`]).
    #[cfg(test)]
    fn hold(&mut self, seg: &str, r: Req) {
        let (ts, file, line) = key(&r.ts, &r.ev);
        if self.admit(seg, ts, &file, line) {
            self.keep(seg, r);
        }
    }

    fn merge_pending(&mut self, other: BTreeMap<Box<str>, Pending>) {
        for (seg, p) in other {
            let e = self.pending.entry(seg).or_default();
            e.seen += p.seen;
            e.reqs.extend(p.reqs);
        }
        // Keep the segments of smallest hash, and the earliest requests of each.
        if self.pending.len() > PENDING_SEGMENTS {
            let mut keys: Vec<(u64, Box<str>)> = self
                .pending
                .keys()
                .map(|k| (seg_hash(k), k.clone()))
                .collect();
            keys.sort();
            for (_, k) in keys.into_iter().skip(PENDING_SEGMENTS) {
                self.pending.remove(&k);
            }
        }
        for p in self.pending.values_mut() {
            p.cut();
        }
    }

    fn compact(&mut self) {
        if self.attempts.len() > MAX_ATTEMPTS {
            let mut attempts = std::mem::take(&mut self.attempts).into_vec();
            attempts.sort_by(attempt_order);
            self.dropped += (attempts.len() - MAX_ATTEMPTS) as u64;
            attempts.truncate(MAX_ATTEMPTS);
            self.attempts = Chunked::from_vec(attempts);
        }
    }
}

fn bundled_profiles() -> &'static [Profile] {
    static BUNDLED: std::sync::OnceLock<Vec<Profile>> = std::sync::OnceLock::new();
    BUNDLED.get_or_init(ecir_profiles::bundled)
}

/// The user's profile (if any) then the bundled ones, without copying them (per-event use).
fn profiles_iter(cfg: &AdminConfig) -> impl Iterator<Item = &Profile> {
    cfg.profile.iter().chain(bundled_profiles().iter())
}

fn profiles_for(cfg: &AdminConfig) -> Vec<Profile> {
    profiles_iter(cfg).cloned().collect()
}

fn ev_text(origin: &Origin<'_>, ts: Option<Timestamp>, weight: u32) -> Evidence {
    let raw = &origin.raw[..origin.raw.len().min(MAX_TEXT)];
    evidence(
        &Origin {
            file: origin.file,
            line: origin.line,
            raw,
        },
        ts,
        weight,
    )
}

impl Admin {
    /// A login record from another source.
    #[inline(never)]
    fn observe_login(
        &mut self,
        ev: &Event<'_>,
        origin: &Origin<'_>,
        user: Option<&str>,
        outcome: LoginOutcome,
    ) {
        let source = match ev.source {
            Some(s) => s.as_str(),
            None => "admin-login",
        };
        self.attempts.push(Attempt {
            ts: ev.ts,
            ip: ev.client_ip,
            user: user.map(|u| u.chars().take(128).collect()),
            outcome,
            evidence: vec![ev_text(origin, ev.ts, 90)],
            sources: vec![source],
        });
        if self.attempts.len() > MAX_ATTEMPTS * 2 {
            self.compact();
        }
    }

    /// Keeps an admin-looking request, or holds it under `held` (its first segment), once it is
    /// known to be kept: rare next to the shop's traffic, so out of the per-event path.
    #[inline(never)]
    fn keep_request(
        &mut self,
        ev: &Event<'_>,
        origin: &Origin<'_>,
        (method, path, query): (&str, &str, &str),
        held: Option<&str>,
    ) {
        // A held request is built only if it can be among the earliest kept.
        if let Some(seg) = held {
            let ts = ev.ts.map(|t| t.utc_ms);
            if !self.admit(seg, ts, origin.file, origin.line) {
                return;
            }
        }
        fn cut(s: &str, n: usize) -> &str {
            let mut e = n.min(s.len());
            while !s.is_char_boundary(e) {
                e -= 1;
            }
            &s[..e]
        }
        let parts = ReqParts {
            ts: ev.ts,
            ip: ev.client_ip,
            method: cut(method, 16),
            path: cut(path, 512),
            query: cut(query, 512),
            status: ev.status.unwrap_or(0),
            script_ua: is_script_ua(ev.user_agent.as_deref()),
        };
        match held {
            Some(seg) => {
                let r = Req {
                    ts: parts.ts,
                    ip: parts.ip,
                    method: parts.method.into(),
                    path: parts.path.into(),
                    query: parts.query.into(),
                    status: parts.status,
                    script_ua: parts.script_ua,
                    ev: ev_text(origin, ev.ts, 50),
                };
                self.keep(seg, r);
            }
            None if parts.status == 404 => self.not_found.push(&parts, origin),
            None => self.reqs.push(&parts, origin),
        }
    }
}

impl DetectorState for Admin {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        match &ev.detail {
            EventDetail::Login { user, outcome } => {
                self.observe_login(ev, origin, user.as_deref(), *outcome);
            }
            EventDetail::Web => {
                let (Some(method), Some(_)) = (ev.method.as_deref(), ev.target.as_deref()) else {
                    return;
                };
                let (path, query) = (ev.path(), ev.query().unwrap_or(""));
                let status = ev.status.unwrap_or(0);
                let segs = Segs::of(path);
                let held = if self.wanted(method, path, query, &segs) {
                    None
                } else if self.config.admin.admin_paths.is_empty() && (200..400).contains(&status) {
                    match segs.pending() {
                        Some(seg) => Some(seg),
                        None => return,
                    }
                } else {
                    return;
                };
                self.keep_request(ev, origin, (method, path, query), held);
            }
            _ => {}
        }
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let other: Admin = downcast(other);
        self.reqs.merge(other.reqs);
        self.not_found.merge(other.not_found);
        self.attempts.append(other.attempts);
        self.dropped += other.dropped;
        self.merge_pending(other.pending);
        self.compact();
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        self.compact();
        let cfg = self.config.admin.clone();
        let (mut reqs, reqs_dropped) =
            std::mem::replace(&mut self.reqs, ReqStore::new()).finish(ctx);
        let (not_found, not_found_dropped) =
            std::mem::replace(&mut self.not_found, ReqStore::new()).finish(ctx);
        reqs.reserve_exact(not_found.len());
        reqs.extend(not_found);
        self.dropped += reqs_dropped + not_found_dropped;
        reqs.sort_by(req_order);
        let mut other = std::mem::take(&mut self.attempts).into_vec();
        other.sort_by(attempt_order);
        let pending = std::mem::take(&mut self.pending);
        self.merge_pending(pending);
        let pending = std::mem::take(&mut self.pending);
        analyse(&cfg, reqs, other, self.dropped, pending, ctx)
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// The chosen platform and prefixes, with why.
struct Panel {
    profile: Profile,
    prefixes: Vec<String>,
    why: String,
    /// The platform or the prefixes were chosen here, not given.
    inferred: bool,
    /// The platform was inferred from the logs.
    platform_inferred: bool,
}

fn choose_panel(cfg: &AdminConfig, reqs: &[Req]) -> Option<Panel> {
    let profiles = profiles_for(cfg);
    let shapes = shapes(reqs);
    let named = cfg.platform.as_deref().and_then(|n| {
        profiles
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(n))
            .cloned()
            .or_else(|| ecir_profiles::by_name(n))
    });
    let given = named.clone().or_else(|| cfg.profile.clone());
    if let Some(p) = given {
        let inferred = cfg.admin_paths.is_empty();
        let (prefixes, why) = if cfg.admin_paths.is_empty() {
            let best = best_prefix(&p, &shapes).map(|(s, pre)| (s, vec![pre]));
            match best {
                Some((_, pre)) => (pre, "platform given; admin prefix inferred from the login POSTs and admin routes seen".to_string()),
                None => (p.admin_prefixes.clone(), "platform given; default admin prefix of the platform".to_string()),
            }
        } else {
            (
                cfg.admin_paths.clone(),
                "platform and admin prefix given on the command line".into(),
            )
        };
        return Some(Panel {
            profile: p,
            prefixes,
            why,
            inferred,
            platform_inferred: false,
        });
    }
    // Infer: the profile and prefix with the best score.
    let mut best: Option<(u64, usize, String, String)> = None;
    for (i, p) in profiles.iter().enumerate() {
        if let Some((score, prefix)) = best_prefix(p, &shapes) {
            let why_prefix = if !cfg.admin_paths.is_empty() {
                if !cfg.admin_paths.contains(&prefix) {
                    continue;
                }
                "given with --admin-path".to_string()
            } else {
                format!("inferred: {prefix} is where login POSTs go")
            };
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, i, prefix, why_prefix));
            }
        }
    }
    let (score, i, prefix, why_prefix) = best?;
    let profile = profiles[i].clone();
    let prefixes = if cfg.admin_paths.is_empty() {
        vec![prefix]
    } else {
        cfg.admin_paths.clone()
    };
    Some(Panel {
        why: format!(
            "platform {} inferred from the access log (score {score}: login POSTs of its shape and routes typical of it); admin prefix {why_prefix}",
            profile.display
        ),
        profile,
        prefixes,
        inferred: true,
        platform_inferred: true,
    })
}

/// Requests of one (method, path, query), for scoring prefixes: how many, and whether one was
/// answered 2xx/3xx.
#[derive(Clone, Copy)]
struct Shape<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    count: u64,
    ok: bool,
}

/// The distinct request shapes of `reqs` (many kept requests repeat: brute force, scanners).
fn shapes(reqs: &[Req]) -> Vec<Shape<'_>> {
    let mut by: BTreeMap<(&str, &str, &str), (u64, bool)> = BTreeMap::new();
    for r in reqs {
        let e = by.entry((&r.method, &r.path, &r.query)).or_default();
        e.0 += 1;
        e.1 |= (200..400).contains(&r.status);
    }
    by.into_iter()
        .map(|((method, path, query), (count, ok))| Shape {
            method,
            path,
            query,
            count,
            ok,
        })
        .collect()
}

/// The prefix of `p` that the requests support best, with its score: 3 per login POST of the
/// profile's shape, 1 per distinct marker route seen (answered 2xx/3xx).
///
/// A pattern starting with `~` matches only requests at or below the prefix, so each
/// candidate is scored against its own run of the shapes sorted by path, plus what the
/// patterns without `~` match anywhere (counted once for all candidates): scanners posting
/// to thousands of invented `/xyz/login` paths make thousands of candidates, and scoring
/// each against every shape would take time quadratic in their number.
fn best_prefix(p: &Profile, shapes: &[Shape<'_>]) -> Option<(u64, String)> {
    let mut cands: BTreeSet<String> = p.admin_prefixes.iter().cloned().collect();
    for r in shapes {
        if let Some(pre) = p.implied_prefix(r.method, r.path, r.query) {
            cands.insert(pre);
        }
    }
    let relative = |pattern: &str| pattern.starts_with('~');
    // What the patterns without `~` give, whatever the prefix.
    let absolute_login = |r: &Shape<'_>| {
        p.login
            .routes
            .iter()
            .any(|route| !relative(&route.path) && route_matches_shape(route, r))
    };
    let mut absolute_score = 0u64;
    let mut absolute_markers = BTreeSet::new();
    for r in shapes {
        if absolute_login(r) {
            absolute_score += 3 * r.count;
        }
        for (i, m) in p.markers.iter().enumerate() {
            if !relative(m) && r.ok && ecir_profiles::pattern_matches(m, "", r.path, r.query) {
                absolute_markers.insert(i);
            }
        }
    }
    let mut by_path: Vec<&Shape<'_>> = shapes.iter().collect();
    by_path.sort_by(|a, b| a.path.cmp(b.path));
    let mut best: Option<(u64, String)> = None;
    for pre in cands {
        // The shapes at `pre` and below it: two runs of `by_path`.
        let at = by_path.partition_point(|r| r.path < pre.as_str());
        let at_end = at + by_path[at..].partition_point(|r| r.path == pre.as_str());
        let below = format!("{pre}/");
        let below_start = by_path.partition_point(|r| r.path < below.as_str());
        let below_end =
            below_start + by_path[below_start..].partition_point(|r| r.path.starts_with(&below));
        let mut score = absolute_score;
        let mut bare_score = 0u64;
        let mut markers = absolute_markers.clone();
        let mut marked_here = false;
        for r in by_path[at..at_end]
            .iter()
            .chain(&by_path[below_start..below_end])
        {
            // What a `~` route adds (a shape an absolute route matches is counted already).
            if !absolute_login(r) {
                match p.login_route(&pre, r.method, r.path, r.query) {
                    Some(route) if bare_login_route(&route.path) => bare_score += 3 * r.count,
                    Some(_) => score += 3 * r.count,
                    None => {}
                }
            }
            for (i, m) in p.markers.iter().enumerate() {
                // A relative marker already in `markers` was matched under `pre` before.
                if relative(m)
                    && r.ok
                    && !markers.contains(&i)
                    && ecir_profiles::pattern_matches(m, &pre, r.path, r.query)
                {
                    marked_here = true;
                    markers.insert(i);
                }
            }
        }
        if counts_bare_logins(p, &pre, marked_here) {
            score += bare_score;
        }
        score += markers.len() as u64;
        if score > 0 && best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, pre));
        }
    }
    best
}

/// Whether a login route is the prefix itself (Magento's `~/`, `~/admin`: the admin form
/// posts to the panel's own address). Any API endpoint receiving POSTs has that shape
/// (`POST /getApplications`), so at a prefix that is not the platform's default these
/// routes only count where the panel is seen too (see [`counts_bare_logins`]).
fn bare_login_route(pattern: &str) -> bool {
    matches!(pattern, "~" | "~/" | "~/admin" | "~/admin/")
}

/// Whether POSTs matching a [bare](bare_login_route) login route count towards `prefix`: at
/// one of the platform's default prefixes always; at an invented one only when a route
/// typical of the platform's panel (a marker) was answered under it.
fn counts_bare_logins(p: &Profile, prefix: &str, marked_here: bool) -> bool {
    marked_here || p.admin_prefixes.iter().any(|d| d == prefix)
}

/// Whether a login route matches a shape (its methods and pattern; the prefix only matters
/// to patterns starting with `~`, which callers handle apart).
fn route_matches_shape(route: &ecir_profiles::Route, r: &Shape<'_>) -> bool {
    (route.methods.is_empty()
        || route
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(r.method)))
        && ecir_profiles::pattern_matches(&route.path, "", r.path, r.query)
}

fn net_key(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => *v4,
    }
}

struct Group {
    count: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    ips: BTreeSet<IpAddr>,
    users: BTreeSet<String>,
    paths: BTreeSet<String>,
    evidence: Vec<Evidence>,
}

impl Group {
    fn new() -> Self {
        Group {
            count: 0,
            first: None,
            last: None,
            ips: BTreeSet::new(),
            users: BTreeSet::new(),
            paths: BTreeSet::new(),
            evidence: Vec::new(),
        }
    }
    fn add(
        &mut self,
        ts: Option<Timestamp>,
        ip: Option<IpAddr>,
        user: Option<&str>,
        ev: &[Evidence],
    ) {
        self.count += 1;
        self.span(ts);
        // The first MAX_IPS distinct IPs and 50 users in the order added (the counts in the
        // title and summary say how many there were).
        if let Some(ip) = ip {
            if self.ips.len() < ecir_model::finding::MAX_IPS {
                self.ips.insert(ip);
            }
        }
        if let Some(u) = user {
            if self.users.len() < 50 && !self.users.contains(u) {
                self.users.insert(u.to_string());
            }
        }
        if self.evidence.len() < 200 {
            self.evidence.extend(ev.iter().cloned());
        }
    }
    /// Widens the time span to `ts`.
    fn span(&mut self, ts: Option<Timestamp>) {
        if let Some(t) = ts {
            if self.first.is_none_or(|f| t < f) {
                self.first = Some(t);
            }
            if self.last.is_none_or(|l| t > l) {
                self.last = Some(t);
            }
        }
    }

    /// Whether adding more can change only the count and the time span: the IP, user and
    /// evidence lists are full.
    fn saturated(&self) -> bool {
        self.ips.len() >= ecir_model::finding::MAX_IPS
            && self.users.len() >= 50
            && self.evidence.len() >= 200
    }

    fn finding(self, rule: &str, severity: Severity, title: String, summary: String) -> Finding {
        let cat = Category::AdminCompromise;
        let mut f = Finding::new(rule, cat, severity);
        f.title = title;
        f.summary = summary;
        f.first_seen = self.first;
        f.last_seen = self.last;
        f.ips = self.ips.iter().map(|i| i.to_string()).collect();
        f.users = self.users.into_iter().collect();
        f.paths = self.paths.into_iter().take(20).collect();
        f.count = self.count;
        f.evidence = self.evidence;
        f.normalize_evidence();
        if severity >= Severity::Low && rule != "admin.profile" {
            f.playbook = Some(PLAYBOOK.into());
        }
        f
    }
}

/// The failures among `idx` (indexes into `attempts`, ascending, so in time order) before
/// attempt `i` at `t` and at most `window` ms before it. A timed attempt counts only timed
/// failures; an untimed one (sorted first) all the untimed failures before it.
fn failures_before<'a>(
    attempts: &[Attempt],
    idx: &'a [usize],
    i: usize,
    t: i64,
    window: i64,
) -> &'a [usize] {
    let idx = &idx[..idx.partition_point(|&j| j < i)];
    if attempts[i].ts.is_none() {
        return idx;
    }
    let start = idx.partition_point(|&j| {
        attempts[j]
            .ts
            .is_none_or(|b| t.saturating_sub(b.utc_ms) > window)
    });
    &idx[start..]
}

/// Most earlier failures a success-after-failures finding reads for its IP, user and
/// evidence lists.
const LIST_SCAN: usize = 2_000;

/// Two ascending index lists merged, each index once.
struct MergedIndexes<'a> {
    a: &'a [usize],
    b: &'a [usize],
}

impl<'a> MergedIndexes<'a> {
    fn new(a: &'a [usize], b: &'a [usize]) -> Self {
        MergedIndexes { a, b }
    }
}

impl Iterator for MergedIndexes<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let next = match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        if self.a.first() == Some(&next) {
            self.a = &self.a[1..];
        }
        if self.b.first() == Some(&next) {
            self.b = &self.b[1..];
        }
        Some(next)
    }
}

fn ms(ts: &Option<Timestamp>) -> i64 {
    ts.map_or(i64::MIN, |t| t.utc_ms)
}

fn is_admin_page(panel: &Panel, r: &Req) -> bool {
    (200..300).contains(&r.status)
        && panel.prefixes.iter().any(|p| {
            Profile::under(p, &r.path) && !panel.profile.is_public(p, &r.method, &r.path, &r.query)
        })
}

fn action_of(panel: &Panel, r: &Req) -> Option<AdminAction> {
    panel.prefixes.iter().find_map(|p| {
        panel
            .profile
            .classify_admin_route(p, &r.method, &r.path, &r.query)
    })
}

/// [`action_of`] each request, computed once per distinct (method, path, query): kept requests
/// repeat (customers' login pages, brute force, scanners).
fn actions_of(panel: &Panel, reqs: &[Req]) -> Vec<Option<AdminAction>> {
    let mut memo: BTreeMap<(&str, &str, &str), Option<AdminAction>> = BTreeMap::new();
    reqs.iter()
        .map(|r| {
            *memo
                .entry((&r.method, &r.path, &r.query))
                .or_insert_with(|| action_of(panel, r))
        })
        .collect()
}

fn derive_attempts(panel: &Panel, reqs: &[Req]) -> Vec<Attempt> {
    let mut by_ip: BTreeMap<Option<IpAddr>, Vec<usize>> = BTreeMap::new();
    for (i, r) in reqs.iter().enumerate() {
        by_ip.entry(r.ip).or_default().push(i);
    }
    let p = &panel.profile;
    // The login requests first, so the attempts are allocated once (a brute force has
    // hundreds of thousands).
    let logins: Vec<_> = reqs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            panel.prefixes.iter().find_map(|pre| {
                p.login_route(pre, &r.method, &r.path, &r.query)
                    .map(|rt| (i, r, pre, rt))
            })
        })
        .collect();
    let mut out = Vec::with_capacity(logins.len());
    for (i, r, pre, route) in logins {
        let mut evidence = vec![Evidence {
            weight: 90,
            ..r.ev.clone()
        }];
        let succ = route
            .success_status
            .as_ref()
            .unwrap_or(&p.login.success_status);
        let fail = route
            .failure_status
            .as_ref()
            .unwrap_or(&p.login.failure_status);
        let outcome = match p.login.outcome {
            OutcomeRule::Status => {
                if succ.contains(&r.status) {
                    LoginOutcome::Success
                } else if fail.contains(&r.status) || matches!(r.status, 401 | 403 | 429) {
                    LoginOutcome::Failure
                } else {
                    LoginOutcome::Unknown
                }
            }
            OutcomeRule::NextRequest => {
                if matches!(r.status, 401 | 403 | 429) || (r.status == 200 && !succ.contains(&200))
                {
                    LoginOutcome::Failure
                } else {
                    let list = &by_ip[&r.ip];
                    let pos = list.binary_search(&i).unwrap_or(0);
                    let next = list[pos + 1..].iter().map(|&j| &reqs[j]).find(|n| {
                        Profile::under(pre, &n.path)
                            || p.login_route(pre, &n.method, &n.path, &n.query).is_some()
                    });
                    match next {
                        Some(n) if ms(&n.ts) - ms(&r.ts) <= 60_000 => {
                            evidence.push(Evidence {
                                weight: 80,
                                ..n.ev.clone()
                            });
                            if p.login_route(pre, &n.method, &n.path, &n.query).is_some()
                                || Profile::any_matches(
                                    &p.login.failure_next,
                                    pre,
                                    &n.path,
                                    &n.query,
                                )
                            {
                                LoginOutcome::Failure
                            } else if Profile::any_matches(
                                &p.login.success_next,
                                pre,
                                &n.path,
                                &n.query,
                            ) && (200..400).contains(&n.status)
                            {
                                LoginOutcome::Success
                            } else {
                                LoginOutcome::Unknown
                            }
                        }
                        _ => LoginOutcome::Unknown,
                    }
                }
            }
        };
        out.push(Attempt {
            ts: r.ts,
            ip: r.ip,
            user: None,
            outcome,
            evidence,
            sources: vec!["web"],
        });
    }
    out
}

/// Joins login records of other sources with the access-log attempts: the same login (same
/// IP, compatible outcome, within 10 s) counts once, citing every source that saw it — the
/// access log, the app log and the login history alike. A record joins the earliest
/// compatible attempt not yet holding its source; records of other sources with no access-log
/// counterpart join each other the same way. Both lists are in time order, so each record
/// looks only at the attempts of its 20-second window.
fn join(web: Vec<Attempt>, other: Vec<Attempt>) -> Vec<Attempt> {
    const WINDOW_MS: i64 = 10_000;
    fn compatible(w: &Attempt, a: &Attempt, t: i64) -> bool {
        w.ip.is_some()
            && w.ip == a.ip
            && a.ts.is_some()
            && (ms(&w.ts) - t).abs() <= WINDOW_MS
            && (w.outcome == a.outcome || w.outcome == LoginOutcome::Unknown)
            && !w.sources.iter().any(|s| a.sources.contains(s))
            && (w.user.is_none() || a.user.is_none() || w.user == a.user)
    }
    /// The earliest compatible attempt of `list` among `idx`, the indexes of the attempts
    /// from `a`'s IP in list order (only those can be compatible).
    fn find(list: &[Attempt], idx: Option<&Vec<usize>>, a: &Attempt, t: i64) -> Option<usize> {
        let idx = idx?;
        let start = idx.partition_point(|&i| ms(&list[i].ts) < t.saturating_sub(WINDOW_MS));
        idx[start..]
            .iter()
            .copied()
            .take_while(|&i| ms(&list[i].ts) <= t.saturating_add(WINDOW_MS))
            .find(|&i| compatible(&list[i], a, t))
    }
    fn absorb(w: &mut Attempt, a: Attempt) {
        w.user = a.user.or(w.user.take());
        w.outcome = a.outcome;
        w.evidence.extend(a.evidence);
        for s in a.sources {
            if !w.sources.contains(&s) {
                w.sources.push(s);
            }
        }
    }
    let mut web = web;
    web.sort_by(attempt_order);
    let mut web_by_ip: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for (i, w) in web.iter().enumerate() {
        if let Some(ip) = w.ip {
            web_by_ip.entry(ip).or_default().push(i);
        }
    }
    let mut extra: Vec<Attempt> = Vec::new();
    let mut extra_by_ip: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for a in other {
        let t = ms(&a.ts);
        let ip = a.ip;
        if let Some(i) = find(&web, ip.and_then(|ip| web_by_ip.get(&ip)), &a, t) {
            absorb(&mut web[i], a);
        } else if let Some(i) = find(&extra, ip.and_then(|ip| extra_by_ip.get(&ip)), &a, t) {
            absorb(&mut extra[i], a);
        } else {
            // `other` is in time order, so `extra` stays sorted.
            if let Some(ip) = ip {
                extra_by_ip.entry(ip).or_default().push(extra.len());
            }
            extra.push(a);
        }
    }
    web.extend(extra);
    web.sort_by(attempt_order);
    web
}

/// Pushes the `admin.first_seen_ip` findings, after every other per-IP signal (stolen session,
/// discovery) is known, so that those raise them.
fn emit_first_seen(
    out: &mut Vec<Finding>,
    flagged: &BTreeMap<IpAddr, BTreeSet<&'static str>>,
    first_seen: Vec<(IpAddr, Group, usize)>,
) {
    for (ip, g, known) in first_seen {
        let other = flagged
            .get(&ip)
            .map(|s| s.iter().filter(|x| **x != "first-seen").count())
            .unwrap_or(0);
        let sev = if other > 0 {
            Severity::High
        } else {
            Severity::Medium
        };
        let n = g.count;
        out.push(g.finding(
            "admin.first_seen_ip",
            sev,
            format!("Admin panel used from a first-seen IP {ip}"),
            format!("{n} successful login(s) or admin page(s) from {ip}, which (nor its /64 for IPv6) was not among the {known} admin IP(s) of the first third of the logs.{}",
                if other > 0 { " Raised: the IP also shows other signals." } else { "" }),
        ));
    }
}

fn minutes_of_day(cfg: &AdminConfig, ts: &Timestamp) -> u32 {
    let dt = ts.to_datetime();
    match cfg.tz {
        Some(tz) => {
            let l = dt.with_timezone(&tz);
            l.hour() * 60 + l.minute()
        }
        None => dt.hour() * 60 + dt.minute(),
    }
}

fn outside_hours(cfg: &AdminConfig, ts: &Option<Timestamp>) -> bool {
    let (Some((start, end)), Some(ts)) = (cfg.business_hours, ts) else {
        return false;
    };
    let m = minutes_of_day(cfg, ts);
    if start <= end {
        !(start..end).contains(&m)
    } else {
        !(m >= start || m < end)
    }
}

fn analyse(
    cfg: &AdminConfig,
    mut reqs: Vec<Req>,
    other: Vec<Attempt>,
    dropped: u64,
    mut pending: BTreeMap<Box<str>, Pending>,
    ctx: &FinishContext,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let panel = choose_panel(cfg, &reqs);
    if let Some(p) = panel.as_ref().filter(|p| p.inferred) {
        ctx.set_inferred_panel(crate::InferredPanel {
            platform: p.platform_inferred.then(|| p.profile.name.clone()),
            admin_paths: cfg.admin_paths.is_empty().then(|| p.prefixes.clone()),
        });
    }
    // The requests held under the chosen (renamed) prefix join the analysis.
    let mut held = 0u64;
    let mut held_lost = 0u64;
    if let Some(panel) = &panel {
        for p in &panel.prefixes {
            let seg = p.trim_start_matches('/');
            if let Some(h) = pending.remove(seg) {
                held += h.reqs.len() as u64;
                held_lost += h.seen - h.reqs.len() as u64;
                reqs.extend(h.reqs);
            }
        }
        if held > 0 {
            reqs.sort_by(req_order);
        }
    }
    let web_attempts = panel
        .as_ref()
        .map_or(Vec::new(), |p| derive_attempts(p, &reqs));
    let attempts = join(web_attempts, other);
    if panel.is_none() && attempts.is_empty() {
        return out;
    }
    // What each kept request does under the panel, by index.
    let actions = panel.as_ref().map_or(Vec::new(), |p| actions_of(p, &reqs));
    if let Some(panel) = &panel {
        let mut g = Group::new();
        g.count = reqs.len() as u64;
        // The span of the admin requests analysed; the first and last of them cited.
        for r in &reqs {
            g.span(r.ts);
        }
        g.evidence.extend(reqs.first().map(|r| r.ev.clone()));
        g.evidence.extend(reqs.last().map(|r| r.ev.clone()));
        let mut f = g.finding(
            "admin.profile",
            Severity::Info,
            format!(
                "Admin panel analysed as {} at {}{}",
                panel.profile.display,
                panel.prefixes.join(", "),
                if panel.inferred { " (inferred)" } else { "" }
            ),
            format!(
                "{}. {} admin-looking request(s) kept, {} login attempt(s) classified.{}{} Override with --platform, --admin-path or --profile if this is wrong.",
                panel.why,
                reqs.len(),
                attempts.len(),
                if held_lost > 0 {
                    format!(" The prefix is not a well-known one: the earliest {held} of its pages were kept while reading and {held_lost} later ones were not; rerun with --admin-path to analyse them all.")
                } else if held > 0 {
                    format!(" The prefix is not a well-known one: its {held} page(s) were held while reading and analysed once it was inferred.")
                } else {
                    String::new()
                },
                if dropped > 0 {
                    format!(" {dropped} admin record(s) beyond the analysis limit were not analysed (the earliest were kept, counting requests answered 404 apart from the others).")
                } else {
                    String::new()
                }
            ),
        );
        f.paths = panel.prefixes.clone();
        out.push(f);
    }

    let hour = 3_600_000i64;
    // Per-IP flags that raise other findings.
    let mut flagged: BTreeMap<IpAddr, BTreeSet<&'static str>> = BTreeMap::new();
    let mut first_seen: Vec<(IpAddr, Group, usize)> = Vec::new();
    fn flag(m: &mut BTreeMap<IpAddr, BTreeSet<&'static str>>, ip: IpAddr, what: &'static str) {
        m.entry(ip).or_default().insert(what);
    }

    // Failures per IP / per user.
    let mut fail_ip: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    let mut fail_user: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in attempts.iter().enumerate() {
        if a.outcome == LoginOutcome::Failure {
            if let Some(ip) = a.ip {
                fail_ip.entry(ip).or_default().push(i);
            }
            if let Some(u) = &a.user {
                fail_user.entry(u.clone()).or_default().push(i);
            }
        }
    }
    let max_in_window = |idx: &[usize], win: i64| -> usize {
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..idx.len() {
            while ms(&attempts[idx[hi]].ts) - ms(&attempts[idx[lo]].ts) > win {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    };
    for (ip, idx) in &fail_ip {
        let peak = max_in_window(idx, hour / 2);
        if peak >= 5 {
            let mut g = Group::new();
            for &i in idx {
                let a = &attempts[i];
                g.add(a.ts, a.ip, a.user.as_deref(), &a.evidence);
            }
            let sev = if idx.len() >= 20 {
                Severity::High
            } else {
                Severity::Medium
            };
            let n = idx.len();
            flag(&mut flagged, *ip, "brute-force");
            out.push(g.finding(
                "admin.brute_force",
                sev,
                format!("Admin login brute force from {ip} ({n} failures)"),
                format!("{n} failed admin logins from {ip}, up to {peak} within 30 minutes. No success from this IP is implied by this finding alone; see admin.success_after_failures."),
            ));
        }
        let users: BTreeSet<&str> = idx
            .iter()
            .filter_map(|&i| attempts[i].user.as_deref())
            .collect();
        if users.len() >= 5 {
            let mut g = Group::new();
            for &i in idx {
                let a = &attempts[i];
                g.add(a.ts, a.ip, a.user.as_deref(), &a.evidence);
            }
            let sev = if users.len() >= 20 {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(g.finding(
                "admin.password_spraying",
                sev,
                format!("Password spraying from {ip} ({} usernames)", users.len()),
                format!(
                    "{ip} failed to log in to the admin panel as {} different usernames.",
                    users.len()
                ),
            ));
        }
    }
    for (user, idx) in &fail_user {
        let ips: BTreeSet<IpAddr> = idx.iter().filter_map(|&i| attempts[i].ip).collect();
        if ips.len() >= 10 {
            let mut g = Group::new();
            for &i in idx {
                let a = &attempts[i];
                g.add(a.ts, a.ip, a.user.as_deref(), &a.evidence);
            }
            let sev = if ips.len() >= 50 {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(g.finding(
                "admin.credential_stuffing",
                sev,
                format!("Credential stuffing against admin user '{user}' from {} IPs", ips.len()),
                format!("Logins as '{user}' failed from {} different IPs: a distributed guess against one account.", ips.len()),
            ));
        }
    }

    // Success after failures.
    let mut reported: BTreeSet<(Option<IpAddr>, Option<String>)> = BTreeSet::new();
    for (i, a) in attempts.iter().enumerate() {
        if a.outcome != LoginOutcome::Success {
            continue;
        }
        let t = ms(&a.ts);
        let by_ip =
            a.ip.and_then(|ip| fail_ip.get(&ip))
                .map_or(&[][..], |idx| failures_before(&attempts, idx, i, t, hour));
        let by_user = a
            .user
            .as_ref()
            .and_then(|u| fail_user.get(u))
            .map_or(&[][..], |idx| failures_before(&attempts, idx, i, t, hour));
        if by_ip.len() < 5 && by_user.len() < 10 {
            continue;
        }
        if !reported.insert((a.ip, a.user.clone())) {
            continue;
        }
        let mut g = Group::new();
        g.add(a.ts, a.ip, a.user.as_deref(), &a.evidence);
        // The failures of the IP and of the user, once each, in attempt order, named in the
        // lists up to LIST_SCAN of them (a stuffing campaign has one success per bot, each
        // after all the others' failures); the count and the span cover them all, from
        // their number and the ends of the time-ordered lists.
        let both = by_ip
            .iter()
            .filter(|j| by_user.binary_search(j).is_ok())
            .count();
        let prior = by_ip.len() + by_user.len() - both;
        for (n, j) in MergedIndexes::new(by_ip, by_user).enumerate() {
            let b = &attempts[j];
            g.add(b.ts, b.ip, b.user.as_deref(), &b.evidence);
            if g.saturated() || n + 1 >= LIST_SCAN {
                break;
            }
        }
        g.count = 1 + prior as u64;
        for j in [by_ip, by_user].into_iter().flat_map(|s| s.last()) {
            g.span(attempts[*j].ts);
        }
        for e in g.evidence.iter_mut().take(a.evidence.len()) {
            e.weight = 100;
        }
        if let Some(ip) = a.ip {
            flag(&mut flagged, ip, "success-after-failures");
        }
        let who = a.user.clone().unwrap_or_else(|| "an unknown user".into());
        let from = a.ip.map_or("an unknown IP".to_string(), |i| i.to_string());
        out.push(g.finding(
            "admin.success_after_failures",
            Severity::Critical,
            format!("Admin login succeeded after {prior} failures ({who} from {from})"),
            format!(
                "A successful admin login as {who} from {from} followed {} failed attempts in the hour before ({} from that IP, {} for that user). Treat the account as taken over: lock it, end its sessions and review everything done after this login.",
                prior,
                by_ip.len(),
                by_user.len()
            ),
        ));
    }

    // Admin activity per IP: successful logins and admin pages.
    // (time, evidence, is a login) per IP: the evidence is the kept request's or attempt's.
    type Activity<'a> = Vec<(Option<Timestamp>, &'a Evidence, bool)>;
    let mut active: BTreeMap<IpAddr, Activity<'_>> = BTreeMap::new();
    for a in &attempts {
        if a.outcome == LoginOutcome::Success {
            if let Some(ip) = a.ip {
                active
                    .entry(ip)
                    .or_default()
                    .push((a.ts, &a.evidence[0], true));
            }
        }
    }
    if let Some(panel) = &panel {
        for r in &reqs {
            if is_admin_page(panel, r) {
                if let Some(ip) = r.ip {
                    active.entry(ip).or_default().push((r.ts, &r.ev, false));
                }
            }
        }
    }
    for v in active.values_mut() {
        v.sort_by(|(at, ae, _), (bt, be, _)| key_order((at, ae), (bt, be)));
    }
    let last_user: BTreeMap<IpAddr, String> = attempts
        .iter()
        .filter(|a| a.outcome == LoginOutcome::Success)
        .filter_map(|a| Some((a.ip?, a.user.clone()?)))
        .collect();

    // Off-hours and script agents.
    if let Some(panel) = &panel {
        let mut off: BTreeMap<IpAddr, Group> = BTreeMap::new();
        let mut script: BTreeMap<IpAddr, Group> = BTreeMap::new();
        for (r, action) in reqs.iter().zip(&actions) {
            let Some(ip) = r.ip else { continue };
            let acting = is_admin_page(panel, r)
                || (r.method.eq_ignore_ascii_case("POST")
                    && action.is_some_and(|a| a != AdminAction::Login)
                    && (200..400).contains(&r.status));
            if !acting {
                continue;
            }
            let user = last_user.get(&ip).map(|s| s.as_str());
            if outside_hours(cfg, &r.ts) {
                off.entry(ip).or_insert_with(Group::new).add(
                    r.ts,
                    Some(ip),
                    user,
                    std::slice::from_ref(&r.ev),
                );
            }
            if r.script_ua {
                script.entry(ip).or_insert_with(Group::new).add(
                    r.ts,
                    Some(ip),
                    user,
                    std::slice::from_ref(&r.ev),
                );
            }
        }
        for (ip, g) in off {
            flag(&mut flagged, ip, "off-hours");
            let n = g.count;
            out.push(g.finding(
                "admin.off_hours",
                Severity::Low,
                format!("Admin activity outside business hours from {ip}"),
                format!("{n} admin page(s) or action(s) from {ip} outside the business hours given. Low on its own; it raises this IP's other findings."),
            ));
        }
        for (ip, g) in script {
            flag(&mut flagged, ip, "script-agent");
            let n = g.count;
            out.push(g.finding(
                "admin.script_agent",
                Severity::Low,
                format!("Admin activity by a script user agent from {ip}"),
                format!("{n} admin page(s) or action(s) from {ip} with a script or empty user agent (curl, python-requests, …). Staff use browsers; it raises this IP's other findings."),
            ));
        }
    }

    // Allow-list or first-seen.
    let all_ts: Vec<i64> = reqs
        .iter()
        .map(|r| ms(&r.ts))
        .chain(attempts.iter().map(|a| ms(&a.ts)))
        .filter(|&t| t != i64::MIN)
        .collect();
    let (t0, t1) = (all_ts.iter().min().copied(), all_ts.iter().max().copied());
    if !cfg.allow.is_empty() {
        for (ip, v) in &active {
            if cfg.allow.iter().any(|c| c.contains(ip)) {
                continue;
            }
            let mut g = Group::new();
            for (t, e, _) in v {
                g.add(
                    *t,
                    Some(*ip),
                    last_user.get(ip).map(|s| s.as_str()),
                    std::slice::from_ref(e),
                );
            }
            flag(&mut flagged, *ip, "outside-allowlist");
            let n = g.count;
            out.push(g.finding(
                "admin.outside_allowlist",
                Severity::High,
                format!("Admin panel used from {ip}, outside the admin allow-list"),
                format!("{n} successful login(s) or admin page(s) served to {ip}, which is in none of the --admin-allow networks. Either the allow-list is incomplete or someone else holds an admin session."),
            ));
        }
    } else if let (Some(t0), Some(t1)) = (t0, t1) {
        let baseline_end = t0 + (t1 - t0) / 3;
        if t1 - t0 >= 24 * hour {
            let known: BTreeSet<IpAddr> = active
                .iter()
                .filter(|(_, v)| v.iter().any(|(t, _, _)| ms(t) <= baseline_end))
                .map(|(ip, _)| net_key(ip))
                .collect();
            if !known.is_empty() {
                let mut groups: BTreeMap<IpAddr, Group> = BTreeMap::new();
                for (ip, v) in &active {
                    if known.contains(&net_key(ip)) {
                        continue;
                    }
                    let g = groups.entry(*ip).or_insert_with(Group::new);
                    for (t, e, _) in v {
                        g.add(
                            *t,
                            Some(*ip),
                            last_user.get(ip).map(|s| s.as_str()),
                            std::slice::from_ref(e),
                        );
                    }
                }
                for (ip, g) in groups {
                    flag(&mut flagged, ip, "first-seen");
                    first_seen.push((ip, g, known.len()));
                }
            }
        }
    }

    // Sessions without a login, and discovery.
    if let Some(panel) = &panel {
        let session = if cfg.session_secs > 0 {
            cfg.session_secs * 1000
        } else {
            24 * hour
        };
        let logins: BTreeMap<IpAddr, Vec<i64>> = attempts
            .iter()
            .filter(|a| a.outcome != LoginOutcome::Failure)
            .fold(BTreeMap::new(), |mut m, a| {
                if let Some(ip) = a.ip {
                    m.entry(net_key(&ip))
                        .or_insert_with(Vec::new)
                        .push(ms(&a.ts));
                }
                m
            });
        let mut stolen: BTreeMap<IpAddr, (Group, bool)> = BTreeMap::new();
        if let Some(t0) = t0 {
            for (r, action) in reqs.iter().zip(&actions) {
                let Some(ip) = r.ip else { continue };
                let t = ms(&r.ts);
                let planting = action
                    .is_some_and(|a| a != AdminAction::Login && a != AdminAction::LogAccess)
                    && (200..400).contains(&r.status)
                    && stolen.contains_key(&ip);
                if !(is_admin_page(panel, r) || planting) || t - t0 < session {
                    continue;
                }
                // Logins are in time order: the latest at or before `t` decides.
                let had = logins.get(&net_key(&ip)).is_some_and(|v| {
                    let k = v.partition_point(|&l| l <= t);
                    k > 0 && t.saturating_sub(v[k - 1]) <= session
                });
                if had {
                    continue;
                }
                let e = stolen.entry(ip).or_insert_with(|| (Group::new(), false));
                e.0.add(r.ts, Some(ip), None, std::slice::from_ref(&r.ev));
                e.0.paths.insert(r.path.to_string());
                e.1 |= planting;
            }
        }
        for (ip, (g, planting)) in stolen {
            flag(&mut flagged, ip, "session-without-login");
            let n = g.count;
            out.push(g.finding(
                "admin.session_without_login",
                if planting { Severity::Critical } else { Severity::High },
                format!("Admin pages served to {ip} with no login before (stolen session?)"),
                format!("{n} admin page(s) answered 2xx to {ip}, which has no admin login in the {} h before. This is the trace of a stolen admin session (e.g. stored XSS fired when staff opened an order).{}", session / hour,
                    if planting { " The IP then used a code-planting or account route." } else { "" }),
            ));
        }
        // Discovery: many 404 admin guesses, then the real prefix.
        let mut guesses: BTreeMap<IpAddr, Vec<&Req>> = BTreeMap::new();
        for r in &reqs {
            let Some(ip) = r.ip else { continue };
            let real = panel.prefixes.iter().any(|p| Profile::under(p, &r.path));
            if !real && r.status == 404 {
                guesses.entry(ip).or_default().push(r);
            }
        }
        guesses.retain(|_, gs| gs.len() >= 10);
        // The guessers' answered requests under the real prefix, in request order: one pass,
        // not one per guesser (a scanner campaign has thousands).
        let mut answered: BTreeMap<IpAddr, Vec<&Req>> = BTreeMap::new();
        for r in &reqs {
            if let Some(ip) = r.ip {
                if (200..400).contains(&r.status)
                    && guesses.contains_key(&ip)
                    && panel.prefixes.iter().any(|p| Profile::under(p, &r.path))
                {
                    answered.entry(ip).or_default().push(r);
                }
            }
        }
        for (ip, gs) in guesses {
            let first = ms(&gs[0].ts);
            let hits: Vec<&Req> = answered
                .get(&ip)
                .into_iter()
                .flatten()
                .filter(|r| ms(&r.ts) > first && ms(&r.ts) - first <= 24 * hour)
                .copied()
                .collect();
            if hits.is_empty() {
                continue;
            }
            let mut g = Group::new();
            for r in hits.iter().take(10) {
                g.add(
                    r.ts,
                    Some(ip),
                    None,
                    &[Evidence {
                        weight: 90,
                        ..r.ev.clone()
                    }],
                );
            }
            for r in gs.iter().take(10) {
                g.add(r.ts, Some(ip), None, std::slice::from_ref(&r.ev));
            }
            g.count = (gs.len() + hits.len()) as u64;
            let n = gs.len();
            // Reaching the login page is discovery; being served admin pages (or logging in)
            // afterwards means the guesser got in.
            let served = hits.iter().any(|r| {
                (200..300).contains(&r.status)
                    && is_admin_page(panel, r)
                    && !matches!(action_of(panel, r), Some(AdminAction::Login))
            }) || logins
                .get(&net_key(&ip))
                .is_some_and(|v| v.iter().any(|&l| l > first));
            if served {
                flag(&mut flagged, ip, "discovery-then-admin");
            }
            out.push(g.finding(
                "admin.path_discovery",
                if served { Severity::High } else { Severity::Medium },
                format!("Admin path discovered by {ip}"),
                format!("{ip} requested {n} admin-guess paths answered 404, then reached the real admin prefix ({} answered request(s)).{}", hits.len(),
                    if served { " Raised: the admin was then served to it (a login or admin pages)." } else { "" }),
            ));
        }

        emit_first_seen(&mut out, &flagged, std::mem::take(&mut first_seen));

        // Admin actions.
        let known_baseline: BTreeSet<IpAddr> = match (t0, t1) {
            (Some(t0), Some(t1)) => active
                .iter()
                .filter(|(_, v)| v.iter().any(|(t, _, _)| ms(t) <= t0 + (t1 - t0) / 3))
                .map(|(ip, _)| net_key(ip))
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut acts: BTreeMap<(AdminAction, Option<IpAddr>), Group> = BTreeMap::new();
        for (r, action) in reqs.iter().zip(&actions) {
            let Some(a) = *action else {
                continue;
            };
            if matches!(a, AdminAction::Login | AdminAction::LogAccess)
                || !(200..400).contains(&r.status)
            {
                continue;
            }
            let user = r.ip.and_then(|ip| last_user.get(&ip)).map(|s| s.as_str());
            let g = acts.entry((a, r.ip)).or_insert_with(Group::new);
            g.add(
                r.ts,
                r.ip,
                user,
                &[Evidence {
                    weight: 90,
                    ..r.ev.clone()
                }],
            );
            g.paths.insert(r.path.to_string());
        }
        for ((a, ip), g) in acts {
            let (rule, what) = match a {
                AdminAction::CodePlanting => ("admin.code_planting", "code-planting admin action (template, page, block, CSS/JS, file manager, plugin)"),
                AdminAction::AccountChange => ("admin.account_change", "admin account created or changed"),
                AdminAction::SecurityChange => ("admin.security_change", "security setting changed"),
                _ => ("admin.payment_change", "payment setting changed"),
            };
            let signals: Vec<&str> = ip
                .and_then(|i| flagged.get(&i))
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            let strong = signals
                .iter()
                .any(|s| !matches!(*s, "off-hours" | "script-agent"));
            let known = cfg.allow.iter().any(|c| ip.is_some_and(|i| c.contains(&i)))
                || ip.is_some_and(|i| known_baseline.contains(&net_key(&i)));
            let base = if known {
                Severity::Medium
            } else {
                Severity::High
            };
            let sev = if strong {
                Severity::Critical
            } else if !signals.is_empty() {
                base.raised()
            } else {
                base
            };
            let from = ip.map_or("an unknown IP".to_string(), |i| i.to_string());
            let n = g.count;
            let who = if g.users.is_empty() {
                String::new()
            } else {
                format!(
                    " by {}",
                    g.users.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            out.push(g.finding(
                rule,
                sev,
                format!("{}: {n} request(s) from {from}{who}", capitalise(what)),
                format!(
                    "{n} accepted request(s) to admin routes of this kind from {from}{who}.{} Check what was changed (templates, blocks, files, accounts, settings) against a known-good copy.",
                    if signals.is_empty() { String::new() } else { format!(" The IP also shows: {}.", signals.join(", ")) }
                ),
            ));
        }
    }
    // Without a panel (login records only) the first-seen findings are still due.
    emit_first_seen(&mut out, &flagged, first_seen);
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DetectorSet;
    use ecir_model::SourceKind;

    /// The scoring of every candidate against every shape, as `best_prefix` did before it
    /// scored each candidate against its own run of shapes.
    fn best_prefix_by_every_shape(p: &Profile, shapes: &[Shape<'_>]) -> Option<(u64, String)> {
        let mut cands: BTreeSet<String> = p.admin_prefixes.iter().cloned().collect();
        for r in shapes {
            if let Some(pre) = p.implied_prefix(r.method, r.path, r.query) {
                cands.insert(pre);
            }
        }
        let mut best: Option<(u64, String)> = None;
        for pre in cands {
            let mut score = 0u64;
            let mut bare_score = 0u64;
            let mut markers = BTreeSet::new();
            let mut marked_here = false;
            for r in shapes {
                match p.login_route(&pre, r.method, r.path, r.query) {
                    Some(route) if bare_login_route(&route.path) => bare_score += 3 * r.count,
                    Some(_) => score += 3 * r.count,
                    None => {}
                }
                for (i, m) in p.markers.iter().enumerate() {
                    if r.ok && ecir_profiles::pattern_matches(m, &pre, r.path, r.query) {
                        marked_here |= m.starts_with('~');
                        markers.insert(i);
                    }
                }
            }
            if counts_bare_logins(p, &pre, marked_here) {
                score += bare_score;
            }
            score += markers.len() as u64;
            if score > 0 && best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, pre));
            }
        }
        best
    }

    #[test]
    fn prefix_scores_per_run_of_shapes_equal_scores_against_every_shape() {
        // Login POSTs under default, renamed and invented prefixes (a prefix that is the
        // start of another: /adm, /adm1, /adm10), absolute routes (WordPress, Magento REST),
        // marker routes answered and refused, paths that are not under any prefix.
        let paths = [
            "/admin/login",
            "/admin",
            "/admin/",
            "/admin/order",
            "/admin/product/1",
            "/admin/setting/shop",
            "/adm/login",
            "/adm1/login",
            "/adm10/login",
            "/adm10/login_check",
            "/adm1",
            "/adm-x/login",
            "/mgr_x9k2/login",
            "/mgr_x9k2/order",
            "/mgr_x9k2/customer",
            "/mgr_x9k2/content/news",
            "/wp-login.php",
            "/wp-admin/index.php",
            "/rest/V1/integration/admin/token",
            "/rest/default/V1/integration/admin/token",
            "/backend/admin/index/index",
            "/backend/sales/order",
            "/index.php/admin/admin/dashboard/index",
            "/admin_x/home.php",
            "/admin_x/order/list.php",
            "/products/list",
            "/",
            "/install/index.php",
            "/mgr_x9k2",
            "/getApplications",
            "/backend_q7",
            "/backend_q7/admin/dashboard/index",
        ];
        let queries = ["", "mode=login", "route=x"];
        let mut shapes: Vec<Shape<'_>> = Vec::new();
        let mut n = 0u64;
        for path in paths {
            for method in ["POST", "GET"] {
                for query in queries {
                    n += 1;
                    shapes.push(Shape {
                        method,
                        path,
                        query,
                        count: 1 + n % 5,
                        ok: !n.is_multiple_of(3),
                    });
                }
            }
        }
        // Every prefix of the list of shapes, and the whole list in other orders.
        for p in ecir_profiles::bundled() {
            for k in 0..=shapes.len() {
                let part = &shapes[..k];
                assert_eq!(
                    best_prefix(&p, part),
                    best_prefix_by_every_shape(&p, part),
                    "{} with {k} shapes",
                    p.name
                );
            }
            let mut rev: Vec<Shape<'_>> = shapes.iter().rev().map(|r| Shape { ..*r }).collect();
            assert_eq!(best_prefix(&p, &rev), best_prefix_by_every_shape(&p, &rev));
            rev.retain(|r| r.path.starts_with("/mgr") || r.path.starts_with("/adm1"));
            assert_eq!(best_prefix(&p, &rev), best_prefix_by_every_shape(&p, &rev));
        }
    }

    #[test]
    fn posts_to_an_api_endpoint_are_no_renamed_magento_admin() {
        // A CloudFront/API log: thousands of `POST /getApplications` answered 200, nothing
        // else of Magento's panel. Magento's login form posts to the panel's own address, so
        // the POSTs have its shape, but no admin page was ever served there.
        let shape = |method, path, count, ok| Shape {
            method,
            path,
            query: "",
            count,
            ok,
        };
        let magento = ecir_profiles::by_name("magento2").unwrap();
        let api = [
            shape("POST", "/getApplications", 4000, true),
            shape("GET", "/status", 50, true),
        ];
        assert_eq!(best_prefix(&magento, &api), None);
        // The same POSTs where the panel is seen under the prefix: a renamed admin.
        let mut panel = api.to_vec();
        panel.push(shape(
            "GET",
            "/getApplications/admin/dashboard/index",
            3,
            true,
        ));
        assert_eq!(
            best_prefix(&magento, &panel).map(|(_, p)| p),
            Some("/getApplications".to_string())
        );
        // At the default prefix the POSTs count alone, as before.
        let default = [shape("POST", "/admin", 30, false)];
        assert_eq!(
            best_prefix(&magento, &default).map(|(_, p)| p),
            Some("/admin".to_string())
        );
        // A specific login route (EC-CUBE 4's `~/login`) still finds a renamed prefix that
        // is only brute-forced, never entered.
        let eccube = ecir_profiles::by_name("eccube4").unwrap();
        let forced = [shape("POST", "/mgr_x9k2/login", 40, false)];
        assert_eq!(
            best_prefix(&eccube, &forced).map(|(_, p)| p),
            Some("/mgr_x9k2".to_string())
        );
    }

    /// Runs the detector set over lines `secs|ip|method|target|status[|ua]` (access log) or
    /// `secs|ip|LOGIN|user|success|failure` (a login-history record), split over `parts`
    /// merged states, and returns the admin findings.
    fn run_cfg(lines: &[String], admin: AdminConfig, parts: usize) -> Vec<Finding> {
        let cfg = Arc::new(DetectConfig {
            admin,
            ..Default::default()
        });
        let web: Arc<str> = Arc::from("access.log");
        let hist: Arc<str> = Arc::from("login_history.csv");
        let app: Arc<str> = Arc::from("admin-2024-03-12.log");
        let mut sets: Vec<DetectorSet> = (0..parts).map(|_| DetectorSet::new(&cfg)).collect();
        for (i, l) in lines.iter().enumerate() {
            let f: Vec<&str> = l.split('|').collect();
            let ts = Some(Timestamp::from_secs(
                1_700_000_000 + f[0].parse::<i64>().unwrap(),
                9 * 3600,
            ));
            let (ev, file) = if f[2] == "LOGIN" || f[2] == "APPLOGIN" {
                let outcome = if f[4] == "success" {
                    LoginOutcome::Success
                } else {
                    LoginOutcome::Failure
                };
                (
                    Event {
                        ts,
                        source: Some(if f[2] == "LOGIN" {
                            SourceKind::AdminLogin
                        } else {
                            SourceKind::App
                        }),
                        client_ip: f[1].parse().ok(),
                        detail: EventDetail::Login {
                            user: Some(f[3]).filter(|u| !u.is_empty()).map(Into::into),
                            outcome,
                        },
                        ..Default::default()
                    },
                    if f[2] == "LOGIN" { &hist } else { &app },
                )
            } else {
                (
                    Event {
                        ts,
                        source: Some(SourceKind::Web),
                        client_ip: f[1].parse().ok(),
                        method: Some(f[2].into()),
                        target: Some(f[3].into()),
                        status: f[4].parse().ok(),
                        user_agent: Some(f.get(5).copied().unwrap_or("Mozilla/5.0").into()),
                        ..Default::default()
                    },
                    &web,
                )
            };
            let origin = Origin {
                file,
                line: i as u64 + 1,
                raw: l.as_bytes(),
            };
            sets[i % parts].observe(&ev, &origin);
        }
        let mut it = sets.into_iter();
        let mut first = it.next().unwrap();
        for s in it {
            first.merge(s);
        }
        let mut f: Vec<Finding> = first
            .finish(&FinishContext::new(100))
            .into_iter()
            .filter(|f| f.category == Category::AdminCompromise)
            .collect();
        f.sort_by(|a, b| (a.rule.as_str(), &a.ips).cmp(&(b.rule.as_str(), &b.ips)));
        f
    }

    fn run(lines: &[String]) -> Vec<Finding> {
        let a = run_cfg(lines, AdminConfig::default(), 1);
        let b = run_cfg(lines, AdminConfig::default(), 3);
        assert_eq!(a, b, "findings depend on how the lines were split");
        a
    }

    /// A compact view for snapshots.
    fn view(f: &[Finding]) -> Vec<serde_json::Value> {
        f.iter()
            .map(|x| {
                serde_json::json!({
                    "rule": x.rule, "severity": x.severity, "title": x.title, "ips": x.ips,
                    "users": x.users, "count": x.count, "playbook": x.playbook,
                    "evidence": x.evidence.iter().map(|e| format!("{}:{}", e.file, e.line)).collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    fn rules(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|x| (x.rule.as_str(), x.severity)).collect()
    }

    const DAY: i64 = 86_400;

    /// Staff from the office on three days, logging in normally to a renamed EC-CUBE 4 admin.
    fn office_days(prefix: &str) -> Vec<String> {
        let mut v = Vec::new();
        for d in 0..3 {
            let t = d * DAY + 3600;
            v.push(format!("{t}|192.0.2.10|GET|{prefix}/login|200"));
            v.push(format!("{}|192.0.2.10|POST|{prefix}/login|302", t + 5));
            v.push(format!("{}|192.0.2.10|GET|{prefix}/|200", t + 6));
            v.push(format!("{}|192.0.2.10|GET|{prefix}/order|200", t + 30));
        }
        v
    }

    #[test]
    fn eccube4_brute_force_then_success_is_critical() {
        let mut lines = office_days("/mgr_x9k2");
        let t = 2 * DAY + 7200;
        for i in 0..6 {
            lines.push(format!(
                "{}|203.0.113.7|POST|/mgr_x9k2/login|302|python-requests/2.31",
                t + i * 10
            ));
            lines.push(format!(
                "{}|203.0.113.7|GET|/mgr_x9k2/login|200|python-requests/2.31",
                t + i * 10 + 1
            ));
        }
        lines.push(format!(
            "{}|203.0.113.7|POST|/mgr_x9k2/login|302|python-requests/2.31",
            t + 100
        ));
        lines.push(format!(
            "{}|203.0.113.7|GET|/mgr_x9k2/|200|python-requests/2.31",
            t + 101
        ));
        let f = run(&lines);
        let r = rules(&f);
        assert!(
            r.contains(&("admin.brute_force", Severity::Medium)),
            "{r:?}"
        );
        assert!(
            r.contains(&("admin.success_after_failures", Severity::Critical)),
            "{r:?}"
        );
        assert!(
            r.contains(&("admin.first_seen_ip", Severity::High)),
            "{r:?}"
        );
        let p = f.iter().find(|x| x.rule == "admin.profile").unwrap();
        assert!(
            p.title.contains("EC-CUBE 4") && p.title.contains("/mgr_x9k2"),
            "{}",
            p.title
        );
        // The office IP is in no finding except the profile.
        assert!(f.iter().all(|x| !x.ips.contains(&"192.0.2.10".to_string())));
        assert!(f
            .iter()
            .filter(|x| x.rule != "admin.profile")
            .all(|x| x.playbook.as_deref() == Some("admin-takeover")));
        insta::assert_json_snapshot!("eccube4_bruteforce_success", view(&f));
    }

    #[test]
    fn staff_mistype_in_office_hours_is_not_a_finding() {
        let mut lines = office_days("/admin");
        let t = 2 * DAY + 3600 + 600; // 10:10 JST-ish window below
        lines.push(format!("{t}|192.0.2.10|POST|/admin/login|302"));
        lines.push(format!("{}|192.0.2.10|GET|/admin/login|200", t + 1));
        lines.push(format!("{}|192.0.2.10|POST|/admin/login|302", t + 20));
        lines.push(format!("{}|192.0.2.10|GET|/admin/|200", t + 21));
        let cfg = AdminConfig {
            business_hours: Some((0, 23 * 60 + 59)),
            tz: Some(chrono_tz::Asia::Tokyo),
            ..Default::default()
        };
        let f = run_cfg(&lines, cfg, 2);
        assert_eq!(rules(&f), vec![("admin.profile", Severity::Info)], "{f:#?}");
    }

    #[test]
    fn thousand_failures_without_success_is_high_not_critical() {
        let lines: Vec<String> = (0..1000)
            .map(|i| format!("{}|198.51.100.9|POST|/wp-login.php|200|Mozilla/5.0", i * 3))
            .collect();
        let f = run(&lines);
        assert_eq!(
            rules(&f),
            vec![
                ("admin.brute_force", Severity::High),
                ("admin.profile", Severity::Info)
            ]
        );
        assert_eq!(f[0].count, 1000);
        assert!(f[1].title.contains("WordPress"));
    }

    #[test]
    fn stolen_session_then_code_planting_is_critical() {
        let mut lines = office_days("/admin");
        let t = 2 * DAY + 20_000;
        lines.push(format!("{t}|203.0.113.66|GET|/admin/order/12/edit|200"));
        lines.push(format!(
            "{}|203.0.113.66|POST|/admin/content/block/3/edit|302",
            t + 40
        ));
        let f = run(&lines);
        let r = rules(&f);
        assert!(
            r.contains(&("admin.session_without_login", Severity::Critical)),
            "{r:?}"
        );
        assert!(
            r.contains(&("admin.code_planting", Severity::Critical)),
            "{r:?}"
        );
        // Scored after the stolen session, the first-seen finding is raised by it.
        assert!(
            r.contains(&("admin.first_seen_ip", Severity::High)),
            "{r:?}"
        );
        insta::assert_json_snapshot!("stolen_session", view(&f));
        // The same block edit by the office IP after its login is medium (known IP), not a takeover.
        let mut lines = office_days("/admin");
        lines.push(format!(
            "{}|192.0.2.10|POST|/admin/content/block/3/edit|302",
            2 * DAY + 3700
        ));
        let f = run(&lines);
        assert_eq!(
            rules(&f),
            vec![
                ("admin.code_planting", Severity::Medium),
                ("admin.profile", Severity::Info)
            ]
        );
    }

    #[test]
    fn allow_list() {
        let mut lines = office_days("/admin");
        lines.push(format!("{}|203.0.113.5|POST|/admin/login|302", DAY + 10));
        lines.push(format!("{}|203.0.113.5|GET|/admin/|200", DAY + 11));
        let cfg = AdminConfig {
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            ..Default::default()
        };
        let f = run_cfg(&lines, cfg.clone(), 1);
        let out: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "admin.outside_allowlist")
            .collect();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ips, vec!["203.0.113.5"]);
        assert_eq!(out[0].severity, Severity::High);
        // Everyone inside: nothing.
        let f = run_cfg(&office_days("/admin"), cfg, 1);
        assert!(f.iter().all(|x| x.rule == "admin.profile"));
    }

    #[test]
    fn login_history_joins_access_log_and_names_users() {
        let mut lines = Vec::new();
        for i in 0..5 {
            lines.push(format!("{}|203.0.113.7|POST|/admin/login|302", i * 10));
            lines.push(format!("{}|203.0.113.7|GET|/admin/login|200", i * 10 + 1));
            lines.push(format!("{}|203.0.113.7|LOGIN|admin|failure", i * 10));
        }
        lines.push("100|203.0.113.7|POST|/admin/login|302".into());
        lines.push("100|203.0.113.7|LOGIN|admin|success".into());
        lines.push("101|203.0.113.7|GET|/admin/|200".into());
        let f = run(&lines);
        let s = f
            .iter()
            .find(|x| x.rule == "admin.success_after_failures")
            .expect("success after failures");
        assert_eq!(s.users, vec!["admin"]);
        let files: BTreeSet<&str> = s.evidence.iter().map(|e| &*e.file).collect();
        assert_eq!(files.len(), 2, "cites both sources");
        let b = f.iter().find(|x| x.rule == "admin.brute_force").unwrap();
        assert_eq!(b.count, 5, "joined records count once");
        insta::assert_json_snapshot!("login_history_join", view(&f));
    }

    #[test]
    fn one_login_in_three_sources_counts_once_citing_each() {
        let mut lines = Vec::new();
        for i in 0..6 {
            let t = i * 20;
            lines.push(format!("{t}|203.0.113.7|POST|/admin/login|302"));
            lines.push(format!("{}|203.0.113.7|GET|/admin/login|200", t + 1));
            lines.push(format!("{t}|203.0.113.7|APPLOGIN||failure"));
            lines.push(format!("{}|203.0.113.7|LOGIN|admin|failure", t + 1));
        }
        // Without the access log, the app log and the history still join each other.
        for i in 0..6 {
            let t = 5000 + i * 20;
            lines.push(format!("{t}|198.51.100.9|APPLOGIN||failure"));
            lines.push(format!("{t}|198.51.100.9|LOGIN|shop|failure"));
        }
        let f = run(&lines);
        let b: Vec<&Finding> = f.iter().filter(|x| x.rule == "admin.brute_force").collect();
        assert_eq!(b.len(), 2, "{f:#?}");
        for x in &b {
            assert_eq!(x.count, 6, "each login once: {x:#?}");
        }
        let first = b
            .iter()
            .find(|x| x.ips == vec!["203.0.113.7".to_string()])
            .unwrap();
        let files: BTreeSet<&str> = first.evidence.iter().map(|e| &*e.file).collect();
        assert_eq!(
            files,
            ["access.log", "admin-2024-03-12.log", "login_history.csv"]
                .into_iter()
                .collect()
        );
        assert_eq!(first.users, vec!["admin"]);
        // A different IP never joins.
        let second = b
            .iter()
            .find(|x| x.ips == vec!["198.51.100.9".to_string()])
            .unwrap();
        assert_eq!(second.users, vec!["shop"]);
    }

    #[test]
    fn renamed_prefix_is_inferred_then_its_pages_are_analysed() {
        // No --admin-path: the prefix is inferred from the login POSTs, and the pages under it
        // seen before (and after) are analysed: the stolen session and the block edit.
        let mut lines = office_days("/mgr_x9k2");
        let t = 2 * DAY + 20_000;
        lines.insert(
            0,
            format!("{}|203.0.113.66|GET|/mgr_x9k2/order/12/edit|200", -10),
        );
        lines.push(format!("{t}|203.0.113.66|GET|/mgr_x9k2/order/12/edit|200"));
        lines.push(format!(
            "{}|203.0.113.66|POST|/mgr_x9k2/content/block/3/edit|302",
            t + 40
        ));
        // Shop pages are not held.
        lines.push(format!(
            "{}|198.51.100.5|GET|/products/detail/1|200",
            t + 50
        ));
        let f = run(&lines);
        let r = rules(&f);
        assert!(
            r.contains(&("admin.session_without_login", Severity::Critical)),
            "{r:?}"
        );
        assert!(
            r.contains(&("admin.code_planting", Severity::Critical)),
            "{r:?}"
        );
        let p = f.iter().find(|x| x.rule == "admin.profile").unwrap();
        assert!(p.summary.contains("held while reading"), "{}", p.summary);
    }

    #[test]
    fn held_segments_are_bounded_and_independent_of_splitting() {
        let cfg = Arc::new(DetectConfig::default());
        let req = |i: usize, seg: &str| Req {
            ts: Some(Timestamp::from_secs(1_700_000_000 + i as i64, 0)),
            ip: None,
            method: "GET".into(),
            path: format!("/{seg}/x").into(),
            query: "".into(),
            status: 200,
            script_ua: false,
            ev: Evidence {
                file: Arc::from("a.log"),
                line: i as u64 + 1,
                ts: None,
                text: String::new(),
                weight: 50,
            },
        };
        let segs: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
        let mut one = Admin::new(cfg.clone());
        let mut a = Admin::new(cfg.clone());
        let mut b = Admin::new(cfg);
        for i in 0..3000 {
            let seg = &segs[(i * 7) % segs.len()];
            one.hold(seg, req(i, seg));
            if i % 2 == 0 { &mut a } else { &mut b }.hold(seg, req(i, seg));
        }
        let p = std::mem::take(&mut b.pending);
        a.merge_pending(p);
        let p = std::mem::take(&mut one.pending);
        one.merge_pending(p);
        assert_eq!(one.pending.len(), PENDING_SEGMENTS);
        let view = |m: &BTreeMap<Box<str>, Pending>| -> Vec<(String, u64, Vec<u64>)> {
            m.iter()
                .map(|(k, p)| {
                    (
                        k.to_string(),
                        p.seen,
                        p.reqs.iter().map(|r| r.ev.line).collect(),
                    )
                })
                .collect()
        };
        assert_eq!(view(&one.pending), view(&a.pending));
    }

    #[test]
    fn held_requests_are_the_earliest_whatever_the_order_and_split() {
        let cfg = Arc::new(DetectConfig::default());
        let req = |i: u64| Req {
            ts: Some(Timestamp::from_secs(1_700_000_000 + (i % 997) as i64, 0)),
            ip: None,
            method: "GET".into(),
            path: "/shop/x".into(),
            query: "".into(),
            status: 200,
            script_ua: false,
            ev: Evidence {
                file: Arc::from(if i.is_multiple_of(3) {
                    "a.log"
                } else {
                    "b.log"
                }),
                line: i + 1,
                ts: None,
                text: String::new(),
                weight: 50,
            },
        };
        // A scrambled order over several times the per-segment cap.
        let n = 5 * PENDING_PER_SEGMENT as u64;
        let order: Vec<u64> = (0..n).map(|i| (i * 7919) % n).collect();
        let mut want: Vec<ReqKey> = order.iter().map(|&i| key(&req(i).ts, &req(i).ev)).collect();
        want.sort();
        want.truncate(PENDING_PER_SEGMENT);
        for parts in [1usize, 2, 3] {
            let mut states: Vec<Admin> = (0..parts).map(|_| Admin::new(cfg.clone())).collect();
            for (j, &i) in order.iter().enumerate() {
                states[j * parts / order.len()].hold("shop", req(i));
            }
            let mut first = states.remove(0);
            for s in states {
                first.merge_pending(s.pending);
            }
            let p = std::mem::take(&mut first.pending);
            first.merge_pending(p);
            let p = &first.pending["shop"];
            assert_eq!(p.seen, n);
            let got: Vec<ReqKey> = p.reqs.iter().map(|r| key(&r.ts, &r.ev)).collect();
            assert_eq!(got, want, "{parts} part(s)");
        }
    }

    #[test]
    fn segment_codes_and_tables() {
        // Every byte value, in every position, lower-cased the same way as the tables' codes.
        for b in 0..=255u8 {
            for n in 1..=15 {
                for at in 0..n {
                    let mut s = vec![b'x'; n];
                    s[at] = b;
                    assert_eq!(seg_code(&s), seg_code_const(&s), "{s:?}");
                    let n = s.len();
                    s.extend_from_slice(b"/ZZZZZZZZZZZZZZZZ");
                    assert_eq!(seg_code_in(&s, 0, n), seg_code_const(&s[..n]), "{s:?}");
                }
            }
        }
        assert_eq!(seg_code(&[b'a'; 16]), None);
        // Within a longer text (read as one word), at every offset.
        let text: Vec<u8> = (0..40u8).map(|i| b'@' + i).collect();
        for start in 0..text.len() {
            for len in 0..=15.min(text.len() - start) {
                let want = seg_code_const(&text[start..start + len]);
                assert_eq!(seg_code_in(&text, start, len), want, "{start} {len}");
            }
        }
        assert_eq!(seg_code_in(b"abc", 2, 2), None);
        assert_eq!(seg_code(b""), seg_code_const(b""));
        for (set, table) in [
            (GUESS_SEGMENTS, &GUESS_TABLE),
            (FRONT_SEGMENTS, &FRONT_TABLE),
            (LOGIN_PAGES, &LOGIN_TABLE),
        ] {
            for x in set {
                assert!(in_table(table, seg_code(x.as_bytes())), "{x}");
                assert!(
                    in_table(table, seg_code(x.to_ascii_uppercase().as_bytes())),
                    "{x}"
                );
                for y in [format!("{x}x"), format!("x{x}"), x[1..].to_string()] {
                    let want = set.contains(&y.as_str());
                    assert_eq!(in_table(table, seg_code(y.as_bytes())), want, "{y}");
                }
            }
            assert!(!in_table(table, seg_code(b"")));
        }
    }

    #[test]
    fn admin_looking_requests_ignore_case() {
        let a = Admin::new(Arc::new(DetectConfig::default()));
        for (path, want) in [
            ("/ADMIN/x/y", true),
            ("/Administrator", true),
            ("/AdminFoo/a/b", true),
            ("/WP-LOGIN.PHP", true),
            ("/XmlRpc.php", true),
            ("/Index.PHP/Admin/x", true),
            ("/REST/V1/Integration/Admin/Token", true),
            ("/shop/ADMIN/x", true),
            ("/mgr_x9k2/LOGIN", true),
            ("//mgr_x9k2/Home.php/", true),
            ("//mgr_x9k2//Home.php/", false),
            ("/mgr_x9k2/x/login", false),
            ("/mypage/login", false),
            ("/Shopping/Login", false),
            ("/Secret", true),
            ("/Secret/", true),
            ("/CART", false),
            ("/Products/detail/1", false),
            ("/html/template/default/a.css", false),
            ("/robots.txt", false),
            ("/", false),
            ("", false),
        ] {
            assert_eq!(a.wanted("GET", path, "", &Segs::of(path)), want, "{path}");
        }
        // The same answers as lower-casing the path first (the former way).
        let former = |path: &str| {
            let lower = path.to_ascii_lowercase();
            let seg1 = lower
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            let last = lower.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let depth = lower.trim_matches('/').split('/').count();
            GUESS_SEGMENTS.contains(&seg1)
                || seg1.starts_with("admin")
                || lower == "/wp-login.php"
                || lower == "/xmlrpc.php"
                || lower.starts_with("/index.php/admin")
                || (lower.starts_with("/rest/") && lower.contains("/integration/admin/token"))
                || lower.trim_start_matches('/').split('/').nth(1) == Some("admin")
                || (depth == 2
                    && !FRONT_SEGMENTS.contains(&seg1)
                    && matches!(
                        last,
                        "login" | "login_check" | "index.php" | "logout" | "home.php"
                    ))
                || (depth == 1
                    && !seg1.is_empty()
                    && !seg1.contains('.')
                    && !FRONT_SEGMENTS.contains(&seg1))
        };
        let former_pending = |path: &str| -> Option<String> {
            let rest = path.strip_prefix('/')?;
            let (seg, below) = rest.split_once('/')?;
            let plain = !seg.is_empty()
                && seg.len() <= 64
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
            let lower = seg.to_ascii_lowercase();
            (plain && !below.is_empty() && !FRONT_SEGMENTS.contains(&lower.as_str()))
                .then(|| seg.to_string())
        };
        let parts = [
            "Wp-Content",
            "FAVICON.ICO",
            "abcdefghijklmnopq",
            "",
            "/",
            "//",
            "Admin",
            "adminX",
            "CART",
            "x.y",
            "Login",
            "home.php",
            "rest",
            "V1",
            "integration",
            "ADMIN",
            "token",
            "wp-login.php",
            "index.php",
            "é",
            "mgr",
        ];
        let mut n = 0;
        for x in parts {
            for y in parts {
                for z in parts {
                    for path in [
                        format!("/{x}/{y}{z}"),
                        format!("/{x}{y}/{z}/"),
                        format!("{x}/{y}/{z}"),
                        format!("/rest/{x}/integration/{y}/{z}"),
                    ] {
                        assert_eq!(
                            Segs::of(&path).pending().map(str::to_string),
                            former_pending(&path),
                            "{path}"
                        );
                        let want = former(&path);
                        assert_eq!(a.wanted("GET", &path, "", &Segs::of(&path)), want, "{path}");
                        n += usize::from(want);
                    }
                }
            }
        }
        assert!(n > 1000, "{n}");
        let pending = |p: &'static str| Segs::of(p).pending();
        assert_eq!(pending("/Shop/x"), Some("Shop"));
        assert_eq!(pending("/HTML/x"), None);
        assert_eq!(pending("/Products/x"), None);
        assert_eq!(pending("//Shop/x"), None);
        assert_eq!(pending("/Shop/"), None);
        assert_eq!(pending("/Shop"), None);
        assert_eq!(pending("Shop/x"), None);
        assert_eq!(pending("/Sh.op/x"), None);
        assert_eq!(pending("/Shop//"), Some("Shop"));
    }

    #[test]
    fn spraying_and_stuffing() {
        let mut lines = Vec::new();
        for i in 0..6 {
            lines.push(format!("{}|203.0.113.7|LOGIN|user{i}|failure", i * 60));
        }
        for i in 0..12 {
            lines.push(format!(
                "{}|198.51.100.{i}|LOGIN|shopadmin|failure",
                1000 + i * 60
            ));
        }
        let f = run(&lines);
        let r = rules(&f);
        assert!(
            r.contains(&("admin.password_spraying", Severity::Medium)),
            "{r:?}"
        );
        assert!(
            r.contains(&("admin.credential_stuffing", Severity::Medium)),
            "{r:?}"
        );
        insta::assert_json_snapshot!("spraying_stuffing", view(&f));
    }

    #[test]
    fn discovery_then_real_prefix_and_eccube2_status_rule() {
        let mut lines = office_days("/mgr_x9k2");
        let t = 2 * DAY;
        let guesses = [
            "/admin/",
            "/administrator/",
            "/manager/",
            "/backend/",
            "/admin/login",
            "/wp-admin/",
            "/admin/index.php",
            "/cms/",
            "/backoffice/",
            "/adminpanel/",
        ];
        for (i, g) in guesses.iter().enumerate() {
            lines.push(format!("{}|203.0.113.9|GET|{g}|404", t + i as i64));
        }
        lines.push(format!("{}|203.0.113.9|GET|/mgr_x9k2/login|200", t + 100));
        let f = run(&lines);
        let d: Vec<_> = f
            .iter()
            .filter(|x| x.rule == "admin.path_discovery")
            .collect();
        assert_eq!(d.len(), 1, "{f:#?}");
        assert_eq!(d[0].ips, vec!["203.0.113.9"]);
        // Reaching the login page only: discovery, medium.
        assert_eq!(d[0].severity, Severity::Medium);
        // Then logged in and served the admin: raised.
        lines.push(format!("{}|203.0.113.9|POST|/mgr_x9k2/login|302", t + 200));
        lines.push(format!("{}|203.0.113.9|GET|/mgr_x9k2/|200", t + 201));
        let f = run(&lines);
        let d = f
            .iter()
            .find(|x| x.rule == "admin.path_discovery")
            .expect("discovery");
        assert_eq!(d.severity, Severity::High, "{d:#?}");

        // EC-CUBE 2: failure is 200, success is 302; one failure then success is nothing.
        let lines: Vec<String> = vec![
            "0|192.0.2.10|POST|/shop_admin/index.php|200".into(),
            "10|192.0.2.10|POST|/shop_admin/index.php|302".into(),
            "11|192.0.2.10|GET|/shop_admin/home.php|200".into(),
        ];
        let f = run_cfg(
            &lines,
            AdminConfig {
                platform: Some("eccube2".into()),
                ..Default::default()
            },
            1,
        );
        assert_eq!(rules(&f), vec![("admin.profile", Severity::Info)]);
        assert!(f[0].title.contains("/shop_admin"), "{}", f[0].title);
    }

    #[test]
    fn success_after_failures_window_edges_and_long_lists() {
        let t = 2 * DAY;
        let mut lines = office_days("/admin");
        // Five failures exactly one hour before the success count; one second more does not.
        for (ip, user, gap) in [("198.51.100.1", "a1", 3600), ("198.51.100.2", "a2", 3601)] {
            for _ in 0..5 {
                lines.push(format!("{}|{ip}|LOGIN|{user}|failure", t - gap));
            }
            lines.push(format!("{}|{ip}|LOGIN|{user}|success", t));
        }
        // 2,500 bots fail as `admin` within the hour, then one logs in: every failure is
        // counted, the lists are capped.
        let t2 = t + 4 * 3600;
        for k in 0..2500 {
            lines.push(format!(
                "{}|10.{}.{}.1|LOGIN|admin|failure",
                t2 - 3000 + k,
                k / 250,
                k % 250
            ));
        }
        lines.push(format!("{t2}|192.0.2.99|LOGIN|admin|success"));
        lines.sort_by_key(|l| l.split('|').next().unwrap().parse::<i64>().unwrap());
        let f = run(&lines);
        let saf: Vec<&Finding> = f
            .iter()
            .filter(|x| x.rule == "admin.success_after_failures")
            .collect();
        let ips: Vec<&str> = saf.iter().map(|x| x.ips[0].as_str()).collect();
        assert!(ips.contains(&"198.51.100.1"), "{ips:?}");
        assert!(
            !saf.iter()
                .any(|x| x.ips.contains(&"198.51.100.2".to_string())),
            "{saf:#?}"
        );
        let big = saf
            .iter()
            .find(|x| x.title.contains("192.0.2.99"))
            .expect("the bots' success");
        assert!(big.title.contains("after 2500 failures"), "{}", big.title);
        assert_eq!(big.count, 2501);
        assert_eq!(big.ips.len(), ecir_model::finding::MAX_IPS);
        assert_eq!(
            big.first_seen.map(|x| x.utc_ms),
            Some((1_700_000_000 + t2 - 3000) * 1000)
        );
        assert_eq!(
            big.last_seen.map(|x| x.utc_ms),
            Some((1_700_000_000 + t2) * 1000)
        );
    }

    #[test]
    fn stolen_session_edge_is_the_session_lifetime() {
        // A login at `l`; an admin page exactly one session lifetime later is still covered,
        // one second later it is not.
        for (late, expected) in [(0, false), (1, true)] {
            let mut lines = office_days("/admin");
            let l = DAY + 10_000;
            lines.push(format!("{l}|203.0.113.7|GET|/admin/login|200"));
            lines.push(format!("{}|203.0.113.7|POST|/admin/login|302", l + 5));
            lines.push(format!("{}|203.0.113.7|GET|/admin/|200", l + 6));
            lines.push(format!(
                "{}|203.0.113.7|GET|/admin/order|200",
                l + 5 + DAY + late
            ));
            lines.sort_by_key(|x| x.split('|').next().unwrap().parse::<i64>().unwrap());
            let f = run(&lines);
            let stolen = f.iter().any(|x| x.rule == "admin.session_without_login");
            assert_eq!(stolen, expected, "late {late}: {f:#?}");
        }
    }

    #[test]
    fn discovery_counts_each_guessers_own_hits() {
        // Three guessers interleaved: A reaches the prefix twice (one more than a day after
        // its first guess, not counted), B once, C never; staff's hits count for nobody.
        let mut lines = office_days("/mgr_x9k2");
        let t = 2 * DAY;
        for i in 0..12 {
            for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
                lines.push(format!("{}|{ip}|GET|/admin{i}/|404", t + i));
            }
        }
        lines.push(format!("{}|203.0.113.1|GET|/mgr_x9k2/login|200", t + 100));
        lines.push(format!("{}|203.0.113.2|GET|/mgr_x9k2/login|200", t + 101));
        lines.push(format!("{}|203.0.113.1|GET|/mgr_x9k2/login|200", t + 102));
        lines.push(format!(
            "{}|203.0.113.1|GET|/mgr_x9k2/login|200",
            t + DAY + 50
        ));
        let f = run(&lines);
        let mut d: Vec<(String, u64)> = f
            .iter()
            .filter(|x| x.rule == "admin.path_discovery")
            .map(|x| (x.ips.join(","), x.count))
            .collect();
        d.sort();
        assert_eq!(
            d,
            vec![
                ("203.0.113.1".into(), 12 + 2),
                ("203.0.113.2".into(), 12 + 1)
            ],
            "{f:#?}"
        );
    }

    #[test]
    fn script_agent_and_off_hours_raise_actions() {
        let mut lines = office_days("/admin");
        // 20:00 UTC = 05:00 JST.
        let t = 2 * DAY + 3600 + 120;
        lines.push(format!(
            "{t}|192.0.2.10|POST|/admin/setting/system/member/new|302|curl/8.0"
        ));
        let cfg = AdminConfig {
            business_hours: Some((9 * 60, 18 * 60)),
            tz: Some(chrono_tz::UTC),
            ..Default::default()
        };
        let f = run_cfg(&lines, cfg, 1);
        let r = rules(&f);
        assert!(r.contains(&("admin.script_agent", Severity::Low)), "{r:?}");
        assert!(r.contains(&("admin.off_hours", Severity::Low)), "{r:?}");
        assert!(
            r.contains(&("admin.account_change", Severity::High)),
            "{r:?}"
        );
    }

    #[test]
    fn scanners_404s_do_not_push_out_answered_pages_past_the_cap() {
        // 300 guesses answered 404, then an intruder logging in from outside the allow-list;
        // each kind keeps its earliest 50.
        let cfg = Arc::new(DetectConfig {
            admin: AdminConfig {
                allow: vec!["192.0.2.0/24".parse().unwrap()],
                ..Default::default()
            },
            ..Default::default()
        });
        let mut lines: Vec<(String, i64)> = (0..300)
            .map(|i| {
                (
                    format!("198.51.100.9|GET|/admin/guess{i}.php|404|0|Mozilla/5.0"),
                    i,
                )
            })
            .collect();
        lines.push((
            "203.0.113.5|POST|/admin/login|302|0|Mozilla/5.0".into(),
            DAY,
        ));
        lines.push(("203.0.113.5|GET|/admin/|200|0|Mozilla/5.0".into(), DAY + 1));
        let dir = std::env::temp_dir();
        for parts in [1, 2] {
            let mut states: Vec<Admin> = (0..parts)
                .map(|_| {
                    let mut a = Admin::new(cfg.clone());
                    a.reqs = ReqStore::with(dir.clone(), 1 << 20, 50);
                    a.not_found = ReqStore::with(dir.clone(), 1 << 20, 50);
                    a
                })
                .collect();
            crate::testing::observe_in_chunks(&mut states, &lines);
            let f = crate::testing::merge_in_order(states).finish(&FinishContext::new(100));
            let out: Vec<_> = f
                .iter()
                .filter(|x| x.rule == "admin.outside_allowlist")
                .collect();
            assert_eq!(out.len(), 1, "{parts} part(s): {:?}", rules(&f));
            assert_eq!(out[0].ips, vec!["203.0.113.5"]);
            let profile = f.iter().find(|x| x.rule == "admin.profile").unwrap();
            assert!(
                profile.summary.contains("250 admin record(s) beyond"),
                "{}",
                profile.summary
            );
        }
    }
}
