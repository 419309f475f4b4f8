//! W3C extended access logs, as web events: Amazon CloudFront standard logs (tab-separated,
//! values percent-encoded) and Microsoft IIS (space-separated, `+` for a space in agents).
//!
//! A `#Fields:` directive names the columns, and may come again mid-file with another set (a
//! changed logging configuration, a restart), so the parser reads every one; other
//! directives (`#Version:`, `#Software:`, `#Date:`) are skipped as `header`. A line whose
//! column count differs from the last `#Fields:` is read with an earlier set of that count
//! when there is one (real files hold such lines), else with the last set, short rows
//! included (CloudFront's last line may be cut). Lines before any `#Fields:` are read with the
//! default set of the variant (CloudFront's 33 legacy fields, IIS 7's 15). `date` and `time`
//! are UTC. A file is only split into chunks at a `#Fields:` line, so every chunk knows its
//! columns.

use std::borrow::Cow;

use ecir_model::{Event, SourceKind};

use crate::time::iso8601;
use crate::{skip, EventSink, Format, ParseContext, Parser};

pub struct W3c;

const VARIANTS: &[(&str, &str)] = &[
    (
        "aws-cloudfront",
        "Amazon CloudFront standard access log (W3C, tab-separated, #Fields header, UTC)",
    ),
    (
        "iis-w3c",
        "Microsoft IIS W3C extended log (space-separated, #Fields header, UTC)",
    ),
];
const CLOUDFRONT: usize = 0;
const IIS: usize = 1;

/// CloudFront's legacy standard-log fields, for lines before any `#Fields:`.
const CLOUDFRONT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
/// IIS 7's default fields, for lines before any `#Fields:`.
const IIS_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

/// Column sets a parser remembers, at most (a file re-emits its header often, mostly the same).
const MAX_SCHEMAS: usize = 8;

/// Where each field ecir reads sits in a row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Schema {
    columns: usize,
    date: Option<usize>,
    time: Option<usize>,
    client: Option<usize>,
    method: Option<usize>,
    stem: Option<usize>,
    query: Option<usize>,
    status: Option<usize>,
    bytes: Option<usize>,
    agent: Option<usize>,
    referer: Option<usize>,
    user: Option<usize>,
    host: Option<usize>,
    /// A host header logged under another name (CloudFront's `x-host-header`): preferred.
    viewer_host: Option<usize>,
    time_taken: Option<usize>,
    protocol: Option<usize>,
    xff: Option<usize>,
    /// CloudFront's time-taken is in seconds, IIS's in milliseconds.
    seconds: bool,
    /// Named by a `#Fields:` directive of the file, not the variant's default.
    declared: bool,
}

