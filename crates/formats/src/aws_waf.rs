//! AWS WAF (WAFv2) web-ACL logs: one JSON object per evaluated request (`timestamp` in epoch
//! ms, or an ISO string in normalised exports), `action` ALLOW/BLOCK/COUNT/CAPTCHA/CHALLENGE,
//! terminating and non-terminating (COUNT) rule matches, managed rule-group labels.
//!
//! A BLOCK (or CAPTCHA/CHALLENGE) never reached the shop. A COUNT match, or an ALLOW with
//! non-terminating COUNT matches, reached it: that is logged-only, and the counting rules are
//! named (`counted_by`) with the web ACL (`policy`, the `webaclId`). COUNT is one rule's action
//! (a count-only rule, or a managed rule group overridden to count while tuning), not the web
//! ACL's mode: the record is not `detection_only`, and whether the web ACL as a whole only
//! watched is for the detector to judge over all its records.

use ecir_model::{SourceKind, WafAction};
use serde_json::{Map, Value};

use crate::context::ParseContext;
use crate::modsec_json::{obj, s, text};
use crate::time::{epoch, iso8601};
use crate::waf_common::{text_class, WafRecord};
use crate::{skip, Format, Parser};

pub struct AwsWaf;

const VARIANTS: &[(&str, &str)] = &[(
    "aws-waf",
    "AWS WAF v2 web ACL log (JSON lines: timestamp, action, httpRequest, rule matches)",
)];

fn is_aws(m: &Map<String, Value>) -> bool {
    m.contains_key("httpRequest")
        && (m.contains_key("webaclId") || m.contains_key("terminatingRuleId"))
}

impl Format for AwsWaf {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        crate::waf_common::detect_json_lines(sample, is_aws)
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(crate::waf_common::JsonLinesParser {
            ctx: ctx.clone(),
            parse,
        })
    }
}

/// A timestamp as epoch seconds/ms/ns (number or string) or ISO 8601.
pub(crate) fn any_time(v: &Value, ctx: &ParseContext) -> Option<ecir_model::Timestamp> {
    let t = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let b = t.trim().as_bytes();
    if b.len() >= 18 && b.iter().all(u8::is_ascii_digit) {
        // unixnano
        return epoch(&b[..13]);
    }
    epoch(b).or_else(|| iso8601(b, ctx))
}

fn class_of(rule: &str, details: Option<&Value>) -> Option<ecir_model::WafClass> {
    let mut c = None;
    if let Some(arr) = details.and_then(Value::as_array) {
        for d in arr {
            if let Some(ct) = d.get("conditionType").and_then(Value::as_str) {
                c = crate::waf_common::better(c, text_class(ct));
            }
        }
    }
    crate::waf_common::better(c, text_class(rule))
}

