//! ModSecurity native audit logs: the Serial file (transactions of sections `--<id>-A--` …
//! `--<id>-Z--`, many lines each; v2 and the v3 `---<id>---A--` variant) and the
//! Concurrent-mode index (one line per transaction pointing at its file).
//!
//! A serial transaction becomes one event citing its `A` separator line; its other lines are
//! reported as absorbed. Only extracted fields are kept (bounded), never the raw record; a
//! transaction longer than [`MAX_RECORD_LINES`] lines or [`MAX_RECORD_BYTES`] bytes is skipped
//! as `record-too-long`, every one of its lines counted. Blocked means `Action: Intercepted`
//! or an `Access denied` message in section H; `Apache-Error:` 403s without either are not
//! WAF blocks. `Engine-Mode: "DETECTION_ONLY"` marks detection-only.

use ecir_model::{SourceKind, WafAction};

use crate::context::ParseContext;
use crate::time::TimeCache;
use crate::waf_common::{is_detection_mode, parse_alert, split_request, truncate, WafRecord};
use crate::{skip, EventSink, Format, Parser, RecordLines};

pub struct ModsecNative;

/// Most lines one transaction may have.
pub const MAX_RECORD_LINES: u64 = 100_000;
/// Most bytes one transaction may have.
pub const MAX_RECORD_BYTES: u64 = 32 << 20;

const VARIANTS: &[(&str, &str)] = &[
    (
        "modsec-native",
        "ModSecurity native (Serial) audit log, multi-line sections A..Z (v2 and v3)",
    ),
    (
        "modsec-concurrent-index",
        "ModSecurity Concurrent-mode audit index (one line per transaction, md5 of its file)",
    ),
];

/// `--c7036611-A--` / `---B40Spanu---A--`: the boundary id and the section letter.
pub fn separator(l: &[u8]) -> Option<(&[u8], u8)> {
    let l = l.trim_ascii_end();
    if l.len() < 7 || !l.starts_with(b"--") || !l.ends_with(b"--") {
        return None;
    }
    let inner = &l[2..l.len() - 2];
    let letter = *inner.last()?;
    if !letter.is_ascii_uppercase() || inner.len() < 3 || inner[inner.len() - 2] != b'-' {
        return None;
    }
    let id = inner[..inner.len() - 2].trim_ascii();
    let id = strip_dashes(id);
    (!id.is_empty() && id.iter().all(u8::is_ascii_alphanumeric)).then_some((id, letter))
}

fn strip_dashes(mut b: &[u8]) -> &[u8] {
    while let [b'-', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b'-'] = b {
        b = rest;
    }
    b
}

fn is_index_line(l: &[u8]) -> bool {
    let t = l.trim_ascii_end();
    memchr::memmem::rfind(t, b" md5:").is_some()
        && memchr::memchr(b'[', t).is_some()
        && memchr::memchr(b'"', t).is_some()
}

impl Format for ModsecNative {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let seps = sample.iter().filter(|l| separator(l).is_some()).count();
        let starts = sample
            .iter()
            .filter(|l| separator(l).is_some_and(|s| s.1 == b'A'))
            .count();
        if starts > 0 {
            // Inside a record every line belongs to it: full confidence once a record starts.
            return Some((0, if seps >= 2 { 1.0 } else { 0.5 }));
        }
        let idx = sample.iter().filter(|l| is_index_line(l)).count();
        (idx > 0).then(|| (1, idx as f64 / sample.len() as f64))
    }

    fn parser(&self, variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        if variant == 1 {
            Box::new(IndexParser {
                ctx: ctx.clone(),
                times: TimeCache::default(),
            })
        } else {
            Box::new(SerialParser {
                ctx: ctx.clone(),
                times: TimeCache::default(),
                open: None,
            })
        }
    }

    fn is_record_start(&self, line: &[u8]) -> bool {
        separator(line).is_none_or(|s| s.1 == b'A')
            && (separator(line).is_some() || is_index_line(line))
    }
}