impl Schema {
    /// The columns of a `#Fields:` directive's names.
    fn of(names: &str) -> Option<Schema> {
        let mut s = Schema::default();
        for (i, name) in names.split_ascii_whitespace().enumerate() {
            s.columns = i + 1;
            let slot = match name.to_ascii_lowercase().as_str() {
                "date" => &mut s.date,
                "time" => &mut s.time,
                "c-ip" => &mut s.client,
                "cs-method" => &mut s.method,
                "cs-uri-stem" => &mut s.stem,
                "cs-uri-query" => &mut s.query,
                "sc-status" => &mut s.status,
                "sc-bytes" => &mut s.bytes,
                "cs(user-agent)" => &mut s.agent,
                "cs(referer)" => &mut s.referer,
                "cs-username" => &mut s.user,
                "cs-host" | "cs(host)" => &mut s.host,
                "x-host-header" => &mut s.viewer_host,
                "time-taken" => &mut s.time_taken,
                "cs-version" | "cs-protocol-version" => &mut s.protocol,
                "x-forwarded-for" | "cs(x-forwarded-for)" | "x_forwarded_for" => &mut s.xff,
                "x-edge-location" => {
                    s.seconds = true;
                    continue;
                }
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        s.declared = true;
        (s.date.is_some() && s.time.is_some() && (s.stem.is_some() || s.status.is_some()))
            .then_some(s)
    }
}

/// The names of a `#Fields:` directive line, if it is one.
fn fields_directive(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(b"#Fields:")?;
    std::str::from_utf8(rest).ok()
}

fn default_schema(variant: usize) -> Schema {
    let names = if variant == CLOUDFRONT {
        CLOUDFRONT_FIELDS
    } else {
        IIS_FIELDS
    };
    let mut s = Schema::of(names).expect("the default fields name date, time and status");
    s.declared = false;
    s
}

/// Whether a row read with a default set (no `#Fields:` seen) really is one: the set's
/// column count (CloudFront's last row may be cut short), an address for the client, a
/// method in capitals and a numeric status. Other logs also start with a date and a time.
fn plausible_undeclared(cols: &[&str], s: &Schema) -> bool {
    let at = |i: Option<usize>| i.and_then(|i| cols.get(i)).copied().unwrap_or("");
    let columns_ok = if s.seconds {
        cols.len() >= 24 && cols.len() <= s.columns
    } else {
        cols.len() == s.columns
    };
    columns_ok
        && crate::context::parse_ip(at(s.client)).is_some()
        && !at(s.method).is_empty()
        && at(s.method).bytes().all(|b| b.is_ascii_uppercase())
        && at(s.status).len() == 3
        && at(s.status).bytes().all(|b| b.is_ascii_digit())
}

/// The variant a `#Fields:` directive or a row without one suggests.
fn variant_of_fields(names: &str) -> usize {
    if names.contains("x-edge-") {
        CLOUDFRONT
    } else {
        IIS
    }
}

impl Format for W3c {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Web
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        // The variant: from the first `#Fields:`, else from the rows' separator.
        let variant = sample
            .iter()
            .find_map(|l| fields_directive(l))
            .map(variant_of_fields)
            .unwrap_or_else(|| {
                if sample.iter().any(|l| l.contains(&b'\t')) {
                    CLOUDFRONT
                } else {
                    IIS
                }
            });
        let mut p = W3cParser::new(variant, ParseContext::default());
        let mut counter = Count::default();
        for (i, l) in sample.iter().enumerate() {
            p.feed(i as u64 + 1, l, &mut counter);
        }
        // A file of directives only is not enough: some row must read.
        (counter.events > 0).then(|| {
            let ok = counter.events + counter.directives;
            (variant, ok as f64 / sample.len() as f64)
        })
    }

    fn parser(&self, variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(W3cParser::new(variant, ctx.clone()))
    }

    fn is_record_start(&self, line: &[u8]) -> bool {
        line.starts_with(b"#Fields:")
    }
}

/// Counts what a sample made, for [`W3c::detect`].
#[derive(Default)]
struct Count {
    events: usize,
    directives: usize,
}

impl EventSink for Count {
    fn event(&mut self, _: &Event<'_>, _: u64, _: &[u8]) {
        self.events += 1;
    }
    fn skip(&mut self, _: u64, reason: &'static str, _: &[u8]) {
        if reason == skip::HEADER {
            self.directives += 1;
        }
    }
}

struct W3cParser {
    ctx: ParseContext,
    variant: usize,
    /// Column sets seen, the last one last; the variant's default before any.
    schemas: Vec<Schema>,
}

impl W3cParser {
    fn new(variant: usize, ctx: ParseContext) -> Self {
        W3cParser {
            ctx,
            variant,
            schemas: vec![default_schema(variant)],
        }
    }

