//! Log formats: recognising which format a file is in, and parsing its lines into normalized
//! [`Event`]s.
//!
//! Parsing never fails: a parser hands every line to an [`EventSink`] either as an event or as
//! a skip with a reason from [`skip`], so the caller can account for every line. This crate
//! owns format knowledge only; it must not know about files, compression, threads, detection
//! or output. Adding a format means implementing [`Format`] and listing it in [`registry`].

pub mod auth_log;
pub mod aws_waf;
pub mod azure_waf;
pub mod clf;
pub mod cloudflare;
pub mod context;
pub mod eccube_log;
pub mod json_records;
pub mod login_history;
pub mod magento_log;
pub mod modsec_errorlog;
pub mod modsec_json;
pub mod modsec_native;
pub mod nginx_json;
pub mod siteguard;
pub mod time;
pub mod waf_common;

use ecir_model::{Event, SourceKind};

pub use context::ParseContext;

/// Skip reasons, as they appear in `skipped_by_reason`.
pub mod skip {
    pub const UNPARSEABLE: &str = "unparseable";
    pub const BAD_TIMESTAMP: &str = "bad-timestamp";
    pub const EMPTY: &str = "empty";
    pub const TOO_LONG: &str = "line-too-long";
    pub const NUL_BYTES: &str = "nul-bytes";
    pub const UNKNOWN_FORMAT: &str = "unknown-format";
    pub const CONTINUATION: &str = "orphan-continuation";
    /// A line of a mixed log (a web-server error log) that is not a WAF message.
    pub const NOT_WAF: &str = "not-a-waf-message";
    /// A line of a JSON document that only wraps records (`{"records": [`, `]}`).
    pub const JSON_WRAPPER: &str = "json-wrapper";
    /// A multi-line record cut off by the end of the input or by the start of another one.
    pub const TRUNCATED_RECORD: &str = "truncated-record";
    /// A multi-line record larger than the parser buffers (ModSecurity native audit).
    pub const RECORD_TOO_LONG: &str = "record-too-long";
    /// A JSON record of a category the format does not hold (Azure metrics, health).
    pub const OTHER_CATEGORY: &str = "other-category";
    /// A header row of a delimited export (login history CSV).
    pub const HEADER: &str = "header";
}

/// Receives what a parser made of each line.
pub trait EventSink {
    /// A parsed event; `line` is the 1-based number of its (first) line and `raw` its text.
    fn event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]);
    /// A line that produced no event, with the reason.
    fn skip(&mut self, line: u64, reason: &'static str, raw: &[u8]);
    /// `n` further lines belonged to the record just passed to [`EventSink::event`]
    /// (continuation lines of multi-line formats), so they count as parsed.
    fn absorbed(&mut self, _n: u64) {}
    /// A further event from a line already counted (several records on one physical line,
    /// such as a one-line JSON `records` wrapper): an event, but no line. The default passes
    /// it to [`EventSink::event`], so sinks that count lines should override it.
    fn extra_event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
        self.event(ev, line, raw)
    }
}

/// The checks every line parser makes first: blank lines and lines holding NUL bytes are
/// skipped with their reason rather than parsed.
pub fn precheck(bytes: &[u8]) -> Option<&'static str> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        Some(skip::EMPTY)
    } else if memchr::memchr(0, bytes).is_some() {
        Some(skip::NUL_BYTES)
    } else {
        None
    }
}

/// [`precheck`] and reading the line as UTF-8 in one: the line's text (invalid UTF-8
/// replaced), or the reason it is skipped. A line of ASCII without NUL (nearly every line)
/// is proved so in one vector pass instead of a NUL search plus UTF-8 validation.
#[inline]
pub fn line_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, &'static str> {
    use std::borrow::Cow;
    if ascii_without_nul(bytes) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(skip::EMPTY);
        }
        // SAFETY: `ascii_without_nul` returned true, so every byte is below 0x80: a sequence
        // of ASCII bytes is valid UTF-8 (each byte is a one-byte code point).
        return Ok(Cow::Borrowed(unsafe {
            std::str::from_utf8_unchecked(bytes)
        }));
    }
    if let Some(reason) = precheck(bytes) {
        return Err(reason);
    }
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    })
}