#[derive(Default)]
struct Open {
    first_line: u64,
    /// The lines fed while the transaction was open (the `A` line first).
    lines: RecordLines,
    bytes: u64,
    oversized: bool,
    section: u8,
    b_first: bool,
    f_first: bool,
    a_done: bool,
    remote: Option<String>,
    xff: Option<String>,
    rec: WafRecord,
    intercepted: bool,
    denied: bool,
    /// Condensed text for the evidence: separator, A header, request line, H messages.
    raw: String,
}

struct SerialParser {
    ctx: ParseContext,
    times: TimeCache,
    open: Option<Open>,
}

const RAW_CAP: usize = 4096;

impl SerialParser {
    fn close(&mut self, sink: &mut dyn EventSink) {
        let Some(mut o) = self.open.take() else {
            return;
        };
        if o.oversized {
            // Lines before the cap was hit are skipped here; later ones were skipped as read.
            return;
        }
        if o.rec.ts.is_none() {
            sink.skip(
                o.first_line,
                if o.a_done {
                    skip::BAD_TIMESTAMP
                } else {
                    skip::UNPARSEABLE
                },
                o.raw.as_bytes(),
            );
            for l in o.lines.iter().skip(1) {
                sink.skip(l, skip::CONTINUATION, b"");
            }
            return;
        }
        o.rec.client_ip = o
            .remote
            .as_deref()
            .and_then(|r| self.ctx.client_ip(r, o.xff.as_deref()));
        let matched = !(o.rec.rules.ids.is_empty() && o.rec.rules.messages.is_empty());
        o.rec.action = Some(if o.intercepted || (o.denied && !o.rec.detection_only) {
            WafAction::Blocked
        } else if matched {
            WafAction::LoggedOnly
        } else {
            WafAction::Allowed
        });
        let raw = std::mem::take(&mut o.raw);
        sink.event(&o.rec.event(), o.first_line, raw.as_bytes());
        if o.lines.len() > 1 {
            sink.absorbed(o.lines.len() - 1);
        }
    }

    fn push_raw(o: &mut Open, s: &str) {
        if o.raw.len() < RAW_CAP {
            if !o.raw.is_empty() {
                o.raw.push_str(" | ");
            }
            o.raw
                .push_str(&truncate(s, RAW_CAP - o.raw.len().min(RAW_CAP)));
        }
    }
}