    /// The set to read a row of `columns` with: the last of that count, else the last.
    fn schema_for(&self, columns: usize) -> &Schema {
        self.schemas
            .iter()
            .rev()
            .find(|s| s.columns == columns)
            .unwrap_or_else(|| self.schemas.last().expect("a default set"))
    }
}

impl Parser for W3cParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        if bytes.first() == Some(&b'#') {
            if let Some(schema) = fields_directive(bytes).and_then(Schema::of) {
                self.schemas.retain(|s| *s != schema);
                self.schemas.push(schema);
                if self.schemas.len() > MAX_SCHEMAS {
                    self.schemas.remove(0);
                }
            }
            return sink.skip(line, skip::HEADER, bytes);
        }
        let text = String::from_utf8_lossy(bytes);
        // CloudFront separates with tabs (values never hold one); IIS with spaces.
        let cols: Vec<&str> = if text.contains('\t') {
            text.split('\t').collect()
        } else {
            text.split(' ').collect()
        };
        let schema = self.schema_for(cols.len());
        if !schema.declared && !plausible_undeclared(&cols, schema) {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        }
        match row(&cols, schema, self.variant, &self.ctx) {
            Ok(ev) => sink.event(&ev, line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

/// One row read with `s`.
fn row<'a>(
    cols: &[&str],
    s: &Schema,
    variant: usize,
    ctx: &ParseContext,
) -> Result<Event<'a>, &'static str> {
    let get = |i: Option<usize>| {
        i.and_then(|i| cols.get(i))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && *v != "-")
    };
    let (date, time) = (get(s.date), get(s.time));
    let (Some(date), Some(time)) = (date, time) else {
        return Err(skip::UNPARSEABLE);
    };
    let ts = utc_time(date, time, ctx).ok_or(skip::BAD_TIMESTAMP)?;
    let status = get(s.status).and_then(|v| v.parse::<u16>().ok());
    let stem = get(s.stem);
    if status.is_none() && stem.is_none() {
        return Err(skip::UNPARSEABLE);
    }
    // CloudFront writes 000 when the viewer left before the response.
    let status = status.filter(|s| (100..=999).contains(s));
    let target = stem.map(|stem| match get(s.query) {
        Some(q) => format!("{stem}?{q}"),
        None => stem.to_string(),
    });
    let text = |v: &str| -> Cow<'a, str> {
        if variant == CLOUDFRONT {
            Cow::Owned(percent_decode_text(v))
        } else {
            Cow::Owned(v.replace('+', " "))
        }
    };
    let client_ip = get(s.client).and_then(|c| ctx.client_ip(c, get(s.xff)));
    let duration_ms = get(s.time_taken)
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0 && *t < 1e10)
        .map(|t| if s.seconds { t * 1000.0 } else { t }.round() as u64);
    Ok(Event {
        ts: Some(ts),
        source: Some(SourceKind::Web),
        client_ip,
        method: get(s.method).map(|m| Cow::Owned(m.to_string())),
        target: target.map(Cow::Owned),
        protocol: get(s.protocol).map(|p| Cow::Owned(p.to_string())),
        status,
        bytes: get(s.bytes).and_then(|b| b.parse().ok()),
        referer: get(s.referer).map(text),
        user_agent: get(s.agent).map(text),
        host: get(s.viewer_host)
            .or(get(s.host))
            .map(|h| Cow::Owned(h.to_string())),
        user: get(s.user).map(|u| Cow::Owned(u.to_string())),
        duration_ms,
        detail: Default::default(),
        query_memo: Default::default(),
    })
}

/// A row's `date` and `time` (UTC) read as one ISO 8601 time, without allocating.
fn utc_time(date: &str, time: &str, ctx: &ParseContext) -> Option<ecir_model::Timestamp> {
    let mut buf = [0u8; 48];
    let n = date.len() + time.len() + 2;
    if n > buf.len() {
        return None;
    }
    buf[..date.len()].copy_from_slice(date.as_bytes());
    buf[date.len()] = b'T';
    buf[date.len() + 1..n - 1].copy_from_slice(time.as_bytes());
    buf[n - 1] = b'Z';
    iso8601(&buf[..n], ctx)
}