/// Whether every byte of `b` is in `1..=0x7f` (ASCII, not NUL). Exact for every input: the
/// blocks are folded with a byte-wise maximum of `byte - 1` (wrapping, so NUL becomes 0xff),
/// which the compiler turns into vector code.
#[inline]
fn ascii_without_nul(b: &[u8]) -> bool {
    const W: usize = 32;
    if b.len() < W {
        return b.iter().all(|&c| c.wrapping_sub(1) < 0x7f);
    }
    let mut max = [0u8; W];
    let mut fold = |block: &[u8]| {
        for (m, &c) in max.iter_mut().zip(block) {
            *m = (*m).max(c.wrapping_sub(1));
        }
    };
    let mut blocks = b.chunks_exact(W);
    for block in &mut blocks {
        fold(block);
    }
    // The last (partial) block, read as the last W bytes: bytes read twice change no maximum.
    fold(&b[b.len() - W..]);
    max.iter().all(|&m| m < 0x7f)
}

/// A stateful parser for one file (or one chunk of one file).
pub trait Parser: Send {
    /// Parses one physical line (without its terminator).
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink);
    /// Flushes a record still open at the end of the input.
    fn finish(&mut self, _sink: &mut dyn EventSink) {}
}

/// One named format (or family of variants) ecir can read.
pub trait Format: Send + Sync {
    /// The variants this format reports, as (name, description) pairs.
    fn variants(&self) -> &'static [(&'static str, &'static str)];
    /// What kind of evidence the format holds.
    fn source(&self) -> SourceKind;
    /// Looks at sample lines from the start of a file; returns the best variant and the share
    /// of sample lines it recognised (0.0..=1.0).
    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)>;
    /// A new parser for the given variant.
    fn parser(&self, variant: usize, ctx: &ParseContext) -> Box<dyn Parser>;
    /// Whether a chunk of the file may start at this line (multi-line records say no for
    /// continuation lines). Line formats accept every line.
    fn is_record_start(&self, _line: &[u8]) -> bool {
        true
    }
}

/// A format variant chosen for a file.
#[derive(Clone, Copy)]
pub struct Chosen {
    pub format: &'static dyn Format,
    pub variant: usize,
    pub confidence: f64,
}

impl Chosen {
    pub fn name(&self) -> &'static str {
        self.format.variants()[self.variant].0
    }
}

static CLF: clf::Clf = clf::Clf;
static NGINX_JSON: nginx_json::NginxJson = nginx_json::NginxJson;
static AUTH_LOG: auth_log::AuthLog = auth_log::AuthLog;
static MODSEC_JSON: modsec_json::ModsecJson = modsec_json::ModsecJson;
static MODSEC_ERRORLOG: modsec_errorlog::ModsecErrorLog = modsec_errorlog::ModsecErrorLog;
static MODSEC_NATIVE: modsec_native::ModsecNative = modsec_native::ModsecNative;
static AWS_WAF: aws_waf::AwsWaf = aws_waf::AwsWaf;
static CLOUDFLARE: cloudflare::Cloudflare = cloudflare::Cloudflare;
static AZURE_WAF: azure_waf::AzureWaf = azure_waf::AzureWaf;
static SITEGUARD: siteguard::SiteGuard = siteguard::SiteGuard;
static ECCUBE_LOG: eccube_log::EccubeLog = eccube_log::EccubeLog;
static LOGIN_HISTORY: login_history::LoginHistory = login_history::LoginHistory;
static MAGENTO_LOG: magento_log::MagentoLog = magento_log::MagentoLog;

/// Every format ecir knows, in detection priority order.
pub fn registry() -> &'static [&'static dyn Format] {
    static ALL: [&'static dyn Format; 13] = [
        &MODSEC_JSON,
        &AWS_WAF,
        &CLOUDFLARE,
        &AZURE_WAF,
        &MODSEC_NATIVE,
        &MODSEC_ERRORLOG,
        &SITEGUARD,
        &NGINX_JSON,
        &CLF,
        &AUTH_LOG,
        &ECCUBE_LOG,
        &LOGIN_HISTORY,
        &MAGENTO_LOG,
    ];
    &ALL
}

