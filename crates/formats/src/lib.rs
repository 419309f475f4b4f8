//! Log formats: recognising which format a file is in, and parsing its lines into normalized
//! [`Event`]s.
//!
//! Parsing never fails: a parser hands every line to an [`EventSink`] either as an event or as
//! a skip with a reason from [`skip`], so the caller can account for every line. This crate
//! owns format knowledge only; it must not know about files, compression, threads, detection
//! or output. Adding a format means implementing [`Format`] and listing it in [`registry`].

pub mod auth_log;
pub mod aws_alb;
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
pub mod w3c;
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
    /// A header row of a delimited export (login history CSV), or a W3C directive
    /// (`#Fields:`, `#Version:`).
    pub const HEADER: &str = "header";
    /// A line of another log type delivered alongside (Network Load Balancer or ALB
    /// connection-log lines in an ALB access-log bucket).
    pub const OTHER_LOG_TYPE: &str = "other-log-type";
    /// A line of a known layout that lacks a field the layout requires, so the fields it has
    /// cannot be told apart (a custom Apache `LogFormat` without the size, whose referer would
    /// read as the user agent).
    pub const MISSING_FIELD: &str = "missing-field";
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
    /// A further record on a line already counted (see [`feed_split_at_cr`]) that could not
    /// be read, with the reason: not a line, so it is counted apart from skipped lines.
    fn extra_skip(&mut self, _line: u64, _reason: &'static str, _raw: &[u8]) {}
    /// Line `line` held `records` records separated by bare carriage returns, each passed on
    /// as an event, an extra event, a skip or an extra skip (see [`feed_split_at_cr`]).
    fn split_at_cr(&mut self, _line: u64, _records: u64) {}
}

/// Feeds the records of a line that holds bare carriage returns (CR not followed by LF) to
/// `parse_one`, one record between each pair of CRs.
///
/// Web servers and JSON encoders escape control characters in the fields they log, so a raw
/// CR inside a line of such a format is a record separator: records written with classic Mac
/// line ends, or joined by a broken shipper. Reading only the first would drop the others
/// without a trace. Every record keeps the physical line's number (what `sed -n Np` shows).
/// The line counts as parsed when any record is read: the first one read is its event, the
/// others extra events, and records that cannot be read are extra skips. When none is read
/// the line is skipped with the first record's reason.
pub fn feed_split_at_cr(
    line: u64,
    bytes: &[u8],
    sink: &mut dyn EventSink,
    parse_one: &mut dyn FnMut(&[u8], &mut dyn EventSink),
) {
    struct Split<'s> {
        inner: &'s mut dyn EventSink,
        read: bool,
        failed: Vec<(&'static str, Vec<u8>)>,
    }
    impl EventSink for Split<'_> {
        fn event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
            if self.read {
                self.inner.extra_event(ev, line, raw);
            } else {
                self.read = true;
                self.inner.event(ev, line, raw);
            }
        }
        fn extra_event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
            self.inner.extra_event(ev, line, raw);
        }
        fn skip(&mut self, _line: u64, reason: &'static str, raw: &[u8]) {
            // Kept to the sample length: only a sample of a record that is not read is shown.
            self.failed
                .push((reason, raw[..raw.len().min(513)].to_vec()));
        }
    }
    let mut split = Split {
        inner: sink,
        read: false,
        failed: Vec::new(),
    };
    let mut records = 0u64;
    for record in bytes.split(|&b| b == b'\r') {
        if record.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records += 1;
        parse_one(record, &mut split);
    }
    let Split {
        inner,
        read,
        failed,
        ..
    } = split;
    if !read {
        let reason = failed.first().map_or(skip::EMPTY, |f| f.0);
        inner.skip(line, reason, bytes);
    } else {
        for (reason, raw) in &failed {
            inner.extra_skip(line, reason, raw);
        }
    }
    inner.split_at_cr(line, records);
}