/// `%XX` decoded once (CloudFront encodes spaces and other bytes in agents and referers);
/// invalid escapes kept as written, invalid UTF-8 replaced.
fn percent_decode_text(v: &str) -> String {
    if !v.contains('%') {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;
    use crate::{by_name, detect};

    const CF: &str = "#Version: 1.0
#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end
2019-12-04\t21:02:31\tLAX1\t392\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t-\t-\tHit\tSOX4==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-
2022-04-19\t12:29:36\tSEA19-C2\t10157\t81.2.69.143\tPOST\td111111abcdef8.cloudfront.net\t/getApplications\t000\thttps://test.com/global\tcurl/7.81.0\tsource=global\t-\tMiss\thrs==\ttest.com\thttps\t1057\t0.238\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t4203\t0.238\tMiss\tapplication/json\t-\t-\t-
2022-11-15\t08:43:04\tSEA19-C2\t10157\t81.2.69.143\tGET\td111111abcdef8.cloudfront.net\t/getApplications\t200\thttps://test.com/global\tHeadlessChrome/100\t-\t-\tMiss\thrs==\ttest.com\thttps\t1057\t0.093\t81.2.69.142,216.160.83.56\tTLSv1.2\tECDHE\tMiss\tHTTP/1.1\t-\t-\t33359\t0.093\tMiss\tapplication/javascript\t-\t-\t-
2024-07-13\t15:29:45\tEWR53-C1\t198083\t127.0.0.1\tGET\txx.cloudfront.net\t/en(test)\t404\thttps://domain.tld/\tUser-Agent:%20Mozilla/4.0\t-\tcookie\tError\tsomevalidbase64==\tdomain.tld\thttps\t609\t0.318\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tError\tHTTP/1.1\t-\t-\t50294\t0.318\tError\ttext/html\t-
";

    const IIS_LOG: &str = "#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2018-01-01 08:09:10
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2018-01-01 08:09:10 127.0.0.1 GET / q=100 80 - 81.2.69.143 Mozilla/5.0+(Windows+NT+6.1;+Win64;+x64;+rv:57.0)+Gecko/20100101+Firefox/57.0 - 200 0 0 123
#Fields: date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs-version cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken
2018-01-01 10:11:12 W3SVC1 MACHINE-NAME 127.0.0.1 GET /admin/login - 80 staff 81.2.69.143 HTTP/1.1 Mozilla/5.0+(Macintosh) - - example.com 302 0 0 123 456 789
2018-12-31 12:52:33 10.44.0.136 GET /${#context['xwork.MethodAccessor.denyMethodExecution']=!(#_memberAccess['allowStaticMethodAccess']=true)}.action - 443 - 10.50.6.188 Mozilla/4.0+(compatible;+MSIE+8.0) - 404 0 2 0
";

    #[test]
    fn cloudfront_rows_with_header() {
        let chosen = detect(&CF.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "aws-cloudfront");
        let c = parse_all(chosen, &ParseContext::default(), CF);
        assert_eq!(c.skips, vec![(1, skip::HEADER), (2, skip::HEADER)]);
        assert_eq!(c.events.len(), 4, "the cut last row is read too");
        let e = &c.events[0].1;
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2019-12-04T21:02:31+00:00");
        assert_eq!(e.client_ip.unwrap().to_string(), "89.160.20.112");
        assert_eq!(e.target.as_deref(), Some("/index.html"));
        assert_eq!(e.status, Some(200));
        assert_eq!(e.bytes, Some(392));
        assert_eq!(
            e.user_agent.as_deref(),
            Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        );
        assert_eq!(e.host.as_deref(), Some("d111111abcdef8.cloudfront.net"));
        assert_eq!(e.duration_ms, Some(1));
        let e = &c.events[1].1;
        assert_eq!(e.method.as_deref(), Some("POST"));
        assert_eq!(e.target.as_deref(), Some("/getApplications?source=global"));
        assert_eq!(e.status, None, "000: the viewer left");
        assert_eq!(e.host.as_deref(), Some("test.com"), "the viewer's Host");
        assert_eq!(e.duration_ms, Some(238));
        assert_eq!(c.events[3].1.status, Some(404));
    }

    #[test]
    fn cloudfront_forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let mut ctx = ParseContext::default();
        let c = parse_all(by_name("aws-cloudfront").unwrap(), &ctx, CF);
        assert_eq!(c.events[2].1.client_ip.unwrap().to_string(), "81.2.69.143");
        ctx.trust_proxy = vec!["81.2.69.0/24".parse().unwrap()];
        let c = parse_all(by_name("aws-cloudfront").unwrap(), &ctx, CF);
        assert_eq!(
            c.events[2].1.client_ip.unwrap().to_string(),
            "216.160.83.56"
        );
    }

    #[test]
    fn iis_fields_change_mid_file_and_mismatched_rows_use_an_earlier_set() {
        let chosen = detect(&IIS_LOG.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "iis-w3c");
        let c = parse_all(chosen, &ParseContext::default(), IIS_LOG);
        assert_eq!(c.events.len(), 3, "{:?}", c.skips);
        let e = &c.events[0].1;
        assert_eq!(e.target.as_deref(), Some("/?q=100"));
        assert_eq!(e.client_ip.unwrap().to_string(), "81.2.69.143");
        assert_eq!(
            e.user_agent.as_deref(),
            Some("Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:57.0) Gecko/20100101 Firefox/57.0")
        );
        assert_eq!(e.duration_ms, Some(123));
        let e = &c.events[1].1;
        assert_eq!(e.target.as_deref(), Some("/admin/login"));
        assert_eq!(e.user.as_deref(), Some("staff"));
        assert_eq!(e.status, Some(302));
        assert_eq!(e.bytes, Some(123));
        assert_eq!(e.host.as_deref(), Some("example.com"));
        assert_eq!(e.protocol.as_deref(), Some("HTTP/1.1"));
        // Fifteen columns after a 22-column header: read with the first set.
        let e = &c.events[2].1;
        assert_eq!(e.client_ip.unwrap().to_string(), "10.50.6.188");
        assert_eq!(e.status, Some(404));
        assert!(e.target.as_deref().unwrap().starts_with("/${#context"));
    }

    #[test]
    fn rows_before_any_header_use_the_default_set_and_chunks_start_at_fields() {
        let row = "2024-03-12\t15:22:28\tCDG50-P2\t703\t1.2.3.4\tGET\td6.cloudfront.net\t/testseb\t400\t-\tcurl/7.81.0\tquery_param=42\t-\tError\t375==\thub.example\thttps\t62\t0.113\t-\tTLSv1.3\tTLS\tError\tHTTP/2.0\t-\t-\t51754\t0.113\tError\ttext/plain\t20\t-\t-";
        let chosen = detect(&[row.as_bytes()]).unwrap();
        assert_eq!(chosen.name(), "aws-cloudfront");
        let c = parse_all(chosen, &ParseContext::default(), row);
        assert_eq!(
            c.events[0].1.target.as_deref(),
            Some("/testseb?query_param=42")
        );
        assert!(W3c.is_record_start(b"#Fields: date time"));
        assert!(!W3c.is_record_start(row.as_bytes()));
        assert!(!W3c.is_record_start(b"#Version: 1.0"));
    }

    #[test]
    fn garbage_rows_are_skipped_with_reasons() {
        let text = "#Fields: date time c-ip cs-method cs-uri-stem sc-status\n2024-13-40 10:00:00 1.2.3.4 GET / 200\nhello\n2024-01-01 10:00:00 1.2.3.4 GET - -\n";
        let c = parse_all(by_name("iis-w3c").unwrap(), &ParseContext::default(), text);
        assert_eq!(
            c.skips,
            vec![
                (1, skip::HEADER),
                (2, skip::BAD_TIMESTAMP),
                (3, skip::UNPARSEABLE),
                (4, skip::UNPARSEABLE)
            ]
        );
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode_text("a%20b%2"), "a b%2");
        assert_eq!(percent_decode_text("%zz%4"), "%zz%4");
        assert_eq!(percent_decode_text("%E3%81%82"), "あ");
    }

    #[test]
    fn corpus_cloudfront_and_iis_files() {
        let Some(dir) = crate::testing::shared_dir() else {
            eprintln!("skipped: ../shared is absent");
            return;
        };
        let cf = std::fs::read_to_string(
            dir.join("corpus/crowdsec-hub-tests/tests/aws-cloudfront-logs/aws-cloudfront-logs.log"),
        )
        .unwrap();
        let sample: Vec<&[u8]> = cf.lines().map(str::as_bytes).collect();
        let chosen = detect(&sample).unwrap();
        assert_eq!(chosen.name(), "aws-cloudfront");
        let c = parse_all(chosen, &ParseContext::default(), &cf);
        assert_eq!(c.events.len(), 2);
        assert!(c.events.iter().all(|(_, e)| e.status == Some(400)
            && e.client_ip.unwrap().to_string() == "1.2.3.4"
            && e.host.as_deref() == Some("hub-cdn.crowdsec.net")));

        let iis = std::fs::read_to_string(dir.join("corpus/beats-iis-w3c/test.log")).unwrap();
        let sample: Vec<&[u8]> = iis.lines().map(str::as_bytes).collect();
        let chosen = detect(&sample).unwrap();
        assert_eq!(chosen.name(), "iis-w3c");
        let c = parse_all(chosen, &ParseContext::default(), &iis);
        let data_rows = iis
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        assert_eq!(c.events.len(), data_rows, "{:?}", c.skips);
        assert!(c
            .events
            .iter()
            .any(|(_, e)| e.target.as_deref().is_some_and(|t| t.contains("xwork"))));
    }
}
