//! nginx access logs written as JSON lines (`log_format … escape=json`).
//!
//! JSON access logs are free-form: key names vary (`http_referrer` / `http_referer`), numbers
//! are often quoted, times come as `$time_local`, `$time_iso8601` or `$msec`. The parser maps
//! the usual names (listed in [`KEYS`]) and ignores the rest.

use std::borrow::Cow;

use ecir_model::{Event, SourceKind};
use serde_json::{Map, Value};

use crate::context::ParseContext;
use crate::time::{epoch, iso8601, TimeCache};
use crate::{skip, EventSink, Format, Parser};

pub struct NginxJson;

const VARIANTS: &[(&str, &str)] = &[(
    "nginx-json",
    "nginx access log as JSON lines (escape=json) with the usual field names",
)];

/// Accepted key names per field, first match wins.
pub const KEYS: &[(&str, &[&str])] = &[
    (
        "time",
        &[
            "time_iso8601",
            "time_local",
            "timestamp",
            "@timestamp",
            "time",
            "msec",
        ],
    ),
    (
        "client",
        &[
            "remote_addr",
            "client_ip",
            "clientip",
            "remote_ip",
            "ip",
            "client",
        ],
    ),
    ("xff", &["http_x_forwarded_for", "x_forwarded_for", "xff"]),
    ("method", &["request_method", "method", "request_type"]),
    ("request", &["request"]),
    ("uri", &["request_uri", "uri", "path", "url"]),
    ("query", &["query_string", "args"]),
    (
        "status",
        &["status", "response_code", "response", "status_code"],
    ),
    (
        "bytes",
        &[
            "body_bytes_sent",
            "bytes_sent",
            "bytes",
            "size",
            "total_bytes_sent",
        ],
    ),
    (
        "referer",
        &["http_referer", "http_referrer", "referer", "referrer"],
    ),
    (
        "user_agent",
        &["http_user_agent", "user_agent", "agent", "ua"],
    ),
    ("host", &["host", "http_host", "server_name", "vhost"]),
    ("user", &["remote_user", "user"]),
    ("duration", &["request_time", "duration", "response_time"]),
];

fn get<'v>(m: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
    let names = KEYS.iter().find(|(f, _)| *f == field)?.1;
    names
        .iter()
        .find_map(|n| m.get(*n))
        .filter(|v| !v.is_null())
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.is_empty() || s == "-" => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Format for NginxJson {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Web
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let ctx = ParseContext::default();
        let mut times = TimeCache::default();
        let ok = sample
            .iter()
            .filter(|l| {
                let t = l.trim_ascii_start();
                t.first() == Some(&b'{') && {
                    let mut sink = Probe(false);
                    parse(&ctx, &mut times, 0, l, &mut sink);
                    sink.0
                }
            })
            .count();
        (ok > 0).then(|| (0, ok as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(JsonParser {
            ctx: ctx.clone(),
            times: TimeCache::default(),
        })
    }
}

struct Probe(bool);
impl EventSink for Probe {
    fn event(&mut self, _: &Event<'_>, _: u64, _: &[u8]) {
        self.0 = true;
    }
    fn skip(&mut self, _: u64, _: &'static str, _: &[u8]) {}
}

struct JsonParser {
    ctx: ParseContext,
    times: TimeCache,
}

impl Parser for JsonParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        // `escape=json` escapes control characters: a raw CR separates records.
        if crate::has_bare_cr(bytes) {
            let (ctx, times) = (&self.ctx, &mut self.times);
            return crate::feed_split_at_cr(line, bytes, sink, &mut |record, sink| {
                parse(ctx, times, line, record, sink)
            });
        }
        parse(&self.ctx, &mut self.times, line, bytes, sink)
    }
}

