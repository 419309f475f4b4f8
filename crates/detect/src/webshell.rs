//! `webshell`: signs that a script planted by an attacker is being used.
//!
//! Rules:
//! - `webshell.upload_dir_script`: a script (`.php`, `.phtml`, `.phar`, `.jsp`, `.aspx`,
//!   `.cgi`, `.php.jpg` double extensions, …) requested under an upload or user-writable
//!   directory. 2xx is high (nothing there should execute); refused probes are one low finding.
//! - `webshell.rare_script`: a script answered 2xx to POSTs from at most `rare_script_max_ips`
//!   clients in logs that show at least `rare_script_min_site_ips` clients. Medium; high when
//!   the POSTs come without a Referer (nobody navigated there from the shop).
//! - `webshell.command_param`: command-like parameters (`cmd=`, `exec=`, `c=whoami`, long
//!   base64 blobs) sent to a script. High when answered 2xx.
//!
//! Known false positives: staff-only admin scripts (EC-CUBE 2 `/admin/*.php`) are reached by
//! few IPs, so paths under common admin directories and well-known platform endpoints are not
//! counted as rare; a legacy shop that keeps PHP pages under `/user_data/` must inventory them.
//!
//! Catch-all sites (soft 404): a shop that answers any path with one page makes every probe
//! for a shell name look answered. A 2xx body size that [`CATCH_ALL_PATHS`] or more distinct
//! script paths got is taken for that page's; a path (or path and client) whose 2xx answers all
//! had such sizes is summed with the others in one finding per rule instead of one high
//! finding each (low; medium when some were POSTs answered 2xx, as a shell planted under many
//! names would be), and is not counted as rare. A shell in use answers with varying sizes and
//! still stands out. Beyond that, each rule lists at most [`MAX_PATH_FINDINGS`] paths, the
//! most used, and sums the rest in one more finding.
//!
//! Memory: the per-path tables keep at most [`GROUP_CAP`] entries each in memory and spill the
//! rest to private sorted runs under `TMPDIR` (see `spill_map`), so a scanner inventing a new
//! script name per request does not grow the heap.

use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::{Category, Event, Finding, Severity};
use regex::bytes::Regex;

use crate::codec::{self, Cursor, Files};
use crate::decode::decode_target_keep_case;
use crate::evidence::{SmallestSet, Span, TopEvidence};
use crate::soft404::SizePaths;
use crate::spill_map::{SpillMap, Spillable};
use crate::web_attack::truncate;
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};

pub const RULES: &[&str] = &[
    "webshell.upload_dir_script",
    "webshell.rare_script",
    "webshell.command_param",
];

struct Patterns {
    script: Regex,
    writable: Regex,
    admin_or_platform: Regex,
    command: Regex,
}

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| Patterns {
        script: Regex::new(r"(?-u)\.(php[0-9]?|phtml|phar|pht|pgif|shtml|inc|jsp|jspx|asp|aspx|ashx|asmx|cgi|pl)(\.[a-z0-9]{2,4})?$")
            .expect("script"),
        writable: Regex::new(
            r"(?x-u)
            ^/html/(user_data|upload|plugin|template)/ | ^/user_data/ | ^/upload/ | ^/uploads?/
          | /upload/(save_image|temp_image)/ | ^/(pub/)?media/ | ^/pub/(static|images)/
          | ^/wp-content/(uploads|upgrade)/ | ^/img/ | ^/images?/ | ^/download/ | ^/files?/
          | ^/tmp/ | ^/cache/ | ^/var/ | /uploads?/ | ^/assets/uploads/",
        )
        .expect("writable"),
        admin_or_platform: Regex::new(
            r"(?x-u)
            ^/(admin|administrator|manager|backoffice|wp-admin|shop/admin)[a-z0-9_-]*/
          | ^/wp-(login|cron|comments-post|signup|trackback|links-opml|mail)\.php$ | ^/xmlrpc\.php$
          | ^/index\.php$ | ^/(html/)?index\.php$ | /admin-ajax\.php$ | ^/(pub/)?health_check\.php$
          | ^/(get\.php|static\.php|cron\.php|api\.php)$ | ^/shopping/ | ^/mypage/ | ^/cart/",
        )
        .expect("admin"),
        command: Regex::new(
            r"(?x-u)
            (^|&)(cmd|exec|command|execute|shell|sh|run|c|e|x|pass|qwq|z0|z1|code|payload)=
              ([a-z0-9+/=%_.-]{40,} | [^&]*(whoami|uname|\bid\b|\bls\b|\bpwd\b|\bcat\b|wget|curl|echo|\bdir\b|ipconfig|ifconfig|netstat|base64|phpinfo|system|passthru|eval))",
        )
        .expect("command"),
    })
}

/// Path class of a script request.
fn is_script(path: &[u8]) -> bool {
    patterns().script.is_match(path)
}