fn parse(m: &Map<String, Value>, ctx: &ParseContext) -> Result<WafRecord, &'static str> {
    if !is_aws(m) {
        return Err(skip::UNPARSEABLE);
    }
    let ts = m
        .get("timestamp")
        .and_then(|v| any_time(v, ctx))
        .ok_or(skip::BAD_TIMESTAMP)?;
    let req = obj(m, "httpRequest").ok_or(skip::UNPARSEABLE)?;
    let headers = req.get("headers").and_then(Value::as_array);
    let hdr = |name: &str| {
        headers?.iter().find_map(|h| {
            let n = h.get("name")?.as_str()?;
            n.eq_ignore_ascii_case(name)
                .then(|| h.get("value")?.as_str().map(str::to_string))?
        })
    };
    let mut rec = WafRecord {
        ts: Some(ts),
        method: s(req, "httpMethod").map(str::to_string),
        protocol: s(req, "httpVersion").map(str::to_string),
        host: s(req, "host").map(str::to_string).or_else(|| hdr("Host")),
        user_agent: hdr("User-Agent"),
        transaction: s(req, "requestId")
            .filter(|r| *r != "null")
            .map(str::to_string),
        ..Default::default()
    };
    let xff = hdr("X-Forwarded-For");
    rec.client_ip = s(req, "clientIp").and_then(|c| ctx.client_ip(c, xff.as_deref()));
    if let Some(uri) = s(req, "uri") {
        rec.target = Some(match s(req, "args") {
            Some(a) => format!("{uri}?{a}"),
            None => uri.to_string(),
        });
    }
    rec.status = m
        .get("responseCodeSent")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok());
    let action = s(m, "action").unwrap_or("").to_ascii_uppercase();
    let term = s(m, "terminatingRuleId").filter(|r| *r != "Default_Action");
    // Rules whose action was COUNT (a non-terminating match without an action is a count).
    let mut counted: Vec<String> = Vec::new();
    let is_count = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_none_or(|a| a.eq_ignore_ascii_case("COUNT"))
    };
    if let Some(t) = term {
        let class = class_of(t, m.get("terminatingRuleMatchDetails"));
        rec.rules
            .add(Some(t), s(m, "terminatingRuleType"), None, class);
        if action == "COUNT" {
            counted.push(t.to_string());
        }
    }
    if let Some(groups) = m.get("ruleGroupList").and_then(Value::as_array) {
        for g in groups.iter().filter_map(Value::as_object) {
            let gid = s(g, "ruleGroupId").unwrap_or("");
            if let Some(t) = obj(g, "terminatingRule") {
                if let Some(id) = s(t, "ruleId") {
                    let class = class_of(&format!("{gid} {id}"), t.get("ruleMatchDetails"));
                    rec.rules.add(Some(id), Some(gid), None, class);
                    if s(t, "action").is_some_and(|a| a.eq_ignore_ascii_case("COUNT")) {
                        counted.push(id.to_string());
                    }
                }
            }
            for r in g
                .get("nonTerminatingMatchingRules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = r.get("ruleId").and_then(Value::as_str) {
                    let class = class_of(&format!("{gid} {id}"), r.get("ruleMatchDetails"));
                    rec.rules.add(Some(id), Some(gid), None, class);
                    if is_count(r.get("action")) {
                        counted.push(id.to_string());
                    }
                }
            }
        }
    }
    for r in m
        .get("nonTerminatingMatchingRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = r.get("ruleId").and_then(Value::as_str) {
            let class = class_of(id, r.get("ruleMatchDetails"));
            rec.rules.add(
                Some(id),
                r.get("action").and_then(Value::as_str),
                None,
                class,
            );
            if is_count(r.get("action")) {
                counted.push(id.to_string());
            }
        }
    }
    if let Some(labels) = m.get("labels").and_then(Value::as_array) {
        for l in labels.iter().filter_map(|l| l.get("name")?.as_str()) {
            if l.starts_with("awswaf:managed:") {
                rec.rules.attack = crate::waf_common::better(rec.rules.attack, text_class(l));
            }
        }
    }
    if let Some(rb) = m.get("rateBasedRuleList").and_then(Value::as_array) {
        if !rb.is_empty() && rec.rules.attack.is_none() && action == "BLOCK" {
            rec.rules.attack = Some(ecir_model::WafClass::RateLimit);
        }
    }
    rec.action = Some(match action.as_str() {
        "BLOCK" | "CAPTCHA" | "CHALLENGE" => WafAction::Blocked,
        "COUNT" => WafAction::LoggedOnly,
        "ALLOW" if !counted.is_empty() => WafAction::LoggedOnly,
        "ALLOW" => WafAction::Allowed,
        _ => WafAction::Unknown,
    });
    counted.sort_unstable();
    counted.dedup();
    rec.counted_by = counted;
    rec.policy = s(m, "webaclId").map(str::to_string);
    let _ = text(m, "formatVersion");
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect;
    use crate::testing::{parse_all, shared_dir};
    use ecir_model::{EventDetail, WafClass};

    /// elastic/integrations test-waf.log, lines 1-3, verbatim (aws-waf.md).
    const SAMPLE: &str = r#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:EXAMPLE12345:regional/webacl/STMTest/1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE","terminatingRuleId":"STMTest_SQLi_XSS","terminatingRuleType":"REGULAR","action":"BLOCK","terminatingRuleMatchDetails":[{"conditionType":"SQL_INJECTION","location":"HEADER","matchedData":["10","AND","1"]}],"httpSourceName":"-","httpSourceId":"-","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"89.160.20.156","country":"AU","headers":[{"name":"Host","value":"localhost:1989"},{"name":"User-Agent","value":"curl/7.61.1"},{"name":"Accept","value":"*/*"},{"name":"x-stm-test","value":"10 AND 1=1"}],"uri":"/foo","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"labels":[{"name":"value"}]}
{"timestamp":1592357192516,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:global/webacl/hello-world/5933d6d9-9dde-js82-v8aw-9ck28nv9","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"-","httpSourceId":"-","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[{"ruleId":"TestRule","action":"COUNT","ruleMatchDetails":[{"conditionType":"SQL_INJECTION","location":"HEADER","matchedData":["10","and","1"]}]}],"httpRequest":{"clientIp":"89.160.20.156","country":"US","headers":[{"name":"Host","value":"localhost:1989"},{"name":"User-Agent","value":"curl/7.61.1"},{"name":"Accept","value":"*/*"},{"name":"foo","value":"10 AND 1=1"}],"uri":"/foo","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"labels":[{"name":"value"}]}
{"timestamp":1592361810888,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:global/webacl/hello-world/5933d6d9-9dde-js82-v8aw-9ck28nv9","terminatingRuleId":"RG-Reference","terminatingRuleType":"GROUP","action":"BLOCK","terminatingRuleMatchDetails":[{"conditionType":"XSS","location":"HEADER","matchedData":["<","frameset"]}],"httpSourceName":"-","httpSourceId":"-","ruleGroupList":[{"ruleGroupId":"arn:aws:wafv2:us-east-1:123456789012:global/rulegroup/hello-world/c05lb698-1f11-4m41-aef4-99a506d53f4b","terminatingRule":{"ruleId":"RuleA-XSS","action":"BLOCK","ruleMatchDetails":null},"nonTerminatingMatchingRules":[{"ruleId":"RuleB-SQLi","action":"COUNT","ruleMatchDetails":[{"conditionType":"SQL_INJECTION","location":"HEADER","matchedData":["10","and","1"]}]}],"excludedRules":null}],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"89.160.20.156","country":"US","headers":[{"name":"Host","value":"localhost:1989"},{"name":"User-Agent","value":"curl/7.61.1"},{"name":"Accept","value":"*/*"},{"name":"xssfoo","value":"<frameset onload=alert(1)>"},{"name":"bar","value":"10 AND 1=1"}],"uri":"/foo","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"labels":[{"name":"value"}]}"#;

    #[test]
    fn reference_samples() {
        let chosen = detect(&SAMPLE.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "aws-waf");
        let c = parse_all(chosen, &ParseContext::default(), SAMPLE);
        assert_eq!(c.events.len(), 3);
        let e = &c.events[0].1;
        assert_eq!(e.client_ip, Some("89.160.20.156".parse().unwrap()));
        assert_eq!(e.ts.unwrap().utc_ms, 1576280412771);
        assert_eq!(e.target.as_deref(), Some("/foo"));
        assert_eq!(e.host.as_deref(), Some("localhost:1989"));
        type Got = (WafAction, bool, Vec<String>, Option<WafClass>);
        let acts: Vec<Got> = c
            .details
            .iter()
            .map(|d| match d {
                EventDetail::Waf {
                    action,
                    detection_only,
                    counted_by,
                    attack,
                    ..
                } => (
                    *action,
                    *detection_only,
                    counted_by.iter().map(|r| r.to_string()).collect(),
                    *attack,
                ),
                _ => panic!(),
            })
            .collect();
        // A COUNT match names its rule and is not the web ACL's detection-only mode: the
        // same web ACL blocks the third request.
        assert_eq!(
            acts,
            vec![
                (WafAction::Blocked, false, vec![], Some(WafClass::Sqli)),
                (
                    WafAction::LoggedOnly,
                    false,
                    vec!["TestRule".to_string()],
                    Some(WafClass::Sqli)
                ),
                (
                    WafAction::Blocked,
                    false,
                    vec!["RuleB-SQLi".to_string()],
                    Some(WafClass::Sqli)
                ),
            ]
        );
        let policies: Vec<Option<&str>> = c
            .details
            .iter()
            .map(|d| match d {
                EventDetail::Waf { policy, .. } => policy.as_deref(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            policies[1..],
            [Some("arn:aws:wafv2:us-east-1:123456789012:global/webacl/hello-world/5933d6d9-9dde-js82-v8aw-9ck28nv9"); 2]
        );
    }

    /// A top-level COUNT (the terminating rule counted) and counted rules inside a rule
    /// group are named; a non-terminating CHALLENGE passed with a valid token is no count.
    #[test]
    fn counted_rules_are_named() {
        let lines = [
            r#"{"timestamp":1700000000000,"webaclId":"arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/shop/1","terminatingRuleId":"CountSQLi","terminatingRuleType":"REGULAR","action":"COUNT","httpRequest":{"clientIp":"192.0.2.5","uri":"/a","args":"id=1","httpMethod":"GET"}}"#,
            r#"{"timestamp":1700000000000,"webaclId":"arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/shop/1","terminatingRuleId":"Default_Action","action":"ALLOW","ruleGroupList":[{"ruleGroupId":"AWS#AWSManagedRulesSQLiRuleSet","nonTerminatingMatchingRules":[{"ruleId":"SQLi_QUERYARGUMENTS","action":"COUNT"}]}],"httpRequest":{"clientIp":"192.0.2.6","uri":"/b","args":"id=1","httpMethod":"GET"}}"#,
            r#"{"timestamp":1700000000000,"webaclId":"arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/shop/1","terminatingRuleId":"Default_Action","action":"ALLOW","nonTerminatingMatchingRules":[{"ruleId":"BotChallenge","action":"CHALLENGE"}],"httpRequest":{"clientIp":"192.0.2.7","uri":"/c","args":"","httpMethod":"GET"}}"#,
        ];
        let chosen = crate::by_name("aws-waf").unwrap();
        let c = parse_all(chosen, &ParseContext::default(), &lines.join("\n"));
        let got: Vec<(WafAction, Vec<String>)> = c
            .details
            .iter()
            .map(|d| match d {
                EventDetail::Waf {
                    action, counted_by, ..
                } => (*action, counted_by.iter().map(|r| r.to_string()).collect()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (WafAction::LoggedOnly, vec!["CountSQLi".to_string()]),
                (
                    WafAction::LoggedOnly,
                    vec!["SQLi_QUERYARGUMENTS".to_string()]
                ),
                (WafAction::Allowed, vec![]),
            ]
        );
    }

    /// Panther's AWS WAF test records: every record parses; BLOCK/COUNT/ALLOW agree with the
    /// record's own `action`, and the managed rule group named by the case maps to its class.
    #[test]
    fn panther_corpus() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let Ok(text) = std::fs::read_to_string(
            dir.join("corpus/panther-waf-cloudflare-tests/aws_waf_tests.jsonl"),
        ) else {
            eprintln!("skipping: panther corpus not present");
            return;
        };
        let chosen = crate::by_name("aws-waf").unwrap();
        let (mut total, mut parsed, mut action_ok, mut class_cases, mut class_ok) = (0, 0, 0, 0, 0);
        for l in text.lines() {
            let case: Value = serde_json::from_str(l).unwrap();
            total += 1;
            let rec = serde_json::to_string(&case["log"]).unwrap();
            let c = parse_all(chosen, &ParseContext::default(), &rec);
            let Some(d) = c.details.first() else { continue };
            parsed += 1;
            let EventDetail::Waf { action, attack, .. } = d else {
                panic!()
            };
            let want = case["log"]["action"].as_str().unwrap_or("");
            let ok = match want {
                "BLOCK" | "CAPTCHA" | "CHALLENGE" => *action == WafAction::Blocked,
                "COUNT" => *action == WafAction::LoggedOnly,
                "ALLOW" => matches!(action, WafAction::Allowed | WafAction::LoggedOnly),
                _ => true,
            };
            action_ok += usize::from(ok);
            let expect = match case["rule_id"].as_str().unwrap_or("") {
                "AWS.WAF.Managed.SQLDatabase" => Some(WafClass::Sqli),
                _ => None,
            };
            if let (Some(e), Some(true)) = (expect, case["expected_result"].as_bool()) {
                class_cases += 1;
                class_ok += usize::from(*attack == Some(e));
            }
        }
        eprintln!("panther aws-waf: {parsed}/{total} parsed, action agrees {action_ok}/{parsed}, SQLi class {class_ok}/{class_cases}");
        assert_eq!(parsed, total);
        assert_eq!(action_ok, parsed);
        assert_eq!(class_ok, class_cases);
    }
}
