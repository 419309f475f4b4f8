//! Azure Application Gateway WAF logs (`ApplicationGatewayFirewallLog`), one JSON record per
//! line with `properties.{clientIp, requestUri, ruleId, ruleGroup, message, action, details,
//! hostname, transactionId}`; the time key is `time`, `timestamp` or `timeStamp`.
//!
//! Actions: `Blocked` blocks; `Matched` is one rule of an anomaly-scored request (logged);
//! `Detected` is a detection-mode policy letting the request through; `Allowed` allows.
//! Records of other categories (access log, metrics, health) are skipped as `other-category`.
//!
//! Diagnostic blobs wrap the records in `{"records": [ … ]}`, pretty-printed or one record
//! per line; [`crate::json_records`] assembles them (bounded, one record at a time). Only
//! lines starting a `{"…` object may begin a parallel chunk, so pretty-printed documents are
//! read by one worker.

use ecir_model::{SourceKind, WafAction};
use serde_json::{Map, Value};

use crate::aws_waf::any_time;
use crate::context::ParseContext;
use crate::modsec_json::{obj, s, text};
use crate::waf_common::{better, crs_class, text_class, WafRecord};
use crate::{skip, Format, Parser};

pub struct AzureWaf;

const VARIANTS: &[(&str, &str)] = &[(
    "azure-appgw-waf",
    "Azure Application Gateway WAF log (ApplicationGatewayFirewallLog JSON records)",
)];

fn is_azure(m: &Map<String, Value>) -> bool {
    m.get("category")
        .and_then(Value::as_str)
        .is_some_and(|c| c.starts_with("ApplicationGateway"))
        || m.get("operationName")
            .and_then(Value::as_str)
            .is_some_and(|c| c.starts_with("ApplicationGateway"))
}

impl Format for AzureWaf {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let lines = crate::waf_common::detect_json_lines(sample, is_azure);
        // A `records` wrapper (pretty-printed, or records ending in commas): the sample starts
        // the document and names the wrapper and an Application Gateway category.
        let starts_doc = sample
            .iter()
            .map(|l| l.trim_ascii())
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.starts_with(b"{"));
        let has = |needle: &[u8]| {
            sample
                .iter()
                .any(|l| memchr::memmem::find(l, needle).is_some())
        };
        let wrapped =
            (starts_doc && has(b"\"records\"") && has(b"\"ApplicationGateway")).then_some((0, 0.9));
        match (lines, wrapped) {
            (Some(a), Some(b)) => Some(if a.1 >= b.1 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(crate::json_records::JsonRecordsParser::new(
            ctx.clone(),
            parse,
        ))
    }

    fn is_record_start(&self, line: &[u8]) -> bool {
        crate::json_records::is_object_line(line)
    }
}

