//! ModSecurity JSON audit logs, one transaction per line: v2 (`SecAuditLogFormat JSON`, keys
//! `transaction`/`request`/`response`/`audit_data`) and libmodsecurity v3 (`transaction` with
//! `messages[].details`).
//!
//! Blocked is `audit_data.action.intercepted` (v2) or an `Access denied` message; v3 JSON does
//! not say whether it blocked (ModSecurity issue #2054), so a v3 transaction with matches is
//! taken as blocked when the engine was `On` and the response was 4xx/5xx.

use ecir_model::{SourceKind, WafAction};
use serde_json::{Map, Value};

use crate::context::ParseContext;
use crate::time::{iso8601, TimeCache};
use crate::waf_common::{is_detection_mode, parse_alert, split_request, text_class, WafRecord};
use crate::{skip, EventSink, Format, Parser};

pub struct ModsecJson;

const VARIANTS: &[(&str, &str)] = &[
    (
        "modsec2-json",
        "ModSecurity 2.9 JSON audit log (SecAuditLogFormat JSON), one transaction per line",
    ),
    (
        "modsec3-json",
        "libmodsecurity 3 JSON audit log (transaction.messages[].details), one transaction per line",
    ),
];

fn variant_of(m: &Map<String, Value>) -> Option<usize> {
    let t = m.get("transaction")?.as_object()?;
    if m.contains_key("audit_data") || t.contains_key("remote_address") {
        Some(0)
    } else if t.contains_key("time_stamp") || t.contains_key("client_ip") {
        Some(1)
    } else {
        None
    }
}

impl Format for ModsecJson {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let mut counts = [0usize; 2];
        for l in sample {
            if !l.trim_ascii_start().starts_with(b"{\"transaction\"")
                && !l.trim_ascii_start().starts_with(b"{")
            {
                continue;
            }
            if let Ok(m) = serde_json::from_slice::<Map<String, Value>>(l) {
                if let Some(v) = variant_of(&m) {
                    counts[v] += 1;
                }
            } else if memchr::memmem::find(l, b"{\"transaction\":{").is_some() {
                // A truncated record still tells the format.
                let v = usize::from(memchr::memmem::find(l, b"\"time_stamp\"").is_some());
                counts[v] += 1;
            }
        }
        let (v, n) = if counts[1] > counts[0] {
            (1, counts[1])
        } else {
            (0, counts[0])
        };
        (n > 0).then(|| (v, n as f64 / sample.len() as f64))
    }

    fn parser(&self, variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(JsonParser {
            ctx: ctx.clone(),
            times: TimeCache::default(),
            variant,
        })
    }
}

struct JsonParser {
    ctx: ParseContext,
    times: TimeCache,
    variant: usize,
}

impl Parser for JsonParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        // JSON escapes control characters: a raw CR separates records.
        if crate::has_bare_cr(bytes) {
            return crate::feed_split_at_cr(line, bytes, sink, &mut |record, sink| {
                self.feed(line, record, sink)
            });
        }
        let text = String::from_utf8_lossy(bytes);
        let map: Map<String, Value> = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(_) => return sink.skip(line, skip::UNPARSEABLE, bytes),
        };
        let rec = match variant_of(&map).unwrap_or(self.variant) {
            0 => v2(&map, &self.ctx, &mut self.times),
            _ => v3(&map, &self.ctx),
        };
        match rec {
            Ok(r) => sink.event(&r.event(), line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

pub(crate) fn s<'v>(m: &'v Map<String, Value>, k: &str) -> Option<&'v str> {
    m.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "-")
}

pub(crate) fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k)? {
        Value::String(s) if s.is_empty() || s == "-" => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn num(m: &Map<String, Value>, k: &str) -> Option<u16> {
    text(m, k).and_then(|s| s.parse().ok())
}

pub(crate) fn obj<'v>(m: &'v Map<String, Value>, k: &str) -> Option<&'v Map<String, Value>> {
    m.get(k).and_then(Value::as_object)
}

/// A header from a `{name: value}` object, case-insensitively.
pub(crate) fn header<'v>(h: Option<&'v Map<String, Value>>, name: &str) -> Option<&'v str> {
    h?.iter()
        .find(|(k, _)| {
            let k = k.strip_prefix("REQUEST_HEADERS:").unwrap_or(k);
            k.eq_ignore_ascii_case(name)
        })
        .and_then(|(_, v)| v.as_str())
}