/// Whether `bytes` holds a carriage return (the line splitter drops only a line's last one).
#[inline]
pub fn has_bare_cr(bytes: &[u8]) -> bool {
    memchr::memchr(b'\r', bytes).is_some()
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
    match read_line(bytes) {
        LineRead::Text(t) => Ok(t),
        LineRead::Skip(reason) => Err(reason),
        // `read_line` made its checks before it looked for a CR.
        LineRead::BareCr => Ok(String::from_utf8_lossy(bytes)),
    }
}

/// What [`read_line`] made of a line.
pub enum LineRead<'a> {
    /// The line's text (invalid UTF-8 replaced).
    Text(std::borrow::Cow<'a, str>),
    /// The line is skipped, for this reason.
    Skip(&'static str),
    /// The line holds a carriage return: for [`feed_split_at_cr`] in formats that escape
    /// control characters.
    BareCr,
}

/// [`line_text`] that also says whether the line holds a carriage return, in the same pass.
#[inline]
pub fn read_line(bytes: &[u8]) -> LineRead<'_> {
    use std::borrow::Cow;
    if ascii_without_nul_or_cr(bytes) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return LineRead::Skip(skip::EMPTY);
        }
        // SAFETY: `ascii_without_nul_or_cr` returned true, so every byte is below 0x80: a
        // sequence of ASCII bytes is valid UTF-8 (each byte is a one-byte code point).
        return LineRead::Text(Cow::Borrowed(unsafe {
            std::str::from_utf8_unchecked(bytes)
        }));
    }
    if let Some(reason) = precheck(bytes) {
        return LineRead::Skip(reason);
    }
    if has_bare_cr(bytes) {
        return LineRead::BareCr;
    }
    LineRead::Text(String::from_utf8_lossy(bytes))
}

/// Whether every byte of `b` is in `1..=0x7f` (ASCII, not NUL) and none is a carriage
/// return. Exact for every input: the blocks are folded with a byte-wise maximum of
/// `byte - 1` (wrapping, so NUL becomes 0xff) and a byte-wise minimum of `byte ^ b'\r'`
/// (zero only for a CR), which the compiler turns into vector code.
#[inline]
fn ascii_without_nul_or_cr(b: &[u8]) -> bool {
    const W: usize = 32;
    if b.len() < W {
        return b.iter().all(|&c| c.wrapping_sub(1) < 0x7f && c != b'\r');
    }
    let mut max = [0u8; W];
    let mut min = [0xffu8; W];
    let mut fold = |block: &[u8]| {
        for ((m, n), &c) in max.iter_mut().zip(min.iter_mut()).zip(block) {
            *m = (*m).max(c.wrapping_sub(1));
            *n = (*n).min(c ^ b'\r');
        }
    };
    let mut blocks = b.chunks_exact(W);
    for block in &mut blocks {
        fold(block);
    }
    // The last (partial) block, read as the last W bytes: bytes read twice change neither.
    fold(&b[b.len() - W..]);
    max.iter().all(|&m| m < 0x7f) && min.iter().all(|&n| n != 0)
}

/// The physical lines a multi-line record accounts for: the lines fed to its parser while it
/// was open, in order.
///
/// They are not always one range: the caller skips a line longer than the input layer keeps
/// (`line-too-long`) without feeding it, so a record may be fed lines 1, 2 and 4. Skipping
/// the record must skip each of its own lines once and not the line the caller already
/// counted, so the gaps are kept. Bounded: at most one gap per line fed, and every parser
/// caps the lines of a record.
#[derive(Clone, Debug, Default)]
pub struct RecordLines {
    first: u64,
    last: u64,
    count: u64,
    /// Lines between `first` and `last` that were not fed, as ranges in order.
    gaps: Vec<std::ops::Range<u64>>,
}

impl RecordLines {
    /// Only `line`.
    pub fn starting_at(line: u64) -> Self {
        RecordLines {
            first: line,
            last: line,
            count: 1,
            gaps: Vec::new(),
        }
    }

    /// Adds `line`, the next line fed (after every line added before).
    pub fn push(&mut self, line: u64) {
        if self.count == 0 {
            *self = Self::starting_at(line);
            return;
        }
        if line > self.last + 1 {
            self.gaps.push(self.last + 1..line);
        }
        self.last = line;
        self.count += 1;
    }