fn parse(m: &Map<String, Value>, ctx: &ParseContext) -> Result<WafRecord, &'static str> {
    if !is_azure(m) {
        return Err(skip::UNPARSEABLE);
    }
    let cat = s(m, "category")
        .or_else(|| s(m, "operationName"))
        .unwrap_or("");
    if !cat.contains("Firewall") {
        return Err(skip::OTHER_CATEGORY);
    }
    let p = obj(m, "properties").ok_or(skip::UNPARSEABLE)?;
    let ts = ["time", "timestamp", "timeStamp"]
        .iter()
        .find_map(|k| m.get(*k).or_else(|| p.get(*k)))
        .and_then(|t| any_time(t, ctx))
        .ok_or(skip::BAD_TIMESTAMP)?;
    let mut rec = WafRecord {
        ts: Some(ts),
        target: s(p, "requestUri").map(str::to_string),
        host: s(p, "hostname").map(str::to_string),
        transaction: s(p, "transactionId").map(str::to_string),
        ..Default::default()
    };
    rec.client_ip = s(p, "clientIp").and_then(|c| ctx.client_ip(c, None));
    let id = text(p, "ruleId");
    let msg = s(p, "message");
    let group = s(p, "ruleGroup");
    let class = id
        .as_deref()
        .and_then(crs_class)
        .or_else(|| better(group.and_then(text_class), msg.and_then(text_class)));
    rec.rules.add(id.as_deref(), msg, None, class);
    let action = s(p, "action").unwrap_or("").to_ascii_lowercase();
    rec.action = Some(match action.as_str() {
        "blocked" | "block" => WafAction::Blocked,
        "matched" | "detected" | "log" => WafAction::LoggedOnly,
        "allowed" | "allow" => WafAction::Allowed,
        _ => WafAction::Unknown,
    });
    rec.detection_only = action == "detected";
    if rec.detection_only {
        rec.engine_mode = Some("Detection".into());
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;
    use crate::{by_name, detect};
    use ecir_model::{EventDetail, WafClass};

    /// Reference samples (azure-appgw-waf.md), verbatim: an access-log record and three WAF rows.
    const SAMPLE: &str = r#"{"resourceId":"/SUBSCRIPTIONS/23103928-B2CF-472A-8CDB-0146E2849129/RESOURCEGROUPS/PEERINGTEST/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/Application-Gateway-Name","operationName":"ApplicationGatewayAccess","time":"2017-04-26T19:27:38Z","category":"ApplicationGatewayAccessLog","properties":{"instanceId":"appgw_1","clientIP":"67.43.156.7","clientPort":46886,"httpMethod":"GET","requestUri":"/phpmyadmin/scripts/setup.php","userAgent":"-","httpStatus":404,"httpVersion":"HTTP/1.0","receivedBytes":65,"sentBytes":553,"timeTaken":205,"sslEnabled":"off","sslCipher":"","sslProtocol":"","serverRouted":"104.41.114.59:80","serverStatus":"200","serverResponseLatency":"0.023","host":"www.contoso.com"}}
{"resourceId":"/SUBSCRIPTIONS/23103928-B2CF-472A-8CDB-0146E2849129/RESOURCEGROUPS/TEST-WAF-RG/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/Application-Gateway-Name","operationName":"ApplicationGatewayFirewall","time":"2017-03-20T15:52:09.1494499Z","category":"ApplicationGatewayFirewallLog","properties":{"instanceId":"ApplicationGatewayRole_IN_0","clientIp":"67.43.156.7","clientPort":"0","requestUri":"/","ruleSetType":"OWASP","ruleSetVersion":"3.0","ruleId":"920350","ruleGroup":"920-PROTOCOL-ENFORCEMENT","message":"Host header is a numeric IP address","action":"Matched","site":"Global","details":{"message":"Warning. Pattern match \"^[\\\\d.:]+$\" at REQUEST_HEADERS:Host ....","data":"127.0.0.1","file":"rules/REQUEST-920-PROTOCOL-ENFORCEMENT.conf","line":"791"},"hostname":"127.0.0.1","transactionId":"16861477007022634343","policyId":"/subscriptions/1496a758-b2ff-43ef-b738-8e9eb5161a86/resourceGroups/drewRG/providers/Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies/perListener","policyScope":"Listener","policyScopeName":"httpListener1"}}
{"resourceId":"/SUBSCRIPTIONS/23103928-B2CF-472A-8CDB-0146E2849129/RESOURCEGROUPS/TEST-WAF-RG/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/Application-Gateway-Name","operationName":"ApplicationGatewayFirewall","time":"2024-05-28T08:58:53.2900501Z","category":"ApplicationGatewayFirewallLog","properties":{"instanceId":"ApplicationGatewayRole_IN_0","clientIp":"67.43.156.7","requestUri":"/.env.production","ruleSetType":"OWASP CRS","ruleSetVersion":"3.2","ruleId":"930130","ruleGroup":"REQUEST-930-APPLICATION-ATTACK-LFI","message":"Restricted File Access Attempt","action":"Matched","site":"Global","details":{"message":"Pattern match from file restricted-files.data at REQUEST_FILENAME.","data":"{/.env found within [REQUEST_FILENAME:/.env.production]}","file":"rules/REQUEST-930-APPLICATION-ATTACK-LFI.conf","line":"101"},"hostname":"127.0.0.1","transactionId":"c82550eb-9ae1-4b02-87e8-e4961b37e4c7","policyId":"/subscriptions/1496a758-b2ff-43ef-b738-8e9eb5161a86/resourceGroups/my-RG/providers/Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies/perListener","policyScope":"Listener","policyScopeName":"httpListener1"}}
{"category":"ApplicationGatewayFirewallLog","operationName":"ApplicationGatewayFirewall","properties":{"action":"Matched","clientIp":"67.43.156.7","clientPort":"","details":{"data":"{ found within [REQUEST_HEADERS:0]}","file":"rules/REQUEST-920-PROTOCOL-ENFORCEMENT.conf","line":"1335","message":"Warning. Operator EQ matched 0 at REQUEST_HEADERS. "},"hostname":"yams.elastic.co","instanceId":"appgw_0","message":"Missing User Agent Header","policyId":"default","policyScope":"Global","policyScopeName":"Global","requestUri":"/VerifyRecipient","ruleId":"920320","ruleSetType":"OWASP_CRS","ruleSetVersion":"3.1.0","site":"Global","transactionId":"4f88383f19aa99ff55a51130f93eb4fc"},"resourceId":"/SUBSCRIPTIONS/1496A758-B2FF-43EF-B738-8E9EB5161A86/RESOURCEGROUPS/YAM-DEVELOPMENT/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/AG-YAMS-DEV-01","timeStamp":"2023-01-20T21:25:55+00:00"}"#;

    #[test]
    fn reference_samples() {
        let chosen = detect(&SAMPLE.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "azure-appgw-waf");
        let c = parse_all(chosen, &ParseContext::default(), SAMPLE);
        assert_eq!(c.skips, vec![(1, skip::OTHER_CATEGORY)]);
        assert_eq!(c.events.len(), 3);
        assert_eq!(
            c.events[0].1.ts.unwrap().to_rfc3339(),
            "2017-03-20T15:52:09.149+00:00"
        );
        assert_eq!(
            c.events[2].1.ts.unwrap().to_rfc3339(),
            "2023-01-20T21:25:55+00:00"
        );
        assert_eq!(c.events[1].1.target.as_deref(), Some("/.env.production"));
        match &c.details[1] {
            EventDetail::Waf {
                rule_ids,
                attack,
                action,
                transaction,
                ..
            } => {
                assert_eq!(rule_ids, &["930130"]);
                assert_eq!(*attack, Some(WafClass::Lfi));
                assert_eq!(*action, WafAction::LoggedOnly);
                assert_eq!(
                    transaction.as_deref(),
                    Some("c82550eb-9ae1-4b02-87e8-e4961b37e4c7")
                );
            }
            d => panic!("{d:?}"),
        }
    }

    fn record(ip: &str, uri: &str, id: &str, category: &str) -> serde_json::Value {
        serde_json::json!({
            "resourceId": "/SUBSCRIPTIONS/X/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/AG",
            "operationName": "ApplicationGatewayFirewall",
            "category": category,
            "time": "2026-11-08T04:03:05.123Z",
            "properties": {
                "clientIp": ip, "requestUri": uri, "ruleId": id, "action": "Matched",
                "message": "XSS Attack Detected via libinjection",
                "details": {"message": "Warning. \"{[\\\"}", "data": "a}b{c\\", "file": "x", "line": "1"},
                "hostname": "shop.example.jp", "transactionId": "t1"
            }
        })
    }

    /// Every line is an event, a skip or absorbed; extra events hold no line.
    fn accounted(c: &crate::testing::Collect) -> u64 {
        c.events.len() as u64 - c.extra + c.skips.len() as u64 + c.absorbed
    }

    #[test]
    fn pretty_printed_records_wrapper() {
        let doc = serde_json::json!({"records": [
            record("203.0.113.88", "/contact?q=<script>", "941100", "ApplicationGatewayFirewallLog"),
            record("203.0.113.89", "/", "920350", "ApplicationGatewayAccessLog"),
            record("203.0.113.90", "/cart", "942100", "ApplicationGatewayFirewallLog"),
        ]});
        let text = serde_json::to_string_pretty(&doc).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let chosen = detect(&lines.iter().map(|l| l.as_bytes()).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "azure-appgw-waf");
        let c = parse_all(chosen, &ParseContext::default(), &text);
        assert_eq!(c.events.len(), 2);
        assert_eq!(c.extra, 0);
        assert_eq!(accounted(&c), lines.len() as u64);
        // Each event cites its record's first line, a bare `{`.
        for (l, e) in &c.events {
            assert_eq!(lines[*l as usize - 1].trim(), "{");
            assert!(e.client_ip.is_some());
        }
        assert_eq!(c.events[0].1.target.as_deref(), Some("/contact?q=<script>"));
        assert_eq!(c.events[1].1.target.as_deref(), Some("/cart"));
        let wrapper: Vec<u64> = c
            .skips
            .iter()
            .filter(|s| s.1 == skip::JSON_WRAPPER)
            .map(|s| s.0)
            .collect();
        assert_eq!(
            wrapper,
            vec![1, 2, lines.len() as u64 - 1, lines.len() as u64]
        );
        // The access-log record is skipped line by line.
        let other = c
            .skips
            .iter()
            .filter(|s| s.1 == skip::OTHER_CATEGORY)
            .count();
        assert!(other > 5, "{other}");
        // Pretty-printed records never start a parallel chunk.
        assert!(lines
            .iter()
            .all(|l| !AzureWaf.is_record_start(l.as_bytes())));
    }

    #[test]
    fn one_record_per_line_wrapper_and_one_line_wrapper() {
        let a = record(
            "203.0.113.88",
            "/contact",
            "941100",
            "ApplicationGatewayFirewallLog",
        );
        let b = record(
            "203.0.113.89",
            "/cart",
            "942100",
            "ApplicationGatewayFirewallLog",
        );
        let text = format!("{{\"records\": [\n{a},\n{b}\n]}}\n");
        let lines: Vec<&str> = text.lines().collect();
        let chosen = detect(&lines.iter().map(|l| l.as_bytes()).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "azure-appgw-waf");
        let c = parse_all(chosen, &ParseContext::default(), &text);
        assert_eq!(c.events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(
            c.skips,
            vec![(1, skip::JSON_WRAPPER), (4, skip::JSON_WRAPPER)]
        );
        assert_eq!(accounted(&c), 4);
        assert!(AzureWaf.is_record_start(lines[1].as_bytes()));
        // The wrapper opener on the first record's line, and two records on one line.
        let text = format!("{{\"records\":[{a},\n{b},{a}]}}");
        let c = parse_all(chosen, &ParseContext::default(), &text);
        assert_eq!(
            c.events.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![1, 2, 2]
        );
        assert_eq!(c.extra, 1);
        assert!(c.skips.is_empty());
        assert_eq!(accounted(&c), 2);
    }

    #[test]
    fn a_line_counts_as_read_when_any_of_its_records_is() {
        let chosen = by_name("azure-appgw-waf").unwrap();
        let access = record("203.0.113.89", "/", "920350", "ApplicationGatewayAccessLog");
        let fw = |ip: &str| record(ip, "/contact", "941100", "ApplicationGatewayFirewallLog");
        // A whole blob on one line whose first record is of another category.
        let one_line =
            serde_json::json!({"records": [access, fw("203.0.113.1"), fw("203.0.113.2")]});
        let c = parse_all(chosen, &ParseContext::default(), &one_line.to_string());
        assert_eq!(c.events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 1]);
        assert_eq!(c.extra, 1);
        assert!(c.skips.is_empty(), "{:?}", c.skips);
        assert_eq!(c.extra_skips, vec![(1, skip::OTHER_CATEGORY)]);
        assert_eq!(accounted(&c), 1);
        // Records of another category after a read one on its line are extra skips; a line
        // holding no readable record is one skipped line.
        let text = format!(
            "{{\"records\": [{}, {access},\n{access}, {access}]}}",
            fw("203.0.113.3")
        );
        let c = parse_all(chosen, &ParseContext::default(), &text);
        assert_eq!(c.events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(c.skips, vec![(2, skip::OTHER_CATEGORY)]);
        assert_eq!(
            c.extra_skips,
            vec![(1, skip::OTHER_CATEGORY), (2, skip::OTHER_CATEGORY)]
        );
        assert_eq!(accounted(&c), 2);
    }

    #[test]
    fn truncated_document() {
        let doc = serde_json::json!({"records": [
            record("203.0.113.88", "/contact", "941100", "ApplicationGatewayFirewallLog"),
            record("203.0.113.90", "/cart", "942100", "ApplicationGatewayFirewallLog"),
        ]});
        let full = serde_json::to_string_pretty(&doc).unwrap();
        let lines: Vec<&str> = full.lines().collect();
        // Cut inside the second record (the document's own `{` is the first bare brace).
        let second = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == "{")
            .nth(2)
            .unwrap()
            .0;
        let cut = lines[..second + 6].join("\n");
        let c = parse_all(
            by_name("azure-appgw-waf").unwrap(),
            &ParseContext::default(),
            &cut,
        );
        assert_eq!(c.events.len(), 1);
        let truncated: Vec<u64> = c
            .skips
            .iter()
            .filter(|s| s.1 == skip::TRUNCATED_RECORD)
            .map(|s| s.0)
            .collect();
        assert_eq!(
            truncated,
            (second as u64 + 1..=second as u64 + 6).collect::<Vec<_>>()
        );
        assert_eq!(accounted(&c), second as u64 + 6);
        // A one-line record cut off, then a whole one: the next object line resynchronises.
        let a = record(
            "203.0.113.88",
            "/contact",
            "941100",
            "ApplicationGatewayFirewallLog",
        )
        .to_string();
        let text = format!("{}\n{a}\n", &a[..a.len() / 2]);
        let c = parse_all(
            by_name("azure-appgw-waf").unwrap(),
            &ParseContext::default(),
            &text,
        );
        assert_eq!(c.events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2]);
        assert_eq!(c.skips, vec![(1, skip::TRUNCATED_RECORD)]);
    }

    #[test]
    fn oversized_record_is_skipped_line_by_line() {
        let big = "A".repeat(60_000);
        let mut text =
            String::from("{\"records\": [\n{\"category\": \"ApplicationGatewayFirewallLog\",\n");
        for _ in 0..25 {
            text.push_str(&format!("\"k\": \"{big}\",\n"));
        }
        text.push_str("\"end\": 1},\n");
        let a = record(
            "203.0.113.88",
            "/contact",
            "941100",
            "ApplicationGatewayFirewallLog",
        );
        text.push_str(&format!("{a}\n]}}\n"));
        let n = text.lines().count() as u64;
        let c = parse_all(
            by_name("azure-appgw-waf").unwrap(),
            &ParseContext::default(),
            &text,
        );
        assert_eq!(
            c.events.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![n - 1]
        );
        let too_long: Vec<u64> = c
            .skips
            .iter()
            .filter(|s| s.1 == skip::RECORD_TOO_LONG)
            .map(|s| s.0)
            .collect();
        assert_eq!(too_long, (2..=n - 2).collect::<Vec<_>>());
        assert_eq!(accounted(&c), n);
    }
}