fn parse(
    ctx: &ParseContext,
    times: &mut TimeCache,
    line: u64,
    bytes: &[u8],
    sink: &mut dyn EventSink,
) {
    let text = String::from_utf8_lossy(bytes);
    let map: Map<String, Value> = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(_) => return sink.skip(line, skip::UNPARSEABLE, bytes),
    };
    let Some(time) = get(&map, "time").and_then(as_text) else {
        return sink.skip(line, skip::UNPARSEABLE, bytes);
    };
    let ts = times
        .clf(time.as_bytes())
        .or_else(|| iso8601(time.as_bytes(), ctx))
        .or_else(|| epoch(time.as_bytes()));
    let Some(ts) = ts else {
        return sink.skip(line, skip::BAD_TIMESTAMP, bytes);
    };
    let status = get(&map, "status")
        .and_then(as_text)
        .and_then(|s| s.parse::<u16>().ok());
    let request = get(&map, "request").and_then(as_text);
    if status.is_none() && request.is_none() && get(&map, "uri").is_none() {
        return sink.skip(line, skip::UNPARSEABLE, bytes);
    }
    let (mut method, mut target, mut protocol) = (None, None, None);
    if let Some(r) = &request {
        let mut parts = r.splitn(2, ' ');
        method = parts.next().map(str::to_string);
        if let Some(rest) = parts.next() {
            match rest.rsplit_once(' ') {
                Some((t, p)) if p.starts_with("HTTP/") => {
                    target = Some(t.to_string());
                    protocol = Some(p.to_string());
                }
                _ => target = Some(rest.to_string()),
            }
        }
    }
    if let Some(m) = get(&map, "method").and_then(as_text) {
        method = Some(m);
    }
    if target.is_none() {
        if let Some(uri) = get(&map, "uri").and_then(as_text) {
            let q = get(&map, "query").and_then(as_text);
            target = Some(match q {
                Some(q) if !uri.contains('?') => format!("{uri}?{q}"),
                _ => uri,
            });
        }
    }
    let client = get(&map, "client").and_then(as_text);
    let xff = get(&map, "xff").and_then(as_text);
    let client_ip = client
        .as_deref()
        .and_then(|c| ctx.client_ip(c, xff.as_deref()));
    let duration_ms = get(&map, "duration")
        .and_then(as_text)
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e7)
        .map(|d| (d * 1000.0).round() as u64);
    let ev = Event {
        ts: Some(ts),
        source: Some(SourceKind::Web),
        client_ip,
        method: method.map(Cow::Owned),
        target: target.map(Cow::Owned),
        protocol: protocol.map(Cow::Owned),
        status,
        bytes: get(&map, "bytes")
            .and_then(as_text)
            .and_then(|b| b.parse().ok()),
        referer: get(&map, "referer").and_then(as_text).map(Cow::Owned),
        user_agent: get(&map, "user_agent").and_then(as_text).map(Cow::Owned),
        host: get(&map, "host").and_then(as_text).map(Cow::Owned),
        user: get(&map, "user").and_then(as_text).map(Cow::Owned),
        duration_ms,
        detail: Default::default(),
        query_memo: Default::default(),
    };
    sink.event(&ev, line, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;
    use crate::{by_name, detect};

    const SAMPLE: &str = r#"{"time_local":"12/Mar/2024:10:02:11 +0900", "remote_addr":"198.51.100.23", "client_addr":"198.51.100.23", "request_type": "POST", "request":"POST /admin/login HTTP/2.0", "request_uri": "/admin/login", "query_string": "", "status": "302", "body_bytes_sent":"0", "total_bytes_sent": "512", "request_time":"0.231", "http_referrer":"https://shop.example.jp/admin/login", "http_user_agent":"Mozilla/5.0"}"#;

    #[test]
    fn reference_sample() {
        let chosen = detect(&[SAMPLE.as_bytes()]).unwrap();
        assert_eq!(chosen.name(), "nginx-json");
        let c = parse_all(chosen, &ParseContext::default(), SAMPLE);
        let e = &c.events[0].1;
        assert_eq!(e.method.as_deref(), Some("POST"));
        assert_eq!(e.target.as_deref(), Some("/admin/login"));
        assert_eq!(e.status, Some(302));
        assert_eq!(e.bytes, Some(0));
        assert_eq!(e.duration_ms, Some(231));
        assert_eq!(
            e.referer.as_deref(),
            Some("https://shop.example.jp/admin/login")
        );
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2024-03-12T10:02:11+09:00");
    }

    #[test]
    fn iso_time_and_uri_with_query() {
        let line = r#"{"time_iso8601":"2026-11-03T02:52:40+09:00","remote_addr":"203.0.113.5","request_method":"GET","uri":"/index.php","args":"id=1' or 1=1","status":200,"body_bytes_sent":12}"#;
        let c = parse_all(
            by_name("nginx-json").unwrap(),
            &ParseContext::default(),
            line,
        );
        let e = &c.events[0].1;
        assert_eq!(e.target.as_deref(), Some("/index.php?id=1' or 1=1"));
        assert_eq!(e.status, Some(200));
    }

    #[test]
    fn broken_json_is_skipped() {
        let c = parse_all(
            by_name("nginx-json").unwrap(),
            &ParseContext::default(),
            "{\"time_local\": \"x\", \"status\": 200}\n{not json",
        );
        assert_eq!(
            c.skips,
            vec![(1, skip::BAD_TIMESTAMP), (2, skip::UNPARSEABLE)]
        );
    }
}