/// Script extensions of [`Patterns::script`], lower case.
const SCRIPT_EXTS: &[&str] = &[
    "php", "phtml", "phar", "pht", "pgif", "shtml", "inc", "jsp", "jspx", "asp", "aspx", "ashx",
    "asmx", "cgi", "pl",
];

/// An extension of up to 7 bytes, ASCII-lowercased, as one number (length in the top byte).
const fn ext_code(e: &[u8]) -> Option<u64> {
    if e.len() > 7 {
        return None;
    }
    let mut code = (e.len() as u64) << 56;
    let mut i = 0;
    while i < e.len() {
        code |= (e[i].to_ascii_lowercase() as u64) << (8 * i);
        i += 1;
    }
    Some(code)
}

/// [`SCRIPT_EXTS`] as [`ext_code`]s.
const SCRIPT_CODES: [u64; SCRIPT_EXTS.len()] = {
    let mut out = [0u64; SCRIPT_EXTS.len()];
    let mut i = 0;
    while i < SCRIPT_EXTS.len() {
        out[i] = match ext_code(SCRIPT_EXTS[i].as_bytes()) {
            Some(c) => c,
            None => panic!("script extension too long"),
        };
        i += 1;
    }
    out
};

/// Whether `e` is a script extension of [`Patterns::script`], ignoring ASCII case (`php` with
/// an optional digit).
fn is_script_ext(e: &[u8]) -> bool {
    let e = match e {
        [rest @ .., d] if d.is_ascii_digit() && rest.eq_ignore_ascii_case(b"php") => rest,
        _ => e,
    };
    ext_code(e).is_some_and(|c| SCRIPT_CODES.contains(&c))
}

/// Whether the ASCII-lowercased `path` would match [`Patterns::script`], without lower-casing
/// it: it ends in `.EXT` or `.EXT.xx` (`xx` 2 to 4 letters or digits), EXT a script extension.
/// `dot` is the position of the last `.` in `path`.
fn script_suffix_ci(path: &[u8], dot: Option<usize>) -> bool {
    let Some(dot) = dot else {
        return false;
    };
    let tail = &path[dot + 1..];
    if is_script_ext(tail) {
        return true;
    }
    if !(2..=4).contains(&tail.len()) || !tail.iter().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    // A script extension is at most 7 bytes ([`ext_code`]): only the head's last 8 bytes
    // can hold its dot (a dot further back leaves a longer, non-script extension).
    let head = &path[..dot];
    let near = head.len().saturating_sub(8);
    head[near..]
        .iter()
        .rposition(|&c| c == b'.')
        .is_some_and(|d| is_script_ext(&head[near + d + 1..]))
}

/// A script (`.php`, `.phtml`, `.jsp`, `.aspx`, `.cgi`, double extensions, …) that is not
/// under a common admin directory nor a well-known platform endpoint: the paths this detector
/// counts as possibly planted. `path` is the request path without its query.
pub fn is_unusual_script(path: &str) -> bool {
    is_script(path.as_bytes()) && !patterns().admin_or_platform.is_match(path.as_bytes())
}

/// Script paths (or paths and clients) one detector state holds per table before spilling
/// them: a scanner probing a catch-all site with a new script name per request must not grow
/// the heap without bound. A probe's group (one line) is about 0.4 KiB, a shell in use with
/// its twenty lines about 5 KiB (40 KiB if every line reaches the 2 KiB evidence cap).
pub const GROUP_CAP: usize = 2048;

/// Distinct paths that must get a body of the very same size before that size counts as a
/// catch-all page's. More than web-attack's three: one web shell dropped under several names
/// answers with one size too, and must still stand out.
pub const CATCH_ALL_PATHS: usize = 8;

/// Response sizes kept for the catch-all check (the smallest).
pub const MAX_OK_SIZES: usize = 16_384;

/// Findings one rule makes per path (or path and client); the rest, ranked by POSTs, 2xx
/// answers and requests, are summed up in one more finding.
pub const MAX_PATH_FINDINGS: usize = 100;

/// Distinct 2xx sizes a group remembers: more means its answers vary, as a script's do.
const GROUP_SIZES: usize = 4;

/// A script path as a table key: two independent 64-bit hashes of its decoded bytes, so
/// that distinct paths practically never share a key, even chosen by an attacker (a shared
/// key would only merge their counts: the group still lists both paths).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct PathKey(u64, u64);

impl PathKey {
    fn of(path: &[u8]) -> PathKey {
        let (a, b) = codec::key128(path);
        PathKey(a, b)
    }
}

/// Key of a group: the script path and, for command parameters, the client.
type GroupKey = (PathKey, Option<IpAddr>);

struct Group {
    count: u64,
    ok: u64,
    posts_ok: u64,
    posts_without_referer: u64,
    span: Span,
    ips: SmallestSet<IpAddr>,
    paths: SmallestSet<String>,
    /// Distinct sizes of the 2xx answers (the smallest [`GROUP_SIZES`]), for the catch-all
    /// check.
    ok_sizes: SmallestSet<u64>,
    evidence: TopEvidence,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            count: 0,
            ok: 0,
            posts_ok: 0,
            posts_without_referer: 0,
            span: Span::default(),
            ips: SmallestSet::default(),
            paths: SmallestSet::default(),
            ok_sizes: SmallestSet::new(GROUP_SIZES),
            evidence: TopEvidence::default(),
        }
    }
}