/// `13/May/2017:08:39:31 --0400` (ModSecurity 2.9 doubles the sign) or the plain CLF form.
fn v2_time(t: &str, times: &mut TimeCache) -> Option<ecir_model::Timestamp> {
    let fixed = t.replace(" --", " -").replace(" -+", " +");
    times.clf(fixed.as_bytes())
}

/// asctime `Tue Mar 26 14:43:03 2019` / `Thu Dec  7 11:33:42 2017`, local to `--tz`.
pub(crate) fn asctime(t: &str, ctx: &ParseContext) -> Option<ecir_model::Timestamp> {
    let mut it = t.split_ascii_whitespace();
    let _dow = it.next()?;
    let mon = crate::time::month_abbr(it.next()?.as_bytes())?;
    let day: u32 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    let year: i32 = it.next()?.parse().ok()?;
    let (hms, frac) = hms.split_once('.').unwrap_or((hms, ""));
    let mut p = hms.split(':');
    let h: u32 = p.next()?.parse().ok()?;
    let mi: u32 = p.next()?.parse().ok()?;
    let s: u32 = p.next()?.parse().ok()?;
    let ms = frac
        .get(..frac.len().min(3))
        .and_then(|f| format!("{f:0<3}").parse().ok())
        .unwrap_or(0);
    ctx.local_parts(year, mon, day, h, mi, s.min(59), ms)
}