/// Lines of a sample a detection looks at, at most.
pub const SAMPLE_LINES: usize = 64;

/// Confidence below which a file's format counts as unknown.
pub const MIN_CONFIDENCE: f64 = 0.3;

/// Picks the format that recognises the largest share of `sample` (empty lines ignored).
pub fn detect(sample: &[&[u8]]) -> Option<Chosen> {
    let lines: Vec<&[u8]> = sample
        .iter()
        .copied()
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
        .take(SAMPLE_LINES)
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut best: Option<Chosen> = None;
    for &format in registry() {
        if let Some((variant, confidence)) = format.detect(&lines) {
            if best.is_none_or(|b| confidence > b.confidence) {
                best = Some(Chosen {
                    format,
                    variant,
                    confidence,
                });
            }
        }
    }
    best.filter(|b| b.confidence >= MIN_CONFIDENCE)
}

/// Finds a format variant by name (`--format`); also accepts a few aliases.
pub fn by_name(name: &str) -> Option<Chosen> {
    let wanted = match name {
        "apache-common" | "nginx-common" | "clf" => "common",
        "apache-combined" | "nginx-combined" | "nginx-main" => "combined",
        "apache-vhost-combined" | "vhost_combined" => "vhost-combined",
        "combined_extra" => "combined-extra",
        "nginx_json" | "json" => "nginx-json",
        other => other,
    };
    for &format in registry() {
        for (i, (n, _)) in format.variants().iter().enumerate() {
            if *n == wanted {
                return Some(Chosen {
                    format,
                    variant: i,
                    confidence: 1.0,
                });
            }
        }
    }
    None
}

/// (name, source, description) of every format variant, for `ecir formats`.
pub fn list() -> Vec<(&'static str, SourceKind, &'static str)> {
    let mut v = Vec::new();
    for &format in registry() {
        for (n, d) in format.variants() {
            v.push((*n, format.source(), *d));
        }
    }
    v
}