    /// How many lines.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last line added.
    pub fn last(&self) -> Option<u64> {
        (self.count > 0).then_some(self.last)
    }

    /// Forgets every line (they were accounted for).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let mut gaps = self.gaps.iter().peekable();
        // Empty, `first..=last` is `0..=0`: the count says there is no line.
        (self.first..=self.last).filter(move |l| {
            if self.count == 0 {
                return false;
            }
            while gaps.next_if(|g| g.end <= *l).is_some() {}
            !gaps.peek().is_some_and(|g| g.contains(l))
        })
    }
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
static AWS_ALB: aws_alb::AwsAlb = aws_alb::AwsAlb;
static W3C: w3c::W3c = w3c::W3c;
static CLOUDFLARE: cloudflare::Cloudflare = cloudflare::Cloudflare;
static AZURE_WAF: azure_waf::AzureWaf = azure_waf::AzureWaf;
static SITEGUARD: siteguard::SiteGuard = siteguard::SiteGuard;
static ECCUBE_LOG: eccube_log::EccubeLog = eccube_log::EccubeLog;
static LOGIN_HISTORY: login_history::LoginHistory = login_history::LoginHistory;
static MAGENTO_LOG: magento_log::MagentoLog = magento_log::MagentoLog;

/// Every format ecir knows, in detection priority order.
pub fn registry() -> &'static [&'static dyn Format] {
    static ALL: [&'static dyn Format; 15] = [
        &MODSEC_JSON,
        &AWS_WAF,
        &CLOUDFLARE,
        &AZURE_WAF,
        &MODSEC_NATIVE,
        &MODSEC_ERRORLOG,
        &SITEGUARD,
        &NGINX_JSON,
        &AWS_ALB,
        &W3C,
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
        "alb" | "aws-elb" => "aws-alb",
        "cloudfront" => "aws-cloudfront",
        "iis" | "w3c" => "iis-w3c",
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
        /// Records not read on lines already counted ([`EventSink::extra_skip`]).
        pub extra_skips: Vec<(u64, &'static str)>,
        /// (line, records) of lines split at bare CRs ([`EventSink::split_at_cr`]).
        pub splits: Vec<(u64, u64)>,
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
                counted_by,
                policy,
                attack,
                engine_mode,
                transaction,
            } => EventDetail::Waf {
                rule_ids: rule_ids.iter().map(o).collect(),
                messages: messages.iter().map(o).collect(),
                action: *action,
                severity: severity.as_ref().map(o),
                detection_only: *detection_only,
                counted_by: counted_by.iter().map(o).collect(),
                policy: policy.as_ref().map(o),
                attack: *attack,
                engine_mode: engine_mode.as_ref().map(o),
                transaction: transaction.as_ref().map(o),
            },
            EventDetail::Auth {
                program,
                user,
                action,
                outcome,
                pid,
                times,
                remote_name,
            } => EventDetail::Auth {
                program: o(program),
                user: user.as_ref().map(o),
                action: o(action),
                outcome: *outcome,
                pid: *pid,
                times: *times,
                remote_name: remote_name.as_ref().map(o),
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
        fn extra_skip(&mut self, line: u64, reason: &'static str, _raw: &[u8]) {
            self.extra_skips.push((line, reason));
        }
        fn split_at_cr(&mut self, line: u64, records: u64) {
            self.splits.push((line, records));
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
mod record_lines_tests {
    use super::RecordLines;

    #[test]
    fn lines_not_fed_are_not_the_records() {
        let mut r = RecordLines::default();
        assert!(r.is_empty() && r.iter().next().is_none());
        for l in [3, 4, 7, 8, 10] {
            r.push(l);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![3, 4, 7, 8, 10]);
        assert_eq!((r.len(), r.last()), (5, Some(10)));
        r.clear();
        r.push(12);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![12]);
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

#[cfg(test)]
mod cr_split_tests {
    use super::testing::parse_all;
    use super::*;

    const A: &str = r#"1.2.3.4 - - [10/Oct/2026:13:55:36 +0900] "GET /a HTTP/1.1" 200 5 "-" "ua""#;
    const B: &str = r#"5.6.7.8 - - [10/Oct/2026:13:55:37 +0900] "GET /b HTTP/1.1" 404 5 "-" "ua""#;

    fn clf(text: &str) -> testing::Collect {
        parse_all(by_name("combined").unwrap(), &ParseContext::default(), text)
    }

    fn targets(c: &testing::Collect) -> Vec<(u64, String)> {
        c.events
            .iter()
            .map(|(l, e)| (*l, e.target.as_deref().unwrap_or("").to_string()))
            .collect()
    }

    #[test]
    fn read_line_flags_a_carriage_return_in_one_pass() {
        for len in [0usize, 5, 31, 32, 33, 64, 100] {
            let base: String = "a".repeat(len);
            assert!(matches!(read_line(base.as_bytes()), LineRead::Text(_)) || len == 0);
            for pos in 0..len {
                let mut b = base.clone().into_bytes();
                b[pos] = b'\r';
                assert!(matches!(read_line(&b), LineRead::BareCr), "{len} {pos}");
                // NUL wins: the line is skipped whatever else it holds.
                b[(pos + 1) % len] = 0;
                if len > 1 {
                    assert!(matches!(read_line(&b), LineRead::Skip(skip::NUL_BYTES)));
                }
            }
        }
        assert!(matches!(read_line(b" \r "), LineRead::Skip(skip::EMPTY)));
        // Non-ASCII text with a CR takes the slow path and is still flagged.
        assert!(matches!(
            read_line("日本語\rのログ".as_bytes()),
            LineRead::BareCr
        ));
    }

    #[test]
    fn every_clf_record_between_bare_crs_is_read_and_cited_by_its_line() {
        let c = clf(&format!("{A}\r{B}\rnot a record\r\n{A}\n"));
        assert_eq!(
            targets(&c),
            vec![(1, "/a".into()), (1, "/b".into()), (2, "/a".into())]
        );
        assert_eq!(c.extra, 1, "the second record of line 1 is an extra event");
        assert_eq!(c.extra_skips, vec![(1, skip::UNPARSEABLE)]);
        assert_eq!(c.splits, vec![(1, 3)]);
        assert!(c.skips.is_empty());
    }

    #[test]
    fn a_line_none_of_whose_records_reads_is_skipped_with_the_first_reason() {
        let c = clf("garbage\rmore garbage\n");
        assert!(c.events.is_empty());
        assert_eq!(c.skips, vec![(1, skip::UNPARSEABLE)]);
        assert!(c.extra_skips.is_empty());
        assert_eq!(c.splits, vec![(1, 2)]);
        // A record that fails first and one that reads after it: the line is read.
        let c = clf(&format!("garbage\r{B}\n"));
        assert_eq!(targets(&c), vec![(1, "/b".into())]);
        assert_eq!(c.extra, 0);
        assert_eq!(c.extra_skips, vec![(1, skip::UNPARSEABLE)]);
    }

    #[test]
    fn blank_records_between_crs_are_not_counted() {
        let c = clf(&format!("\r\r{A}\r  \r{B}\r\n"));
        assert_eq!(targets(&c), vec![(1, "/a".into()), (1, "/b".into())]);
        assert_eq!(c.splits, vec![(1, 2)]);
        assert!(c.extra_skips.is_empty() && c.skips.is_empty());
    }

    #[test]
    fn json_line_formats_split_at_bare_crs_too() {
        let a = r#"{"time_iso8601":"2026-11-03T02:52:40+09:00","remote_addr":"203.0.113.5","request":"GET /x HTTP/1.1","status":"200"}"#;
        let b = r#"{"time_iso8601":"2026-11-03T02:52:41+09:00","remote_addr":"203.0.113.6","request":"GET /y HTTP/1.1","status":"200"}"#;
        let c = parse_all(
            by_name("nginx-json").unwrap(),
            &ParseContext::default(),
            &format!("{a}\r{b}\n"),
        );
        assert_eq!(targets(&c), vec![(1, "/x".into()), (1, "/y".into())]);
        assert_eq!(c.splits, vec![(1, 2)]);
    }
}