impl Group {
    fn merge(&mut self, o: Group) {
        self.count += o.count;
        self.ok += o.ok;
        self.posts_ok += o.posts_ok;
        self.posts_without_referer += o.posts_without_referer;
        self.span.merge(o.span);
        self.ips.merge(o.ips);
        self.paths.merge(o.paths);
        self.ok_sizes.merge(o.ok_sizes);
        self.evidence.merge(o.evidence);
    }
    fn add(&mut self, ev: &Event<'_>, origin: &Origin<'_>, path: &str) {
        self.count += 1;
        let ok = ev.is_success();
        let post = ev.method.as_deref() == Some("POST");
        self.ok += u64::from(ok);
        self.posts_ok += u64::from(ok && post);
        self.posts_without_referer += u64::from(ok && post && ev.referer.is_none());
        self.span.add(ev.ts);
        if let Some(ip) = ev.client_ip {
            self.ips.insert(ip);
        }
        if !self.paths.items().iter().any(|p| p == path) {
            self.paths.insert(truncate(path, 200));
        }
        if ok {
            self.ok_sizes.insert(ev.bytes.unwrap_or(0));
        }
        let weight = match (ok, post) {
            (true, true) => 100,
            (true, false) => 80,
            _ => 10,
        };
        self.evidence.offer(origin, ev.ts, weight);
    }

    /// The path shown for this group (paths are truncated to 200 bytes).
    fn path(&self) -> &str {
        self.paths.items().first().map_or("", |p| p.as_str())
    }
}

impl Spillable for Group {
    type Key = GroupKey;