impl Parser for SerialParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some((_, letter)) = separator(bytes) {
            if letter == b'A' {
                self.close(sink);
                let mut o = Open {
                    first_line: line,
                    lines: RecordLines::starting_at(line),
                    section: b'A',
                    ..Default::default()
                };
                Self::push_raw(&mut o, &String::from_utf8_lossy(bytes));
                self.open = Some(o);
                return;
            }
        }
        let Some(o) = self.open.as_mut() else {
            let reason = crate::precheck(bytes).unwrap_or(skip::CONTINUATION);
            return sink.skip(line, reason, bytes);
        };
        if o.oversized {
            return sink.skip(line, skip::RECORD_TOO_LONG, bytes);
        }
        o.lines.push(line);
        o.bytes += bytes.len() as u64 + 1;
        if o.lines.len() > MAX_RECORD_LINES || o.bytes > MAX_RECORD_BYTES {
            o.oversized = true;
            sink.skip(o.first_line, skip::RECORD_TOO_LONG, o.raw.as_bytes());
            for l in o.lines.iter().skip(1).filter(|&l| l != line) {
                sink.skip(l, skip::RECORD_TOO_LONG, b"");
            }
            o.lines.clear();
            return sink.skip(line, skip::RECORD_TOO_LONG, bytes);
        }
        if let Some((_, letter)) = separator(bytes) {
            o.section = letter;
            o.b_first = letter == b'B';
            o.f_first = letter == b'F';
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        let t = text.trim_end();
        match o.section {
            b'A' if !o.a_done && !t.is_empty() => {
                o.a_done = true;
                Self::push_raw(o, t);
                // [09/Jan/2008:12:27:56 +0000] id src_ip src_port dst_ip dst_port
                if let Some(end) = t.find(']') {
                    o.rec.ts = self.times.clf(&t.as_bytes()[1..end]);
                    let mut f = t[end + 1..].split_ascii_whitespace();
                    o.rec.transaction = f.next().map(str::to_string);
                    o.remote = f.next().map(str::to_string);
                }
            }
            b'B' if o.b_first && !t.is_empty() => {
                o.b_first = false;
                Self::push_raw(o, t);
                let (m, tg, p) = split_request(&truncate(t, 8192));
                o.rec.method = m;
                o.rec.target = tg;
                o.rec.protocol = p;
            }
            b'B' => {
                if let Some((k, v)) = t.split_once(':') {
                    let v = truncate(v.trim(), 1024);
                    if k.eq_ignore_ascii_case("host") {
                        o.rec.host = Some(v);
                    } else if k.eq_ignore_ascii_case("user-agent") {
                        o.rec.user_agent = Some(v);
                    } else if k.eq_ignore_ascii_case("x-forwarded-for") {
                        o.xff = Some(v);
                    }
                }
            }
            b'F' if o.f_first && !t.is_empty() => {
                o.f_first = false;
                o.rec.status = t
                    .split_ascii_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok());
            }
            b'H' => {
                if let Some(m) = t
                    .strip_prefix("Message: ")
                    .or_else(|| t.strip_prefix("ModSecurity: "))
                {
                    let a = parse_alert(m);
                    o.denied |= a.disruptive;
                    o.rec.rules.add_alert(&a);
                    Self::push_raw(o, t);
                } else if let Some(a) = t.strip_prefix("Action: ") {
                    o.intercepted |= a.starts_with("Intercepted");
                    Self::push_raw(o, t);
                } else if let Some(e) = t.strip_prefix("Engine-Mode: ") {
                    let e = e.trim_matches('"');
                    o.rec.detection_only = is_detection_mode(e);
                    o.rec.engine_mode = Some(truncate(e, 64));
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, sink: &mut dyn EventSink) {
        self.close(sink);
    }
}

struct IndexParser {
    ctx: ParseContext,
    times: TimeCache,
}

impl Parser for IndexParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        if !is_index_line(bytes) {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        }
        let text = String::from_utf8_lossy(bytes);
        // host ip ident user [time] "request" status bytes "referer" "ua" unique_id "-" file offset size md5:…
        let (Some(ob), Some(cb)) = (text.find('['), text.find(']')) else {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        };
        let Some(ts) = (ob < cb)
            .then(|| self.times.clf(text[ob + 1..cb].as_bytes()))
            .flatten()
        else {
            return sink.skip(line, skip::BAD_TIMESTAMP, bytes);
        };
        let head: Vec<&str> = text[..ob].split_ascii_whitespace().collect();
        let ip = head.get(1).or(head.first()).copied();
        let rest = &text[cb + 1..];
        let mut rec = WafRecord {
            ts: Some(ts),
            host: head.first().map(|h| h.to_string()),
            ..Default::default()
        };
        rec.client_ip = ip.and_then(|i| self.ctx.client_ip(i, None));
        if let Some(q1) = rest.find('"') {
            if let Some(q2) = rest[q1 + 1..].find("\" ") {
                let (m, t, p) = split_request(&rest[q1 + 1..q1 + 1 + q2]);
                (rec.method, rec.target, rec.protocol) = (m, t, p);
                rec.status = rest[q1 + q2 + 3..]
                    .split_ascii_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok());
            }
        }
        rec.action = Some(WafAction::Unknown);
        sink.event(&rec.event(), line, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect;
    use crate::testing::parse_all;
    use ecir_model::{EventDetail, WafClass};

    /// The spec example (unwrapped to one line per header / message, as real files are), the
    /// docker-waf#2 record, and an Apache-Error-only 403 (ModSecurity#262), plus garbage before.
    const SERIAL: &str = r#"stray line before any record
--c7036611-A--
[09/Jan/2008:12:27:56 +0000] OSD4l1BEUOkAAHZ8Y3QAAAAH 209.90.77.54 64995 80.68.80.233 80
--c7036611-B--
GET //EvilBoard_0.1a/index.php?c='/**/union/**/select/**/1,concat(username,char(77),password)/**/from/**/eb_members/**/where/**/userid=1/*http://kamloopstutor.com/images/banners/on.txt? HTTP/1.1
TE: deflate,gzip;q=0.3
Connection: TE, cslose
Host: www.example.com
User-Agent: libwww-perl/5.808

--c7036611-F--
HTTP/1.1 404 Not Found
Content-Length: 223
Connection: close
Content-Type: text/html; charset=iso-8859-1

--c7036611-H--
Message: Warning. Match of "rx ^apache.*perl" against "REQUEST_HEADERS:User-Agent" required. [id "990011"] [msg "Request Indicates an automated program explored the site"] [severity "NOTICE"]
Message: Warning. Pattern match "(?:\\b(?:(?:s(?:elect\\b(?:.{1,100}?\\b...)" at ARGS:c. [id "950001"] [msg "SQL Injection Attack. Matched signature: union select"] [severity "CRITICAL"]
Stopwatch: 1199881676978327 2514 (396 2224 -)
Producer: ModSecurity v2.x.x (Apache 2.x)
Server: Apache/2.x.x

--c7036611-Z--

--b147b831-A--
[11/Jan/2017:23:19:13 +0000] AcAcAcIcAcAcAoOcAcAcAcpc 172.21.0.1 43258 127.0.0.1 80
--b147b831-B--
GET /?param=%22%3E%3Cscript%3Ealert(1);%3C/script%3E HTTP/1.1
Host: 172.17.0.1
--b147b831-F--
HTTP/1.1 200 OK
X-Powered-By: Express
--b147b831-H--
Message: Warning. detected XSS using libinjection. [id "941100"] [msg "XSS Attack Detected via libinjection"] [severity "CRITICAL"]
Engine-Mode: "DETECTION_ONLY"
--b147b831-Z--
--fd52fe53-A--
[14/Apr/2019:06:29:01 +0300] XLKo-X8AAAEAAF6DDlAAAAAA 198.51.100.4 42734 127.0.0.1 81
--fd52fe53-B--
GET /server-status HTTP/1.1
--fd52fe53-F--
HTTP/1.1 403 Forbidden
Vary: Accept-Encoding
Content-Length: 215
Content-Type: text/html; charset=iso-8859-1

--fd52fe53-H--
Apache-Error: [file "/builddir/build/BUILD/httpd-2.2.3/modules/aaa/mod_authz_host.c"] [line 299] [level 3] client denied by server configuration: /home/webapps/surveyhead/current/server-status
--fd52fe53-Z--
---B40Spanu---A--
[20/Jun/2024:18:20:33 +0200] 171890043326.958509 10.3.27.225 45984 10.3.27.226 80
---B40Spanu---B--
GET /?bar=/bin/sh HTTP/1.1
---B40Spanu---H--
ModSecurity: Access denied with code 403 (phase 2). Matched "Operator `PmFromFile' with parameter `unix-shell.data' against variable `ARGS:bar' (Value: `/bin/sh' ) [file "/data/nginx/coreruleset/rules/REQUEST-932-APPLICATION-ATTACK-RCE.conf"] [line "556"] [id "932160"] [rev ""] [msg "Remote Command Execution: Unix Shell Code Found"] [severity "2"]
---B40Spanu---Z--"#;

    #[test]
    fn serial_reference_records() {
        let lines: Vec<&[u8]> = SERIAL.lines().map(str::as_bytes).collect();
        let chosen = detect(&lines).unwrap();
        assert_eq!(chosen.name(), "modsec-native");
        let c = parse_all(chosen, &ParseContext::default(), SERIAL);
        assert_eq!(c.events.len(), 4);
        assert_eq!(c.skips, vec![(1, skip::CONTINUATION)]);
        assert_eq!(
            c.events.len() as u64 + c.skips.len() as u64 + c.absorbed,
            lines.len() as u64
        );
        let (l, e) = &c.events[0];
        assert_eq!(*l, 2);
        assert_eq!(e.client_ip, Some("209.90.77.54".parse().unwrap()));
        assert_eq!(e.status, Some(404));
        assert_eq!(e.host.as_deref(), Some("www.example.com"));
        assert!(e
            .target
            .as_deref()
            .unwrap()
            .starts_with("//EvilBoard_0.1a/index.php?c="));
        let d: Vec<(WafAction, bool, Option<WafClass>)> = c
            .details
            .iter()
            .map(|d| match d {
                EventDetail::Waf {
                    action,
                    detection_only,
                    attack,
                    ..
                } => (*action, *detection_only, *attack),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            d,
            vec![
                (WafAction::LoggedOnly, false, Some(WafClass::Sqli)),
                (WafAction::LoggedOnly, true, Some(WafClass::Xss)),
                (WafAction::Allowed, false, None),
                (WafAction::Blocked, false, Some(WafClass::Rce)),
            ]
        );
        assert_eq!(
            c.events[3].1.ts.unwrap().to_rfc3339(),
            "2024-06-20T18:20:33+02:00"
        );
    }

    #[test]
    fn record_start_and_oversized() {
        let f = &ModsecNative;
        assert!(f.is_record_start(b"--c7036611-A--"));
        assert!(!f.is_record_start(b"--c7036611-B--"));
        assert!(!f.is_record_start(b"Host: x"));
        let mut big = String::from(
            "--aa-A--\n[11/Jan/2017:23:19:13 +0000] X 1.2.3.4 1 5.6.7.8 80\n--aa-C--\n",
        );
        for _ in 0..(MAX_RECORD_LINES + 5) {
            big.push_str("x\n");
        }
        big.push_str("--bb-A--\n[11/Jan/2017:23:19:14 +0000] Y 1.2.3.4 1 5.6.7.8 80\n--bb-Z--\n");
        let c = parse_all(
            crate::by_name("modsec-native").unwrap(),
            &ParseContext::default(),
            &big,
        );
        assert_eq!(c.events.len(), 1);
        let total = big.lines().count() as u64;
        assert_eq!(
            c.events.len() as u64 + c.skips.len() as u64 + c.absorbed,
            total
        );
        assert!(c.skips.iter().all(|s| s.1 == skip::RECORD_TOO_LONG));
    }

    #[test]
    fn a_line_the_caller_skipped_is_not_skipped_again_with_the_transaction() {
        // Line 3 was too long to parse: the caller counted it (`line-too-long`) and did not
        // feed it. The transaction without a time owns lines 1, 2 and 4 only.
        let chosen = crate::by_name("modsec-native").unwrap();
        let mut p = chosen
            .format
            .parser(chosen.variant, &ParseContext::default());
        let mut c = crate::testing::Collect::default();
        for (line, text) in [(1, "--aa-A--"), (2, "not a header"), (4, "--aa-Z--")] {
            p.feed(line, text.as_bytes(), &mut c);
        }
        p.finish(&mut c);
        assert_eq!(
            c.skips,
            vec![
                (1, skip::BAD_TIMESTAMP),
                (2, skip::CONTINUATION),
                (4, skip::CONTINUATION)
            ]
        );
    }

    #[test]
    fn concurrent_index() {
        let idx = r#"localhost 192.0.2.7 - - [04/Jun/2008:15:22:56 +0100] "GET /favicon.ico?x=<script> HTTP/1.1" 404 268 "-" "Mozilla/5.0" SEhOCH8AAQEAAFTYdLYAAAAA "-" /20080604/20080604-1522/20080604-152256-SEhOCH8AAQEAAFTYdLYAAAAA 0 941 md5:e0a6f4bc93e4ec16bb5ee0c3a5c9f2d1"#;
        let chosen = detect(&[idx.as_bytes()]).unwrap();
        assert_eq!(chosen.name(), "modsec-concurrent-index");
        let c = parse_all(chosen, &ParseContext::default(), idx);
        let e = &c.events[0].1;
        assert_eq!(e.client_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(e.status, Some(404));
        assert_eq!(e.target.as_deref(), Some("/favicon.ico?x=<script>"));
    }
}