fn v2(
    m: &Map<String, Value>,
    ctx: &ParseContext,
    times: &mut TimeCache,
) -> Result<WafRecord, &'static str> {
    let t = obj(m, "transaction").ok_or(skip::UNPARSEABLE)?;
    let time = s(t, "time").ok_or(skip::UNPARSEABLE)?;
    let ts = v2_time(time, times)
        .or_else(|| iso8601(time.as_bytes(), ctx))
        .ok_or(skip::BAD_TIMESTAMP)?;
    let req = obj(m, "request");
    let headers = req.and_then(|r| obj(r, "headers"));
    let mut rec = WafRecord {
        ts: Some(ts),
        transaction: s(t, "transaction_id").map(str::to_string),
        host: header(headers, "Host").map(str::to_string),
        user_agent: header(headers, "User-Agent").map(str::to_string),
        ..Default::default()
    };
    rec.client_ip =
        s(t, "remote_address").and_then(|a| ctx.client_ip(a, header(headers, "X-Forwarded-For")));
    if let Some(line) = req.and_then(|r| s(r, "request_line")) {
        (rec.method, rec.target, rec.protocol) = split_request(line);
    }
    rec.status = obj(m, "response").and_then(|r| num(r, "status"));
    let audit = obj(m, "audit_data");
    let mut denied = false;
    if let Some(msgs) = audit
        .and_then(|a| a.get("messages"))
        .and_then(Value::as_array)
    {
        for msg in msgs.iter().filter_map(Value::as_str) {
            let a = parse_alert(msg);
            denied |= a.disruptive;
            rec.rules.add_alert(&a);
        }
    }
    let intercepted = audit
        .and_then(|a| obj(a, "action"))
        .and_then(|a| a.get("intercepted"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    rec.engine_mode = audit.and_then(|a| s(a, "engine_mode")).map(str::to_string);
    rec.detection_only = rec.engine_mode.as_deref().is_some_and(is_detection_mode);
    rec.action = Some(if intercepted || (denied && !rec.detection_only) {
        WafAction::Blocked
    } else if rec.rules.ids.is_empty() && rec.rules.messages.is_empty() {
        WafAction::Allowed
    } else {
        WafAction::LoggedOnly
    });
    Ok(rec)
}

fn v3(m: &Map<String, Value>, ctx: &ParseContext) -> Result<WafRecord, &'static str> {
    let t = obj(m, "transaction").ok_or(skip::UNPARSEABLE)?;
    let time = s(t, "time_stamp").ok_or(skip::UNPARSEABLE)?;
    let ts = asctime(time, ctx)
        .or_else(|| iso8601(time.as_bytes(), ctx))
        .ok_or(skip::BAD_TIMESTAMP)?;
    let req = obj(t, "request");
    let headers = req.and_then(|r| obj(r, "headers"));
    let mut rec = WafRecord {
        ts: Some(ts),
        transaction: s(t, "unique_id").or_else(|| s(t, "id")).map(str::to_string),
        host: header(headers, "Host").map(str::to_string),
        user_agent: header(headers, "User-Agent").map(str::to_string),
        ..Default::default()
    };
    rec.client_ip =
        s(t, "client_ip").and_then(|a| ctx.client_ip(a, header(headers, "X-Forwarded-For")));
    if let Some(r) = req {
        rec.method = s(r, "method")
            .or_else(|| s(r, "protocol"))
            .map(str::to_string);
        rec.target = s(r, "uri").map(str::to_string);
        rec.protocol = text(r, "http_version").map(|v| format!("HTTP/{v}"));
    }
    rec.status = obj(t, "response").and_then(|r| num(r, "http_code"));
    rec.engine_mode = obj(t, "producer")
        .and_then(|p| s(p, "secrules_engine"))
        .map(str::to_string);
    rec.detection_only = rec.engine_mode.as_deref().is_some_and(is_detection_mode);
    if let Some(msgs) = t.get("messages").and_then(Value::as_array) {
        for msg in msgs.iter().filter_map(Value::as_object) {
            let d = obj(msg, "details");
            let id = d.and_then(|d| text(d, "ruleId"));
            let sev = d.and_then(|d| text(d, "severity"));
            let message = s(msg, "message");
            let mut class = id.as_deref().and_then(crate::waf_common::crs_class);
            if class.is_none() {
                if let Some(tags) = d.and_then(|d| d.get("tags")).and_then(Value::as_array) {
                    for tag in tags.iter().filter_map(Value::as_str) {
                        if tag.starts_with("attack-") {
                            class = crate::waf_common::better(class, text_class(tag));
                        }
                    }
                }
            }
            if class.is_none() {
                class = message.and_then(text_class);
            }
            rec.rules.add(id.as_deref(), message, sev.as_deref(), class);
        }
    }
    let matched = !(rec.rules.ids.is_empty() && rec.rules.messages.is_empty());
    let engine_on = rec
        .engine_mode
        .as_deref()
        .is_none_or(|e| e.eq_ignore_ascii_case("enabled") || e.eq_ignore_ascii_case("on"));
    rec.action = Some(if !matched {
        WafAction::Allowed
    } else if engine_on && !rec.detection_only && rec.status.is_some_and(|c| c >= 400) {
        WafAction::Blocked
    } else {
        WafAction::LoggedOnly
    });
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{parse_all, shared_dir};
    use crate::{by_name, detect};
    use ecir_model::{EventDetail, WafClass};

    /// ModSecurity#1625 (v3, no messages) and pymodsecurity#17 (v3.0.3, producer) verbatim,
    /// plus the constructed 949110 message from the reference notes in a DetectionOnly record.
    const V3: &str = r#"{"transaction":{"client_ip":"172.26.137.77","time_stamp":"Thu Dec  7 11:33:42 2017","server_id":"d940cf730b6a24e14e4056565f301808532d8d95","client_port":50373,"host_ip":"172.26.137.77","host_port":80,"id":"151261402255.764464","request":{"method":"GET","http_version":1.1,"uri":"/test.html","body":"","headers":{"Host":"bs-nginx5_test.com","User-Agent":"curl/7.54.0","Accept":"*/*"}},"response":{"http_code":200,"headers":{"Server":"nginx/1.11.13","Date":"Thu, 07 Dec 2017 02:33:42 GMT","Content-Length":"64","Content-Type":"text/html","Last-Modified":"Thu, 07 Dec 2017 02:33:02 GMT","Connection":"keep-alive","ETag":"\"5a28a85e-40\"","Accept-Ranges":"bytes"}}}}
{"transaction":{"client_ip":"","time_stamp":"Tue Sep  7 09:25:16 2021","server_id":"4e833a27b13c385e061c4f17e2df0fc8e5108f84","client_port":0,"host_ip":"","host_port":0,"unique_id":"163100671614.861816","request":{"method":"GET","http_version":1.0,"uri":"/test?key1=script","body":"","headers":{}},"response":{"http_code":200},"producer":{"modsecurity":"ModSecurity v3.0.3 (Linux)","connector":"","secrules_engine":"Enabled","components":[]},"messages":[]}}
{"transaction":{"client_ip":"203.0.113.9","time_stamp":"Tue Mar 26 14:43:03 2019","unique_id":"1","request":{"method":"GET","http_version":1.1,"uri":"/shop?id=1%27%20or%201=1","headers":{}},"response":{"http_code":200},"producer":{"secrules_engine":"DetectionOnly"},"messages":[{"message":"SQL Injection Attack Detected via libinjection","details":{"ruleId":"942100","severity":"2","tags":["attack-sqli"]}},{"message":"Inbound Anomaly Score Exceeded (Total Score: 10)","details":{"match":"Matched \"Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `10' )","reference":"","ruleId":"949110","file":"/etc/nginx/modsec/coreruleset-3.3.0/rules/REQUEST-949-BLOCKING-EVALUATION.conf","lineNumber":"80","data":"","severity":"2","ver":"OWASP_CRS/3.3.0","rev":"","tags":["application-multi","language-multi","platform-multi","attack-generic"],"maturity":"0","accuracy":"0"}}]}}
{"transaction":{"client_ip":"127.0.0.1","time_stamp":"Tue Mar 26 14:43:03 2019","server_id":"70cb38a1c36b322ec111f48cc15c3f8c9215ae58","client_port":55630,"host_ip":"127.0.0.1","host_port":80,"unique_id":"155357898313.262841","request":{"method":"GET","http_version":1.1,"uri":"/foo?testparam=thisisatestofmodsecurity","headers":{"User-Agent":"curl/7.29.0","Host":"localhost","Accept":"*/*"}},"response":{"http_code":403,"headers""#;

    #[test]
    fn v3_reference_samples() {
        let chosen = detect(&V3.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "modsec3-json");
        let c = parse_all(chosen, &ParseContext::default(), V3);
        assert_eq!(c.events.len(), 3);
        assert_eq!(c.skips, vec![(4, skip::UNPARSEABLE)]);
        let e = &c.events[0].1;
        assert_eq!(e.client_ip, Some("172.26.137.77".parse().unwrap()));
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2017-12-07T11:33:42+00:00");
        assert_eq!(e.status, Some(200));
        assert_eq!(e.target.as_deref(), Some("/test.html"));
        let d = &c.details[0];
        assert!(matches!(
            d,
            EventDetail::Waf {
                action: WafAction::Allowed,
                ..
            }
        ));
        assert_eq!(c.events[1].1.client_ip, None);
        match &c.details[2] {
            EventDetail::Waf {
                rule_ids,
                action,
                detection_only,
                attack,
                severity,
                ..
            } => {
                assert_eq!(rule_ids, &["942100", "949110"]);
                assert_eq!(*action, WafAction::LoggedOnly);
                assert!(*detection_only);
                assert_eq!(*attack, Some(WafClass::Sqli));
                assert_eq!(severity.as_deref(), Some("2"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v2_corpus_agrees_with_labels() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let path =
            dir.join("corpus/modsecurity-audit-logs/eyesofargus-modsec2-json/modsec_audit.log");
        let Ok(text) = std::fs::read(&path) else {
            eprintln!("skipping: {} not present", path.display());
            return;
        };
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&[u8]> = text.lines().take(64).map(str::as_bytes).collect();
        let chosen = detect(&lines).unwrap();
        assert_eq!(chosen.name(), "modsec2-json");
        let c = parse_all(chosen, &ParseContext::default(), &text);
        // Ground truth from the raw JSON, read independently of the parser.
        let mut truth_blocked = 0;
        let mut truth_sqli = 0;
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["audit_data"]["action"]["intercepted"] == Value::Bool(true) {
                truth_blocked += 1;
            }
            if l.contains("[id \\\"942100\\\"]") {
                truth_sqli += 1;
            }
        }
        assert_eq!(c.events.len() + c.skips.len(), text.lines().count());
        assert!(c.skips.is_empty(), "{:?}", c.skips);
        let blocked = c
            .details
            .iter()
            .filter(|d| {
                matches!(
                    d,
                    EventDetail::Waf {
                        action: WafAction::Blocked,
                        ..
                    }
                )
            })
            .count();
        let sqli = c
            .details
            .iter()
            .filter(|d| matches!(d, EventDetail::Waf { rule_ids, .. } if rule_ids.iter().any(|r| r == "942100")))
            .count();
        eprintln!("modsec2-json corpus: {} transactions, blocked {blocked}/{truth_blocked}, 942100 {sqli}/{truth_sqli}", c.events.len());
        assert_eq!(blocked, truth_blocked);
        assert_eq!(truth_blocked, 38);
        assert_eq!(sqli, truth_sqli);
        let e = &c.events[0].1;
        assert_eq!(e.client_ip, Some("192.168.75.130".parse().unwrap()));
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2017-05-13T08:39:31-04:00");
        assert!(c.events.iter().all(|(_, e)| e.status.is_some()));
        let _ = by_name("modsec2-json").unwrap();
    }
}