    fn encode((path, ip): GroupKey, g: &Group, out: &mut Vec<u8>) {
        codec::put_u64(out, path.0);
        codec::put_u64(out, path.1);
        codec::put_ip(out, ip);
        for n in [g.count, g.ok, g.posts_ok, g.posts_without_referer] {
            codec::put_u64(out, n);
        }
        codec::put_span(out, &g.span);
        codec::put_ip_set(out, &g.ips);
        codec::put_texts(out, &g.paths);
        codec::put_u64_set(out, &g.ok_sizes);
        codec::put_evidence(out, &g.evidence);
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<(GroupKey, Group)> {
        let mut c = Cursor(b);
        let key = (PathKey(c.u64()?, c.u64()?), c.ip()?);
        let blank = Group::default();
        let g = Group {
            count: c.u64()?,
            ok: c.u64()?,
            posts_ok: c.u64()?,
            posts_without_referer: c.u64()?,
            span: c.span()?,
            ips: c.ip_set(blank.ips.cap())?,
            paths: c.texts(blank.paths.cap())?,
            ok_sizes: c.u64_set(GROUP_SIZES)?,
            evidence: c.evidence(files)?,
        };
        c.0.is_empty().then_some((key, g))
    }

    fn merge(&mut self, other: Group) {
        Group::merge(self, other);
    }
}

/// State of the web-shell detector.
pub struct Webshell {
    config: Arc<DetectConfig>,
    /// Scripts in writable directories answered 2xx, by path.
    upload_ok: SpillMap<Group>,
    /// Scripts in writable directories refused, all together.
    upload_refused: Group,
    /// Every unusual script path answered 2xx, with its clients (capped) and POST counts.
    scripts: SpillMap<Group>,
    /// Command-like parameters by (path, client).
    commands: SpillMap<Group>,
    /// Sizes of 2xx script answers and a few paths that got each: the catch-all check.
    ok_sizes: SizePaths<CATCH_ALL_PATHS>,
    scratch: Vec<u8>,
    /// The decoded target with its letter case, naming the script.
    scratch_cased: Vec<u8>,
}

impl Webshell {
    pub fn new(config: Arc<DetectConfig>) -> Self {
        Webshell {
            config,
            upload_ok: SpillMap::new(GROUP_CAP, "webshell"),
            upload_refused: Group::default(),
            scripts: SpillMap::new(GROUP_CAP, "webshell"),
            commands: SpillMap::new(GROUP_CAP, "webshell"),
            ok_sizes: SizePaths::new(MAX_OK_SIZES),
            scratch: Vec::new(),
            scratch_cased: Vec::new(),
        }
    }
}

impl DetectorState for Webshell {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        if ev.source == Some(ecir_model::SourceKind::Waf) {
            // WAF records are judged by the waf detector, with what the WAF did.
            return;
        }
        let Some(target) = ev.target.as_deref() else {
            return;
        };
        // Cheap screen before decoding: something that could be a script extension.
        let raw_path = ev.path().as_bytes();
        let has_query = ev.query().is_some();
        let dot = memchr::memrchr(b'.', raw_path);
        if dot.is_none() && !has_query {
            return;
        }
        // Without `%` or `\` in the raw path, decoding changes nothing before the query but
        // the letter case (`+` is decoded only in the query, and no `?` can appear earlier):
        // the decoded path is the lower-cased raw path, and nothing below runs unless it is a
        // script. Ordinary asset and page requests end here, undecoded.
        if memchr::memchr2(b'%', b'\\', raw_path).is_none() && !script_suffix_ci(raw_path, dot) {
            return;
        }
        // Decoded once with its letter case, which names the script (and tells it apart from
        // others) as the file system sees it; patterns match the lower-cased copy.
        decode_target_keep_case(target, &mut self.scratch_cased);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.scratch_cased);
        self.scratch.make_ascii_lowercase();
        let decoded = &self.scratch;
        let qpos = memchr::memchr(b'?', decoded).unwrap_or(decoded.len());
        let path = &decoded[..qpos];
        if !is_script(path) {
            return;
        }
        let p = patterns();
        let cased = &self.scratch_cased[..qpos];
        let key = PathKey::of(cased);
        let path_str = String::from_utf8_lossy(cased);
        let ok = ev.is_success();
        let writable = p.writable.is_match(path);
        let unusual = !p.admin_or_platform.is_match(path);
        let command = qpos < decoded.len() && p.command.is_match(&decoded[qpos + 1..]);
        // Sizes for the catch-all check, from the requests the rules judge: not every page
        // view of a shop written in PHP, whose many sizes would crowd the table.
        let post = ev.method.as_deref() == Some("POST");
        if ok && (writable || command || (unusual && post)) {
            let bytes = ev.bytes.unwrap_or(0);
            if bytes > self.config.exposure_min_bytes {
                self.ok_sizes.add(bytes, key.0);
            }
        }
        if writable {
            if ok {
                self.upload_ok
                    .get_or_default((key, None))
                    .add(ev, origin, &path_str);
            } else {
                self.upload_refused.add(ev, origin, &path_str);
            }
        }
        if ok && unusual {
            self.scripts
                .get_or_default((key, None))
                .add(ev, origin, &path_str);
        }
        if command {
            self.commands
                .get_or_default((key, ev.client_ip))
                .add(ev, origin, &path_str);
        }
    }

    fn park(&mut self) {
        self.upload_ok.park();
        self.scripts.park();
        self.commands.park();
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let other: Webshell = downcast(other);
        self.upload_ok.merge(other.upload_ok);
        self.upload_refused.merge(other.upload_refused);
        self.scripts.merge(other.scripts);
        self.commands.merge(other.commands);
        self.ok_sizes.merge(other.ok_sizes);
    }

    fn finish(self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        let mut out = Vec::new();
        let catch_all = CatchAll {
            sizes: self.ok_sizes.shared_sizes(),
        };
        let min_site_ips = self.config.rare_script_min_site_ips;
        let max_ips = self.config.rare_script_max_ips;

        // Scripts answered in writable directories.
        let mut upload = Ranked::default();
        let mut upload_catch_all = Tally::default();
        for (key, g) in self
            .upload_ok
            .into_sorted(ctx, "The web-shell scripts in writable directories")
        {
            if catch_all.answered(&g) {
                upload_catch_all.add(g);
            } else {
                upload.offer(key, Severity::High, g);
            }
        }
        let (kept, rest) = upload.finish();
        for (severity, g) in kept {
            let path = g.path().to_string();
            let mut f = Finding::new("webshell.upload_dir_script", Category::Webshell, severity);
            f.title = format!("Script executed in a writable directory: {path}");
            f.summary = format!(
                "{path} answered 2xx {} time(s) ({} POST) to {} client(s). Nothing in an upload directory should run as a script: treat it as a web shell, preserve it, then remove it.",
                g.ok,
                g.posts_ok,
                g.ips.items().len()
            );
            fill(&mut f, g);
            out.push(f);
        }
        if let Some((sev, t)) = rest {
            let mut f = Finding::new("webshell.upload_dir_script", Category::Webshell, sev);
            f.title = format!(
                "Scripts executed in writable directories: {} more paths",
                t.paths
            );
            f.summary = format!(
                "{} more script paths in upload directories answered 2xx ({} requests, {} POST) beyond the {MAX_PATH_FINDINGS} listed one by one (those with the most POSTs and answers). Nothing in an upload directory should run as a script: list the files on the server.",
                t.paths, t.group.ok, t.group.posts_ok
            );
            fill(&mut f, t.group);
            out.push(f);
        }
        if upload_catch_all.paths > 0 {
            let t = upload_catch_all;
            let mut f = Finding::new(
                "webshell.upload_dir_script",
                Category::Webshell,
                t.severity(),
            );
            f.title = format!(
                "Probes for scripts in writable directories answered by a catch-all page ({} paths)",
                t.paths
            );
            f.summary = format!(
                "{} script paths in upload directories were answered 2xx ({} requests), each only ever with a body size that at least {CATCH_ALL_PATHS} different script paths got: the site seems to answer any path with one page (soft 404), and these look like probes for web shells. Check one path by hand; a shell planted under several names also answers with one size.",
                t.paths, t.group.ok
            );
            fill(&mut f, t.group);
            out.push(f);
        }
        if self.upload_refused.count > 0 {
            let g = self.upload_refused;
            let mut f = Finding::new(
                "webshell.upload_dir_script",
                Category::Webshell,
                Severity::Low,
            );
            f.title = format!(
                "Probes for scripts in writable directories ({} requests, all refused)",
                g.count
            );
            f.summary = "Requests for script files in upload directories that the server refused: someone looking for a web shell left by an earlier compromise. Context, not a compromise on its own.".into();
            fill(&mut f, g);
            out.push(f);
        }

        // Scripts POSTed to by few clients.
        let scripts = self
            .scripts
            .into_sorted(ctx, "The web-shell script paths answered 2xx");
        if ctx.distinct_client_ips >= min_site_ips {
            let mut rare = Ranked::default();
            for (key, g) in scripts {
                let few = g.ips.exact_len().is_some_and(|n| n <= max_ips);
                if !few || g.posts_ok == 0 || catch_all.answered(&g) {
                    continue;
                }
                let severity = if g.posts_without_referer >= 3 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                rare.offer(key, severity, g);
            }
            let (kept, rest) = rare.finish();
            for (severity, g) in kept {
                let path = g.path().to_string();
                let mut f = Finding::new("webshell.rare_script", Category::Webshell, severity);
                f.title = format!(
                    "Script used by only {} client(s): {path}",
                    g.ips.items().len()
                );
                f.summary = format!(
                    "{path} answered {} POST(s) ({} without a Referer) and was reached by no other client among {} seen. A web shell looks like this; so does an admin-only tool: check the file on the server.",
                    g.posts_ok, g.posts_without_referer, ctx.distinct_client_ips
                );
                fill(&mut f, g);
                out.push(f);
            }
            if let Some((sev, t)) = rest {
                let mut f = Finding::new("webshell.rare_script", Category::Webshell, sev);
                f.title = format!("Scripts used by only a few clients: {} more paths", t.paths);
                f.summary = format!(
                    "{} more script paths answered POSTs ({}) from at most {max_ips} client(s) each, beyond the {MAX_PATH_FINDINGS} listed one by one. Check the files on the server.",
                    t.paths, t.group.posts_ok
                );
                fill(&mut f, t.group);
                out.push(f);
            }
        } else {
            // Read through, so that spilled runs are checked and removed.
            scripts.for_each(drop);
        }

        // Command-like parameters.
        let mut commands = Ranked::default();
        let mut commands_catch_all = Tally::default();
        for (key, g) in self
            .commands
            .into_sorted(ctx, "The web-shell command parameters per client")
        {
            if catch_all.answered(&g) {
                commands_catch_all.add(g);
                continue;
            }
            let severity = if g.ok > 0 {
                Severity::High
            } else {
                Severity::Low
            };
            commands.offer(key, severity, g);
        }
        let (kept, rest) = commands.finish();
        for (severity, g) in kept {
            let path = g.path().to_string();
            let mut f = Finding::new("webshell.command_param", Category::Webshell, severity);
            f.title = format!("Command-like parameters sent to {path}");
            f.summary = format!(
                "{} request(s) to {path} carried command-like parameters, {} answered 2xx.{}",
                g.count,
                g.ok,
                if g.ok > 0 {
                    " Treat the script as a web shell: preserve it and the logs, then remove it."
                } else {
                    ""
                }
            );
            fill(&mut f, g);
            out.push(f);
        }
        if let Some((sev, t)) = rest {
            let mut f = Finding::new("webshell.command_param", Category::Webshell, sev);
            f.title = format!(
                "Command-like parameters sent to {} more script paths and clients",
                t.paths
            );
            f.summary = format!(
                "{} more (script, client) pairs carried command-like parameters ({} requests, {} answered 2xx) beyond the {MAX_PATH_FINDINGS} listed one by one (those with the most answers).",
                t.paths, t.group.count, t.group.ok
            );
            fill(&mut f, t.group);
            out.push(f);
        }
        if commands_catch_all.paths > 0 {
            let t = commands_catch_all;
            let mut f = Finding::new("webshell.command_param", Category::Webshell, t.severity());
            f.title = format!(
                "Command-like parameters answered by a catch-all page ({} script paths and clients)",
                t.paths
            );
            f.summary = format!(
                "{} requests with command-like parameters were answered 2xx, each script only ever with a body size that at least {CATCH_ALL_PATHS} different script paths got: the site seems to answer any path with one page (soft 404), so these look like probes for web shells. Check one path by hand.",
                t.group.count
            );
            fill(&mut f, t.group);
            out.push(f);
        }
        out
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// The catch-all check: sizes that [`CATCH_ALL_PATHS`] or more distinct script paths got.
struct CatchAll {
    sizes: std::collections::BTreeSet<u64>,
}

impl CatchAll {
    /// Whether every 2xx answer of `g` had a catch-all size (and it had some).
    fn answered(&self, g: &Group) -> bool {
        g.ok > 0
            && !g.ok_sizes.overflowed()
            && !g.ok_sizes.items().is_empty()
            && g.ok_sizes.items().iter().all(|s| self.sizes.contains(s))
    }
}

/// Groups summed into one finding, and how many there were.
#[derive(Default)]
struct Tally {
    group: Group,
    paths: u64,
}

impl Tally {
    fn add(&mut self, g: Group) {
        self.group.merge(g);
        self.paths += 1;
    }

    /// For groups answered by a catch-all page: low, medium when some were POSTs answered
    /// 2xx (one shell planted under many names, answering one page to each, looks the same).
    fn severity(&self) -> Severity {
        if self.group.posts_ok > 0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// The [`MAX_PATH_FINDINGS`] most telling groups of one rule, by (severity, POSTs answered,
/// answers, requests, then key): a total order, so the choice does not depend on the order
/// groups come in. The others are summed in a [`Tally`] with their worst severity.
#[derive(Default)]
struct Ranked {
    kept: Vec<(RankKey, Group)>,
    rest: Option<Rest>,
}

/// The groups past the cap, summed, with their worst severity.
type Rest = (Severity, Tally);

type RankKey = (
    Severity,
    u64,
    u64,
    u64,
    std::cmp::Reverse<String>,
    std::cmp::Reverse<GroupKey>,
);

impl Ranked {
    fn offer(&mut self, key: GroupKey, severity: Severity, g: Group) {
        let rank = (
            severity,
            g.posts_ok,
            g.ok,
            g.count,
            std::cmp::Reverse(g.path().to_string()),
            std::cmp::Reverse(key),
        );
        self.kept.push((rank, g));
        if self.kept.len() >= 2 * MAX_PATH_FINDINGS {
            self.trim();
        }
    }

    /// Keeps the best [`MAX_PATH_FINDINGS`], summing the others.
    fn trim(&mut self) {
        if self.kept.len() <= MAX_PATH_FINDINGS {
            return;
        }
        self.kept.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        for (rank, g) in self.kept.drain(MAX_PATH_FINDINGS..) {
            let (sev, tally) = self.rest.get_or_insert_with(|| (rank.0, Tally::default()));
            *sev = (*sev).max(rank.0);
            tally.add(g);
        }
    }

    /// The kept groups, and the others summed (if any) with their worst severity.
    fn finish(mut self) -> (Vec<(Severity, Group)>, Option<Rest>) {
        self.trim();
        let kept = self.kept.into_iter().map(|(rank, g)| (rank.0, g)).collect();
        (kept, self.rest)
    }
}

fn fill(f: &mut Finding, g: Group) {
    f.first_seen = g.span.first;
    f.last_seen = g.span.last;
    f.ips = g.ips.items().iter().map(|i| i.to_string()).collect();
    f.paths = g.paths.items().to_vec();
    f.count = g.count;
    f.evidence = g.evidence.into_vec();
    if f.severity >= Severity::Medium {
        f.playbook = Some("web-shell".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run, run_split};

    fn only(f: &[Finding], rule: &str) -> Vec<Finding> {
        f.iter().filter(|x| x.rule == rule).cloned().collect()
    }

    #[test]
    fn raw_screen_agrees_with_the_script_pattern() {
        // The undecoded screen must say "script" exactly when the pattern does on the
        // lower-cased path, whatever the letter case.
        let exts = [
            "", "php", "PHP", "php7", "Php5", "php55", "phtml", "PHAR", "pht", "pgif", "shtml",
            "inc", "jsp", "JSPX", "asp", "aspx", "ashx", "asmx", "cgi", "pl", "p", "ph", "jpg",
            "JPG", "jpeg", "webp", "x", "abcde", "a1", "gif9", "j-g", "ph p", "phpx", "xphp",
            "abcdefg", "abcdefgh", "xphtml", "x.phtml", "a.b.php", "abcd.php",
        ];
        let mut n = 0;
        for a in exts {
            for b in exts {
                for stem in ["/x", "/a.b/x", "/", "", "/x.", "/.."] {
                    let mut path = stem.to_string();
                    for e in [a, b] {
                        if !e.is_empty() {
                            path.push('.');
                            path.push_str(e);
                        }
                    }
                    for p in [path.clone(), format!("{path}."), format!("{path}/")] {
                        let want = is_script(p.to_ascii_lowercase().as_bytes());
                        let dot = memchr::memrchr(b'.', p.as_bytes());
                        assert_eq!(script_suffix_ci(p.as_bytes(), dot), want, "{p}");
                        n += usize::from(want);
                    }
                }
            }
        }
        assert!(n > 1000, "{n}");
    }

    #[test]
    fn encoded_scripts_are_still_decoded() {
        // `%2e`, `%70`, `%3f` and `\x2e` hide a script extension from the raw screen.
        for t in [
            "/html/user_data/x%2ephp?a=1",
            "/html/user_data/x.%70hp",
            "/html/user_data/x.php%3f.jpg",
            "/html/user_data/x\\x2ephp?a=1",
            "/html/user_data/X.PHP",
        ] {
            let f = run(&[&format!("203.0.113.66|POST|{t}|200|51")]);
            assert_eq!(only(&f, "webshell.upload_dir_script").len(), 1, "{t}");
        }
    }

    #[test]
    fn scripts_are_named_with_their_letter_case() {
        // On Linux these are two files: each finding names the one that was requested.
        let f = run(&[
            "203.0.113.66|POST|/html/user_data/WsO_Shell.PHP?cmd=id|200|51",
            "203.0.113.66|POST|/html/user_data/wso_shell.php|200|52",
            "203.0.113.66|POST|/html/user_data/Up%6Coad.Php|200|53",
        ]);
        let found = only(&f, "webshell.upload_dir_script");
        let mut paths: Vec<&str> = found
            .iter()
            .flat_map(|x| x.paths.iter().map(String::as_str))
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![
                "/html/user_data/Upload.Php",
                "/html/user_data/WsO_Shell.PHP",
                "/html/user_data/wso_shell.php"
            ]
        );
        let cmd = only(&f, "webshell.command_param");
        assert_eq!(cmd[0].paths, vec!["/html/user_data/WsO_Shell.PHP"]);
    }

    #[test]
    fn script_in_upload_dir() {
        let f = run(&[
            "203.0.113.66|POST|/html/user_data/x.php|200|51",
            "203.0.113.66|GET|/wp-content/uploads/2024/shell.php|404|10",
        ]);
        let hi = only(&f, "webshell.upload_dir_script");
        assert_eq!(hi.len(), 2);
        assert_eq!(hi[0].severity, Severity::High);
        assert_eq!(hi[0].paths, vec!["/html/user_data/x.php"]);
        assert_eq!(hi[0].playbook.as_deref(), Some("web-shell"));
        assert_eq!(hi[1].severity, Severity::Low);
        // Double extension.
        let f = run(&["203.0.113.66|GET|/upload/save_image/a.php.jpg|200|51"]);
        assert_eq!(only(&f, "webshell.upload_dir_script").len(), 1);
        // Images in the same directory are fine.
        assert!(run(&["203.0.113.66|GET|/upload/save_image/a.jpg|200|51"]).is_empty());
    }

    #[test]
    fn rare_script_with_posts() {
        let mut lines = vec!["203.0.113.66|POST|/cache.php|200|51"; 3];
        lines.push("203.0.113.66|POST|/cache.php|200|9051");
        // A popular script, POSTed by many clients, is not rare.
        let popular: Vec<String> = (0..10)
            .map(|i| format!("198.51.100.{i}|POST|/contact.php|200|100|UA|https://shop/"))
            .collect();
        lines.extend(popular.iter().map(|s| s.as_str()));
        // Admin scripts reached by staff only are not rare either.
        lines.push("192.0.2.10|POST|/admin/products/product.php|200|100");
        let f = run(&lines);
        let rare = only(&f, "webshell.rare_script");
        assert_eq!(rare.len(), 1, "{rare:?}");
        assert_eq!(rare[0].paths, vec!["/cache.php"]);
        assert_eq!(rare[0].severity, Severity::High);
    }

    #[test]
    fn command_parameters() {
        let f = run(&["203.0.113.66|GET|/images/x.php?cmd=whoami|200|20"]);
        let c = only(&f, "webshell.command_param");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].severity, Severity::High);
        assert!(
            run(&["198.51.100.1|GET|/index.php?c=products&page=2|200|20"])
                .iter()
                .all(|f| f.rule != "webshell.command_param")
        );
    }

    /// Probes for `n` shell names under upload directories, each answered 200 with the
    /// same `size` bytes (a catch-all page), half of them with `cmd=id`.
    fn catch_all_probes(n: usize, size: u64) -> Vec<String> {
        (0..n)
            .map(|i| {
                let q = if i % 2 == 0 { "?cmd=id" } else { "" };
                format!("203.0.113.45|GET|/html/user_data/p{i}.php{q}|200|{size}")
            })
            .collect()
    }

    #[test]
    fn catch_all_answers_are_probes_but_a_real_shell_still_stands_out() {
        let mut lines = catch_all_probes(40, 8412);
        // A shell in use among them: its answers vary.
        for (i, size) in [8412, 120, 3377, 951].into_iter().enumerate() {
            lines.push(format!(
                "198.51.100.7|POST|/html/user_data/real.php?cmd=whoami{i}|200|{size}"
            ));
        }
        let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        for parts in [1, 3] {
            let f = run_split(&lines, parts);
            let high: Vec<_> = f.iter().filter(|f| f.severity == Severity::High).collect();
            // upload_dir_script, command_param and rare_script.
            assert_eq!(high.len(), 3, "{parts} parts: {high:?}");
            assert!(high
                .iter()
                .all(|f| f.paths == vec!["/html/user_data/real.php"]));
            let up = only(&f, "webshell.upload_dir_script");
            let probes: Vec<_> = up.iter().filter(|f| f.severity == Severity::Low).collect();
            assert_eq!(probes.len(), 1);
            assert!(probes[0].title.contains("catch-all page (40 paths)"));
            assert_eq!(probes[0].count, 40);
            let cmd = only(&f, "webshell.command_param");
            assert_eq!(cmd.len(), 2);
            assert!(cmd
                .iter()
                .any(|f| f.severity == Severity::Low && f.count == 20));
        }
        // POSTs answered by the catch-all page: medium (a shell planted under many names,
        // answering one page to each, would look the same).
        let mut posted = catch_all_probes(40, 8412);
        posted.push("203.0.113.45|POST|/html/user_data/p3.php|200|8412".into());
        let posted: Vec<&str> = posted.iter().map(|s| s.as_str()).collect();
        let up = only(&run(&posted), "webshell.upload_dir_script");
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].severity, Severity::Medium);
    }

    #[test]
    fn one_shell_under_a_few_names_is_not_a_catch_all_page() {
        // Seven paths with one size: the same shell dropped seven times, not a catch-all page.
        let lines = catch_all_probes(7, 8412);
        let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        let up = only(&run(&lines), "webshell.upload_dir_script");
        assert_eq!(up.len(), 7);
        assert!(up.iter().all(|f| f.severity == Severity::High));
        // Small answers never count as a catch-all page's.
        let lines = catch_all_probes(40, 60);
        let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        let up = only(&run(&lines), "webshell.upload_dir_script");
        assert_eq!(up.len(), MAX_PATH_FINDINGS.min(40));
    }

    #[test]
    fn many_answered_paths_are_listed_up_to_a_cap_and_summed_beyond() {
        // 150 scripts answered with sizes all different; path i gets i % 7 POSTs.
        let mut lines = Vec::new();
        for i in 0..150usize {
            lines.push(format!("203.0.113.9|GET|/upload/s{i}.php|200|{}", 1000 + i));
            for k in 0..i % 7 {
                lines.push(format!(
                    "203.0.113.9|POST|/upload/s{i}.php|200|{}",
                    5000 + 150 * k + i
                ));
            }
        }
        let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        let one = run(&lines);
        let up = only(&one, "webshell.upload_dir_script");
        assert_eq!(up.len(), MAX_PATH_FINDINGS + 1);
        let rest: Vec<_> = up
            .iter()
            .filter(|f| f.title.contains("more paths"))
            .collect();
        assert_eq!(rest.len(), 1);
        assert!(rest[0].title.contains("50 more paths"), "{}", rest[0].title);
        assert_eq!(rest[0].severity, Severity::High);
        // Those listed have the most POSTs: the 84 paths with 3 to 6, then 16 of the 22 with
        // 2. Summed: the other 6 with 2, 22 with 1 and 22 with none (6×3 + 22×2 + 22 requests).
        let listed: Vec<_> = up
            .iter()
            .filter(|f| !f.title.contains("more paths"))
            .collect();
        let posts = |f: &&&Finding| f.count - 1;
        assert_eq!(listed.iter().filter(|f| posts(f) >= 3).count(), 84);
        assert!(listed.iter().all(|f| posts(&f) >= 2));
        assert_eq!(rest[0].count, 84);
        // The same whatever the split.
        for parts in [2, 5] {
            let f = run_split(&lines, parts);
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                serde_json::to_string(&one).unwrap(),
                "{parts} parts"
            );
        }
    }

    #[test]
    fn spilled_groups_give_the_findings_kept_ones_do() {
        use crate::testing::{merged_findings, observe_in_chunks};
        let mut lines: Vec<(String, i64)> = catch_all_probes(30, 8412)
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l, i as i64))
            .collect();
        for i in 0..25 {
            lines.push((
                format!(
                    "198.51.100.{}|POST|/html/user_data/s{}.php?cmd=id|200|{}",
                    i % 3,
                    i % 9,
                    300 + i
                ),
                100 + i as i64,
            ));
        }
        let cfg = Arc::new(DetectConfig::default());
        let states = |n: usize, cap: usize| -> Vec<Webshell> {
            (0..n)
                .map(|_| {
                    let mut w = Webshell::new(Arc::clone(&cfg));
                    w.upload_ok.cap = cap;
                    w.scripts.cap = cap;
                    w.commands.cap = cap;
                    w
                })
                .collect()
        };
        let mut whole = states(1, usize::MAX);
        observe_in_chunks(&mut whole, &lines);
        let want = merged_findings(whole);
        assert!(want.contains("catch-all page (30 paths)"), "{want}");
        for (n, cap) in [(1, 1), (1, 4), (3, 2)] {
            let mut s = states(n, cap);
            observe_in_chunks(&mut s, &lines);
            assert!(s.iter().any(|w| w.upload_ok.has_spilled()));
            assert_eq!(merged_findings(s), want, "{n} states, cap {cap}");
        }
    }
}
