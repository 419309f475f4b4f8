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

use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::{Category, Event, Finding, Severity};
use regex::bytes::Regex;
use rustc_hash::FxHashMap;

use crate::decode::decode_target;
use crate::evidence::{SmallestSet, Span, TopEvidence};
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

#[derive(Default)]
struct Group {
    count: u64,
    ok: u64,
    posts_ok: u64,
    posts_without_referer: u64,
    span: Span,
    ips: SmallestSet<IpAddr>,
    paths: SmallestSet<String>,
    evidence: TopEvidence,
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
        self.paths.insert(truncate(path, 200));
        let weight = match (ok, post) {
            (true, true) => 100,
            (true, false) => 80,
            _ => 10,
        };
        self.evidence.offer(origin, ev.ts, weight);
    }
}

/// State of the web-shell detector.
pub struct Webshell {
    config: Arc<DetectConfig>,
    /// Scripts in writable directories, by path (answered) or all together (refused).
    upload_ok: FxHashMap<String, Group>,
    upload_refused: Group,
    /// Every script path answered 2xx, with its clients (capped) and POST counts.
    scripts: FxHashMap<String, Group>,
    /// Command-like parameters by (path, client).
    commands: FxHashMap<(String, Option<IpAddr>), Group>,
    scratch: Vec<u8>,
}

impl Webshell {
    pub fn new(config: Arc<DetectConfig>) -> Self {
        Webshell {
            config,
            upload_ok: FxHashMap::default(),
            upload_refused: Group::default(),
            scripts: FxHashMap::default(),
            commands: FxHashMap::default(),
            scratch: Vec::new(),
        }
    }
}

fn merge_map<K: std::hash::Hash + Eq>(a: &mut FxHashMap<K, Group>, b: FxHashMap<K, Group>) {
    for (k, g) in b {
        match a.get_mut(&k) {
            Some(m) => m.merge(g),
            None => {
                a.insert(k, g);
            }
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
        decode_target(target, &mut self.scratch);
        let decoded = &self.scratch;
        let qpos = memchr::memchr(b'?', decoded).unwrap_or(decoded.len());
        let path = &decoded[..qpos];
        if !is_script(path) {
            return;
        }
        let p = patterns();
        let path_str = String::from_utf8_lossy(path).into_owned();
        let ok = ev.is_success();
        if p.writable.is_match(path) {
            if ok {
                self.upload_ok
                    .entry(path_str.clone())
                    .or_default()
                    .add(ev, origin, &path_str);
            } else {
                self.upload_refused.add(ev, origin, &path_str);
            }
        }
        if ok && !p.admin_or_platform.is_match(path) {
            self.scripts
                .entry(path_str.clone())
                .or_default()
                .add(ev, origin, &path_str);
        }
        if qpos < decoded.len() && p.command.is_match(&decoded[qpos + 1..]) {
            self.commands
                .entry((path_str.clone(), ev.client_ip))
                .or_default()
                .add(ev, origin, &path_str);
        }
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let other: Webshell = downcast(other);
        merge_map(&mut self.upload_ok, other.upload_ok);
        self.upload_refused.merge(other.upload_refused);
        merge_map(&mut self.scripts, other.scripts);
        merge_map(&mut self.commands, other.commands);
    }

    fn finish(self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        let mut out = Vec::new();
        let ips_of =
            |g: &Group| -> Vec<String> { g.ips.items().iter().map(|i| i.to_string()).collect() };
        let mut upload: Vec<_> = self.upload_ok.into_iter().collect();
        upload.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, g) in upload {
            let mut f = Finding::new(
                "webshell.upload_dir_script",
                Category::Webshell,
                Severity::High,
            );
            f.title = format!("Script executed in a writable directory: {path}");
            f.summary = format!(
                "{path} answered 2xx {} time(s) ({} POST) to {} client(s). Nothing in an upload directory should run as a script: treat it as a web shell, preserve it, then remove it.",
                g.ok,
                g.posts_ok,
                g.ips.items().len()
            );
            fill(&mut f, g, &ips_of);
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
            fill(&mut f, g, &ips_of);
            out.push(f);
        }
        if ctx.distinct_client_ips >= self.config.rare_script_min_site_ips {
            let mut scripts: Vec<_> = self.scripts.into_iter().collect();
            scripts.sort_by(|a, b| a.0.cmp(&b.0));
            for (path, g) in scripts {
                let few = g
                    .ips
                    .exact_len()
                    .is_some_and(|n| n <= self.config.rare_script_max_ips);
                if !few || g.posts_ok == 0 {
                    continue;
                }
                let severity = if g.posts_without_referer >= 3 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let mut f = Finding::new("webshell.rare_script", Category::Webshell, severity);
                f.title = format!(
                    "Script used by only {} client(s): {path}",
                    g.ips.items().len()
                );
                f.summary = format!(
                    "{path} answered {} POST(s) ({} without a Referer) and was reached by no other client among {} seen. A web shell looks like this; so does an admin-only tool: check the file on the server.",
                    g.posts_ok, g.posts_without_referer, ctx.distinct_client_ips
                );
                fill(&mut f, g, &ips_of);
                out.push(f);
            }
        }
        let mut commands: Vec<_> = self.commands.into_iter().collect();
        commands.sort_by(|a, b| a.0.cmp(&b.0));
        for ((path, _ip), g) in commands {
            let severity = if g.ok > 0 {
                Severity::High
            } else {
                Severity::Low
            };
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
            fill(&mut f, g, &ips_of);
            out.push(f);
        }
        out
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

fn fill(f: &mut Finding, g: Group, ips_of: &dyn Fn(&Group) -> Vec<String>) {
    f.first_seen = g.span.first;
    f.last_seen = g.span.last;
    f.ips = ips_of(&g);
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
    use crate::testing::run;

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
}