/// A sink that collects events as owned debug strings; for tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    #[derive(Default)]
    pub struct Collect {
        pub events: Vec<(u64, Event<'static>)>,
        pub skips: Vec<(u64, &'static str)>,
        /// The detail of each event, in the order of `events`.
        pub details: Vec<ecir_model::EventDetail<'static>>,
        pub absorbed: u64,
        /// Events from lines already counted ([`EventSink::extra_event`]).
        pub extra: u64,
    }

    /// `<workspace>/../shared`, when present (third-party corpora for tests).
    pub fn shared_dir() -> Option<std::path::PathBuf> {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
        d.is_dir().then_some(d)
    }

    pub fn owned_detail(d: &ecir_model::EventDetail<'_>) -> ecir_model::EventDetail<'static> {
        use ecir_model::EventDetail;
        use std::borrow::Cow;
        let o = |c: &Cow<'_, str>| Cow::Owned(c.to_string());
        match d {
            EventDetail::Waf {
                rule_ids,
                messages,
                action,
                severity,
                detection_only,
                attack,
                engine_mode,
                transaction,
            } => EventDetail::Waf {
                rule_ids: rule_ids.iter().map(o).collect(),
                messages: messages.iter().map(o).collect(),
                action: *action,
                severity: severity.as_ref().map(o),
                detection_only: *detection_only,
                attack: *attack,
                engine_mode: engine_mode.as_ref().map(o),
                transaction: transaction.as_ref().map(o),
            },
            EventDetail::Auth {
                program,
                user,
                action,
                outcome,
            } => EventDetail::Auth {
                program: o(program),
                user: user.as_ref().map(o),
                action: o(action),
                outcome: *outcome,
            },
            EventDetail::Login { user, outcome } => EventDetail::Login {
                user: user.as_ref().map(o),
                outcome: *outcome,
            },
            EventDetail::App {
                level,
                channel,
                message,
            } => EventDetail::App {
                level: o(level),
                channel: channel.as_ref().map(o),
                message: o(message),
            },
            _ => EventDetail::Web,
        }
    }

    pub fn owned(ev: &Event<'_>) -> Event<'static> {
        use std::borrow::Cow;
        fn o(c: &Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.as_ref().map(|s| Cow::Owned(s.to_string()))
        }
        Event {
            ts: ev.ts,
            source: ev.source,
            client_ip: ev.client_ip,
            method: o(&ev.method),
            target: o(&ev.target),
            protocol: o(&ev.protocol),
            status: ev.status,
            bytes: ev.bytes,
            referer: o(&ev.referer),
            user_agent: o(&ev.user_agent),
            host: o(&ev.host),
            user: o(&ev.user),
            duration_ms: ev.duration_ms,
            detail: owned_detail(&ev.detail),
            query_memo: Default::default(),
        }
    }

    impl EventSink for Collect {
        fn event(&mut self, ev: &Event<'_>, line: u64, _raw: &[u8]) {
            self.events.push((line, owned(ev)));
            self.details.push(owned_detail(&ev.detail));
        }
        fn skip(&mut self, line: u64, reason: &'static str, _raw: &[u8]) {
            self.skips.push((line, reason));
        }
        fn absorbed(&mut self, n: u64) {
            self.absorbed += n;
        }
        fn extra_event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
            self.extra += 1;
            self.event(ev, line, raw);
        }
    }

    /// One case of a Wazuh ruleset test file (`[title]`, `log N pass|fail = <line>`, `rule = id`).
    pub struct WazuhCase {
        #[allow(dead_code)]
        pub title: String,
        /// (must fire, log line)
        pub logs: Vec<(bool, String)>,
        pub rule: String,
    }

    /// The cases of a Wazuh `.ini` test file, in file order.
    pub fn wazuh_cases(text: &str) -> Vec<WazuhCase> {
        let mut out: Vec<WazuhCase> = Vec::new();
        for l in text.lines() {
            if let Some(t) = l.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                out.push(WazuhCase {
                    title: t.to_string(),
                    logs: Vec::new(),
                    rule: String::new(),
                });
            } else if let (Some(c), Some((k, v))) = (out.last_mut(), l.split_once(" = ")) {
                let k = k.trim();
                if k == "rule" {
                    c.rule = v.trim().to_string();
                } else if k.starts_with("log ") {
                    c.logs.push((k.ends_with("pass"), v.to_string()));
                }
            }
        }
        out
    }

    pub fn parse_all(chosen: Chosen, ctx: &ParseContext, text: &str) -> Collect {
        let mut p = chosen.format.parser(chosen.variant, ctx);
        let mut c = Collect::default();
        for (i, l) in text.lines().enumerate() {
            p.feed(i as u64 + 1, l.as_bytes(), &mut c);
        }
        p.finish(&mut c);
        c
    }
}

#[cfg(test)]
mod line_text_tests {
    use super::*;

    /// The reference: `precheck`, then UTF-8 (lossy when invalid).
    fn slow(bytes: &[u8]) -> Result<String, &'static str> {
        match precheck(bytes) {
            Some(r) => Err(r),
            None => Ok(String::from_utf8_lossy(bytes).into_owned()),
        }
    }

    #[test]
    fn agrees_with_precheck_and_from_utf8() {
        // Every length around the block size, with each kind of odd byte at every position.
        for len in 0..100usize {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let check = |b: &[u8]| {
                let got = line_text(b).map(|c| c.into_owned());
                assert_eq!(got, slow(b), "{b:?}");
            };
            check(&base);
            check(&vec![b' '; len]);
            for pos in 0..len {
                for odd in [0u8, 0x7f, 0x80, 0xc3, 0xe3, 0xff, b'\t', b'\r', 0x0b, b' '] {
                    let mut b = base.clone();
                    b[pos] = odd;
                    check(&b);
                    let mut w = vec![b' '; len];
                    w[pos] = odd;
                    check(&w);
                }
            }
        }
        // Valid multi-byte UTF-8 and a NUL after it.
        for s in ["日本語のログ 1.2.3.4", "\u{3000}", "é\0", "ok\0"] {
            assert_eq!(
                line_text(s.as_bytes()).map(|c| c.into_owned()),
                slow(s.as_bytes())
            );
        }
    }
}
